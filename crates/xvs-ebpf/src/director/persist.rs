//! Persistence (`-p`, with `-M`): IPVS's templates. A persistent service's new connection
//! first looks for the template of its client's network (the client address masked by the
//! service's netmask or IPv6 prefix length), its VIP and port (0 for a port-0 service) and
//! protocol; a live template whose real server is still in the service sends the
//! connection there, without scheduling, and lives on for the persistence timeout. Without
//! one, the scheduler chooses and a template is made for the choice.
//!
//! Templates are entries of the connection table under keys no packet has (the marker
//! [`TEMPLATE_KEY`]), so they expire and are swept like connections; each counts in its
//! real server's persistent count. As IPVS, a template keeps sending its clients to a
//! quiescent (weight 0) real server unless `expire_quiescent_template` is on (the meta
//! map's [`meta::EXPIRE_QUIESCENT_TEMPLATE`]); one whose real server was removed is
//! dropped and the client scheduled anew.

use aya_ebpf::bindings::BPF_NOEXIST;
use core::intrinsics::{AtomicOrdering, atomic_xadd};
use xvs_common::{
    Conn, ConnKey, FAMILY_V4, LocalityMember, ServiceKey, ServiceValue, TEMPLATE_KEY, conn_flags,
    forward, meta, tcp,
};

use crate::{
    conn,
    maps::{XVS_CONNS, dest_counts, meta_value, scratch},
    packet::{Packet, copy_addr},
    sched::{self, View},
};

const NS_PER_SEC: u64 = 1_000_000_000;

/// The set index of the real server the live template for this packet's client names in
/// `view` (the service's set, of either class), or [`sched::NONE`]: no template, or its
/// server left the service (or, with `expire_quiescent_template`, has weight 0), when the
/// template is dropped and the client is scheduled anew. The template's key is left in the
/// scratch space for [`xvs_persist_create`].
#[inline(always)]
pub fn remembered<const N: usize>(
    view: &View<N>,
    packet: &Packet,
    service: &ServiceValue,
    now: u64,
) -> u32 {
    if xvs_persist_find(packet, service, now) == 0 {
        return sched::NONE;
    }
    let Some(scratch) = scratch() else {
        return sched::NONE;
    };
    let remembered = unsafe { &(*scratch).remembered };
    let index = view.index_of(remembered.slot, remembered.dest_stats, remembered.dest_id);
    if index == sched::NONE || expired_quiescent(view, index) {
        xvs_persist_forget();
        return sched::NONE;
    }
    index
}

/// Finds the live template for this packet's client (its key left in the scratch space)
/// and keeps it alive for the persistence timeout: 1, with its real server's counter slot
/// and id in the scratch space, or 0. An expired one is dropped. A global BPF function:
/// verified once, on its own, whatever the class of the service's set.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_persist_find(
    packet: *const Packet,
    service: *const ServiceValue,
    now: u64,
) -> u32 {
    if packet.is_null() || service.is_null() {
        return 0;
    }
    let (packet, service) = unsafe { (&*packet, &*service) };
    let Some(scratch) = scratch() else {
        return 0;
    };
    let key = unsafe { &mut (*scratch).template_key };
    // The key the service was found by: its port is 0 for a port-0 service.
    let found_by = unsafe { &(*scratch).service_key };
    template_key(key, packet, service, found_by);
    let key = &*key;
    let Some(template) = XVS_CONNS.get_ptr_mut(key) else {
        return 0;
    };
    if conn::expired(template, now) {
        conn::forget(key, template);
        return 0;
    }
    // A template a peer director synced: counted here from its first use.
    if unsafe { (*template).flags } & conn_flags::SYNCED != 0 {
        conn::adopt_template(template);
    }
    unsafe {
        (*template).expires = now + timeout_ns(service);
        (*scratch).remembered = LocalityMember {
            dest_stats: (*template).dest_stats,
            dest_id: (*template).dest_id,
            slot: (*template).slot,
            _pad: 0,
        };
    }
    1
}

