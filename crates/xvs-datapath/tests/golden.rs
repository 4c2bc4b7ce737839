//! Golden-packet tests: real frames through the real director program with
//! BPF_PROG_TEST_RUN, as received on a veth of a lab namespace; verdict, output bytes and
//! counters asserted.

use aya::maps::PerCpuArray;
use etherparse::PacketBuilder;
use xvs_common::{counter, map_names};
use xvs_datapath::{director_program, netlink, objects, test_run};
use xvs_lab::{LabBuilder, end};

const XDP_PASS: u32 = 2;

fn tcp_syn() -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([1, 1, 1, 1], [1, 1, 1, 254], 64)
        .tcp(40000, 80, 1000, 64240)
        .syn();
    let mut frame = Vec::with_capacity(builder.size(0));
    builder.write(&mut frame, &[]).unwrap();
    frame
}

fn eth0_index() -> u32 {
    netlink::interfaces()
        .unwrap()
        .into_iter()
        .find(|i| i.name == "eth0")
        .unwrap()
        .index
}

#[test]
fn a_frame_crosses_the_director_unchanged_and_is_counted() {
    let lab = LabBuilder::new()
        .host("director")
        .host("peer")
        .link(end("director", "eth0", &[]), end("peer", "eth0", &[]))
        .build()
        .unwrap();
    lab.within("director", || {
        let mut ebpf = objects::load_director().expect("load object");
        let frame = tcp_syn();
        let program = director_program(&mut ebpf).expect("program loads and verifies");
        let outcome = test_run::run(program, eth0_index(), &frame).unwrap();
        assert_eq!(outcome.verdict, XDP_PASS);
        assert_eq!(outcome.frame, frame);

        // On lo the director only anchors state: it passes without counting.
        let on_lo = test_run::run(program, 0, &frame).unwrap();
        assert_eq!(on_lo.verdict, XDP_PASS);

        let counters: PerCpuArray<_, u64> =
            PerCpuArray::try_from(ebpf.map(map_names::COUNTERS).unwrap()).unwrap();
        let sum = |index: u32| -> u64 { counters.get(&index, 0).unwrap().iter().sum() };
        assert_eq!(sum(counter::RX_FRAMES), 1);
        assert_eq!(sum(counter::RX_BYTES), frame.len() as u64);
        assert_eq!(sum(counter::MALFORMED), 0);
    })
    .unwrap();
}
