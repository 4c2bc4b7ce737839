//! What xvsd knows of its services: each real server's checks (up or down, by rise and
//! fall), its weight (a dynamic command check may change it) and each service's quorum,
//! as keepalived keeps them (shared/reference/keepalived-lvs.md §4). Results go in, the
//! transitions they make come out; `desired::rules` turns the state into a table.

use std::{net::SocketAddr, time::Duration};

use xvs_core::table::Table;

use crate::{
    config::{Config, ServiceConfig},
    health::{Health, Outcome},
};

/// A change xvsd reports (and runs notify commands for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ServerUp {
        service: usize,
        server: usize,
    },
    ServerDown {
        service: usize,
        server: usize,
    },
    /// A dynamic check set a real server's weight.
    Weight {
        service: usize,
        server: usize,
        weight: u32,
    },
    QuorumUp {
        service: usize,
    },
    QuorumDown {
        service: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerState {
    /// One per check, in the config's order.
    pub checks: Vec<Health>,
    /// Set by a dynamic command check; the configured weight until then.
    pub weight: u32,
    /// When it went down (on the caller's clock), while it is down.
    pub down_since: Option<Duration>,
}

impl ServerState {
    /// Up when every check is up (keepalived's AND of checkers).
    pub fn is_up(&self) -> bool {
        self.checks.iter().all(Health::is_up)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    pub quorum_up: bool,
    pub servers: Vec<ServerState>,
}

/// The state of every service of a config, indexed as the config is.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub services: Vec<ServiceState>,
}

/// The table's service for `service`, if there is one.
pub fn find<'t>(table: &'t Table, service: &ServiceConfig) -> Option<&'t xvs_core::model::Service> {
    let key = service.service_key();
    table.services.iter().find(|s| s.key == key)
}

impl State {
    /// The state xvsd starts from. A service already in `table` (xvsd restarted, or a
    /// service defined by hand before) is adopted: a real server it holds with a weight
    /// starts up, one it lacks starts down, so a restart changes nothing that its checks
    /// do not ask for. Other services' real servers start up, or down with `alpha`.
    pub fn new(config: &Config, table: &Table) -> State {
        State::carried_over(config, None, table)
    }

    /// The state after a reload from `old` (with `old_state`) to `config`: a real server
    /// of the same service with the same checks keeps its health and weight (a failed
    /// server is not re-added by a reload); everything else starts as in `new`.
    pub fn reloaded(config: &Config, old: &Config, old_state: &State, table: &Table) -> State {
        State::carried_over(config, Some((old, old_state)), table)
    }

    fn carried_over(config: &Config, old: Option<(&Config, &State)>, table: &Table) -> State {
        let services = config
            .services
            .iter()
            .map(|service| {
                let before = old.and_then(|(old, state)| {
                    let key = service.service_key();
                    let i = old.services.iter().position(|s| s.service_key() == key)?;
                    Some((&old.services[i], &state.services[i]))
                });
                let present = find(table, service);
                let servers = service
                    .real_servers
                    .iter()
                    .map(|rs| {
                        let checks = service.checks_of(rs);
                        let kept = before.and_then(|(old_service, old_state)| {
                            let j = old_service
                                .real_servers
                                .iter()
                                .position(|o| o.address == rs.address)?;
                            let same_checks =
                                old_service.checks_of(&old_service.real_servers[j]) == checks;
                            let weight_same = old_service.real_servers[j].weight == rs.weight;
                            let old_server = &old_state.servers[j];
                            same_checks.then(|| ServerState {
                                checks: old_server.checks.clone(),
                                weight: if weight_same {
                                    old_server.weight
                                } else {
                                    rs.weight
                                },
                                down_since: old_server.down_since,
                            })
                        });
                        kept.unwrap_or_else(|| {
                            // In the table already (a restart): as the table has it;
                            // else each check passed unless it starts failed (keepalived's
                            // `alpha`: the check's own, else its server's or service's).
                            let in_table = present.map(|s| {
                                s.dests.iter().any(|d| {
                                    d.addr == rs.address.ip()
                                        && d.port == rs.address.port()
                                        && d.weight > 0
                                })
                            });
                            let alpha = service.starts_down(rs);
                            ServerState {
                                checks: checks
                                    .iter()
                                    .map(|c| {
                                        let up = in_table.unwrap_or(!c.alpha.unwrap_or(alpha));
                                        Health::new(up, c.rise, c.fall)
                                    })
                                    .collect(),
                                weight: rs.weight,
                                down_since: None,
                            }
                        })
                    })
                    .collect();
                let mut state = ServiceState {
                    quorum_up: false,
                    servers,
                };
                state.quorum_up = match before {
                    Some((_, old_state)) => old_state.quorum_up,
                    None => up_weight(&state) >= quorum_needed(service),
                };
                state
            })
            .collect();
        State { services }
    }

