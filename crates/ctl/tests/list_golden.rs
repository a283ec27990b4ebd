//! Golden tests of every listing format: the expected files in `golden/`
//! were printed with ipvsadm 1.31's own printf formats (see
//! `golden/README.md`).

use std::net::IpAddr;

use xvs_conntrack::{Af, Fwd, Proto};
use xvs_ctl::list::{list_conns, list_daemons, list_services, list_timeouts, listed_state};
use xvs_ctl::state::{Conn, Dest, Rates, Service, State, Stats, SyncDaemon, Timeouts};
use xvs_ctl::{
    DaemonOpts, DestOpts, ListOpts, Pe, ServiceOpts, Services, SvcKey, SyncState, TunCsum, TunType,
    parse_args_with,
};
use xvs_sched::SchedFlags;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn names() -> Services {
    Services::parse(
        "http 80/tcp www\nhttps 443/tcp\ndomain 53/udp\nsip 5060/sctp\n\
         webcache-long-name-x 8080/tcp\n",
    )
}

fn tcp(addr: &str, port: u16) -> SvcKey {
    SvcKey::Tuple {
        proto: Proto::Tcp,
        addr: ip(addr),
        port,
    }
}

fn stats(v: [u64; 5]) -> Stats {
    Stats {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
    }
}

fn rates(v: [u64; 5]) -> Rates {
    Rates {
        cps: v[0],
        inpps: v[1],
        outpps: v[2],
        inbps: v[3],
        outbps: v[4],
    }
}

fn dest(addr: &str, port: u16, fwd: Fwd, weight: i32) -> Dest {
    let mut d = Dest::new(DestOpts::new(ip(addr), port));
    d.opts.fwd = fwd;
    d.opts.weight = weight;
    d
}

fn svc(key: SvcKey, sched: &str, dests: Vec<Dest>) -> Service {
    let mut s = Service::new(
        key,
        ServiceOpts {
            scheduler: sched.into(),
            ..ServiceOpts::default()
        },
    );
    s.dests = dests;
    s
}

