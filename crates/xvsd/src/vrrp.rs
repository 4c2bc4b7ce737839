//! xvsd's VRRP: the I/O around `xvs_vrrp::router` on one interface. Advertisements go to
//! and come from 224.0.0.18 (IPv4) or ff02::12 (IPv6, from the interface's link-local
//! address) on a raw socket (protocol 112, TTL / hop limit 255, checked on receipt); the
//! master adds the virtual addresses to the interface and announces each with gratuitous
//! ARP (IPv4) or an unsolicited neighbour advertisement (IPv6); a backup removes them. On
//! stop, a master says priority 0 and gives the addresses up, so a backup takes over
//! after its skew time.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use xvs_datapath::netlink;
use xvs_health::{
    config::{TrackScript, VrrpConfig},
    health::{Health, Outcome, Transition},
    report::VrrpView,
};
use xvs_vrrp::{
    router::{Action, Config, Router, Standing, State},
    wire::{Advertisement, PROTOCOL, V4Checksum},
};

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// The running instance: stop it with [`Vrrp::stop`].
pub struct Vrrp {
    /// The section it follows (changed by [`Vrrp::reconfigure`]).
    config: VrrpConfig,
    /// Settings of a reload, for the instance's thread to take.
    pending: Arc<Mutex<Option<Settings>>>,
    stop: Arc<AtomicBool>,
    /// True while this director is master (holds the addresses).
    master: Arc<AtomicBool>,
    /// The priority it advertises now.
    priority: Arc<AtomicU8>,
    /// `VRRP 51 on eth0`, as logs and metrics name it.
    name: String,
    /// False while xvsd's services say this director should not hold the VIPs.
    healthy: Arc<AtomicBool>,
    /// Its track scripts, running.
    scripts: Scripts,
    thread: JoinHandle<()>,
}