    /// Counts one check's result (`weight`: what a dynamic check asked for) at `now` (on
    /// the caller's clock); the changes it makes, in order.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        config: &Config,
        service: usize,
        server: usize,
        check: usize,
        outcome: Outcome,
        weight: Option<u32>,
        now: Duration,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let state = &mut self.services[service];
        let rs = &mut state.servers[server];
        let was_up = rs.is_up();
        rs.checks[check].observe(outcome);
        if let Some(weight) = weight.filter(|&w| w != rs.weight) {
            rs.weight = weight;
            events.push(Event::Weight {
                service,
                server,
                weight,
            });
        }
        match (was_up, rs.is_up()) {
            (false, true) => {
                rs.down_since = None;
                events.push(Event::ServerUp { service, server });
            }
            (true, false) => {
                rs.down_since = Some(now);
                events.push(Event::ServerDown { service, server });
            }
            _ => {}
        }
        if let Some(event) = self.update_quorum(config, service) {
            events.push(event);
        }
        events
    }

    /// keepalived's `update_quorum_state`: gained at `quorum + hysteresis`, lost below
    /// `quorum - hysteresis` or when no weight is left.
    fn update_quorum(&mut self, config: &Config, service: usize) -> Option<Event> {
        let needed = quorum_needed(&config.services[service]);
        let hysteresis = u64::from(config.services[service].hysteresis).min(needed - 1);
        let state = &mut self.services[service];
        let sum = up_weight(state);
        if !state.quorum_up && sum >= needed + hysteresis {
            state.quorum_up = true;
            return Some(Event::QuorumUp { service });
        }
        if state.quorum_up && (sum < needed - hysteresis || sum == 0) {
            state.quorum_up = false;
            return Some(Event::QuorumDown { service });
        }
        None
    }
}

impl State {
    /// Whether every service has its quorum.
    pub fn all_quorate(&self) -> bool {
        self.services.iter().all(|s| s.quorum_up)
    }

    /// What a stop that removes the services says of them (keepalived's `omega`): for each
    /// service with `omega`, each up real server goes down, then its quorum, if it was up.
    pub fn stop_events(&self, config: &Config) -> Vec<Event> {
        let mut events = Vec::new();
        for (i, (service, state)) in config.services.iter().zip(&self.services).enumerate() {
            if !service.omega {
                continue;
            }
            for (j, server) in state.servers.iter().enumerate() {
                if server.is_up() {
                    events.push(Event::ServerDown {
                        service: i,
                        server: j,
                    });
                }
            }
            if state.quorum_up {
                events.push(Event::QuorumDown { service: i });
            }
        }
        events
    }

    /// Servers that start down (or were down when adopted) count as down since `now`.
    pub fn down_from(&mut self, now: Duration) {
        for server in self.services.iter_mut().flat_map(|s| &mut s.servers) {
            if !server.is_up() && server.down_since.is_none() {
                server.down_since = Some(now);
            }
        }
    }

    /// Whether a failed server kept at weight 0 has drained: down for longer than its
    /// service's `drain` at `now`.
    pub fn drained(&self, config: &Config, service: usize, server: usize, now: Duration) -> bool {
        let since = self.services[service].servers[server].down_since;
        match (config.services[service].drain(), since) {
            (Some(drain), Some(since)) => now.saturating_sub(since) >= drain,
            _ => false,
        }
    }

    /// Whether some server's drain ended in (`after`, `now`]: the table must change.
    pub fn drain_ended(&self, config: &Config, after: Duration, now: Duration) -> bool {
        self.services.iter().enumerate().any(|(i, service)| {
            service
                .servers
                .iter()
                .enumerate()
                .any(|(j, _)| self.drained(config, i, j, now) && !self.drained(config, i, j, after))
        })
    }
}

/// The sum of the up real servers' weights.
fn up_weight(state: &ServiceState) -> u64 {
    state
        .servers
        .iter()
        .filter(|s| s.is_up())
        .map(|s| u64::from(s.weight))
        .sum()
}

/// The quorum, clamped to the configured weights (as keepalived does) and at least 1.
fn quorum_needed(service: &ServiceConfig) -> u64 {
    let total: u64 = service
        .real_servers
        .iter()
        .map(|rs| u64::from(rs.weight))
        .sum();
    u64::from(service.quorum).min(total).max(1)
}

