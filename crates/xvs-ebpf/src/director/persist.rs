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
//!
//! As IPVS's `n_control`, a template counts the live connections it sent
//! ([`Conn::template_controls`]; each is marked `CONTROLLED`) and does not expire while
//! any is open: a client's long connection (FTP's control connection, say) keeps its
//! later ones on the same server however long it lasts. A connection's end finds its
//! template by the service's [`PersistParams`] (`XVS_PERSIST`).

use aya_ebpf::bindings::BPF_NOEXIST;
use core::intrinsics::{AtomicOrdering, atomic_xadd};
use xvs_common::{
    Conn, ConnKey, FAMILY_V4, LocalityMember, PersistParams, ServiceValue, TEMPLATE_KEY,
    conn_flags, dest_index, forward, is_call_key, meta, persistence_engine, tcp,
};

use crate::{
    conn,
    maps::{XVS_CONNS, XVS_DESTS, XVS_PERSIST, dest_counts, meta_value, scratch},
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
    let client = Client {
        src: &packet.src,
        dst: &packet.dst,
        protocol: packet.protocol,
        family: packet.family,
    };
    template_key(
        key,
        &client,
        service.netmask,
        found_by.fwmark,
        found_by.port,
    );
    if service.pe == persistence_engine::SIP {
        crate::sip::mark_call(key);
    }
    let key = &*key;
    let Some(template) = XVS_CONNS.get_ptr_mut(key) else {
        return 0;
    };
    // Past its timeout, a template still counting open connections lives on.
    if conn::expired(template, now) && !controls_any(template) {
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

/// Counts the connection just made through the template [`xvs_persist_find`] found (its
/// key in the scratch space) in that template.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_persist_control() -> u32 {
    let Some(scratch) = scratch() else {
        return 0;
    };
    if let Some(template) = XVS_CONNS.get_ptr_mut(unsafe { &(*scratch).template_key }) {
        add_control(template, 1);
    }
    0
}

/// A `CONTROLLED` connection (key `key`, of service `service_id`) has ended: its template
/// counts it no more. The template's key is made on this function's own stack (the
/// scratch space's may be in use by the new connection whose insert ended this one).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_persist_release(key: *const ConnKey, service_id: u32) -> u32 {
    if key.is_null() {
        return 0;
    }
    let key = unsafe { &*key };
    let Some(params) = (unsafe { XVS_PERSIST.get(&service_id) }) else {
        return 0;
    };
    let mut template_of = ConnKey::default();
    let client = Client {
        src: &key.src,
        dst: &key.dst,
        protocol: key.protocol,
        family: key.family,
    };
    let port = if params.port == 0 { 0 } else { key.dport };
    template_key(
        &mut template_of,
        &client,
        params.netmask,
        params.fwmark,
        port,
    );
    if let Some(template) = XVS_CONNS.get_ptr_mut(&template_of)
        && controls_any(template)
    {
        add_control(template, -1);
    }
    0
}

/// Whether a template still counts open connections (a count that went below 0, from a
/// connection that outlived a dropped template, reads as none).
#[inline(always)]
pub fn controls_any(template: *const Conn) -> bool {
    let (controls, flags) = unsafe { ((*template).template_controls(), (*template).flags) };
    flags & conn_flags::TEMPLATE != 0 && controls != 0 && controls < 1 << 31
}

/// The netmask (IPv6 prefix length) a template was made under.
#[inline(always)]
fn made_with(template: *const Conn) -> u32 {
    let mac = unsafe { (*template).l2.smac };
    u32::from_ne_bytes([mac[0], mac[1], mac[2], mac[3]])
}

#[inline(always)]
fn add_control(template: *mut Conn, delta: i32) {
    if unsafe { (*template).flags } & conn_flags::TEMPLATE == 0 {
        return;
    }
    let field = unsafe { &mut (*template).l2.ifindex as *mut u32 };
    unsafe { atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(field, delta as u32) };
}

/// How long the sweep keeps a template it found past its timeout still counting open
/// connections, before it looks again: IPVS's `expire_later` re-arms such a template's
/// timer for 60 s, whatever the persistence timeout, so the template lives on at most
/// 60 s after its last connection ends (a client's next connection meanwhile re-arms it
/// for the service's timeout here, for 60 s in IPVS).
const KEPT_TEMPLATE_NS: u64 = 60 * NS_PER_SEC;

/// A template the sweep found past its timeout still counting open connections: kept
/// for [`KEPT_TEMPLATE_NS`], its record queued again, while its real server is in the
/// service (a removed server's template would only be dropped at its client's next
/// connection). 1 if kept.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_persist_keep(key: *const ConnKey, template: *mut Conn, now: u64) -> u32 {
    if key.is_null() || template.is_null() || !controls_any(template) {
        return 0;
    }
    // Either half of the real-server array may hold the server (a template does not
    // note which).
    let (stats, id) = unsafe { ((*template).dest_stats, (*template).dest_id) };
    let holds = |half: u16| {
        XVS_DESTS
            .get(dest_index(stats, half))
            .is_some_and(|d| d.id == id)
    };
    if !holds(0) && !holds(1) {
        return 0;
    }
    // Made under another netmask, its connections would no more find it to count out:
    // not kept (it expires by its timeout, as before the service changed).
    let service_id = unsafe { (*template).service_id };
    let Some(params) = (unsafe { XVS_PERSIST.get(&service_id) }) else {
        return 0;
    };
    if params.netmask != made_with(template) {
        return 0;
    }
    let expires = now + KEPT_TEMPLATE_NS;
    unsafe { (*template).expires = expires };
    conn::xvs_queue_sweep(key, expires, now);
    1
}