/// Drops the template [`xvs_persist_find`] found (its key in the scratch space).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_persist_forget() -> u32 {
    let Some(scratch) = scratch() else {
        return 0;
    };
    let key = unsafe { &(*scratch).template_key };
    if let Some(template) = XVS_CONNS.get_ptr_mut(key) {
        conn::forget(key, template);
    }
    0
}

/// Makes the template for connection `new` (just created) under the key
/// [`xvs_persist_find`] left in the scratch space, and counts it.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_persist_create(
    new: *const Conn,
    service: *const ServiceValue,
    now: u64,
) -> u32 {
    if new.is_null() || service.is_null() {
        return 0;
    }
    let (new, service) = unsafe { (&*new, &*service) };
    let Some(scratch) = scratch() else {
        return 0;
    };
    let template = unsafe { &mut (*scratch).twin };
    template.expires = now + timeout_ns(service);
    copy_addr(&mut template.peer, &new.peer);
    template.dest_id = new.dest_id;
    template.service_id = new.service_id;
    template.peer_port = new.peer_port;
    template.slot = new.slot;
    template.service_stats = new.service_stats;
    template.dest_stats = new.dest_stats;
    template.state = tcp::NONE;
    // Never forwarded by; not NAT, so it has no reply twin.
    template.forward = forward::ROUTE;
    template.flags = conn_flags::TEMPLATE;
    template.peer_family = new.peer_family;
    let key = unsafe { &(*scratch).template_key };
    // Another CPU may have made it first: one template, counted once.
    if XVS_CONNS
        .insert(key, &*template, BPF_NOEXIST as u64)
        .is_ok()
    {
        count_template(new.dest_stats, 1);
        conn::xvs_queue_sweep(key, template.expires, now);
    }
    0
}

/// Adds `delta` to the persistent count of the real server with counter slot `dest_stats`.
#[inline(always)]
pub fn count_template(dest_stats: u32, delta: i32) {
    if let Some(counts) = dest_counts() {
        let field = unsafe { &mut (*counts).of_mut(dest_stats).persistent as *mut u32 };
        unsafe { atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(field, delta as u32) };
    }
}

#[inline(always)]
fn timeout_ns(service: &ServiceValue) -> u64 {
    service.timeout as u64 * NS_PER_SEC
}

/// The template key of `packet`'s client for `service`.
#[inline(always)]
fn template_key(key: &mut ConnKey, packet: &Packet, service: &ServiceValue, found_by: &ServiceKey) {
    let netmask = service.netmask;
    key.src = [0; 16];
    if packet.family == FAMILY_V4 {
        let mask = netmask.to_be_bytes();
        for i in 0..4 {
            key.src[i] = packet.src[i] & mask[i];
        }
    } else {
        // The IPv6 prefix length, byte by byte.
        let prefix = if netmask > 128 { 128 } else { netmask };
        for i in 0..16 {
            let bits = prefix.saturating_sub(8 * i as u32);
            let mask = if bits >= 8 { 0xff } else { !(0xffu8 >> bits) };
            key.src[i] = packet.src[i] & mask;
        }
    }
    key.sport = 0;
    // A port-0 service (every port) keeps one template for all of a client's ports.
    key.dport = found_by.port;
    if found_by.fwmark == 0 {
        key.dst = packet.dst;
        key.protocol = packet.protocol;
    } else {
        // As IPVS: one template per client for every address, port and protocol of the
        // mark (its "virtual address" is the mark, its protocol IP).
        key.dst = [0; 16];
        let mark = found_by.fwmark.to_be_bytes();
        key.dst[..4].copy_from_slice(&mark);
        key.protocol = 0;
    }
    key.family = packet.family;
    key._pad = [TEMPLATE_KEY, 0];
}

/// With `expire_quiescent_template` on, whether set index `index` of `view` has weight 0
/// (its template is then dropped, as IPVS's `ip_vs_check_template` drops it).
#[inline(always)]
fn expired_quiescent<const N: usize>(view: &View<N>, index: u32) -> bool {
    meta_value(meta::EXPIRE_QUIESCENT_TEMPLATE) != 0
        && view.entry(index).is_some_and(|entry| entry.weight == 0)
}
