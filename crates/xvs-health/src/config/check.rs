//! A real server's checks in the config: their kinds and parameters, with defaults as
//! keepalived's where they have one, and what makes one wrong on its own.

use std::{net::IpAddr, time::Duration};

use serde::Deserialize;

use super::{one, second, yes};

/// A real server's checks: written as one table (`[service.check]`, `check = {...}`) or an
/// array of them (`[[service.check]]`); a real server is up when every one passes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checks(pub Vec<CheckConfig>);

impl<'de> Deserialize<'de> for Checks {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrMany;
        impl<'de> serde::de::Visitor<'de> for OneOrMany {
            type Value = Checks;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a check table or an array of check tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Checks, A::Error> {
                let one =
                    CheckConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Checks(vec![one]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Checks, A::Error> {
                Vec::<CheckConfig>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Checks)
            }
        }
        deserializer.deserialize_any(OneOrMany)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    /// A TCP connect.
    #[default]
    Tcp,
    /// An HTTP GET whose status must be one of `expect` (and body contain `body`).
    Http,
    /// The same over TLS (keepalived's SSL_GET), the certificate verified unless
    /// `tls_verify = false`.
    Https,
    /// A UDP datagram (`payload`); fails on an ICMP error, or without a reply containing
    /// `reply` when one is given (keepalived's UDP_CHECK).
    Udp,
    /// A DNS query for `name`/`query_type`: a reply with its id, no error code.
    Dns,
    /// `command` run by `sh -c`: exit 0 passes; with `dynamic`, exit 2..=255 passes and sets
    /// the weight to the code minus 2 (keepalived's MISC_CHECK with `misc_dynamic`).
    Command,
    /// An SMTP greeting (220), `HELO helo_name` answered by 250, then QUIT (keepalived's
    /// SMTP_CHECK).
    Smtp,
    /// An ICMP (ICMPv6) echo request answered by its reply (keepalived's PING_CHECK); the
    /// port plays no part.
    Ping,
    /// The integer in `file`: 0 passes, any other value fails, as does a file that cannot
    /// be read or holds no integer (keepalived's FILE_CHECK on a track file of weight 0:
    /// `echo 1 > FILE` takes the real server out for maintenance). The port plays no part.
    File,
}

/// The HTTP version an HTTP check's request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum HttpVersion {
    #[default]
    #[serde(rename = "1.0")]
    Http10,
    #[serde(rename = "1.1")]
    Http11,
}