impl Vrrp {
    /// Starts the instance on its thread; `group` is how it stands with the other
    /// instances of its sync group.
    pub fn start(config: &VrrpConfig, group: SyncGroup) -> Result<Vrrp, String> {
        let family = if config.addresses.first().is_some_and(|a| a.contains(':')) {
            " (IPv6)"
        } else {
            ""
        };
        let instance_name = format!("VRRP {} on {}{family}", config.vrid, config.interface);
        let scripts = Scripts::start(&config.track_scripts, &instance_name);
        let settings = Settings::of(config, &scripts)?;
        let interface = netlink::interfaces()
            .map_err(|e| format!("vrrp: {e}"))?
            .into_iter()
            .find(|i| i.name == config.interface)
            .ok_or_else(|| format!("vrrp: no interface {}", config.interface))?;
        let vips = &settings.router.addresses;
        let v6 = vips.first().is_some_and(IpAddr::is_ipv6);
        let unicast = !config.unicast_peers.is_empty();
        // IPv4: an address of the interface's own; IPv6: its link-local address (to the
        // group) or one of its own that is not (to unicast peers, which may be routed).
        let own = netlink::addresses(interface.index)
            .map_err(|e| format!("vrrp: {e}"))?
            .into_iter()
            .find_map(|(a, _)| match a {
                IpAddr::V4(_) if !v6 && !vips.contains(&a) => Some(a),
                IpAddr::V6(l) if v6 && (l.segments()[0] & 0xffc0 == 0xfe80) != unicast => {
                    (!vips.contains(&a)).then_some(a)
                }
                _ => None,
            })
            .ok_or_else(|| {
                let what = match (v6, unicast) {
                    (true, false) => "an IPv6 link-local address",
                    (true, true) => "an IPv6 address of its own that is not link-local",
                    _ => "an IPv4 address of its own",
                };
                format!("vrrp: {} has no {what}", config.interface)
            })?;
        let socket = match own {
            IpAddr::V4(own) => group_socket(interface.index, own)?,
            IpAddr::V6(_) => group_socket6(interface.index)?,
        };
        if unicast {
            unicast_hops(&socket, v6)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let healthy = Arc::new(AtomicBool::new(true));
        let master = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(Mutex::new(None));
        let swayed = settings.swayed();
        let priority = Arc::new(AtomicU8::new(swayed.priority));
        let instance = Instance {
            shown_priority: priority.clone(),
            announce_again: None,
            healthy: healthy.clone(),
            master: master.clone(),
            pending: pending.clone(),
            group,
            priority: swayed.priority,
            router: Router::new(swayed, own),
            track: settings.track,
            base: settings.router,
            section: settings.section,
            scripts_up: settings.scripts_up,
            socket,
            own,
            peers: config.unicast_peers.clone(),
            ifindex: interface.index,
            addresses: settings.addresses,
            leaving: false,
            name: instance_name.clone(),
        };
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vrrp".to_string())
            .spawn(move || instance.run(&stopping))
            .map_err(|e| format!("vrrp: {e}"))?;
        Ok(Vrrp {
            config: config.clone(),
            pending,
            stop,
            name: instance_name.clone(),
            master,
            priority,
            healthy,
            scripts,
            thread,
        })
    }

    /// The section the instance follows.
    pub fn config(&self) -> &VrrpConfig {
        &self.config
    }

    /// Takes a reloaded section in place, keeping the instance's state (a master stays
    /// master unless its new priority lets a backup preempt it): priority, interval,
    /// preemption, addresses, notify commands, tracking and sync group. Whether anything
    /// changed; an error, changing nothing, if the section changes the version or the
    /// unicast peers, which only a restart can start (a new socket). (A section of another
    /// virtual router, interface, VRID or family, is another instance: see the daemon's
    /// reload.)
    pub fn reconfigure(&mut self, new: &VrrpConfig) -> Result<bool, String> {
        if *new == self.config {
            return Ok(false);
        }
        let identity = |c: &VrrpConfig| (c.version, c.unicast_peers.clone());
        if new.router() != self.config.router() || identity(new) != identity(&self.config) {
            return Err(format!(
                "{}: a new version or unicast peers take effect when xvsd restarts; the \
                 instance runs as before",
                self.name
            ));
        }
        if new.track_scripts != self.config.track_scripts {
            let running = std::mem::replace(
                &mut self.scripts,
                Scripts::start(&new.track_scripts, &self.name),
            );
            running.stop();
        }
        let settings = Settings::of(new, &self.scripts)?;
        if let Ok(mut pending) = self.pending.lock() {
            *pending = Some(settings);
        }
        self.config = new.clone();
        if !new.track_services {
            self.set_healthy(true);
        }
        Ok(true)
    }

    /// True while this director is master: connection sync sends then, and receives
    /// while it is not.
    pub fn master_flag(&self) -> Arc<AtomicBool> {
        self.master.clone()
    }

    /// The instance as this director takes part in it now.
    pub fn view(&self) -> VrrpView {
        VrrpView {
            name: self.name.clone(),
            master: self.master.load(Ordering::Relaxed),
            priority: self.priority.load(Ordering::Relaxed),
        }
    }

    /// Whether the director is fit to hold the VIPs (`track_services`).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Stops the instance: a master hands over (priority 0) and gives its addresses up.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.scripts.stop();
    }
}

