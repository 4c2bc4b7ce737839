//! keepalived's SMTP_CHECK: the server's greeting must be 220, `HELO name` must be
//! answered by 250; then QUIT, whose answer is read but does not matter.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

/// Replies longer than this are refused (a server that streams without end).
const REPLY_AT_MOST: usize = 4096;

/// One SMTP conversation with the server `target` on `stream`, over by `deadline`.
pub fn check(
    stream: &mut TcpStream,
    target: SocketAddr,
    helo_name: &str,
    deadline: Instant,
) -> Result<(), String> {
    let failed = |why: String| format!("smtp on {target}: {why}");
    expect(stream, deadline, 220, "greeting").map_err(failed)?;
    send(stream, deadline, &format!("HELO {helo_name}\r\n")).map_err(failed)?;
    expect(stream, deadline, 250, "HELO").map_err(failed)?;
    if send(stream, deadline, "QUIT\r\n").is_ok() {
        let _ = reply(stream, deadline);
    }
    Ok(())
}

/// Time left before `deadline`, or why there is none.
fn left(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "timed out".to_string())
}

fn send(stream: &mut TcpStream, deadline: Instant, line: &str) -> Result<(), String> {
    stream
        .set_write_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("sending {:?}: {e}", line.trim_end()))
}

/// Reads one reply and checks its code.
fn expect(stream: &mut TcpStream, deadline: Instant, code: u16, after: &str) -> Result<(), String> {
    let (got, text) = reply(stream, deadline).map_err(|why| format!("{after}: {why}"))?;
    if got == code {
        Ok(())
    } else {
        Err(format!("{after}: {text:?}, expected {code}"))
    }
}

/// One reply (its lines `250-...` continue, `250 ...` ends it): its code and last line.
fn reply(stream: &mut TcpStream, deadline: Instant) -> Result<(u16, String), String> {
    let mut text = Vec::with_capacity(256);
    let mut buffer = [0u8; 512];
    loop {
        if let Some(done) = complete(&text) {
            return done;
        }
        if text.len() > REPLY_AT_MOST {
            return Err(format!("a reply longer than {REPLY_AT_MOST} bytes"));
        }
        stream
            .set_read_timeout(Some(left(deadline)?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buffer) {
            Ok(0) => return Err("the server closed the connection".to_string()),
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The reply in `text`, if its last line has come: the code and that line, or why it is
/// no SMTP reply.
fn complete(text: &[u8]) -> Option<Result<(u16, String), String>> {
    for line in text.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            return None;
        }
        let line = String::from_utf8_lossy(line).trim_end().to_string();
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        match (code, line.as_bytes().get(3)) {
            (Some(_), Some(b'-')) => continue,
            (Some(code), None | Some(b' ')) => return Some(Ok((code, line))),
            _ => return Some(Err(format!("{line:?} is no SMTP reply"))),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{io::BufRead, net::TcpListener};

    /// A server that answers each line with the next of `replies` (the first on connect)
    /// and records what it was sent.
    fn server(replies: &'static [&'static str]) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut heard = String::new();
            let mut lines = std::io::BufReader::new(stream.try_clone().unwrap());
            for reply in replies {
                stream.write_all(reply.as_bytes()).unwrap();
                let mut line = String::new();
                if lines.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                heard.push_str(&line);
            }
            heard
        });
        (address, thread)
    }

    fn run(address: SocketAddr) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut stream = TcpStream::connect(address).unwrap();
        check(&mut stream, address, "checker.example", deadline)
    }

    #[test]
    fn a_greeting_and_a_helo_answered_pass_and_quit_ends_it() {
        let (address, heard) = server(&[
            "220-mail.example ESMTP\r\n220 ready\r\n",
            "250 mail.example\r\n",
            "221 bye\r\n",
        ]);
        assert_eq!(run(address), Ok(()));
        assert_eq!(heard.join().unwrap(), "HELO checker.example\r\nQUIT\r\n");
    }

    #[test]
    fn a_refusing_greeting_a_refused_helo_or_no_smtp_fail() {
        let (address, _) = server(&["554 no service\r\n"]);
        let why = run(address).unwrap_err();
        assert!(why.contains("greeting") && why.contains("554"), "{why}");
        let (address, _) = server(&["220 ready\r\n", "501 bad name\r\n"]);
        let why = run(address).unwrap_err();
        assert!(why.contains("HELO") && why.contains("501"), "{why}");
        let (address, _) = server(&["HTTP/1.1 400 Bad Request\r\n"]);
        assert!(run(address).unwrap_err().contains("no SMTP reply"));
    }

    #[test]
    fn a_server_that_never_greets_fails_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut stream = TcpStream::connect(address).unwrap();
        let deadline = Instant::now() + Duration::from_millis(200);
        let why = check(&mut stream, address, "x", deadline).unwrap_err();
        assert!(why.contains("greeting"), "{why}");
    }
}
