//! The netlink calls xvsd relies on, against a real kernel in a namespace of their own.

use std::{net::IpAddr, sync::mpsc, time::Duration};

use xvs_datapath::netlink::{self, AddressChanges};
use xvs_lab::LabBuilder;

/// `ha_suspend` follows the VIP through [`AddressChanges`]: an address added, then
/// removed, is reported each time.
#[test]
fn address_changes_are_reported_as_they_happen() {
    let lab = LabBuilder::new().host("a").build().unwrap();
    lab.within("a", || {
        let lo = netlink::interfaces()
            .unwrap()
            .into_iter()
            .find(|i| i.name == "lo")
            .unwrap();
        let changes = AddressChanges::subscribe().unwrap();
        let (told, reports) = mpsc::channel();
        std::thread::spawn(move || {
            while changes.wait().is_ok() {
                if told.send(()).is_err() {
                    return;
                }
            }
        });
        let vip: IpAddr = "1.1.1.253".parse().unwrap();
        // At most 30 s: a bound on a hang (no report), not a speed goal.
        let reported = || reports.recv_timeout(Duration::from_secs(30)).is_ok();
        netlink::add_address(lo.index, vip, 32).unwrap();
        assert!(reported(), "the new address was not reported");
        while reports.try_recv().is_ok() {}
        netlink::delete_address(lo.index, vip, 32).unwrap();
        assert!(reported(), "the removed address was not reported");
    })
    .unwrap();
}
