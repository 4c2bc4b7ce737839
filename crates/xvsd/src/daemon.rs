//! `xvsd run CONFIG`: defines the config's virtual services, runs each real server's
//! checks on threads of their own, and when the state changes (a server up or down, a
//! dynamic weight, a quorum) puts the table the state asks for in place through the same
//! edit transaction xvsadm uses. Services the config does not name are never touched.
//!
//! One loop owns the state; everything reaches it as a `Message`: check results, reload
//! requests (SIGHUP, or `xvsd reload` through the control socket, `control.rs`), status
//! requests and the order to stop.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use xvs_core::{listing::save, table::Table, text::NoNames};
use xvs_datapath::{
    ChangeError, ChangeOptions, Director, neighbours::NextHops, rates::RateSampler,
};
use xvs_health::{
    config::{Config, OnStop, VrrpConfig, Watch},
    desired,
    report::{self, HaView},
    state::{Event, State, find},
};

use crate::{
    bgp::Bgp,
    check::{self, CheckResult},
    control,
    http::{self, Wanted},
    sync::{Role, Sync},
    vrrp::{SyncGroups, Vrrp},
};

/// How often the daemon samples the rates (IPVS's estimator interval) and looks for hand
/// edits of its services.
const TICK: Duration = Duration::from_secs(xvs_core::estimator::SAMPLE_SECONDS);

/// Each checker thread's stack (TLS handshakes and DNS parsing fit well within it).
const CHECKER_STACK: usize = 256 * 1024;

pub(crate) enum Message {
    Checked {
        generation: u64,
        /// The probe (an index into the daemon's `probes`) whose run this is.
        probe: usize,
        result: CheckResult,
        took: Duration,
    },
    /// A report for the HTTP listener.
    Report(Wanted, mpsc::Sender<Option<String>>),
    /// SIGTERM or SIGINT: stop cleanly (a VRRP master hands its addresses over).
    Terminate,
    /// Reload the config; the reply, if someone waits for one.
    Reload(Option<mpsc::Sender<String>>),
    Status(mpsc::Sender<String>),
    /// `xvsd drain` (true) or `xvsd drain off`: BGP withdraws (or announces again) the
    /// VIPs, forwarding goes on.
    Drain(bool, mpsc::Sender<String>),
    /// An address of the namespace came or went (`ha_suspend` looks at the VIPs again).
    AddressesChanged,
}

/// Reads and validates the config at `path`.
pub fn load(path: &str) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Config::parse(&text).map_err(|e| format!("{path}: {e}"))
}

/// `xvsd check-config FILE`: the verdict on a config without touching anything.
pub fn check_config(path: &str) -> Result<(), String> {
    let config = load(path)?;
    for vrrp in &config.vrrp {
        let peers = if vrrp.unicast_peers.is_empty() {
            "multicast".to_string()
        } else {
            let peers: Vec<String> = vrrp.unicast_peers.iter().map(|p| p.to_string()).collect();
            format!("unicast to {}", peers.join(", "))
        };
        println!(
            "vrrp: {} on {}, priority {}, {} (version {}, {peers})",
            vrrp.vrid,
            vrrp.interface,
            vrrp.priority,
            vrrp.addresses.join(" "),
            vrrp.version
        );
    }
    if let Some(sync) = &config.sync {
        let to = if sync.peers.is_empty() {
            format!("{}:{}", sync.group, sync.port)
        } else {
            let peers: Vec<String> = sync.peers.iter().map(|p| p.to_string()).collect();
            peers.join(", ")
        };
        let syncid = sync
            .syncid
            .or(config.vrrp.first().map(|v| v.vrid))
            .unwrap_or(0);
        let signed = if sync.key.is_some() { ", signed" } else { "" };
        println!(
            "sync: on {} to {to}, syncid {syncid}{signed}",
            sync.interface
        );
    }
    if let Some(bgp) = &config.bgp {
        let routers: Vec<String> = bgp
            .neighbors
            .iter()
            .map(|n| format!("{} (AS {})", n.address, bgp.as_of(n)))
            .collect();
        let vips: Vec<String> = config
            .bgp_addresses()
            .iter()
            .map(|v| v.to_string())
            .collect();
        println!(
            "bgp: AS {} to {}, announcing {}{}",
            bgp.local_as,
            routers.join(", "),
            vips.join(" "),
            if bgp.bfd { ", with BFD" } else { "" }
        );
    }
    println!(
        "{path}: ok ({} services, {} real servers)",
        config.services.len(),
        config.real_servers()
    );
    Ok(())
}

