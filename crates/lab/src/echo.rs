//! The real-server program: a small HTTP server and a UDP echo.
//!
//! - TCP: HTTP/1.0 and HTTP/1.1 (keep-alive) `GET` or `HEAD`:
//!   - `/` answers the body `NAME\n`;
//!   - `/bytes/N` answers `N` bytes of [`crate::pattern`] (streamed, any
//!     size), so a client can check multi-megabyte transfers;
//!   - anything else `404`, other methods `405`, garbage `400`.
//!
//!   Every answer carries `X-Real-Server: NAME`, `X-Client-Addr` (the
//!   peer as the server sees it: the real client in DR, TUN and NAT) and
//!   `X-Local-Addr` (the address the request reached: the VIP in DR and
//!   TUN, the real server's own address behind NAT).
//! - UDP: each datagram is answered with `NAME\n` followed by the datagram.
//!   The answer leaves from the address the datagram was sent to (the VIP
//!   in DR and TUN), also when the socket is bound to a wildcard address
//!   (`IP_PKTINFO` / `IPV6_PKTINFO`), as a real server behind LVS must.
//!
//! [`EchoServer::start`] binds in the calling thread's namespace (use it
//! inside [`crate::Netns::run`], or [`EchoServer::start_in`]); one thread per
//! listener, per UDP socket and per TCP connection. Dropping the server
//! closes its listeners; open connections end with their clients (or after
//! [`IDLE_TIMEOUT`]). The `xvs-echo` binary is a command line over this.

use std::io::{self, BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
    UdpSocket,
};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::libc;
use nix::sys::socket::{
    AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, Shutdown, SockFlag,
    SockType, SockaddrIn, SockaddrIn6, SockaddrStorage, bind, listen, recvmsg, sendmsg, setsockopt,
    shutdown, socket, sockopt,
};

use crate::error::{LabError, Result};
use crate::netns::Netns;
use crate::pattern;

/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest request line or header line accepted.
const MAX_LINE: u64 = 8192;
/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 100;

/// What to serve.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// The real server's name, the body of `GET /` and the prefix of UDP
    /// answers.
    pub name: String,
    /// TCP (HTTP) listen addresses; `0.0.0.0:P` and `[::]:P` may both be
    /// given (IPv6 sockets are v6-only).
    pub tcp: Vec<SocketAddr>,
    /// UDP listen addresses.
    pub udp: Vec<SocketAddr>,
}

impl EchoConfig {
    /// `name` on TCP `tcp_port` and UDP `udp_port` of every address, IPv4
    /// and IPv6 (`0.0.0.0` and `[::]`). A port 0 leaves that protocol out.
    pub fn wildcard(name: &str, tcp_port: u16, udp_port: u16) -> Self {
        let any = |port: u16| -> Vec<SocketAddr> {
            if port == 0 {
                return Vec::new();
            }
            vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            ]
        };
        Self {
            name: name.to_owned(),
            tcp: any(tcp_port),
            udp: any(udp_port),
        }
    }
}

/// Counters of a running server.
#[derive(Debug, Default)]
pub struct EchoStats {
    /// TCP connections accepted.
    pub connections: AtomicU64,
    /// HTTP requests answered.
    pub requests: AtomicU64,
    /// UDP datagrams answered.
    pub datagrams: AtomicU64,
}

/// A running echo server; stops its listeners when dropped.
#[derive(Debug)]
pub struct EchoServer {
    name: String,
    stop: Arc<AtomicBool>,
    stats: Arc<EchoStats>,
    fds: Vec<Arc<OwnedFd>>,
    threads: Vec<JoinHandle<()>>,
    tcp: Vec<SocketAddr>,
    udp: Vec<SocketAddr>,
}

