//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/`
//! and the dictionaries into `fuzz/dict/`: real frames built with
//! etherparse (checksums computed independently of the data plane),
//! packet sequences through the pipeline target's lab, sealed sync
//! datagrams, admin protocol lines, xvsadm command lines and restore files,
//! health check specs.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`
//!
//! The files are named after what they hold; rerunning rewrites them. The
//! fuzzer's own finds are not committed (they go to a scratch directory,
//! see scripts/fuzz.sh).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use etherparse::{
    IcmpEchoHeader, Icmpv4Type, Icmpv6Type, IpDscp, IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel,
    Ipv6Header, PacketBuilder, TcpHeader, VlanId, icmpv4,
};
use xvs_conntrack::{Addr, Fwd, Proto, TcpState, conn::flags};
use xvs_ctl::model::Model;
use xvs_ctl::proto::{Request, Response, encode_request, encode_response};
use xvs_ctl::{Command, parse_args, parse_restore};
use xvs_fuzz::director::*;
use xvs_fuzz::input::{self, CFG_SLOPPY_TCP, CFG_SYNC, ctl};
use xvs_sync::{Encoder, Key, SyncConn};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");
    let mut total = 0;
    let mut write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        std::fs::write(dir.join(name), data).expect("write a seed");
        total += data.len();
    };
    for (name, f) in frames() {
        write("wire_parse", name, &f);
    }
    for (name, data) in pipeline_seeds() {
        // The lab's checks hold for the seeds; show what they do.
        let verdicts = xvs_fuzz::director::run(&data);
        println!("pipeline/{name}: {verdicts:?}");
        write("pipeline", name, &data);
    }
    for (name, line) in admin_seeds() {
        write("admin_proto", name, line.as_bytes());
    }
    for (name, d) in sync_seeds() {
        write("sync_datagram", name, &d);
    }
    for (name, argv) in ARGVS {
        parse_args(argv).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        write("xvsadm_args", name, &xvs_fuzz::argv_input(argv));
    }
    for (name, text) in RESTORES {
        parse_restore(text).unwrap_or_else(|e| panic!("seed {name}: {e:?}"));
        write("restore_config", name, text.as_bytes());
    }
    for (name, text) in HEALTH {
        write("health_spec", name, text.as_bytes());
    }
    write_dicts(&root.join("dict"));
    println!("seed corpus: {total} bytes in {}", corpus.display());
}

// ------------------------------------------------------------------ frames

#[derive(Clone, Copy)]
enum L4 {
    Tcp(Flags),
    Udp,
}

#[derive(Clone, Copy)]
enum Flags {
    Syn,
    Ack,
    Fin,
    Rst,
}

/// A TCP or UDP packet.
#[derive(Clone, Copy)]
struct Pkt {
    smac: [u8; 6],
    dmac: [u8; 6],
    vlans: u8,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    df: bool,
    more_frags: bool,
    l4: L4,
    sport: u16,
    dport: u16,
    payload: usize,
}

/// A client's packet to the VIP of `dst`'s family.
fn client(dst: IpAddr, l4: L4, sport: u16, dport: u16) -> Pkt {
    let src = match dst {
        IpAddr::V4(_) => IpAddr::from(CLIENT4),
        IpAddr::V6(_) => IpAddr::from(CLIENT6),
    };
    Pkt {
        smac: GW_MAC,
        dmac: DIR_OUT_MAC,
        vlans: 0,
        src,
        dst,
        ttl: 64,
        df: true,
        more_frags: false,
        l4,
        sport,
        dport,
        payload: 10,
    }
}

/// Real server `n`'s reply to the client `to` port `cport`.
fn reply(n: u8, sport: u16, to: IpAddr, cport: u16, l4: L4) -> Pkt {
    let src = match to {
        IpAddr::V4(_) => IpAddr::from(rs4(n)),
        IpAddr::V6(_) => IpAddr::from(rs6(n)),
    };
    Pkt {
        smac: rs_mac(n),
        dmac: DIR_IN_MAC,
        ..client(to, l4, sport, cport)
    }
    .from(src)
}

impl Pkt {
    fn from(mut self, src: IpAddr) -> Pkt {
        self.src = src;
        self
    }
}

