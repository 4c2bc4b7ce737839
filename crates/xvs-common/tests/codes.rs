//! Every code the maps carry, pinned: a director that is already running reads the numbers
//! an older xvsadm wrote and an older program was built with, so a code may never move
//! (a changed meaning needs a new `LAYOUT_VERSION`).

use xvs_common::{forward, scheduler, tree_rule, tunnel_checksum, tunnel_type};

#[test]
fn scheduler_codes() {
    let pinned = [
        ("rr", scheduler::RR, 0),
        ("wrr", scheduler::WRR, 1),
        ("lc", scheduler::LC, 2),
        ("wlc", scheduler::WLC, 3),
        ("lblc", scheduler::LBLC, 4),
        ("lblcr", scheduler::LBLCR, 5),
        ("dh", scheduler::DH, 6),
        ("sh", scheduler::SH, 7),
        ("sed", scheduler::SED, 8),
        ("nq", scheduler::NQ, 9),
        ("fo", scheduler::FO, 10),
        ("ovf", scheduler::OVF, 11),
        ("mh", scheduler::MH, 12),
        ("twos", scheduler::TWOS, 13),
    ];
    let moved: Vec<_> = pinned.iter().filter(|(_, code, pin)| code != pin).collect();
    assert!(moved.is_empty(), "scheduler codes moved: {moved:?}");
}

#[test]
fn tree_rules() {
    assert_eq!(
        [
            tree_rule::NONE,
            tree_rule::LC,
            tree_rule::WLC,
            tree_rule::SED,
            tree_rule::NQ,
            tree_rule::FO,
            tree_rule::OVF,
            tree_rule::LOCALITY
        ],
        [0, 1, 2, 3, 4, 5, 6, 7]
    );
}

#[test]
fn forwarding_codes_are_ipvs_conn_flags() {
    // IP_VS_CONN_F_MASQ, _LOCALNODE, _TUNNEL, _DROUTE.
    assert_eq!(
        [
            forward::MASQ,
            forward::LOCAL,
            forward::TUNNEL,
            forward::ROUTE
        ],
        [0, 1, 2, 3]
    );
}

#[test]
fn tunnel_codes() {
    assert_eq!(
        [tunnel_type::IPIP, tunnel_type::GUE, tunnel_type::GRE],
        [0, 1, 2]
    );
    assert_eq!(
        [
            tunnel_checksum::NONE,
            tunnel_checksum::CHECKSUM,
            tunnel_checksum::REMOTE
        ],
        [0, 1, 2]
    );
}
