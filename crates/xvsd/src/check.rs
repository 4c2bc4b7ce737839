//! The checks themselves: a TCP connect, an HTTP GET, a UDP datagram, a DNS query, an
//! SMTP greeting (`smtp.rs`), an ICMP echo (`ping.rs`) or a command. Each is bounded by
//! its timeout end to end, so a real server that accepts and then hangs (or a command
//! that never ends) fails its check instead of holding the checker.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use xvs_health::{
    config::{CheckConfig, CheckType, Method, Watch},
    health::Outcome,
};

use crate::{forwarded, ping, smtp, sockaddr::Origin, tls};

/// What one check found: passed (with the weight a dynamic command asked for) or why not.
pub type CheckResult = Result<Option<Weighs>, String>;

/// What a passing check says of its real server's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weighs {
    /// A dynamic command's weight.
    Is(u32),
    /// A weighted file check's value: each real server the check serves takes it as
    /// [`CheckConfig::file_weight`] says from its own configured weight.
    FileHolds(i64),
}

impl Weighs {
    /// The weight of a real server of `configured` weight checked by `check`.
    pub fn weight(self, check: &CheckConfig, configured: u32) -> u32 {
        match self {
            Weighs::Is(weight) => weight,
            Weighs::FileHolds(value) => check.file_weight(configured, value),
        }
    }
}

/// Runs `watch`'s check, with its retries: a failed attempt is tried again after
/// `delay_before_retry`, up to `retries` times.
pub fn run_with_retries(watch: &Watch) -> CheckResult {
    let check = &watch.check;
    let once = || {
        if let (true, Some(vip)) = (check.forwarded, watch.vip) {
            let path = match watch.method {
                Method::Tunnel => forwarded::Path::Tunnel(watch.tunnel),
                _ => forwarded::Path::Direct,
            };
            let port = check.port.unwrap_or(vip.port());
            forwarded::check(vip.ip(), port, watch.address.ip(), path, check.timeout())
                .map(|()| None)
        } else {
            run(check, watch.address)
        }
    };
    let mut result = once();
    for _ in 0..check.retries {
        if result.is_ok() {
            break;
        }
        std::thread::sleep(check.delay_before_retry());
        result = once();
    }
    result
}

/// Runs `check` once against the real server at `address` (or the check's own address
/// and port, if it names them).
pub fn run(check: &CheckConfig, address: SocketAddr) -> CheckResult {
    let target = SocketAddr::new(
        check.address.unwrap_or(address.ip()),
        check.port.unwrap_or(address.port()),
    );
    let deadline = Instant::now() + check.timeout();
    match check.kind {
        CheckType::Tcp => connect(target, check).map(|_| None),
        CheckType::Http => {
            let mut stream = connect(target, check)?;
            http_get(&mut stream, target, check, deadline).map(|()| None)
        }
        CheckType::Https => {
            let mut stream = tls::connect(connect(target, check)?, target, check)?;
            http_get(&mut stream, target, check, deadline).map(|()| None)
        }
        CheckType::Udp => udp(target, check).map(|()| None),
        CheckType::Dns => dns(target, check, deadline).map(|()| None),
        CheckType::Command => command(address, check, deadline),
        CheckType::Smtp => {
            let mut stream = connect(target, check)?;
            smtp::check(&mut stream, target, &check.helo_name, deadline).map(|()| None)
        }
        CheckType::Ping => ping::echo(target.ip(), &Origin::of(check), deadline).map(|()| None),
        CheckType::File if check.weight != 0 => Ok(Some(Weighs::FileHolds(file_value(check)))),
        CheckType::File => file(check).map(|()| None),
    }
}

/// keepalived's FILE_CHECK of weight 0: the file's integer (its first word) must be 0.
fn file(check: &CheckConfig) -> Result<(), String> {
    let path = check.file.as_deref().unwrap_or_default();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let word = text.split_whitespace().next().unwrap_or_default();
    match word.parse::<i64>() {
        Ok(0) => Ok(()),
        Ok(value) => Err(format!("{path} holds {value}")),
        Err(_) => Err(format!("{path} holds no integer ({word:?})")),
    }
}

