//! AF_XDP sockets and the steering program on veth pairs between network
//! namespaces of their own (`xvs-t-<pid>-<n>-<role>`, removed on drop, panic
//! included).
//!
//! Topology (addresses only inside the namespaces):
//!
//! ```text
//!   client ns            director ns                real ns
//!   vc0 10.77.1.2 ---- vl0 10.77.1.1   vl1 10.77.2.1 ---- vr0 10.77.2.2
//! ```
//!
//! The VIP is the director's own address with a steered port (UDP 7000), so
//! the same address also shows that other ports, ping and ARP still reach the
//! director's kernel. The client and real-server veths have TX checksum
//! offload off: their kernel sockets would otherwise send partial checksums,
//! which a frame forwarded through AF_XDP carries on as bad ones.
//!
//! Needs root, `ip`, `ethtool` and `ping`: without them the tests print why and pass,
//! except under `CI=true`, where they fail.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use xvs_conntrack::{Addr, Proto};
use xvs_dataplane::wire::{self, Ipv4Packet, UdpPacket};
use xvs_dataplane::xdp::{self, AttachMode, AttachedMode, SteerKey, Steering};
use xvs_dataplane::xsk::{self, Frame, Socket, SocketConfig, Umem, UmemConfig};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
const REAL: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 2);
const VIP_PORT: u16 = 7000;
const REAL_PORT: u16 = 8000;
const WAIT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------- skipping

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why the tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    if !is_root() {
        return Some("AF_XDP/veth tests need root".into());
    }
    if !have("ip", "-V") {
        return Some("`ip` (iproute2) is not installed".into());
    }
    if !have("ethtool", "--version") {
        return Some("`ethtool` is not installed".into());
    }
    if !have("ping", "-V") {
        return Some("`ping` (iputils-ping) is not installed".into());
    }
    if File::open("/proc/thread-self/ns/net").is_err() {
        return Some("no /proc/thread-self/ns/net".into());
    }
    kernel_missing()
}

/// Whether the kernel lacks AF_XDP sockets or refuses the XDP program
/// (probed in a namespace of its own, on its loopback).
fn kernel_missing() -> Option<String> {
    let probe = Netns::new("probe");
    probe.enter(|| {
        let mut umem = Umem::new(&UmemConfig {
            frame_count: 64,
            ..UmemConfig::default()
        })
        .ok()?;
        let rings = SocketConfig {
            rx_size: 16,
            tx_size: 16,
            fill_size: 16,
            comp_size: 16,
            ..SocketConfig::default()
        };
        if let Err(e) = Socket::new(&mut umem, "lo", 0, &rings) {
            return Some(format!("kernel without usable AF_XDP sockets: {e}"));
        }
        if let Err(e) = Steering::load() {
            return Some(format!("kernel refuses the XDP program: {e}"));
        }
        None
    })
}

/// Returns early (skip) when the tests cannot run, or panics under CI=true.
macro_rules! require_lab {
    () => {
        if let Some(why) = missing() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot run under CI: {why}"
            );
            eprintln!("skipping: {why}");
            return;
        }
    };
}