fn v4() -> IpAddr {
    IpAddr::from(VIP4)
}

fn vip6() -> IpAddr {
    IpAddr::from(VIP6)
}

fn ip_headers(src: IpAddr, dst: IpAddr, ttl: u8, df: bool, more: bool) -> IpHeaders {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(0, ttl, IpNumber::TCP, s.octets(), d.octets())
                .expect("a small IPv4 header");
            h.dont_fragment = df;
            h.more_fragments = more;
            h.identification = 0x1234;
            h.dscp = IpDscp::try_new(0x2e).expect("a DSCP");
            IpHeaders::Ipv4(h, Default::default())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: 0xb8,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: 0,
                next_header: IpNumber::TCP,
                hop_limit: ttl,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        ),
        _ => unreachable!("mixed families"),
    }
}

/// The frame of `p`, checksums by etherparse.
fn frame(p: &Pkt) -> Vec<u8> {
    let payload: Vec<u8> = (0..p.payload).map(|i| (i as u8) ^ 0x5a).collect();
    let ip = ip_headers(p.src, p.dst, p.ttl, p.df, p.more_frags);
    let mut out = Vec::new();
    macro_rules! finish {
        ($b:expr) => {{
            let b = $b.ip(ip);
            match p.l4 {
                L4::Tcp(f) => {
                    let mut h = TcpHeader::new(p.sport, p.dport, 1000, 65535);
                    match f {
                        Flags::Syn => h.syn = true,
                        Flags::Ack => h.ack = true,
                        Flags::Fin => (h.fin, h.ack) = (true, true),
                        Flags::Rst => h.rst = true,
                    }
                    if h.ack {
                        h.acknowledgment_number = 1;
                    }
                    b.tcp_header(h).write(&mut out, &payload)
                }
                L4::Udp => b.udp(p.sport, p.dport).write(&mut out, &payload),
            }
        }};
    }
    let eth = PacketBuilder::ethernet2(p.smac, p.dmac);
    let vid = |v| VlanId::try_new(v).expect("a VLAN id");
    match p.vlans {
        0 => finish!(eth),
        1 => finish!(eth.single_vlan(vid(100))),
        _ => finish!(eth.double_vlan(vid(100), vid(200))),
    }
    .expect("etherparse writes the frame");
    out
}

/// The IP packet of an untagged frame.
fn l3(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// An ICMPv4 error from `src` to `dst` quoting `quoted` (an IP packet).
fn icmp4(
    smac: [u8; 6],
    dmac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    ty: Icmpv4Type,
    quoted: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(smac, dmac)
        .ipv4(src, dst, 64)
        .icmpv4(ty)
        .write(&mut out, quoted)
        .expect("etherparse writes the frame");
    out
}

/// An ICMPv6 message from `src` to `dst` with `data`.
fn icmp6(
    smac: [u8; 6],
    dmac: [u8; 6],
    src: [u8; 16],
    dst: [u8; 16],
    ty: Icmpv6Type,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(smac, dmac)
        .ipv6(src, dst, 64)
        .icmpv6(ty)
        .write(&mut out, data)
        .expect("etherparse writes the frame");
    out
}

/// `f` (an untagged IPv6 frame) with an 8-byte hop-by-hop options header
/// in front of its transport header (the transport checksum does not
/// change: its pseudo-header has the upper-layer length).
fn with_hop_by_hop(f: &[u8]) -> Vec<u8> {
    let mut out = f[..54].to_vec();
    let next = out[20];
    out[20] = 0;
    let plen = u16::from_be_bytes([out[18], out[19]]) + 8;
    out[18..20].copy_from_slice(&plen.to_be_bytes());
    out.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]); // PadN
    out.extend_from_slice(&f[54..]);
    out
}

/// `f` (an untagged IPv4 frame) with 4 bytes of IPv4 options (NOP x3, EOL)
/// and its header checksum recomputed.
fn with_ipv4_options(f: &[u8]) -> Vec<u8> {
    let mut out = f[..34].to_vec();
    out.extend_from_slice(&[1, 1, 1, 0]);
    out.extend_from_slice(&f[34..]);
    out[14] = 0x46;
    let total = u16::from_be_bytes([out[16], out[17]]) + 4;
    out[16..18].copy_from_slice(&total.to_be_bytes());
    out[24..26].copy_from_slice(&[0, 0]);
    let sum = xvs_fuzz::reference::sum(&out[14..38]);
    out[24..26].copy_from_slice(&(!sum).to_be_bytes());
    out
}

