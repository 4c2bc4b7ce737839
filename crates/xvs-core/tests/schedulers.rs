//! Every IPVS scheduler against IPVS's documented behaviour (shared/reference/ipvsadm.md
//! §5): exact sequences and choices, weights over long runs, weight 0 and overloaded
//! servers never chosen, hashing schedulers stable, Maglev's small disruption.

use std::{collections::HashMap, net::IpAddr};

use proptest::prelude::*;
use xvs_core::{
    model::flags,
    sched::{Candidate, Flow, Lblcr, MH_TABLE_SIZE, Mh, Schedule, Scheduler, Sh, new_scheduler},
};

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i)))
}

fn servers(weights: &[u32]) -> Vec<Candidate> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| Candidate::new(ip(100 + i as u32), 80, *w))
        .collect()
}

fn flow(src: u32, dst: u32) -> Flow {
    Flow {
        src: ip(src),
        src_port: 40000,
        dst: ip(dst),
        dst_port: 80,
        now: 0,
    }
}

fn sequence(s: &mut dyn Schedule, dests: &[Candidate], n: usize) -> Vec<Option<usize>> {
    (0..n)
        .map(|i| s.schedule(dests, &flow(i as u32, 1)))
        .collect()
}

fn new(kind: Scheduler, dests: &[Candidate]) -> Box<dyn Schedule> {
    new_scheduler(kind, 0, dests, 7)
}

#[test]
fn rr_walks_the_list_skipping_quiescent_and_overloaded() {
    let mut dests = servers(&[1, 1, 1, 1]);
    dests[1].weight = 0;
    dests[3].overloaded = true;
    let mut rr = new(Scheduler::Rr, &dests);
    assert_eq!(
        sequence(rr.as_mut(), &dests, 5),
        [Some(0), Some(2), Some(0), Some(2), Some(0)]
    );
    let none = servers(&[0, 0]);
    let mut rr = new(Scheduler::Rr, &none);
    assert_eq!(rr.schedule(&none, &flow(1, 1)), None);
}

#[test]
fn rr_continues_after_the_removed_servers_predecessor() {
    let dests = servers(&[1, 1, 1]);
    let mut rr = new(Scheduler::Rr, &dests);
    assert_eq!(sequence(rr.as_mut(), &dests, 2), [Some(0), Some(1)]);
    // Server 1 (the cursor) leaves: the next choice is the one after its predecessor.
    let fewer = vec![dests[0], dests[2]];
    rr.update(&fewer);
    assert_eq!(rr.schedule(&fewer, &flow(0, 1)), Some(1));
}

#[test]
fn wrr_follows_ipvs_sequence() {
    // List order C(2), B(3), A(4): IPVS gives A B A C B A C B A, repeating.
    let dests = servers(&[2, 3, 4]);
    let mut wrr = new(Scheduler::Wrr, &dests);
    let names = |v: Vec<Option<usize>>| -> String {
        v.into_iter().map(|i| ["C", "B", "A"][i.unwrap()]).collect()
    };
    assert_eq!(
        names(sequence(wrr.as_mut(), &dests, 18)),
        "ABACBACBAABACBACBA"
    );
    // The gcd steps: weights 2, 4, 6 behave as 1, 2, 3.
    let scaled = servers(&[2, 4, 6]);
    let mut a = new(Scheduler::Wrr, &scaled);
    let small = servers(&[1, 2, 3]);
    let mut b = new(Scheduler::Wrr, &small);
    assert_eq!(
        sequence(a.as_mut(), &scaled, 12),
        sequence(b.as_mut(), &small, 12)
    );
    // Nothing available: no choice.
    let mut all_over = servers(&[1, 2]);
    all_over.iter_mut().for_each(|d| d.overloaded = true);
    let mut wrr = new(Scheduler::Wrr, &all_over);
    assert_eq!(wrr.schedule(&all_over, &flow(1, 1)), None);
}

#[test]
fn least_connection_family_choices() {
    let mut dests = servers(&[1, 2, 3]);
    for (d, (active, inactive)) in dests.iter_mut().zip([(1, 0), (2, 0), (3, 0)]) {
        d.active = active;
        d.inactive = inactive;
    }
    // The seed's SED example: (1+1)/1, (2+1)/2, (3+1)/3 -> the third.
    assert_eq!(
        new(Scheduler::Sed, &dests).schedule(&dests, &flow(1, 1)),
        Some(2)
    );
    // WLC: 256/1, 512/2, 768/3 all equal -> the first.
    assert_eq!(
        new(Scheduler::Wlc, &dests).schedule(&dests, &flow(1, 1)),
        Some(0)
    );
    // LC ignores weights: the fewest connections.
    assert_eq!(
        new(Scheduler::Lc, &dests).schedule(&dests, &flow(1, 1)),
        Some(0)
    );
    // NQ: an idle server goes first, whatever its weight.
    let mut idle = dests.clone();
    idle[1].active = 0;
    assert_eq!(
        new(Scheduler::Nq, &idle).schedule(&idle, &flow(1, 1)),
        Some(1)
    );
    // Inactive connections weigh 1/256 of an active one.
    let mut wlc = servers(&[1, 1]);
    wlc[0].inactive = 255;
    wlc[1].active = 1;
    assert_eq!(
        new(Scheduler::Wlc, &wlc).schedule(&wlc, &flow(1, 1)),
        Some(0)
    );
    wlc[0].inactive = 257;
    assert_eq!(
        new(Scheduler::Wlc, &wlc).schedule(&wlc, &flow(1, 1)),
        Some(1)
    );
}

