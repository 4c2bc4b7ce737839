//! The IPVS sysctls xvs carries out (`/proc/sys/net/ipv4/vs/NAME` on an IPVS director).
//! Each is a slot of the director's meta map, so it holds for every program and tool of
//! the namespace and lives as long as the director; it is read by the datapath only when
//! the case it governs arises, so it costs the common path nothing.

use xvs_common::meta;

use crate::{Director, Error, ErrorKind, Result};

/// One setting: its IPVS name and where and how the director keeps it.
#[derive(Debug, PartialEq, Eq)]
pub struct Sysctl {
    /// IPVS's name, without `net.ipv4.vs.`.
    pub name: &'static str,
    /// The meta-map slot that holds it.
    slot: u32,
    /// The slot holds the opposite (so that a slot's 0, what a director made before the
    /// setting existed holds, keeps xvs's default).
    inverted: bool,
}

/// The settings xvs has, in the order `xvsd sysctl` lists them.
pub const SYSCTLS: [Sysctl; 2] = [
    // xvs's default is 1; IPVS's is 0 (README, "Where xvs differs").
    Sysctl {
        name: "expire_nodest_conn",
        slot: meta::KEEP_NODEST_CONN,
        inverted: true,
    },
    Sysctl {
        name: "expire_quiescent_template",
        slot: meta::EXPIRE_QUIESCENT_TEMPLATE,
        inverted: false,
    },
];

/// The prefix sysctl(8) names IPVS's settings with.
pub const PREFIX: &str = "net.ipv4.vs.";

impl Sysctl {
    /// The setting called `name`: bare (`expire_nodest_conn`), as sysctl(8) names it
    /// (`net.ipv4.vs.expire_nodest_conn`) or as its /proc path does (`net/ipv4/vs/...`).
    pub fn named(name: &str) -> Result<&'static Sysctl> {
        let bare = name
            .strip_prefix(PREFIX)
            .or_else(|| name.strip_prefix("net/ipv4/vs/"))
            .unwrap_or(name);
        SYSCTLS.iter().find(|s| s.name == bare).ok_or_else(|| {
            let known: Vec<&str> = SYSCTLS.iter().map(|s| s.name).collect();
            Error::of(
                ErrorKind::Other,
                format!(
                    "unknown setting {name:?} (xvs has {} of IPVS's)",
                    known.join(", ")
                ),
            )
        })
    }

    /// The value `text` asks for: each setting is 0 or 1.
    pub fn parse(&self, text: &str) -> Result<u64> {
        match text.trim() {
            "0" => Ok(0),
            "1" => Ok(1),
            other => Err(Error::of(
                ErrorKind::Other,
                format!("{PREFIX}{} must be 0 or 1, not {other:?}", self.name),
            )),
        }
    }

    /// Its value in a director that has never been told otherwise.
    pub fn default_value(&self) -> u64 {
        self.inverted as u64
    }
}

impl Director {
    /// The value of `sysctl` in this director.
    pub fn sysctl(&self, sysctl: &Sysctl) -> Result<u64> {
        let stored = (self.meta(sysctl.slot)? != 0) as u64;
        Ok(stored ^ sysctl.inverted as u64)
    }

    /// Sets `sysctl` to `value` (0 or 1, from [`Sysctl::parse`]); packets from now on
    /// follow it.
    pub fn set_sysctl(&mut self, sysctl: &Sysctl, value: u64) -> Result<()> {
        self.set_meta(sysctl.slot, (value != 0) as u64 ^ sysctl.inverted as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_found_by_each_of_their_names_and_take_only_0_or_1() {
        for name in [
            "expire_nodest_conn",
            "net.ipv4.vs.expire_nodest_conn",
            "net/ipv4/vs/expire_nodest_conn",
        ] {
            assert_eq!(Sysctl::named(name).unwrap().name, "expire_nodest_conn");
        }
        let error = Sysctl::named("net.ipv4.vs.sloppy_tcp").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown setting \"net.ipv4.vs.sloppy_tcp\" (xvs has expire_nodest_conn, \
             expire_quiescent_template of IPVS's)"
        );
        let quiescent = Sysctl::named("expire_quiescent_template").unwrap();
        assert_eq!(quiescent.parse(" 1\n").unwrap(), 1);
        assert_eq!(
            quiescent.parse("2").unwrap_err().to_string(),
            "net.ipv4.vs.expire_quiescent_template must be 0 or 1, not \"2\""
        );
        // xvs's defaults: connections of a deleted server end; quiescent templates stay.
        assert_eq!(
            Sysctl::named("expire_nodest_conn").unwrap().default_value(),
            1
        );
        assert_eq!(quiescent.default_value(), 0);
    }
}