/// `f` with Ethernet padding to the 60-byte minimum.
fn padded(mut f: Vec<u8>) -> Vec<u8> {
    f.resize(f.len().max(60), 0);
    f
}

/// Single frames for `wire_parse`.
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    use Flags::*;
    let syn4 = frame(&client(v4(), L4::Tcp(Syn), 40000, DR_PORT));
    let udp4 = frame(&client(v4(), L4::Udp, 40001, UDP_NAT_PORT));
    let tcp6 = frame(&client(vip6(), L4::Tcp(Syn), 40002, V6_NAT_PORT));
    let udp6 = frame(&client(vip6(), L4::Udp, 40003, V6_TUN_PORT));
    let first_frag = frame(&Pkt {
        more_frags: true,
        payload: 64,
        ..client(v4(), L4::Udp, 40004, UDP_NAT_PORT)
    });
    let mut later_frag = first_frag.clone();
    later_frag[20] |= 0x01; // fragment offset 256 * 8 bytes
    later_frag[24..26].copy_from_slice(&[0, 0]);
    let sum = xvs_fuzz::reference::sum(&later_frag[14..34]);
    later_frag[24..26].copy_from_slice(&(!sum).to_be_bytes());
    let port_unreach = icmp4(
        GW_MAC,
        DIR_OUT_MAC,
        CLIENT4,
        VIP4,
        Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port),
        &l3(&frame(
            &client(v4(), L4::Udp, UDP_NAT_PORT, 40001).from(v4()),
        ))[..28],
    );
    let echo = icmp4(
        GW_MAC,
        DIR_OUT_MAC,
        CLIENT4,
        VIP4,
        Icmpv4Type::EchoRequest(IcmpEchoHeader { id: 7, seq: 1 }),
        b"ping",
    );
    let too_big6 = icmp6(
        GW_MAC,
        DIR_OUT_MAC,
        CLIENT6,
        VIP6,
        Icmpv6Type::PacketTooBig { mtu: 1280 },
        l3(&udp6),
    );
    let echo6 = icmp6(
        GW_MAC,
        DIR_OUT_MAC,
        CLIENT6,
        VIP6,
        Icmpv6Type::EchoRequest(IcmpEchoHeader { id: 7, seq: 1 }),
        b"ping",
    );
    let mut ipip = Vec::new();
    PacketBuilder::ethernet2(DIR_IN_MAC, rs_mac(6))
        .ip(IpHeaders::Ipv4(
            Ipv4Header::new(0, 63, IpNumber::IPV4, [10, 0, 0, 1], rs4(6)).expect("a header"),
            Default::default(),
        ))
        .write(&mut ipip, IpNumber::IPV4, l3(&syn4))
        .expect("etherparse writes the frame");
    vec![
        ("tcp4_syn", padded(syn4.clone())),
        ("udp4", udp4),
        ("tcp4_options", with_ipv4_options(&syn4)),
        ("tcp6_syn", tcp6.clone()),
        ("tcp6_hop_by_hop", with_hop_by_hop(&tcp6)),
        ("udp6", udp6),
        (
            "tcp4_vlan",
            frame(&Pkt {
                vlans: 1,
                ..client(v4(), L4::Tcp(Ack), 40000, DR_PORT)
            }),
        ),
        (
            "tcp6_qinq",
            frame(&Pkt {
                vlans: 2,
                ..client(vip6(), L4::Tcp(Fin), 40002, V6_NAT_PORT)
            }),
        ),
        ("udp4_first_fragment", first_frag),
        ("udp4_later_fragment", later_frag),
        ("icmp4_port_unreachable", port_unreach),
        ("icmp4_echo", echo),
        ("icmp6_packet_too_big", too_big6),
        ("icmp6_echo", echo6),
        ("ipip", ipip),
    ]
}

// ---------------------------------------------------------------- pipeline

