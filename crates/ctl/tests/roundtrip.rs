//! Save then restore is the identity, over random valid commands.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use xvs_conntrack::{Af, Fwd, Proto};
use xvs_ctl::cmd::{MAX_SYNC_MAXLEN, MAX_THRESHOLD, MAX_TIMEOUT};
use xvs_ctl::*;
use xvs_sched::SchedFlags;

fn ipv4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
}

fn ipv6() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 16]>()
        .prop_map(Ipv6Addr::from)
        .prop_filter("not IPv4-mapped", |a| a.to_ipv4_mapped().is_none())
        .prop_map(IpAddr::V6)
}

fn addr_of(af: Af) -> BoxedStrategy<IpAddr> {
    match af {
        Af::V4 => ipv4().boxed(),
        Af::V6 => ipv6().boxed(),
    }
}

fn af() -> impl Strategy<Value = Af> {
    prop_oneof![Just(Af::V4), Just(Af::V6)]
}

fn svc_key() -> impl Strategy<Value = SvcKey> {
    prop_oneof![
        (
            prop_oneof![Just(Proto::Tcp), Just(Proto::Udp), Just(Proto::Sctp)],
            prop_oneof![ipv4(), ipv6()],
            prop_oneof![Just(0u16), Just(80), any::<u16>()],
        )
            .prop_map(|(proto, addr, port)| SvcKey::Tuple { proto, addr, port }),
        (1..=u32::MAX, af()).prop_map(|(mark, af)| SvcKey::Fwmark { mark, af }),
    ]
}

