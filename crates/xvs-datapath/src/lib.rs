//! The datapath of one network namespace, seen from user space.
//!
//! # Where the state lives
//! As IPVS keeps its tables per network namespace, xvs keeps its maps per network namespace,
//! and they live exactly as long as the namespace: the director XDP program is attached
//! through netlink, in generic mode, to the namespace's loopback interface (`lo`, which
//! every namespace has, always at index 1). That attachment needs no process, no file
//! descriptor and no bpffs pin; the program holds every map it uses. Any process in the
//! namespace — `xvsadm` under `ip netns exec`, `xvsd`, a test — finds the state the same way:
//! ask netlink which program sits on `lo`, then follow program id → map ids → maps.
//! When the namespace goes, its `lo` goes, and with it the program and the maps.
//! Data interfaces get the same program in driver mode (see [`Director::attach`]).

mod counts;
pub mod decap;
mod edit;
mod error;
pub mod fwmark;
pub mod lock;
pub mod neighbours;
pub mod netlink;
pub mod objects;
pub mod rates;
pub mod sysctl;
pub mod tables;
pub mod test_run;
pub mod upgrade;

use std::{collections::HashMap, os::fd::AsFd};

pub use edit::{ChangeError, ChangeOptions};
pub use error::{Error, ErrorKind, Result};

use aya::{
    Ebpf,
    maps::{Array, HashMap as BpfHashMap, Map, MapData, PerCpuArray},
    programs::{ProgramFd, Xdp, loaded_programs},
};
use netlink::XdpMode;
use xvs_common::{
    BelowHalf, CallId, Conn, ConnKey, Counters, DIRECTOR_PROGRAM, DestValue, FullnatPeer,
    LAYOUT_VERSION, LOOPBACK_INDEX, LocalAddresses, LookupTable, MAX_SET_LARGE, Neighbour,
    PersistParams, RateEstimate, ServiceEntry, ServiceKey, ServiceSched, TunnelSource, TwosSums,
    WrrKey, counter, map_names, meta,
};

/// The director of the current network namespace: its program and its maps.
pub struct Director {
    program_id: u32,
    program: ProgramFd,
    counters: PerCpuArray<MapData, u64>,
    meta: Array<MapData, u64>,
    services: BpfHashMap<MapData, ServiceKey, ServiceEntry>,
    /// Services of more than `MAX_SET` real servers.
    services_large: BpfHashMap<MapData, ServiceKey, ServiceEntry<MAX_SET_LARGE>>,
    dests: Array<MapData, DestValue>,
    /// Counters of services and real servers, by counter slot.
    stats: PerCpuArray<MapData, Counters>,
    /// Slots in `stats`: how many services and real servers this director can hold.
    stats_slots: u32,
    /// Possible CPUs: how many values a per-CPU map entry holds.
    cpus: usize,
    sched_states: BpfHashMap<MapData, u32, ServiceSched>,
    sched_large: BpfHashMap<MapData, u32, ServiceSched<MAX_SET_LARGE>>,
    wrr: BpfHashMap<MapData, WrrKey, u32>,
    /// sh, dh and mh tables by set id.
    lookup: BpfHashMap<MapData, u32, LookupTable>,
    /// Connection counts of real servers, by their counter slot (one 1.5 MiB value: read
    /// with [`Director::dest_counts`]).
    dest_counts: MapData,
    /// Tunnel source addresses of real servers, by their counter slot.
    tunnel_sources: Array<MapData, TunnelSource>,
    /// Rate estimates by counter slot (`rates.rs`).
    rates: BpfHashMap<MapData, u32, RateEstimate>,
    neighbours: BpfHashMap<MapData, [u8; 16], Neighbour>,
    conns: BpfHashMap<MapData, ConnKey, Conn>,
    /// FULLNAT entries' other sides, by entry key, and FULLNAT services' local addresses,
    /// by service id. `None` only for the program of an older build that a live upgrade
    /// is about to replace (see `create_from_object`): the layout check refuses such a
    /// director otherwise.
    fullnat: Option<BpfHashMap<MapData, ConnKey, FullnatPeer>>,
    laddrs: Option<BpfHashMap<MapData, u32, LocalAddresses>>,
    /// lblc's and lblcr's servers below half their weight, by service id (written by the
    /// datapath; user space only drops a removed service's). `None` as above (before
    /// 2026-12-07's builds).
    below_half: Option<BpfHashMap<MapData, u32, BelowHalf>>,
    /// twos's running sums of weights, by service id (the same: written by the datapath,
    /// dropped with the service).
    twos: Option<BpfHashMap<MapData, u32, TwosSums>>,
    /// How a persistent service's connections find their template, by service id (the
    /// same: written by the datapath, dropped with the service).
    persist: Option<BpfHashMap<MapData, u32, PersistParams>>,
    /// The Call-IDs of calls' templates (`--pe sip`), by template key (written and removed
    /// by the datapath; read by the listing).
    calls: Option<BpfHashMap<MapData, ConnKey, CallId>>,
    /// The kernel's ids of the director's maps, by name.
    map_ids: HashMap<String, u32>,
}