impl Event {
    /// The service it concerns.
    pub fn service(&self) -> usize {
        match *self {
            Event::ServerUp { service, .. }
            | Event::ServerDown { service, .. }
            | Event::Weight { service, .. }
            | Event::QuorumUp { service }
            | Event::QuorumDown { service } => service,
        }
    }

    /// The line xvsd logs for it.
    pub fn describe(&self, config: &Config) -> String {
        let service = &config.services[self.service()];
        let server = |i: usize| service.real_servers[i].address;
        match *self {
            Event::ServerUp { server: j, .. } => {
                format!("real server {} of {} is up", server(j), service.name())
            }
            Event::ServerDown { server: j, .. } => {
                format!("real server {} of {} is down", server(j), service.name())
            }
            Event::Weight {
                server: j, weight, ..
            } => format!(
                "real server {} of {}: weight {weight} by its check",
                server(j),
                service.name()
            ),
            Event::QuorumUp { .. } => format!("{}: quorum gained", service.name()),
            Event::QuorumDown { .. } => match service.sorry_server {
                Some(sorry) => format!(
                    "{}: quorum lost; sorry server {sorry} takes the service",
                    service.name()
                ),
                None => format!("{}: quorum lost", service.name()),
            },
        }
    }

    /// The notify command configured for it, if any.
    pub fn command<'c>(&self, config: &'c Config) -> Option<&'c str> {
        let service = &config.services[self.service()];
        match *self {
            Event::ServerUp { server, .. } => service.real_servers[server]
                .notify_up
                .as_ref()
                .or(service.notify_up.as_ref()),
            Event::ServerDown { server, .. } => service.real_servers[server]
                .notify_down
                .as_ref()
                .or(service.notify_down.as_ref()),
            Event::Weight { .. } => None,
            Event::QuorumUp { .. } => service.quorum_up.as_ref(),
            Event::QuorumDown { .. } => service.quorum_down.as_ref(),
        }
        .map(String::as_str)
    }

    /// Its real server, if it concerns one.
    pub fn server(&self, config: &Config) -> Option<SocketAddr> {
        match *self {
            Event::ServerUp { service, server }
            | Event::ServerDown { service, server }
            | Event::Weight {
                service, server, ..
            } => Some(config.services[service].real_servers[server].address),
            Event::QuorumUp { .. } | Event::QuorumDown { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvs_core::{restore::restore, text::NoNames};

    fn config(extra: &str, servers: usize) -> Config {
        let mut text = format!("[[service]]\naddress = \"1.1.1.254:80\"\n{extra}\n");
        for i in 0..servers {
            text.push_str(&format!(
                "[[service.real_server]]\naddress = \"192.168.1.{}:80\"\n",
                10 + i
            ));
        }
        Config::parse(&text).unwrap()
    }

    fn fail(state: &mut State, config: &Config, server: usize) -> Vec<Event> {
        state.observe(config, 0, server, 0, Outcome::Failure, None, Duration::ZERO)
    }

    fn pass(state: &mut State, config: &Config, server: usize) -> Vec<Event> {
        state.observe(config, 0, server, 0, Outcome::Success, None, Duration::ZERO)
    }

    #[test]
    fn quorum_with_hysteresis_as_keepalived_s_sample() {
        // keepalived.conf.quorum: 10 servers of weight 1, quorum 7, hysteresis 2, alpha:
        // up at 9 live servers, down below 5.
        let config = config("quorum = 7\nhysteresis = 2\nalpha = true", 10);
        let mut state = State::new(&config, &Table::default());
        assert!(!state.services[0].quorum_up);
        for i in 0..8 {
            let events = pass(&mut state, &config, i);
            assert_eq!(
                events,
                [Event::ServerUp {
                    service: 0,
                    server: i
                }]
            );
        }
        assert_eq!(
            pass(&mut state, &config, 8),
            [
                Event::ServerUp {
                    service: 0,
                    server: 8
                },
                Event::QuorumUp { service: 0 }
            ]
        );
        for i in (5..9).rev() {
            assert_eq!(fail(&mut state, &config, i).len(), 1, "{i}: quorum kept");
        }
        assert_eq!(
            fail(&mut state, &config, 4),
            [
                Event::ServerDown {
                    service: 0,
                    server: 4
                },
                Event::QuorumDown { service: 0 }
            ]
        );
    }

    #[test]
    fn every_check_must_pass_and_a_dynamic_one_sets_the_weight() {
        let config = Config::parse(
            "[[service]]\naddress = \"1.1.1.254:80\"\n[[service.check]]\n[[service.check]]\ntype = \"command\"\ncommand = \"true\"\ndynamic = true\n[[service.real_server]]\naddress = \"192.168.1.10:80\"\n",
        )
        .unwrap();
        let mut state = State::new(&config, &Table::default());
        let events = state.observe(&config, 0, 0, 1, Outcome::Failure, None, Duration::ZERO);
        assert_eq!(
            events,
            [
                Event::ServerDown {
                    service: 0,
                    server: 0
                },
                Event::QuorumDown { service: 0 }
            ]
        );
        // The other check passing does not bring it back.
        assert!(
            state
                .observe(&config, 0, 0, 0, Outcome::Success, None, Duration::ZERO)
                .is_empty()
        );
        let events = state.observe(&config, 0, 0, 1, Outcome::Success, Some(5), Duration::ZERO);
        assert_eq!(
            events[0],
            Event::Weight {
                service: 0,
                server: 0,
                weight: 5
            }
        );
        assert_eq!(
            events[1],
            Event::ServerUp {
                service: 0,
                server: 0
            }
        );
    }

    #[test]
    fn a_restart_adopts_the_table_and_a_reload_keeps_unchanged_servers() {
        let config = config("alpha = true", 2);
        let mut table = Table::default();
        restore(
            "-A -t 1.1.1.254:80 -s wlc\n-a -t 1.1.1.254:80 -r 192.168.1.11:80 -g -w 1",
            &mut table,
            &NoNames,
            "x",
        )
        .unwrap();
        let state = State::new(&config, &table);
        assert!(!state.services[0].servers[0].is_up(), "not in the table");
        assert!(state.services[0].servers[1].is_up(), "in the table");
        assert!(state.services[0].quorum_up);

        // A reload that changes the first server's check and adds one.
        let mut next = config.clone();
        next.services[0].real_servers[0].checks =
            Some(crate::config::Checks(vec![crate::config::CheckConfig {
                port: Some(8080),
                ..Default::default()
            }]));
        let mut added = next.services[0].real_servers[1].clone();
        added.address = "192.168.1.30:80".parse().unwrap();
        next.services[0].real_servers.push(added);
        let reloaded = State::reloaded(&next, &config, &state, &Table::default());
        assert!(reloaded.services[0].servers[1].is_up(), "kept");
        assert!(!reloaded.services[0].servers[0].is_up(), "new check: alpha");
        assert!(
            !reloaded.services[0].servers[2].is_up(),
            "new server: alpha"
        );
    }

    /// keepalived's `alpha` given per real server (over the service's) and per checker
    /// (over its server's): a server starts down while one of its checks starts failed.
    #[test]
    fn alpha_per_real_server_and_per_check() {
        let config = Config::parse(
            "[[service]]\naddress = \"1.1.1.254:80\"\nalpha = true\n\
             [[service.real_server]]\naddress = \"192.168.1.10:80\"\nalpha = false\n\
             [[service.real_server]]\naddress = \"192.168.1.11:80\"\n\
             [[service]]\naddress = \"1.1.1.254:443\"\n\
             [[service.real_server]]\naddress = \"192.168.1.10:443\"\nalpha = true\n\
             [[service.real_server]]\naddress = \"192.168.1.11:443\"\n\
             [[service.real_server.check]]\ntype = \"tcp\"\n\
             [[service.real_server.check]]\ntype = \"tcp\"\nport = 8443\nalpha = true\n\
             [[service.real_server]]\naddress = \"192.168.1.12:443\"\n\
             [[service.real_server]]\naddress = \"192.168.1.13:443\"\nalpha = true\n\
             [[service.real_server.check]]\ntype = \"tcp\"\nalpha = false\n",
        )
        .unwrap();
        let state = State::new(&config, &Table::default());
        let up = |i: usize, j: usize| state.services[i].servers[j].is_up();
        assert!(up(0, 0), "alpha = false over the service's alpha");
        assert!(!up(0, 1), "the service's alpha");
        assert!(!up(1, 0), "its own alpha");
        assert!(!up(1, 1), "one of its checks starts failed");
        assert!(
            state.services[1].servers[1].checks[0].is_up(),
            "the other does not"
        );
        assert!(up(1, 2), "no alpha anywhere");
        assert!(up(1, 3), "its check's alpha = false over its own");
    }
}
