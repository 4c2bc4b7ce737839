//! The table the config and the real servers' health ask for, as ipvsadm rules: each
//! service xvsd owns is defined again from the config, with its up real servers (and,
//! with `inhibit_on_failure`, its down ones at weight 0). Services the config does not
//! name are left alone. The rules are applied to a copy of the table read from the
//! kernel, so the datapath's plan writes only what differs: an unchanged service keeps
//! its entries, ids, connections and counters.

use xvs_core::table::Table;

use crate::{
    config::{Config, ServiceConfig},
    state::{State, find},
};

/// The rules that turn `table` into what `config` and `state` ask for. Services of
/// `previous` (the config before a reload) that `config` no longer names are deleted.
/// `now` (on the clock `state` was fed with) decides which kept servers have drained.
pub fn rules(
    config: &Config,
    previous: Option<&Config>,
    state: &State,
    table: &Table,
    now: std::time::Duration,
) -> String {
    let mut out = String::new();
    if let Some(timeouts) = &config.timeouts {
        out.push_str(&timeouts.set_command());
        out.push('\n');
    }
    let named = |s: &ServiceConfig| {
        config
            .services
            .iter()
            .any(|c| c.service_key() == s.service_key())
    };
    for gone in previous.iter().flat_map(|p| &p.services) {
        if !named(gone) && find(table, gone).is_some() {
            out.push_str(&format!("-D {}\n", gone.key()));
        }
    }
    for (i, (service, health)) in config.services.iter().zip(&state.services).enumerate() {
        let key = service.key();
        if find(table, service).is_some() {
            out.push_str(&format!("-D {key}\n"));
        }
        out.push_str(&service.add_command());
        out.push('\n');
        for laddr in &service.local_addresses {
            out.push_str(&format!("-P {key} -z {laddr}\n"));
        }
        // While the quorum is lost the sorry server alone takes new connections
        // (keepalived never mixes it with real servers; inhibited ones stay at 0).
        let sorry = service.sorry_server.filter(|_| !health.quorum_up);
        for (j, (rs, server)) in service.real_servers.iter().zip(&health.servers).enumerate() {
            // Kept at weight 0 (keepalived's inhibit_on_failure) until drained.
            let kept = service.keeps(rs) && !state.drained(config, i, j, now);
            let weight = match (server.is_up() && sorry.is_none(), kept) {
                (true, _) => server.weight,
                (false, true) => 0,
                (false, false) => continue,
            };
            out.push_str(&service.server_command(Some(rs), weight));
            out.push('\n');
        }
        // With sorry_server_inhibit it stays at weight 0 while the quorum holds.
        let sorry_weight = match sorry {
            Some(_) => Some(1),
            None if service.sorry_server_inhibit && service.sorry_server.is_some() => Some(0),
            None => None,
        };
        if let Some(weight) = sorry_weight {
            out.push_str(&service.server_command(None, weight));
            out.push('\n');
        }
    }
    out
}