/// An instance's track scripts, each run on a thread of its own, their health (counted as
/// a real server's) in a flag each.
struct Scripts {
    up: Vec<Arc<AtomicBool>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Scripts {
    fn start(scripts: &[TrackScript], instance: &str) -> Scripts {
        let stop = Arc::new(AtomicBool::new(false));
        let mut up = Vec::new();
        let mut threads = Vec::new();
        for script in scripts {
            let flag = Arc::new(AtomicBool::new(true));
            up.push(flag.clone());
            let (script, stop, name) = (script.clone(), stop.clone(), instance.to_string());
            let thread = std::thread::Builder::new()
                .name("track-script".to_string())
                .spawn(move || {
                    let mut health = Health::new(true, script.rise, script.fall);
                    let interval = Duration::from_secs_f64(script.interval);
                    let timeout = Duration::from_secs_f64(script.timeout());
                    while !stop.load(Ordering::Relaxed) {
                        let began = Instant::now();
                        let result =
                            crate::check::script(&script.command, script.user.as_deref(), timeout);
                        let outcome = match &result {
                            Ok(()) => Outcome::Success,
                            Err(_) => Outcome::Failure,
                        };
                        if let Some(change) = health.observe(outcome) {
                            flag.store(change == Transition::Up, Ordering::Relaxed);
                            match result {
                                Ok(()) => {
                                    println!("{name}: track script {:?} passes", script.command)
                                }
                                Err(why) => println!("{name}: track script failed: {why}"),
                            }
                        }
                        while began.elapsed() < interval && !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(50).min(interval));
                        }
                    }
                });
            if let Ok(thread) = thread {
                threads.push(thread);
            }
        }
        Scripts { up, stop, threads }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Every running instance's standing, by sync group: where each member reads the
/// others'. Instances join as they start and leave as they stop, so a reload can add
/// and remove members of a group.
#[derive(Clone, Default)]
pub struct SyncGroups(Arc<Mutex<Vec<Member>>>);

/// A running instance in a sync group: the group's name and the instance's standing.
type Member = (String, Arc<AtomicU8>);

impl SyncGroups {
    /// A new instance's place in group `name` (none: no group).
    pub fn join(&self, name: Option<String>) -> SyncGroup {
        let own = Arc::new(AtomicU8::new(Standing::Waiting as u8));
        if let (Some(name), Ok(mut members)) = (&name, self.0.lock()) {
            members.push((name.clone(), own.clone()));
        }
        SyncGroup {
            name,
            own,
            groups: self.clone(),
        }
    }
}

/// An instance's place in its sync group (keepalived's `vrrp_sync_group`): where it
/// stands ([`Standing`]: a fault of its own, master, a backup hearing a master or not),
/// which it publishes, and where the others stand (none outside a group). It leaves the
/// group when dropped, with its instance.
pub struct SyncGroup {
    pub name: Option<String>,
    own: Arc<AtomicU8>,
    groups: SyncGroups,
}

impl Drop for SyncGroup {
    fn drop(&mut self) {
        if let Ok(mut members) = self.groups.0.lock() {
            members.retain(|(_, standing)| !Arc::ptr_eq(standing, &self.own));
        }
    }
}

impl SyncGroup {
    fn publish(&self, standing: Standing) {
        self.own.store(standing as u8, Ordering::Relaxed);
    }

    /// Where the group's other members stand now.
    fn others(&self) -> Vec<Standing> {
        let (Some(name), Ok(members)) = (&self.name, self.groups.0.lock()) else {
            return Vec::new();
        };
        members
            .iter()
            .filter(|(group, standing)| group == name && !Arc::ptr_eq(standing, &self.own))
            .map(|(_, standing)| Standing::of(standing.load(Ordering::Relaxed)))
            .collect()
    }
}

/// What of a `[vrrp]` section an instance can take without a restart.
struct Settings {
    /// The router's settings, at the configured priority.
    router: Config,
    addresses: Vec<(IpAddr, u8)>,
    track: Vec<String>,
    section: VrrpConfig,
    /// Its track scripts' health, one flag each.
    scripts_up: Vec<Arc<AtomicBool>>,
}

impl Settings {
    fn of(config: &VrrpConfig, scripts: &Scripts) -> Result<Settings, String> {
        let addresses = config.parsed_addresses()?;
        Ok(Settings {
            section: config.clone(),
            scripts_up: scripts.up.clone(),
            router: Config {
                vrid: config.vrid,
                priority: config.priority,
                interval: Duration::from_secs_f64(config.interval),
                preempt: config.preempt,
                preempt_delay: Duration::from_secs_f64(config.preempt_delay),
                addresses: addresses.iter().map(|(a, _)| *a).collect(),
                version: config.version,
            },
            addresses,
            track: config.track_interfaces.clone(),
        })
    }