impl HttpVersion {
    /// As the request line writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    #[serde(default, rename = "type")]
    pub kind: CheckType,
    /// The port checked (default: the real server's).
    pub port: Option<u16>,
    /// The address checked instead of the real server's (keepalived's `connect_ip`): a
    /// management address, say; its family must be the real server's.
    pub address: Option<IpAddr>,
    /// The address of this director's the check is sent from (keepalived's `bindto`):
    /// the one the real servers' firewalls let in, say. Of the checked address's family.
    pub source: Option<IpAddr>,
    /// The port the check is sent from (keepalived's `bind_port`), for firewalls that let
    /// in one source port; TCP checks then end with a reset, so that the next check can
    /// use the port again at once (no TIME_WAIT on the director).
    pub source_port: Option<u16>,
    /// The interface the check leaves by, whatever the routes say (keepalived's
    /// `bind_if`; `SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// The firewall mark on the check's packets (keepalived's `fwmark`; `SO_MARK`), so
    /// that policy routing (`ip rule add fwmark N table T`) can steer them.
    pub mark: Option<u32>,
    #[serde(default = "root")]
    pub path: String,
    #[serde(default = "ok")]
    pub expect: Vec<u16>,
    /// HTTP: text the body must contain.
    pub body: Option<String>,
    /// HTTP: a regular expression the body must match (keepalived's `regex`).
    pub body_regex: Option<String>,
    /// HTTP: the body must not match `body_regex` instead (keepalived's `regex_no_match`:
    /// a page that says "error" fails).
    #[serde(default)]
    pub body_regex_no_match: bool,
    /// HTTP: the MD5 digest of the whole body, in hex (keepalived's `digest`).
    pub digest: Option<String>,
    /// HTTP: the Host header (default: the address checked).
    pub host: Option<String>,
    /// HTTP: the request's version, "1.0" (the default, as keepalived's) or "1.1"
    /// (keepalived's `http_protocol 1.1`, for servers that refuse 1.0); either way the
    /// request asks the server to close, and a chunked page is read whole.
    #[serde(default)]
    pub http_version: HttpVersion,
    /// HTTPS: verify the server's certificate (against `ca_file`, or the system's roots)
    /// and its name (`host`, or the address checked).
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// HTTPS: the name sent in the TLS handshake (SNI) and checked on the certificate,
    /// when it is not `host` (keepalived's `sni_name`).
    pub tls_name: Option<String>,
    /// HTTPS: a PEM file of the certificates to trust instead of the system's.
    pub ca_file: Option<String>,
    /// UDP: what is sent.
    #[serde(default)]
    pub payload: String,
    /// UDP: a reply is needed, containing this text.
    pub reply: Option<String>,
    /// DNS: the name asked for.
    #[serde(default = "dns_root")]
    pub name: String,
    /// DNS: the record type (A, NS, CNAME, SOA, MX, TXT, AAAA).
    #[serde(default = "soa")]
    pub query_type: String,
    /// Command: what runs; it is killed at the timeout, which fails it.
    pub command: Option<String>,
    /// Command: the user it runs as, `NAME` (with the user's group) or `NAME:GROUP`
    /// (keepalived's MISC_CHECK `user`); default: xvsd's own (root).
    pub user: Option<String>,
    /// Command: exit codes 2..=255 set the weight (code - 2).
    #[serde(default)]
    pub dynamic: bool,
    /// SMTP: the name sent with HELO.
    #[serde(default = "helo_name")]
    pub helo_name: String,
    /// File: the file whose integer is read.
    pub file: Option<String>,
    /// File: 0 (the default), a non-zero value fails the real server; else the value times
    /// this is added to the real server's configured weight (keepalived's track file
    /// weight), the sum kept within 0..=65535.
    #[serde(default)]
    pub weight: i32,
    /// File with a weight: the value is subtracted instead (keepalived's `reverse`).
    #[serde(default)]
    pub reverse: bool,
    /// File: written to `file` when xvsd starts or reloads, if the file is missing
    /// (keepalived's track file `init_file`): a real server starts in service (0) or out.
    pub init_file: Option<i64>,
    /// File: `init_file` written even over a file that is there (keepalived's
    /// `init_file V overwrite`).
    #[serde(default)]
    pub init_overwrite: bool,
    /// TCP, DR and tunnel real servers: the SYN goes to the VIP the way the director
    /// forwards clients (to the real server's MAC, or tunnelled), proving that the real
    /// server takes the VIP.
    #[serde(default)]
    pub forwarded: bool,
    #[serde(default = "second")]
    pub interval: f64,
    /// Seconds within which the first check starts (keepalived's `warmup`): xvsd spreads
    /// the first checks over this (default: the interval), so that checks started
    /// together do not all strike at once; 0 starts them at once.
    pub warmup: Option<f64>,
    #[serde(default = "second")]
    pub timeout: f64,
    /// Attempts after a failed one before the check counts as failed.
    #[serde(default)]
    pub retries: u32,
    /// Seconds between those attempts.
    #[serde(default = "second")]
    pub delay_before_retry: f64,
    #[serde(default = "one")]
    pub rise: u32,
    #[serde(default = "one")]
    pub fall: u32,
    /// This check starts failed (true) or passed (false), over its real server's and
    /// service's `alpha`: a real server is in service only once every check that started
    /// failed has passed (keepalived's checker `alpha`).
    pub alpha: Option<bool>,
    /// Every failed attempt is logged, not only a change of the real server's state
    /// (keepalived's `log_all_failures`).
    #[serde(default)]
    pub log_all_failures: bool,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            kind: CheckType::Tcp,
            port: None,
            address: None,
            source: None,
            source_port: None,
            interface: None,
            mark: None,
            path: root(),
            expect: ok(),
            body: None,
            body_regex: None,
            body_regex_no_match: false,
            digest: None,
            host: None,
            http_version: HttpVersion::default(),
            tls_verify: true,
            tls_name: None,
            ca_file: None,
            payload: String::new(),
            reply: None,
            name: dns_root(),
            query_type: soa(),
            command: None,
            user: None,
            dynamic: false,
            helo_name: helo_name(),
            file: None,
            weight: 0,
            reverse: false,
            init_file: None,
            init_overwrite: false,
            forwarded: false,
            interval: second(),
            warmup: None,
            timeout: second(),
            retries: 0,
            delay_before_retry: second(),
            rise: 1,
            fall: 1,
            alpha: None,
            log_all_failures: false,
        }
    }
}