/// The rules that delete `config`'s services from `table` (`on_stop = "remove"`); the
/// others stay.
pub fn release(config: &Config, table: &Table) -> String {
    config
        .services
        .iter()
        .filter(|service| find(table, service).is_some())
        .map(|service| format!("-D {}\n", service.key()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use xvs_core::{restore::restore, text::NoNames};

    const CONFIG: &str = r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"
[[service.real_server]]
address = "192.168.1.10:80"
[[service.real_server]]
address = "192.168.1.20:80"
weight = 2
"#;

    fn apply(config: &Config, table: &Table, down: Option<&str>) -> Table {
        let mut state = State::new(config, &Table::default());
        for (rs, server) in config.services[0]
            .real_servers
            .iter()
            .zip(&mut state.services[0].servers)
        {
            let up = Some(rs.address.to_string().as_str()) != down;
            for check in &mut server.checks {
                *check = crate::health::Health::new(up, 1, 1);
            }
        }
        let text = rules(config, None, &state, table, Duration::ZERO);
        let mut next = table.clone();
        restore(&text, &mut next, &NoNames, "xvsd").unwrap();
        next
    }

    #[test]
    fn the_config_s_timeouts_are_set_and_the_others_kept() {
        let config = Config::parse(&format!("[timeouts]\ntcp = 7200\nudp = 60\n{CONFIG}")).unwrap();
        let mut table = Table::default();
        restore("--set 0 30 0", &mut table, &NoNames, "x").unwrap();
        let timeouts = apply(&config, &table, None).timeouts;
        assert_eq!(
            (timeouts.tcp, timeouts.tcp_fin, timeouts.udp),
            (7200, 30, 60)
        );
    }

    #[test]
    fn a_down_server_leaves_and_comes_back_and_other_services_stay() {
        let config = Config::parse(CONFIG).unwrap();
        let mut table = Table::default();
        restore("-A -u 10.0.0.1:53 -s rr", &mut table, &NoNames, "x").unwrap();
        let all = apply(&config, &table, None);
        let saved = |t: &Table| xvs_core::listing::save(t, true, &NoNames);
        assert_eq!(
            saved(&all),
            "-A -t 1.1.1.254:80 -s rr\n-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m -w 1\n-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m -w 2\n-A -u 10.0.0.1:53 -s rr\n"
        );
        let without = apply(&config, &all, Some("192.168.1.20:80"));
        assert!(!saved(&without).contains("192.168.1.20"));
        assert!(
            saved(&without).contains("-A -u 10.0.0.1:53"),
            "not ours: kept"
        );
        assert_eq!(saved(&apply(&config, &without, None)), saved(&all));
    }

    /// A FULLNAT service from the config: `-b` real servers and its local addresses; one
    /// without local addresses is refused whole.
    #[test]
    fn a_fullnat_service_brings_its_local_addresses() {
        let fullnat = CONFIG.replace(
            "method = \"nat\"",
            "method = \"fullnat\"\nlocal_addresses = [\"10.0.0.253\", \"10.0.0.252\"]",
        );
        let config = Config::parse(&fullnat).unwrap();
        let table = apply(&config, &Table::default(), None);
        assert_eq!(
            xvs_core::listing::save(&table, true, &NoNames),
            "-A -t 1.1.1.254:80 -s rr\n-a -t 1.1.1.254:80 -r 192.168.1.10:80 -b -w 1\n-a -t 1.1.1.254:80 -r 192.168.1.20:80 -b -w 2\n-P -t 1.1.1.254:80 -z 10.0.0.253\n-P -t 1.1.1.254:80 -z 10.0.0.252\n"
        );
        let again = apply(&config, &table, None);
        assert_eq!(again, table, "applied again, nothing changes");
        let e =
            Config::parse(&CONFIG.replace("method = \"nat\"", "method = \"fullnat\"")).unwrap_err();
        assert!(
            e.contains("fullnat real servers need the service's local_addresses"),
            "{e}"
        );
    }

    /// `proxy_protocol = "v2"` reaches the service; refused whole with a server that is
    /// not FULLNAT.
    #[test]
    fn a_fullnat_service_may_send_the_proxy_protocol() {
        let fullnat = CONFIG.replace(
            "method = \"nat\"",
            "method = \"fullnat\"\nlocal_addresses = [\"10.0.0.253\"]\nproxy_protocol = \"v2\"",
        );
        let config = Config::parse(&fullnat).unwrap();
        let table = apply(&config, &Table::default(), None);
        let saved = xvs_core::listing::save(&table, true, &NoNames);
        assert!(
            saved.starts_with("-A -t 1.1.1.254:80 -s rr --proxy-protocol v2\n"),
            "{saved}"
        );
        let e = Config::parse(&CONFIG.replace(
            "method = \"nat\"",
            "method = \"nat\"\nproxy_protocol = \"v2\"",
        ))
        .unwrap_err();
        assert!(
            e.contains("proxy_protocol is sent on FULLNAT connections only"),
            "{e}"
        );
    }

    #[test]
    fn inhibit_on_failure_keeps_a_down_server_at_weight_zero() {
        let config = Config::parse(&CONFIG.replace(
            "method = \"nat\"",
            "method = \"nat\"\ninhibit_on_failure = true",
        ))
        .unwrap();
        let table = apply(&config, &Table::default(), Some("192.168.1.10:80"));
        assert!(
            xvs_core::listing::save(&table, true, &NoNames).contains("-r 192.168.1.10:80 -m -w 0")
        );
    }

    /// keepalived's `inhibit_on_failure` given in a `real_server`: over the service's.
    #[test]
    fn inhibit_on_failure_per_real_server() {
        let kept_one = CONFIG.replace(
            "address = \"192.168.1.10:80\"",
            "address = \"192.168.1.10:80\"\ninhibit_on_failure = true",
        );
        // The table `text`'s config makes with the server `down` failed.
        let saved = |text: &str, down| {
            let config = Config::parse(text).unwrap();
            let table = apply(&config, &Table::default(), Some(down));
            xvs_core::listing::save(&table, true, &NoNames)
        };
        assert!(saved(&kept_one, "192.168.1.10:80").contains("-r 192.168.1.10:80 -m -w 0"));
        assert!(
            !saved(&kept_one, "192.168.1.20:80").contains("192.168.1.20"),
            "the service's: removed"
        );
        let removed_one = CONFIG
            .replace(
                "method = \"nat\"",
                "method = \"nat\"\ninhibit_on_failure = true",
            )
            .replace(
                "address = \"192.168.1.10:80\"",
                "address = \"192.168.1.10:80\"\ninhibit_on_failure = false",
            );
        assert!(!saved(&removed_one, "192.168.1.10:80").contains("192.168.1.10"));
        assert!(saved(&removed_one, "192.168.1.20:80").contains("-r 192.168.1.20:80 -m -w 0"));
    }

    #[test]
    fn a_kept_server_stays_at_weight_zero_until_it_has_drained() {
        let config = Config::parse(&CONFIG.replace(
            "method = \"nat\"",
            "method = \"nat\"\non_failure = \"keep\"\ndrain = 30",
        ))
        .unwrap();
        let mut state = State::new(&config, &Table::default());
        let at = Duration::from_secs;
        state.observe(
            &config,
            0,
            1,
            0,
            crate::health::Outcome::Failure,
            None,
            at(100),
        );
        let table = |now| {
            let mut table = Table::default();
            restore(
                &rules(&config, None, &state, &table.clone(), now),
                &mut table,
                &NoNames,
                "x",
            )
            .unwrap();
            xvs_core::listing::save(&table, true, &NoNames)
        };
        assert!(table(at(129)).contains("-r 192.168.1.20:80 -m -w 0"));
        assert!(!table(at(130)).contains("192.168.1.20"), "drained: removed");
        assert!(!state.drain_ended(&config, at(100), at(129)));
        assert!(state.drain_ended(&config, at(129), at(131)));
        assert!(
            Config::parse(&CONFIG.replace("method = \"nat\"", "method = \"nat\"\ndrain = 5"))
                .unwrap_err()
                .contains("drain needs on_failure")
        );
    }

    #[test]
    fn the_sorry_server_alone_while_the_quorum_is_lost_and_removed_services_go() {
        let config = Config::parse(&CONFIG.replace(
            "method = \"nat\"",
            "method = \"nat\"\nsorry_server = \"192.168.1.99:80\"",
        ))
        .unwrap();
        let mut state = State::new(&config, &Table::default());
        let fail = crate::health::Outcome::Failure;
        state.observe(&config, 0, 0, 0, fail, None, Duration::ZERO);
        state.observe(&config, 0, 1, 0, fail, None, Duration::ZERO);
        assert!(!state.services[0].quorum_up);
        let mut table = Table::default();
        restore(
            &rules(&config, None, &state, &table, Duration::ZERO),
            &mut table,
            &NoNames,
            "x",
        )
        .unwrap();
        let saved = xvs_core::listing::save(&table, true, &NoNames);
        assert_eq!(
            saved,
            "-A -t 1.1.1.254:80 -s rr\n-a -t 1.1.1.254:80 -r 192.168.1.99:80 -m -w 1\n"
        );
        // A reload to a config without the service deletes it.
        let empty = Config::parse("").unwrap();
        let text = rules(
            &empty,
            Some(&config),
            &State::new(&empty, &table),
            &table,
            Duration::ZERO,
        );
        assert_eq!(text, "-D -t 1.1.1.254:80\n");
    }

    /// keepalived's `sorry_server_inhibit`: the sorry server at weight 0 while the quorum
    /// holds (its connections go on), alone at weight 1 while it is lost.
    #[test]
    fn an_inhibited_sorry_server_stays_at_weight_zero_while_the_quorum_holds() {
        let config = Config::parse(&CONFIG.replace(
            "method = \"nat\"",
            "method = \"nat\"\nsorry_server = \"192.168.1.99:80\"\nsorry_server_inhibit = true",
        ))
        .unwrap();
        let saved = |t: &Table| xvs_core::listing::save(t, true, &NoNames);
        let quorate = apply(&config, &Table::default(), None);
        assert_eq!(
            saved(&quorate),
            "-A -t 1.1.1.254:80 -s rr\n-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m -w 1\n-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m -w 2\n-a -t 1.1.1.254:80 -r 192.168.1.99:80 -m -w 0\n"
        );
        let mut state = State::new(&config, &Table::default());
        let fail = crate::health::Outcome::Failure;
        state.observe(&config, 0, 0, 0, fail, None, Duration::ZERO);
        state.observe(&config, 0, 1, 0, fail, None, Duration::ZERO);
        let mut lost = quorate.clone();
        restore(
            &rules(&config, None, &state, &quorate, Duration::ZERO),
            &mut lost,
            &NoNames,
            "x",
        )
        .unwrap();
        assert_eq!(
            saved(&lost),
            "-A -t 1.1.1.254:80 -s rr\n-a -t 1.1.1.254:80 -r 192.168.1.99:80 -m -w 1\n"
        );
        let e = Config::parse(&CONFIG.replace(
            "method = \"nat\"",
            "method = \"nat\"\nsorry_server_inhibit = true",
        ))
        .unwrap_err();
        assert!(
            e.contains("sorry_server_inhibit needs a sorry_server"),
            "{e}"
        );
    }

    #[test]
    fn a_stop_that_removes_deletes_the_config_s_services_only_and_says_omega_s_downs() {
        let text = format!(
            "on_stop = \"remove\"\n{}",
            CONFIG.replace("method", "omega = true\nmethod")
        );
        let config = Config::parse(&text).unwrap();
        let mut table = apply(&config, &Table::default(), Some("192.168.1.20:80"));
        restore("-A -u 1.1.1.254:53 -s rr\n", &mut table, &NoNames, "x").unwrap();
        restore(&release(&config, &table), &mut table, &NoNames, "x").unwrap();
        assert_eq!(
            xvs_core::listing::save(&table, true, &NoNames),
            "-A -u 1.1.1.254:53 -s rr\n",
            "the service xvsd does not own stays"
        );
        assert_eq!(release(&config, &table), "", "nothing left to remove");

        // omega: the up server goes down, then the quorum; the down one says nothing.
        let mut state = State::new(&config, &Table::default());
        let fail = crate::health::Outcome::Failure;
        state.observe(&config, 0, 1, 0, fail, None, Duration::ZERO);
        let events = state.stop_events(&config);
        assert_eq!(
            events,
            [
                crate::state::Event::ServerDown {
                    service: 0,
                    server: 0
                },
                crate::state::Event::QuorumDown { service: 0 },
            ]
        );
        let plain = Config::parse(&format!("on_stop = \"remove\"\n{CONFIG}")).unwrap();
        assert!(
            State::new(&plain, &Table::default())
                .stop_events(&plain)
                .is_empty()
        );
        // omega without the removal would promise notifies that never run.
        let refused = Config::parse(&CONFIG.replace("method", "omega = true\nmethod")).unwrap_err();
        assert!(
            refused.contains("omega runs the down notifies"),
            "{refused}"
        );
        assert!(Config::parse(&format!("on_stop = \"later\"\n{CONFIG}")).is_err());
    }
}
