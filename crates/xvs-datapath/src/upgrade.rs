//! Live upgrade: this build's director program takes over a running director of the same
//! map layout, keeping its maps (so its table, connections and counters) and replacing
//! the program on every interface at once, without a moment with no program.
//!
//! The maps of the running program are pinned in a bpffs mounted for the purpose (a
//! mount of our own, gone when done), the new object is loaded reusing them by those
//! pins, and the new program replaces the old one interface by interface through netlink.
//! A director of another layout is refused before anything changes (the maps' meaning
//! differs: taking them over would misread them).

use std::{
    ffi::CString,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use aya::{EbpfLoader, maps::MapData, programs::loaded_programs};

use crate::{Director, Error, ErrorKind, Result, director_program, netlink, objects};

/// What an upgrade did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub old_program: u32,
    pub new_program: u32,
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
/// maps. Fails, changing nothing, if there is no director or it has another map layout.
pub fn upgrade() -> Result<Upgrade> {
    // `find` opens the maps only if their layout is this build's.
    let old = Director::find()?
        .ok_or_else(|| Error::of(ErrorKind::NoDirector, "no director in this namespace"))?;
    let old_id = old.program_id();
    let info = loaded_programs()
        .filter_map(|info| info.ok())
        .find(|info| info.id() == old_id)
        .ok_or_else(|| Error::plain(format!("program {old_id} has vanished")))?;
    let map_ids = info
        .map_ids()
        .map_err(|e| Error::new("cannot list the director's maps", e))?
        .unwrap_or_default();
    let pins = PinFolder::mount()?;
    let mut names = Vec::new();
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
        if name.starts_with('.') {
            continue;
        }
        map.pin(pins.path(&name))
            .map_err(|e| Error::new(format!("cannot pin {name}"), e))?;
        names.push(name);
    }
    let mut loader = EbpfLoader::new();
    let paths: Vec<(String, PathBuf)> = names
        .iter()
        .map(|name| (name.clone(), pins.path(name)))
        .collect();
    for (name, path) in &paths {
        loader.map_pin_path(name.as_str(), path.as_path());
    }
    let mut ebpf = loader.load(objects::DIRECTOR).map_err(|e| {
        Error::new(
            "cannot load the new director over the running one's maps",
            e,
        )
    })?;
    let program = director_program(&mut ebpf)?;
    let fd = program
        .fd()
        .map_err(|e| Error::new("the new director program has no descriptor", e))?;
    // lo first: it anchors the state; then every interface that carried the old program,
    // in the mode it had there.
    let mut interfaces = old.attached_interfaces()?;
    interfaces.sort_by_key(|i| i.index != crate::LOOPBACK_INDEX);
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
    drop(ebpf);
    let new = Director::find()?
        .ok_or_else(|| Error::plain("the director vanished during the upgrade"))?;
    remove_pins(&paths);
    Ok(Upgrade {
        old_program: old_id,
        new_program: new.program_id(),
        interfaces: replaced,
    })
}

fn remove_pins(paths: &[(String, PathBuf)]) {
    for (_, path) in paths {
        let _ = std::fs::remove_file(Path::new(path));
    }
}
