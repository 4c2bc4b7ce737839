//! The IPVS table of one network namespace and the rules that change it, with the errors
//! the kernel's IPVS gives for each operation (and ipvsadm's words for them).

use std::{collections::HashMap, fmt, net::IpAddr};

use crate::{
    model::{
        Dest, Family, Forward, LocalAddress, MAX_LOCAL_ADDRESSES, PersistenceEngine, Service,
        ServiceKey, Stats, Timeouts, TunnelType,
    },
    sched::Scheduler,
};

/// The errors IPVS answers with (`errno` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// EEXIST
    Exists,
    /// ESRCH: no such service.
    NoService,
    /// ENOENT: no such destination, or an unknown scheduler / persistence engine.
    NotFound,
    /// EINVAL
    Invalid,
    /// ERANGE
    Range,
    /// ENOMEM: a table is full.
    NoMemory,
    /// A FULLNAT real server in a one-packet service: refused, as no entry would map its
    /// replies back.
    FullnatOps,
    /// A real server other than FULLNAT in a service that sends a PROXY protocol header:
    /// refused, as only FULLNAT connections carry it (NAT servers see the client's address
    /// already; DR and tunnel replies never pass the director to be put right).
    ProxyNeedsFullnat,
}

/// The operation that failed: ipvsadm words the same errno differently per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    AddService,
    EditService,
    DeleteService,
    ZeroService,
    GetService,
    AddDest,
    EditDest,
    DeleteDest,
    Flush,
    SetTimeouts,
    StartDaemon,
    StopDaemon,
    AddLocalAddress,
    DeleteLocalAddress,
}

/// A refused change, printed as ipvsadm prints it (`ipvs_strerror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpvsError {
    pub operation: Operation,
    pub errno: Errno,
}

impl fmt::Display for IpvsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Errno::*;
        use Operation::*;
        let text = match (self.operation, self.errno) {
            (AddService, Exists) => "Service already exists",
            (AddService | EditService, NotFound) => "Scheduler or persistence engine not found",
            (EditService | DeleteService | ZeroService | GetService, NoService) => {
                "No such service"
            }
            (AddDest | EditDest | DeleteDest, NoService) => "Service not defined",
            (AddDest, Exists) => "Destination already exists",
            (EditDest | DeleteDest, NotFound) => "No such destination",
            (StartDaemon, Exists) => "Daemon has already run",
            (AddLocalAddress | DeleteLocalAddress, NoService) => "No such service",
            (AddLocalAddress, Exists) => "Local address already exists",
            (AddLocalAddress, Invalid) => {
                "Invalid local address: not unicast, or not of the service's family"
            }
            (AddLocalAddress, NoMemory) => "Too many local addresses (at most 16 a service)",
            (DeleteLocalAddress, NotFound) => "No such local address",
            (_, FullnatOps) => "One-packet scheduling cannot be used with FULLNAT real servers",
            (_, ProxyNeedsFullnat) => {
                "PROXY protocol is sent on FULLNAT connections only: every real server needs -b"
            }
            (StopDaemon, NoService) => "No daemon is running",
            (_, Invalid) => {
                "Invalid operation.  Possibly wrong module version, address not unicast, ..."
            }
            (_, NoMemory) => "Memory allocation problem",
            (_, Range) => "Numerical result out of range",
            (_, Exists) => "File exists",
            (_, NoService) => "No such process",
            (_, NotFound) => "No such file or directory",
        };
        f.write_str(text)
    }
}

impl std::error::Error for IpvsError {}

fn fail<T>(operation: Operation, errno: Errno) -> Result<T, IpvsError> {
    Err(IpvsError { operation, errno })
}

/// Most real servers a Maglev (mh) service can have: its table size.
pub const MH_MAX_DESTS: usize = 4093;

/// A service as a command gives it: everything but the real servers and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceParams {
    pub key: ServiceKey,
    /// As typed (ipvsadm keeps at most 15 characters); resolved when applied.
    pub scheduler: String,
    pub flags: u32,
    pub timeout: u32,
    pub netmask: u32,
    /// As typed; resolved when applied.
    pub pe: Option<String>,
}

/// A real server as a command gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestParams {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: Forward,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub tunnel: crate::model::Tunnel,
}

