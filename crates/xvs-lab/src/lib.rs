//! Labs of network namespaces for tests and the demo.
//!
//! A [`Lab`] is a set of hosts (one network namespace each) joined by veth links, possibly
//! through bridges that live in a host of their own. It is described in a few lines with
//! [`LabBuilder`], built with real `ip` commands, and torn down when dropped — also when a
//! test panics. A lab that was killed before it could clean up is swept by the next lab
//! (namespace names carry the owning process id).
//!
//! Nothing touches the root namespace: links are created inside the lab's namespaces
//! (`ip -n A link add … peer … netns B`), and traffic stays inside them.

mod servers;
pub mod topology;

use std::{
    fmt,
    fs::File,
    os::fd::AsRawFd,
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

pub use servers::{Server, ServerKind, pattern};

/// Every namespace of a lab is named `xvslab<pid>x<n>-<host>`.
const PREFIX: &str = "xvslab";

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// A failed lab step: the command and what it printed.
#[derive(Debug)]
pub struct LabError(String);

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LabError {}

pub type Result<T> = std::result::Result<T, LabError>;

/// One end of a link: a host, the interface name there, and its addresses (CIDR).
#[derive(Debug, Clone)]
pub struct End {
    host: String,
    interface: String,
    addresses: Vec<String>,
}

/// `end("web1", "eth0", &["192.168.1.10/24"])`.
pub fn end(host: &str, interface: &str, addresses: &[&str]) -> End {
    End {
        host: host.into(),
        interface: interface.into(),
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    }
}

#[derive(Debug, Clone)]
enum Step {
    Host(String),
    Link(End, End),
    Bridge {
        host: String,
        name: String,
        ports: Vec<End>,
    },
    Address(String, String, String),
    Route(String, Vec<String>),
    Sysctl(String, String, String),
    Mtu(String, String, u32),
}

/// Describes a lab; [`LabBuilder::build`] makes it.
#[derive(Debug, Default, Clone)]
pub struct LabBuilder {
    steps: Vec<Step>,
}

impl LabBuilder {
    pub fn new() -> LabBuilder {
        LabBuilder::default()
    }

    /// A host: its own network namespace, with `lo` up.
    pub fn host(mut self, name: &str) -> Self {
        self.steps.push(Step::Host(name.into()));
        self
    }

    /// A veth pair between two hosts, both ends up with their addresses.
    pub fn link(mut self, a: End, b: End) -> Self {
        self.steps.push(Step::Link(a, b));
        self
    }

    /// A bridge `name` inside host `host` (a switch), with one veth port to each end.
    /// The switch side of the port to host H is named after H.
    pub fn bridge(mut self, host: &str, name: &str, ports: Vec<End>) -> Self {
        self.steps.push(Step::Bridge {
            host: host.into(),
            name: name.into(),
            ports,
        });
        self
    }

    /// An extra address on an interface (e.g. a VIP on `lo`).
    pub fn address(mut self, host: &str, interface: &str, cidr: &str) -> Self {
        self.steps
            .push(Step::Address(host.into(), interface.into(), cidr.into()));
        self
    }

    /// A route, as the words after `ip route add`, e.g. `["default", "via", "1.1.1.254"]`.
    pub fn route(mut self, host: &str, route: &[&str]) -> Self {
        self.steps.push(Step::Route(
            host.into(),
            route.iter().map(|w| w.to_string()).collect(),
        ));
        self
    }

    /// A sysctl of the host's namespace, e.g. `("net.ipv4.ip_forward", "1")`.
    pub fn sysctl(mut self, host: &str, key: &str, value: &str) -> Self {
        self.steps
            .push(Step::Sysctl(host.into(), key.into(), value.into()));
        self
    }

    /// The MTU of an interface (e.g. room for tunnel headers on the real servers' side).
    pub fn mtu(mut self, host: &str, interface: &str, mtu: u32) -> Self {
        self.steps
            .push(Step::Mtu(host.into(), interface.into(), mtu));
        self
    }

    /// Creates the namespaces, links, addresses, routes and sysctls. On any failure what
    /// was created is removed again.
    pub fn build(self) -> Result<Lab> {
        sweep_stale_labs();
        let id = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let mut lab = Lab {
            tag: format!("{PREFIX}{}x{id}", std::process::id()),
            hosts: Vec::new(),
            children: Vec::new(),
            servers: Vec::new(),
        };
        for step in self.steps {
            lab.apply(step)?;
        }
        Ok(lab)
    }
}

/// A running lab. Dropping it stops its servers and processes and deletes its namespaces.
pub struct Lab {
    tag: String,
    hosts: Vec<String>,
    children: Vec<Child>,
    servers: Vec<Server>,
}

impl Lab {
    /// The network namespace name of `host` (for `ip netns exec`).
    pub fn namespace(&self, host: &str) -> String {
        format!("{}-{host}", self.tag)
    }

    /// The hosts of the lab, in creation order.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    fn apply(&mut self, step: Step) -> Result<()> {
        match step {
            Step::Host(name) => {
                let ns = self.namespace(&name);
                ip(&["netns", "add", &ns])?;
                self.hosts.push(name.clone());
                ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            }
            Step::Link(a, b) => {
                self.veth(&a, &b)?;
            }
            Step::Bridge { host, name, ports } => {
                let ns = self.namespace(&host);
                // Without multicast snooping, as a plain switch: IPv6 neighbour
                // solicitations reach every port from the start (a snooping bridge
                // delivers them by the MLD reports it has seen, and the hosts' first
                // reports go out before their ports join it).
                ip(&[
                    "-n",
                    &ns,
                    "link",
                    "add",
                    &name,
                    "type",
                    "bridge",
                    "mcast_snooping",
                    "0",
                ])?;
                ip(&["-n", &ns, "link", "set", &name, "up"])?;
                for port in ports {
                    let switch_end = end(&host, &port.host, &[]);
                    self.veth(&switch_end, &port)?;
                    ip(&["-n", &ns, "link", "set", &port.host, "master", &name])?;
                }
            }
            Step::Address(host, interface, cidr) => {
                let ns = self.namespace(&host);
                add_address(&ns, &interface, &cidr)?;
            }
            Step::Route(host, words) => {
                let ns = self.namespace(&host);
                let mut args = vec!["-n", ns.as_str(), "route", "add"];
                args.extend(words.iter().map(String::as_str));
                ip(&args)?;
            }
            Step::Mtu(host, interface, mtu) => {
                let ns = self.namespace(&host);
                ip(&[
                    "-n",
                    &ns,
                    "link",
                    "set",
                    &interface,
                    "mtu",
                    &mtu.to_string(),
                ])?;
            }
            Step::Sysctl(host, key, value) => {
                self.run_ok(&host, &["sysctl", "-q", "-w", &format!("{key}={value}")])?;
            }
        }
        Ok(())
    }

    fn veth(&self, a: &End, b: &End) -> Result<()> {
        let (ns_a, ns_b) = (self.namespace(&a.host), self.namespace(&b.host));
        ip(&[
            "-n",
            &ns_a,
            "link",
            "add",
            &a.interface,
            "type",
            "veth",
            "peer",
            "name",
            &b.interface,
            "netns",
            &ns_b,
        ])?;
        for (ns, e) in [(&ns_a, a), (&ns_b, b)] {
            for address in &e.addresses {
                add_address(ns, &e.interface, address)?;
            }
            // Local stacks would otherwise hand partial (offloaded) checksums to the
            // datapath (real NICs complete them, veths do not); and a veth takes frames
            // redirected by XDP only with GRO (NAPI) on (TOOLCHAIN.md's pitfalls).
            run(Command::new("ip").args([
                "netns",
                "exec",
                ns,
                "ethtool",
                "-K",
                &e.interface,
                "tx",
                "off",
                "gro",
                "on",
            ]))?;
            ip(&["-n", ns, "link", "set", &e.interface, "up"])?;
        }
        Ok(())
    }

    /// Permanent neighbour entries (address, MAC) on `host`'s `interface`, in one batch.
    pub fn static_neighbours(
        &self,
        host: &str,
        interface: &str,
        entries: &[(String, [u8; 6])],
    ) -> Result<()> {
        let batch: String = entries
            .iter()
            .map(|(addr, mac)| {
                let mac = mac.map(|b| format!("{b:02x}")).join(":");
                format!("neigh replace {addr} lladdr {mac} dev {interface} nud permanent\n")
            })
            .collect();
        let file = std::env::temp_dir().join(format!("{}-{host}-neigh", self.tag));
        std::fs::write(&file, batch)
            .map_err(|e| LabError(format!("cannot write {}: {e}", file.display())))?;
        let result = ip(&[
            "-n",
            &self.namespace(host),
            "-batch",
            &file.to_string_lossy(),
        ]);
        let _ = std::fs::remove_file(&file);
        result
    }

    /// A command to run inside `host`'s namespace (not yet started).
    pub fn command(&self, host: &str, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace(host)])
            .args(argv);
        cmd
    }

    /// Runs `argv` inside `host` and returns its output, whatever its exit status.
    pub fn run(&self, host: &str, argv: &[&str]) -> Result<Output> {
        self.command(host, argv)
            .output()
            .map_err(|e| LabError(format!("cannot run {argv:?} in {host}: {e}")))
    }

    /// Runs `cmd` (made by [`Lab::command`]) with `input` on its stdin; its output,
    /// whatever its exit status.
    pub fn feed(&self, mut cmd: Command, input: &str) -> Result<Output> {
        let describe = format!("{cmd:?}");
        let fail = |e: std::io::Error| LabError(format!("cannot run {describe}: {e}"));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(fail)?;
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, input.as_bytes()).map_err(fail)?;
        }
        child.wait_with_output().map_err(fail)
    }

    /// Runs `argv` inside `host`; its stdout if it succeeded, else an error with stderr.
    pub fn run_ok(&self, host: &str, argv: &[&str]) -> Result<String> {
        let output = self.run(host, argv)?;
        if !output.status.success() {
            return Err(LabError(format!(
                "{argv:?} in {host} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Pings `address` from `host` until it answers (at most ten tries of three seconds):
    /// in a fresh namespace the first neighbour solicitations can go unanswered, and a
    /// test whose traffic starts before then would measure that, not what it tests.
    pub fn reach(&self, host: &str, address: &str) -> Result<()> {
        let ping = ["ping", "-c", "1", "-W", "3", address];
        if (0..10).any(|_| self.run_ok(host, &ping).is_ok()) {
            Ok(())
        } else {
            Err(LabError(format!("{host} never reached {address}")))
        }
    }

    /// Starts `argv` in `host` in the background; it is killed when the lab drops.
    pub fn spawn(&mut self, host: &str, argv: &[&str]) -> Result<()> {
        let child = self
            .command(host, argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| LabError(format!("cannot start {argv:?} in {host}: {e}")))?;
        self.children.push(child);
        Ok(())
    }

    /// Starts a server in `host` listening on `port` (all addresses). It runs on a thread
    /// of this process whose socket lives in the host's namespace; stopped on drop.
    pub fn serve(&mut self, host: &str, port: u16, kind: ServerKind) -> Result<()> {
        let server = Server::start(&self.namespace(host), port, kind)?;
        self.servers.push(server);
        Ok(())
    }

    /// Stops the servers of `host` (e.g. to make a health check fail).
    pub fn stop_servers(&mut self, host: &str) {
        let ns = self.namespace(host);
        self.servers.retain(|server| server.namespace() != ns);
    }

    /// Runs `work` on a thread inside `host`'s network namespace and returns its result.
    pub fn within<T: Send>(&self, host: &str, work: impl FnOnce() -> T + Send) -> Result<T> {
        let ns = self.namespace(host);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    enter_namespace(&ns)?;
                    Ok(work())
                })
                .join()
                .map_err(|_| LabError(format!("work inside {host} panicked")))?
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.servers.clear();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for host in self.hosts.iter().rev() {
            let name = format!("{}-{host}", self.tag);
            // Processes a test started that outlive it (a daemon that detached itself)
            // would keep the namespace alive after it is deleted: they go first.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &name]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>()
                        && pid != std::process::id() as i32
                    {
                        // SAFETY: kill(2) on a process of the lab's own namespace.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

/// Moves the calling thread into the named network namespace (`/run/netns/NAME`).
pub fn enter_namespace(name: &str) -> Result<()> {
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).map_err(|e| LabError(format!("cannot open {path}: {e}")))?;
    // SAFETY: setns on a valid namespace fd; affects only the calling thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(LabError(format!(
            "cannot enter {name}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Adds `cidr` to `interface` in namespace `ns`; an IPv6 address without duplicate
/// address detection, so that it is usable at once rather than tentative for a second.
fn add_address(ns: &str, interface: &str, cidr: &str) -> Result<()> {
    let mut args = vec!["-n", ns, "addr", "add", cidr, "dev", interface];
    if cidr.contains(':') {
        args.push("nodad");
    }
    ip(&args)
}

fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args))
}

fn run(cmd: &mut Command) -> Result<()> {
    let output = cmd
        .output()
        .map_err(|e| LabError(format!("cannot run {cmd:?}: {e} (is iproute2 installed?)")))?;
    if !output.status.success() {
        return Err(LabError(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Deletes namespaces left by lab processes that no longer exist (killed before their
/// labs could drop).
fn sweep_stale_labs() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('x').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}
