//! The tunnel decapsulator on a real server: attached through netlink (so it stays after
//! the command exits, and goes with the interface), found again by name.

use std::os::fd::AsFd;

use aya::programs::{Xdp, loaded_programs};
use xvs_common::DECAP_PROGRAM;

use crate::{Error, Result, interface_named, mode_for, netlink, objects};

/// Attaches the decapsulator to interface `name`; nothing changes if it is there already.
pub fn attach(name: &str) -> Result<()> {
    let interface = interface_named(name)?;
    if let Some(id) = attached_program(&interface) {
        if is_decap(id) {
            return Ok(());
        }
        return Err(Error::plain(format!(
            "{name} already carries XDP program {id}; detach it first"
        )));
    }
    let mut ebpf = objects::load_decap()?;
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
            && is_decap(id)
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
    Ok(attached_program(&interface).is_some_and(is_decap))
}

fn attached_program(interface: &netlink::Interface) -> Option<u32> {
    interface.driver_program.or(interface.generic_program)
}

fn is_decap(id: u32) -> bool {
    loaded_programs()
        .filter_map(|info| info.ok())
        .any(|info| info.id() == id && info.name_as_str() == Some(DECAP_PROGRAM))
}