/// The IPVS state of a namespace.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Services in creation order (what `--nosort` shows). Change their keys only through
    /// the operations below, which keep the index right.
    pub services: Vec<Service>,
    pub timeouts: Timeouts,
    /// Position of each service in `services`: a restore of 10,000 services must not scan.
    index: HashMap<ServiceKey, usize>,
}

impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        self.services == other.services && self.timeouts == other.timeouts
    }
}

impl Eq for Table {}

impl Table {
    /// A table holding `services` (in creation order).
    pub fn from_services(services: Vec<Service>, timeouts: Timeouts) -> Table {
        let index = services
            .iter()
            .enumerate()
            .map(|(position, service)| (service.key, position))
            .collect();
        Table {
            services,
            timeouts,
            index,
        }
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.index
            .get(key)
            .map(|&position| &self.services[position])
    }

    fn service_mut(&mut self, key: &ServiceKey, op: Operation) -> Result<&mut Service, IpvsError> {
        match self.index.get(key) {
            Some(&position) => Ok(&mut self.services[position]),
            None => fail(op, Errno::NoService),
        }
    }

    fn resolve(
        params: &ServiceParams,
        op: Operation,
    ) -> Result<(Scheduler, Option<PersistenceEngine>), IpvsError> {
        let scheduler = Scheduler::from_name(&params.scheduler)
            .map_or_else(|| fail(op, Errno::NotFound), Ok)?;
        let pe = match params.pe.as_deref() {
            None | Some("") => None,
            Some(name) => Some(
                PersistenceEngine::from_name(name).map_or_else(|| fail(op, Errno::NotFound), Ok)?,
            ),
        };
        if params.key.family() == Family::V6 && !(1..=128).contains(&params.netmask) {
            return fail(op, Errno::Invalid);
        }
        Ok((scheduler, pe))
    }

    /// `-A`.
    pub fn add_service(&mut self, params: &ServiceParams) -> Result<(), IpvsError> {
        let op = Operation::AddService;
        if self.service(&params.key).is_some() {
            return fail(op, Errno::Exists);
        }
        let (scheduler, pe) = Table::resolve(params, op)?;
        self.index.insert(params.key, self.services.len());
        self.services.push(Service {
            key: params.key,
            scheduler,
            flags: params.flags,
            timeout: params.timeout,
            netmask: params.netmask,
            pe,
            dests: Vec::new(),
            laddrs: Vec::new(),
            stats: Stats::default(),
        });
        Ok(())
    }

    /// `-E`: every parameter replaced (ipvsadm sends a whole service); real servers and
    /// counters stay.
    pub fn edit_service(&mut self, params: &ServiceParams) -> Result<(), IpvsError> {
        let op = Operation::EditService;
        let service = self.service_mut(&params.key, op)?;
        let (scheduler, pe) = Table::resolve(params, op)?;
        if scheduler == Scheduler::Mh && service.dests.len() > MH_MAX_DESTS {
            return fail(op, Errno::Invalid);
        }
        if params.flags & crate::model::flags::ONEPACKET != 0
            && service.dests.iter().any(|d| d.forward == Forward::FullNat)
        {
            return fail(op, Errno::FullnatOps);
        }
        if params.flags & crate::model::flags::PROXY_V2 != 0
            && service.dests.iter().any(|d| d.forward != Forward::FullNat)
        {
            return fail(op, Errno::ProxyNeedsFullnat);
        }
        service.scheduler = scheduler;
        service.flags = params.flags;
        service.timeout = params.timeout;
        service.netmask = params.netmask;
        service.pe = pe;
        Ok(())
    }