    /// The router's settings at the priority its track scripts make now.
    fn swayed(&self) -> Config {
        Config {
            priority: self.section.priority_with(&read(&self.scripts_up)),
            ..self.router.clone()
        }
    }
}

/// The flags' values.
fn read(flags: &[Arc<AtomicBool>]) -> Vec<bool> {
    flags.iter().map(|f| f.load(Ordering::Relaxed)).collect()
}

/// How many times a new master announces each address at once, and how long after it
/// does so again (keepalived's `vrrp_garp_master_repeat` and `vrrp_garp_master_delay`).
const ANNOUNCE_REPEAT: usize = 5;
const ANNOUNCE_AGAIN: Duration = Duration::from_secs(5);

struct Instance {
    router: Router,
    /// The router's settings at the configured priority.
    base: Config,
    /// The priority advertised now (the configured one, swayed by track scripts).
    priority: u8,
    /// The same, for [`Vrrp::view`].
    shown_priority: Arc<AtomicU8>,
    section: VrrpConfig,
    scripts_up: Vec<Arc<AtomicBool>>,
    /// When a master announces its addresses the second time.
    announce_again: Option<Instant>,
    pending: Arc<Mutex<Option<Settings>>>,
    healthy: Arc<AtomicBool>,
    master: Arc<AtomicBool>,
    group: SyncGroup,
    /// Interfaces that must be up.
    track: Vec<String>,
    socket: OwnedFd,
    own: IpAddr,
    /// Unicast peers: advertisements go to them instead of the group, and only theirs
    /// are heard.
    peers: Vec<IpAddr>,
    ifindex: u32,
    addresses: Vec<(IpAddr, u8)>,
    /// Leaving the election for a fault or a stop (told as such, not as BACKUP).
    leaving: bool,
    name: String,
}

impl Instance {
    fn run(mut self, stop: &AtomicBool) {
        let started = Instant::now();
        let actions = self.router.start(started.elapsed());
        if self.router.state() == State::Backup {
            // A backup holds nothing: addresses left by a director that crashed as master
            // would answer beside the new master.
            for &(address, prefix) in &self.addresses {
                let _ = netlink::delete_address(self.ifindex, address, prefix);
            }
        }
        self.carry_out(actions);
        println!("{}: {:?}", self.name, self.router.state());
        if self.router.state() == State::Backup {
            self.notify("BACKUP");
        }
        let mut buffer = [0u8; 1500];
        let mut fault = None::<String>;
        while !stop.load(Ordering::Relaxed) {
            let reloaded = self.pending.lock().ok().and_then(|mut p| p.take());
            if let Some(settings) = reloaded {
                self.take_settings(settings, started.elapsed());
            }
            // FAULT (keepalived's word): out of the election while a tracked interface is
            // down or xvsd's services say so; back in, as a starting router, after.
            let why = self.fault();
            match (&fault, &why) {
                (None, Some(reason)) => {
                    println!("{}: fault ({reason}): leaving the election", self.name);
                    self.leave("FAULT");
                }
                (Some(_), None) => {
                    println!("{}: fault cleared: back in the election", self.name);
                    let actions = self.router.start(started.elapsed());
                    self.carry_out(actions);
                    if self.router.state() == State::Backup {
                        self.notify("BACKUP");
                    }
                }
                _ => {}
            }
            fault = why;
            if fault.is_some() {
                // Heard but not answered.
                let _ = receive(&self.socket, &mut buffer, Duration::from_millis(200));
                continue;
            }
            let now = started.elapsed();
            self.sway(now);
            self.follow_group(now);
            let wait = self
                .router
                .timeout()
                .map_or(Duration::from_millis(200), |t| t.saturating_sub(now))
                .min(Duration::from_millis(200));
            if let Some((advert, from)) = self.receive(&mut buffer, wait) {
                let actions = self.router.receive(started.elapsed(), &advert, from);
                self.carry_out(actions);
            }
            let actions = self.router.tick(started.elapsed());
            self.carry_out(actions);
            self.group.publish(self.router.standing());
            if self.announce_again.is_some_and(|at| Instant::now() >= at) {
                self.announce_again = None;
                for &(address, _) in &self.addresses {
                    self.announce(address);
                }
            }
        }
        self.leave("STOP");
        self.group.publish(Standing::Waiting);
    }

    /// In a sync group, moves with the others ([`Router::follow_group`]): to backup when
    /// one of them lost its election, to master when one took over and none hears a
    /// master.
    fn follow_group(&mut self, now: Duration) {
        let Some(name) = self.group.name.clone() else {
            return;
        };
        let before = self.router.state();
        let actions = self.router.follow_group(&self.group.others(), now);
        if self.router.state() != before {
            println!(
                "{}: follows group {name}: {:?}",
                self.name,
                self.router.state()
            );
        }
        self.carry_out(actions);
        self.group.publish(self.router.standing());
    }

    /// Leaves the election (a master hands over: priority 0, addresses given up), for a
    /// fault or a stop: `state`, told by the notify commands.
    fn leave(&mut self, state: &str) {
        self.leaving = true;
        let actions = self.router.shutdown();
        self.carry_out(actions);
        self.leaving = false;
        self.notify(state);
    }

