//! xvsd's HTTP listener (127.0.0.1:9180 by default): `/metrics` for Prometheus, `/` the
//! status page, `/api/status` its data as JSON. One short request per connection, each
//! answered from a report the daemon's loop makes on request; a client that sends
//! nothing for 5 seconds is dropped, so no client can hold the listener.

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::mpsc,
    time::Duration,
};

/// The status page: plain HTML and script, no outside resources.
const PAGE: &str = include_str!("status.html");

/// What the loop is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Metrics,
    Json,
}

/// Asks the daemon's loop for a rendered report.
pub type Ask = Box<dyn Fn(Wanted) -> Option<String> + Send>;

/// Starts serving on `address`.
pub fn serve(address: SocketAddr, ask: Ask) -> Result<(), String> {
    let listener =
        TcpListener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
    std::thread::Builder::new()
        .name("http".to_string())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &ask);
            }
        })
        .map_err(|e| format!("cannot start the HTTP listener: {e}"))?;
    Ok(())
}

fn answer(stream: TcpStream, ask: &Ask) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers are read and ignored, up to a bound.
    for _ in 0..100 {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut words = request.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body) = match (method, path) {
        ("GET", "/") => ("200 OK", "text/html; charset=utf-8", PAGE.to_string()),
        ("GET", "/metrics") => match ask(Wanted::Metrics) {
            Some(text) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text),
            None => unavailable(),
        },
        ("GET", "/api/status") => match ask(Wanted::Json) {
            Some(text) => ("200 OK", "application/json", text),
            None => unavailable(),
        },
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn unavailable() -> (&'static str, &'static str, String) {
    (
        "503 Service Unavailable",
        "text/plain",
        "xvsd cannot read the director now\n".to_string(),
    )
}

/// An `Ask` that sends the request into the daemon's loop and waits for the answer.
pub fn through<M: Send + 'static>(
    sender: mpsc::Sender<M>,
    message: fn(Wanted, mpsc::Sender<Option<String>>) -> M,
) -> Ask {
    let sender = std::sync::Mutex::new(sender);
    Box::new(move |wanted| {
        let (reply, replied) = mpsc::channel();
        sender.lock().ok()?.send(message(wanted, reply)).ok()?;
        replied.recv_timeout(Duration::from_secs(10)).ok().flatten()
    })
}