impl EchoServer {
    /// Binds every address in the calling thread's network namespace and
    /// starts serving.
    pub fn start(config: &EchoConfig) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(EchoStats::default());
        let name: Arc<str> = config.name.clone().into();
        let mut server = Self {
            name: config.name.clone(),
            stop: stop.clone(),
            stats: stats.clone(),
            fds: Vec::new(),
            threads: Vec::new(),
            tcp: Vec::new(),
            udp: Vec::new(),
        };
        for addr in &config.tcp {
            let fd = Arc::new(bound_socket(*addr, SockType::Stream)?);
            listen(&*fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))
                .map_err(|e| LabError::io(format!("listen on {addr}"), e.into()))?;
            let listener = TcpListener::from(fd.try_clone().map_err(|e| LabError::io("dup", e))?);
            server.tcp.push(listener.local_addr().unwrap_or(*addr));
            server.fds.push(fd);
            let (name, stop, stats) = (name.clone(), stop.clone(), stats.clone());
            let t = std::thread::Builder::new()
                .name(format!("echo-tcp-{addr}"))
                .spawn(move || accept_loop(&listener, &name, &stop, &stats))
                .map_err(|e| LabError::io("spawn", e))?;
            server.threads.push(t);
        }
        for addr in &config.udp {
            let fd = Arc::new(bound_socket(*addr, SockType::Datagram)?);
            match addr {
                SocketAddr::V4(_) => setsockopt(&*fd, sockopt::Ipv4PacketInfo, &true),
                SocketAddr::V6(_) => setsockopt(&*fd, sockopt::Ipv6RecvPacketInfo, &true),
            }
            .map_err(|e| LabError::io(format!("pktinfo on {addr}"), e.into()))?;
            let sock = UdpSocket::from(fd.try_clone().map_err(|e| LabError::io("dup", e))?);
            server.udp.push(sock.local_addr().unwrap_or(*addr));
            server.fds.push(fd);
            let (name, stop, stats) = (name.clone(), stop.clone(), stats.clone());
            let t = std::thread::Builder::new()
                .name(format!("echo-udp-{addr}"))
                .spawn(move || udp_loop(&sock, &name, &stop, &stats))
                .map_err(|e| LabError::io("spawn", e))?;
            server.threads.push(t);
        }
        Ok(server)
    }

    /// [`EchoServer::start`] inside `ns`.
    pub fn start_in(ns: &Netns, config: &EchoConfig) -> Result<Self> {
        ns.run(|| Self::start(config))?
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bound TCP addresses (with the real port when 0 was asked).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// Bound UDP addresses.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// Live counters.
    pub fn stats(&self) -> &EchoStats {
        &self.stats
    }

    /// Blocks until the listeners end (never, unless stopped elsewhere).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // shutdown(2) wakes a thread blocked in accept(2) or recvmsg(2) on
        // the same socket; on an unconnected UDP socket it reports ENOTCONN
        // but still wakes the reader.
        for fd in &self.fds {
            let _ = shutdown(fd.as_raw_fd(), Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn bound_socket(addr: SocketAddr, ty: SockType) -> Result<OwnedFd> {
    let ctx = |what: &str| format!("{what} {addr}");
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, ty, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| LabError::io(ctx("socket for"), e.into()))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)
        .map_err(|e| LabError::io(ctx("SO_REUSEADDR on"), e.into()))?;
    match addr {
        SocketAddr::V4(a) => bind(fd.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &true)
                .map_err(|e| LabError::io(ctx("IPV6_V6ONLY on"), e.into()))?;
            bind(fd.as_raw_fd(), &SockaddrIn6::from(a))
        }
    }
    .map_err(|e| LabError::io(ctx("bind"), e.into()))?;
    Ok(fd)
}

fn accept_loop(listener: &TcpListener, name: &Arc<str>, stop: &AtomicBool, stats: &Arc<EchoStats>) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
            Err(_) => continue,
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let (name, stats) = (name.clone(), stats.clone());
        let spawned = std::thread::Builder::new()
            .name("echo-conn".into())
            .spawn(move || {
                let _ = serve_connection(&name, stream, &stats);
            });
        if spawned.is_err() {
            // Out of threads: the stream was moved into the failed closure
            // and is closed with it; the client sees a reset.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve_connection(name: &str, stream: TcpStream, stats: &EchoStats) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let mut extra = format!("X-Real-Server: {name}\r\n");
    if let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) {
        extra.push_str(&format!(
            "X-Client-Addr: {peer}\r\nX-Local-Addr: {local}\r\n"
        ));
    }
    let reader = BufReader::new(&stream);
    let mut writer = &stream;
    serve_http(name, &extra, reader, &mut writer, stats)
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    keep_alive: bool,
}