fn service() -> impl Strategy<Value = (SvcKey, ServiceOpts)> {
    svc_key().prop_flat_map(|svc| {
        let netmask = match svc.af() {
            Af::V4 => proptest::option::of(0u8..=31).boxed(),
            Af::V6 => proptest::option::of(1u8..=127).boxed(),
        };
        (
            proptest::sample::select(xvs_sched::NAMES),
            0u32..8,
            proptest::option::of(prop_oneof![Just(300u32), 1..=MAX_TIMEOUT]),
            netmask,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(move |(sched, bits, persistence, netmask, ops, pe)| {
                let mut opts = ServiceOpts {
                    scheduler: sched.to_owned(),
                    sched_flags: SchedFlags::from_bits(bits << 3).expect("bits 3..=5"),
                    persistence,
                    netmask,
                    one_packet: ops,
                    pe: pe.then_some(Pe::Sip),
                    health: None,
                };
                if let SvcKey::Tuple { proto, port, .. } = svc {
                    if port == 0 && opts.persistence.is_none() {
                        opts.persistence = Some(300);
                    }
                    if proto != Proto::Udp {
                        opts.one_packet = false;
                    }
                }
                (svc, opts)
            })
    })
}

fn tunnel() -> impl Strategy<Value = (TunType, TunCsum)> {
    let csum = || {
        prop_oneof![
            Just(TunCsum::NoCsum),
            Just(TunCsum::Csum),
            Just(TunCsum::RemCsum)
        ]
    };
    prop_oneof![
        Just((TunType::Ipip, TunCsum::NoCsum)),
        (1..=u16::MAX, csum()).prop_map(|(port, c)| (TunType::Gue { port }, c)),
        prop_oneof![Just(TunCsum::NoCsum), Just(TunCsum::Csum)].prop_map(|c| (TunType::Gre, c)),
    ]
}

fn dest_for(svc: SvcKey) -> impl Strategy<Value = DestOpts> {
    (
        prop_oneof![Just(Fwd::Route), Just(Fwd::Masq), Just(Fwd::Tunnel)],
        any::<bool>(),
        prop_oneof![addr_of(Af::V4), addr_of(Af::V6)],
        addr_of(svc.af()),
        any::<u16>(),
        0..=65535i32,
        0..=MAX_THRESHOLD,
        any::<u32>(),
        tunnel(),
    )
        .prop_map(
            move |(fwd, other_family, any_addr, same_addr, port, weight, upper, lower, tun)| {
                let addr = if fwd == Fwd::Tunnel && other_family {
                    any_addr
                } else {
                    same_addr
                };
                let mut d = DestOpts::new(addr, port);
                d.fwd = fwd;
                d.weight = weight;
                d.upper = upper;
                d.lower = if upper == 0 { 0 } else { lower % (upper + 1) };
                if fwd == Fwd::Tunnel {
                    (d.tun_type, d.tun_csum) = tun;
                }
                if let SvcKey::Tuple { port: sport, .. } = svc {
                    if fwd != Fwd::Masq {
                        d.port = sport;
                    } else if sport != 0 && d.port == 0 {
                        d.port = 1;
                    }
                }
                d
            },
        )
}

fn daemon() -> impl Strategy<Value = DaemonOpts> {
    let group = prop_oneof![
        (224u8..=239, any::<[u8; 3]>())
            .prop_map(|(a, r)| IpAddr::V4(Ipv4Addr::new(a, r[0], r[1], r[2]))),
        any::<[u8; 15]>().prop_map(|r| {
            let mut o = [0xffu8; 16];
            o[1..].copy_from_slice(&r);
            IpAddr::V6(Ipv6Addr::from(o))
        }),
    ];
    (
        prop_oneof![Just(SyncState::Master), Just(SyncState::Backup)],
        "[a-z][a-z0-9_.'\"#$\\\\-]{0,14}",
        any::<u8>(),
        proptest::option::of(1..=MAX_SYNC_MAXLEN),
        proptest::option::of(group),
        proptest::option::of(1..=u16::MAX),
        proptest::option::of(1..=u8::MAX),
        proptest::collection::vec(
            (any::<[u8; 4]>(), 1..=u16::MAX).prop_filter_map("unicast", |(a, p)| {
                let ip = Ipv4Addr::from(a);
                (!ip.is_unspecified() && !ip.is_multicast())
                    .then(|| std::net::SocketAddr::new(IpAddr::V4(ip), p))
            }),
            0..3,
        ),
    )
        .prop_map(
            |(
                state,
                mcast_iface,
                syncid,
                sync_maxlen,
                mcast_group,
                mcast_port,
                mcast_ttl,
                peers,
            )| {
                DaemonOpts {
                    state,
                    mcast_iface,
                    syncid,
                    sync_maxlen,
                    mcast_group,
                    mcast_port,
                    mcast_ttl,
                    peers,
                }
            },
        )
}

/// Commands that change the director: what restore input holds.
fn change() -> impl Strategy<Value = Command> {
    prop_oneof![
        service().prop_map(|(svc, opts)| Command::AddService { svc, opts }),
        service().prop_map(|(svc, opts)| Command::EditService { svc, opts }),
        svc_key().prop_map(|svc| Command::DelService { svc }),
        Just(Command::Clear),
        svc_key()
            .prop_flat_map(|svc| dest_for(svc).prop_map(move |dest| (svc, dest)))
            .prop_map(|(svc, dest)| Command::AddDest { svc, dest }),
        svc_key()
            .prop_flat_map(|svc| dest_for(svc).prop_map(move |dest| (svc, dest)))
            .prop_map(|(svc, dest)| Command::EditDest { svc, dest }),
        svc_key()
            .prop_flat_map(|svc| (Just(svc), addr_of(svc.af()), any::<u16>()))
            .prop_map(|(svc, addr, port)| Command::DelDest { svc, addr, port }),
        proptest::option::of(svc_key()).prop_map(Command::Zero),
        (0..=MAX_TIMEOUT, 0..=MAX_TIMEOUT, 0..=MAX_TIMEOUT)
            .prop_map(|(tcp, tcpfin, udp)| Command::SetTimeouts { tcp, tcpfin, udp }),
        daemon().prop_map(Command::StartDaemon),
        (
            prop_oneof![Just(SyncState::Master), Just(SyncState::Backup)],
            any::<u8>()
        )
            .prop_map(|(state, syncid)| Command::StopDaemon { state, syncid }),
    ]
}

fn list() -> impl Strategy<Value = Command> {
    (
        proptest::collection::vec(any::<bool>(), 12),
        proptest::option::of(svc_key()),
    )
        .prop_map(|(b, service)| {
            let mut l = ListOpts {
                numeric: b[0],
                connections: b[1],
                stats: b[2],
                rate: b[3],
                exact: b[4],
                thresholds: b[5],
                persistent_conn: b[6],
                tun_info: b[7],
                sort: b[8],
                service,
                json: b[9],
                checks: b[11],
            };
            if l.connections {
                l.service = None;
                l.checks = false;
                l.stats = false;
                l.rate = false;
                l.thresholds = false;
            }
            if b[10] {
                Command::Timeouts { json: l.json }
            } else {
                Command::List(l)
            }
        })
}

/// Every command, including listings and the xvs wrapper.
fn any_command() -> impl Strategy<Value = Command> {
    let plain = prop_oneof![
        4 => change(),
        2 => list(),
        1 => any::<bool>().prop_map(|json| Command::Daemon { json }),
        1 => any::<bool>().prop_map(|numeric| Command::Save { numeric }),
        1 => Just(Command::Restore),
        1 => Just(Command::Version),
        1 => Just(Command::Help),
    ];
    (plain, any::<bool>()).prop_map(|(c, dry)| {
        if dry && !matches!(c, Command::Help | Command::Version) {
            Command::DryRun(Box::new(c))
        } else {
            c
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The generators make only valid commands (so the properties below
    /// cover what they claim to).
    #[test]
    fn generated_commands_validate(cmd in any_command()) {
        prop_assert_eq!(cmd.validate(), Ok(()));
    }

    /// argv -> command -> argv: every command reads back from its canonical
    /// argv.
    #[test]
    fn args_round_trip(cmd in any_command()) {
        let args = to_args(&cmd);
        prop_assert_eq!(parse_args_with(&args, &Services::empty()), Ok(cmd));
    }

    /// The admin protocol's JSON form of a command reads back to the same
    /// command (what crosses the control socket).
    #[test]
    fn json_round_trip(cmd in any_command()) {
        let json = serde_json::to_string(&cmd).unwrap();
        prop_assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), cmd, "{}", json);
    }

    /// A whole save reads back to the same commands, in order.
    #[test]
    fn save_restore_round_trip(cmds in proptest::collection::vec(change(), 0..24)) {
        let text = save_text(&cmds, true);
        prop_assert_eq!(parse_restore_with(&text, &Services::empty()), Ok(cmds), "{}", text);
    }

    /// With port names (ipvsadm -S without -n), the same.
    #[test]
    fn named_save_round_trip(cmd in change()) {
        let names = Services::parse(
            "http 80/tcp www\nhttp 80/udp\nhttps 443/tcp\ndomain 53/udp\nzero 0/tcp\nsip 5060/sctp\n",
        );
        let line = save_line_with(&cmd, Some(&names));
        prop_assert_eq!(parse_restore_with(&line, &names), Ok(vec![cmd]), "{}", line);
    }

    /// Restore input may be prefixed, commented and spaced out freely.
    #[test]
    fn decorated_restore(cmds in proptest::collection::vec(change(), 1..8)) {
        let mut text = String::from("# saved by xvs\n\n");
        for c in &cmds {
            text.push_str("  ipvsadm\t");
            text.push_str(&save_line(c, true).replace(' ', "   "));
            text.push_str("   # note\n");
        }
        prop_assert_eq!(parse_restore_with(&text, &Services::empty()), Ok(cmds));
    }
}