/// A weighted FILE_CHECK's value, read as keepalived reads its track file: the leading
/// integer, 0 for a missing, empty or non-numeric file (such a check never fails; its
/// value only moves the weight).
fn file_value(check: &CheckConfig) -> i64 {
    let path = check.file.as_deref().unwrap_or_default();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let word = text.split_whitespace().next().unwrap_or_default();
    word.parse().unwrap_or(0)
}

pub fn outcome(result: &CheckResult) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

fn connect(target: SocketAddr, check: &CheckConfig) -> Result<TcpStream, String> {
    let origin = Origin::of(check);
    if origin.is_any() {
        return TcpStream::connect_timeout(&target, check.timeout())
            .map_err(|e| format!("connect to {target}: {e}"));
    }
    crate::sockaddr::connect_from(&origin, target, check.timeout())
        .map_err(|e| format!("connect to {target}{}: {e}", from(&origin)))
}

/// " from SOURCE" when the check names its source address, for messages.
fn from(origin: &Origin) -> String {
    origin
        .source
        .map(|source| format!(" from {source}"))
        .unwrap_or_default()
}

/// A socket of `target`'s family connected to it.
fn udp_socket(target: SocketAddr, check: &CheckConfig) -> Result<UdpSocket, String> {
    let origin = Origin::of(check);
    let socket = crate::sockaddr::socket(target.ip(), libc::SOCK_DGRAM, 0)
        .and_then(|socket| origin.apply(&socket, target.ip()).map(|()| socket))
        .map_err(|e| format!("udp socket{}: {e}", from(&origin)))?;
    let socket = UdpSocket::from(socket);
    socket
        .connect(target)
        .map_err(|e| format!("udp to {target}: {e}"))?;
    socket
        .set_read_timeout(Some(check.timeout()))
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

/// keepalived's UDP_CHECK: an ICMP error (seen as a refused receive) fails; silence
/// passes unless a reply is required.
fn udp(target: SocketAddr, check: &CheckConfig) -> Result<(), String> {
    let socket = udp_socket(target, check)?;
    socket
        .send(check.payload.as_bytes())
        .map_err(|e| format!("udp to {target}: {e}"))?;
    let mut reply = [0u8; 2048];
    match (socket.recv(&mut reply), &check.reply) {
        (Ok(n), Some(wanted)) => {
            let got = String::from_utf8_lossy(&reply[..n]);
            if got.contains(wanted.as_str()) {
                Ok(())
            } else {
                Err(format!("udp to {target}: reply {got:?} lacks {wanted:?}"))
            }
        }
        (Ok(_), None) => Ok(()),
        (Err(e), Some(_)) | (Err(e), None) if e.kind() == ErrorKind::ConnectionRefused => {
            Err(format!("udp to {target}: port unreachable"))
        }
        (Err(e), None) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(()),
        (Err(e), _) => Err(format!("udp to {target}: no reply ({e})")),
    }
}

/// keepalived's DNS_CHECK: a query with recursion desired; a reply with the same id, the
/// response bit set and no error code passes (the answers are not looked at).
fn dns(target: SocketAddr, check: &CheckConfig, deadline: Instant) -> Result<(), String> {
    let socket = udp_socket(target, check)?;
    let id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5856, |d| d.subsec_nanos() as u16);
    let query = dns_query(id, &check.name, check.query_code().unwrap_or(6));
    socket
        .send(&query)
        .map_err(|e| format!("dns to {target}: {e}"))?;
    let mut reply = [0u8; 1500];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("dns to {target}: no answer for {}", check.name))?;
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = socket.recv(&mut reply).map_err(|e| match e.kind() {
            ErrorKind::ConnectionRefused => format!("dns to {target}: port unreachable"),
            _ => format!("dns to {target}: no answer for {} ({e})", check.name),
        })?;
        if n < 12 || u16::from_be_bytes([reply[0], reply[1]]) != id || reply[2] & 0x80 == 0 {
            continue;
        }
        return match reply[3] & 0x0f {
            0 => Ok(()),
            code => Err(format!(
                "dns to {target}: {} answered rcode {code}",
                check.name
            )),
        };
    }
}

/// A DNS query for `name` of type `code`, class IN, recursion desired.
fn dns_query(id: u16, name: &str, code: u16) -> Vec<u8> {
    let mut query = Vec::with_capacity(32 + name.len());
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let label = &label.as_bytes()[..label.len().min(63)];
        query.push(label.len() as u8);
        query.extend_from_slice(label);
    }
    query.push(0);
    query.extend_from_slice(&code.to_be_bytes());
    query.extend_from_slice(&1u16.to_be_bytes());
    query
}