/// The table of `golden/*.txt`, in the same (unsorted) order.
fn table() -> State {
    let mut s0 = svc(tcp("192.0.2.1", 443), "rr", {
        let mut d = dest("10.0.0.2", 443, Fwd::Route, 1);
        (d.active_conns, d.inactive_conns, d.persistent_conns) = (3, 4, 2);
        d.stats = stats([10, 200, 150, 30000, 400000]);
        d.rates = rates([1, 2, 3, 400, 500]);
        vec![d]
    });
    s0.opts.persistence = Some(300);
    s0.opts.netmask = Some(24);
    s0.stats = stats([10, 200, 150, 30000, 400000]);
    s0.rates = rates([1, 2, 3, 400, 500]);

    let mut s1 = svc(
        SvcKey::Fwmark {
            mark: 5,
            af: Af::V4,
        },
        "wlc",
        vec![
            {
                let mut d = dest("10.0.0.9", 0, Fwd::Tunnel, 1);
                d.opts.tun_type = TunType::Gue { port: 6080 };
                d.opts.tun_csum = TunCsum::Csum;
                d
            },
            {
                let mut d = dest("10.0.0.8", 0, Fwd::Tunnel, 2);
                d.active_conns = 1;
                d
            },
            {
                let mut d = dest("2001:db8::9", 0, Fwd::Tunnel, 3);
                d.opts.tun_type = TunType::Gre;
                d.opts.tun_csum = TunCsum::Csum;
                d.inactive_conns = 1;
                d
            },
        ],
    );
    s1.opts.persistence = Some(1800);

    let mut s2 = svc(
        tcp("192.0.2.1", 80),
        "wlc",
        vec![
            {
                let mut d = dest("10.0.0.3", 80, Fwd::Route, 1);
                d.stats = stats([
                    100_000_000,
                    999_999_999,
                    1_000_000_000,
                    99_999_999_999,
                    100_000_000_000_000,
                ]);
                d.rates = rates([100_000_000, 7, 8, 999_999_999, 1_000_000_000]);
                d
            },
            {
                let mut d = dest("10.0.0.2", 80, Fwd::Route, 2);
                (d.opts.upper, d.opts.lower) = (100, 50);
                (d.active_conns, d.inactive_conns) = (12, 345);
                d.stats = stats([5, 6, 7, 8, 9]);
                d
            },
            {
                let mut d = dest("127.0.0.1", 80, Fwd::Route, 1);
                d.local = true;
                d
            },
        ],
    );
    s2.stats = stats([
        123_456_789,
        99_999_999,
        1_234_567_890_123,
        123_456_789_012_345_678,
        0,
    ]);
    s2.rates = rates([1234, 99999, 100_000, 123_456_789, 5_000_000_000]);

    let mut s3 = svc(
        SvcKey::Tuple {
            proto: Proto::Udp,
            addr: ip("192.0.2.2"),
            port: 53,
        },
        "sh",
        vec![{
            let mut d = dest("10.0.0.5", 5353, Fwd::Masq, 0);
            (d.inactive_conns, d.persistent_conns) = (7, 1);
            d
        }],
    );
    s3.opts.sched_flags = SchedFlags::SH_FALLBACK | SchedFlags::SH_PORT;
    s3.opts.persistence = Some(60);
    s3.opts.one_packet = true;

    let s4 = svc(
        SvcKey::Tuple {
            proto: Proto::Sctp,
            addr: ip("192.0.2.3"),
            port: 5060,
        },
        "rr",
        vec![
            dest("192.168.1.1", 5060, Fwd::Route, 1),
            dest("10.1.1.1", 5060, Fwd::Route, 1),
        ],
    );
    let s5 = svc(
        tcp("10.0.0.100", 8080),
        "lc",
        vec![dest("10.0.0.101", 8080, Fwd::Masq, 1)],
    );
    let mut s6 = svc(tcp("192.168.0.1", 80), "wrr", vec![]);
    s6.opts.sched_flags = SchedFlags::SCHED3;
    let mut s7 = svc(
        tcp("2001:db8::1", 80),
        "lc",
        vec![
            dest("2001:db8::10", 8080, Fwd::Masq, 3),
            dest("2001:db8::2", 80, Fwd::Route, 1),
        ],
    );
    s7.opts.persistence = Some(300);
    s7.opts.netmask = Some(64);
    s7.opts.pe = Some(Pe::Sip);
    let mut s8 = svc(
        SvcKey::Fwmark {
            mark: 7,
            af: Af::V6,
        },
        "mh",
        vec![dest("2001:db8::7", 0, Fwd::Route, 1)],
    );
    s8.opts.sched_flags = SchedFlags::MH_FALLBACK;
    State {
        services: vec![s0, s1, s2, s3, s4, s5, s6, s7, s8],
        ..State::default()
    }
}

fn list(args: &[&str]) -> String {
    let mut argv = vec!["-L"];
    argv.extend_from_slice(args);
    let cmd = parse_args_with(&argv, &names()).unwrap();
    let xvs_ctl::Command::List(opts) = cmd else {
        panic!("not a listing: {cmd:?}")
    };
    list_services(&table(), &opts, &names()).unwrap()
}

