//! The tunnel decapsulator on a real server: attached through netlink (so it stays after
//! the command exits, and goes with the interface), found again by name. Its GUE port
//! lives in a map of its own, so it can be read back and changed in place.

use std::os::fd::AsFd;

use aya::{
    maps::{Array, Map, MapData},
    programs::{ProgramInfo, Xdp, loaded_programs},
};
use xvs_common::{DECAP_PROGRAM, map_names};

use crate::{Error, Result, interface_named, mode_for, netlink, objects};

/// Attaches the decapsulator to interface `name`, decapsulating GUE too if `gue_port`
/// says on which UDP port it arrives; if it is there already, only its GUE port is set
/// (none if `gue_port` is `None`).
pub fn attach(name: &str, gue_port: Option<u16>) -> Result<()> {
    let interface = interface_named(name)?;
    if let Some(id) = attached_program(&interface) {
        let Some(info) = decap_info(id) else {
            return Err(Error::plain(format!(
                "{name} already carries XDP program {id}; detach it first"
            )));
        };
        return gue_map(&info)?
            .set(0, gue_port.unwrap_or(0).to_be(), 0)
            .map_err(|e| Error::new("cannot set the GUE port", e));
    }
    let mut ebpf = objects::load_decap()?;
    if let Some(port) = gue_port {
        let map = ebpf
            .map_mut(map_names::DECAP_GUE)
            .ok_or_else(|| Error::plain("the decapsulator has no GUE port map"))?;
        Array::<&mut MapData, u16>::try_from(map)
            .map_err(|e| Error::new("the GUE port map", e))?
            .set(0, port.to_be(), 0)
            .map_err(|e| Error::new("cannot set the GUE port", e))?;
    }
    let program: &mut Xdp = ebpf
        .program_mut(DECAP_PROGRAM)
        .ok_or_else(|| Error::plain("the embedded object has no decapsulation program"))?
        .try_into()
        .map_err(|e| Error::new("the decapsulator is not an XDP program", e))?;
    program
        .load()
        .map_err(|e| Error::new("the kernel refused the decapsulation program", e))?;
    let fd = program
        .fd()
        .map_err(|e| Error::new("decapsulation program has no descriptor", e))?;
    netlink::attach_xdp(interface.index, fd.as_fd(), mode_for(&interface), true)
        .map_err(|e| Error::new(format!("cannot attach the decapsulator to {name}"), e))
}

/// Removes the decapsulator from interface `name` (not another program).
pub fn detach(name: &str) -> Result<()> {
    let interface = interface_named(name)?;
    for mode in [netlink::XdpMode::Driver, netlink::XdpMode::Generic] {
        if let Some(id) = interface.program(mode)
            && decap_info(id).is_some()
        {
            netlink::detach_xdp(interface.index, mode)
                .map_err(|e| Error::new(format!("cannot detach from {name}"), e))?;
        }
    }
    Ok(())
}

/// Whether interface `name` carries the decapsulator.
pub fn is_attached(name: &str) -> Result<bool> {
    let interface = interface_named(name)?;
    Ok(attached_program(&interface).and_then(decap_info).is_some())
}

/// The UDP port the decapsulator on interface `name` takes GUE from, if it is attached
/// and takes GUE.
pub fn gue_port(name: &str) -> Result<Option<u16>> {
    let interface = interface_named(name)?;
    let Some(info) = attached_program(&interface).and_then(decap_info) else {
        return Ok(None);
    };
    let port = gue_map(&info)?
        .get(&0, 0)
        .map_err(|e| Error::new("cannot read the GUE port", e))?;
    Ok((port != 0).then(|| u16::from_be(port)))
}

fn attached_program(interface: &netlink::Interface) -> Option<u32> {
    interface.driver_program.or(interface.generic_program)
}

/// The loaded program `id`, if it is the decapsulator.
fn decap_info(id: u32) -> Option<ProgramInfo> {
    loaded_programs()
        .filter_map(|info| info.ok())
        .find(|info| info.id() == id && info.name_as_str() == Some(DECAP_PROGRAM))
}

/// The running decapsulator's GUE port map.
fn gue_map(info: &ProgramInfo) -> Result<Array<MapData, u16>> {
    let ids = info
        .map_ids()
        .map_err(|e| Error::new("cannot list the decapsulator's maps", e))?
        .unwrap_or_default();
    for id in ids {
        let data = MapData::from_id(id).map_err(|e| Error::new("cannot open a map", e))?;
        let named = data
            .info()
            .is_ok_and(|i| i.name_as_str() == Some(map_names::DECAP_GUE));
        if named {
            return Array::try_from(Map::Array(data))
                .map_err(|e| Error::new("the GUE port map", e));
        }
    }
    Err(Error::plain(
        "the decapsulator has no GUE port map (attached by an older xvs-decap: detach it and attach it again)",
    ))
}
