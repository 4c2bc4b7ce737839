//! The director's state belongs to a network namespace: found again by any later process
//! of that namespace, invisible from others, gone with the namespace.

use xvs_core::{restore, table::Table, text::NoNames};
use xvs_datapath::Director;
use xvs_lab::LabBuilder;

fn table_of(lines: &[&str]) -> Table {
    let mut table = Table::default();
    restore::restore(&lines.join("\n"), &mut table, &NoNames, "xvsadm").unwrap();
    table
}

#[test]
fn state_is_per_namespace_and_outlives_its_creator() {
    let lab = LabBuilder::new().host("a").host("b").build().unwrap();
    let id = lab
        .within("a", || {
            let mut director = Director::find_or_create().unwrap();
            let before = director.load().unwrap();
            let table = table_of(&[
                "-A -t 10.0.0.1:80 -s rr",
                "-a -t 10.0.0.1:80 -r 10.0.1.1 -m -w 3",
            ]);
            director.store(&before, &table).unwrap();
            director.program_id()
        })
        .unwrap();
    // Everything of the first thread (program and map descriptors) is closed now: what
    // follows sees only what the namespace itself holds.
    lab.within("a", || {
        let director = Director::find().unwrap().expect("director still there");
        assert_eq!(director.program_id(), id);
        let table = director.load().unwrap().table;
        assert_eq!(table.services.len(), 1);
        assert_eq!(table.services[0].dests[0].weight, 3);
        // Creating again finds the same one.
        assert_eq!(Director::find_or_create().unwrap().program_id(), id);
    })
    .unwrap();
    lab.within("b", || assert!(Director::find().unwrap().is_none()))
        .unwrap();
    // A second director in b is its own.
    lab.within("b", || {
        let director = Director::find_or_create().unwrap();
        assert_ne!(director.program_id(), id);
        assert!(director.load().unwrap().table.services.is_empty());
    })
    .unwrap();
    lab.within("a", || {
        Director::destroy().unwrap();
        assert!(Director::find().unwrap().is_none());
    })
    .unwrap();
}

#[test]
fn racing_creators_end_with_one_director() {
    let lab = LabBuilder::new().host("a").build().unwrap();
    let ids: Vec<u32> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    lab.within("a", || Director::find_or_create().unwrap().program_id())
                        .unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "{ids:?}");
}

/// The kernel verifies the director each time one is created, and refuses a program whose
/// verification passes a million instructions. A change that makes some path explode (a
/// loop whose bounds the verifier follows step by step, a byte-by-byte copy inside an
/// unrolled loop) shows here long before that limit, and before creation gets slow: on
/// 2026-12-07 twos's walk had taken the count from 266,000 to 618,000 unnoticed (this
/// VM's kernel, 6.18; other kernels count differently, not by much).
#[test]
fn the_director_verifies_within_half_the_verifiers_limit() {
    let lab = LabBuilder::new().host("a").build().unwrap();
    let verified = lab
        .within("a", || {
            Director::find_or_create().unwrap().verified_instructions()
        })
        .unwrap();
    let Some(verified) = verified else {
        eprintln!("skipped: this kernel does not report verified instructions");
        return;
    };
    assert!(
        verified <= 500_000,
        "the director took {verified} verified instructions: docs/DECISIONS.md, \
         \"Verifier budget\", says how to find where they go"
    );
}