#[test]
fn failover_and_overflow() {
    let mut dests = servers(&[5, 9, 9, 2]);
    assert_eq!(
        new(Scheduler::Fo, &dests).schedule(&dests, &flow(1, 1)),
        Some(1)
    );
    dests[1].overloaded = true;
    assert_eq!(
        new(Scheduler::Fo, &dests).schedule(&dests, &flow(1, 1)),
        Some(2)
    );
    // OVF: the heaviest whose active connections do not exceed its weight.
    let mut ovf = servers(&[5, 9, 2]);
    ovf[1].active = 10;
    assert_eq!(
        new(Scheduler::Ovf, &ovf).schedule(&ovf, &flow(1, 1)),
        Some(0)
    );
    ovf[0].active = 6;
    assert_eq!(
        new(Scheduler::Ovf, &ovf).schedule(&ovf, &flow(1, 1)),
        Some(2)
    );
    ovf[2].active = 3;
    assert_eq!(new(Scheduler::Ovf, &ovf).schedule(&ovf, &flow(1, 1)), None);
}

#[test]
fn source_hashing_buckets_follow_weights_and_fall_back() {
    let dests = servers(&[1, 3]);
    let mut sh = Sh::new(false, false);
    sh.update(&dests);
    let count = |i| sh.buckets().iter().filter(|b| **b == Some(i)).count();
    // Dealt 1, 3, 1, 3, …: 64 rounds of 4 buckets.
    assert_eq!((count(0), count(1)), (64, 192));
    // Same source, same server; another port does not matter without sh-port.
    let a = sh.schedule(&dests, &flow(7, 1));
    assert_eq!(a, sh.schedule(&dests, &flow(7, 2)));
    // Without fallback a quiesced server's clients get nothing; with it, another server.
    let mut quiet = dests.clone();
    let home = a.unwrap();
    quiet[home].weight = 0;
    assert_eq!(sh.schedule(&quiet, &flow(7, 1)), None);
    let mut fallback = new_scheduler(Scheduler::Sh, flags::FALLBACK, &dests, 1);
    assert_eq!(fallback.schedule(&quiet, &flow(7, 1)), Some(1 - home));
}

#[test]
fn destination_hashing_deals_one_bucket_each_and_sticks() {
    let dests = servers(&[1, 5, 1]);
    let mut dh = new(Scheduler::Dh, &dests);
    let mut seen = HashMap::new();
    for dst in 0..2000 {
        let chosen = dh.schedule(&dests, &flow(1, dst)).unwrap();
        assert_eq!(
            dh.schedule(&dests, &flow(99, dst)),
            Some(chosen),
            "by destination only"
        );
        *seen.entry(chosen).or_insert(0) += 1;
    }
    // Weights are ignored: every server gets a share.
    assert_eq!(seen.len(), 3);
}

#[test]
fn maglev_fills_its_table_by_weight_and_moves_few_keys() {
    let dests = servers(&[1, 1, 2]);
    let mut mh = Mh::new(false, false);
    mh.update(&dests);
    let slots = |i| mh.lookup().iter().filter(|s| **s == Some(i)).count();
    assert_eq!(slots(0) + slots(1) + slots(2), MH_TABLE_SIZE);
    // Turns per round are 1, 1, 2: exactly the weights' shares, give or take a round.
    assert!(
        (slots(2) as i64 - 2 * slots(0) as i64).abs() <= 2,
        "{} {}",
        slots(0),
        slots(2)
    );

    // One of ten equal servers leaves: only its keys should move (ideal: 10%).
    let ten = servers(&[1; 10]);
    let mut before = Mh::new(false, false);
    before.update(&ten);
    let nine: Vec<Candidate> = ten[..9].to_vec();
    let mut after = Mh::new(false, false);
    after.update(&nine);
    let keys = 100_000u32;
    let mut moved = 0;
    let mut moved_from_staying = 0;
    for src in 0..keys {
        let f = flow(src * 7919, 1);
        let a = before.schedule(&ten, &f).unwrap();
        let b = after.schedule(&nine, &f).unwrap();
        if ten[a].addr != nine[b].addr {
            moved += 1;
            if a != 9 {
                moved_from_staying += 1;
            }
        }
    }
    let share = f64::from(moved) / f64::from(keys);
    let collateral = f64::from(moved_from_staying) / f64::from(keys);
    println!(
        "mh: one of 10 servers left: {:.2}% of keys moved ({:.2}% from staying servers)",
        share * 100.0,
        collateral * 100.0
    );
    assert!(share < 0.13, "moved {share}");
    assert!(collateral < 0.03, "collateral {collateral}");
}

