//! UDP sockets around the pure format: [`Sender`] (master) and [`Receiver`]
//! (backup), over multicast on a named interface or unicast peers.
//!
//! These are thin: the sender owns an [`Encoder`] and writes what it seals
//! to every destination; the receiver reads one datagram at a time into a
//! buffer allocated once and hands it to its [`Verifier`]. Blocking sockets
//! with a read timeout ([`DEFAULT_READ_TIMEOUT`]), so a control thread can
//! poll the receiver between other jobs; [`Receiver::set_nonblocking`] for
//! an event loop.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use crate::conn::SyncConn;
use crate::encoder::Encoder;
use crate::verifier::{RecvStats, Reject, Verifier};

/// IPVS's multicast group (`--mcast-group` default).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// IPVS's sync port (`--mcast-port` default).
pub const DEFAULT_PORT: u16 = 8848;
/// IPVS's multicast TTL (`--mcast-ttl` default): the local link only.
pub const DEFAULT_TTL: u8 = 1;
/// How long [`Receiver::recv`] waits for a datagram before returning
/// [`Recv::Idle`].
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`): a
/// master's burst after a failover or a flood of new connections is
/// hundreds of datagrams, more than the default 208 KiB holds.
pub const RECV_BUFFER: usize = 4 << 20;

/// A multicast channel: group, port, interface and TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Multicast {
    /// Group address, IPv4 or IPv6.
    pub group: IpAddr,
    /// UDP port.
    pub port: u16,
    /// Interface to send on and to join the group on (`--mcast-interface`).
    pub iface: String,
    /// TTL (IPv4) or hop limit (IPv6) of sent datagrams.
    pub ttl: u8,
}

impl Multicast {
    /// ipvsadm's defaults (224.0.0.81, port 8848, TTL 1) on `iface`.
    pub fn ipvs_default(iface: &str) -> Multicast {
        Multicast {
            group: IpAddr::V4(DEFAULT_GROUP),
            port: DEFAULT_PORT,
            iface: iface.to_owned(),
            ttl: DEFAULT_TTL,
        }
    }

    /// The destination to send to (IPv6 link-scope groups carry the
    /// interface as scope id).
    fn dest(&self, ifindex: u32) -> SocketAddr {
        match self.group {
            IpAddr::V4(g) => SocketAddr::new(IpAddr::V4(g), self.port),
            IpAddr::V6(g) => {
                let scope = if is_link_scope(&g) { ifindex } else { 0 };
                SocketAddr::V6(SocketAddrV6::new(g, self.port, 0, scope))
            }
        }
    }
}

/// `ff02::/16`-style scopes (interface- and link-local) need a scope id.
fn is_link_scope(g: &Ipv6Addr) -> bool {
    matches!(g.segments()[0] & 0xff0f, 0xff01 | 0xff02)
}

/// The wall clock in ms since the Unix epoch (0 before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ifindex(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("sync interface {name}: {}", e.desc()),
        )
    })
}

fn check_multicast(g: &IpAddr) -> io::Result<()> {
    if g.is_multicast() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{g} is not a multicast address"),
        ))
    }
}

/// Sender-side counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Datagrams written (one per destination).
    pub datagrams: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Failed writes.
    pub errors: u64,
}

/// The master's socket: encodes entries and sends each sealed datagram to
/// the multicast group or to every unicast peer.
#[derive(Debug)]
pub struct Sender {
    sock: UdpSocket,
    dests: Vec<SocketAddr>,
    enc: Encoder,
    stats: SendStats,
}

impl Sender {
    /// Sends to a multicast group through `m.iface`, with TTL `m.ttl` and
    /// multicast loopback off (the director's own backup, if it runs one,
    /// must not hear its master).
    pub fn multicast(m: &Multicast, enc: Encoder) -> io::Result<Sender> {
        check_multicast(&m.group)?;
        let idx = ifindex(&m.iface)?;
        let sock = match m.group {
            IpAddr::V4(_) => {
                let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
                s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
                sys::set_multicast_if_v4_index(&s, idx)?;
                s.set_multicast_ttl_v4(u32::from(m.ttl))?;
                s.set_multicast_loop_v4(false)?;
                s
            }
            IpAddr::V6(_) => {
                let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
                s.set_only_v6(true)?;
                s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
                s.set_multicast_if_v6(idx)?;
                s.set_multicast_hops_v6(u32::from(m.ttl))?;
                s.set_multicast_loop_v6(false)?;
                s
            }
        };
        Ok(Sender {
            sock: sock.into(),
            dests: vec![m.dest(idx)],
            enc,
            stats: SendStats::default(),
        })
    }

    /// Sends to each of `peers` from a socket bound to `bind` (port 0 for
    /// any). The peers must be of `bind`'s address family.
    pub fn unicast(bind: SocketAddr, peers: Vec<SocketAddr>, enc: Encoder) -> io::Result<Sender> {
        if peers.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no sync peer given",
            ));
        }
        if let Some(p) = peers.iter().find(|p| p.is_ipv4() != bind.is_ipv4()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("sync peer {p} is not of the family of {bind}"),
            ));
        }
        let sock = UdpSocket::bind(bind)?;
        Ok(Sender {
            sock,
            dests: peers,
            enc,
            stats: SendStats::default(),
        })
    }

    /// Adds an entry; sends the datagram it completes, if any.
    pub fn push(&mut self, c: &SyncConn) -> io::Result<()> {
        if let Some(d) = self.enc.push(c, unix_ms()) {
            send_all(&self.sock, &self.dests, d, &mut self.stats)?;
        }
        Ok(())
    }

    /// Seals and sends the pending entries, if any.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(d) = self.enc.finish(unix_ms()) {
            send_all(&self.sock, &self.dests, d, &mut self.stats)?;
        }
        Ok(())
    }

    /// Sends an already sealed datagram to every destination.
    pub fn send_datagram(&mut self, datagram: &[u8]) -> io::Result<()> {
        send_all(&self.sock, &self.dests, datagram, &mut self.stats)
    }

    /// The encoder (sender id, sequence, its counters).
    pub fn encoder(&self) -> &Encoder {
        &self.enc
    }

    /// Send counters.
    pub fn stats(&self) -> &SendStats {
        &self.stats
    }

    /// Where datagrams go.
    pub fn destinations(&self) -> &[SocketAddr] {
        &self.dests
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }
}

/// Writes `d` to every destination; one failing does not stop the others.
/// Returns the first error.
fn send_all(
    sock: &UdpSocket,
    dests: &[SocketAddr],
    d: &[u8],
    stats: &mut SendStats,
) -> io::Result<()> {
    let mut first_err = None;
    for dest in dests {
        match sock.send_to(d, dest) {
            Ok(_) => {
                stats.datagrams += 1;
                stats.bytes += d.len() as u64;
            }
            Err(e) => {
                stats.errors += 1;
                first_err.get_or_insert(io::Error::new(e.kind(), format!("sync to {dest}: {e}")));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// What one [`Receiver::recv`] call got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    /// A datagram passed every check; its entries were appended.
    Accepted {
        /// Who sent it.
        from: SocketAddr,
        /// How many entries were appended.
        entries: usize,
    },
    /// A datagram was dropped (and counted).
    Rejected {
        /// Who sent it (the source address is not authenticated).
        from: SocketAddr,
        /// Why.
        reason: Reject,
    },
    /// Nothing arrived before the read timeout (or the socket is
    /// non-blocking and empty, or the wait was interrupted).
    Idle,
}

/// The largest UDP payload (IPv6 without jumbograms).
const RECV_BUF_LEN: usize = 65_535;

/// The backup's socket: receives and verifies datagrams.
#[derive(Debug)]
pub struct Receiver {
    sock: UdpSocket,
    ver: Verifier,
    buf: Box<[u8]>,
}

impl Receiver {
    /// Joins `m.group` on `m.iface` and listens on `m.port`.
    ///
    /// IPv4: the socket is bound to the group address, so it gets that
    /// group's datagrams only; IPv6: bound to `[::]`. Either way
    /// `IP(V6)_MULTICAST_ALL` is off, so groups joined by other sockets on
    /// the host do not leak in. `SO_REUSEADDR` lets a restarted daemon bind
    /// at once.
    pub fn multicast(m: &Multicast, ver: Verifier) -> io::Result<Receiver> {
        check_multicast(&m.group)?;
        let idx = ifindex(&m.iface)?;
        let sock = match m.group {
            IpAddr::V4(g) => {
                let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
                s.set_reuse_address(true)?;
                s.set_multicast_all_v4(false)?;
                s.bind(&SocketAddr::from((g, m.port)).into())?;
                s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(idx))?;
                s
            }
            IpAddr::V6(g) => {
                let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
                s.set_only_v6(true)?;
                s.set_reuse_address(true)?;
                s.set_multicast_all_v6(false)?;
                s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, m.port)).into())?;
                s.join_multicast_v6(&g, idx)?;
                s
            }
        };
        Receiver::from_socket(sock, ver)
    }

    /// Listens for unicast datagrams on `bind`.
    pub fn unicast(bind: SocketAddr, ver: Verifier) -> io::Result<Receiver> {
        let domain = if bind.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if bind.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_reuse_address(true)?;
        s.bind(&bind.into())?;
        Receiver::from_socket(s, ver)
    }

    fn from_socket(s: Socket, ver: Verifier) -> io::Result<Receiver> {
        // Best effort: the kernel caps it, and a small buffer only means
        // more loss under bursts, which the protocol tolerates.
        let _ = s.set_recv_buffer_size(RECV_BUFFER);
        s.set_read_timeout(Some(DEFAULT_READ_TIMEOUT))?;
        Ok(Receiver {
            sock: s.into(),
            ver,
            buf: vec![0; RECV_BUF_LEN].into_boxed_slice(),
        })
    }

    /// Waits for one datagram (up to the read timeout), verifies it and
    /// appends its entries to `out`. Errors are the socket's only; dropped
    /// datagrams are [`Recv::Rejected`] and counted in [`Receiver::stats`].
    pub fn recv(&mut self, out: &mut Vec<SyncConn>) -> io::Result<Recv> {
        let (n, from) = match self.sock.recv_from(&mut self.buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(Recv::Idle);
            }
            Err(e) => return Err(e),
        };
        Ok(match self.ver.verify(&self.buf[..n], unix_ms()) {
            Ok(d) => {
                let entries = d.entries();
                let count = entries.len();
                out.extend(entries);
                Recv::Accepted {
                    from,
                    entries: count,
                }
            }
            Err(reason) => Recv::Rejected { from, reason },
        })
    }

    /// How long [`Receiver::recv`] waits (`None`: forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(t)
    }

    /// Non-blocking mode: [`Receiver::recv`] returns [`Recv::Idle`] at once
    /// when nothing is queued.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.sock.set_nonblocking(on)
    }

    /// Receive counters.
    pub fn stats(&self) -> &RecvStats {
        self.ver.stats()
    }

    /// The verifier (configuration, senders).
    pub fn verifier(&self) -> &Verifier {
        &self.ver
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }
}

/// The one socket option neither std nor socket2 offers.
#[allow(unsafe_code)]
mod sys {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd};

    /// Sets `IP_MULTICAST_IF` by interface index, passing a
    /// `struct ip_mreqn` (Linux). std has no setter and socket2 only sets it
    /// by interface address, which is ambiguous when an address sits on two
    /// interfaces and impossible on an interface without IPv4 address;
    /// IPVS's own sync socket chooses by index too.
    pub(super) fn set_multicast_if_v4_index(sock: &impl AsFd, ifindex: u32) -> io::Result<()> {
        let index = libc::c_int::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        let mreqn = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: index,
        };
        let fd = sock.as_fd();
        // SAFETY: `fd` is an open socket, borrowed for the duration of the
        // call; the pointer and length describe `mreqn`, an initialised
        // `ip_mreqn` that lives on this frame until the call returns; the
        // kernel copies it and keeps no reference.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_IF,
                (&raw const mreqn).cast::<libc::c_void>(),
                std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}
