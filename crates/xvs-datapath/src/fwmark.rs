//! The fwmark loop: how packets marked by the operator's netfilter rules reach the
//! director, which runs in XDP, before netfilter, and sees no mark.
//!
//! While the table has fwmark services, the namespace holds a veth pair `xvsfw0`/`xvsfw1`,
//! a routing table ([`TABLE`]) whose default route leaves by `xvsfw0`, and one policy rule
//! per mark in use (`fwmark M lookup TABLE`, priority 0). A packet that no address service
//! claimed at its interface's XDP goes into the kernel, is marked by the operator's mangle
//! rules, and is routed by that rule into the loop. A TC egress program on `xvsfw0`
//! (`xvs-ebpf/src/mark.rs`) writes its mark into the destination MAC; the director on
//! `xvsfw1` reads it there (only there: the meta map names the interface), schedules the
//! connection in the fwmark service, and sends the packet on. Its connection entry is keyed
//! like any other, so the flow's later packets are claimed at the interface they arrive on
//! and never take the loop again.
//!
//! The price: the kernel's `local` rule (priority 0) would deliver a packet for a local VIP
//! before any fwmark rule is consulted, so xvs moves it to priority [`LOCAL_MOVED`] while
//! the loop exists (only xvs's own mark rules come before it), and puts it back with the
//! loop. The kernel forwards the packet into the loop, so forwarding is turned on for the
//! families that have fwmark services. The design and its cost: docs/DECISIONS.md.

use std::collections::BTreeSet;

use aya::programs::{
    SchedClassifier,
    tc::{self, NlOptions, TcAttachOptions, TcAttachType},
};
use xvs_common::meta;
use xvs_core::model::Family;

use crate::{Director, Error, Result, netlink, objects};

/// The loop's outer end: the routing table's default route leaves by it.
pub const OUTER: &str = "xvsfw0";
/// The loop's inner end, where the director reads the marks.
pub const INNER: &str = "xvsfw1";
/// The routing table of the loop ("xv").
pub const TABLE: u32 = 0x7876;
/// Where the kernel's `local` rule goes while the loop exists.
pub const LOCAL_MOVED: u32 = 1;
/// The loop's MTU: as large as a veth takes, so that the loop never fragments.
const MTU: u32 = 65_535;

/// The families a fwmark is used in, and the marks.
pub type Marks = BTreeSet<(u32, Family)>;

fn af(family: Family) -> u8 {
    match family {
        Family::V4 => libc::AF_INET as u8,
        Family::V6 => libc::AF_INET6 as u8,
    }
}

fn fail(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::new(format!("fwmark services: cannot {what}"), e)
}

impl Director {
    /// Makes the fwmark loop match `marks`: sets it up or changes its rules while there are
    /// marks, takes it down (rules, the moved `local` rule, the veth pair) when there are
    /// none. Costs one interface listing when there are none and never were.
    pub fn sync_fwmark_loop(&mut self, marks: &Marks) -> Result<()> {
        let interfaces = netlink::interfaces().map_err(fail("list interfaces"))?;
        let outer = interfaces.iter().find(|i| i.name == OUTER).map(|i| i.index);
        if marks.is_empty() {
            if outer.is_none() && self.meta(meta::FWMARK_LOOP)? == 0 {
                return Ok(());
            }
            for family in [Family::V4, Family::V6] {
                sync_rules(family, &BTreeSet::new())?;
            }
            if let Some(index) = outer {
                netlink::delete_link(index).map_err(fail("delete the loop"))?;
            }
            return self.set_meta(meta::FWMARK_LOOP, 0);
        }
        for family in [Family::V4, Family::V6] {
            if marks.iter().any(|(_, f)| *f == family) {
                enable_forwarding(family)?;
            }
        }
        if outer.is_none() {
            create_loop()?;
        }
        let interfaces = netlink::interfaces().map_err(fail("list interfaces"))?;
        let (Some(outer), Some(inner)) = (
            interfaces.iter().find(|i| i.name == OUTER),
            interfaces.iter().find(|i| i.name == INNER),
        ) else {
            return Err(Error::plain(format!(
                "fwmark services: {OUTER} or {INNER} is missing (delete the other with `ip link del`)"
            )));
        };
        self.attach_interface(inner)?;
        if self.meta(meta::FWMARK_LOOP)? != inner.index as u64 {
            self.set_meta(meta::FWMARK_LOOP, inner.index as u64)?;
        }
        for family in [Family::V4, Family::V6] {
            let wanted: BTreeSet<u32> = marks
                .iter()
                .filter(|(_, f)| *f == family)
                .map(|(mark, _)| *mark)
                .collect();
            if !wanted.is_empty() {
                netlink::replace_default_route(af(family), outer.index, TABLE)
                    .map_err(fail("route into the loop"))?;
            }
            sync_rules(family, &wanted)?;
        }
        Ok(())
    }
}