    /// `-D`.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), IpvsError> {
        let Some(position) = self.index.remove(key) else {
            return fail(Operation::DeleteService, Errno::NoService);
        };
        self.services.remove(position);
        for later in &self.services[position..] {
            if let Some(p) = self.index.get_mut(&later.key) {
                *p -= 1;
            }
        }
        Ok(())
    }

    /// `-C`.
    pub fn flush(&mut self) {
        self.services.clear();
        self.index.clear();
    }

    /// `-Z`: zero the counters of one service (and its real servers), or of all.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), IpvsError> {
        let services: Vec<&mut Service> = match key {
            Some(key) => vec![self.service_mut(key, Operation::ZeroService)?],
            None => self.services.iter_mut().collect(),
        };
        for service in services {
            service.stats = Stats::default();
            for dest in &mut service.dests {
                dest.stats = Stats::default();
            }
        }
        Ok(())
    }

    fn check_dest(service: &Service, params: &DestParams, op: Operation) -> Result<(), IpvsError> {
        if params.forward == Forward::FullNat && service.flags & crate::model::flags::ONEPACKET != 0
        {
            return fail(op, Errno::FullnatOps);
        }
        if params.forward != Forward::FullNat && service.flags & crate::model::flags::PROXY_V2 != 0
        {
            return fail(op, Errno::ProxyNeedsFullnat);
        }
        if params.l_threshold > params.u_threshold {
            return fail(op, Errno::Range);
        }
        if !is_unicast(&params.addr) {
            return fail(op, Errno::Invalid);
        }
        if params.forward == Forward::Tunnel
            && params.tunnel.kind == TunnelType::Gue
            && params.tunnel.port == 0
        {
            return fail(op, Errno::Invalid);
        }
        Ok(())
    }

    /// `-a`: the new real server goes to the head of the list, as in IPVS.
    pub fn add_dest(&mut self, key: &ServiceKey, params: &DestParams) -> Result<(), IpvsError> {
        let op = Operation::AddDest;
        let service = self.service_mut(key, op)?;
        Table::check_dest(service, params, op)?;
        if service.dest(&params.addr, params.port).is_some() {
            return fail(op, Errno::Exists);
        }
        if service.scheduler == Scheduler::Mh && service.dests.len() >= MH_MAX_DESTS {
            return fail(op, Errno::Invalid);
        }
        service.dests.insert(
            0,
            Dest {
                addr: params.addr,
                port: params.port,
                forward: params.forward,
                weight: params.weight,
                last_weight: params.weight,
                u_threshold: params.u_threshold,
                l_threshold: params.l_threshold,
                tunnel: params.tunnel,
                conns: Default::default(),
                stats: Stats::default(),
            },
        );
        Ok(())
    }

    /// `-e`: every parameter of the real server replaced; its counters stay.
    pub fn edit_dest(&mut self, key: &ServiceKey, params: &DestParams) -> Result<(), IpvsError> {
        let op = Operation::EditDest;
        let service = self.service_mut(key, op)?;
        Table::check_dest(service, params, op)?;
        let Some(dest) = service
            .dests
            .iter_mut()
            .find(|d| d.addr == params.addr && d.port == params.port)
        else {
            return fail(op, Errno::NotFound);
        };
        dest.forward = params.forward;
        dest.weight = params.weight;
        if params.weight > 0 {
            dest.last_weight = params.weight;
        }
        dest.u_threshold = params.u_threshold;
        dest.l_threshold = params.l_threshold;
        dest.tunnel = params.tunnel;
        Ok(())
    }

    /// `-d`.
    pub fn delete_dest(
        &mut self,
        key: &ServiceKey,
        addr: &IpAddr,
        port: u16,
    ) -> Result<(), IpvsError> {
        let op = Operation::DeleteDest;
        let service = self.service_mut(key, op)?;
        let before = service.dests.len();
        service
            .dests
            .retain(|d| !(d.addr == *addr && d.port == port));
        if service.dests.len() == before {
            return fail(op, Errno::NotFound);
        }
        Ok(())
    }

    /// `--add-laddr` (DPVS's `-P`): a local address for the service's FULLNAT real
    /// servers, of the service's family (a fwmark service's: its `-6`).
    pub fn add_laddr(&mut self, key: &ServiceKey, laddr: LocalAddress) -> Result<(), IpvsError> {
        let op = Operation::AddLocalAddress;
        let family = key.family();
        let service = self.service_mut(key, op)?;
        if !is_unicast(&laddr.addr) || Family::of(&laddr.addr) != family {
            return fail(op, Errno::Invalid);
        }
        if service.laddrs.iter().any(|l| l.addr == laddr.addr) {
            return fail(op, Errno::Exists);
        }
        if service.laddrs.len() >= MAX_LOCAL_ADDRESSES {
            return fail(op, Errno::NoMemory);
        }
        service.laddrs.push(laddr);
        Ok(())
    }

    /// `--del-laddr` (`-Q`). Connections that left from it go on until they end.
    pub fn delete_laddr(&mut self, key: &ServiceKey, addr: &IpAddr) -> Result<(), IpvsError> {
        let op = Operation::DeleteLocalAddress;
        let service = self.service_mut(key, op)?;
        let before = service.laddrs.len();
        service.laddrs.retain(|l| l.addr != *addr);
        if service.laddrs.len() == before {
            return fail(op, Errno::NotFound);
        }
        Ok(())
    }

    /// `--set tcp tcpfin udp`: a zero leaves that timeout as it is.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        if timeouts.tcp != 0 {
            self.timeouts.tcp = timeouts.tcp;
        }
        if timeouts.tcp_fin != 0 {
            self.timeouts.tcp_fin = timeouts.tcp_fin;
        }
        if timeouts.udp != 0 {
            self.timeouts.udp = timeouts.udp;
        }
    }
}