/// Packet sequences for `pipeline`, each through the lab of
/// `xvs_fuzz::director`.
fn pipeline_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use Flags::*;
    let c4 = IpAddr::from(CLIENT4);
    let c6 = IpAddr::from(CLIENT6);
    let out = |n| ctl(OUT, n, false);
    let inn = |n| ctl(IN, n, false);
    let seq = |cfg, recs: &[(u8, Vec<u8>)]| {
        let refs: Vec<(u8, &[u8])> = recs.iter().map(|(c, f)| (*c, &f[..])).collect();
        input::encode(cfg, &refs)
    };
    let tcp = |f| L4::Tcp(f);

    let dr = seq(
        0,
        &[
            (
                out(0),
                padded(frame(&client(v4(), tcp(Syn), 40000, DR_PORT))),
            ),
            (out(1), frame(&client(v4(), tcp(Ack), 40000, DR_PORT))),
            (out(1), frame(&client(v4(), tcp(Fin), 40000, DR_PORT))),
            (out(2), frame(&client(v4(), tcp(Syn), 40001, DR_PORT))),
            (
                ctl(OUT, 30, true),
                frame(&client(v4(), tcp(Ack), 40001, DR_PORT)),
            ),
        ],
    );
    // NAT: the handshake through real server 3, its reply, an ICMP error
    // from it about the NAT-ed packet, one from the client about the reply.
    let to_rs3 = {
        let mut p = client(v4(), tcp(Ack), 40010, 80);
        p.dst = IpAddr::from(rs4(3));
        l3(&frame(&p))[..28].to_vec()
    };
    let from_vip = l3(&frame(&client(c4, tcp(Ack), NAT_PORT, 40010).from(v4())))[..28].to_vec();
    let nat = seq(
        CFG_SYNC,
        &[
            (out(0), frame(&client(v4(), tcp(Syn), 40010, NAT_PORT))),
            (inn(1), frame(&reply(3, 80, c4, 40010, tcp(Ack)))),
            (out(1), frame(&client(v4(), tcp(Ack), 40010, NAT_PORT))),
            (
                inn(1),
                icmp4(
                    rs_mac(3),
                    DIR_IN_MAC,
                    rs4(3),
                    CLIENT4,
                    Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port),
                    &to_rs3,
                ),
            ),
            (
                out(1),
                icmp4(
                    GW_MAC,
                    DIR_OUT_MAC,
                    CLIENT4,
                    VIP4,
                    Icmpv4Type::TimeExceeded(icmpv4::TimeExceededCode::TtlExceededInTransit),
                    &from_vip,
                ),
            ),
            (out(1), frame(&client(v4(), tcp(Syn), 40011, NAT_PORT))),
            (out(1), frame(&client(v4(), tcp(Syn), 40012, NAT_PORT))),
            (inn(1), frame(&reply(4, NAT_PORT, c4, 40012, tcp(Rst)))),
        ],
    );
    let udp = seq(
        0,
        &[
            (out(0), frame(&client(v4(), L4::Udp, 40020, UDP_NAT_PORT))),
            (inn(1), frame(&reply(5, 5353, c4, 40020, L4::Udp))),
            (
                ctl(OUT, 40, true),
                frame(&client(v4(), L4::Udp, 40020, UDP_NAT_PORT)),
            ),
        ],
    );
    // TUN, persistent on port 0: two connections of one client, one of its
    // neighbour, to the same real server.
    let mut neighbour = client(v4(), tcp(Syn), 40032, 443);
    neighbour.src = IpAddr::from([198, 51, 100, 8]);
    let tun = seq(
        0,
        &[
            (out(0), frame(&client(v4(), tcp(Syn), 40030, 443))),
            (out(1), frame(&client(v4(), tcp(Syn), 40031, 22))),
            (out(1), frame(&neighbour)),
            (
                ctl(OUT, 20, true),
                frame(&client(v4(), tcp(Syn), 40033, 443)),
            ),
        ],
    );
    let from_vip6 = l3(&frame(
        &client(c6, tcp(Ack), V6_NAT_PORT, 40040).from(vip6()),
    ))[..48]
        .to_vec();
    let v6_nat = seq(
        0,
        &[
            (out(0), frame(&client(vip6(), tcp(Syn), 40040, V6_NAT_PORT))),
            (inn(1), frame(&reply(8, 8080, c6, 40040, tcp(Ack)))),
            (
                out(1),
                icmp6(
                    GW_MAC,
                    DIR_OUT_MAC,
                    CLIENT6,
                    VIP6,
                    Icmpv6Type::PacketTooBig { mtu: 1280 },
                    &from_vip6,
                ),
            ),
            (out(1), frame(&client(vip6(), tcp(Fin), 40040, V6_NAT_PORT))),
        ],
    );
    let v6_tun = seq(
        0,
        &[
            (out(0), frame(&client(vip6(), L4::Udp, 40050, V6_TUN_PORT))),
            (out(1), frame(&client(vip6(), L4::Udp, 40051, V6_TUN_PORT))),
            (
                out(1),
                frame(&Pkt {
                    payload: 1400,
                    ..client(vip6(), L4::Udp, 40052, V6_TUN_PORT)
                }),
            ),
            (out(1), frame(&client(vip6(), tcp(Syn), 40053, 22))),
        ],
    );
    let replies = seq(
        0,
        &[
            (out(0), frame(&client(v4(), tcp(Syn), 40060, NO_DEST_PORT))),
            (
                out(1),
                frame(&Pkt {
                    ttl: 1,
                    ..client(v4(), tcp(Syn), 40061, DR_PORT)
                }),
            ),
            (
                out(1),
                frame(&Pkt {
                    payload: 1400,
                    ..client(v4(), tcp(Syn), 40062, NAT_PORT)
                }),
            ),
            (
                out(1),
                frame(&Pkt {
                    payload: 1400,
                    df: false,
                    ..client(v4(), tcp(Syn), 40063, NAT_PORT)
                }),
            ),
            (
                out(1),
                frame(&Pkt {
                    ttl: 1,
                    ..client(vip6(), tcp(Syn), 40064, V6_NAT_PORT)
                }),
            ),
        ],
    );
    let fwmark = seq(
        0,
        &[
            (out(0), frame(&client(v4(), L4::Udp, 40070, 1500))),
            (out(1), frame(&client(v4(), L4::Udp, 40071, 1999))),
            (
                out(1),
                frame(&Pkt {
                    more_frags: true,
                    ..client(v4(), L4::Udp, 40072, 1500)
                }),
            ),
        ],
    );
    let full: Vec<(u8, Vec<u8>)> = (0..20)
        .map(|i| (out(0), frame(&client(v4(), tcp(Syn), 41000 + i, DR_PORT))))
        .collect();
    let full = seq(0, &full);
    let tagged = seq(
        0,
        &[
            (
                out(0),
                frame(&Pkt {
                    vlans: 1,
                    ..client(v4(), tcp(Syn), 40080, NAT_PORT)
                }),
            ),
            (
                out(1),
                frame(&Pkt {
                    vlans: 2,
                    ..client(v4(), tcp(Syn), 40081, 443)
                }),
            ),
        ],
    );
    let sloppy = seq(
        CFG_SLOPPY_TCP | CFG_SYNC,
        &[
            (out(0), frame(&client(v4(), tcp(Ack), 40090, DR_PORT))),
            (out(1), frame(&client(v4(), tcp(Rst), 40091, DR_PORT))),
            (out(1), frame(&client(vip6(), tcp(Ack), 40092, V6_NAT_PORT))),
        ],
    );
    vec![
        ("dr_handshake", dr),
        ("nat_tcp_icmp", nat),
        ("nat_udp", udp),
        ("tun_persistent", tun),
        ("v6_nat_icmp", v6_nat),
        ("v6_tun_udp", v6_tun),
        ("icmp_replies", replies),
        ("fwmark_udp", fwmark),
        ("table_full", full),
        ("vlan_tags", tagged),
        ("sloppy_sync", sloppy),
    ]
}