/// Reads one request head; `Ok(None)` at a clean end of stream.
fn read_request(
    reader: &mut impl BufRead,
) -> io::Result<Option<std::result::Result<Request, String>>> {
    let mut line = Vec::new();
    // Tolerate empty lines between requests (RFC 9112 2.2).
    loop {
        line.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if !trim_eol(&line).is_empty() {
            break;
        }
    }
    if !line.ends_with(b"\n") {
        return Ok(Some(Err("request line too long".into())));
    }
    let text = String::from_utf8_lossy(trim_eol(&line)).into_owned();
    let mut words = text.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Ok(Some(Err(format!("bad request line {text:?}"))));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Ok(Some(Err(format!("bad version {version:?}")))),
    };
    let mut connection = String::new();
    let mut content_length = 0u64;
    for i in 0.. {
        if i > MAX_HEADERS {
            return Ok(Some(Err("too many headers".into())));
        }
        line.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)?;
        if n == 0 || !line.ends_with(b"\n") {
            return Ok(Some(Err("truncated header".into())));
        }
        let h = trim_eol(&line);
        if h.is_empty() {
            break;
        }
        let h = String::from_utf8_lossy(h);
        let Some((key, value)) = h.split_once(':') else {
            return Ok(Some(Err(format!("bad header {h:?}"))));
        };
        let value = value.trim();
        if key.eq_ignore_ascii_case("connection") {
            connection = value.to_ascii_lowercase();
        } else if key.eq_ignore_ascii_case("content-length") {
            let Ok(n) = value.parse() else {
                return Ok(Some(Err(format!("bad content-length {value:?}"))));
            };
            content_length = n;
        } else if key.eq_ignore_ascii_case("transfer-encoding") {
            return Ok(Some(Err("request bodies in chunks are not served".into())));
        }
    }
    // A GET with a body: read and forget it.
    io::copy(&mut reader.by_ref().take(content_length), &mut io::sink())?;
    let has = |token: &str| connection.split(',').any(|t| t.trim() == token);
    let keep_alive = if http11 {
        !has("close")
    } else {
        has("keep-alive")
    };
    Ok(Some(Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        keep_alive,
    })))
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Serves requests from `reader` until the client closes or asks to;
/// `extra` is a block of header lines added to every answer.
fn serve_http(
    name: &str,
    extra: &str,
    mut reader: impl BufRead,
    writer: &mut impl Write,
    stats: &EchoStats,
) -> io::Result<()> {
    loop {
        let req = match read_request(&mut reader)? {
            None => return Ok(()),
            Some(Ok(r)) => r,
            Some(Err(why)) => {
                respond(
                    writer,
                    extra,
                    "400 Bad Request",
                    false,
                    Body::Text(format!("{why}\n")),
                )?;
                return Ok(());
            }
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let head_only = req.method == "HEAD";
        let (status, body) = if req.method != "GET" && !head_only {
            (
                "405 Method Not Allowed",
                Body::Text("only GET and HEAD\n".into()),
            )
        } else if req.path == "/" {
            ("200 OK", Body::Text(format!("{name}\n")))
        } else if let Some(n) = req
            .path
            .strip_prefix("/bytes/")
            .and_then(|n| n.parse().ok())
        {
            ("200 OK", Body::Pattern(n))
        } else {
            ("404 Not Found", Body::Text("not found\n".into()))
        };
        let body = if head_only { body.head_only() } else { body };
        respond(writer, extra, status, req.keep_alive, body)?;
        if !req.keep_alive {
            return Ok(());
        }
    }
}

enum Body {
    Text(String),
    Pattern(u64),
    /// Length only (HEAD).
    None(u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Text(t) => t.len() as u64,
            Body::Pattern(n) | Body::None(n) => *n,
        }
    }

    fn head_only(self) -> Self {
        Body::None(self.len())
    }
}

fn respond(
    w: &mut impl Write,
    extra: &str,
    status: &str,
    keep_alive: bool,
    body: Body,
) -> io::Result<()> {
    let kind = match body {
        Body::Pattern(_) => "application/octet-stream",
        _ => "text/plain",
    };
    let conn = if keep_alive { "keep-alive" } else { "close" };
    let head = format!(
        "HTTP/1.1 {status}\r\nServer: xvs-echo\r\n{extra}\
         Content-Type: {kind}\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n",
        body.len()
    );
    match body {
        Body::Text(t) => {
            let mut msg = head.into_bytes();
            msg.extend_from_slice(t.as_bytes());
            w.write_all(&msg)?;
        }
        Body::None(_) => w.write_all(head.as_bytes())?,
        Body::Pattern(n) => {
            w.write_all(head.as_bytes())?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut sent = 0u64;
            while sent < n {
                let k = (n - sent).min(buf.len() as u64) as usize;
                pattern::fill(sent, &mut buf[..k]);
                w.write_all(&buf[..k])?;
                sent += k as u64;
            }
        }
    }
    w.flush()
}