fn golden(name: &str) -> String {
    let path = format!("{}/tests/golden/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[track_caller]
fn assert_golden(got: &str, name: &str) {
    let want = golden(name);
    if got != want {
        panic!("{name}.txt differs\n--- want\n{want}--- got\n{got}---");
    }
}

#[test]
fn every_service_listing_format() {
    let cases: &[(&[&str], &str)] = &[
        (&["-n"], "list_n"),
        (&[], "list_names"),
        (&["-n", "--stats"], "stats"),
        (&["-n", "--stats", "--exact"], "stats_exact"),
        (&["-n", "--rate"], "rate"),
        (&["-n", "--rate", "--exact"], "rate_exact"),
        (&["-n", "--thresholds"], "thresholds"),
        (&["-n", "--persistent-conn"], "persistent_conn"),
        (&["-n", "--tun-info"], "tun_info"),
        (&["-n", "--nosort"], "nosort"),
        (&["--nosort"], "nosort_names"),
        (&["-n", "--stats", "-t", "192.0.2.1:80"], "one_stats"),
        (&["-t", "10.0.0.100:8080"], "one_names"),
    ];
    for (args, name) in cases {
        assert_golden(&list(args), name);
    }
}

#[test]
fn listing_a_missing_service_is_ipvsadms_error() {
    let opts = ListOpts {
        service: Some(tcp("192.0.2.99", 80)),
        ..ListOpts::default()
    };
    let err = list_services(&table(), &opts, &names()).unwrap_err();
    assert_eq!(err.to_string(), "No such service");
    assert!(listed_state(&table(), &opts).is_err());
}

#[test]
fn json_listing_is_the_sorted_state() {
    let opts = ListOpts {
        json: true,
        ..ListOpts::default()
    };
    let st = listed_state(&table(), &opts).unwrap();
    let keys: Vec<String> = st.services.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(
        keys,
        [
            "TCP  192.0.2.1:80",
            "TCP  192.0.2.1:443",
            "TCP  192.168.0.1:80",
            "TCP  10.0.0.100:8080",
            "UDP  192.0.2.2:53",
            "SCTP 192.0.2.3:5060",
            "TCP  [2001:db8::1]:80",
            "FWM  5",
            "FWM  7 IPv6",
        ]
    );
    let json = xvs_ctl::list::to_json(&st);
    let back: State = serde_json::from_str(&json).unwrap();
    assert_eq!(back, st);
}

fn conns() -> Vec<Conn> {
    let c = |proto, ca: &str, cp, va: &str, vp, da: &str, dp, state: &str, ms| Conn {
        proto,
        client: ip(ca),
        client_port: cp,
        vaddr: ip(va),
        vport: vp,
        daddr: ip(da),
        dport: dp,
        state: state.into(),
        expires_ms: ms,
        template: false,
        pe: None,
    };
    let mut tpl = c(
        Proto::Any,
        "192.0.2.10",
        0,
        "0.0.0.0",
        0,
        "10.0.0.9",
        0,
        "NONE",
        6_000_999,
    );
    tpl.template = true;
    let mut sip = c(
        Proto::Tcp,
        "192.0.2.11",
        5060,
        "192.0.2.1",
        5060,
        "10.0.0.3",
        5060,
        "ESTABLISHED",
        5_000,
    );
    sip.pe = Some(("sip".into(), "call-id-1".into()));
    vec![
        c(
            Proto::Tcp,
            "192.0.2.10",
            40000,
            "192.0.2.1",
            80,
            "10.0.0.2",
            80,
            "ESTABLISHED",
            899_999,
        ),
        c(
            Proto::Udp,
            "2001:db8::100",
            5353,
            "2001:db8::1",
            53,
            "2001:db8::10",
            53,
            "UDP",
            299_500,
        ),
        tpl,
        sip,
    ]
}

#[test]
fn connection_listings() {
    let opts = |args: &[&str]| {
        let mut argv = vec!["-L", "-c"];
        argv.extend_from_slice(args);
        match parse_args_with(&argv, &names()).unwrap() {
            xvs_ctl::Command::List(o) => o,
            other => panic!("{other:?}"),
        }
    };
    assert_golden(&list_conns(&conns(), &opts(&["-n"]), &names()), "conns_n");
    assert_golden(&list_conns(&conns(), &opts(&[]), &names()), "conns_names");
    assert_golden(
        &list_conns(&conns(), &opts(&["-n", "--persistent-conn"]), &names()),
        "conns_pe",
    );
}

#[test]
fn timeout_and_daemon_listings() {
    assert_eq!(
        list_timeouts(&Timeouts::default()),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    let backup = SyncDaemon {
        opts: DaemonOpts {
            syncid: 3,
            ..DaemonOpts::new(SyncState::Backup)
        },
        counters: Default::default(),
    };
    let master = SyncDaemon {
        opts: DaemonOpts {
            mcast_iface: "eth1".into(),
            syncid: 0,
            sync_maxlen: Some(1472),
            mcast_group: Some(ip("224.0.0.81")),
            mcast_port: Some(8848),
            mcast_ttl: Some(1),
            ..DaemonOpts::new(SyncState::Master)
        },
        counters: Default::default(),
    };
    // list_daemon: "%s sync daemon (mcast=%s, syncid=%d" then the optional
    // ", maxlen=%u", ", group=%s", ", port=%u", ", ttl=%u", ")"; master
    // first.
    assert_eq!(
        list_daemons(&[backup, master]),
        "master sync daemon (mcast=eth1, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n\
         backup sync daemon (mcast=eth0, syncid=3)\n"
    );
    assert_eq!(list_daemons(&[]), "");
}
