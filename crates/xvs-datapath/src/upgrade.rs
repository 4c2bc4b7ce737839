//! Live upgrade: this build's director program takes over a running director of the same
//! map layout or of an older one it knows ([`MIGRATIONS`]), keeping its maps (so its
//! table, connections and counters) and replacing the program on every interface at
//! once, without a moment with no program.
//!
//! The maps of the running program are pinned in a bpffs mounted for the purpose (a
//! mount of our own, gone when done), the new object is loaded reusing them by those
//! pins, and the new program replaces the old one interface by interface through netlink.
//! From an older layout, the maps whose format changed are made anew and their content
//! carried over. A director of a layout this build does not know is refused before
//! anything changes (the maps' meaning differs: taking them over would misread them).

use std::{
    ffi::CString,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use aya::{
    EbpfLoader,
    maps::{Array, Map, MapData},
    programs::loaded_programs,
};
use xvs_common::{DIRECTOR_PROGRAM, DestCounts, LAYOUT_VERSION, LOOPBACK_INDEX, map_names, meta};

use crate::{Director, Error, ErrorKind, Result, counts, director_program, netlink, objects};

/// The older layouts this build takes over, each with the maps it makes anew (their
/// content carried over); every other map is kept as it is.
pub const MIGRATIONS: &[(u64, &[&str])] = &[
    // 27 → 28: the PROXY protocol grows the per-CPU scratch space (which holds nothing
    // between packets); its state lives in what was padding of the FULLNAT map's values
    // (read as "no header" in entries from before), and its counter in a free slot.
    (27, &[map_names::SCRATCH]),
    // 26 → 27: FULLNAT adds two maps (made by the new program's load, empty: a 26
    // program never made a FULLNAT connection) and grows the per-CPU scratch space,
    // which holds nothing between packets.
    (26, &[map_names::SCRATCH]),
    // 25 → 26: every map's format is the same; 26 adds a flag for synced connections
    // (which a 25 program never meets) and makes the counts map mappable, so that map is
    // made anew and the counts copied. Then as 26 → 27 → 28.
    (25, &[map_names::DEST_COUNTS, map_names::SCRATCH]),
];

/// What an upgrade did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub old_program: u32,
    pub new_program: u32,
    /// The layout of the director taken over (this build's, or an older one).
    pub from_layout: u64,
    /// The interfaces whose program was replaced (`lo` first).
    pub interfaces: Vec<String>,
}

/// A bpffs mounted on a fresh folder, unmounted and removed on drop.
struct PinFolder(PathBuf);