    /// Runs the notify commands of `state` (MASTER, BACKUP, FAULT, STOP): the state's
    /// own, then the generic one with keepalived's arguments.
    fn notify(&self, state: &str) {
        let section = &self.section;
        let own = match state {
            "MASTER" => &section.notify_master,
            "BACKUP" => &section.notify_backup,
            "FAULT" => &section.notify_fault,
            _ => &section.notify_stop,
        };
        if let Some(command) = own {
            run_notify(command, state, &[]);
        }
        if let Some(command) = &section.notify {
            let name = section.name.as_deref().unwrap_or(&self.name);
            let priority = self.priority.to_string();
            run_notify(command, state, &["INSTANCE", name, state, &priority]);
        }
    }

    /// A reload's settings: a master gives up the addresses no longer named and takes
    /// the new ones; the router goes on with its new priority, interval and preemption.
    fn take_settings(&mut self, new: Settings, now: Duration) {
        if self.router.state() == State::Master {
            for &(address, prefix) in &self.addresses {
                if !new.addresses.contains(&(address, prefix)) {
                    let _ = netlink::delete_address(self.ifindex, address, prefix);
                }
            }
            for &(address, prefix) in &new.addresses {
                if !self.addresses.contains(&(address, prefix)) {
                    self.take(address, prefix);
                }
            }
        }
        if new.section.group != self.group.name {
            // Into another sync group (or none): this one's members no longer follow it.
            self.group = self.group.groups.join(new.section.group.clone());
        }
        let router = new.swayed();
        self.addresses = new.addresses;
        self.track = new.track;
        let priority = router.priority;
        self.priority = priority;
        self.shown_priority.store(priority, Ordering::Relaxed);
        self.base = new.router;
        self.section = new.section;
        self.scripts_up = new.scripts_up;
        let actions = self.router.reconfigure(router, now);
        println!(
            "{}: reloaded: priority {priority}, {}",
            self.name,
            self.listed()
        );
        self.carry_out(actions);
    }

    /// Advertises the priority the track scripts make now, if it changed.
    fn sway(&mut self, now: Duration) {
        let priority = self.section.priority_with(&read(&self.scripts_up));
        if priority == self.priority {
            return;
        }
        println!(
            "{}: priority {priority} (was {}), as its track scripts say",
            self.name, self.priority
        );
        self.priority = priority;
        self.shown_priority.store(priority, Ordering::Relaxed);
        let config = Config {
            priority,
            ..self.base.clone()
        };
        let actions = self.router.reconfigure(config, now);
        self.carry_out(actions);
    }

    /// Adds `address` to the interface and announces it (gratuitous ARP, unsolicited NA).
    fn take(&self, address: IpAddr, prefix: u8) {
        let _ = netlink::add_address(self.ifindex, address, prefix);
        self.announce(address);
    }

    /// Announces `address` [`ANNOUNCE_REPEAT`] times, back to back, as keepalived does:
    /// a neighbour that misses one (a busy host, a lost frame) would send to the old
    /// master until its entry goes stale.
    fn announce(&self, address: IpAddr) {
        for _ in 0..ANNOUNCE_REPEAT {
            let announced = match address {
                IpAddr::V4(v4) => gratuitous_arp(self.ifindex, v4),
                IpAddr::V6(v6) => unsolicited_na(self.ifindex, v6),
            };
            if let Err(e) = announced {
                eprintln!("{}: announcing {address}: {e}", self.name);
                return;
            }
        }
    }

