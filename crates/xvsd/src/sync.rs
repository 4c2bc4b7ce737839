//! xvsd's connection sync: the I/O around `xvs_sync` and the director's maps, on a thread
//! of its own.
//!
//! Every half second a master reads its connection table and sends what its backups do
//! not hold yet (`xvs_sync::Tracker`), as IPVS sync v1 messages to the group (or to each
//! unicast peer), paced to `max_rate`. A backup makes entries of what it hears
//! (`Director::take_synced`); one that starts, or becomes backup, asks for the whole
//! table (a bulk request, repeated every 10 s until a master answers). With VRRP the
//! role follows the instance (without it the director does both), and a master that
//! hands over sends its whole table as it goes: a director that was cut off and comes
//! back as master gets the connections made while it was away. Records of services or
//! real servers this director does not have yet wait (`xvs_sync::Waiting`) and are tried
//! again whenever its table changes: such a director gets the table before its health
//! checks have added back the real servers they removed while it was cut off.

use std::{
    collections::VecDeque,
    io,
    net::{IpAddr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use xvs_datapath::{Director, netlink, tables::sync::SyncIndex};
use xvs_health::config::SyncConfig;
use xvs_sync::{
    SyncedConn, Tracker, Waiting,
    wire::{self, Seal},
};

/// How often a master reads its table (less often when a round takes longer).
const ROUND: Duration = Duration::from_millis(500);
/// How often a backup that has heard no master asks again for the whole table.
const ASK_AGAIN: Duration = Duration::from_secs(10);
/// How often what sync did is logged (when it did something).
const REPORT: Duration = Duration::from_secs(10);
/// Records of unknown services or real servers that may wait for them at once (about
/// 100 bytes each); past that, more are given up.
const WAITING_AT_MOST: usize = 100_000;

/// Which way connections flow through this director.
#[derive(Clone)]
pub enum Role {
    /// Sends while the VRRP instance is master, receives while it is not.
    FollowVrrp(Arc<AtomicBool>),
    /// Sends and receives (active/active).
    Both,
    /// Sends only (`xvsd sync-daemon master`, IPVS's master thread).
    Master,
    /// Receives only (`xvsd sync-daemon backup`).
    Backup,
}

impl Role {
    fn sending(&self) -> bool {
        match self {
            Role::FollowVrrp(master) => master.load(Ordering::Relaxed),
            Role::Both | Role::Master => true,
            Role::Backup => false,
        }
    }

    /// A VRRP master receives too: a director that hands the VIPs over (it was master
    /// while this one was cut off, or before this one preempted it) sends its whole
    /// table as it goes, and the master takes what it lacks (its own entries win).
    fn receiving(&self) -> bool {
        match self {
            Role::FollowVrrp(_) | Role::Both | Role::Backup => true,
            Role::Master => false,
        }
    }

    /// Whether a backup that has heard no master should ask for the whole table.
    fn asking(&self) -> bool {
        match self {
            Role::FollowVrrp(master) => !master.load(Ordering::Relaxed),
            Role::Both | Role::Backup => true,
            Role::Master => false,
        }
    }
}

/// The running sync thread: stop it with [`Sync::stop`].
pub struct Sync {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    totals: Arc<Totals>,
}

/// What sync did since it started, for `/metrics`.
#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    messages_sent: AtomicU64,
    made: AtomicU64,
    updated: AtomicU64,
    in_use: AtomicU64,
    unknown: AtomicU64,
    /// Records waiting now (a gauge).
    waiting: AtomicU64,
    table_full: AtomicU64,
    dropped_messages: AtomicU64,
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

impl Sync {
    pub fn start(config: &SyncConfig, syncid: u8, role: Role) -> Result<Sync, String> {
        let (socket, ifindex) = sync_socket(config)?;
        let worker = Worker {
            socket,
            targets: if config.peers.is_empty() {
                vec![target(config.group, config.port, ifindex)]
            } else {
                config
                    .peers
                    .iter()
                    .map(|p| target(*p, config.port, ifindex))
                    .collect()
            },
            peers: config.peers.clone(),
            syncid,
            maxlen: config.maxlen(),
            max_rate: config.max_rate,
            seal: config.key.as_deref().map(|k| Seal::new(k.as_bytes())),
            role,
            tracker: Tracker::new(),
            outbox: VecDeque::new(),
            budget: 0.0,
            director: None,
            index: None,
            heard_master: false,
            asked: None,
            waiting: Waiting::new(WAITING_AT_MOST),
            started: Instant::now(),
            done: Done::default(),
            totals: Arc::new(Totals::default()),
            name: format!("sync on {} (syncid {syncid})", config.interface),
        };
        let totals = worker.totals.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sync".to_string())
            .spawn(move || worker.run(&stopping))
            .map_err(|e| format!("sync: {e}"))?;
        Ok(Sync {
            stop,
            thread,
            totals,
        })
    }

    /// What sync did since it started.
    pub fn totals(&self) -> xvs_health::report::SyncTotals {
        let t = &self.totals;
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        xvs_health::report::SyncTotals {
            sent: read(&t.sent),
            messages_sent: read(&t.messages_sent),
            made: read(&t.made),
            updated: read(&t.updated),
            in_use: read(&t.in_use),
            unknown: read(&t.unknown),
            waiting: read(&t.waiting),
            table_full: read(&t.table_full),
            dropped_messages: read(&t.dropped_messages),
        }
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// What sync did since the last report.
#[derive(Debug, Default)]
struct Done {
    sent_conns: usize,
    sent_messages: usize,
    made: usize,
    updated: usize,
    local: usize,
    /// Records of unknown services or real servers given up: run out while they waited,
    /// or past [`WAITING_AT_MOST`].
    unknown: usize,
    full: usize,
    replaced: usize,
    refused: usize,
    last_refusal: Option<String>,
}

impl Done {
    fn is_empty(&self) -> bool {
        self.sent_messages == 0
            && self.made + self.updated + self.local + self.unknown == 0
            && self.refused + self.full == 0
    }
}

struct Worker {
    socket: UdpSocket,
    targets: Vec<SocketAddr>,
    /// Only these are heard, if any.
    peers: Vec<IpAddr>,
    syncid: u8,
    maxlen: usize,
    max_rate: u64,
    seal: Option<Seal>,
    role: Role,
    tracker: Tracker,
    /// Messages waiting for the rate to allow them.
    outbox: VecDeque<Vec<u8>>,
    /// Bytes that may be sent now.
    budget: f64,
    director: Option<Director>,
    /// The table as records are matched to it (read again when it changes).
    index: Option<SyncIndex>,
    /// A master answered since this director became backup.
    heard_master: bool,
    /// When the whole table was last asked for.
    asked: Option<Instant>,
    /// Records of services or real servers this director does not have yet.
    waiting: Waiting,
    /// The worker's clock starts here (milliseconds since, for the tracker and waiting).
    started: Instant,
    done: Done,
    totals: Arc<Totals>,
    name: String,
}

impl Worker {
    fn run(mut self, stop: &AtomicBool) {
        let mut was_sending = None;
        let mut next_round = Instant::now();
        let mut next_report = Instant::now() + REPORT;
        let mut last_refill = Instant::now();
        let mut buffer = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            let sending = self.role.sending();
            if was_sending != Some(sending) {
                if sending {
                    // New backups hold nothing this director knows of.
                    self.tracker.resend_all();
                    println!("{}: sending to {}", self.name, self.listed_targets());
                } else {
                    if was_sending == Some(true) {
                        // Handing over: the new master gets this director's whole table
                        // (the connections it made while the other was away).
                        self.tracker.resend_all();
                        if let Err(e) = self.round(self.now_ms()) {
                            eprintln!("{}: {e}", self.name);
                        }
                        println!("{}: handing over {} messages", self.name, self.outbox.len());
                    }
                    self.heard_master = false;
                    self.asked = None;
                    println!("{}: receiving", self.name);
                }
                was_sending = Some(sending);
            }
            let now = Instant::now();
            if self.role.asking()
                && !self.heard_master
                && self.asked.is_none_or(|at| now - at >= ASK_AGAIN)
            {
                self.asked = Some(now);
                let mut request = wire::bulk_request(self.syncid);
                self.send_now(&mut request);
            }
            if sending && now >= next_round {
                if let Err(e) = self.round(self.now_ms()) {
                    eprintln!("{}: {e}", self.name);
                    self.director = None;
                }
                // A round reads the whole table (0.9 s at a million connections here):
                // the next waits at least as long, so sync takes half a core at most.
                next_round = Instant::now() + ROUND.max(now.elapsed());
            }
            // Refill the rate's budget (at most one second's worth).
            let elapsed = last_refill.elapsed().as_secs_f64();
            last_refill = Instant::now();
            self.budget = (self.budget + elapsed * self.max_rate as f64).min(self.max_rate as f64);
            while let Some(message) = self.outbox.front() {
                if (message.len() as f64) > self.budget {
                    break;
                }
                let message = self.outbox.pop_front().unwrap_or_default();
                self.budget -= message.len() as f64;
                self.transmit(&message);
            }
            let wait = if self.outbox.is_empty() {
                next_round
                    .saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), Duration::from_millis(100))
            } else {
                Duration::from_millis(5)
            };
            let _ = self.socket.set_read_timeout(Some(wait));
            if let Ok((n, from)) = self.socket.recv_from(&mut buffer) {
                let datagram = buffer[..n].to_vec();
                self.heard(&datagram, from.ip());
            }
            self.try_waiting();
            if Instant::now() >= next_report {
                next_report = Instant::now() + REPORT;
                self.report();
            }
        }
    }

    /// The worker's clock: milliseconds since it started.
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn listed_targets(&self) -> String {
        let list: Vec<String> = self.targets.iter().map(|t| t.to_string()).collect();
        list.join(", ")
    }

    /// The director and its index (which the director reads again when the table
    /// changed).
    fn director(&mut self) -> Result<(&mut Director, &mut SyncIndex), String> {
        if self.director.is_none() {
            self.director = Some(
                Director::find()
                    .map_err(|e| e.to_string())?
                    .ok_or("no director in this namespace")?,
            );
            self.index = None;
        }
        let director = self.director.as_mut().ok_or("no director")?;
        if self.index.is_none() {
            self.index = Some(director.sync_index().map_err(|e| e.to_string())?);
        }
        let index = self.index.as_mut().ok_or("no index")?;
        Ok((director, index))
    }

    /// A master's round: what the backups must be told, into the outbox.
    fn round(&mut self, now_ms: u64) -> Result<(), String> {
        let (director, index) = self.director()?;
        let records = director.sync_records(index).map_err(|e| e.to_string())?;
        let changes = self.tracker.changes(now_ms, records);
        if changes.is_empty() {
            return Ok(());
        }
        let overhead = if self.seal.is_some() {
            wire::SEAL_LEN
        } else {
            0
        };
        for mut message in wire::encode(self.syncid, &changes, self.maxlen - overhead) {
            if let Some(seal) = &self.seal {
                seal.seal(&mut message);
            }
            self.outbox.push_back(message);
            self.done.sent_messages += 1;
            add(&self.totals.messages_sent, 1);
        }
        self.done.sent_conns += changes.len();
        add(&self.totals.sent, changes.len());
        Ok(())
    }

    fn send_now(&mut self, message: &mut Vec<u8>) {
        if let Some(seal) = &self.seal {
            seal.seal(message);
        }
        self.transmit(message);
    }

    fn transmit(&self, message: &[u8]) {
        for target in &self.targets {
            if let Err(e) = self.socket.send_to(message, target) {
                eprintln!("{}: cannot send to {target}: {e}", self.name);
            }
        }
    }

    /// A datagram from `from`: checked, then taken (backup) or answered (master).
    fn heard(&mut self, datagram: &[u8], from: IpAddr) {
        if !self.peers.is_empty() && !self.peers.contains(&from) {
            return;
        }
        let message = match &self.seal {
            Some(seal) => seal.open(datagram),
            None => Ok(datagram),
        }
        .and_then(wire::decode);
        let message = match message {
            Ok(message) => message,
            Err(why) => {
                self.done.refused += 1;
                add(&self.totals.dropped_messages, 1);
                self.done.last_refusal = Some(format!("from {from}: {why}"));
                return;
            }
        };
        if self.syncid != 0 && message.syncid != self.syncid {
            return;
        }
        if message.bulk_request {
            if self.role.sending() {
                println!("{}: {from} asks for the whole table", self.name);
                self.tracker.resend_all();
            }
            return;
        }
        if !self.role.receiving() || message.conns.is_empty() {
            return;
        }
        self.heard_master = true;
        // What waits of these connections is older than what came.
        self.waiting.forget(&message.conns);
        self.take(&message.conns);
    }

    /// Makes entries of `conns`; those of services or real servers this director does
    /// not have wait.
    fn take(&mut self, conns: &[SyncedConn]) {
        let taken = match self.director() {
            Ok((director, index)) => director
                .take_synced(index, conns)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let taken = match taken {
            Ok(taken) => taken,
            Err(e) => {
                eprintln!("{}: {e}", self.name);
                self.director = None;
                return;
            }
        };
        let now_ms = self.now_ms();
        let given_up = taken
            .unknown
            .iter()
            .filter(|conn| !self.waiting.hold(now_ms, (*conn).clone()))
            .count();
        self.done.made += taken.made;
        self.done.updated += taken.updated;
        self.done.local += taken.local;
        self.done.unknown += given_up;
        self.done.full += taken.full;
        self.done.replaced += taken.replaced;
        let t = &self.totals;
        add(&t.made, taken.made);
        add(&t.updated, taken.updated);
        add(&t.in_use, taken.local);
        add(&t.unknown, given_up);
        add(&t.table_full, taken.full);
        t.waiting
            .store(self.waiting.len() as u64, Ordering::Relaxed);
    }

    /// Tries the waiting records again once the table has changed (a real server added
    /// back by the health checks, a service configured).
    fn try_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let changed = match self.director() {
            Ok((director, index)) => director.sync_table_changed(index).unwrap_or(true),
            Err(_) => false,
        };
        if !changed {
            return;
        }
        let (records, ran_out) = self.waiting.take(self.now_ms());
        self.done.unknown += ran_out;
        add(&self.totals.unknown, ran_out);
        self.take(&records);
    }

    fn report(&mut self) {
        if self.done.is_empty() {
            return;
        }
        let d = std::mem::take(&mut self.done);
        let mut parts = Vec::new();
        if d.sent_messages > 0 {
            parts.push(format!(
                "sent {} connections in {} messages",
                d.sent_conns, d.sent_messages
            ));
        }
        let waiting = self.waiting.len();
        if d.made + d.updated + d.local + d.unknown + d.full + waiting > 0 {
            parts.push(format!(
                "received {} new ({} replacing dead entries of this director), {} updated, {} in use here, {} of unknown services or real servers given up, {} waiting for theirs, {} with the table full",
                d.made, d.replaced, d.updated, d.local, d.unknown, waiting, d.full
            ));
        }
        if d.refused > 0 {
            parts.push(format!(
                "{} messages dropped (last {})",
                d.refused,
                d.last_refusal.unwrap_or_default()
            ));
        }
        println!("{}: {}", self.name, parts.join("; "));
    }
}

/// Where messages to `address` go: an IPv6 link-local address (a group like `ff02::51`,
/// or a peer's `fe80::` address) names the sync interface as its scope.
fn target(address: IpAddr, port: u16, ifindex: u32) -> SocketAddr {
    match address {
        IpAddr::V6(v6) => {
            let link_local =
                v6.segments()[0] & 0xffc0 == 0xfe80 || v6.segments()[0] & 0xff0f == 0xff02;
            SocketAddr::V6(std::net::SocketAddrV6::new(
                v6,
                port,
                0,
                if link_local { ifindex } else { 0 },
            ))
        }
        IpAddr::V4(_) => SocketAddr::new(address, port),
    }
}

/// Sets socket option `option` of `level` on `fd` to `value`.
fn set_option<T>(fd: i32, level: i32, option: i32, value: &T) -> io::Result<()> {
    // SAFETY: setsockopt(2) with a value of the size given.
    let ok = unsafe {
        libc::setsockopt(
            fd,
            level,
            option,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        ) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A UDP socket of the family of `v6` bound to `port` on every address, with
/// SO_REUSEADDR: a master and a backup daemon of one namespace both hear the group on the
/// same port.
fn bound_socket(port: u16, v6: bool) -> io::Result<UdpSocket> {
    use std::os::fd::FromRawFd;
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: socket(2) and bind(2) with values of the sizes given; the descriptor is
    // owned by the UdpSocket made of it (closed on every error path too).
    unsafe {
        let fd = libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = UdpSocket::from_raw_fd(fd);
        set_option(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1i32)?;
        let bound = if v6 {
            set_option(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &1i32)?;
            let mut address: libc::sockaddr_in6 = std::mem::zeroed();
            address.sin6_family = libc::AF_INET6 as u16;
            address.sin6_port = port.to_be();
            libc::bind(
                fd,
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as u32,
            )
        } else {
            let mut address: libc::sockaddr_in = std::mem::zeroed();
            address.sin_family = libc::AF_INET as u16;
            address.sin_port = port.to_be();
            libc::bind(
                fd,
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        };
        if bound != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }
}

/// A UDP socket on the sync port, bound to the interface, in the group there (unless it
/// has peers), sending from the interface with the configured TTL (IPv6: hop limit) and
/// without hearing itself; IPv4 or IPv6 as the group (or the peers) are. With the
/// interface's index.
fn sync_socket(config: &SyncConfig) -> Result<(UdpSocket, u32), String> {
    let interface = netlink::interfaces()
        .map_err(|e| format!("sync: {e}"))?
        .into_iter()
        .find(|i| i.name == config.interface)
        .ok_or_else(|| format!("sync: no interface {}", config.interface))?;
    let v6 = config.over_ipv6();
    let socket = bound_socket(config.port, v6)
        .map_err(|e| format!("sync: cannot bind port {}: {e}", config.port))?;
    let fd = socket.as_raw_fd();
    let name = config.interface.as_bytes();
    // SAFETY: setsockopt(2) with the interface's name and its length.
    let bound = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as u32,
        ) == 0
    };
    let joined = if !bound {
        Err(io::Error::last_os_error())
    } else if v6 {
        let index = interface.index as i32;
        let hops = i32::from(config.ttl);
        let membership = libc::ipv6_mreq {
            ipv6mr_multiaddr: libc::in6_addr {
                s6_addr: match config.group {
                    IpAddr::V6(group) => group.octets(),
                    IpAddr::V4(_) => [0; 16],
                },
            },
            ipv6mr_interface: interface.index,
        };
        set_option(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &index)
            .and_then(|()| set_option(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &hops))
            .and_then(|()| set_option(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &0i32))
            .and_then(|()| {
                if config.peers.is_empty() {
                    set_option(
                        fd,
                        libc::IPPROTO_IPV6,
                        libc::IPV6_ADD_MEMBERSHIP,
                        &membership,
                    )
                } else {
                    Ok(())
                }
            })
    } else {
        let membership = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr {
                s_addr: match config.group {
                    IpAddr::V4(group) => u32::from_ne_bytes(group.octets()),
                    IpAddr::V6(_) => 0,
                },
            },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: interface.index as i32,
        };
        set_option(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &membership)
            .and_then(|()| {
                if config.peers.is_empty() {
                    set_option(fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &membership)
                } else {
                    Ok(())
                }
            })
            .and_then(|()| socket.set_multicast_ttl_v4(u32::from(config.ttl)))
            .and_then(|()| socket.set_multicast_loop_v4(false))
    };
    joined.map_err(|e| {
        format!(
            "sync: cannot join {} on {}: {e}",
            config.group, config.interface
        )
    })?;
    Ok((socket, interface.index))
}

/// `xvsd sync-daemon master|backup [--mcast-interface IF] [--syncid N] [--sync-maxlen N]
/// [--mcast-group ADDR] [--mcast-port N] [--mcast-ttl N] [--detach]`: IPVS's sync thread
/// of that role for this namespace (what `xvsadm --start-daemon` starts), until stopped
/// through its control socket (`xvsadm --stop-daemon`) or a signal. With `--detach`, its
/// standard streams go to /dev/null once it runs (its starter reads them until then).
pub fn run_daemon(words: &[&str]) -> Result<(), String> {
    use std::io::{BufRead, BufReader, Write};
    use std::os::{linux::net::SocketAddrExt, unix::net::UnixListener};
    use xvs_sync::daemon::DaemonRole;

    let (role, config, detach) = daemon_args(words)?;
    let name = std::os::unix::net::SocketAddr::from_abstract_name(role.socket_name())
        .map_err(|e| e.to_string())?;
    let listener = UnixListener::bind_addr(&name).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => "Daemon has already run".to_string(),
        _ => format!("control socket: {e}"),
    })?;
    let syncid = config.syncid.unwrap_or(0);
    let status = format!(
        "{} sync daemon (mcast={}, syncid={syncid}, maxlen={}, group={}, port={}, ttl={})",
        role.name(),
        config.interface,
        config.maxlen(),
        config.group,
        config.port,
        config.ttl
    );
    let sync = Sync::start(
        &config,
        syncid,
        match role {
            DaemonRole::Master => Role::Master,
            DaemonRole::Backup => Role::Backup,
        },
    )?;
    println!("xvsd: {status}: running");
    if detach {
        detach_streams();
    }
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        let _ = BufReader::new(&stream).read_line(&mut line);
        match line.trim() {
            "status" => {
                let _ = writeln!(stream, "{status}");
            }
            "stop" => {
                sync.stop();
                let _ = writeln!(stream, "stopped");
                return Ok(());
            }
            other => {
                let _ = writeln!(stream, "error: unknown request {other:?}");
            }
        }
    }
    Ok(())
}