impl Director {
    /// The director of this namespace, if one was created here.
    pub fn find() -> Result<Option<Director>> {
        let interfaces =
            netlink::interfaces().map_err(|e| Error::new("cannot list interfaces", e))?;
        let Some(program_id) = interfaces
            .iter()
            .find(|interface| interface.index == LOOPBACK_INDEX)
            .and_then(|lo| lo.generic_program)
        else {
            // Nothing to open; but a caller without the right to use BPF could not have
            // read or made one either, and is told so rather than shown an empty table.
            if let Some(Err(e)) = loaded_programs().next()
                && Error::new("cannot list BPF programs", e).kind() == ErrorKind::Permission
            {
                return Err(permission_denied());
            }
            return Ok(None);
        };
        Director::open(program_id).map(Some)
    }

    /// The director of this namespace, created (loaded and anchored on `lo`) if there is none.
    pub fn find_or_create() -> Result<Director> {
        if let Some(director) = Director::find()? {
            return Ok(director);
        }
        Director::anchor(objects::load_director()?, LAYOUT_VERSION)?;
        Director::find()?.ok_or_else(|| Error::plain("the director vanished right after creation"))
    }

    /// Creates this namespace's director from `object`, an older build's director program,
    /// with `layout` recorded in its meta map: how the tests stand up the director a live
    /// upgrade takes over. Not for production: a director is made by this build's
    /// [`Director::find_or_create`].
    #[doc(hidden)]
    pub fn create_from_object(object: &[u8], layout: u64) -> Result<()> {
        // aya reads the ELF in place: 8-byte aligned.
        let mut aligned = vec![0u64; object.len().div_ceil(8)];
        // SAFETY: the u64 buffer has room for `object`'s bytes.
        let bytes = unsafe {
            let bytes =
                std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), object.len());
            bytes.copy_from_slice(object);
            &*bytes
        };
        let ebpf = objects::sized(&mut aya::EbpfLoader::new())?
            .load(bytes)
            .map_err(|e| Error::new("cannot load the director object", e))?;
        Director::anchor(ebpf, layout)
    }

    /// Initialises a loaded director object's meta map (with `layout`) and anchors its
    /// program on `lo`; another process's director, if it came first, is left as it is.
    fn anchor(mut ebpf: Ebpf, layout: u64) -> Result<()> {
        {
            let mut meta: Array<&mut MapData, u64> = map_mut(&mut ebpf, map_names::META)?;
            let defaults = xvs_core::model::Timeouts::default();
            for (slot, value) in [
                (meta::LAYOUT_VERSION, layout),
                (meta::NEXT_ID, 1),
                (meta::TIMEOUT_TCP, u64::from(defaults.tcp)),
                (meta::TIMEOUT_TCP_FIN, u64::from(defaults.tcp_fin)),
                (meta::TIMEOUT_UDP, u64::from(defaults.udp)),
            ] {
                meta.set(slot, value, 0)
                    .map_err(|e| Error::new("cannot initialise the director's maps", e))?;
            }
        }
        let program = director_program(&mut ebpf)?;
        let fd = program
            .fd()
            .map_err(|e| Error::new("director program has no descriptor", e))?;
        match netlink::attach_xdp(LOOPBACK_INDEX, fd.as_fd(), XdpMode::Generic, true) {
            Ok(()) => {}
            // Another process created this namespace's director first: use theirs.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => return Err(Error::new("cannot anchor the director on lo", e)),
        }
        Ok(())
    }

    /// Removes this namespace's director from every interface: its maps and all its state go.
    pub fn destroy() -> Result<()> {
        let Some(mut director) = Director::find()? else {
            return Ok(());
        };
        director.sync_fwmark_loop(&fwmark::Marks::new())?;
        for interface in director.attached_interfaces()? {
            for mode in [XdpMode::Driver, XdpMode::Generic] {
                if interface.program(mode) == Some(director.program_id) {
                    netlink::detach_xdp(interface.index, mode).map_err(|e| {
                        Error::new(format!("cannot detach from {}", interface.name), e)
                    })?;
                }
            }
        }
        Ok(())
    }

    fn open(program_id: u32) -> Result<Director> {
        let mut found = None;
        for info in loaded_programs() {
            match info {
                Ok(info) if info.id() == program_id => {
                    found = Some(info);
                    break;
                }
                Ok(_) => {}
                // Without CAP_SYS_ADMIN (or CAP_BPF) no program can be listed; any other
                // failure is a program that went while the list was read.
                Err(e) => {
                    let e = Error::new("cannot list BPF programs", e);
                    if e.kind() == ErrorKind::Permission {
                        return Err(permission_denied());
                    }
                }
            }
        }
        let info = found
            .ok_or_else(|| Error::plain(format!("program {program_id} on lo has vanished")))?;
        if info.name_as_str() != Some(DIRECTOR_PROGRAM) {
            return Err(Error::of(
                ErrorKind::Layout,
                format!(
                    "lo carries XDP program {program_id} ({}), not the xvs director; \
                 remove it with `ip link set dev lo xdpgeneric off`",
                    info.name_as_str().unwrap_or("unnamed")
                ),
            ));
        }
        let program = info
            .fd()
            .map_err(|e| Error::new("cannot open the director program", e))?;
        let map_ids = info
            .map_ids()
            .map_err(|e| Error::new("cannot list the director's maps", e))?
            .unwrap_or_default();
        let mut maps: HashMap<String, MapData> = HashMap::new();
        let mut ids_by_name = HashMap::new();
        for id in map_ids {
            let data = MapData::from_id(id).map_err(|e| Error::new("cannot open a map", e))?;
            let name = data
                .info()
                .map_err(|e| Error::new("cannot read a map's name", e))?
                .name_as_str()
                .map(str::to_owned);
            if let Some(name) = name {
                ids_by_name.insert(name.clone(), id);
                maps.insert(name, data);
            }
        }
        let mut take = |name: &str| {
            maps.remove(name)
                .ok_or_else(|| Error::plain(format!("the director has no map {name}")))
        };
        let wrong = |name: &'static str| move |e| Error::new(name, e);
        let counters = PerCpuArray::try_from(Map::PerCpuArray(take(map_names::COUNTERS)?))
            .map_err(wrong(map_names::COUNTERS))?;
        let meta =
            Array::try_from(Map::Array(take(map_names::META)?)).map_err(wrong(map_names::META))?;
        let services = BpfHashMap::try_from(Map::HashMap(take(map_names::SERVICES)?))
            .map_err(wrong(map_names::SERVICES))?;
        let services_large = BpfHashMap::try_from(Map::HashMap(take(map_names::SERVICES_LARGE)?))
            .map_err(wrong(map_names::SERVICES_LARGE))?;
        let dests = Array::try_from(Map::Array(take(map_names::DESTS)?))
            .map_err(wrong(map_names::DESTS))?;
        let stats_data = take(map_names::STATS)?;
        let stats_slots = stats_data
            .info()
            .map_err(wrong(map_names::STATS))?
            .max_entries();
        let stats =
            PerCpuArray::try_from(Map::PerCpuArray(stats_data)).map_err(wrong(map_names::STATS))?;
        let cpus = aya::util::nr_cpus()
            .map_err(|(what, e)| Error::new(format!("cannot count CPUs ({what})"), e))?;
        let tunnel_sources = Array::try_from(Map::Array(take(map_names::TUNNEL_SOURCES)?))
            .map_err(wrong(map_names::TUNNEL_SOURCES))?;
        let dest_counts = take(map_names::DEST_COUNTS)?;
        let mut hash = |name: &'static str| -> Result<Map> { Ok(Map::HashMap(take(name)?)) };
        let sched_states =
            BpfHashMap::try_from(hash(map_names::SCHED)?).map_err(wrong(map_names::SCHED))?;
        let wrr = BpfHashMap::try_from(hash(map_names::WRR)?).map_err(wrong(map_names::WRR))?;
        let sched_large = BpfHashMap::try_from(hash(map_names::SCHED_LARGE)?)
            .map_err(wrong(map_names::SCHED_LARGE))?;
        let lookup =
            BpfHashMap::try_from(hash(map_names::LOOKUP)?).map_err(wrong(map_names::LOOKUP))?;
        let rates =
            BpfHashMap::try_from(hash(map_names::RATES)?).map_err(wrong(map_names::RATES))?;
        let neighbours = BpfHashMap::try_from(hash(map_names::NEIGHBOURS)?)
            .map_err(wrong(map_names::NEIGHBOURS))?;
        let conns =
            BpfHashMap::try_from(hash(map_names::CONNS)?).map_err(wrong(map_names::CONNS))?;
        let layout = meta
            .get(&meta::LAYOUT_VERSION, 0)
            .map_err(|e| Error::new("cannot read the maps' layout", e))?;
        if layout != LAYOUT_VERSION {
            return Err(Error::of(
                ErrorKind::Layout,
                format!(
                    "this namespace's director has map layout {layout}, this xvs expects \
                 {LAYOUT_VERSION}; remove it with `ip link set dev lo xdpgeneric off`"
                ),
            ));
        }
        // Maps since layout 27: an older program's lacks them (the tests' stand-in for an
        // older build's director, whose layout was set to this one's to write its table).
        let fullnat = match maps.remove(map_names::FULLNAT) {
            Some(map) => {
                Some(BpfHashMap::try_from(Map::HashMap(map)).map_err(wrong(map_names::FULLNAT))?)
            }
            None => None,
        };
        let laddrs = match maps.remove(map_names::LOCAL_ADDRESSES) {
            Some(map) => Some(
                BpfHashMap::try_from(Map::HashMap(map))
                    .map_err(wrong(map_names::LOCAL_ADDRESSES))?,
            ),
            None => None,
        };
        let below_half = match maps.remove(map_names::BELOW_HALF) {
            Some(map) => Some(
                BpfHashMap::try_from(Map::HashMap(map)).map_err(wrong(map_names::BELOW_HALF))?,
            ),
            None => None,
        };
        let twos = match maps.remove(map_names::TWOS) {
            Some(map) => {
                Some(BpfHashMap::try_from(Map::HashMap(map)).map_err(wrong(map_names::TWOS))?)
            }
            None => None,
        };
        let persist = match maps.remove(map_names::PERSIST) {
            Some(map) => {
                Some(BpfHashMap::try_from(Map::HashMap(map)).map_err(wrong(map_names::PERSIST))?)
            }
            None => None,
        };
        let calls = match maps.remove(map_names::CALLS) {
            Some(map) => {
                Some(BpfHashMap::try_from(Map::HashMap(map)).map_err(wrong(map_names::CALLS))?)
            }
            None => None,
        };
        Ok(Director {
            program_id,
            program,
            counters,
            meta,
            services,
            services_large,
            dests,
            stats,
            stats_slots,
            cpus,
            sched_states,
            sched_large,
            wrr,
            lookup,
            tunnel_sources,
            dest_counts,
            rates,
            neighbours,
            conns,
            fullnat,
            laddrs,
            below_half,
            twos,
            persist,
            calls,
            map_ids: ids_by_name,
        })
    }

    /// Runs `frame` through this namespace's director as if it arrived on interface
    /// `ingress_ifindex` (BPF_PROG_TEST_RUN: the real program and maps, no interface
    /// needed). With the kernel's run time in nanoseconds.
    pub fn run_frame(
        &self,
        ingress_ifindex: u32,
        frame: &[u8],
    ) -> Result<(test_run::Outcome, u32)> {
        test_run::run_fd(self.program.as_fd(), ingress_ifindex, frame)
    }

    /// Runs `frame` through the director `repeat` times in one call (see
    /// [`test_run::run_fd_repeated`]).
    pub fn run_frame_repeated(
        &self,
        ingress_ifindex: u32,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(test_run::Outcome, u32)> {
        test_run::run_fd_repeated(self.program.as_fd(), ingress_ifindex, frame, repeat)
    }

    /// The connection table's capacity (entries) and the memory the kernel charges for it
    /// (`memlock` of the map, bytes).
    pub fn connection_table_memory(&self) -> Result<(u32, u64)> {
        self.map_memory(map_names::CONNS)
    }

    /// The capacity (entries) of the director's map `name` and the memory the kernel
    /// charges for it now (`memlock` in its fdinfo, bytes: for a hash map without
    /// preallocation, what its entries take).
    pub fn map_memory(&self, name: &str) -> Result<(u32, u64)> {
        let id = *self
            .map_ids
            .get(name)
            .ok_or_else(|| Error::plain(format!("the director has no map {name}")))?;
        let info = aya::maps::MapInfo::from_id(id)
            .map_err(|e| Error::new(format!("cannot read {name}'s info"), e))?;
        let fd = info
            .fd()
            .map_err(|e| Error::new(format!("cannot open {name}"), e))?;
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd());
        let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}"))
            .map_err(|e| Error::new(format!("cannot read {name}'s fdinfo"), e))?;
        let memlock = fdinfo
            .lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Error::plain(format!("no memlock in {name}'s fdinfo")))?;
        Ok((info.max_entries(), memlock))
    }

    /// The director program (to run frames through it from other threads).
    pub fn program_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.program.as_fd()
    }

    /// The kernel's id of the director program.
    pub fn program_id(&self) -> u32 {
        self.program_id
    }

    /// How many instructions the verifier walked to accept the program: its work, which
    /// is most of the time a new director takes to create.
    pub fn verified_instructions(&self) -> Option<u32> {
        loaded_programs()
            .filter_map(|info| info.ok())
            .find(|info| info.id() == self.program_id)
            .and_then(|info| info.verified_instruction_count())
    }

    /// Attaches the director to the interface `name`, in the mode that suits it (see
    /// [`mode_for`]). Attaching where it already is changes nothing; `lo` always carries
    /// it already.
    pub fn attach(&self, name: &str) -> Result<()> {
        let interface = interface_named(name)?;
        self.attach_interface(&interface)
    }

    fn attach_interface(&self, interface: &netlink::Interface) -> Result<()> {
        if interface.index == LOOPBACK_INDEX
            || interface.driver_program == Some(self.program_id)
            || interface.generic_program == Some(self.program_id)
        {
            return Ok(());
        }
        let mode = mode_for(interface);
        let attached = netlink::attach_xdp(interface.index, self.program.as_fd(), mode, false);
        match attached {
            Err(_) if mode == XdpMode::Driver => netlink::attach_xdp(
                interface.index,
                self.program.as_fd(),
                XdpMode::Generic,
                false,
            ),
            other => other,
        }
        .map_err(|e| {
            Error::new(
                format!("cannot attach the director to {}", interface.name),
                e,
            )
        })
    }

    /// Attaches the director to every interface of the namespace but `lo` that does not
    /// carry it yet: what a director needs when its first service appears, as IPVS hooks
    /// every interface. Returns the names attached now.
    pub fn attach_everywhere(&self) -> Result<Vec<String>> {
        let mut attached = Vec::new();
        for interface in
            netlink::interfaces().map_err(|e| Error::new("cannot list interfaces", e))?
        {
            if interface.index == LOOPBACK_INDEX
                || interface.driver_program == Some(self.program_id)
                || interface.generic_program == Some(self.program_id)
            {
                continue;
            }
            self.attach_interface(&interface)?;
            attached.push(interface.name);
        }
        Ok(attached)
    }

    /// Detaches the director from the interface `name`.
    pub fn detach(&self, name: &str) -> Result<()> {
        let interface = interface_named(name)?;
        // lo keeps the director for as long as the state lives: see `destroy`.
        if interface.index == LOOPBACK_INDEX {
            return Ok(());
        }
        for mode in [XdpMode::Driver, XdpMode::Generic] {
            if interface.program(mode) == Some(self.program_id) {
                netlink::detach_xdp(interface.index, mode).map_err(|e| {
                    Error::new(format!("cannot detach the director from {name}"), e)
                })?;
            }
        }
        Ok(())
    }

    /// The interfaces of this namespace that carry the director (`lo` included).
    pub fn attached_interfaces(&self) -> Result<Vec<netlink::Interface>> {
        let interfaces =
            netlink::interfaces().map_err(|e| Error::new("cannot list interfaces", e))?;
        Ok(interfaces
            .into_iter()
            .filter(|i| {
                i.driver_program == Some(self.program_id)
                    || i.generic_program == Some(self.program_id)
            })
            .collect())
    }

    /// The datapath counters, summed over CPUs, indexed by [`xvs_common::counter`].
    pub fn counters(&self) -> Result<Vec<u64>> {
        (0..counter::COUNT)
            .map(|index| {
                self.counters
                    .get(&index, 0)
                    .map(|per_cpu| per_cpu.iter().sum())
                    .map_err(|e| Error::new("cannot read counters", e))
            })
            .collect()
    }

    /// A slot of the small control array (see [`xvs_common::meta`]).
    pub fn meta(&self, index: u32) -> Result<u64> {
        self.meta
            .get(&index, 0)
            .map_err(|e| Error::new("cannot read the meta map", e))
    }

    /// Writes a slot of the small control array.
    pub fn set_meta(&mut self, index: u32, value: u64) -> Result<()> {
        self.meta
            .set(index, value, 0)
            .map_err(|e| Error::new("cannot write the meta map", e))
    }
}