fn root() -> String {
    "/".to_string()
}

fn ok() -> Vec<u16> {
    vec![200]
}

fn dns_root() -> String {
    ".".to_string()
}

fn soa() -> String {
    "SOA".to_string()
}

/// keepalived's default `helo_name`.
fn helo_name() -> String {
    "smtpchecker.keepalived.org".to_string()
}

/// DNS record types a check may ask for, with their codes.
pub const QUERY_TYPES: [(&str, u16); 7] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
];

impl CheckConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval)
    }

    /// How long after the start the first checks are spread over.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup.unwrap_or(self.interval))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }

    pub fn delay_before_retry(&self) -> Duration {
        Duration::from_secs_f64(self.delay_before_retry)
    }

    /// The DNS record type's code.
    pub fn query_code(&self) -> Option<u16> {
        QUERY_TYPES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&self.query_type))
            .map(|&(_, code)| code)
    }
}

/// What is wrong with a command's `user` (`NAME` or `NAME:GROUP`), if anything.
pub(super) fn user_problem(user: &str) -> Option<String> {
    let word = |p: &str| !p.is_empty() && !p.contains([':', ' ', '\t']);
    let well_formed = match user.split_once(':') {
        Some((name, group)) => word(name) && word(group),
        None => word(user),
    };
    (!well_formed).then(|| format!("user {user:?} is not NAME or NAME:GROUP"))
}

impl CheckConfig {
    /// A weighted file check's weight for its real server of `configured` weight when the
    /// file holds `value` (keepalived's track file: the value times the weight, negated by
    /// `reverse`, added to the configured weight; IPVS's weights are 0..=65535).
    pub fn file_weight(&self, configured: u32, value: i64) -> u32 {
        let sign = if self.reverse { -1 } else { 1 };
        let added = value.saturating_mul(i64::from(self.weight) * sign);
        i64::from(configured).saturating_add(added).clamp(0, 65_535) as u32
    }