#[test]
fn lblc_keeps_a_destination_on_its_server_until_it_is_overloaded() {
    let mut dests = servers(&[2, 2]);
    let mut lblc = new(Scheduler::Lblc, &dests);
    let first = lblc.schedule(&dests, &flow(1, 50)).unwrap();
    // Load the first server: the other would now win under wlc, but locality sticks.
    dests[first].active = 2;
    assert_eq!(lblc.schedule(&dests, &flow(2, 50)), Some(first));
    // More active than its weight while the other is under half its weight: move.
    dests[first].active = 3;
    assert_eq!(lblc.schedule(&dests, &flow(3, 50)), Some(1 - first));
    assert_eq!(
        lblc.schedule(&dests, &flow(4, 50)),
        Some(1 - first),
        "reassigned"
    );
}

#[test]
fn lblcr_grows_a_set_when_its_server_is_overloaded() {
    let mut dests = servers(&[2, 2]);
    let mut lblcr = Lblcr::default();
    let dst = ip(50);
    let first = lblcr.schedule(&dests, &flow(1, 50)).unwrap();
    dests[first].active = 3;
    let second = lblcr.schedule(&dests, &flow(2, 50)).unwrap();
    assert_ne!(first, second);
    assert_eq!(lblcr.members(&dst).len(), 2);
}

#[test]
fn weight_shares_over_long_runs() {
    // Connections that end after a while: the least-connection family balances
    // active connections in proportion to weights; rr-family deals in proportion exactly.
    let weights = [1u32, 2, 3];
    for kind in [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Wlc,
        Scheduler::Sed,
        Scheduler::Twos,
    ] {
        let mut dests = servers(&weights);
        let mut s = new(kind, &dests);
        let mut open: Vec<usize> = Vec::new();
        let mut counts = [0u32; 3];
        for i in 0..60_000u32 {
            let chosen = s.schedule(&dests, &flow(i, 1)).unwrap();
            counts[chosen] += 1;
            dests[chosen].active += 1;
            open.push(chosen);
            if open.len() > 60 {
                let done = open.remove(0);
                dests[done].active -= 1;
            }
        }
        let total: u32 = counts.iter().sum();
        let shares: Vec<f64> = counts
            .iter()
            .map(|c| f64::from(*c) / f64::from(total))
            .collect();
        if kind == Scheduler::Rr {
            assert!(
                shares.iter().all(|s| (s - 1.0 / 3.0).abs() < 0.01),
                "rr {shares:?}"
            );
        } else {
            for (share, w) in shares.iter().zip(weights) {
                let want = f64::from(w) / 6.0;
                assert!((share - want).abs() < 0.05, "{kind}: {shares:?}");
            }
        }
    }
}

fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
    proptest::collection::vec((0u32..4, 0u32..5, 0u32..300, any::<bool>()), 1..7).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (weight, active, inactive, overloaded))| Candidate {
                addr: ip(200 + i as u32),
                port: 80,
                weight,
                last_weight: weight.max(1),
                active,
                inactive,
                overloaded,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn quiescent_and_overloaded_servers_never_get_new_connections(
        dests in candidates(),
        flags in 0u32..4,
        sources in proptest::collection::vec(any::<u32>(), 1..20),
    ) {
        for kind in Scheduler::ALL {
            let mut s = new_scheduler(kind, flags << 3, &dests, 3);
            for src in &sources {
                if let Some(i) = s.schedule(&dests, &flow(*src, *src % 7)) {
                    prop_assert!(dests[i].weight > 0, "{kind} chose a quiescent server");
                    // lblc keeps a destination on its server by its own overload rule and
                    // does not look at the OVERLOAD flag there (as IPVS).
                    if kind != Scheduler::Lblc {
                        prop_assert!(!dests[i].overloaded, "{kind} chose an overloaded server");
                    }
                }
            }
        }
    }

    #[test]
    fn hashing_schedulers_map_keys_stably(dests in candidates(), src in any::<u32>()) {
        for kind in [Scheduler::Sh, Scheduler::Dh, Scheduler::Mh] {
            let mut a = new_scheduler(kind, 0, &dests, 1);
            let mut b = new_scheduler(kind, 0, &dests, 2);
            let f = flow(src, src.rotate_left(7));
            prop_assert_eq!(a.schedule(&dests, &f), b.schedule(&dests, &f));
            prop_assert_eq!(a.schedule(&dests, &f), a.schedule(&dests, &f));
        }
    }
}

#[test]
fn wrr_cycle_is_one_period_of_the_sequence() {
    use xvs_core::sched::Wrr;
    let dests = servers(&[2, 3, 4]);
    let cycle = Wrr::cycle(&dests);
    assert_eq!(cycle, [2, 1, 2, 0, 1, 2, 0, 1, 2]);
    let mut wrr = new(Scheduler::Wrr, &dests);
    let run: Vec<usize> = sequence(wrr.as_mut(), &dests, 27)
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(run, cycle.repeat(3));
    assert!(Wrr::cycle(&servers(&[0, 0])).is_empty());
}