/// Makes the template for connection `new` (just created) under the key
/// [`xvs_persist_find`] left in the scratch space, and counts it; if `new` is
/// `CONTROLLED`, the template counts it too. Keeps the service's [`PersistParams`].
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
    keep_params(service, unsafe { &(*scratch).service_key });
    let controls = (new.flags & conn_flags::CONTROLLED != 0) as u32;
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
    // Its next hop's fields hold what a template needs instead: the connections it
    // counts, and the netmask it was made under.
    let netmask = service.netmask.to_ne_bytes();
    template.l2 = xvs_common::Neighbour {
        ifindex: controls,
        smac: [netmask[0], netmask[1], netmask[2], netmask[3], 0, 0],
        dmac: [0; 6],
    };
    let key = unsafe { &(*scratch).template_key };
    // Another CPU may have made it first: one template, counted once.
    if XVS_CONNS
        .insert(key, &*template, BPF_NOEXIST as u64)
        .is_ok()
    {
        count_template(new.dest_stats, 1);
        conn::xvs_queue_sweep(key, template.expires, now);
        if is_call_key(key) {
            crate::sip::keep_call_id(key);
        }
    } else if let Some(theirs) = XVS_CONNS.get_ptr_mut(key) {
        add_control(theirs, controls as i32);
    }
    0
}

/// Writes `service`'s [`PersistParams`] (found by `found_by`) if they are not there as
/// they are.
#[inline(always)]
fn keep_params(service: &ServiceValue, found_by: &xvs_common::ServiceKey) {
    let params = PersistParams {
        timeout: service.timeout,
        netmask: service.netmask,
        fwmark: found_by.fwmark,
        port: found_by.port,
        _pad: 0,
    };
    if unsafe { XVS_PERSIST.get(&service.id) } != Some(&params) {
        let _ = XVS_PERSIST.insert(&service.id, &params, 0);
    }
}

/// Adds `delta` to the persistent count of the real server with counter slot `dest_stats`
/// (the low bits of its word: the add leaves the overload flag above them alone, as the
/// count never goes below zero).
#[inline(always)]
pub fn count_template(dest_stats: u32, delta: i32) {
    if let Some(counts) = dest_counts() {
        let field = unsafe { &mut (*counts).of_mut(dest_stats).templates_and_overload as *mut u32 };
        unsafe { atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(field, delta as u32) };
    }
}

#[inline(always)]
fn timeout_ns(service: &ServiceValue) -> u64 {
    service.timeout as u64 * NS_PER_SEC
}

/// A client as a template key is made from: its address, the address and protocol it
/// reached the service by, the family.
struct Client<'a> {
    src: &'a [u8; 16],
    dst: &'a [u8; 16],
    protocol: u8,
    family: u8,
}

/// The template key of `client` for a service of client mask `netmask` (an IPv6 prefix
/// length for IPv6), firewall mark `fwmark` (0: an address service) and port `port`
/// (the VIP's port as the service was found by: 0 for a port-0 service).
#[inline(always)]
fn template_key(key: &mut ConnKey, client: &Client, netmask: u32, fwmark: u32, port: u16) {
    key.src = [0; 16];
    if client.family == FAMILY_V4 {
        let mask = netmask.to_be_bytes();
        for i in 0..4 {
            key.src[i] = client.src[i] & mask[i];
        }
    } else {
        // The IPv6 prefix length, byte by byte.
        let prefix = if netmask > 128 { 128 } else { netmask };
        for i in 0..16 {
            let bits = prefix.saturating_sub(8 * i as u32);
            let mask = if bits >= 8 { 0xff } else { !(0xffu8 >> bits) };
            key.src[i] = client.src[i] & mask;
        }
    }
    key.sport = 0;
    // A port-0 service (every port) keeps one template for all of a client's ports.
    key.dport = port;
    if fwmark == 0 {
        key.dst = *client.dst;
        key.protocol = client.protocol;
    } else {
        // As IPVS: one template per client for every address, port and protocol of the
        // mark (its "virtual address" is the mark, its protocol IP).
        key.dst = [0; 16];
        let mark = fwmark.to_be_bytes();
        key.dst[..4].copy_from_slice(&mark);
        key.protocol = 0;
    }
    key.family = client.family;
    key._pad = [TEMPLATE_KEY, 0];
}

/// With `expire_quiescent_template` on, whether set index `index` of `view` has weight 0
/// (its template is then dropped, as IPVS's `ip_vs_check_template` drops it).
#[inline(always)]
fn expired_quiescent<const N: usize>(view: &View<N>, index: u32) -> bool {
    meta_value(meta::EXPIRE_QUIESCENT_TEMPLATE) != 0
        && view.entry(index).is_some_and(|entry| entry.weight == 0)
}