/// What IPVS accepts as a real server address without a routing lookup: not unspecified,
/// multicast, broadcast, or (IPv6) link-local.
fn is_unicast(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => {
            !(v6.is_unspecified() || v6.is_multicast() || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, Tunnel};

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: "1.1.1.254".parse().unwrap(),
            port,
        }
    }

    fn service(port: u16, scheduler: &str) -> ServiceParams {
        ServiceParams {
            key: key(port),
            scheduler: scheduler.into(),
            flags: 0,
            timeout: 0,
            netmask: u32::MAX,
            pe: None,
        }
    }

    fn dest(addr: &str) -> DestParams {
        DestParams {
            addr: addr.parse().unwrap(),
            port: 80,
            forward: Forward::Masq,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Tunnel::default(),
        }
    }

    #[test]
    fn errors_as_ipvs_gives_them() {
        let mut t = Table::default();
        t.add_service(&service(80, "rr")).unwrap();
        let e = t.add_service(&service(80, "rr")).unwrap_err();
        assert_eq!(e.to_string(), "Service already exists");
        let e = t.add_service(&service(81, "nope")).unwrap_err();
        assert_eq!(e.to_string(), "Scheduler or persistence engine not found");
        let e = t.edit_service(&service(82, "rr")).unwrap_err();
        assert_eq!(e.to_string(), "No such service");
        let e = t.add_dest(&key(82), &dest("192.168.1.10")).unwrap_err();
        assert_eq!(e.to_string(), "Service not defined");
        t.add_dest(&key(80), &dest("192.168.1.10")).unwrap();
        let e = t.add_dest(&key(80), &dest("192.168.1.10")).unwrap_err();
        assert_eq!(e.to_string(), "Destination already exists");
        let e = t
            .delete_dest(&key(80), &"192.168.1.99".parse().unwrap(), 80)
            .unwrap_err();
        assert_eq!(e.to_string(), "No such destination");
        let mut low_above_high = dest("192.168.1.11");
        low_above_high.l_threshold = 5;
        let e = t.add_dest(&key(80), &low_above_high).unwrap_err();
        assert_eq!(e.to_string(), "Numerical result out of range");
        let e = t.add_dest(&key(80), &dest("224.0.0.1")).unwrap_err();
        assert!(e.to_string().starts_with("Invalid operation.  Possibly"));
    }

    #[test]
    fn new_real_servers_go_first_and_edits_keep_counters() {
        let mut t = Table::default();
        t.add_service(&service(80, "rr")).unwrap();
        t.add_dest(&key(80), &dest("192.168.1.10")).unwrap();
        t.add_dest(&key(80), &dest("192.168.1.20")).unwrap();
        let order: Vec<String> = t.services[0]
            .dests
            .iter()
            .map(|d| d.addr.to_string())
            .collect();
        assert_eq!(order, ["192.168.1.20", "192.168.1.10"]);
        t.services[0].dests[0].stats.conns = 7;
        let mut heavier = dest("192.168.1.20");
        heavier.weight = 3;
        t.edit_dest(&key(80), &heavier).unwrap();
        assert_eq!(t.services[0].dests[0].weight, 3);
        assert_eq!(t.services[0].dests[0].stats.conns, 7);
        t.zero(None).unwrap();
        assert_eq!(t.services[0].dests[0].stats.conns, 0);
    }

    #[test]
    fn set_timeouts_zero_keeps() {
        let mut t = Table::default();
        t.set_timeouts(Timeouts {
            tcp: 0,
            tcp_fin: 30,
            udp: 0,
        });
        assert_eq!(
            t.timeouts,
            Timeouts {
                tcp: 900,
                tcp_fin: 30,
                udp: 300
            }
        );
    }
}