    /// Why this director may not take part in the election now, if it may not.
    fn fault(&self) -> Option<String> {
        let up = read(&self.scripts_up);
        let own = if !self.healthy.load(Ordering::Relaxed) {
            Some("a service lost its quorum".to_string())
        } else if let Some(script) = self.section.failed_script(&up) {
            Some(format!("track script {:?} fails", script.command))
        } else {
            self.track
                .iter()
                .find(|name| {
                    std::fs::read_to_string(format!("/sys/class/net/{name}/operstate"))
                        .map_or(true, |state| state.trim() == "down")
                })
                .map(|name| format!("{name} is down"))
        };
        // Only a fault of its own is told to the group as a fault: two instances cannot
        // hold each other in fault.
        let others_fault = self.group.others().contains(&Standing::Fault);
        let standing = match (&own, others_fault) {
            (Some(_), _) => Standing::Fault,
            (None, true) => Standing::Waiting,
            (None, false) => self.router.standing(),
        };
        self.group.publish(standing);
        own.or_else(|| {
            let name = self.group.name.as_deref()?;
            others_fault.then(|| format!("another instance of group {name} is in fault"))
        })
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(advert) => {
                    let targets = if self.peers.is_empty() {
                        vec![self.group()]
                    } else {
                        self.peers.clone()
                    };
                    for to in targets {
                        // The checksum's pseudo-header names the packet's destination.
                        let bytes = advert.emit(self.own, to, V4Checksum::PseudoHeader);
                        if let Err(e) = send(&self.socket, &bytes, to, self.ifindex) {
                            eprintln!("{}: cannot advertise to {to}: {e}", self.name);
                        }
                    }
                }
                Action::TakeAddresses => {
                    for &(address, prefix) in &self.addresses {
                        self.take(address, prefix);
                    }
                    self.announce_again = Some(Instant::now() + ANNOUNCE_AGAIN);
                    self.master.store(true, Ordering::Relaxed);
                    println!("{}: master, holding {}", self.name, self.listed());
                    self.notify("MASTER");
                }
                Action::ReleaseAddresses => {
                    self.master.store(false, Ordering::Relaxed);
                    self.announce_again = None;
                    for &(address, prefix) in &self.addresses {
                        let _ = netlink::delete_address(self.ifindex, address, prefix);
                    }
                    let state = match self.router.state() {
                        State::Backup => "backup",
                        _ => "stopped",
                    };
                    println!("{}: {state}, {} given up", self.name, self.listed());
                    // An election lost; a fault or a stop is told by `leave`.
                    if !self.leaving {
                        self.notify("BACKUP");
                    }
                }
            }
        }
    }

    /// The VRRP group of the instance's family.
    fn group(&self) -> IpAddr {
        match self.own {
            IpAddr::V4(_) => IpAddr::V4(GROUP),
            IpAddr::V6(_) => IpAddr::V6(GROUP6),
        }
    }

    /// An advertisement and its sender, if a valid one comes within `wait`.
    fn receive(&self, buffer: &mut [u8], wait: Duration) -> Option<(Advertisement, IpAddr)> {
        let (advert, from) = match self.own {
            IpAddr::V4(_) => {
                let n = receive(&self.socket, buffer, wait)?;
                advertisement(&buffer[..n])?
            }
            IpAddr::V6(_) => {
                let (n, from, hop_limit) = receive6(&self.socket, buffer, wait)?;
                // RFC 5798 §7.1: sent with hop limit 255, so from this link.
                if hop_limit != 255 {
                    return None;
                }
                let to = if self.peers.is_empty() {
                    self.group()
                } else {
                    self.own
                };
                (Advertisement::parse(&buffer[..n], from, to).ok()?, from)
            }
        };
        (self.peers.is_empty() || self.peers.contains(&from)).then_some((advert, from))
    }

    fn listed(&self) -> String {
        let list: Vec<String> = self
            .addresses
            .iter()
            .map(|(a, p)| format!("{a}/{p}"))
            .collect();
        list.join(" ")
    }
}

/// Runs `command` by `sh -c` with `arguments` after it (as `"$@"`), in the background.
fn run_notify(command: &str, state: &str, arguments: &[&str]) {
    let with_arguments;
    let line = if arguments.is_empty() {
        command
    } else {
        with_arguments = format!("{command} \"$@\"");
        &with_arguments
    };
    match crate::control::with_signals(&mut std::process::Command::new("sh"))
        .args(["-c", line, "sh"])
        .args(arguments)
        .env("XVS_VRRP_STATE", state)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => eprintln!("xvsd: {command:?}: {e}"),
    }
}

fn last_error(what: &str) -> String {
    format!("vrrp: {what}: {}", io::Error::last_os_error())
}