    /// What is wrong with this check on its own.
    pub(super) fn problems(&self) -> impl Iterator<Item = String> {
        let mut problems = Vec::new();
        let positive = |v: f64| v > 0.0 && v.is_finite();
        if !(positive(self.interval) && positive(self.timeout)) {
            problems.push("interval and timeout must be > 0".to_string());
        }
        if !(self.delay_before_retry >= 0.0 && self.delay_before_retry.is_finite()) {
            problems.push("delay_before_retry must be >= 0".to_string());
        }
        if self.warmup.is_some_and(|w| !(w >= 0.0 && w.is_finite())) {
            problems.push("warmup must be >= 0".to_string());
        }
        match self.kind {
            CheckType::Command if self.command.as_deref().is_none_or(str::is_empty) => {
                problems.push("a command check needs `command`".to_string());
            }
            CheckType::File if self.file.as_deref().is_none_or(str::is_empty) => {
                problems.push("a file check needs `file`".to_string());
            }
            CheckType::Dns if self.query_code().is_none() => problems.push(format!(
                "no DNS query type {:?} (one of A, NS, CNAME, SOA, MX, TXT, AAAA)",
                self.query_type
            )),
            CheckType::Http | CheckType::Https if !self.path.starts_with('/') => {
                problems.push(format!("the HTTP path {:?} must start with /", self.path));
            }
            CheckType::Smtp
                if self.helo_name.is_empty()
                    || !self.helo_name.chars().all(|c| c.is_ascii_graphic()) =>
            {
                problems.push(format!(
                    "helo_name {:?} must be one word of printable characters",
                    self.helo_name
                ));
            }
            _ => {}
        }
        if (self.weight != 0 || self.reverse) && self.kind != CheckType::File {
            problems.push("`weight` and `reverse` are for file checks".to_string());
        }
        if self.weight.unsigned_abs() > 65_535 {
            problems.push(format!("weight {} is not in -65535..=65535", self.weight));
        }
        if (self.init_file.is_some() || self.init_overwrite) && self.kind != CheckType::File {
            problems.push("`init_file` and `init_overwrite` are for file checks".to_string());
        }
        if self.init_overwrite && self.init_file.is_none() {
            problems.push("`init_overwrite` needs `init_file`".to_string());
        }
        if self.reverse && self.weight == 0 {
            problems.push("`reverse` needs a weight".to_string());
        }
        if self.dynamic && self.kind != CheckType::Command {
            problems.push("`dynamic` is for command checks".to_string());
        }
        if let Some(user) = &self.user {
            if self.kind != CheckType::Command {
                problems.push("`user` is for command checks".to_string());
            }
            problems.extend(user_problem(user));
        }
        if self.tls_name.is_some() && self.kind != CheckType::Https {
            problems.push("`tls_name` is for https checks".to_string());
        }
        if self.http_version != HttpVersion::default()
            && !matches!(self.kind, CheckType::Http | CheckType::Https)
        {
            problems.push("`http_version` is for http and https checks".to_string());
        }
        if self.body_regex_no_match && self.body_regex.is_none() {
            problems.push("`body_regex_no_match` needs `body_regex`".to_string());
        }
        if let Some(Err(e)) = self.body_regex.as_deref().map(regex::Regex::new) {
            problems.push(format!("body_regex: {e}"));
        }
        if self
            .digest
            .as_ref()
            .is_some_and(|d| d.len() != 32 || !d.chars().all(|c| c.is_ascii_hexdigit()))
        {
            problems.push("digest must be 32 hex digits (an MD5 sum)".to_string());
        }
        if self.forwarded && self.kind != CheckType::Tcp {
            problems.push("`forwarded` is for tcp checks".to_string());
        }
        if self.forwarded && (self.address.is_some() || self.source.is_some()) {
            problems.push(
                "a forwarded check goes to the VIP through the real server: no `address` or `source`"
                    .to_string(),
            );
        }
        let sends = !matches!(self.kind, CheckType::Command | CheckType::File);
        let origin = self.source.is_some() || self.interface.is_some() || self.mark.is_some();
        if !sends && (origin || self.source_port.is_some()) {
            problems.push(
                "`source`, `source_port`, `interface` and `mark` are for checks that send packets"
                    .to_string(),
            );
        }
        if self.source_port.is_some() && self.kind == CheckType::Ping {
            problems.push("a ping has no port: no `source_port`".to_string());
        }
        if self.source_port == Some(0) {
            problems.push("source_port must be 1..=65535".to_string());
        }
        if self.forwarded
            && (self.source_port.is_some() || self.interface.is_some() || self.mark.is_some())
        {
            problems.push(
                "a forwarded check is sent the way the director forwards: no `source_port`, `interface` or `mark`"
                    .to_string(),
            );
        }
        if let Some(name) = &self.interface
            && (name.is_empty() || name.len() >= 16 || name.contains(['/', ' ']))
        {
            problems.push(format!("interface {name:?} is not an interface name"));
        }
        problems.into_iter()
    }
}
