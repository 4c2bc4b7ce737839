//! The checks themselves: a TCP connect, or an HTTP GET whose status must be one of those
//! expected. Each is bounded by its timeout end to end, so a real server that accepts and
//! then hangs fails its check instead of holding the checker.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use xvs_health::{
    config::{CheckConfig, CheckType},
    health::Outcome,
};

/// Runs `check` against the real server at `address`; why it failed, if it did.
pub fn run(check: &CheckConfig, address: SocketAddr) -> Result<(), String> {
    let target = SocketAddr::new(address.ip(), check.port.unwrap_or(address.port()));
    let deadline = Instant::now() + check.timeout();
    let mut stream = TcpStream::connect_timeout(&target, check.timeout())
        .map_err(|e| format!("connect to {target}: {e}"))?;
    match check.kind {
        CheckType::Tcp => Ok(()),
        CheckType::Http => http_get(&mut stream, target, check, deadline),
    }
}

pub fn outcome(result: &Result<(), String>) -> Outcome {
    match result {
        Ok(()) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

fn http_get(
    stream: &mut TcpStream,
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
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: xvsd\r\nConnection: close\r\n\r\n",
        check.path,
        target.ip()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("GET {} on {target}: {e}", check.path))?;
    // Only the status line matters; read until it is complete.
    let mut head = Vec::with_capacity(64);
    let mut buffer = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        stream
            .set_read_timeout(Some(left()?.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            Err(e) => return Err(format!("GET {} on {target}: {e}", check.path)),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("");
    let status = status_code(line)
        .ok_or_else(|| format!("GET {} on {target}: no HTTP status in {line:?}", check.path))?;
    if check.expect.contains(&status) {
        Ok(())
    } else {
        Err(format!(
            "GET {} on {target}: status {status}, expected {:?}",
            check.path, check.expect
        ))
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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            match reply {
                Some(text) => {
                    let _ = stream.write_all(text.as_bytes());
                }
                None => std::thread::sleep(Duration::from_secs(3)),
            }
        });
        address
    }

    #[test]
    fn an_http_check_passes_on_an_expected_status_only() {
        let ok = server(Some("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert_eq!(run(&check(CheckType::Http), ok), Ok(()));
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

    #[test]
    fn a_closed_port_fails_a_tcp_check_and_an_open_one_passes() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = open.local_addr().unwrap();
        assert_eq!(run(&check(CheckType::Tcp), address), Ok(()));
        drop(open);
        assert!(run(&check(CheckType::Tcp), address).is_err());
    }
}