/// Creates the veth pair with the marking program on its outer end; on any failure takes
/// it away again, so that the next attempt starts afresh.
fn create_loop() -> Result<()> {
    netlink::add_veth(OUTER, INNER, MTU).map_err(fail("create the loop"))?;
    let finish = || -> Result<()> {
        let interfaces = netlink::interfaces().map_err(fail("list interfaces"))?;
        for interface in &interfaces {
            if interface.name == OUTER || interface.name == INNER {
                // The outer end resolves no neighbours: its frames all go to the inner end.
                netlink::set_link_up(interface.index, interface.name == OUTER)
                    .map_err(fail("bring the loop up"))?;
            }
        }
        attach_marker()
    };
    finish().inspect_err(|_| {
        if let Ok(interfaces) = netlink::interfaces()
            && let Some(outer) = interfaces.iter().find(|i| i.name == OUTER)
        {
            let _ = netlink::delete_link(outer.index);
        }
    })
}

/// Loads the marking program and attaches it to the outer end's egress through netlink,
/// so that it stays with the interface when this process ends.
fn attach_marker() -> Result<()> {
    let mut ebpf = aya::Ebpf::load(objects::MARK)
        .map_err(|e| Error::new("cannot load the fwmark marker object", e))?;
    let program: &mut SchedClassifier = ebpf
        .program_mut("xvs_mark")
        .ok_or_else(|| Error::plain("the embedded object has no fwmark marker"))?
        .try_into()
        .map_err(|e| Error::new("the fwmark marker is not a TC program", e))?;
    program
        .load()
        .map_err(|e| Error::new("the kernel refused the fwmark marker", e))?;
    // A fresh veth has no clsact qdisc; one left behind is fine too.
    let _ = tc::qdisc_add_clsact(OUTER);
    let link = program
        .attach_with_options(
            OUTER,
            TcAttachType::Egress,
            TcAttachOptions::Netlink(NlOptions::default()),
        )
        .map_err(|e| Error::new(format!("cannot attach the fwmark marker to {OUTER}"), e))?;
    let link = program
        .take_link(link)
        .map_err(|e| Error::new("cannot keep the fwmark marker attached", e))?;
    // Dropping the link would detach it: the filter holds the program from now on.
    std::mem::forget(link);
    Ok(())
}

/// Makes xvs's mark rules of `family` exactly `wanted`, moving the `local` rule behind
/// them while there are any and back to priority 0 when there are none.
fn sync_rules(family: Family, wanted: &BTreeSet<u32>) -> Result<()> {
    let family = af(family);
    let rules = netlink::rules(family).map_err(fail("list the routing rules"))?;
    let local = |priority: u32| netlink::Rule {
        priority,
        table: netlink::TABLE_LOCAL,
        fwmark: None,
        other_selectors: false,
    };
    let has = |rule: &netlink::Rule| rules.contains(rule);
    if !wanted.is_empty() && has(&local(0)) {
        // Added behind first, then removed in front: local delivery never stops.
        if !has(&local(LOCAL_MOVED)) {
            netlink::change_rule(true, family, &local(LOCAL_MOVED))
                .map_err(fail("move the local rule"))?;
        }
        netlink::change_rule(false, family, &local(0)).map_err(fail("move the local rule"))?;
    }
    for rule in rules
        .iter()
        .filter(|r| r.table == TABLE && !r.other_selectors)
    {
        if !rule.fwmark.is_some_and(|mark| wanted.contains(&mark)) {
            netlink::change_rule(false, family, rule).map_err(fail("delete a mark rule"))?;
        }
    }
    for &mark in wanted {
        let rule = netlink::Rule {
            priority: 0,
            table: TABLE,
            fwmark: Some(mark),
            other_selectors: false,
        };
        if !has(&rule) {
            netlink::change_rule(true, family, &rule).map_err(fail("add a mark rule"))?;
        }
    }
    if wanted.is_empty() && has(&local(LOCAL_MOVED)) && !has(&local(0)) {
        netlink::change_rule(true, family, &local(0)).map_err(fail("restore the local rule"))?;
        netlink::change_rule(false, family, &local(LOCAL_MOVED))
            .map_err(fail("restore the local rule"))?;
    }
    Ok(())
}

/// Turns forwarding on for `family`: the kernel forwards marked packets into the loop.
fn enable_forwarding(family: Family) -> Result<()> {
    let path = match family {
        Family::V4 => "/proc/sys/net/ipv4/conf/all/forwarding",
        Family::V6 => "/proc/sys/net/ipv6/conf/all/forwarding",
    };
    crate::neighbours::switch_on(path).map_err(|e| Error::new(format!("cannot turn on {path}"), e))
}

/// The marks of the fwmark services in `table`.
pub fn marks_of(table: &xvs_core::table::Table) -> Marks {
    table
        .services
        .iter()
        .filter_map(|service| match service.key {
            xvs_core::model::ServiceKey::Fwmark { mark, family } => Some((mark, family)),
            _ => None,
        })
        .collect()
}
