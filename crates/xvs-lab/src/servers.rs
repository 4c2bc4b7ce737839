//! Small servers that run inside a lab host: on a thread of the test process whose
//! listening socket was created inside the host's network namespace.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpListener, TcpStream, UdpSocket},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use crate::{LabError, Result, enter_namespace};

/// What a lab server does with each connection.
#[derive(Debug, Clone)]
pub enum ServerKind {
    /// HTTP/1.1: `GET /bytes/N` answers N bytes of [`pattern`], `GET /status/N` an empty
    /// page with status N; any other request answers the given body (a page that names its
    /// server). One request per connection.
    Http(String),
    /// TCP: sends back everything it receives.
    Echo,
    /// TCP: reads until the client half-closes, then answers the byte count in decimal.
    Sink,
    /// UDP: answers each datagram with the given name.
    UdpName(String),
    /// SMTP's opening as a mail server plays it (RFC 5321): a 220 greeting naming it,
    /// 250 to HELO and EHLO, 221 to QUIT (then it closes), 502 to anything else. No mail
    /// is taken.
    Smtp(String),
}

/// A running server; stopped when dropped.
pub struct Server {
    namespace: String,
    socket: i32,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(namespace: &str, port: u16, kind: ServerKind) -> Result<Server> {
        let ns = namespace.to_string();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            if let Err(e) = enter_namespace(&ns) {
                let _ = ready_tx.send(Err(e));
                return;
            }
            match kind {
                ServerKind::UdpName(name) => match UdpSocket::bind(("::", port)) {
                    Ok(socket) => {
                        let _ = ready_tx.send(Ok(socket.as_raw_fd()));
                        serve_udp(socket, &name, &stopped);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(LabError(format!("udp bind {port}: {e}"))));
                    }
                },
                kind => match TcpListener::bind(("::", port)) {
                    Ok(listener) => {
                        let _ = ready_tx.send(Ok(listener.as_raw_fd()));
                        serve_tcp(listener, kind);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(LabError(format!("tcp bind {port}: {e}"))));
                    }
                },
            }
        });
        let socket = ready_rx
            .recv()
            .map_err(|_| LabError("server thread died before listening".into()))??;
        Ok(Server {
            namespace: namespace.to_string(),
            socket,
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept()/recv() so the thread returns and closes the socket
        // (an open socket would keep the namespace alive after `ip netns del`).
        // SAFETY: the socket is owned by the server thread, which is still running.
        unsafe { libc::shutdown(self.socket, libc::SHUT_RDWR) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The bytes `GET /bytes/N` answers: a repeating, position-dependent pattern, so that a
/// lost, duplicated or reordered segment shows.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn serve_tcp(listener: TcpListener, kind: ServerKind) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let kind = kind.clone();
        std::thread::spawn(move || {
            let _ = match kind {
                ServerKind::Http(body) => answer_http(stream, &body),
                ServerKind::Echo => echo(stream),
                ServerKind::Sink => sink(stream),
                ServerKind::Smtp(name) => smtp(stream, &name),
                ServerKind::UdpName(_) => Ok(()),
            };
        });
    }
}

fn answer_http(stream: TcpStream, body: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let status = path
        .strip_prefix("/status/")
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or(200);
    let content = match path.strip_prefix("/bytes/").map(str::parse::<usize>) {
        Some(Ok(len)) => pattern(len),
        _ if status != 200 => Vec::new(),
        _ => format!("{body}\n").into_bytes(),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
        if status == 200 { "OK" } else { "Status" },
        content.len()
    )?;
    stream.write_all(&content)?;
    stream.shutdown(Shutdown::Write)
}

fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = stream.try_clone()?;
    std::io::copy(&mut reader, &mut stream)?;
    stream.shutdown(Shutdown::Write)
}

fn sink(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    writeln!(stream, "{total}")?;
    stream.shutdown(Shutdown::Write)
}

fn smtp(mut stream: TcpStream, name: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    write!(stream, "220 {name} ESMTP\r\n")?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "HELO" | "EHLO" => write!(stream, "250 {name}\r\n")?,
            "QUIT" => {
                write!(stream, "221 2.0.0 {name} closing\r\n")?;
                return stream.shutdown(Shutdown::Write);
            }
            _ => write!(stream, "502 5.5.2 command not recognized\r\n")?,
        }
    }
}

fn serve_udp(socket: UdpSocket, name: &str, stop: &AtomicBool) {
    let mut buf = [0u8; 2048];
    while let Ok((_, peer)) = socket.recv_from(&mut buf) {
        // After shutdown() a UDP socket reads empty "datagrams": the flag says why.
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let _ = socket.send_to(format!("{name}\n").as_bytes(), peer);
    }
}
