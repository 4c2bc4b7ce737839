//! Labs build what they describe and leave nothing behind, even when a test panics.

use std::path::Path;

use xvs_lab::{LabBuilder, ServerKind, end, topology};

fn namespace_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn a_lab_is_removed_when_dropped_even_after_a_panic() {
    let mut names = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = LabBuilder::new().host("a").host("b").build().unwrap();
        names = lab.hosts().iter().map(|h| lab.namespace(h)).collect();
        assert!(names.iter().all(|n| namespace_exists(n)));
        panic!("a failing test");
    }));
    assert!(result.is_err());
    assert_eq!(names.len(), 2);
    assert!(
        names.iter().all(|n| !namespace_exists(n)),
        "{names:?} left behind"
    );
}

#[test]
fn two_labs_of_the_same_topology_live_side_by_side() {
    let one = topology::dr().build().unwrap();
    let two = topology::dr().build().unwrap();
    assert_ne!(one.namespace("client"), two.namespace("client"));
    for lab in [&one, &two] {
        lab.run_ok("client", &["ping", "-c", "1", "-W", "5", "1.1.1.10"])
            .unwrap();
    }
}

#[test]
fn servers_answer_and_stop() {
    let mut lab = LabBuilder::new()
        .host("client")
        .host("server")
        .link(
            end("client", "eth0", &["10.9.0.1/24"]),
            end("server", "eth0", &["10.9.0.2/24"]),
        )
        .build()
        .unwrap();
    lab.serve("server", 80, ServerKind::Http("srv".into()))
        .unwrap();
    lab.serve("server", 7, ServerKind::Echo).unwrap();
    lab.serve("server", 9, ServerKind::Sink).unwrap();
    lab.serve("server", 53, ServerKind::UdpName("srv".into()))
        .unwrap();
    let page = lab
        .run_ok(
            "client",
            &["curl", "-s", "--max-time", "5", "http://10.9.0.2/"],
        )
        .unwrap();
    assert_eq!(page, "srv\n");
    let raw = lab
        .run(
            "client",
            &[
                "curl",
                "-s",
                "--max-time",
                "5",
                "http://10.9.0.2/bytes/70000",
            ],
        )
        .unwrap();
    assert_eq!(raw.stdout, xvs_lab::pattern(70000));
    let echoed = lab
        .run_ok(
            "client",
            &["sh", "-c", "printf hello | socat -t 5 - TCP:10.9.0.2:7"],
        )
        .unwrap();
    assert_eq!(echoed, "hello");
    let counted = lab
        .run_ok(
            "client",
            &[
                "sh",
                "-c",
                "head -c 123456 /dev/zero | socat -t 5 - TCP:10.9.0.2:9",
            ],
        )
        .unwrap();
    assert_eq!(counted, "123456\n");
    let named = lab
        .run_ok(
            "client",
            &["sh", "-c", "printf q | socat -t 2 - UDP:10.9.0.2:53"],
        )
        .unwrap();
    assert_eq!(named, "srv\n");

    lab.stop_servers("server");
    let refused = lab
        .run(
            "client",
            &["curl", "-s", "--max-time", "5", "http://10.9.0.2/"],
        )
        .unwrap();
    assert!(!refused.status.success());
}
