//! How xvsd is reached while it runs: its control socket (`xvsd reload`, `xvsd health`)
//! and its signals (SIGHUP reloads; SIGTERM and SIGINT stop it cleanly). Both only turn
//! requests into messages for the daemon's loop.

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::{linux::net::SocketAddrExt, unix::net::UnixListener, unix::net::UnixStream},
    sync::mpsc,
    time::Duration,
};

use crate::daemon::Message;

/// The control socket's name in the abstract namespace: abstract unix sockets belong to
/// the network namespace, as the director does, so each namespace has its own xvsd.
const CONTROL: &str = "xvsd";

/// `xvsd reload` and `xvsd health`: asks the running daemon of this namespace.
pub fn ask(request: &str) -> Result<(), String> {
    let name =
        std::os::unix::net::SocketAddr::from_abstract_name(CONTROL).map_err(|e| e.to_string())?;
    let mut stream = UnixStream::connect_addr(&name)
        .map_err(|e| format!("no xvsd runs in this network namespace ({e})"))?;
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|e| e.to_string())?;
    match reply.strip_prefix("error: ") {
        Some(why) => Err(why.trim_end().to_string()),
        None => {
            print!("{reply}");
            Ok(())
        }
    }
}

/// The control socket: one request line (`reload`, `health`), one reply, then closed.
pub fn listen(sender: mpsc::Sender<Message>) -> Result<(), String> {
    let name =
        std::os::unix::net::SocketAddr::from_abstract_name(CONTROL).map_err(|e| e.to_string())?;
    let listener = UnixListener::bind_addr(&name).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => "another xvsd runs in this network namespace".to_string(),
        _ => format!("control socket: {e}"),
    })?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &sender);
        }
    });
    Ok(())
}

fn answer(mut stream: UnixStream, sender: &mpsc::Sender<Message>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let (reply, replied) = mpsc::channel();
    let message = match line.trim() {
        "reload" => Message::Reload(Some(reply)),
        "health" => Message::Status(reply),
        "drain" => Message::Drain(true, reply),
        "drain off" => Message::Drain(false, reply),
        other => {
            return stream.write_all(format!("error: unknown request {other:?}\n").as_bytes());
        }
    };
    if sender.send(message).is_err() {
        return Ok(());
    }
    let text = replied
        .recv()
        .unwrap_or_else(|_| "error: xvsd is stopping\n".to_string());
    stream.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        stream.write_all(b"\n")?;
    }
    Ok(())
}

/// `command` with its child's signal mask cleared: xvsd blocks SIGHUP, SIGTERM and
/// SIGINT in its threads (see [`forward_signals`]), and a blocked signal stays blocked
/// across exec: a BIRD, a check or a notify script would not stop at SIGTERM.
pub fn with_signals(command: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: sigprocmask(2) on an empty set only, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        })
    }
}

/// Blocks SIGHUP, SIGTERM and SIGINT in this (and every later) thread: SIGHUP becomes a
/// reload, the others a clean stop.
pub fn forward_signals(sender: mpsc::Sender<Message>) -> Result<(), String> {
    // SAFETY: plain signal-mask calls on a zeroed, then initialised, sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let error = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if error != 0 {
            return Err(format!(
                "cannot block SIGHUP: {}",
                std::io::Error::from_raw_os_error(error)
            ));
        }
        set
    };
    std::thread::spawn(move || {
        loop {
            let mut signal = 0;
            // SAFETY: waits for a signal of `set`, which this thread has blocked.
            if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                continue;
            }
            let message = match signal {
                libc::SIGHUP => Message::Reload(None),
                _ => Message::Terminate,
            };
            if sender.send(message).is_err() {
                return;
            }
        }
    });
    Ok(())
}