/// keepalived's MISC_CHECK: `sh -c COMMAND` with the real server in `XVS_REAL_SERVER`;
/// exit 0 passes, and with `dynamic` 2..=255 passes with weight `code - 2`. Killed at the
/// deadline.
fn command(address: SocketAddr, check: &CheckConfig, deadline: Instant) -> CheckResult {
    let line = check.command.as_deref().unwrap_or("false");
    let user = check.user.as_deref().map(identity).transpose()?;
    match shell(
        line,
        Some(("XVS_REAL_SERVER", address.to_string())),
        user,
        deadline,
    )? {
        0 => Ok(None),
        code @ 2..=255 if check.dynamic => Ok(Some(Weighs::Is(code as u32 - 2))),
        code => Err(format!("{line:?} exited with {code}")),
    }
}

/// keepalived's `vrrp_script`: `sh -c COMMAND` (as `user`, if given), which passes if it
/// exits 0 within `timeout`.
pub fn script(line: &str, user: Option<&str>, timeout: Duration) -> Result<(), String> {
    let user = user.map(identity).transpose()?;
    match shell(line, None, user, Instant::now() + timeout)? {
        0 => Ok(()),
        code => Err(format!("{line:?} exited with {code}")),
    }
}

/// A user (and group) a command runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    uid: u32,
    gid: u32,
}

/// The identity of `NAME` (with its own group) or `NAME:GROUP`, from the system's user
/// and group databases.
fn identity(user: &str) -> Result<Identity, String> {
    let (name, group) = match user.split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user, None),
    };
    let c_name = std::ffi::CString::new(name).map_err(|_| format!("no user {name:?}"))?;
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwnam_r(3) writes into `entry` and `buffer`, both live and of the sizes
    // given; `found` is null or points to `entry`.
    let (uid, own_gid) = unsafe {
        let mut entry: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let error = libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        );
        if error != 0 || found.is_null() {
            return Err(format!("no user {name:?}"));
        }
        (entry.pw_uid, entry.pw_gid)
    };
    let gid = match group {
        None => own_gid,
        Some(group) => {
            let c_group =
                std::ffi::CString::new(group).map_err(|_| format!("no group {group:?}"))?;
            // SAFETY: getgrnam_r(3), as getpwnam_r above.
            unsafe {
                let mut entry: libc::group = std::mem::zeroed();
                let mut found: *mut libc::group = std::ptr::null_mut();
                let error = libc::getgrnam_r(
                    c_group.as_ptr(),
                    &mut entry,
                    buffer.as_mut_ptr(),
                    buffer.len(),
                    &mut found,
                );
                if error != 0 || found.is_null() {
                    return Err(format!("no group {group:?}"));
                }
                entry.gr_gid
            }
        }
    };
    Ok(Identity { uid, gid })
}

/// Runs `sh -c LINE` (with `env` set, if any, and as `user`, if given), its streams
/// closed, and waits for its exit code until `deadline`, when it is killed.
fn shell(
    line: &str,
    env: Option<(&str, String)>,
    user: Option<Identity>,
    deadline: Instant,
) -> Result<i32, String> {
    let mut command = Command::new("sh");
    command
        .args(["-c", line])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((name, value)) = env {
        command.env(name, value);
    }
    if let Some(Identity { uid, gid }) = user {
        // std drops the supplementary groups too, as root setting a uid.
        std::os::unix::process::CommandExt::uid(&mut command, uid);
        std::os::unix::process::CommandExt::gid(&mut command, gid);
    }
    let mut child = crate::control::with_signals(&mut command)
        .spawn()
        .map_err(|e| format!("{line:?}: {e}"))?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{line:?}: still running at the timeout, killed"));
            }
            Err(e) => return Err(format!("{line:?}: {e}")),
        }
    };
    status
        .code()
        .ok_or_else(|| format!("{line:?} ended by a signal"))
}

/// A stream an HTTP check talks over: plain TCP, or TLS over it (whose socket carries the
/// timeouts).
pub trait Exchange: Read + Write {
    fn socket(&self) -> &TcpStream;
}

impl Exchange for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