/// A raw socket for protocol 112, in the group on interface `ifindex`, sending from `own`
/// with TTL 255, not hearing itself.
fn group_socket(ifindex: u32, own: Ipv4Addr) -> Result<OwnedFd, String> {
    // SAFETY: socket(2) and setsockopt(2) with values of the sizes given.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(PROTOCOL),
        );
        if fd < 0 {
            return Err(last_error("raw socket (needs CAP_NET_RAW)"));
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let set = |level: i32, name: i32, value: *const libc::c_void, size: usize| {
            libc::setsockopt(fd, level, name, value, size as u32) == 0
        };
        let ttl: i32 = 255;
        let off: i32 = 0;
        let membership = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr {
                s_addr: u32::from_ne_bytes(GROUP.octets()),
            },
            imr_address: libc::in_addr {
                s_addr: u32::from_ne_bytes(own.octets()),
            },
            imr_ifindex: ifindex as i32,
        };
        let int = std::mem::size_of::<i32>();
        let ok = set(
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_TTL,
            (&raw const ttl).cast(),
            int,
        ) && set(
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_LOOP,
            (&raw const off).cast(),
            int,
        ) && set(
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&raw const membership).cast(),
            std::mem::size_of::<libc::ip_mreqn>(),
        ) && set(
            libc::IPPROTO_IP,
            libc::IP_ADD_MEMBERSHIP,
            (&raw const membership).cast(),
            std::mem::size_of::<libc::ip_mreqn>(),
        );
        if !ok {
            return Err(last_error("joining 224.0.0.18"));
        }
        Ok(socket)
    }
}

fn send(socket: &OwnedFd, bytes: &[u8], to: IpAddr, ifindex: u32) -> io::Result<()> {
    let (address, len) = crate::sockaddr::of(to, ifindex);
    // SAFETY: the address of `to` with its length, and `bytes` with theirs.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
            (&raw const address).cast(),
            len,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unicast advertisements leave with TTL (hop limit) 255 too, as receivers check.
fn unicast_hops(socket: &OwnedFd, v6: bool) -> Result<(), String> {
    let hops: i32 = 255;
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)
    } else {
        (libc::IPPROTO_IP, libc::IP_TTL)
    };
    // SAFETY: setsockopt(2) with an int of its size.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const hops).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
    if set != 0 {
        return Err(last_error("unicast TTL"));
    }
    Ok(())
}

/// A raw IPv6 socket for protocol 112 in ff02::12 on interface `ifindex`, sending with
/// hop limit 255, not hearing itself, telling each packet's hop limit.
fn group_socket6(ifindex: u32) -> Result<OwnedFd, String> {
    // SAFETY: socket(2) and setsockopt(2) with values of the sizes given.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET6,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(PROTOCOL),
        );
        if fd < 0 {
            return Err(last_error("raw IPv6 socket (needs CAP_NET_RAW)"));
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let set = |name: i32, value: *const libc::c_void, size: usize| {
            libc::setsockopt(fd, libc::IPPROTO_IPV6, name, value, size as u32) == 0
        };
        let hops: i32 = 255;
        let off: i32 = 0;
        let on: i32 = 1;
        let index = ifindex as i32;
        let membership = libc::ipv6_mreq {
            ipv6mr_multiaddr: libc::in6_addr {
                s6_addr: GROUP6.octets(),
            },
            ipv6mr_interface: ifindex,
        };
        let int = std::mem::size_of::<i32>();
        let ok = set(libc::IPV6_MULTICAST_HOPS, (&raw const hops).cast(), int)
            && set(libc::IPV6_MULTICAST_LOOP, (&raw const off).cast(), int)
            && set(libc::IPV6_MULTICAST_IF, (&raw const index).cast(), int)
            && set(libc::IPV6_RECVHOPLIMIT, (&raw const on).cast(), int)
            && set(
                libc::IPV6_ADD_MEMBERSHIP,
                (&raw const membership).cast(),
                std::mem::size_of::<libc::ipv6_mreq>(),
            );
        if !ok {
            return Err(last_error("joining ff02::12"));
        }
        Ok(socket)
    }
}

/// One IPv6 packet's payload (raw IPv6 sockets give no header), its source and the hop
/// limit it came with, waiting at most `wait`.
fn receive6(socket: &OwnedFd, buffer: &mut [u8], wait: Duration) -> Option<(usize, IpAddr, i32)> {
    if !readable(socket, wait) {
        return None;
    }
    // SAFETY: recvmsg into `buffer`, a sockaddr_in6 and a control buffer, each with its
    // length; the control messages are walked with the libc macros.
    unsafe {
        let mut from: libc::sockaddr_in6 = std::mem::zeroed();
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        };
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_name = (&raw mut from).cast();
        message.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as u32;
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = std::mem::size_of_val(&control);
        let n = libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_DONTWAIT);
        if n <= 0 {
            return None;
        }
        let mut hop_limit = -1;
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::IPPROTO_IPV6
                && (*header).cmsg_type == libc::IPV6_HOPLIMIT
            {
                hop_limit = libc::CMSG_DATA(header).cast::<i32>().read_unaligned();
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
        let source = IpAddr::V6(Ipv6Addr::from(from.sin6_addr.s6_addr));
        Some((n as usize, source, hop_limit))
    }
}