/// What ipvsadm says when it is not root (its `EPERM` text).
fn permission_denied() -> Error {
    Error::of(
        ErrorKind::Permission,
        "Permission denied (you must be root)",
    )
}

/// Environment variable forcing the attach mode: `driver` or `generic`.
pub const XDP_MODE_ENV: &str = "XVS_XDP_MODE";

/// The XDP mode for an interface. Driver (native) mode is the fast path. On veth it would
/// hold frames the director sends back out (XDP_TX, redirect) until the peer's next
/// packet unless the peer runs an XDP program too, which xvs cannot arrange in another
/// namespace: veths get generic mode, which hands such frames to the peer at once.
pub fn mode_for(interface: &netlink::Interface) -> XdpMode {
    match std::env::var(XDP_MODE_ENV).as_deref() {
        Ok("generic") => XdpMode::Generic,
        Ok("driver") => XdpMode::Driver,
        _ if interface.kind == "veth" => XdpMode::Generic,
        _ => XdpMode::Driver,
    }
}

pub(crate) fn interface_named(name: &str) -> Result<netlink::Interface> {
    netlink::interfaces()
        .map_err(|e| Error::new("cannot list interfaces", e))?
        .into_iter()
        .find(|interface| interface.name == name)
        .ok_or_else(|| Error::plain(format!("no interface {name} in this network namespace")))
}

/// The director program of a loaded object, loaded into the kernel.
pub fn director_program(ebpf: &mut Ebpf) -> Result<&mut Xdp> {
    let program: &mut Xdp = ebpf
        .program_mut(DIRECTOR_PROGRAM)
        .ok_or_else(|| Error::plain("the embedded object has no director program"))?
        .try_into()
        .map_err(|e| Error::new("the director is not an XDP program", e))?;
    program
        .load()
        .map_err(|e| Error::new("the kernel refused the director program", e))?;
    Ok(program)
}

fn map_mut<'a, V: aya::Pod>(ebpf: &'a mut Ebpf, name: &str) -> Result<Array<&'a mut MapData, V>> {
    let map = ebpf
        .map_mut(name)
        .ok_or_else(|| Error::plain(format!("the embedded object has no map {name}")))?;
    Array::try_from(map).map_err(|e| Error::new(name, e))
}
