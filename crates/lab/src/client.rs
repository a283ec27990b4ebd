//! Client side: HTTP GET, UDP request/answer and hand-made IP packets, so
//! tests need neither curl nor scapy.
//!
//! The free functions work in the calling thread's namespace; the methods
//! added to [`Netns`] run them on a thread inside that namespace
//! ([`Netns::run`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, SockaddrIn6, sendto,
    socket,
};

use crate::error::{LabError, Result};
use crate::netns::Netns;

/// Timeout of the [`Netns`] helpers that take none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code (200, 404...).
    pub status: u16,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`, else up to the end of the stream).
    pub body: Vec<u8>,
    /// The client's own address of the connection.
    pub local: SocketAddr,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `X-Real-Server` of an `xvs-echo` answer.
    pub fn real_server(&self) -> Option<&str> {
        self.header("x-real-server")
    }
}

/// `GET path` over HTTP/1.1 (`Connection: close`) to `addr`, in the
/// calling thread's namespace. `timeout` bounds the connect and every read
/// and write.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<HttpResponse> {
    let mut conn = HttpConn::connect(addr, timeout)?;
    conn.send(path, false)?;
    conn.read_response(timeout, true)
}

/// An HTTP/1.1 keep-alive connection: requests one after the other on the
/// same TCP connection, as a long-lived client flow through a director.
///
/// Sending and reading are separate, so that a test can send on many
/// connections at once and then collect the answers against one deadline.
#[derive(Debug)]
pub struct HttpConn {
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
    local: SocketAddr,
}

impl HttpConn {
    /// Connects to `addr` from the calling thread's namespace (the socket
    /// stays in that namespace whichever thread uses it later).
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<HttpConn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| LabError::io(format!("HTTP connect to {addr}"), e))?;
        let local = stream
            .local_addr()
            .map_err(|e| LabError::io(format!("local address for {addr}"), e))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| LabError::io(format!("timeouts for {addr}"), e))?;
        Ok(HttpConn {
            reader: BufReader::new(stream),
            addr,
            local,
        })
    }

    /// The client's end of the connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server's end (the VIP).
    pub fn peer_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `GET path`, asking to keep the connection open.
    pub fn send_get(&mut self, path: &str) -> Result<()> {
        self.send(path, true)
    }

    fn send(&mut self, path: &str, keep_alive: bool) -> Result<()> {
        let host = match self.addr {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let conn = if keep_alive { "keep-alive" } else { "close" };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: xvs-lab\r\nConnection: {conn}\r\n\r\n"
        );
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .map_err(|e| LabError::io(format!("HTTP send to {}{path}", self.addr), e))
    }

    /// Reads the answer to the request sent last, waiting at most
    /// `timeout` for each read.
    pub fn read(&mut self, timeout: Duration) -> Result<HttpResponse> {
        self.read_response(timeout, false)
    }

    /// [`HttpConn::send_get`] then [`HttpConn::read`].
    pub fn get(&mut self, path: &str, timeout: Duration) -> Result<HttpResponse> {
        self.send_get(path)?;
        self.read(timeout)
    }

    /// Reads one answer; without a `Content-Length` the body runs to the
    /// end of the stream when `to_eof` allows it.
    fn read_response(&mut self, timeout: Duration, to_eof: bool) -> Result<HttpResponse> {
        let addr = self.addr;
        let ctx = |what: &str| format!("HTTP {what} {addr}");
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(|e| LabError::io(ctx("timeouts for"), e))?;
        let reader = &mut self.reader;
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| LabError::io(ctx("read status from"), e))?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .filter(|_| line.starts_with("HTTP/1."))
            .ok_or_else(|| LabError::Protocol(format!("bad status line {line:?} from {addr}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| LabError::io(ctx("read header from"), e))?;
            let h = line.trim_end_matches(['\r', '\n']);
            if n == 0 {
                return Err(LabError::Protocol(format!("truncated head from {addr}")));
            }
            if h.is_empty() {
                break;
            }
            let (k, v) = h
                .split_once(':')
                .ok_or_else(|| LabError::Protocol(format!("bad header {h:?} from {addr}")))?;
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let length = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<u64>())
            .transpose()
            .map_err(|_| LabError::Protocol(format!("bad Content-Length from {addr}")))?;
        let mut body = Vec::new();
        match length {
            Some(n) => {
                body.reserve(n.min(1 << 30) as usize);
                reader
                    .by_ref()
                    .take(n)
                    .read_to_end(&mut body)
                    .map_err(|e| LabError::io(ctx("read body from"), e))?;
                if body.len() as u64 != n {
                    return Err(LabError::Protocol(format!(
                        "body of {} bytes from {addr}, {n} announced",
                        body.len()
                    )));
                }
            }
            None if to_eof => {
                reader
                    .read_to_end(&mut body)
                    .map_err(|e| LabError::io(ctx("read body from"), e))?;
            }
            None => {
                return Err(LabError::Protocol(format!(
                    "keep-alive answer without Content-Length from {addr}"
                )));
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
            local: self.local,
        })
    }
}

/// Sends `payload` in one UDP datagram to `to` from an ephemeral port and
/// waits for one answer; returns it with its source address.
pub fn udp_request(
    to: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<(Vec<u8>, SocketAddr)> {
    let any: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().unwrap_or(to)
    } else {
        "[::]:0".parse().unwrap_or(to)
    };
    let sock = UdpSocket::bind(any).map_err(|e| LabError::io("bind UDP", e))?;
    udp_exchange(&sock, to, payload, timeout)
}

/// Sends `payload` from `sock` to `to` and waits for the first datagram
/// back (from anywhere).
pub fn udp_exchange(
    sock: &UdpSocket,
    to: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<(Vec<u8>, SocketAddr)> {
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| LabError::io("UDP timeout", e))?;
    sock.send_to(payload, to)
        .map_err(|e| LabError::io(format!("UDP send to {to}"), e))?;
    let mut buf = vec![0u8; 65536];
    let (n, from) = sock
        .recv_from(&mut buf)
        .map_err(|e| LabError::io(format!("UDP answer from {to}"), e))?;
    buf.truncate(n);
    Ok((buf, from))
}

/// Prepends an outer IP header to `inner` (an IPv4 or IPv6 packet), the way
/// an LVS director in TUN mode encapsulates: outer IPv4 (protocol 4 or 41)
/// or outer IPv6 (next header 4 or 41) by the family of `outer_src` /
/// `outer_dst`. TTL / hop limit 64, checksum computed.
pub fn ip_in_ip(outer_src: IpAddr, outer_dst: IpAddr, inner: &[u8]) -> Result<Vec<u8>> {
    let proto = match inner.first().map(|b| b >> 4) {
        Some(4) => 4u8,
        Some(6) => 41u8,
        _ => {
            return Err(LabError::Invalid(
                "inner packet is neither IPv4 nor IPv6".into(),
            ));
        }
    };
    match (outer_src, outer_dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let total = u16::try_from(20 + inner.len())
                .map_err(|_| LabError::Invalid("inner packet too long".into()))?;
            let mut p = Vec::with_capacity(total as usize);
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 64, proto, 0, 0]);
            p.extend_from_slice(&src.octets());
            p.extend_from_slice(&dst.octets());
            let sum = internet_checksum(&p);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
            p.extend_from_slice(inner);
            Ok(p)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let len = u16::try_from(inner.len())
                .map_err(|_| LabError::Invalid("inner packet too long".into()))?;
            let mut p = Vec::with_capacity(40 + inner.len());
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(&[proto, 64]);
            p.extend_from_slice(&src.octets());
            p.extend_from_slice(&dst.octets());
            p.extend_from_slice(inner);
            Ok(p)
        }
        _ => Err(LabError::Invalid("outer addresses of two families".into())),
    }
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends a complete IPv4 or IPv6 packet (header included) from a raw
/// `IPPROTO_RAW` socket in the calling thread's namespace; the kernel
/// routes it by its destination address.
pub fn send_ip_packet(packet: &[u8]) -> Result<()> {
    let err = |e: nix::Error| LabError::io("send raw IP packet", e.into());
    match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            let dst = std::net::Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
            let fd = socket(
                AddressFamily::Inet,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::Raw,
            )
            .map_err(err)?;
            let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
            sendto(fd.as_raw_fd(), packet, &to, MsgFlags::empty()).map_err(err)?;
        }
        Some(6) if packet.len() >= 40 => {
            let mut d = [0u8; 16];
            d.copy_from_slice(&packet[24..40]);
            let fd = socket(
                AddressFamily::Inet6,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::Raw,
            )
            .map_err(err)?;
            let to = SockaddrIn6::from(SocketAddrV6::new(d.into(), 0, 0, 0));
            sendto(fd.as_raw_fd(), packet, &to, MsgFlags::empty()).map_err(err)?;
        }
        _ => return Err(LabError::Invalid("not an IPv4 or IPv6 packet".into())),
    }
    Ok(())
}

impl Netns {
    /// [`http_get`] from inside this namespace with [`DEFAULT_TIMEOUT`].
    pub fn http_get(&self, addr: SocketAddr, path: &str) -> Result<HttpResponse> {
        self.http_get_timeout(addr, path, DEFAULT_TIMEOUT)
    }

    /// [`http_get`] from inside this namespace.
    pub fn http_get_timeout(
        &self,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<HttpResponse> {
        self.run(|| http_get(addr, path, timeout))?
    }

    /// GETs `path` until it answers or `within` has passed (a service
    /// coming up: a director resolving its real servers, a server
    /// binding); each try waits at most 500 ms. Returns the first answer,
    /// or the last error.
    pub fn http_get_retry(
        &self,
        addr: SocketAddr,
        path: &str,
        within: Duration,
    ) -> Result<HttpResponse> {
        let deadline = std::time::Instant::now() + within;
        loop {
            match self.http_get_timeout(addr, path, Duration::from_millis(500)) {
                Ok(r) => return Ok(r),
                Err(e) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// [`HttpConn::connect`] from inside this namespace.
    pub fn http_connect(&self, addr: SocketAddr, timeout: Duration) -> Result<HttpConn> {
        self.run(|| HttpConn::connect(addr, timeout))?
    }

    /// [`udp_request`] from inside this namespace.
    pub fn udp_request(
        &self,
        to: SocketAddr,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(Vec<u8>, SocketAddr)> {
        self.run(|| udp_request(to, payload, timeout))?
    }

    /// [`send_ip_packet`] from inside this namespace.
    pub fn send_ip_packet(&self, packet: &[u8]) -> Result<()> {
        self.run(|| send_ip_packet(packet))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_header() {
        // RFC 1071 example words, and a header whose checksum field makes
        // the sum zero.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&hdr), 0);
        assert_eq!(internet_checksum(&[0x00, 0x01, 0xf2]), !0xf201);
    }

    #[test]
    fn outer_headers() {
        let inner4 = [0x45u8; 28];
        let p = ip_in_ip(
            "192.0.2.1".parse().unwrap(),
            "192.0.2.20".parse().unwrap(),
            &inner4,
        )
        .unwrap();
        assert_eq!(p.len(), 48);
        assert_eq!(&p[2..4], &48u16.to_be_bytes());
        assert_eq!(p[9], 4);
        assert_eq!(internet_checksum(&p[..20]), 0);
        assert_eq!(&p[20..], &inner4);

        let mut inner6 = [0u8; 48];
        inner6[0] = 0x60;
        let p = ip_in_ip(
            "192.0.2.1".parse().unwrap(),
            "192.0.2.20".parse().unwrap(),
            &inner6,
        )
        .unwrap();
        assert_eq!(p[9], 41);

        let p = ip_in_ip(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::20".parse().unwrap(),
            &inner4,
        )
        .unwrap();
        assert_eq!(p.len(), 68);
        assert_eq!(p[0] >> 4, 6);
        assert_eq!(&p[4..6], &28u16.to_be_bytes());
        assert_eq!(p[6], 4);

        assert!(
            ip_in_ip(
                "192.0.2.1".parse().unwrap(),
                "2001:db8::20".parse().unwrap(),
                &inner4
            )
            .is_err()
        );
        assert!(
            ip_in_ip(
                "192.0.2.1".parse().unwrap(),
                "192.0.2.2".parse().unwrap(),
                &[0x10]
            )
            .is_err()
        );
    }
}