/// An unsolicited neighbour advertisement for `address` (override set, the interface's
/// MAC as target link-layer address) to all nodes: neighbours update their entries for
/// it, as gratuitous ARP does for IPv4 (RFC 4861 §7.2.6).
fn unsolicited_na(ifindex: u32, address: Ipv6Addr) -> Result<(), String> {
    const NEIGHBOR_ADVERT: u8 = 136;
    const OVERRIDE: u8 = 0x20;
    const TARGET_LINK_ADDRESS: u8 = 2;
    let mac = netlink::interface_mac(ifindex)
        .ok()
        .flatten()
        .ok_or("no MAC")?;
    let mut message = vec![NEIGHBOR_ADVERT, 0, 0, 0, OVERRIDE, 0, 0, 0];
    message.extend_from_slice(&address.octets());
    message.extend_from_slice(&[TARGET_LINK_ADDRESS, 1]);
    message.extend_from_slice(&mac);
    // SAFETY: socket(2), setsockopt(2) with values of the sizes given; the kernel fills
    // in an ICMPv6 socket's checksum.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET6,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMPV6,
        );
        if fd < 0 {
            return Err(last_error("ICMPv6 socket"));
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let hops: i32 = 255;
        let index = ifindex as i32;
        let int = std::mem::size_of::<i32>() as u32;
        libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_HOPS,
            (&raw const hops).cast(),
            int,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            (&raw const index).cast(),
            int,
        );
        let all_nodes = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));
        for _ in 0..3 {
            send(&socket, &message, all_nodes, ifindex).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Whether `socket` has a packet to read within `wait` (at most a second).
fn readable(socket: &OwnedFd, wait: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = wait.as_millis().clamp(1, 1000) as i32;
    // SAFETY: one pollfd, alive for the call.
    unsafe { libc::poll(&mut poll, 1, millis) > 0 }
}

/// One packet (IP header included, as raw IPv4 sockets give it), waiting at most `wait`.
fn receive(socket: &OwnedFd, buffer: &mut [u8], wait: Duration) -> Option<usize> {
    if !readable(socket, wait) {
        return None;
    }
    // SAFETY: a receive into `buffer`, no more than its length.
    unsafe {
        let n = libc::recv(
            socket.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            libc::MSG_DONTWAIT,
        );
        (n > 0).then_some(n as usize)
    }
}

/// The advertisement in an IPv4 packet and its sender, if it is a valid one sent with
/// TTL 255 to the group (RFC 5798 §7.1).
fn advertisement(packet: &[u8]) -> Option<(Advertisement, IpAddr)> {
    let header = usize::from(packet.first()? & 0x0f) * 4;
    if packet.len() < header || packet[8] != 255 || packet[9] != PROTOCOL {
        return None;
    }
    let source = IpAddr::from(<[u8; 4]>::try_from(&packet[12..16]).ok()?);
    let destination = IpAddr::from(<[u8; 4]>::try_from(&packet[16..20]).ok()?);
    let advert = Advertisement::parse(&packet[header..], source, destination).ok()?;
    Some((advert, source))
}

/// A broadcast ARP request for `address` from the interface's MAC, sender and target the
/// address itself: neighbours update their entries for it.
fn gratuitous_arp(ifindex: u32, address: Ipv4Addr) -> Result<(), String> {
    const ETH_P_ARP: u16 = 0x0806;
    let mac = netlink::interface_mac(ifindex)
        .ok()
        .flatten()
        .ok_or("no MAC")?;
    let mut frame = Vec::with_capacity(42);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&address.octets());
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&address.octets());
    // SAFETY: a packet socket and a sockaddr_ll sized as given.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(last_error("packet socket"));
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let mut to: libc::sockaddr_ll = std::mem::zeroed();
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_protocol = ETH_P_ARP.to_be();
        to.sll_ifindex = ifindex as i32;
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        for _ in 0..3 {
            libc::sendto(
                socket.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const to).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
        }
    }
    Ok(())
}