impl PinFolder {
    fn mount() -> Result<PinFolder> {
        let folder = std::env::temp_dir().join(format!("xvs-upgrade-{}", std::process::id()));
        std::fs::create_dir_all(&folder)
            .map_err(|e| Error::new(format!("cannot create {}", folder.display()), e))?;
        let target = CString::new(folder.to_string_lossy().as_bytes())
            .map_err(|e| Error::new("bad folder name", e))?;
        let (source, kind) = (c"bpf", c"bpf");
        // SAFETY: valid C strings; a plain mount without data.
        let mounted = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                kind.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if mounted != 0 {
            let _ = std::fs::remove_dir(&folder);
            return Err(Error::new(
                "cannot mount a bpffs to pin the maps",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(PinFolder(folder))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for PinFolder {
    fn drop(&mut self) {
        if let Ok(target) = CString::new(self.0.to_string_lossy().as_bytes()) {
            // SAFETY: unmounting what `mount` mounted; the pins (not the maps) go with it.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Replaces the running director of this namespace by this build's program, keeping its
/// maps. Fails, changing nothing, if there is no director or its layout is neither this
/// build's nor one of [`MIGRATIONS`].
pub fn upgrade() -> Result<Upgrade> {
    let old_id = netlink::interfaces()
        .map_err(|e| Error::new("cannot list interfaces", e))?
        .iter()
        .find(|i| i.index == LOOPBACK_INDEX)
        .and_then(|lo| lo.generic_program)
        .ok_or_else(|| Error::of(ErrorKind::NoDirector, "no director in this namespace"))?;
    let info = loaded_programs()
        .filter_map(|info| info.ok())
        .find(|info| info.id() == old_id)
        .ok_or_else(|| Error::plain(format!("program {old_id} has vanished")))?;
    if info.name_as_str() != Some(DIRECTOR_PROGRAM) {
        return Err(Error::of(
            ErrorKind::Layout,
            format!("lo carries XDP program {old_id}, not the xvs director"),
        ));
    }
    let map_ids = info
        .map_ids()
        .map_err(|e| Error::new("cannot list the director's maps", e))?
        .unwrap_or_default();
    let mut maps = Vec::new();
    for id in map_ids {
        let map = MapData::from_id(id).map_err(|e| Error::new("cannot open a map", e))?;
        let Some(name) = map
            .info()
            .map_err(|e| Error::new("cannot read a map's name", e))?
            .name_as_str()
            .map(str::to_owned)
        else {
            continue;
        };
        // The program's own constants (.rodata, .bss) come with the new object.
        if !name.starts_with('.') {
            maps.push((name, map));
        }
    }
    let layout = layout_of(&maps)?;
    let renewed: &[&str] = if layout == LAYOUT_VERSION {
        &[]
    } else {
        MIGRATIONS
            .iter()
            .find(|(from, _)| *from == layout)
            .map(|(_, renewed)| *renewed)
            .ok_or_else(|| {
                Error::of(
                    ErrorKind::Layout,
                    format!(
                        "this namespace's director has map layout {layout}; this build takes over \
                         layout {LAYOUT_VERSION} and {}, not {layout}: save the table \
                         (`xvsadm -S -n`), `xvsd destroy`, and restore it (open connections are lost)",
                        MIGRATIONS
                            .iter()
                            .map(|(from, _)| from.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?
    };
    let pins = PinFolder::mount()?;
    let mut paths = Vec::new();
    for (name, map) in &maps {
        if renewed.contains(&name.as_str()) {
            continue;
        }
        let path = pins.path(name);
        map.pin(&path)
            .map_err(|e| Error::new(format!("cannot pin {name}"), e))?;
        paths.push((name.clone(), path));
    }
    let mut loader = EbpfLoader::new();
    objects::sized(&mut loader)?;
    for (name, path) in &paths {
        loader.map_pin_path(name.as_str(), path.as_path());
    }
    let mut ebpf = loader.load(objects::DIRECTOR).map_err(|e| {
        Error::new(
            "cannot load the new director over the running one's maps",
            e,
        )
    })?;
    // The counts, copied before the switch; what the old program counts until it stops
    // is added after it.
    let old_counts = maps
        .iter()
        .find(|(name, _)| name == map_names::DEST_COUNTS)
        .map(|(_, map)| map);
    let carried = match (renewed.contains(&map_names::DEST_COUNTS), old_counts) {
        (true, Some(old)) => {
            let mut copy = counts::read(old.fd().as_fd())?;
            counts::write(new_map_fd(&mut ebpf, map_names::DEST_COUNTS)?, &mut copy)?;
            Some(copy)
        }
        _ => None,
    };
    let program = director_program(&mut ebpf)?;
    let fd = program
        .fd()
        .map_err(|e| Error::new("the new director program has no descriptor", e))?;
    // lo first: it anchors the state; then every interface that carried the old program,
    // in the mode it had there.
    let mut interfaces: Vec<netlink::Interface> = netlink::interfaces()
        .map_err(|e| Error::new("cannot list interfaces", e))?
        .into_iter()
        .filter(|i| i.driver_program == Some(old_id) || i.generic_program == Some(old_id))
        .collect();
    interfaces.sort_by_key(|i| i.index != LOOPBACK_INDEX);
    let mut replaced = Vec::new();
    for interface in &interfaces {
        for mode in [netlink::XdpMode::Generic, netlink::XdpMode::Driver] {
            if interface.program(mode) == Some(old_id) {
                netlink::attach_xdp(interface.index, fd.as_fd(), mode, false).map_err(|e| {
                    Error::new(
                        format!("cannot replace the program on {}", interface.name),
                        e,
                    )
                })?;
            }
        }
        replaced.push(interface.name.clone());
    }
    if let (Some(copied), Some(old)) = (carried, old_counts) {
        // Runs of the old program that began before the switch end within a moment.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let last = counts::read(old.fd().as_fd())?;
        let delta = counts_delta(&copied, &last);
        let mapped = counts::MappedCounts::map(new_map_fd(&mut ebpf, map_names::DEST_COUNTS)?)?;
        mapped.add(&delta);
    }
    if layout != LAYOUT_VERSION {
        set_layout(&maps)?;
    }
    drop(ebpf);
    let new = Director::find()?
        .ok_or_else(|| Error::plain("the director vanished during the upgrade"))?;
    remove_pins(&paths);
    Ok(Upgrade {
        old_program: old_id,
        new_program: new.program_id(),
        from_layout: layout,
        interfaces: replaced,
    })
}

/// The layout the running director's meta map records.
fn layout_of(maps: &[(String, MapData)]) -> Result<u64> {
    let meta = meta_array(maps)?;
    meta.get(&meta::LAYOUT_VERSION, 0)
        .map_err(|e| Error::new("cannot read the maps' layout", e))
}

/// Records this build's layout in the (kept) meta map.
fn set_layout(maps: &[(String, MapData)]) -> Result<()> {
    let mut meta = meta_array(maps)?;
    meta.set(meta::LAYOUT_VERSION, LAYOUT_VERSION, 0)
        .map_err(|e| Error::new("cannot record the new layout", e))
}

fn meta_array(maps: &[(String, MapData)]) -> Result<Array<MapData, u64>> {
    let (_, meta) = maps
        .iter()
        .find(|(name, _)| name == map_names::META)
        .ok_or_else(|| Error::plain("the director has no meta map"))?;
    let id = meta
        .info()
        .map_err(|e| Error::new("cannot read the meta map", e))?
        .id();
    let data = MapData::from_id(id).map_err(|e| Error::new("cannot open the meta map", e))?;
    Array::try_from(Map::Array(data)).map_err(|e| Error::new("the meta map", e))
}

/// The descriptor of map `name` of the new object.
fn new_map_fd<'a>(ebpf: &'a mut aya::Ebpf, name: &str) -> Result<std::os::fd::BorrowedFd<'a>> {
    let map = ebpf
        .map(name)
        .ok_or_else(|| Error::plain(format!("the new director has no map {name}")))?;
    let data = match map {
        Map::Array(data) => data,
        _ => return Err(Error::plain(format!("{name} is not an array"))),
    };
    Ok(data.fd().as_fd())
}

/// What the old program counted between `before` and `after` (wrapping: a count may
/// have gone down).
fn counts_delta(before: &DestCounts, after: &DestCounts) -> Box<DestCounts> {
    // SAFETY: DestCounts is plain integers, for which all zeros is a valid value.
    let mut delta: Box<DestCounts> = unsafe { Box::new_zeroed().assume_init() };
    for ((d, b), a) in delta.slots.iter_mut().zip(&before.slots).zip(&after.slots) {
        d.active = a.active.wrapping_sub(b.active);
        d.inactive = a.inactive.wrapping_sub(b.inactive);
        // The overload flag in the same word is carried as the counts are (a wrapping
        // difference): the new program settles it again at the next count change.
        d.templates_and_overload = a
            .templates_and_overload
            .wrapping_sub(b.templates_and_overload);
    }
    delta
}

fn remove_pins(paths: &[(String, PathBuf)]) {
    for (_, path) in paths {
        let _ = std::fs::remove_file(Path::new(path));
    }
}
