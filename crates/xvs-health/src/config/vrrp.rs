//! The `[vrrp]` section: one VRRP virtual router that holds the VIPs on the master
//! director.

use serde::Deserialize;

use super::{second, yes};

/// One VRRP virtual router (keepalived's `vrrp_instance`): the director that wins the
/// election holds `addresses` on `interface`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpConfig {
    pub interface: String,
    pub vrid: u8,
    #[serde(default = "hundred")]
    pub priority: u8,
    /// Seconds between advertisements (v3: hundredths allowed).
    #[serde(default = "second")]
    pub interval: f64,
    #[serde(default = "yes")]
    pub preempt: bool,
    #[serde(default)]
    pub preempt_delay: f64,
    /// `ADDRESS/PREFIX`, all IPv4 or all IPv6 (VRRPv3 over IPv6 advertises from the
    /// interface's link-local address to ff02::12).
    pub addresses: Vec<String>,
    /// 3 (default) or 2 (keepalived's default).
    #[serde(default = "three")]
    pub version: u8,
    /// The instance's name (keepalived's `vrrp_instance NAME`): the second argument of
    /// `notify` (default: `VRRP VRID on INTERFACE`, as the logs name it).
    pub name: Option<String>,
    /// Commands run by `sh -c` on becoming master, backup (at start too), fault (out of
    /// the election: a tracked interface down, a failing track script of weight 0, ...)
    /// or stopped (xvsd stops, or a reload removes the instance), with `XVS_VRRP_STATE`
    /// set to MASTER, BACKUP, FAULT or STOP.
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify_stop: Option<String>,
    /// keepalived's generic `notify`: run on every one of those changes with four more
    /// arguments, `INSTANCE NAME STATE PRIORITY` (after the state's own command).
    pub notify: Option<String>,
    /// Interfaces that must be up (keepalived's `track_interface`): while one is down the
    /// director leaves the election (FAULT) and gives the addresses up.
    #[serde(default)]
    pub track_interfaces: Vec<String>,
    /// While one of xvsd's services has lost its quorum, the director leaves the election
    /// too, so that a director whose real servers answer takes the VIPs.
    #[serde(default)]
    pub track_services: bool,
    /// The other directors' addresses (keepalived's `unicast_peer`), of the addresses'
    /// family: advertisements go to each of them instead of the group (for networks
    /// without multicast), and only theirs are heard.
    #[serde(default)]
    pub unicast_peers: Vec<std::net::IpAddr>,
    /// Checks of this director that sway the election (keepalived's `vrrp_script` and
    /// `track_script`): `[[vrrp.track_script]]` tables.
    #[serde(default, rename = "track_script")]
    pub track_scripts: Vec<TrackScript>,
    /// Instances of one group (keepalived's `vrrp_sync_group`) leave the election
    /// together: while one is in fault (a tracked interface down, a service without its
    /// quorum), the others of its group are too, so the VIPs of a dual-stack or
    /// two-sided director move as one.
    pub group: Option<String>,
}

/// A command run every `interval` seconds (by `sh -c`; exit status 0 passes) whose health,
/// counted as a real server's (`fall` failures in a row take it down, `rise` successes
/// bring it back; it starts up), changes the director's part in the election as
/// keepalived's tracked scripts do: with `weight` 0 the instance leaves the election while
/// the script is down (fault); a positive weight is added to the priority while it is up,
/// a negative one while it is down.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackScript {
    pub command: String,
    #[serde(default = "second")]
    pub interval: f64,
    /// Seconds a run may take (default: the interval); one still running then fails.
    pub timeout: Option<f64>,
    #[serde(default = "one")]
    pub rise: u32,
    #[serde(default = "one")]
    pub fall: u32,
    /// -253 to 253.
    #[serde(default)]
    pub weight: i32,
    /// The user it runs as, `NAME` or `NAME:GROUP` (keepalived's vrrp_script `user`);
    /// default: xvsd's own (root).
    pub user: Option<String>,
}

impl TrackScript {
    pub fn timeout(&self) -> f64 {
        self.timeout.unwrap_or(self.interval)
    }
}

fn one() -> u32 {
    1
}

/// `[vrrp]` (one instance) or `[[vrrp]]` (several), each read with its own errors.
pub(super) fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<VrrpConfig>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct OneOrMany;
    impl<'de> serde::de::Visitor<'de> for OneOrMany {
        type Value = Vec<VrrpConfig>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a [vrrp] table or [[vrrp]] tables")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let one = VrrpConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            Ok(vec![one])
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
    }
    deserializer.deserialize_any(OneOrMany)
}

fn hundred() -> u8 {
    100
}

fn three() -> u8 {
    3
}

impl VrrpConfig {
    /// The virtual router the section runs: its interface, VRID and whether its addresses
    /// are IPv6 (no two sections of a config share one; a reload matches running
    /// instances to sections by it).
    pub fn router(&self) -> (&str, u8, bool) {
        let v6 = self.addresses.iter().any(|a| a.contains(':'));
        (self.interface.as_str(), self.vrid, v6)
    }