fn http_get(
    stream: &mut impl Exchange,
    target: SocketAddr,
    check: &CheckConfig,
    deadline: Instant,
) -> Result<(), String> {
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("GET {} on {target}: timed out", check.path))
    };
    stream
        .socket()
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    let host = check.host.clone().unwrap_or_else(|| target.to_string());
    let request = format!(
        "GET {} {}\r\nHost: {host}\r\nUser-Agent: xvsd\r\nConnection: close\r\n\r\n",
        check.path,
        check.http_version.as_str(),
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("GET {} on {target}: {e}", check.path))?;
    // Without a body to look for only the status line matters; with one, read to the end
    // (the request asked the server to close), at most 1 MiB.
    let whole_page = check.body.is_some() || check.body_regex.is_some() || check.digest.is_some();
    let enough = |head: &[u8]| match whole_page {
        false => head.contains(&b'\n') || head.len() >= 4096,
        true => head.len() >= 1 << 20,
    };
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 4096];
    while !enough(&head) {
        stream
            .socket()
            .set_read_timeout(Some(left()?.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            // A TLS server that closes without saying so has still sent its page.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !head.is_empty() => break,
            Err(e) => return Err(format!("GET {} on {target}: {e}", check.path)),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("");
    let status = status_code(line)
        .ok_or_else(|| format!("GET {} on {target}: no HTTP status in {line:?}", check.path))?;
    if !check.expect.contains(&status) {
        return Err(format!(
            "GET {} on {target}: status {status}, expected {:?}",
            check.path, check.expect
        ));
    }
    page_checks(&head, check).map_err(|why| format!("GET {} on {target}: {why}", check.path))
}

/// The body's checks: text it contains, a regular expression, keepalived's MD5 digest.
fn page_checks(response: &[u8], check: &CheckConfig) -> Result<(), String> {
    let (head, body) = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or((response, &response[response.len()..]), |at| {
            (&response[..at], &response[at + 4..])
        });
    // An HTTP/1.1 server may send the page in chunks even to a request that asks it to
    // close: the checks read the page, not the chunk sizes between its parts.
    let unchunked;
    let body = if chunked(head) {
        unchunked = unchunk(body).ok_or("a malformed chunked page")?;
        &unchunked[..]
    } else {
        body
    };
    let text = String::from_utf8_lossy(body);
    if let Some(wanted) = &check.body
        && !text.contains(wanted.as_str())
    {
        return Err(format!("the page lacks {wanted:?}"));
    }
    if let Some(pattern) = &check.body_regex {
        let regex = regex::Regex::new(pattern).map_err(|e| e.to_string())?;
        match (regex.is_match(&text), check.body_regex_no_match) {
            (false, false) => return Err(format!("the page does not match /{pattern}/")),
            (true, true) => return Err(format!("the page matches /{pattern}/")),
            _ => {}
        }
    }
    if let Some(digest) = &check.digest {
        use md5::Digest;
        let sum: String = md5::Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !sum.eq_ignore_ascii_case(digest) {
            return Err(format!("the page's MD5 is {sum}, expected {digest}"));
        }
    }
    Ok(())
}

/// Whether the response's head says `Transfer-Encoding: chunked`.
fn chunked(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().skip(1).any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    })
}

/// A chunked body's content (RFC 9112 §7.1: hex size, optional extensions, CRLF, data,
/// CRLF; a zero size ends it, trailers ignored); `None` if it is cut short or malformed.
fn unchunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut page = Vec::with_capacity(body.len());
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&body[..end]).ok()?;
        let hex = line.split(';').next()?.trim();
        let size = usize::from_str_radix(hex, 16).ok()?;
        body = &body[end + 2..];
        if size == 0 {
            return Some(page);
        }
        if body.len() < size + 2 || &body[size..size + 2] != b"\r\n" {
            return None;
        }
        page.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// The code of an HTTP status line (`HTTP/1.1 200 OK`).
