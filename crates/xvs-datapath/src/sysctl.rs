//! The IPVS sysctls xvs carries out (`/proc/sys/net/ipv4/vs/NAME` on an IPVS director).
//! Each is a slot of the director's meta map, so it holds for every program and tool of
//! the namespace and lives as long as the director; it is read by the datapath only when
//! the case it governs arises, so it costs the common path nothing.

use xvs_common::meta;

use crate::{Director, Error, ErrorKind, Result};

/// One setting: its IPVS name, the values it takes and where the director keeps it.
#[derive(Debug, PartialEq, Eq)]
pub struct Sysctl {
    /// IPVS's name, without `net.ipv4.vs.`.
    pub name: &'static str,
    kept: Kept,
    /// Its value in a director never told otherwise: IPVS's default, except where
    /// README's "Where xvs differs" says (`expire_nodest_conn`).
    default: u64,
    /// It takes 0 to this.
    max: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Kept {
    /// In this meta-map slot, XOR the default (so that a slot's 0, what a director made
    /// before the setting existed holds, is the default).
    Slot(u32),
    /// Not settable: xvs always does what its default says, for this reason. Setting it
    /// to that value is accepted (a sysctl.conf written for IPVS keeps working); any
    /// other is refused with the reason.
    Fixed(&'static str),
}

const fn setting(name: &'static str, slot: u32, default: u64, max: u64) -> Sysctl {
    Sysctl {
        name,
        kept: Kept::Slot(slot),
        default,
        max,
    }
}

const fn fixed(name: &'static str, value: u64, why: &'static str) -> Sysctl {
    Sysctl {
        name,
        kept: Kept::Fixed(why),
        default: value,
        max: value,
    }
}

/// IPVS's settings as xvs has them, in the order `xvsd sysctl` lists them (sysctl(8)'s,
/// by name): the ones xvs carries out, and those whose behaviour xvs has fixed at one
/// value (IPVS's settings not listed here have no meaning in xvs and are refused as
/// unknown).
pub const SYSCTLS: [Sysctl; 16] = [
    fixed(
        "backup_only",
        0,
        "a director forwards whatever its connection-sync role (VRRP or BGP decides where \
         traffic arrives)",
    ),
    fixed(
        "cache_bypass",
        0,
        "a packet of a service with no available real server goes to the director's stack",
    ),
    setting("conn_reuse_mode", meta::CONN_REUSE_MODE, 1, 3),
    fixed(
        "conntrack",
        0,
        "it forwards in XDP, before netfilter, and keeps no conntrack entries",
    ),
    fixed(
        "drop_packet",
        0,
        "it never drops new connections at random; a full table evicts half-open ones",
    ),
    // xvs's default is 1; IPVS's is 0 (README, "Where xvs differs").
    setting("expire_nodest_conn", meta::KEEP_NODEST_CONN, 1, 1),
    setting(
        "expire_quiescent_template",
        meta::EXPIRE_QUIESCENT_TEMPLATE,
        0,
        1,
    ),
    fixed(
        "ignore_tunneled",
        0,
        "tunnelled packets that are not its own are left to the stack",
    ),
    fixed(
        "lblc_expiration",
        86_400,
        "lblc's entries are kept IPVS's default 24 hours",
    ),
    fixed(
        "lblcr_expiration",
        86_400,
        "lblcr's sets are kept IPVS's default 24 hours",
    ),
    fixed(
        "nat_icmp_send",
        0,
        "a NAT real server's packet without a connection goes to the director's stack",
    ),
    fixed(
        "pmtu_disc",
        1,
        "a packet too big for its way to the real server is answered with \
         fragmentation needed (packet too big), never fragmented",
    ),
    fixed("run_estimation", 1, "rates are estimated by `xvsd run`"),
    fixed(
        "schedule_icmp",
        0,
        "an ICMP error without a connection goes to the director's stack",
    ),
    fixed("secure_tcp", 0, "it follows IPVS's normal TCP state tables"),
    setting("sloppy_tcp", meta::SLOPPY_TCP, 0, 1),
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

    /// The value `text` asks for: a number from 0 to the setting's largest; for a fixed
    /// setting, its one value.
    pub fn parse(&self, text: &str) -> Result<u64> {
        let refused = |what: String| Err(Error::of(ErrorKind::Other, what));
        let value = match text.trim().parse::<u64>() {
            Ok(value) => value,
            Err(_) => {
                return refused(format!(
                    "{PREFIX}{} takes a number, not {text:?}",
                    self.name
                ));
            }
        };
        match self.kept {
            Kept::Fixed(why) if value != self.default => refused(format!(
                "{PREFIX}{} is {} in xvs, which cannot be changed: {why}",
                self.name, self.default
            )),
            Kept::Slot(_) if value > self.max => refused(match self.max {
                1 => format!("{PREFIX}{} must be 0 or 1, not {value}", self.name),
                max => format!("{PREFIX}{} must be 0 to {max}, not {value}", self.name),
            }),
            _ => Ok(value),
        }
    }

    /// Its value in a director that has never been told otherwise.
    pub fn default_value(&self) -> u64 {
        self.default
    }
}

impl Director {
    /// The value of `sysctl` in this director.
    pub fn sysctl(&self, sysctl: &Sysctl) -> Result<u64> {
        match sysctl.kept {
            Kept::Slot(slot) => Ok(self.meta(slot)? ^ sysctl.default),
            Kept::Fixed(_) => Ok(sysctl.default),
        }
    }

    /// Sets `sysctl` to `value` (from [`Sysctl::parse`]); packets from now on follow it.
    pub fn set_sysctl(&mut self, sysctl: &Sysctl, value: u64) -> Result<()> {
        match sysctl.kept {
            Kept::Slot(slot) => self.set_meta(slot, value ^ sysctl.default),
            Kept::Fixed(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_found_by_each_of_their_names_and_take_only_their_values() {
        for name in [
            "expire_nodest_conn",
            "net.ipv4.vs.expire_nodest_conn",
            "net/ipv4/vs/expire_nodest_conn",
        ] {
            assert_eq!(Sysctl::named(name).unwrap().name, "expire_nodest_conn");
        }
        let error = Sysctl::named("net.ipv4.vs.sync_threshold").unwrap_err();
        assert!(
            error.to_string().starts_with(
                "unknown setting \"net.ipv4.vs.sync_threshold\" (xvs has backup_only, "
            ),
            "{error}"
        );
        let quiescent = Sysctl::named("expire_quiescent_template").unwrap();
        assert_eq!(quiescent.parse(" 1\n").unwrap(), 1);
        assert_eq!(
            quiescent.parse("2").unwrap_err().to_string(),
            "net.ipv4.vs.expire_quiescent_template must be 0 or 1, not 2"
        );
        let reuse = Sysctl::named("conn_reuse_mode").unwrap();
        assert_eq!((reuse.parse("3").unwrap(), reuse.default_value()), (3, 1));
        assert_eq!(
            reuse.parse("4").unwrap_err().to_string(),
            "net.ipv4.vs.conn_reuse_mode must be 0 to 3, not 4"
        );
        assert_eq!(
            reuse.parse("on").unwrap_err().to_string(),
            "net.ipv4.vs.conn_reuse_mode takes a number, not \"on\""
        );
        // A fixed setting takes its one value (an IPVS sysctl.conf keeps working) and
        // refuses another, saying why.
        let conntrack = Sysctl::named("net.ipv4.vs.conntrack").unwrap();
        assert_eq!(conntrack.parse("0").unwrap(), 0);
        assert_eq!(
            conntrack.parse("1").unwrap_err().to_string(),
            "net.ipv4.vs.conntrack is 0 in xvs, which cannot be changed: it forwards in XDP, \
             before netfilter, and keeps no conntrack entries"
        );
        let mut names: Vec<&str> = SYSCTLS.iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(
            names,
            SYSCTLS.map(|s| s.name),
            "listed by name, as sysctl(8) does"
        );
        // xvs's defaults: connections of a deleted server end; quiescent templates stay.
        assert_eq!(
            Sysctl::named("expire_nodest_conn").unwrap().default_value(),
            1
        );
        assert_eq!(quiescent.default_value(), 0);
    }
}