    /// The priority this director advertises while its track scripts are as `up` says
    /// (one flag per script, in order): the configured one, each weighted script's weight
    /// added as it says, kept within 1-254 (keepalived: the weights neither make a router
    /// the address owner, 255, nor change an owner's).
    pub fn priority_with(&self, up: &[bool]) -> u8 {
        if self.priority == 255 {
            return 255;
        }
        let swayed: i32 = self
            .track_scripts
            .iter()
            .zip(up)
            .map(|(script, &up)| match script.weight {
                w if w > 0 && up => w,
                w if w < 0 && !up => w,
                _ => 0,
            })
            .sum();
        (i32::from(self.priority) + swayed).clamp(1, 254) as u8
    }

    /// The first track script of weight 0 that is down, if any: the instance is then out
    /// of the election.
    pub fn failed_script(&self, up: &[bool]) -> Option<&TrackScript> {
        self.track_scripts
            .iter()
            .zip(up)
            .find(|(script, up)| script.weight == 0 && !**up)
            .map(|(script, _)| script)
    }

    /// The addresses with their prefixes, all of one family (an instance is IPv4 or
    /// IPv6, as RFC 5798 has it); why not, for the first that is wrong.
    pub fn parsed_addresses(&self) -> Result<Vec<(std::net::IpAddr, u8)>, String> {
        let parsed = self
            .addresses
            .iter()
            .map(|text| {
                let ip: std::net::IpAddr = text
                    .split_once('/')
                    .map_or(text.as_str(), |(ip, _)| ip)
                    .parse()
                    .map_err(|_| format!("vrrp: {text:?} is not an IP address"))?;
                let longest = if ip.is_ipv4() { 32 } else { 128 };
                let prefix = match text.split_once('/') {
                    Some((_, prefix)) => prefix.parse::<u8>().ok().filter(|p| *p <= longest),
                    None => Some(longest),
                }
                .ok_or_else(|| format!("vrrp: {text:?}: bad prefix"))?;
                Ok((ip, prefix))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if parsed
            .windows(2)
            .any(|w| w[0].0.is_ipv4() != w[1].0.is_ipv4())
        {
            return Err("vrrp: the addresses of one instance are all IPv4 or all IPv6".to_string());
        }
        Ok(parsed)
    }

    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.vrid == 0 || self.priority == 0 {
            problems.push("vrrp: vrid and priority must be 1-255".to_string());
        }
        if !(self.interval >= 0.01 && self.interval <= 40.95) {
            problems.push("vrrp: interval must be 0.01-40.95 s".to_string());
        }
        if self.version != 2 && self.version != 3 {
            problems.push("vrrp: version must be 2 or 3".to_string());
        }
        if self.version == 2 && self.addresses.iter().any(|a| a.contains(':')) {
            problems.push("vrrp: IPv6 addresses need version 3".to_string());
        }
        if self.addresses.is_empty() {
            problems.push("vrrp: no addresses".to_string());
        }
        match self.parsed_addresses() {
            Err(e) => problems.push(e),
            Ok(addresses) => {
                let v6 = addresses.first().is_some_and(|(a, _)| a.is_ipv6());
                if self.unicast_peers.iter().any(|p| p.is_ipv6() != v6) {
                    problems
                        .push("vrrp: unicast_peers must be of the addresses' family".to_string());
                }
            }
        }
        for script in &self.track_scripts {
            if !(-253..=253).contains(&script.weight) {
                problems.push(format!(
                    "vrrp: track_script {:?}: weight must be -253 to 253",
                    script.command
                ));
            }
            if let Some(why) = script.user.as_deref().and_then(super::check::user_problem) {
                problems.push(format!("vrrp: track_script {:?}: {why}", script.command));
            }
            let seconds = |s: f64| s > 0.0 && s.is_finite();
            if !(seconds(script.interval) && seconds(script.timeout())) {
                problems.push(format!(
                    "vrrp: track_script {:?}: interval and timeout must be above 0 seconds",
                    script.command
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_scripts(priority: u8, weights: &[i32]) -> VrrpConfig {
        let mut text = format!(
            "interface = \"eth0\"\nvrid = 51\npriority = {priority}\naddresses = [\"1.1.1.254/24\"]\n"
        );
        for weight in weights {
            text.push_str(&format!(
                "[[track_script]]\ncommand = \"true\"\nweight = {weight}\n"
            ));
        }
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn track_scripts_sway_the_priority_or_take_the_director_out() {
        let vrrp = with_scripts(100, &[20, -50, 0]);
        assert_eq!(vrrp.priority_with(&[true, true, true]), 120, "up: +20");
        assert_eq!(vrrp.priority_with(&[false, true, true]), 100);
        assert_eq!(vrrp.priority_with(&[true, false, true]), 70, "down: -50");
        assert_eq!(vrrp.failed_script(&[true, true, true]), None);
        assert_eq!(
            vrrp.failed_script(&[true, true, false]).map(|s| s.weight),
            Some(0),
            "weight 0 down: out"
        );
        // Never the owner's 255, never below 1; an owner stays 255.
        assert_eq!(with_scripts(250, &[20]).priority_with(&[true]), 254);
        assert_eq!(with_scripts(30, &[-50]).priority_with(&[false]), 1);
        assert_eq!(with_scripts(255, &[-50]).priority_with(&[false]), 255);
        assert!(with_scripts(100, &[300]).problems()[0].contains("weight"));
    }
}