fn udp_loop(sock: &UdpSocket, name: &str, stop: &AtomicBool, stats: &EchoStats) {
    let fd = sock.as_raw_fd();
    let mut buf = vec![0u8; 65536];
    let prefix = format!("{name}\n");
    loop {
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let received = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty());
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(msg) = received else { continue };
        let (Some(peer), len) = (msg.address, msg.bytes) else {
            continue;
        };
        let mut dst4 = None;
        let mut dst6 = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv4PacketInfo(pi) => dst4 = Some(pi),
                    ControlMessageOwned::Ipv6PacketInfo(pi) => dst6 = Some(pi),
                    _ => {}
                }
            }
        }
        let peer_addr = if let Some(a) = peer.as_sockaddr_in() {
            SocketAddr::V4(SocketAddrV4::from(*a))
        } else if let Some(a) = peer.as_sockaddr_in6() {
            SocketAddr::V6(SocketAddrV6::from(*a))
        } else {
            continue;
        };
        let reply = [IoSlice::new(prefix.as_bytes()), IoSlice::new(&buf[..len])];
        // Answer from the address the datagram was sent to: the kernel
        // would otherwise pick the outgoing interface's address, not the
        // VIP held on `lo`.
        let sent = match peer_addr {
            SocketAddr::V4(a) => {
                let to = SockaddrIn::from(a);
                match dst4 {
                    Some(pi) => {
                        let src = libc::in_pktinfo {
                            ipi_ifindex: 0,
                            ipi_spec_dst: pi.ipi_addr,
                            ipi_addr: pi.ipi_addr,
                        };
                        let c = [ControlMessage::Ipv4PacketInfo(&src)];
                        sendmsg(fd, &reply, &c, MsgFlags::empty(), Some(&to))
                    }
                    None => sendmsg(fd, &reply, &[], MsgFlags::empty(), Some(&to)),
                }
            }
            SocketAddr::V6(a) => {
                let to = SockaddrIn6::from(a);
                match dst6 {
                    Some(pi) => {
                        let c = [ControlMessage::Ipv6PacketInfo(&pi)];
                        sendmsg(fd, &reply, &c, MsgFlags::empty(), Some(&to))
                    }
                    None => sendmsg(fd, &reply, &[], MsgFlags::empty(), Some(&to)),
                }
            }
        };
        if sent.is_ok() {
            stats.datagrams.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_raw(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        serve_http(
            "rs1",
            "X-Real-Server: rs1\r\n",
            input,
            &mut out,
            &EchoStats::default(),
        )
        .unwrap();
        out
    }

    fn serve(input: &[u8]) -> String {
        String::from_utf8_lossy(&serve_raw(input)).into_owned()
    }

    #[test]
    fn get_root_http10_closes() {
        let out = serve(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Connection: close\r\n"));
        assert!(out.contains("X-Real-Server: rs1\r\n"));
        assert!(out.ends_with("\r\n\r\nrs1\n"));
        assert_eq!(out.matches("HTTP/1.1 200").count(), 1);
    }

    #[test]
    fn http11_keeps_alive_until_close() {
        let out = serve(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /bytes/5 HTTP/1.1\r\nHost: x\r\n\r\n\
              GET / HTTP/1.1\r\nConnection: close\r\n\r\n\
              GET / HTTP/1.1\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert_eq!(out.matches("Connection: keep-alive").count(), 2);
        let mut five = [0u8; 5];
        pattern::fill(0, &mut five);
        let raw = serve_raw(b"GET /bytes/5 HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(raw.ends_with(&five));
    }

    #[test]
    fn http10_keep_alive_header() {
        let out = serve(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET / HTTP/1.0\r\n\r\n");
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    }

    #[test]
    fn bytes_body_is_the_pattern() {
        let mut out = Vec::new();
        serve_http(
            "rs1",
            "",
            &b"GET /bytes/200000 HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
            &mut out,
            &EchoStats::default(),
        )
        .unwrap();
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&out[..split]);
        assert!(head.contains("Content-Length: 200000\r\n"), "{head}");
        assert_eq!(out.len() - split, 200_000);
        assert_eq!(pattern::first_mismatch(0, &out[split..]), None);
    }

    #[test]
    fn errors() {
        assert!(
            serve(b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 404")
        );
        assert!(serve(b"POST / HTTP/1.1\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(serve(b"hello\r\n\r\n").starts_with("HTTP/1.1 400"));
        assert!(serve(b"GET / HTTP/2\r\n\r\n").starts_with("HTTP/1.1 400"));
        let head = serve(b"HEAD /bytes/1000 HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(head.contains("Content-Length: 1000\r\n") && head.ends_with("\r\n\r\n"));
        // A truncated head is a 400, an empty connection nothing at all.
        assert!(serve(b"GET / HTTP/1.1\r\nHost: x").starts_with("HTTP/1.1 400"));
        assert_eq!(serve(b""), "");
    }
}