fn status_code(line: &str) -> Option<u16> {
    let mut words = line.split_whitespace();
    words.next().filter(|w| w.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn check(kind: CheckType) -> CheckConfig {
        CheckConfig {
            kind,
            timeout: 0.5,
            ..CheckConfig::default()
        }
    }

    /// A one-connection server on loopback answering `reply` (None: accept and hang).
    fn server(reply: Option<&'static str>) -> SocketAddr {
        match reply {
            Some(text) => server_for(move |_| text.to_string()),
            None => server_for(|_| {
                std::thread::sleep(Duration::from_secs(3));
                String::new()
            }),
        }
    }

    /// A one-connection server on loopback answering what `answer` makes of the request.
    fn server_for(answer: impl FnOnce(&str) -> String + Send + 'static) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).unwrap_or(0);
            let reply = answer(&String::from_utf8_lossy(&request[..n]));
            let _ = stream.write_all(reply.as_bytes());
        });
        address
    }

    #[test]
    fn an_http_1_1_check_asks_in_1_1_and_reads_a_chunked_page_whole() {
        // A server that refuses HTTP/1.0 (as some do, with 505) and chunks its page,
        // splitting the word the check looks for.
        let strict = || {
            server_for(|request| {
                if request.starts_with("GET /health HTTP/1.1\r\n") {
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nrea\r\n3;x=y\r\ndy\n\r\n0\r\n\r\n"
                        .to_string()
                } else {
                    "HTTP/1.1 505 HTTP Version Not Supported\r\n\r\n".to_string()
                }
            })
        };
        let old = CheckConfig {
            path: "/health".into(),
            ..check(CheckType::Http)
        };
        assert!(run(&old, strict()).unwrap_err().contains("status 505"));
        let new = CheckConfig {
            http_version: xvs_health::config::HttpVersion::Http11,
            body: Some("ready".into()),
            ..old
        };
        assert_eq!(run(&new, strict()), Ok(None));
        // The digest is of the page, not of its chunks (`printf 'ready\n' | md5sum`).
        let digest = CheckConfig {
            digest: Some("28854bafa79a455c3ecdb40ef8b1149a".into()),
            ..new.clone()
        };
        assert_eq!(run(&digest, strict()), Ok(None));
        // A page cut off inside a chunk fails with a clear word.
        let cut = server(Some(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nready",
        ));
        let failed = run(&new, cut).unwrap_err();
        assert!(failed.contains("malformed chunked page"), "{failed}");
    }

    #[test]
    fn an_http_check_passes_on_an_expected_status_only() {
        let ok = server(Some("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert_eq!(run(&check(CheckType::Http), ok), Ok(None));
        let with_body = CheckConfig {
            body: Some("ready".into()),
            ..check(CheckType::Http)
        };
        let page = server(Some("HTTP/1.1 200 OK\r\n\r\nall ready\n"));
        assert_eq!(run(&with_body, page), Ok(None));
        let other = server(Some("HTTP/1.1 200 OK\r\n\r\nstarting\n"));
        let failed = run(&with_body, other).unwrap_err();
        assert!(failed.contains("lacks \"ready\""), "{failed}");
        // keepalived's digest: the MD5 of the body alone (`printf 'ok\n' | md5sum`).
        let digest = |sum: &str| CheckConfig {
            digest: Some(sum.into()),
            ..check(CheckType::Http)
        };
        let page = || server(Some("HTTP/1.1 200 OK\r\nX: y\r\n\r\nok\n"));
        assert_eq!(
            run(&digest("eff5bc1ef8ec9d03e640fc4370f5eacd"), page()),
            Ok(None)
        );
        let wrong = run(&digest("7f7d3ef7b2e1ed4ee8ffb0e8d8a2c4d3"), page()).unwrap_err();
        assert!(
            wrong.contains("the page's MD5 is eff5bc1ef8ec9d03e640fc4370f5eacd"),
            "{wrong}"
        );
        let regex = |pattern: &str| CheckConfig {
            body_regex: Some(pattern.into()),
            ..check(CheckType::Http)
        };
        assert_eq!(run(&regex("(?m)^o[k]$"), page()), Ok(None));
        assert!(
            run(&regex("^X"), page())
                .unwrap_err()
                .contains("does not match")
        );
        // keepalived's regex_no_match: the page must not match.
        let no_match = |pattern: &str| CheckConfig {
            body_regex_no_match: true,
            ..regex(pattern)
        };
        assert_eq!(run(&no_match("^X"), page()), Ok(None));
        assert!(
            run(&no_match("(?m)^o[k]$"), page())
                .unwrap_err()
                .contains("the page matches")
        );
        let error = server(Some("HTTP/1.0 503 Service Unavailable\r\n\r\n"));
        let failed = run(&check(CheckType::Http), error).unwrap_err();
        assert!(failed.contains("status 503"), "{failed}");
        let garbage = server(Some("hello\n"));
        assert!(run(&check(CheckType::Http), garbage).is_err());
    }

    #[test]
    fn a_server_that_accepts_and_hangs_fails_within_the_timeout() {
        let hangs = server(None);
        let failed = run(&check(CheckType::Http), hangs).unwrap_err();
        assert!(failed.contains("GET /"), "{failed}");
    }

    /// Held by tests that fork (a command check) and by those that need a socket they
    /// closed to be closed at once.
    static FORKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A TCP port on loopback that nothing listens on, held (bound, never listening) so
    /// that nobody else can take it, with the socket that holds it. A listener closed
    /// instead would not do: a child forked by another test keeps it open until it execs.
    fn closed_port() -> (SocketAddr, std::os::fd::OwnedFd) {
        use std::os::fd::FromRawFd;
        // SAFETY: a socket, bound and named with a sockaddr_in sized as given.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
            let mut address: libc::sockaddr_in = std::mem::zeroed();
            address.sin_family = libc::AF_INET as u16;
            address.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            let size = std::mem::size_of::<libc::sockaddr_in>() as u32;
            assert_eq!(libc::bind(fd, (&raw const address).cast(), size), 0);
            let mut named = size;
            assert_eq!(
                libc::getsockname(fd, (&raw mut address).cast(), &mut named),
                0
            );
            let port = u16::from_be(address.sin_port);
            (SocketAddr::from(([127, 0, 0, 1], port)), owned)
        }
    }

    #[test]
    fn a_closed_port_fails_a_tcp_check_and_an_open_one_passes() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = open.local_addr().unwrap();
        assert_eq!(run(&check(CheckType::Tcp), address), Ok(None));
        let (closed, _held) = closed_port();
        let refused = run(&check(CheckType::Tcp), closed).unwrap_err();
        assert!(refused.contains("refused"), "{refused}");
    }

    #[test]
    fn a_file_check_passes_on_0_and_fails_on_another_value_or_no_file() {
        let folder = std::env::temp_dir().join(format!("xvs-file-check-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("web1");
        let checked = CheckConfig {
            file: Some(path.to_string_lossy().into_owned()),
            ..check(CheckType::File)
        };
        let address: SocketAddr = "192.168.1.10:80".parse().unwrap();
        // The check of `checked` once the file holds `content` (or is gone).
        let after = |checked: &CheckConfig, content: Option<&str>| {
            match content {
                Some(text) => std::fs::write(&path, text).unwrap(),
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
            run(checked, address)
        };
        let result = |content: Option<&str>| after(&checked, content);
        assert_eq!(result(Some("0\n")), Ok(None));
        assert_eq!(result(Some("  0 maintenance over\n")), Ok(None));
        assert!(result(Some("1\n")).unwrap_err().ends_with("holds 1"));
        assert!(result(Some("-3")).unwrap_err().ends_with("holds -3"));
        assert!(result(Some("")).unwrap_err().contains("no integer"));
        assert!(result(None).unwrap_err().contains("No such file"));

        // With a weight the value moves the weight and never fails (keepalived's reading:
        // a missing or non-numeric file is 0).
        let weighted = CheckConfig {
            weight: 10,
            ..checked.clone()
        };
        let value = |content: Option<&str>| after(&weighted, content);
        assert_eq!(value(Some("3\n")), Ok(Some(Weighs::FileHolds(3))));
        assert_eq!(value(Some("-2 busy")), Ok(Some(Weighs::FileHolds(-2))));
        assert_eq!(value(Some("busy")), Ok(Some(Weighs::FileHolds(0))));
        assert_eq!(value(None), Ok(Some(Weighs::FileHolds(0))));
        assert_eq!(Weighs::FileHolds(3).weight(&weighted, 5), 35);
        assert_eq!(Weighs::FileHolds(-2).weight(&weighted, 5), 0, "not below 0");
        assert_eq!(Weighs::FileHolds(99_999).weight(&weighted, 5), 65_535);
        let reverse = CheckConfig {
            reverse: true,
            ..weighted.clone()
        };
        assert_eq!(Weighs::FileHolds(-2).weight(&reverse, 5), 25);
        assert_eq!(Weighs::Is(7).weight(&weighted, 5), 7);
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn a_command_passes_on_exit_0_sets_a_dynamic_weight_and_is_killed_at_the_timeout() {
        let _forking = FORKING.lock().unwrap_or_else(|e| e.into_inner());
        let address: SocketAddr = "192.168.1.10:80".parse().unwrap();
        let with = |line: &str, dynamic: bool| CheckConfig {
            command: Some(line.into()),
            dynamic,
            ..check(CheckType::Command)
        };
        let server_named = with("test \"$XVS_REAL_SERVER\" = 192.168.1.10:80", false);
        assert_eq!(run(&server_named, address), Ok(None));
        assert!(run(&with("exit 1", false), address).is_err());
        assert_eq!(run(&with("exit 7", true), address), Ok(Some(Weighs::Is(5))));
        assert!(run(&with("exit 7", false), address).is_err());
        let hangs = run(&with("sleep 5", false), address).unwrap_err();
        assert!(hangs.contains("killed"), "{hangs}");
    }

    /// keepalived's MISC_CHECK (and vrrp_script) `user`: the command runs as that user,
    /// with its group or the one named; a user the system does not know fails the check,
    /// clearly.
    #[test]
    fn a_command_runs_as_its_user() {
        let _forking = FORKING.lock().unwrap_or_else(|e| e.into_inner());
        let address: SocketAddr = "192.168.1.10:80".parse().unwrap();
        let as_user = |user: Option<&str>| CheckConfig {
            command: Some("test \"$(id -u)\" != 0 && test \"$(id -g)\" = 0".into()),
            user: user.map(String::from),
            ..check(CheckType::Command)
        };
        assert_eq!(run(&as_user(Some("nobody:root")), address), Ok(None));
        assert!(
            run(&as_user(Some("nobody")), address).is_err(),
            "nobody's own group"
        );
        assert!(
            run(&as_user(None), address).is_err(),
            "xvsd's own user: root"
        );
        assert_eq!(
            run(&as_user(Some("no-such-user")), address),
            Err("no user \"no-such-user\"".to_string())
        );
        assert_eq!(
            run(&as_user(Some("nobody:no-such-group")), address),
            Err("no group \"no-such-group\"".to_string())
        );
        // A VRRP track script's `user` too.
        let not_root = "test \"$(id -u)\" != 0";
        let timeout = Duration::from_secs(5);
        assert_eq!(script(not_root, Some("nobody"), timeout), Ok(()));
        assert!(script(not_root, None, timeout).is_err());
    }

    #[test]
    fn udp_fails_on_port_unreachable_and_needs_the_reply_when_asked() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 64];
            for _ in 0..2 {
                let (n, from) = socket.recv_from(&mut buffer).unwrap();
                let mut answer = b"pong ".to_vec();
                answer.extend_from_slice(&buffer[..n]);
                socket.send_to(&answer, from).unwrap();
            }
        });
        let asks = CheckConfig {
            payload: "ping".into(),
            reply: Some("pong ping".into()),
            ..check(CheckType::Udp)
        };
        assert_eq!(run(&asks, address), Ok(None));
        let wrong = CheckConfig {
            reply: Some("other".into()),
            ..asks.clone()
        };
        assert!(run(&wrong, address).is_err());
        // Nobody on this port: the kernel's port unreachable fails it. (No process is
        // forked meanwhile, which would hold the closed socket until it execs.)
        let _forking = FORKING.lock().unwrap_or_else(|e| e.into_inner());
        let closed = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let refused = run(&check(CheckType::Udp), closed).unwrap_err();
        assert!(refused.contains("unreachable"), "{refused}");
    }

    #[test]
    fn dns_passes_on_a_matching_answer_without_error() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            for rcode in [0u8, 3] {
                let (n, from) = socket.recv_from(&mut buffer).unwrap();
                let mut answer = buffer[..n].to_vec();
                answer[2] |= 0x80;
                answer[3] = rcode;
                socket.send_to(&answer, from).unwrap();
            }
        });
        let query = CheckConfig {
            name: "example.org".into(),
            query_type: "A".into(),
            ..check(CheckType::Dns)
        };
        assert_eq!(run(&query, address), Ok(None));
        let nxdomain = run(&query, address).unwrap_err();
        assert!(nxdomain.contains("rcode 3"), "{nxdomain}");
        assert_eq!(
            dns_query(0x1234, "a.bc.", 1),
            [
                0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 1, 0, 1
            ]
        );
    }
}