// ------------------------------------------------------------------- admin

fn cmd(args: &[&str]) -> Command {
    parse_args(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn admin_seeds() -> Vec<(&'static str, String)> {
    let batch = vec![
        cmd(&[
            "-A",
            "-t",
            "192.0.2.1:80",
            "-s",
            "wrr",
            "-p",
            "120",
            "-M",
            "255.255.255.0",
        ]),
        cmd(&[
            "-a",
            "-t",
            "192.0.2.1:80",
            "-r",
            "10.0.0.2",
            "-g",
            "-w",
            "3",
            "--check",
            "http:path=/healthz",
        ]),
        cmd(&[
            "-a",
            "-t",
            "192.0.2.1:80",
            "-r",
            "10.0.0.3:80",
            "-m",
            "-x",
            "100",
            "-y",
            "50",
        ]),
        cmd(&[
            "-A",
            "-f",
            "7",
            "-6",
            "-s",
            "mh",
            "-b",
            "mh-port",
            "--health",
            "quorum=1,sorry=[2001:db8::9]:80",
        ]),
        cmd(&[
            "-a",
            "-f",
            "7",
            "-6",
            "-r",
            "2001:db8::2",
            "-i",
            "--tun-type",
            "gue",
            "--tun-port",
            "6080",
        ]),
        cmd(&["--set", "900", "120", "300"]),
        cmd(&[
            "--start-daemon",
            "master",
            "--mcast-interface",
            "eth0",
            "--syncid",
            "7",
        ]),
    ];
    let mut model = Model::new();
    model
        .apply_batch(&batch, false)
        .expect("the seed batch applies");
    let conns = r#"{"v":1,"resp":{"connections":[{"proto":"tcp","client":"198.51.100.7","client_port":40000,"vaddr":"192.0.2.1","vport":80,"daddr":"10.0.0.2","dport":80,"state":"ESTABLISHED","expires_ms":899000}]}}"#;
    vec![
        ("req_ping", encode_request(&Request::Ping)),
        ("req_timeouts", encode_request(&Request::GetTimeouts)),
        ("req_connections", encode_request(&Request::GetConnections)),
        (
            "req_state_service",
            encode_request(&Request::GetState {
                service: Some(*match &batch[0] {
                    Command::AddService { svc, .. } => svc,
                    _ => unreachable!(),
                }),
            }),
        ),
        (
            "req_apply",
            encode_request(&Request::Apply {
                commands: batch.clone(),
                dry_run: false,
            }),
        ),
        (
            "req_apply_dry_run",
            encode_request(&Request::Apply {
                commands: vec![
                    cmd(&["-d", "-t", "192.0.2.1:80", "-r", "10.0.0.3"]),
                    cmd(&["-C"]),
                ],
                dry_run: true,
            }),
        ),
        (
            "resp_state",
            encode_response(&Response::State(model.state.clone())),
        ),
        (
            "resp_daemons",
            encode_response(&Response::Daemons(model.state.daemons.clone())),
        ),
        (
            "resp_timeouts",
            encode_response(&Response::Timeouts(model.state.timeouts)),
        ),
        (
            "resp_error",
            encode_response(&Response::Error {
                index: Some(1),
                message: "No such service".into(),
            }),
        ),
        ("resp_connections", format!("{conns}\n")),
    ]
}

// -------------------------------------------------------------------- sync

fn sync_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let key = Key::from_bytes(xvs_fuzz::SYNC_KEY).expect("a long key");
    let now = 1_700_000_000_000;
    let conn = |i: u16| SyncConn {
        proto: Proto::Tcp,
        caddr: Addr::v4(CLIENT4),
        cport: 40000 + i,
        vaddr: Addr::v4(VIP4),
        vport: 80,
        daddr: Addr::v4(rs4(1)),
        dport: 80,
        fwd: Fwd::Route,
        state: TcpState::Established,
        flags: 0,
        timeout_ms: 900_000,
        fwmark: 0,
    };
    let v6 = SyncConn {
        proto: Proto::Udp,
        caddr: Addr::v6(CLIENT6),
        vaddr: Addr::v6(VIP6),
        daddr: Addr::v6(rs6(8)),
        fwd: Fwd::Masq,
        state: TcpState::None,
        flags: flags::NOOUTPUT,
        ..conn(1)
    };
    let template = SyncConn {
        proto: Proto::Any,
        caddr: Addr::v4([198, 51, 100, 0]),
        cport: 0,
        vaddr: Addr::v4(FWMARK.to_be_bytes()),
        vport: 0,
        fwd: Fwd::Tunnel,
        state: TcpState::None,
        flags: flags::TEMPLATE | flags::PERSISTENT,
        timeout_ms: 300_000,
        fwmark: FWMARK,
        ..conn(2)
    };
    let seal = |syncid: u8, entries: &[SyncConn]| {
        let mut enc = Encoder::new(key.clone(), syncid, 1452, 0x5eed);
        for c in entries {
            assert!(enc.push(c, now).is_none(), "one datagram per seed");
        }
        enc.finish(now).expect("entries pending").to_vec()
    };
    vec![
        ("one_v4", seal(0, &[conn(0)])),
        ("several_v4", seal(7, &[conn(0), conn(1), conn(2), conn(3)])),
        ("v6", seal(1, &[v6])),
        ("mixed_template", seal(0, &[conn(0), v6, template])),
    ]
}

// ------------------------------------------------------------- text seeds

const ARGVS: &[(&str, &[&str])] = &[
    ("add_service", &["-A", "-t", "192.0.2.1:80", "-s", "rr"]),
    (
        "add_persistent_v6",
        &[
            "-A",
            "-u",
            "[2001:db8::1]:53",
            "-s",
            "sh",
            "-b",
            "sh-port,sh-fallback",
            "-p",
            "60",
            "-M",
            "64",
        ],
    ),
    (
        "add_fwmark",
        &["-A", "-f", "7", "-s", "mh", "-p", "--pe", "sip", "-o"],
    ),
    (
        "add_dest_nat",
        &[
            "-a",
            "-t",
            "192.0.2.1:80",
            "-r",
            "10.0.0.2:8080",
            "-m",
            "-w",
            "3",
            "-x",
            "100",
            "-y",
            "10",
        ],
    ),
    (
        "add_dest_tun",
        &[
            "-a",
            "-t",
            "192.0.2.1:80",
            "-r",
            "10.0.0.3",
            "-i",
            "--tun-type",
            "gue",
            "--tun-port",
            "6080",
            "--tun-csum",
        ],
    ),
    (
        "add_dest_check",
        &[
            "-a",
            "-t",
            "192.0.2.50:80",
            "-r",
            "192.0.2.20",
            "-g",
            "-w",
            "100",
            "--check",
            "http:path=/healthz,status=200",
            "--check-timing",
            "interval=2s,timeout=500ms,rise=2,fall=3",
            "--feedback",
            "port=9100,path=/load",
        ],
    ),
    (
        "edit_dest",
        &["-e", "-t", "192.0.2.50:80", "-r", "192.0.2.20", "-w", "0"],
    ),
    (
        "del_dest",
        &["-d", "-t", "192.0.2.50:80", "-r", "192.0.2.20"],
    ),
    (
        "edit_service_health",
        &[
            "-E",
            "-t",
            "192.0.2.50:80",
            "-s",
            "wrr",
            "--health",
            "quorum=2,hysteresis=1,sorry=192.0.2.99:80,inhibit",
        ],
    ),
    ("list", &["-L", "-n", "--stats", "--exact"]),
    ("list_conns", &["-L", "-c", "-n", "--persistent-conn"]),
    (
        "list_service_json",
        &["-L", "-t", "192.0.2.1:80", "--json", "--checks"],
    ),
    ("timeouts", &["--set", "900", "120", "300"]),
    (
        "daemon",
        &[
            "--start-daemon",
            "master",
            "--mcast-interface",
            "eth0",
            "--syncid",
            "7",
            "--sync-maxlen",
            "1400",
        ],
    ),
    (
        "daemon_unicast",
        &[
            "--start-daemon",
            "backup",
            "--mcast-interface",
            "eth0",
            "--sync-peer",
            "192.0.2.11:8848",
        ],
    ),
    ("dry_run", &["--dry-run", "-D", "-t", "192.0.2.1:80"]),
    ("zero", &["-Z", "-u", "192.0.2.1:53"]),
];

const RESTORES: &[(&str, &str)] = &[
    (
        "save_n",
        "-A -t 192.0.2.1:80 -s wlc -p 300 -M 255.255.255.0\n\
         -a -t 192.0.2.1:80 -r 10.0.0.2:80 -g -w 1\n\
         -a -t 192.0.2.1:80 -r 10.0.0.3:80 -g -w 2 -x 100 -y 50\n\
         -A -u 192.0.2.1:53 -s rr\n\
         -a -u 192.0.2.1:53 -r 10.0.0.4:5353 -m -w 1\n\
         --set 900 120 300\n",
    ),
    (
        "script",
        "# a config file\n\
         ipvsadm -A -f 7 -6 -s mh -b mh-port -p 60\n\
         /usr/sbin/xvsadm -a -f 7 -6 -r [2001:db8::2]:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n\
         \n\
         xvsadm -a -f 7 -6 -r 2001:db8::3 -i --check 'misc:dynamic,cmd=/usr/local/bin/check \"a b\"'\n",
    ),
    (
        "health",
        "-A -t 192.0.2.50:80 -s wrr --health quorum=2,sorry=192.0.2.99:80\n\
         -a -t 192.0.2.50:80 -r 192.0.2.20 -g -w 100 --check http:path=/healthz --check-timing interval=2s,timeout=500ms\n\
         -a -t 192.0.2.50:80 -r 192.0.2.30 -g --check tcp --feedback port=9100,path=/load\n\
         --start-daemon master --mcast-interface eth0 --syncid 7\n",
    ),
];

const HEALTH: &[(&str, &str)] = &[
    ("tcp", "tcp:port=8080"),
    (
        "http",
        "http:port=81,path=/h?x=1,status=204,digest=9b3a0c85a887a256d6939da88aabd8cd,host=a.example",
    ),
    ("udp", "udp:port=53,payload=00ff,expect=ab,require-reply"),
    ("misc", "misc:dynamic,cmd=/usr/local/bin/check --host a,b"),
    ("timing", "interval=2s,timeout=500ms,rise=1,fall=2,alpha"),
    (
        "policy",
        "quorum=3,hysteresis=1,sorry=[2001:db8::9]:80,inhibit",
    ),
    ("feedback", "port=9100,path=/load,host=lb.example"),
    ("agent_reply", "75% up drain # load 0.3\n"),
];

// ------------------------------------------------------------ dictionaries

/// libFuzzer dictionaries: the options of the xvsadm grammar (from its
/// clap definition, so they follow it) and the health specs' words.
fn write_dicts(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the dictionary directory");
    let mut words: Vec<String> = Vec::new();
    for arg in xvs_ctl::grammar::command().get_arguments() {
        words.extend(arg.get_long().map(|l| format!("--{l}")));
        words.extend(arg.get_short().map(|s| format!("-{s}")));
    }
    words.sort();
    words.dedup();
    let mut dict = String::from("# The xvsadm options (examples/seeds.rs writes this file).\n");
    for w in &words {
        dict.push_str(&format!("\"{w}\"\n"));
    }
    for w in [
        "192.0.2.1:80",
        "[2001:db8::1]:80",
        "10.0.0.2",
        "master",
        "backup",
        "rr",
        "wrr",
        "sh",
        "mh",
        "sh-port",
        "mh-fallback",
        "gue",
        "gre",
        "ipip",
        "sip",
        "eth0",
    ] {
        dict.push_str(&format!("\"{w}\"\n"));
    }
    std::fs::write(dir.join("xvsadm.dict"), dict).expect("write the dictionary");
    let mut health =
        String::from("# Words of the health check specs (examples/seeds.rs writes this file).\n");
    for w in [
        "tcp:",
        "http:",
        "udp:",
        "misc:",
        "port=",
        "path=",
        "status=",
        "digest=",
        "host=",
        "payload=",
        "expect=",
        "require-reply",
        "dynamic",
        "cmd=",
        "interval=",
        "timeout=",
        "rise=",
        "fall=",
        "alpha",
        "quorum=",
        "hysteresis=",
        "sorry=",
        "inhibit",
        "ms",
        "s",
        "up",
        "down",
        "drain",
        "maint",
        "ready",
        "maxconn:",
        "%",
    ] {
        health.push_str(&format!("\"{w}\"\n"));
    }
    std::fs::write(dir.join("health_spec.dict"), health).expect("write the dictionary");
}