/// The daemon's role and settings from its command line.
fn daemon_args(words: &[&str]) -> Result<(xvs_sync::daemon::DaemonRole, SyncConfig, bool), String> {
    use xvs_sync::daemon::DaemonRole;
    let (role, rest) = match words.split_first() {
        Some((&"master", rest)) => (DaemonRole::Master, rest),
        Some((&"backup", rest)) => (DaemonRole::Backup, rest),
        _ => return Err("sync-daemon: master or backup?".to_string()),
    };
    let mut config = SyncConfig::on("eth0");
    let mut detach = false;
    let mut rest = rest.iter();
    while let Some(option) = rest.next() {
        if *option == "--detach" {
            detach = true;
            continue;
        }
        let value = rest
            .next()
            .ok_or_else(|| format!("sync-daemon: {option} needs a value"))?;
        let bad = || format!("sync-daemon: bad value {value:?} for {option}");
        match *option {
            "--mcast-interface" => config.interface = value.to_string(),
            "--syncid" => config.syncid = Some(value.parse().map_err(|_| bad())?),
            "--sync-maxlen" => config.maxlen_set = Some(value.parse().map_err(|_| bad())?),
            "--mcast-group" => config.group = value.parse().map_err(|_| bad())?,
            "--mcast-port" => config.port = value.parse().map_err(|_| bad())?,
            "--mcast-ttl" => config.ttl = value.parse().map_err(|_| bad())?,
            _ => return Err(format!("sync-daemon: unknown option {option}")),
        }
    }
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok((role, config, detach))
}

/// Points stdin, stdout and stderr at /dev/null: whoever started the daemon sees them
/// close, and later messages cannot fail on a closed pipe.
fn detach_streams() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, from one that stays open for
            // the call.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}