// ---------------------------------------------------------------- namespaces

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace of this test, deleted on drop.
struct Netns {
    name: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Netns {
    fn new(role: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("xvs-t-{}-{n}-{role}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// `ip -n NAME ARGS...`
    fn ip(&self, args: &str) -> String {
        run(Command::new("ip")
            .args(["-n", &self.name])
            .args(args.split_whitespace()))
    }

    /// `ip netns exec NAME ARGS...`
    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("spawn")
    }

    fn mac(&self, dev: &str) -> [u8; 6] {
        let out = self.ip(&format!("-o link show dev {dev}"));
        let hex = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .expect("link/ether in `ip link` output");
        let mut mac = [0u8; 6];
        for (b, h) in mac.iter_mut().zip(hex.split(':')) {
            *b = u8::from_str_radix(h, 16).unwrap();
        }
        mac
    }

    /// Runs `f` with the calling thread inside this namespace, and brings the
    /// thread back (panic included). Sockets made in `f` stay in it.
    fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Back(File);
        impl Drop for Back {
            fn drop(&mut self) {
                xsk::enter_netns(&self.0).expect("back to the test's namespace");
            }
        }
        let back = Back(File::open("/proc/thread-self/ns/net").unwrap());
        let ns = File::open(format!("/var/run/netns/{}", self.name)).unwrap();
        xsk::enter_netns(&ns).unwrap();
        let r = f();
        drop(back);
        r
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Client, director and real-server namespaces, wired as in the module docs.
struct Lab {
    c: Netns,
    l: Netns,
    r: Netns,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            c: Netns::new("c"),
            l: Netns::new("l"),
            r: Netns::new("r"),
        };
        let (c, r) = (&lab.c.name, &lab.r.name);
        lab.l
            .ip(&format!("link add vl0 type veth peer name vc0 netns {c}"));
        lab.l
            .ip(&format!("link add vl1 type veth peer name vr0 netns {r}"));
        lab.l.ip("addr add 10.77.1.1/24 dev vl0");
        lab.l.ip("addr add 10.77.2.1/24 dev vl1");
        lab.l.ip("link set vl0 up");
        lab.l.ip("link set vl1 up");
        lab.c.ip("addr add 10.77.1.2/24 dev vc0");
        lab.c.ip("link set vc0 up");
        lab.r.ip("addr add 10.77.2.2/24 dev vr0");
        lab.r.ip("link set vr0 up");
        lab.r.ip("route add default via 10.77.2.1");
        for (ns, dev) in [(&lab.c, "vc0"), (&lab.r, "vr0")] {
            let out = ns.exec(&["ethtool", "-K", dev, "tx", "off"]);
            assert!(out.status.success(), "ethtool -K {dev} tx off");
        }
        lab
    }
}

// ---------------------------------------------------------------- helpers

fn small_umem() -> Umem {
    Umem::new(&UmemConfig {
        frame_size: 2048,
        frame_count: 512,
        headroom: 0,
    })
    .unwrap()
}

fn small_rings() -> SocketConfig {
    SocketConfig {
        rx_size: 128,
        tx_size: 128,
        fill_size: 128,
        comp_size: 128,
        ..SocketConfig::default()
    }
}

/// Waits for one frame on `sock` (refilling as it goes). The fill ring must
/// have been filled before the frame was sent: a frame that finds it empty
/// is dropped (`rx_fill_ring_empty_descs`).
fn recv_one(umem: &mut Umem, sock: &mut Socket) -> Option<Frame> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::with_capacity(16);
    loop {
        sock.refill(umem).unwrap();
        if sock.recv(&mut got) > 0 {
            let first = got.remove(0);
            for f in got.drain(..) {
                umem.release(f);
            }
            return Some(first);
        }
        if Instant::now() > deadline {
            eprintln!(
                "no frame: {:?}, {} free frames",
                sock.stats(),
                umem.free_frames()
            );
            return None;
        }
        sock.poll(50).unwrap();
    }
}

