//! Real servers on 127.0.0.1 for the tests: a TCP listener, an HTTP
//! server with a configurable reply, a UDP responder, closed ports; and a
//! sink that records transitions.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, listen, socket,
};
use parking_lot::{Condvar, Mutex};
use xvs_health::{Check, Sink, Target, TargetKey, Timing, Transition};

/// Generous upper bound for anything the tests wait for.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Fast timing for tests: 50 ms interval, 300 ms timeout, rise 2, fall 2.
pub fn fast() -> Timing {
    Timing {
        interval_ms: 50,
        timeout_ms: 300,
        rise: 2,
        fall: 2,
        alpha: false,
    }
}

pub fn target(addr: SocketAddr, check: Check, timing: Timing) -> Target {
    Target {
        key: TargetKey {
            service: "svc".into(),
            addr,
        },
        check,
        timing,
    }
}

/// A port where nothing listens (a listener bound then closed).
pub fn closed_tcp_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn closed_udp_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A listener whose accept queue is full: connections to it hang in
/// SYN-SENT (the kernel drops their SYNs), so a connect times out.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: OwnedFd,
    _filler: TcpStream,
}

impl Blackhole {
    pub fn new() -> Blackhole {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
        listen(&fd, Backlog::new(0).unwrap()).unwrap();
        let addr: SocketAddr = nix::sys::socket::getsockname::<SockaddrIn>(fd.as_raw_fd())
            .map(|a| SocketAddr::from((a.ip(), a.port())))
            .unwrap();
        // Backlog 0 admits one connection into the queue: fill it.
        let filler = TcpStream::connect(addr).unwrap();
        Blackhole {
            addr,
            _listener: fd,
            _filler: filler,
        }
    }
}

/// What the HTTP fixture answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A normal response with this status and body (`Content-Length`).
    Normal { status: u16, body: Vec<u8> },
    /// These bytes, then close.
    Raw(Vec<u8>),
    /// A 200 head, then body bytes until the client goes away.
    Endless,
    /// Close without answering.
    Close,
}

pub struct HttpServer {
    pub addr: SocketAddr,
    reply: Arc<Mutex<(Reply, Duration)>>,
    requests: Arc<Mutex<Vec<String>>>,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn new(status: u16, body: &str) -> HttpServer {
        HttpServer::with(Reply::Normal {
            status,
            body: body.as_bytes().to_vec(),
        })
    }

    pub fn with(reply: Reply) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let reply = Arc::new(Mutex::new((reply, Duration::ZERO)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, q, h, s) = (reply.clone(), requests.clone(), hits.clone(), stop.clone());
        let accept = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (r, q, h, s) = (r.clone(), q.clone(), h.clone(), s.clone());
                        thread::spawn(move || serve(conn, &r, &q, &h, &s));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpServer {
            addr,
            reply,
            requests,
            hits,
            stop,
            accept: Some(accept),
        }
    }

    pub fn set(&self, reply: Reply) {
        self.reply.lock().0 = reply;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.reply.lock().1 = delay;
    }

    pub fn last_request(&self) -> Option<String> {
        self.requests.lock().last().cloned()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    mut conn: TcpStream,
    reply: &Mutex<(Reply, Duration)>,
    requests: &Mutex<Vec<String>>,
    hits: &AtomicUsize,
    stop: &AtomicBool,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    requests
        .lock()
        .push(String::from_utf8_lossy(&req).into_owned());
    let (reply, delay) = reply.lock().clone();
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let _ = match reply {
        Reply::Normal { status, body } => {
            let head = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes())
                .and_then(|()| conn.write_all(&body))
        }
        Reply::Raw(bytes) => conn.write_all(&bytes),
        Reply::Endless => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = [b'x'; 16 * 1024];
            while !stop.load(Ordering::SeqCst) && conn.write_all(&chunk).is_ok() {}
            Ok(())
        }
        Reply::Close => Ok(()),
    };
}

/// What the UDP fixture does with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpMode {
    Echo,
    Silent,
}

pub struct UdpServer {
    pub addr: SocketAddr,
    mode: Arc<Mutex<UdpMode>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl UdpServer {
    pub fn new(mode: UdpMode) -> UdpServer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (mode.clone(), stop.clone());
        let handle = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::SeqCst) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if *m.lock() == UdpMode::Echo {
                        let _ = sock.send_to(&buf[..n], from);
                    }
                }
            }
        });
        UdpServer {
            addr,
            mode,
            stop,
            handle: Some(handle),
        }
    }

    pub fn set(&self, mode: UdpMode) {
        *self.mode.lock() = mode;
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A sink that keeps every transition with the time it came.
#[derive(Clone, Default)]
pub struct Recorder(Arc<RecorderInner>);

#[derive(Default)]
pub struct RecorderInner {
    events: Mutex<Vec<(Instant, Transition)>>,
    cv: Condvar,
}

impl Sink for Recorder {
    fn transition(&self, t: Transition) {
        self.0.events.lock().push((Instant::now(), t));
        self.0.cv.notify_all();
    }
}

impl Recorder {
    pub fn sink(&self) -> Arc<dyn Sink> {
        Arc::new(self.clone())
    }

    /// All transitions so far.
    pub fn all(&self) -> Vec<Transition> {
        self.0
            .events
            .lock()
            .iter()
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// When each transition came.
    pub fn times(&self) -> Vec<Instant> {
        self.0.events.lock().iter().map(|(at, _)| *at).collect()
    }

    /// Waits until `n` transitions have come (panics after [`PATIENCE`]),
    /// and returns them all.
    pub fn wait(&self, n: usize) -> Vec<Transition> {
        let deadline = Instant::now() + PATIENCE;
        let mut ev = self.0.events.lock();
        while ev.len() < n {
            if self.0.cv.wait_until(&mut ev, deadline).timed_out() {
                let got: Vec<_> = ev.iter().map(|e| &e.1).collect();
                panic!("waited for {n} transitions, got {got:?}");
            }
        }
        ev.iter().map(|(_, t)| t.clone()).collect()
    }
}

/// Polls `f` until it is true (panics after [`PATIENCE`]).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Processes of the process group `pgid` that are alive (neither gone nor
/// zombies waiting for init to reap them), from `/proc`.
pub fn live_in_group(pgid: i32) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            n += 1;
        }
    }
    n
}
