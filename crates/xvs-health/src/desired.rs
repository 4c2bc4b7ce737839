//! The table the config and the real servers' health ask for, as ipvsadm rules: each
//! service xvsd owns is defined again from the config, with its up real servers (and,
//! with `inhibit_on_failure`, its down ones at weight 0). Services the config does not
//! name are left alone. The rules are applied to a copy of the table read from the
//! kernel, so the datapath's plan writes only what differs: an unchanged service keeps
//! its entries, ids, connections and counters.

use xvs_core::table::Table;

use crate::config::{Config, Protocol};

/// The rules that turn `table` into what `config` asks for, given `up(service, address)`.
pub fn rules(
    config: &Config,
    table: &Table,
    up: &dyn Fn(usize, std::net::SocketAddr) -> bool,
) -> String {
    let mut out = String::new();
    for (i, service) in config.services.iter().enumerate() {
        let switch = match service.protocol {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
        };
        let address = service.address;
        let key = format!("{switch} {address}");
        let exists = table.services.iter().any(|s| {
            matches!(s.key, xvs_core::model::ServiceKey::Inet { addr, port, protocol }
                if addr == address.ip() && port == address.port()
                    && protocol.name() == match service.protocol { Protocol::Tcp => "TCP", Protocol::Udp => "UDP" })
        });
        if exists {
            out.push_str(&format!("-D {key}\n"));
        }
        out.push_str(&format!("-A {key} -s {}", service.scheduler));
        if let Some(timeout) = service.persistence {
            out.push_str(&format!(" -p {timeout}"));
        }
        out.push('\n');
        for rs in &service.real_servers {
            let weight = match (up(i, rs.address), service.inhibit_on_failure) {
                (true, _) => rs.weight,
                (false, true) => 0,
                (false, false) => continue,
            };
            let method = rs.method.unwrap_or(service.method).switch();
            out.push_str(&format!(
                "-a {key} -r {} {method} -w {weight}\n",
                rs.address
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let text = rules(config, table, &|_, addr| {
            Some(addr.to_string().as_str()) != down
        });
        let mut next = table.clone();
        restore(&text, &mut next, &NoNames, "xvsd").unwrap();
        next
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
}