/// Waits until `sock` completed `n` transmissions.
fn complete(umem: &mut Umem, sock: &mut Socket, n: usize) {
    let deadline = Instant::now() + WAIT;
    let mut done = 0;
    while done < n {
        done += sock.complete(umem);
        assert!(Instant::now() < deadline, "TX completion missing");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn udp_payload(frame: &[u8]) -> (wire::PacketInfo, Vec<u8>) {
    let info = wire::parse(frame).expect("a frame the parser accepts");
    assert_eq!(info.proto, wire::ip_proto::UDP);
    let end = info.l3_off + info.ip_len;
    (info, frame[info.l4_off + 8..end].to_vec())
}

/// Rewrites the IPv4/UDP addresses and ports of a frame and refills both
/// checksums.
fn rewrite(frame: &mut [u8], macs: ([u8; 6], [u8; 6]), src: SocketAddrV4, dst: SocketAddrV4) {
    let info = wire::parse(frame).unwrap();
    frame[..6].copy_from_slice(&macs.1);
    frame[6..12].copy_from_slice(&macs.0);
    let l3 = info.l3_off;
    let ip_len = info.ip_len;
    let mut ip = Ipv4Packet::new_checked(&mut frame[l3..l3 + ip_len]).unwrap();
    ip.set_src_addr(src.ip().octets());
    ip.set_dst_addr(dst.ip().octets());
    ip.fill_checksum();
    let l4 = info.l4_off - l3;
    let mut udp = UdpPacket::new_checked(&mut ip.into_inner()[l4..]).unwrap();
    udp.set_src_port(src.port());
    udp.set_dst_port(dst.port());
    udp.fill_checksum(&Addr::v4(src.ip().octets()), &Addr::v4(dst.ip().octets()));
}

fn udp_socket(ns: &Netns, bind: SocketAddrV4) -> UdpSocket {
    let s = ns.enter(|| UdpSocket::bind(bind)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

fn recv_from(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).expect("datagram within the timeout");
    (buf[..n].to_vec(), from)
}

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

// ---------------------------------------------------------------- tests

/// The VIP port reaches the AF_XDP socket; another port of the same address,
/// ping and ARP reach the kernel; a reply built in the received frame reaches
/// the client's kernel socket; dropping everything detaches the program.
#[test]
fn udp_to_a_vip_reaches_the_socket_and_the_reply_gets_back() {
    require_lab!();
    let lab = Lab::new();
    let (mut steering, mut umem, mut sock) = lab.l.enter(|| {
        let mut steering = Steering::load().expect("load");
        let att = steering.attach("vl0", AttachMode::Auto).expect("attach");
        assert_eq!(att.mode, AttachedMode::Driver, "veth has native XDP");
        let mut umem = small_umem();
        let sock = Socket::new(&mut umem, "vl0", 0, &small_rings()).expect("socket");
        assert!(!sock.is_zerocopy(), "veth is copy mode only");
        steering.register_socket(att.ifindex, 0, &sock).unwrap();
        (steering, umem, sock)
    });
    sock.refill(&mut umem).unwrap();
    steering
        .insert_vip(
            SteerKey::new(Proto::Udp, Addr::v4(VIP.octets()), VIP_PORT),
            0,
        )
        .unwrap();
    assert!(lab.l.ip("-o link show dev vl0").contains("xdp"));

    // ARP and ICMP still reach the director's kernel.
    let ping = lab
        .c
        .exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.77.1.1"]);
    assert!(ping.status.success(), "ping the director: {ping:?}");
    let neigh = lab.c.ip("neigh show 10.77.1.1");
    assert!(neigh.contains("lladdr"), "neighbour resolved: {neigh}");

    // Another port of the VIP address reaches a kernel socket.
    let kernel = udp_socket(&lab.l, v4(VIP, VIP_PORT + 1));
    let client = udp_socket(&lab.c, v4(CLIENT, 0));
    client
        .send_to(b"for the kernel", v4(VIP, VIP_PORT + 1))
        .unwrap();
    assert_eq!(recv_from(&kernel).0, b"for the kernel");

    // The VIP port reaches the AF_XDP socket.
    client.connect(v4(VIP, VIP_PORT)).unwrap();
    client.send(b"hello vip").unwrap();
    let mut f = recv_one(&mut umem, &mut sock).expect("a frame on the AF_XDP socket");
    let (info, payload) = udp_payload(umem.data(&f));
    assert_eq!(payload, b"hello vip");
    assert_eq!((info.dst, info.dport), (Addr::v4(VIP.octets()), VIP_PORT));
    assert_eq!(info.src, Addr::v4(CLIENT.octets()));
    let cport = info.sport;
    assert!(umem.frame(&mut f).headroom() >= 256);

    // Nothing else was steered: the kernel-port datagram and ARP were not.
    let mut more = Vec::with_capacity(4);
    sock.recv(&mut more);
    assert!(more.is_empty());

    // Reply from the same frame: swap, upper-case the payload.
    {
        let mut view = umem.frame(&mut f);
        let data = view.data_mut();
        let macs = (
            [data[0], data[1], data[2], data[3], data[4], data[5]],
            [data[6], data[7], data[8], data[9], data[10], data[11]],
        );
        let end = info.l3_off + info.ip_len;
        data[info.l4_off + 8..end].make_ascii_uppercase();
        rewrite(data, macs, v4(VIP, VIP_PORT), v4(CLIENT, cport));
    }
    let mut tx = vec![f];
    assert_eq!(sock.send(&mut tx).unwrap(), 1);
    assert!(tx.is_empty());
    let (reply, from) = recv_from(&client);
    assert_eq!(reply, b"HELLO VIP");
    assert_eq!(from, SocketAddr::V4(v4(VIP, VIP_PORT)));
    complete(&mut umem, &mut sock, 1);

    let stats = steering.stats().unwrap();
    assert_eq!(stats.redirected, 1, "{stats:?}");
    assert!(stats.passed >= 3, "ARP, ICMP, the kernel port: {stats:?}");
    assert_eq!(stats.no_socket, 0);
    let xs = sock.stats().unwrap();
    assert_eq!(
        (xs.rx_dropped, xs.rx_invalid_descs, xs.tx_invalid_descs),
        (0, 0, 0)
    );

    drop(sock);
    drop(steering);
    assert!(
        !lab.l.ip("-o link show dev vl0").contains("xdp"),
        "program detached on drop"
    );
}

/// Two sockets sharing one UMEM on two interfaces (generic XDP mode): the
/// client's datagram to the VIP is DNATed to the real server and sent on the
/// other interface from the same frame; the real server's reply is steered
/// by the `reals` map, SNATed back and reaches the client.
#[test]
fn shared_umem_nat_round_trip_across_two_interfaces() {
    require_lab!();
    let lab = Lab::new();
    let (vl0, vl1) = (lab.l.mac("vl0"), lab.l.mac("vl1"));
    let (vc0, vr0) = (lab.c.mac("vc0"), lab.r.mac("vr0"));
    let (steering, mut umem, mut s0, mut s1) = lab.l.enter(|| {
        let mut steering = Steering::load().expect("load");
        let a0 = steering.attach("vl0", AttachMode::Skb).expect("attach vl0");
        let a1 = steering.attach("vl1", AttachMode::Skb).expect("attach vl1");
        assert_eq!((a0.mode, a1.mode), (AttachedMode::Skb, AttachedMode::Skb));
        assert_ne!(a0.slot, a1.slot);
        let mut umem = small_umem();
        let s0 = Socket::new(&mut umem, "vl0", 0, &small_rings()).expect("socket vl0");
        let s1 = Socket::new(&mut umem, "vl1", 0, &small_rings()).expect("shared socket vl1");
        steering.register_socket(a0.ifindex, 0, &s0).unwrap();
        steering.register_socket(a1.ifindex, 0, &s1).unwrap();
        steering
            .insert_vip(
                SteerKey::new(Proto::Udp, Addr::v4(VIP.octets()), VIP_PORT),
                0,
            )
            .unwrap();
        steering
            .insert_real(
                SteerKey::new(Proto::Udp, Addr::v4(REAL.octets()), REAL_PORT),
                0,
            )
            .unwrap();
        (steering, umem, s0, s1)
    });
    // Both sockets take frames from the one UMEM.
    s0.refill(&mut umem).unwrap();
    s1.refill(&mut umem).unwrap();
    assert_eq!(umem.free_frames(), 512 - 256);

    let server = udp_socket(&lab.r, v4(REAL, REAL_PORT));
    let client = udp_socket(&lab.c, v4(CLIENT, 0));
    client.connect(v4(VIP, VIP_PORT)).unwrap();
    let cport = client.local_addr().unwrap().port();
    client.send(b"nat me").unwrap();

    // Director: VIP -> real, out of the other interface, same frame.
    let mut f = recv_one(&mut umem, &mut s0).expect("client datagram on vl0");
    rewrite(
        umem.frame(&mut f).data_mut(),
        (vl1, vr0),
        v4(CLIENT, cport),
        v4(REAL, REAL_PORT),
    );
    let mut tx = vec![f];
    assert_eq!(s1.send(&mut tx).unwrap(), 1);

    let (got, from) = recv_from(&server);
    assert_eq!(got, b"nat me");
    assert_eq!(
        from,
        SocketAddr::V4(v4(CLIENT, cport)),
        "NAT keeps the client address"
    );
    complete(&mut umem, &mut s1, 1);

    // Real server replies to the client; steered as a NAT reply on vl1.
    server.send_to(b"nat reply", from).unwrap();
    let mut f = recv_one(&mut umem, &mut s1).expect("reply on vl1");
    let (info, payload) = udp_payload(umem.data(&f));
    assert_eq!(payload, b"nat reply");
    assert_eq!((info.src, info.sport), (Addr::v4(REAL.octets()), REAL_PORT));
    rewrite(
        umem.frame(&mut f).data_mut(),
        (vl0, vc0),
        v4(VIP, VIP_PORT),
        v4(CLIENT, cport),
    );
    let mut tx = vec![f];
    assert_eq!(s0.send(&mut tx).unwrap(), 1);
    let (got, from) = recv_from(&client);
    assert_eq!(got, b"nat reply");
    assert_eq!(from, SocketAddr::V4(v4(VIP, VIP_PORT)));
    complete(&mut umem, &mut s0, 1);

    let stats = steering.stats().unwrap();
    assert_eq!((stats.redirected, stats.no_socket), (2, 0), "{stats:?}");
}

/// `push_front` moves the packet start back into the headroom: the received
/// frame, untouched in memory, becomes the payload of a new UDP datagram
/// whose headers are written in front of it (UDP-in-UDP; IP-in-IP works the
/// same way but this kernel has no ipip to receive it).
#[test]
fn push_front_prepends_a_header_without_copying() {
    require_lab!();
    let lab = Lab::new();
    let (mut steering, mut umem, mut sock) = lab.l.enter(|| {
        let mut steering = Steering::load().expect("load");
        let att = steering.attach("vl0", AttachMode::Driver).expect("attach");
        let mut umem = small_umem();
        let sock = Socket::new(&mut umem, "vl0", 0, &small_rings()).expect("socket");
        steering.register_socket(att.ifindex, 0, &sock).unwrap();
        (steering, umem, sock)
    });
    sock.refill(&mut umem).unwrap();
    steering
        .insert_vip(
            SteerKey::new(Proto::Udp, Addr::v4(VIP.octets()), VIP_PORT),
            0,
        )
        .unwrap();
    let client = udp_socket(&lab.c, v4(CLIENT, 0));
    client.connect(v4(VIP, VIP_PORT)).unwrap();
    let cport = client.local_addr().unwrap().port();
    client.send(b"inner datagram").unwrap();

    let mut f = recv_one(&mut umem, &mut sock).expect("frame");
    let original = umem.data(&f).to_vec();
    let addr = f.addr();
    const ENCAP: usize = 14 + 20 + 8;
    {
        let mut view = umem.frame(&mut f);
        let room = view.headroom();
        assert!(room >= 256, "headroom {room}");
        let data = view.push_front(ENCAP).unwrap();
        // The original bytes did not move.
        assert_eq!(&data[ENCAP..], &original[..]);
        let (outer, _) = data.split_at_mut(ENCAP);
        outer[..6].copy_from_slice(&original[6..12]);
        outer[6..12].copy_from_slice(&original[..6]);
        outer[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let total = (20 + 8 + original.len()) as u16;
        let ip = &mut outer[14..34];
        ip.copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 77, 1, 1, 10, 77, 1, 2,
        ]);
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        assert_eq!(view.headroom(), room - ENCAP);
        let data = view.data_mut();
        let mut ip = Ipv4Packet::new_checked(&mut data[14..]).unwrap();
        ip.fill_checksum();
        let mut udp = UdpPacket::new_unchecked(ip.payload_mut());
        udp.set_src_port(VIP_PORT);
        udp.set_dst_port(cport);
        udp.set_len(total - 20);
        udp.fill_checksum(&Addr::v4(VIP.octets()), &Addr::v4(CLIENT.octets()));
    }
    assert_eq!(f.addr(), addr - ENCAP as u64);
    assert_eq!(f.len(), original.len() + ENCAP);
    let mut tx = vec![f];
    assert_eq!(sock.send(&mut tx).unwrap(), 1);

    let (got, from) = recv_from(&client);
    assert_eq!(from, SocketAddr::V4(v4(VIP, VIP_PORT)));
    assert_eq!(got, original, "the whole received frame, as the payload");
    complete(&mut umem, &mut sock, 1);
}

/// `detach_ifindex` removes a program attached through netlink (here by `ip
/// link set ... xdpgeneric obj`, the kind a tool can leave behind), and
/// refuses (EBUSY) to touch the bpf_link attachment of a live [`Steering`].
#[test]
fn detach_ifindex_removes_a_netlink_attachment() {
    require_lab!();
    let lab = Lab::new();
    struct Tmp(std::path::PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let obj = Tmp(std::env::temp_dir().join(format!("{}.o", lab.l.name)));
    std::fs::write(&obj.0, xdp::object_bytes()).unwrap();
    lab.l.ip(&format!(
        "link set dev vl0 xdpgeneric obj {} sec xdp",
        obj.0.display()
    ));
    assert!(lab.l.ip("-o link show dev vl0").contains("xdpgeneric"));
    lab.l.enter(|| {
        let ifindex = xsk::ifindex("vl0").unwrap();
        xdp::detach_ifindex(ifindex).expect("detach");
    });
    assert!(!lab.l.ip("-o link show dev vl0").contains("xdp"));

    lab.l.enter(|| {
        let mut steering = Steering::load().unwrap();
        let att = steering.attach("vl0", AttachMode::Driver).unwrap();
        let err = xdp::detach_ifindex(att.ifindex).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
    });
    assert!(
        !lab.l.ip("-o link show dev vl0").contains("xdp"),
        "gone with its Steering"
    );
}