/// `xvsd run FILE`: runs until killed.
pub fn run(path: &str) -> Result<(), String> {
    let config = load(path)?;
    let (sender, messages) = mpsc::channel();
    // The signals must be blocked before any thread starts, so that every thread inherits the
    // mask and only the waiting thread receives it.
    control::forward_signals(sender.clone())?;
    control::listen(sender.clone())?;
    if config.http.enabled {
        http::serve(
            config.http.listen,
            http::through(sender.clone(), Message::Report),
        )?;
    }
    crate::sysctl::apply(&config.sysctl)?;
    let table = read_table()?;
    let clock = Instant::now();
    let mut state = State::new(&config, &table);
    state.down_from(Duration::ZERO);
    let mut daemon = Daemon {
        clock,
        last_tick: Duration::ZERO,
        path: path.to_string(),
        config,
        state,
        watches: Vec::new(),
        generation: 0,
        stop: Arc::new(AtomicBool::new(false)),
        sender,
        previous: None,
        pending: true,
        written: None,
        last: Vec::new(),
        probes: Vec::new(),
        watch_of: HashMap::new(),
        rates: RateSampler::new(),
        rates_error: None,
        next_hops: NextHops::new(),
        next_hops_error: None,
        suspended: Vec::new(),
        paused: Vec::new(),
        addresses_error: None,
    };
    daemon.apply();
    // The VIPs come once the table is in place, so that the first client is served.
    let groups = SyncGroups::default();
    let mut vrrp = daemon
        .config
        .vrrp
        .iter()
        .map(|config| Vrrp::start(config, groups.join(config.group.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sync = start_sync(&daemon.config, &vrrp)?;
    let mut bgp = start_bgp(&daemon.config)?;
    let mut draining = false;
    if let Some(bgp) = &mut bgp {
        bgp.announce(&daemon.announced(draining));
    }
    println!(
        "xvsd: {} services, {} real servers from {path}",
        daemon.config.services.len(),
        daemon.config.real_servers()
    );
    daemon.start_checks()?;
    watch_addresses(daemon.sender.clone());
    let mut next_tick = Instant::now() + TICK;
    loop {
        // The tick comes first, so that a stream of results cannot hold it back.
        let now = Instant::now();
        if now >= next_tick {
            next_tick += TICK;
            if next_tick <= now {
                next_tick = now + TICK;
            }
            daemon.tick();
        }
        match messages.recv_timeout(next_tick.saturating_duration_since(now)) {
            Ok(Message::Checked {
                generation,
                probe,
                result,
                took,
            }) if generation == daemon.generation => {
                daemon.checked(probe, result, took);
                // The instances that leave the election while a service lost its quorum.
                for vrrp in vrrp.iter().filter(|v| v.config().track_services) {
                    vrrp.set_healthy(daemon.state.all_quorate());
                }
                if let Some(bgp) = &mut bgp {
                    bgp.announce(&daemon.announced(draining));
                }
            }
            Ok(Message::Checked { .. }) => {} // from before a reload
            Ok(Message::Reload(reply)) => {
                let before = daemon.config.clone();
                let mut answer = daemon.reload();
                if answer.is_ok() {
                    // [sync] and [bgp] start anew if they changed (a backup asks for the
                    // whole table again; BIRD's sessions close and open: with mh over the
                    // same servers on every director, no connection minds). [vrrp] is
                    // taken in place: restarting a master's instance would hand its VIPs
                    // over.
                    let config = &daemon.config;
                    let mut notes = Vec::new();
                    let mut leader_changed = false;
                    if config.vrrp != before.vrrp {
                        let reloaded = reload_vrrp(&mut vrrp, &config.vrrp, &groups);
                        notes.extend(reloaded.notes);
                        leader_changed = reloaded.first_changed;
                    }
                    // Sync follows the first instance: one that changed restarts it.
                    if config.sync != before.sync || (leader_changed && sync.is_some()) {
                        if let Some(old) = sync.take() {
                            old.stop();
                        }
                        match start_sync(config, &vrrp) {
                            Ok(started) => sync = started,
                            Err(e) => notes.push(e),
                        }
                        notes.push("[sync] restarted".to_string());
                    }
                    if config.bgp != before.bgp || config.bgp_addresses() != before.bgp_addresses()
                    {
                        // BIRD reads its new config in place (its sessions stay up);
                        // started or stopped if the section came or went.
                        match (&mut bgp, &config.bgp) {
                            (Some(running), Some(new)) => {
                                match running.reconfigure(new, &config.bgp_addresses()) {
                                    Ok(()) => notes.push("[bgp] reconfigured".to_string()),
                                    Err(e) => notes.push(e),
                                }
                            }
                            _ => {
                                if let Some(old) = bgp.take() {
                                    old.stop();
                                }
                                match start_bgp(config) {
                                    Ok(started) => bgp = started,
                                    Err(e) => notes.push(e),
                                }
                                notes.push("[bgp] restarted".to_string());
                            }
                        }
                    }
                    if let Ok(text) = &mut answer
                        && !notes.is_empty()
                    {
                        text.push_str(&format!("; {}", notes.join("; ")));
                    }
                }
                if let Some(bgp) = &mut bgp {
                    bgp.announce(&daemon.announced(draining));
                }
                match &answer {
                    Ok(text) => println!("xvsd: {text}"),
                    Err(text) => eprintln!("xvsd: {text}"),
                }
                if let Some(reply) = reply {
                    let _ = reply.send(answer.unwrap_or_else(|e| format!("error: {e}")));
                }
            }
            Ok(Message::Status(reply)) => {
                let _ = reply.send(daemon.status());
            }
            Ok(Message::Drain(on, reply)) => {
                draining = on;
                let answer = match &mut bgp {
                    Some(bgp) => {
                        bgp.announce(&daemon.announced(draining));
                        if on {
                            "draining: the VIPs are withdrawn, forwarding goes on"
                        } else {
                            "announcing the VIPs again"
                        }
                    }
                    None => "error: no [bgp] section: nothing to withdraw",
                };
                println!("xvsd: {answer}");
                let _ = reply.send(answer.to_string());
            }
            Ok(Message::AddressesChanged) => daemon.follow_vips(),
            Ok(Message::Report(wanted, reply)) => {
                let ha = HaView {
                    vrrp: vrrp.iter().map(Vrrp::view).collect(),
                    sync: sync.as_ref().map(Sync::totals),
                    bgp: bgp.as_ref().map(Bgp::view).unwrap_or_default(),
                };
                let _ = reply.send(daemon.report(wanted, &ha));
            }
            Ok(Message::Terminate) => {
                for vrrp in vrrp {
                    vrrp.stop();
                }
                if let Some(sync) = sync {
                    sync.stop();
                }
                if let Some(bgp) = bgp {
                    bgp.stop();
                }
                match daemon.config.on_stop {
                    OnStop::Keep => println!("xvsd: stopped; the table stays as it is"),
                    OnStop::Remove => daemon.release(),
                }
                return Ok(());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("every checker stopped".to_string());
            }
        }
    }
}

/// What a reload did to the VRRP instances.
struct VrrpReloaded {
    /// What was done or refused, for the reload's answer.
    notes: Vec<String>,
    /// The first instance, which connection sync follows, is another one.
    first_changed: bool,
}

/// A reload's `[vrrp]` sections: each running instance whose virtual router (interface,
/// VRID, family) a section still names takes it in place, keeping its state (restarting
/// a master would hand its VIPs over); a section of a new router starts an instance (as
/// backup, as at xvsd's start); an instance no section names stops (a master hands over
/// and gives its addresses up), as keepalived's reload does. A new instance joins its
/// sync group (`group`) in `groups`; a stopped one leaves it.
fn reload_vrrp(
    running: &mut Vec<Vrrp>,
    sections: &[VrrpConfig],
    groups: &SyncGroups,
) -> VrrpReloaded {
    let routers_before: Vec<_> = running.iter().map(|v| v.config().router()).collect();
    let first_before = routers_before
        .first()
        .map(|(interface, vrid, v6)| (interface.to_string(), *vrid, *v6));
    let mut old: Vec<Option<Vrrp>> = std::mem::take(running).into_iter().map(Some).collect();
    let mut notes = Vec::new();
    for section in sections {
        let kept = old
            .iter_mut()
            .find(|v| {
                v.as_ref()
                    .is_some_and(|v| v.config().router() == section.router())
            })
            .and_then(Option::take);
        match kept {
            Some(mut instance) => {
                match instance.reconfigure(section) {
                    Ok(true) => notes.push(format!("{} reloaded", instance.view().name)),
                    Ok(false) => {}
                    Err(e) => notes.push(e),
                }
                running.push(instance);
            }
            None => match Vrrp::start(section, groups.join(section.group.clone())) {
                Ok(instance) => {
                    notes.push(format!("{} started", instance.view().name));
                    running.push(instance);
                }
                Err(e) => notes.push(e),
            },
        }
    }
    for instance in old.into_iter().flatten() {
        let name = instance.view().name;
        instance.stop();
        notes.push(format!("{name} stopped"));
    }
    let first_after = running.first().map(|v| {
        let (interface, vrid, v6) = v.config().router();
        (interface.to_string(), vrid, v6)
    });
    VrrpReloaded {
        notes,
        first_changed: first_before != first_after,
    }
}

/// Connection sync as `config` asks, following the first VRRP instance (keepalived's
/// `lvs_sync_daemon IFACE INSTANCE`), or both ways without one.
fn start_sync(config: &Config, vrrp: &[Vrrp]) -> Result<Option<Sync>, String> {
    let Some(sync) = &config.sync else {
        return Ok(None);
    };
    let (syncid, role) = match (vrrp.first(), config.vrrp.first()) {
        (Some(vrrp), Some(vrrp_config)) => (
            sync.syncid.unwrap_or(vrrp_config.vrid),
            Role::FollowVrrp(vrrp.master_flag()),
        ),
        _ => (sync.syncid.unwrap_or(0), Role::Both),
    };
    Sync::start(sync, syncid, role).map(Some)
}

/// BGP as `config` asks.
fn start_bgp(config: &Config) -> Result<Option<Bgp>, String> {
    match &config.bgp {
        Some(bgp) => Bgp::start(bgp, &config.bgp_addresses()).map(Some),
        None => Ok(None),
    }
}

struct Daemon {
    /// The origin of the state's clock (when a server went down, drains).
    clock: Instant,
    /// The clock at the last tick.
    last_tick: Duration,
    path: String,
    config: Config,
    state: State,
    watches: Vec<Watch>,
    /// Results of checks started for an older config are ignored.
    generation: u64,
    /// Tells the current generation's checkers to stop.
    stop: Arc<AtomicBool>,
    sender: mpsc::Sender<Message>,
    /// The config before a reload whose services are still to be deleted.
    previous: Option<Config>,
    /// A change that has not landed yet (another writer held the lock too long, the
    /// datapath was destroyed under us): tried again until it does.
    pending: bool,
    /// xvsd's services as it last wrote them (`-S` lines), to notice hand edits.
    written: Option<String>,
    /// Each watch's last result and how long it took, for `xvsd health` and the metrics.
    last: Vec<Option<(CheckResult, Duration)>>,
    /// The watches each checker serves (indexes into `watches`): one checker for the
    /// watches alike in what they send ([`xvs_health::config::probes`]).
    probes: Vec<Vec<usize>>,
    /// Watches by (service, real server, check) index.
    watch_of: HashMap<(usize, usize, usize), usize>,
    rates: RateSampler,
    /// The last failure to sample the rates, said once.
    rates_error: Option<String>,
    /// Keeps the datapath's next hops as the kernel's neighbour table says.
    next_hops: NextHops,
    /// The last failure to refresh them, said once.
    next_hops_error: Option<String>,
    /// Per probe: whether its checks are paused (keepalived's `ha_suspend`), read by its
    /// checker before each check.
    suspended: Vec<Arc<AtomicBool>>,
    /// Per service: whether its checks are paused, as last said.
    paused: Vec<bool>,
    /// The last failure to list this director's addresses, said once.
    addresses_error: Option<String>,
}

impl Daemon {
    /// Every 2 seconds: a change still pending, the rates, next hops, hand edits.
    fn tick(&mut self) {
        let now = self.clock.elapsed();
        if self.state.drain_ended(&self.config, self.last_tick, now) {
            self.pending = true;
        }
        self.last_tick = now;
        if self.pending {
            self.apply();
        }
        let sampled = match Director::find() {
            Ok(Some(mut director)) => self.rates.sample(&mut director).map_err(|e| e.to_string()),
            Ok(None) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        say_failure_once(&mut self.rates_error, "cannot estimate the rates", sampled);
        let refreshed = self.next_hops.refresh().map_err(|e| e.to_string());
        if let Ok(changes) = &refreshed {
            for change in changes {
                println!("xvsd: {change}");
            }
        }
        say_failure_once(
            &mut self.next_hops_error,
            "cannot refresh the next hops",
            refreshed.map(drop),
        );
        self.look_for_hand_edits();
        self.follow_vips();
    }

    /// Pauses the checks of each `ha_suspend` service whose VIP is not an address of this
    /// director (a VRRP backup's), and resumes them when it is again; a probe shared by
    /// several services pauses only when all of them do. Called when the kernel reports an
    /// address change, and on every tick (should a report be missed).
    fn follow_vips(&mut self) {
        let services = &self.config.services;
        let mut away = vec![false; services.len()];
        if services.iter().any(|s| s.ha_suspend) {
            let listed = xvs_datapath::netlink::all_addresses().map_err(|e| e.to_string());
            let own: std::collections::HashSet<std::net::IpAddr> = match &listed {
                Ok(all) => all.iter().map(|&(_, address, _)| address).collect(),
                // Unknown: checks go on as they were.
                Err(_) => {
                    return say_failure_once(
                        &mut self.addresses_error,
                        "cannot list the director's addresses",
                        listed.map(drop),
                    );
                }
            };
            for (i, service) in services.iter().enumerate() {
                away[i] = service.ha_suspend
                    && service.address.is_some_and(|vip| !own.contains(&vip.ip()));
            }
        }
        for (flag, served) in self.suspended.iter().zip(&self.probes) {
            let paused = served.iter().all(|&w| away[self.watches[w].service]);
            flag.store(paused, Ordering::Relaxed);
        }
        for (i, service) in services.iter().enumerate() {
            if self.paused.get(i).copied().unwrap_or(false) != away[i] {
                let (vip, checks) = match away[i] {
                    true => ("not here", "paused"),
                    false => ("here", "resumed"),
                };
                println!(
                    "xvsd: {}: its VIP is {vip}: checks {checks} (ha_suspend)",
                    service.name()
                );
            }
        }
        self.paused = away;
    }

    fn start_checks(&mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        self.stop = Arc::new(AtomicBool::new(false));
        self.generation += 1;
        self.watches = self.config.watches();
        self.probes = xvs_health::config::probes(&self.watches);
        self.last = vec![None; self.watches.len()];
        self.watch_of = self
            .watches
            .iter()
            .enumerate()
            .map(|(i, w)| ((w.service, w.server, w.check_index), i))
            .collect();
        for written in init_files(self.watches.iter().map(|w| &w.check)) {
            match written {
                Ok(text) => println!("xvsd: {text}"),
                Err(text) => eprintln!("xvsd: {text}"),
            }
        }
        // One checker per probe: a real server in several services (or an imported
        // virtual_server_group) alike in its check is checked once for all of them.
        let count = self.probes.len() as u32;
        self.suspended = (0..count).map(|_| Arc::default()).collect();
        // Paused from the first check on where the VIP is not here (said again for the
        // services of a reloaded config).
        self.paused.clear();
        self.follow_vips();
        for (i, served) in self.probes.iter().enumerate() {
            let watch = self.watches[served[0]].clone();
            let sender = self.sender.clone();
            let stop = self.stop.clone();
            let suspended = self.suspended[i].clone();
            let generation = self.generation;
            let offset = first_check_after(&watch.check, i as u32, count);
            std::thread::Builder::new()
                .name(format!("check {}", watch.address))
                // A check needs little stack; thousands of checkers must stay cheap.
                .stack_size(CHECKER_STACK)
                .spawn(move || {
                    std::thread::sleep(offset);
                    while !stop.load(Ordering::Relaxed) {
                        // Paused, the checker only waits for its next turn, as keepalived's.
                        if suspended.load(Ordering::Relaxed) {
                            std::thread::sleep(watch.check.interval());
                            continue;
                        }
                        let started = Instant::now();
                        let result = check::run_with_retries(&watch);
                        let message = Message::Checked {
                            generation,
                            probe: i,
                            result,
                            took: started.elapsed(),
                        };
                        if sender.send(message).is_err() {
                            return;
                        }
                        std::thread::sleep(watch.check.interval());
                    }
                })
                .map_err(|e| format!("cannot start a checker: {e}"))?;
        }
        Ok(())
    }

    /// A run of probe `probe`: its result counts for every watch it serves.
    fn checked(&mut self, probe: usize, result: CheckResult, took: Duration) {
        let outcome = check::outcome(&result);
        let weighs = result.as_ref().ok().copied().flatten();
        let mut changed = false;
        for &i in &self.probes[probe] {
            let watch = &self.watches[i];
            let configured = self.config.services[watch.service].real_servers[watch.server].weight;
            let weight = weighs.map(|w| w.weight(&watch.check, configured));
            let events = self.state.observe(
                &self.config,
                watch.service,
                watch.server,
                watch.check_index,
                outcome,
                weight,
                self.clock.elapsed(),
            );
            for event in &events {
                let mut line = event.describe(&self.config);
                if let (Event::ServerDown { .. }, Err(why)) = (event, &result) {
                    line.push_str(&format!(": {why}"));
                }
                println!("{line}");
                notify(&self.config, event);
            }
            // keepalived's `log_all_failures`: failures that change nothing are logged too.
            if let Err(why) = &result
                && watch.check.log_all_failures
                && !events.iter().any(|e| matches!(e, Event::ServerDown { .. }))
            {
                let service = &self.config.services[watch.service];
                println!(
                    "real server {} of {}: check {} failed: {why}",
                    service.real_servers[watch.server].address,
                    service.name(),
                    watch.check_index + 1
                );
            }
            self.last[i] = Some((result.clone(), took));
            changed |= !events.is_empty();
        }
        if changed {
            self.pending = true;
            self.apply();
        }
    }

    /// Puts in place the table the config and the state ask for.
    fn apply(&mut self) {
        let options = change_options();
        let (config, previous, state) = (&self.config, self.previous.as_ref(), &self.state);
        let now = self.clock.elapsed();
        let result = Director::change(options, |table| {
            let rules = desired::rules(config, previous, state, table, now);
            xvs_core::restore::restore(&rules, table, &NoNames, "xvsd")
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(owned(config, table))
        })
        .map_err(change_failure);
        match result {
            Ok(written) => {
                self.written = Some(written);
                self.previous = None;
                self.pending = false;
            }
            Err(e) => eprintln!("xvsd: the table is not updated yet: {e}"),
        }
    }

    /// The stop of `on_stop = "remove"`: xvsd's services are deleted (others stay), and
    /// `omega`'s notify commands run for what goes down with them; xvsd waits for those
    /// commands (a few seconds at most), so that a service manager's stop does not kill
    /// them half done.
    fn release(&mut self) {
        let config = &self.config;
        let removed = Director::change(change_options(), |table| {
            let rules = desired::release(config, table);
            xvs_core::restore::restore(&rules, table, &NoNames, "xvsd").map_err(|e| e.to_string())
        });
        match removed.map_err(change_failure) {
            Ok(_) => println!("xvsd: stopped; its services are removed from the table"),
            Err(e) => eprintln!("xvsd: stopped, but its services could not be removed: {e}"),
        }
        let mut commands = Vec::new();
        for event in self.state.stop_events(config) {
            println!("{}", event.describe(config));
            commands.extend(spawn_notify(config, &event));
        }
        let deadline = Instant::now() + STOP_NOTIFY_WAIT;
        for mut child in commands {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Reads the config again and applies only what changed: services and real servers
    /// it still names keep their entries, connections, counters and health.
    fn reload(&mut self) -> Result<String, String> {
        let config =
            load(&self.path).map_err(|e| format!("reload refused, nothing changed: {e}"))?;
        crate::sysctl::apply(&config.sysctl)
            .map_err(|e| format!("reload refused, nothing changed: {e}"))?;
        let table = read_table()?;
        let mut state = State::reloaded(&config, &self.config, &self.state, &table);
        state.down_from(self.clock.elapsed());
        let old = std::mem::replace(&mut self.config, config);
        self.state = state;
        self.previous = Some(old);
        self.pending = true;
        self.apply();
        self.start_checks()?;
        Ok(format!(
            "reloaded {}: {} services, {} real servers",
            self.path,
            self.config.services.len(),
            self.config.real_servers()
        ))
    }

    /// Says once when xvsd's services differ from what it last wrote: someone changed
    /// them by hand. They stay so until xvsd's next change to the table puts the config
    /// back.
    fn look_for_hand_edits(&mut self) {
        let (Some(written), Ok(table)) = (&self.written, read_table()) else {
            return;
        };
        let now = owned(&self.config, &table);
        if &now == written {
            return;
        }
        let lines = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
        let (before, after) = (lines(written), lines(&now));
        for line in before.iter().filter(|l| !after.contains(l)) {
            println!("xvsd: changed by hand: gone: {line}");
        }
        for line in after.iter().filter(|l| !before.contains(l)) {
            println!("xvsd: changed by hand: new: {line}");
        }
        println!("xvsd: the config is put back at xvsd's next change (or `xvsd reload`)");
        self.written = Some(now);
    }

    /// `xvsd health`: every service's quorum and every real server's state and last check.
    /// The VIPs BGP announces: each while a service of it has its quorum (one with no
    /// address service of its own while every service has), none while draining.
    fn announced(&self, draining: bool) -> std::collections::BTreeSet<std::net::IpAddr> {
        let mut announced = std::collections::BTreeSet::new();
        if draining {
            return announced;
        }
        for vip in self.config.bgp_addresses() {
            let mut of_vip = self
                .config
                .services
                .iter()
                .zip(&self.state.services)
                .filter(|(service, _)| service.address.is_some_and(|a| a.ip() == vip))
                .peekable();
            let up = if of_vip.peek().is_some() {
                of_vip.any(|(_, state)| state.quorum_up)
            } else {
                self.state.all_quorate()
            };
            if up {
                announced.insert(vip);
            }
        }
        announced
    }

    fn status(&self) -> String {
        let mut out = format!("config {}\n", self.path);
        for (i, (service, state)) in self
            .config
            .services
            .iter()
            .zip(&self.state.services)
            .enumerate()
        {
            let quorum = if state.quorum_up { "up" } else { "lost" };
            let paused = match self.paused.get(i) {
                Some(true) => ", checks paused (ha_suspend: its VIP is not here)",
                _ => "",
            };
            out.push_str(&format!("{} quorum {quorum}{paused}\n", service.name()));
            for (j, (rs, server)) in service.real_servers.iter().zip(&state.servers).enumerate() {
                let health = if server.is_up() { "up" } else { "down" };
                out.push_str(&format!(
                    "  {} {health} weight {}",
                    rs.address, server.weight
                ));
                let last = self
                    .watches
                    .iter()
                    .zip(&self.last)
                    .filter(|(w, _)| w.service == i && w.server == j)
                    .map(|(_, last)| match last {
                        None => "not checked yet".to_string(),
                        Some((Ok(_), _)) => "passed".to_string(),
                        Some((Err(why), _)) => format!("failed: {why}"),
                    })
                    .collect::<Vec<_>>();
                out.push_str(&format!(" ({})\n", last.join("; ")));
            }
        }
        out
    }
}

impl Daemon {
    /// The director's report (the table read with its counters), rendered as asked.
    fn report(&self, wanted: Wanted, ha: &HaView) -> Option<String> {
        let table = match Director::find() {
            Ok(Some(director)) => director.load().ok()?.table,
            Ok(None) => Table::default(),
            Err(_) => return None,
        };
        let report = report::report(&self.config, &self.state, &table, self);
        Some(match wanted {
            Wanted::Metrics => report.metrics() + &ha.metrics(),
            Wanted::Json => report.json(),
        })
    }
}

/// Tells the daemon of each change of the namespace's addresses, from a thread of its own
/// (blocked in the kernel between changes). Without the subscription, the tick's look
/// every 2 s is all `ha_suspend` has.
fn watch_addresses(sender: mpsc::Sender<Message>) {
    let changes = match xvs_datapath::netlink::AddressChanges::subscribe() {
        Ok(changes) => changes,
        Err(e) => {
            eprintln!("xvsd: cannot follow address changes ({e}); ha_suspend looks every 2 s");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("addresses".into())
        .spawn(move || {
            while changes.wait().is_ok() {
                if sender.send(Message::AddressesChanged).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("xvsd: cannot follow address changes ({e}); ha_suspend looks every 2 s");
    }
}

impl report::CheckResults for Daemon {
    fn last(
        &self,
        service: usize,
        server: usize,
        check: usize,
    ) -> Option<(Result<(), String>, Duration)> {
        let i = *self.watch_of.get(&(service, server, check))?;
        let (result, took) = self.last[i].as_ref()?;
        Some((result.clone().map(|_| ()), *took))
    }

    fn paused(&self, service: usize) -> bool {
        self.paused.get(service).copied().unwrap_or(false)
    }
}

/// How xvsd changes the table: waiting up to 5 s for another writer's lock.
fn change_options() -> ChangeOptions {
    ChangeOptions {
        patience: Duration::from_secs(5),
        ..ChangeOptions::default()
    }
}

/// Why a change of xvsd's services did not land.
fn change_failure(error: ChangeError<String>) -> String {
    match error {
        ChangeError::Edit(refusal) => format!("the config's table is refused: {refusal}"),
        ChangeError::Reach(error) | ChangeError::Store(error) => error.to_string(),
    }
}

/// The `-S` lines of `config`'s services in `table`.
fn owned(config: &Config, table: &Table) -> String {
    let mut mine = Table::default();
    mine.services = config
        .services
        .iter()
        .filter_map(|s| find(table, s).cloned())
        .collect();
    save(&mine, true, &NoNames)
}

fn read_table() -> Result<Table, String> {
    match Director::find().map_err(|e| e.to_string())? {
        Some(director) => director
            .load_for_change()
            .map(|s| s.table)
            .map_err(|e| e.to_string()),
        None => Ok(Table::default()),
    }
}

/// Says a periodic task's failure once, not every time it repeats; `last` remembers it.
fn say_failure_once(last: &mut Option<String>, what: &str, result: Result<(), String>) {
    match result {
        Ok(()) => *last = None,
        Err(e) if last.as_ref() != Some(&e) => {
            eprintln!("xvsd: {what}: {e}");
            *last = Some(e);
        }
        Err(_) => {}
    }
}

/// How long a stopping xvsd waits for the notify commands its stop ran (`omega`).
const STOP_NOTIFY_WAIT: Duration = Duration::from_secs(5);

/// Runs the notify command of `event`, if one is configured, without waiting for it.
fn notify(config: &Config, event: &Event) {
    // Reaped on a thread of its own, so that a slow script holds nothing.
    if let Some(mut child) = spawn_notify(config, event) {
        std::thread::spawn(move || child.wait());
    }
}

/// Starts the notify command of `event`, if one is configured; what it concerns is in its
/// environment.
fn spawn_notify(config: &Config, event: &Event) -> Option<std::process::Child> {
    let line = event.command(config)?;
    let service = &config.services[event.service()];
    let state = match event {
        Event::ServerUp { .. } | Event::QuorumUp { .. } => "UP",
        _ => "DOWN",
    };
    let mut command = std::process::Command::new("sh");
    crate::control::with_signals(&mut command)
        .args(["-c", line])
        .env("XVS_SERVICE", service.name())
        .env("XVS_STATE", state)
        .stdin(std::process::Stdio::null());
    if let Some(server) = event.server(config) {
        command.env("XVS_REAL_SERVER", server.to_string());
    }
    command
        .spawn()
        .map_err(|e| eprintln!("xvsd: {line:?}: {e}"))
        .ok()
}

/// Writes each file check's `init_file` value to its file if the file is missing (or
/// always, with `init_overwrite`), before the first checks read it: keepalived's track
/// file `init_file`. Each file once; what was written, or why not.
fn init_files<'a>(
    checks: impl IntoIterator<Item = &'a xvs_health::config::CheckConfig>,
) -> Vec<Result<String, String>> {
    let mut done = std::collections::BTreeSet::new();
    let mut said = Vec::new();
    for check in checks {
        let (Some(value), Some(file)) = (check.init_file, check.file.as_deref()) else {
            continue;
        };
        let path = std::path::Path::new(file);
        if !done.insert(file) || (path.exists() && !check.init_overwrite) {
            continue;
        }
        said.push(
            std::fs::write(path, format!("{value}\n"))
                .map(|()| format!("{file}: {value} written (init_file)"))
                .map_err(|e| format!("cannot write init_file {file}: {e}")),
        );
    }
    said
}

/// When probe `i` of `count` makes its first check: the first checks are spread over one
/// interval (or the check's `warmup`; 0, all at once). A thousand checks started in the
/// same instant, every interval, would overflow the listen queues of real servers that
/// share a host (and the director's own burst of connections).
fn first_check_after(check: &xvs_health::config::CheckConfig, i: u32, count: u32) -> Duration {
    check.warmup() * i / count.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvs_health::config::CheckConfig;

    #[test]
    fn init_files_are_written_where_missing_or_over_with_overwrite() {
        let folder = std::env::temp_dir().join(format!("xvsd-{}-init", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let (missing, there, over) = (
            folder.join("missing"),
            folder.join("there"),
            folder.join("over"),
        );
        std::fs::write(&there, "5\n").unwrap();
        std::fs::write(&over, "5\n").unwrap();
        let watch = |file: &std::path::Path, init: i64, overwrite: bool| CheckConfig {
            kind: xvs_health::config::CheckType::File,
            file: Some(file.to_string_lossy().into_owned()),
            init_file: Some(init),
            init_overwrite: overwrite,
            ..CheckConfig::default()
        };
        let said = init_files(&[
            watch(&missing, 0, false),
            // The same file again (a second real server's check): written once.
            watch(&missing, 1, false),
            watch(&there, 0, false),
            watch(&over, 2, true),
        ]);
        assert_eq!(said.len(), 2, "{said:?}");
        let read = |f: &std::path::Path| std::fs::read_to_string(f).unwrap();
        assert_eq!(
            (read(&missing), read(&there), read(&over)),
            ("0\n".into(), "5\n".into(), "2\n".into())
        );
        let _ = std::fs::remove_dir_all(folder);
    }

    #[test]
    fn first_checks_are_spread_over_the_interval_or_the_warmup() {
        let check = |warmup: Option<f64>| CheckConfig {
            interval: 8.0,
            warmup,
            ..CheckConfig::default()
        };
        let offsets = |c: &CheckConfig| {
            (0..4)
                .map(|i| first_check_after(c, i, 4).as_secs_f64())
                .collect::<Vec<_>>()
        };
        assert_eq!(offsets(&check(None)), [0.0, 2.0, 4.0, 6.0]);
        assert_eq!(offsets(&check(Some(2.0))), [0.0, 0.5, 1.0, 1.5]);
        assert_eq!(offsets(&check(Some(0.0))), [0.0; 4]);
    }
}
