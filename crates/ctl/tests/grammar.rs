//! The ipvsadm grammar: every option, every default, every refusal.

use std::net::IpAddr;

use xvs_conntrack::{Af, Fwd, Proto};
use xvs_ctl::cmd::{DEFAULT_MCAST_IFACE, MAX_TIMEOUT};
use xvs_ctl::*;
use xvs_sched::{SchedError, SchedFlags};

const SERVICES: &str = "\
http 80/tcp www
http 80/udp
domain 53/udp
sip 5060/sctp
";

fn parse(line: &str) -> Result<Command, GrammarError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    parse_args_with(&words, &Services::parse(SERVICES))
}

fn ok(line: &str) -> Command {
    parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn err(line: &str) -> String {
    match parse(line) {
        Ok(c) => panic!("{line}: accepted as {c:?}"),
        Err(e) => {
            let s = e.to_string();
            assert!(!s.contains('\n'), "{line}: error on several lines: {s}");
            s
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(a: &str, port: u16) -> SvcKey {
    SvcKey::Tuple {
        proto: Proto::Tcp,
        addr: ip(a),
        port,
    }
}

fn svc_opts(line: &str) -> (SvcKey, ServiceOpts) {
    match ok(line) {
        Command::AddService { svc, opts } | Command::EditService { svc, opts } => (svc, opts),
        c => panic!("{line}: {c:?}"),
    }
}

fn dest(line: &str) -> (SvcKey, DestOpts) {
    match ok(line) {
        Command::AddDest { svc, dest } | Command::EditDest { svc, dest } => (svc, dest),
        c => panic!("{line}: {c:?}"),
    }
}

fn list(line: &str) -> ListOpts {
    match ok(line) {
        Command::List(l) => l,
        c => panic!("{line}: {c:?}"),
    }
}

// ---------- services ----------

#[test]
fn add_service_defaults() {
    assert_eq!(
        ok("-A -t 192.0.2.1:80"),
        Command::AddService {
            svc: tcp("192.0.2.1", 80),
            opts: ServiceOpts {
                scheduler: "wlc".into(),
                sched_flags: SchedFlags::NONE,
                persistence: None,
                netmask: None,
                one_packet: false,
                pe: None,
                health: None,
            }
        }
    );
    assert_eq!(
        ok("--add-service --tcp-service 192.0.2.1:80"),
        ok("-A -t 192.0.2.1:80")
    );
    assert_eq!(
        ok("--add-service --tcp-service=192.0.2.1:80"),
        ok("-A -t 192.0.2.1:80")
    );
}

#[test]
fn service_kinds_and_addresses() {
    let (s, _) = svc_opts("-A -u 192.0.2.1:53");
    assert_eq!(
        s,
        SvcKey::Tuple {
            proto: Proto::Udp,
            addr: ip("192.0.2.1"),
            port: 53
        }
    );
    let (s, _) = svc_opts("-A --udp-service [2001:db8::1]:53");
    assert_eq!(s.to_string(), "UDP  [2001:db8::1]:53");
    let (s, _) = svc_opts("-A --sctp-service 192.0.2.1:5060");
    assert_eq!(s.to_string(), "SCTP 192.0.2.1:5060");
    let (s, _) = svc_opts("-A -f 5");
    assert_eq!(
        s,
        SvcKey::Fwmark {
            mark: 5,
            af: Af::V4
        }
    );
    let (s, _) = svc_opts("-A --fwmark-service 4294967295 --ipv6");
    assert_eq!(
        s,
        SvcKey::Fwmark {
            mark: u32::MAX,
            af: Af::V6
        }
    );
    // -6 before -f works too (ipvsadm wants it after).
    let (s, _) = svc_opts("-A -6 -f 5");
    assert_eq!(s.af(), Af::V6);
    // Port names from /etc/services, by protocol.
    let (s, _) = svc_opts("-A -t 192.0.2.1:http");
    assert_eq!(s.port(), 80);
    let (s, _) = svc_opts("-A -t 192.0.2.1:www");
    assert_eq!(s.port(), 80);
    let (s, _) = svc_opts("-A -u [2001:db8::1]:domain");
    assert_eq!(s.port(), 53);
    let (s, _) = svc_opts("-A --sctp-service 192.0.2.1:sip");
    assert_eq!(s.port(), 5060);
    // No port: port 0, which needs -p.
    let (s, o) = svc_opts("-A -t 192.0.2.1 -p");
    assert_eq!((s.port(), o.persistence), (0, Some(300)));
    let (s, _) = svc_opts("-A -t 2001:db8::1 -p");
    assert_eq!((s.af(), s.port()), (Af::V6, 0));
    let (s, _) = svc_opts("-A -t [2001:db8::1] -p");
    assert_eq!((s.af(), s.port()), (Af::V6, 0));
    let (s, _) = svc_opts("-A -t 192.0.2.1:0 -p 60");
    assert_eq!(s.port(), 0);
}

#[test]
fn bad_service_addresses() {
    assert_eq!(
        err("-A -t www.example.com:80"),
        "`www.example.com` is a host name: xvs does not resolve host names, give a numeric IPv4 address or [IPv6] address"
    );
    assert!(err("-A -t localhost").contains("host name"));
    assert_eq!(
        err("-A -t 80"),
        "invalid virtual service address `80`: a number alone is not an address"
    );
    assert_eq!(
        err("-A -t 192.0.2:80"),
        "invalid virtual service address `192.0.2:80`: not an IPv4 or IPv6 address"
    );
    assert_eq!(
        err("-A -t 192.0.2.256:80"),
        "invalid virtual service address `192.0.2.256:80`: not an IPv4 or IPv6 address"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:65536"),
        "invalid virtual service address `192.0.2.1:65536`: port `65536` is not in 0..=65535"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:"),
        "invalid virtual service address `192.0.2.1:`: empty port"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:nosuch"),
        "invalid virtual service address `192.0.2.1:nosuch`: port `nosuch` is not a number nor a tcp service name in /etc/services"
    );
    // A name known for UDP only is unknown for TCP.
    assert!(err("-A -t 192.0.2.1:domain").contains("tcp service name"));
    assert_eq!(
        err("-A -t 2001:db8::1:80:x"),
        "invalid virtual service address `2001:db8::1:80:x`: an IPv6 address with a port is written [ADDRESS]:PORT"
    );
    assert!(err("-A -t [2001:db8::1:80").contains("missing `]`"));
    assert!(err("-A -t [192.0.2.1]:80").contains("brackets hold an IPv6 address"));
    assert!(err("-A -t [2001:db8::1]80").contains("expected `:PORT`"));
    assert_eq!(
        err("-A -t [::ffff:192.0.2.1]:80"),
        "`::ffff:192.0.2.1` is an IPv4-mapped IPv6 address: write the IPv4 address instead"
    );
    assert_eq!(err("-A -t"), "option `--tcp-service` needs a value");
    assert_eq!(
        err("-A -f 0"),
        "invalid fwmark `0`: must be an integer in 1..=4294967295"
    );
    assert!(err("-A -f 4294967296").starts_with("invalid fwmark `4294967296`"));
    assert!(err("-A -f -1").starts_with("invalid fwmark `-1`"));
    assert!(err("-A -f x").starts_with("invalid fwmark `x`"));
    assert_eq!(
        err("-A -t 192.0.2.1:80 -6"),
        "-6 (--ipv6) is only for fwmark services (-f)"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:80 -u 192.0.2.1:53"),
        "-t (--tcp-service) and -u (--udp-service) cannot be used together"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:80 -t 192.0.2.2:80"),
        "option `--tcp-service` given more than once"
    );
}

#[test]
fn scheduler_and_flags() {
    for &name in xvs_sched::NAMES {
        let (_, o) = svc_opts(&format!("-A -t 192.0.2.1:80 -s {name}"));
        assert_eq!(o.scheduler, name);
    }
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 --scheduler rr");
    assert_eq!(o.scheduler, "rr");
    assert_eq!(
        err("-A -t 192.0.2.1:80 -s maglev"),
        format!(
            "unknown scheduler `maglev` (one of {})",
            xvs_sched::NAMES.join(", ")
        )
    );
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -s sh -b sh-fallback,sh-port");
    assert_eq!(o.sched_flags, SchedFlags::SH_FALLBACK | SchedFlags::SH_PORT);
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -b flag-3 -s mh");
    assert_eq!(o.sched_flags, SchedFlags::SCHED3);
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -s mh --sched-flags mh-port");
    assert_eq!(o.sched_flags, SchedFlags::MH_PORT);
    // Without -s, the flags are checked against wlc, as ipvsadm does.
    assert_eq!(
        parse("-A -t 192.0.2.1:80 -b sh-port"),
        Err(GrammarError::SchedFlags(SchedError::IncompatibleFlag {
            flag: "sh-port".into(),
            sched: "wlc".into()
        }))
    );
    assert_eq!(
        err("-A -t 192.0.2.1:80 -s rr -b bogus"),
        "-b (--sched-flags): invalid scheduler flag `bogus`"
    );
}

#[test]
fn persistence_netmask_pe_ops() {
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -p");
    assert_eq!(o.persistence, Some(300));
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -p 600");
    assert_eq!(o.persistence, Some(600));
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -p600");
    assert_eq!(o.persistence, Some(600));
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 --persistent=1");
    assert_eq!(o.persistence, Some(1));
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 --persistent -s rr");
    assert_eq!((o.persistence, o.scheduler.as_str()), (Some(300), "rr"));
    let (_, o) = svc_opts(&format!("-A -t 192.0.2.1:80 -p {MAX_TIMEOUT}"));
    assert_eq!(o.persistence, Some(MAX_TIMEOUT));
    assert_eq!(
        err("-A -t 192.0.2.1:80 -p 0"),
        "invalid persistence timeout `0`: must be an integer in 1..=2678400 seconds"
    );
    assert!(err("-A -t 192.0.2.1:80 -p 2678401").starts_with("invalid persistence timeout"));
    assert!(err("-A -t 192.0.2.1:80 -p abc").starts_with("invalid persistence timeout `abc`"));

    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -p -M 255.255.255.0");
    assert_eq!(o.netmask, Some(24));
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -p --netmask 255.255.240.0");
    assert_eq!(o.netmask, Some(20));
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -p -M 0.0.0.0");
    assert_eq!(o.netmask, Some(0));
    let (_, o) = svc_opts("-A -t 192.0.2.1:80 -p -M 255.255.255.255");
    assert_eq!(o.netmask, None, "a full mask is the default");
    let (_, o) = svc_opts("-A -t [2001:db8::1]:80 -p -M 64");
    assert_eq!(o.netmask, Some(64));
    let (_, o) = svc_opts("-A -t [2001:db8::1]:80 -p -M 128");
    assert_eq!(o.netmask, None);
    // The family of -M is the service's, whatever the order of -6.
    let (_, o) = svc_opts("-A -f 1 -M 48 -6 -p");
    assert_eq!(o.netmask, Some(48));
    let (_, o) = svc_opts("-A -f 1 -M 255.255.0.0 -p");
    assert_eq!(o.netmask, Some(16));
    assert_eq!(
        err("-A -t 192.0.2.1:80 -p -M 255.0.255.0"),
        "invalid netmask `255.0.255.0`: the mask's one bits must be contiguous"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:80 -p -M 24"),
        "invalid netmask `24`: an IPv4 service takes a dotted mask such as 255.255.255.0"
    );
    assert_eq!(
        err("-A -t [2001:db8::1]:80 -p -M 0"),
        "invalid netmask `0`: must be an integer in 1..=128 (an IPv6 prefix length)"
    );
    assert!(err("-A -t [2001:db8::1]:80 -p -M 129").starts_with("invalid netmask `129`"));
    assert!(err("-A -t [2001:db8::1]:80 -p -M ffff::").starts_with("invalid netmask"));

    let (_, o) = svc_opts("-A -u 192.0.2.1:5060 -p --pe sip");
    assert_eq!(o.pe, Some(Pe::Sip));
    assert_eq!(
        err("-A -u 192.0.2.1:5060 -p --pe http"),
        "invalid persistence engine `http`: the only one is sip"
    );

    let (_, o) = svc_opts("-A -u 192.0.2.1:53 -o");
    assert!(o.one_packet);
    let (_, o) = svc_opts("-A -f 3 --ops");
    assert!(o.one_packet);
    assert_eq!(
        err("-A -t 192.0.2.1:80 -o"),
        "one-packet scheduling (-o) is only for UDP and fwmark services"
    );
    assert!(err("-A --sctp-service 192.0.2.1:80 -o").contains("only for UDP"));
}

#[test]
fn port_zero_needs_persistence() {
    assert_eq!(
        err("-A -t 192.0.2.1"),
        "a service without a port (port 0) must be persistent (-p)"
    );
    assert!(err("-E -u 192.0.2.1:0").contains("must be persistent"));
    // Fwmark services have no port, and need no -p.
    assert!(parse("-A -f 1").is_ok());
    // Deleting, listing or zeroing a port-zero service is fine.
    assert!(parse("-D -t 192.0.2.1").is_ok());
    assert!(parse("-L -t 192.0.2.1").is_ok());
    assert!(parse("-Z -t 192.0.2.1").is_ok());
}

#[test]
fn edit_delete_clear_zero() {
    let (s, o) = svc_opts("-E -t 192.0.2.1:80 -s rr");
    assert_eq!((s, o.scheduler.as_str()), (tcp("192.0.2.1", 80), "rr"));
    assert!(matches!(
        ok("--edit-service -f 1"),
        Command::EditService { .. }
    ));
    assert_eq!(
        ok("-D -t 192.0.2.1:80"),
        Command::DelService {
            svc: tcp("192.0.2.1", 80)
        }
    );
    assert_eq!(
        ok("--delete-service -t 192.0.2.1:80"),
        ok("-D -t 192.0.2.1:80")
    );
    assert_eq!(ok("-C"), Command::Clear);
    assert_eq!(ok("--clear"), Command::Clear);
    assert_eq!(ok("-Z"), Command::Zero(None));
    assert_eq!(
        ok("--zero -t 192.0.2.1:80"),
        Command::Zero(Some(tcp("192.0.2.1", 80)))
    );
    assert_eq!(
        err("-D"),
        "-D (--delete-service) needs a virtual service (-t|-u|--sctp-service|-f)"
    );
    assert_eq!(
        err("-E"),
        "-E (--edit-service) needs a virtual service (-t|-u|--sctp-service|-f)"
    );
    assert_eq!(
        err("-D -t 192.0.2.1:80 -s rr"),
        "-s (--scheduler) is not allowed with -D (--delete-service)"
    );
    assert_eq!(
        err("-C -t 192.0.2.1:80"),
        "a virtual service (-t|-u|--sctp-service|-f) is not allowed with -C (--clear)"
    );
    assert_eq!(
        err("-Z -n"),
        "-n (--numeric) is not allowed with -Z (--zero)"
    );
}

// ---------- real servers ----------

#[test]
fn add_server_defaults() {
    let (s, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2:80");
    assert_eq!(s, tcp("192.0.2.1", 80));
    assert_eq!(
        d,
        DestOpts {
            addr: ip("10.0.0.2"),
            port: 80,
            fwd: Fwd::Route,
            weight: 1,
            upper: 0,
            lower: 0,
            tun_type: TunType::Ipip,
            tun_csum: TunCsum::NoCsum,
            check: None,
            feedback: None,
        }
    );
    assert_eq!(
        ok("--add-server --tcp-service 192.0.2.1:80 --real-server 10.0.0.2:80"),
        ok("-a -t 192.0.2.1:80 -r 10.0.0.2:80")
    );
}

#[test]
fn server_ports() {
    // Without a port: the service's.
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 -m");
    assert_eq!(d.port, 80);
    // NAT can change the port.
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2:8080 -m");
    assert_eq!(d.port, 8080);
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2:http -m");
    assert_eq!(d.port, 80);
    // DR and TUN cannot: the port is the service's (as ipvsadm).
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2:8080 -g");
    assert_eq!(d.port, 80);
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2:8080 -i");
    assert_eq!(d.port, 80);
    // Fwmark services: no port means the packet's (0); any port is kept.
    let (_, d) = dest("-a -f 1 -r 10.0.0.2");
    assert_eq!(d.port, 0);
    let (_, d) = dest("-a -f 1 -r 10.0.0.2:8080 -g");
    assert_eq!(d.port, 8080);
    // Port-zero services: 0 too.
    let (_, d) = dest("-a -t 192.0.2.1:0 -r 10.0.0.2 -m");
    assert_eq!(d.port, 0);
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2:0 -m"),
        "real server port 0 is only for port-zero and fwmark services: give the port, or leave it out to use the service's"
    );
    assert!(err("-a -t 192.0.2.1:80 -r 10.0.0.2:99999 -m").contains("not in 0..=65535"));
    // IPv6 real servers.
    let (_, d) = dest("-a -t [2001:db8::1]:80 -r [2001:db8::2]:8080 -m");
    assert_eq!((d.addr, d.port), (ip("2001:db8::2"), 8080));
    let (_, d) = dest("-a -t [2001:db8::1]:80 -r 2001:db8::2");
    assert_eq!((d.addr, d.port), (ip("2001:db8::2"), 80));
}

#[test]
fn forwarding_weight_thresholds() {
    for (opt, fwd) in [
        ("-g", Fwd::Route),
        ("--gatewaying", Fwd::Route),
        ("-i", Fwd::Tunnel),
        ("--ipip", Fwd::Tunnel),
        ("-m", Fwd::Masq),
        ("--masquerading", Fwd::Masq),
    ] {
        let (_, d) = dest(&format!("-a -t 192.0.2.1:80 -r 10.0.0.2 {opt}"));
        assert_eq!(d.fwd, fwd, "{opt}");
    }
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -g -m"),
        "-g (--gatewaying) and -m (--masquerading) cannot be used together"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -m -m"),
        "option `--masquerading` given more than once"
    );
    for w in [0, 1, 65535] {
        let (_, d) = dest(&format!("-a -t 192.0.2.1:80 -r 10.0.0.2 -w {w}"));
        assert_eq!(d.weight, w);
    }
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 --weight=7");
    assert_eq!(d.weight, 7);
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -w 65536"),
        "invalid weight `65536`: must be an integer in 0..=65535"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -w -1"),
        "invalid weight `-1`: must be an integer in 0..=65535"
    );
    assert!(err("-a -t 192.0.2.1:80 -r 10.0.0.2 -w 1.5").starts_with("invalid weight `1.5`"));
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -w"),
        "option `--weight` needs a value"
    );

    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 -x 100 -y 50");
    assert_eq!((d.upper, d.lower), (100, 50));
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 --u-threshold 2147483647 --l-threshold 0");
    assert_eq!((d.upper, d.lower), (2_147_483_647, 0));
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 -x 5");
    assert_eq!((d.upper, d.lower), (5, 0));
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -x 2147483648"),
        "invalid upper threshold `2147483648`: must be an integer in 0..=2147483647"
    );
    assert!(err("-a -t 192.0.2.1:80 -r 10.0.0.2 -y -3").starts_with("invalid lower threshold"));
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -y 5"),
        "lower threshold (-y 5) is above upper threshold (-x 0)"
    );
    assert!(err("-a -t 192.0.2.1:80 -r 10.0.0.2 -x 10 -y 11").contains("above upper threshold"));
}

#[test]
fn server_errors() {
    assert_eq!(
        err("-a -t 192.0.2.1:80"),
        "-a (--add-server) needs a real server (-r)"
    );
    assert_eq!(
        err("-a -r 10.0.0.2"),
        "-a (--add-server) needs a virtual service (-t|-u|--sctp-service|-f)"
    );
    assert_eq!(
        err("-e -t 192.0.2.1:80"),
        "-e (--edit-server) needs a real server (-r)"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r server1"),
        "`server1` is a host name: xvs does not resolve host names, give a numeric IPv4 address or [IPv6] address"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r -g"),
        "invalid real server address `-g`: not an IPv4 or IPv6 address"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r [2001:db8::2]:80"),
        "a real server of another address family than its service needs tunnelling (-i)"
    );
    assert!(err("-a -f 1 -r [2001:db8::2]").contains("another address family"));
    // Tunnelled real servers may be of the other family.
    let (_, d) = dest("-a -t 192.0.2.1:80 -r [2001:db8::2]:80 -i");
    assert_eq!(d.addr, ip("2001:db8::2"));
    let (_, d) = dest("-a -f 1 -6 -r 10.0.0.2 -i");
    assert_eq!(d.addr, ip("10.0.0.2"));
    let (_, d) = dest("-a -f 1 -6 -r 2001:db8::2");
    assert_eq!(d.addr, ip("2001:db8::2"));
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -s rr"),
        "-s (--scheduler) is not allowed with -a (--add-server)"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:80 -r 10.0.0.2"),
        "a real server (-r) is not allowed with -A (--add-service)"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:80 -w 2"),
        "-w (--weight) is not allowed with -A (--add-service)"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:80 -m"),
        "a forwarding method (-g|-i|-m) is not allowed with -A (--add-service)"
    );
}

#[test]
fn edit_and_delete_server() {
    // -e replaces everything: unspecified settings take their defaults.
    let (_, d) = dest("-e -t 192.0.2.1:80 -r 10.0.0.2 -w 5");
    assert_eq!((d.fwd, d.weight), (Fwd::Route, 5));
    let (_, d) = dest("--edit-server -t 192.0.2.1:80 -r 10.0.0.2:81 -m -x 9");
    assert_eq!((d.fwd, d.port, d.upper), (Fwd::Masq, 81, 9));
    assert_eq!(
        ok("-d -t 192.0.2.1:80 -r 10.0.0.2"),
        Command::DelDest {
            svc: tcp("192.0.2.1", 80),
            addr: ip("10.0.0.2"),
            port: 80
        }
    );
    // -d keeps the port as given (the kernel finds the server by it).
    assert_eq!(
        ok("--delete-server -t 192.0.2.1:80 -r 10.0.0.2:8080"),
        Command::DelDest {
            svc: tcp("192.0.2.1", 80),
            addr: ip("10.0.0.2"),
            port: 8080
        }
    );
    assert_eq!(
        err("-d -t 192.0.2.1:80 -r 10.0.0.2 -w 1"),
        "-w (--weight) is not allowed with -d (--delete-server)"
    );
    assert_eq!(
        err("-d -t 192.0.2.1:80 -r 10.0.0.2 -m"),
        "a forwarding method (-g|-i|-m) is not allowed with -d (--delete-server)"
    );
    assert!(err("-d -t 192.0.2.1:80 -r ::ffff:10.0.0.2").contains("IPv4-mapped"));
}

#[test]
fn tunnel_options() {
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type ipip");
    assert_eq!((d.tun_type, d.tun_csum), (TunType::Ipip, TunCsum::NoCsum));
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080");
    assert_eq!(
        (d.tun_type, d.tun_csum),
        (TunType::Gue { port: 6080 }, TunCsum::NoCsum)
    );
    for (opt, csum) in [
        ("--tun-nocsum", TunCsum::NoCsum),
        ("--tun-csum", TunCsum::Csum),
        ("--tun-remcsum", TunCsum::RemCsum),
    ] {
        let (_, d) = dest(&format!(
            "-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 1 {opt}"
        ));
        assert_eq!(d.tun_csum, csum, "{opt}");
    }
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gre --tun-csum");
    assert_eq!((d.tun_type, d.tun_csum), (TunType::Gre, TunCsum::Csum));
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gre --tun-nocsum");
    assert_eq!((d.tun_type, d.tun_csum), (TunType::Gre, TunCsum::NoCsum));

    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 --tun-type gue --tun-port 1"),
        "tunnel options (--tun-*) need the tunnel forwarding method (-i)"
    );
    assert!(err("-a -t 192.0.2.1:80 -r 10.0.0.2 -m --tun-csum").contains("need the tunnel"));
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gue"),
        "tunnel type gue needs --tun-port"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-port 1"),
        "--tun-port is not allowed with tunnel type ipip"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-csum"),
        "--tun-csum is not allowed with tunnel type ipip"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gre --tun-remcsum"),
        "--tun-remcsum is not allowed with tunnel type gre"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gre --tun-port 5"),
        "--tun-port is not allowed with tunnel type gre"
    );
    assert_eq!(
        err(
            "-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 1 --tun-csum --tun-remcsum"
        ),
        "--tun-csum and --tun-remcsum cannot be used together"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type vxlan"),
        "invalid tunnel type `vxlan`: one of ipip, gue, gre"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 0"),
        "invalid tunnel port `0`: must be an integer in 1..=65535"
    );
    assert_eq!(
        err("-d -t 192.0.2.1:80 -r 10.0.0.2 --tun-csum"),
        "--tun-csum is not allowed with -d (--delete-server)"
    );
}

// ---------- listing ----------

#[test]
fn list_options() {
    assert_eq!(ok("-L"), Command::List(ListOpts::default()));
    assert_eq!(ok("-l"), ok("-L"));
    assert_eq!(ok("--list"), ok("-L"));
    // No argument at all lists, as a bare ipvsadm does.
    assert_eq!(
        parse_args_with(&[] as &[&str], &Services::empty()),
        Ok(Command::List(ListOpts::default()))
    );
    let l = list("-Ln");
    assert!(l.numeric && !l.connections);
    let l = list("-Lnc");
    assert!(l.numeric && l.connections);
    let l = list("-n -L");
    assert!(l.numeric, "the command may come after its options");
    let l = list("-l -n --stats --exact --nosort --json");
    assert!(l.stats && l.exact && !l.sort && l.json);
    let l = list("-L -X --sort");
    assert!(l.exact && l.sort);
    let l = list("-L --rate --thresholds --persistent-conn --tun-info --numeric");
    assert!(l.rate && l.thresholds && l.persistent_conn && l.tun_info && l.numeric);
    let l = list("-L --connection --persistent-conn");
    assert!(l.connections && l.persistent_conn);
    let l = list("-L -t 192.0.2.1:80 --stats");
    assert_eq!(l.service, Some(tcp("192.0.2.1", 80)));
    let l = list("-L -f 9 -6 -n");
    assert_eq!(
        l.service,
        Some(SvcKey::Fwmark {
            mark: 9,
            af: Af::V6
        })
    );
    assert_eq!(ok("-L --timeout"), Command::Timeouts { json: false });
    assert_eq!(ok("-Ln --timeout --json"), Command::Timeouts { json: true });
    assert_eq!(ok("-L --daemon"), Command::Daemon { json: false });
    assert_eq!(ok("-l --daemon --json"), Command::Daemon { json: true });
}

#[test]
fn list_conflicts() {
    assert_eq!(
        err("-L -c -t 192.0.2.1:80"),
        "-c (--connection) and a virtual service (-t|-u|--sctp-service|-f) cannot be used together"
    );
    assert_eq!(
        err("-L --timeout --daemon"),
        "--timeout and --daemon cannot be used together"
    );
    assert_eq!(
        err("-L -c --stats"),
        "-c (--connection) and --stats cannot be used together"
    );
    assert_eq!(
        err("-L --timeout --rate"),
        "--timeout and --rate cannot be used together"
    );
    assert_eq!(
        err("-L --daemon --thresholds"),
        "--daemon and --thresholds cannot be used together"
    );
    assert_eq!(
        err("-L --daemon --persistent-conn"),
        "--daemon and --persistent-conn cannot be used together"
    );
    assert_eq!(
        err("-L -s rr"),
        "-s (--scheduler) is not allowed with -L (--list)"
    );
    assert_eq!(
        err("-L --syncid 3"),
        "--syncid is not allowed with -L (--list)"
    );
    assert_eq!(err("-L -L"), "option `--list` given more than once");
    assert_eq!(err("-L -l"), "option `--list` given more than once");
    assert_eq!(
        err("-A -t 192.0.2.1:80 --json"),
        "--json is not allowed with -A (--add-service)"
    );
    assert_eq!(
        err("-A -t 192.0.2.1:80 --sort"),
        "--sort is not allowed with -A (--add-service)"
    );
}

// ---------- the other commands ----------

#[test]
fn save_restore_set() {
    assert_eq!(ok("-S"), Command::Save { numeric: false });
    assert_eq!(ok("--save -n"), Command::Save { numeric: true });
    assert_eq!(ok("-Sn"), Command::Save { numeric: true });
    assert_eq!(ok("-R"), Command::Restore);
    assert_eq!(ok("--restore"), Command::Restore);
    assert_eq!(
        err("-R -n"),
        "-n (--numeric) is not allowed with -R (--restore)"
    );
    assert_eq!(err("-S --stats"), "--stats is not allowed with -S (--save)");
    assert_eq!(
        ok("--set 900 120 300"),
        Command::SetTimeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300
        }
    );
    assert_eq!(
        ok("--set 0 0 2678400"),
        Command::SetTimeouts {
            tcp: 0,
            tcpfin: 0,
            udp: MAX_TIMEOUT
        }
    );
    assert_eq!(
        err("--set 900 120"),
        "--set needs three timeout values: tcp tcpfin udp"
    );
    assert_eq!(
        err("--set"),
        "--set needs three timeout values: tcp tcpfin udp"
    );
    assert_eq!(err("--set 1 2 3 4"), "unexpected argument `4`");
    assert_eq!(
        err("--set 1 x 3"),
        "invalid tcpfin timeout `x`: must be an integer in 0..=2678400 seconds"
    );
    assert!(err("--set 1 2 2678401").starts_with("invalid udp timeout"));
    assert_eq!(
        err("--set -1 2 3"),
        "invalid argument `-1`: negative numbers are not accepted"
    );
    assert!(err("-A -t 192.0.2.1:80 -p -5").contains("negative numbers"));
    assert_eq!(
        err("--set 1 2 3 -n"),
        "-n (--numeric) is not allowed with --set"
    );
}

#[test]
fn sync_daemon() {
    let Command::StartDaemon(d) = ok("--start-daemon master") else {
        panic!()
    };
    assert_eq!(d, DaemonOpts::new(SyncState::Master));
    assert_eq!(d.mcast_iface, DEFAULT_MCAST_IFACE);
    let Command::StartDaemon(d) = ok(
        "--start-daemon backup --mcast-interface bond0 --syncid 9 --sync-maxlen 1400 \
         --mcast-group 239.1.2.3 --mcast-port 8849 --mcast-ttl 4",
    ) else {
        panic!()
    };
    assert_eq!(
        d,
        DaemonOpts {
            state: SyncState::Backup,
            mcast_iface: "bond0".into(),
            syncid: 9,
            sync_maxlen: Some(1400),
            mcast_group: Some(ip("239.1.2.3")),
            mcast_port: Some(8849),
            mcast_ttl: Some(4),
            peers: vec![],
        }
    );
    let Command::StartDaemon(d) = ok(
        "--start-daemon master --mcast-interface eth1 --sync-peer 192.0.2.11:8848 \
         --sync-peer [2001:db8::11]:8848",
    ) else {
        panic!()
    };
    assert_eq!(
        d.peers,
        ["192.0.2.11:8848", "[2001:db8::11]:8848"]
            .map(|a| a.parse::<std::net::SocketAddr>().unwrap())
    );
    assert!(err("--start-daemon master --sync-peer 192.0.2.11").starts_with("invalid sync-peer"));
    assert!(err("--start-daemon master --sync-peer 224.0.0.81:8848").contains("unicast"));
    let Command::StartDaemon(d) = ok("--start-daemon=master --mcast-group ff02::81") else {
        panic!()
    };
    assert_eq!(d.mcast_group, Some(ip("ff02::81")));
    assert_eq!(
        ok("--stop-daemon backup --syncid 3"),
        Command::StopDaemon {
            state: SyncState::Backup,
            syncid: 3
        }
    );
    assert_eq!(
        err("--start-daemon primary"),
        "invalid sync daemon state `primary`: must be master or backup"
    );
    assert!(err("--stop-daemon slave").starts_with("invalid sync daemon state"));
    assert_eq!(
        err("--start-daemon"),
        "option `--start-daemon` needs a value"
    );
    assert_eq!(
        err("--start-daemon master --syncid 256"),
        "invalid syncid `256`: must be an integer in 0..=255"
    );
    assert!(err("--start-daemon master --sync-maxlen 0").starts_with("invalid sync-maxlen"));
    assert!(err("--start-daemon master --sync-maxlen 65508").starts_with("invalid sync-maxlen"));
    assert_eq!(
        err("--start-daemon master --mcast-group 192.0.2.1"),
        "invalid mcast-group `192.0.2.1`: not a multicast address"
    );
    assert!(err("--start-daemon master --mcast-group 2001:db8::1").contains("not a multicast"));
    assert!(err("--start-daemon master --mcast-group 239.1").contains("not an IPv4 address"));
    assert!(err("--start-daemon master --mcast-port 0").starts_with("invalid mcast-port"));
    assert!(err("--start-daemon master --mcast-ttl 256").starts_with("invalid mcast-ttl"));
    assert_eq!(
        err("--start-daemon master --mcast-interface averyveryverylongname"),
        "invalid mcast-interface `averyveryverylongname`: an interface name is 1..=15 bytes"
    );
    assert_eq!(
        err("--stop-daemon master --mcast-interface eth0"),
        "--mcast-interface is not allowed with --stop-daemon"
    );
}

#[test]
fn help_version_dry_run() {
    assert_eq!(ok("-h"), Command::Help);
    assert_eq!(ok("--help"), Command::Help);
    assert_eq!(ok("-v"), Command::Version);
    assert_eq!(ok("--version"), Command::Version);
    assert_eq!(
        err("-h -n"),
        "-n (--numeric) is not allowed with -h (--help)"
    );
    assert_eq!(
        err("-v --dry-run"),
        "--dry-run is not allowed with -v (--version)"
    );
    assert_eq!(
        ok("-A -t 192.0.2.1:80 --dry-run"),
        Command::DryRun(Box::new(ok("-A -t 192.0.2.1:80")))
    );
    assert_eq!(
        ok("--dry-run -C"),
        Command::DryRun(Box::new(Command::Clear))
    );
    assert_eq!(
        ok("-L --dry-run"),
        Command::DryRun(Box::new(Command::List(ListOpts::default())))
    );
    // A dry run is checked like the real thing.
    assert!(err("--dry-run -A -t 192.0.2.1:80 -s nope").contains("unknown scheduler"));

    xvs_ctl::grammar::xvsadm_command().debug_assert();
    let help = help_text();
    for opt in [
        "--add-service",
        "--tcp-service",
        "--persistent",
        "--tun-type",
        "--mcast-group",
        "--dry-run",
        "--json",
        "--set",
        "--socket",
        "not resolved",
    ] {
        assert!(help.contains(opt), "help lacks {opt}:\n{help}");
    }
    let words: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || c == '.' || c == ',')
        .collect();
    for name in xvs_sched::NAMES {
        assert!(words.contains(name), "help lacks scheduler {name}");
    }
}

#[test]
fn command_line_errors_are_one_line() {
    assert_eq!(err("--bogus"), "unknown option `--bogus` (try --help)");
    assert_eq!(err("-Lq"), "unknown option `-q` (try --help)");
    assert_eq!(err("-Q"), "unknown option `-Q` (try --help)");
    assert_eq!(
        err("-n"),
        "no command given (one of -A -E -D -C -a -e -d -L -Z -S -R --set --start-daemon --stop-daemon -h -v)"
    );
    assert_eq!(
        err("-A -a -t 192.0.2.1:80"),
        "more than one command given: -A (--add-service) and -a (--add-server)"
    );
    assert_eq!(
        err("-L -C"),
        "more than one command given: -C (--clear) and -L (--list)"
    );
    assert_eq!(err("-C extra"), "unexpected argument `extra`");
    assert_eq!(err("-A -t 192.0.2.1:80 80"), "unexpected argument `80`");
    assert_eq!(
        err("-A -t 192.0.2.1:80 -s"),
        "option `--scheduler` needs a value"
    );
}

#[test]
fn every_parsed_command_validates() {
    for line in [
        "-A -t 192.0.2.1:80 -s sh -b sh-port -p 10 -M 255.255.0.0",
        "-a -f 1 -6 -r 10.0.0.1 -i --tun-type gue --tun-port 9 --tun-remcsum -x 3 -y 2",
        "-L -c -n",
        "--start-daemon master --mcast-group ff02::1",
        "--set 1 2 3",
    ] {
        assert_eq!(ok(line).validate(), Ok(()), "{line}");
    }
}

// ---------- health checks (xvs) ----------

#[test]
fn health_check_options() {
    use xvs_ctl::HealthCheck;
    use xvs_health::{Check, ServicePolicy, Timing};
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 --check http:path=/healthz,status=204");
    assert_eq!(
        d.check,
        Some(HealthCheck::On {
            check: Check::Http {
                port: None,
                path: "/healthz".into(),
                status: 204,
                digest: None,
                host: None,
            },
            timing: Timing::default(),
        })
    );
    let (_, d) = dest(
        "-e -t 192.0.2.1:80 -r 10.0.0.2 --check tcp:port=8080 \
         --check-timing interval=500ms,timeout=200ms,rise=1,fall=2",
    );
    let Some(HealthCheck::On { check, timing }) = d.check else {
        panic!("{:?}", d.check)
    };
    assert_eq!(check, Check::Tcp { port: Some(8080) });
    assert_eq!(
        (
            timing.interval_ms,
            timing.timeout_ms,
            timing.rise,
            timing.fall
        ),
        (500, 200, 1, 2)
    );
    let (_, d) = dest("-e -t 192.0.2.1:80 -r 10.0.0.2 -w 3");
    assert_eq!(d.check, None, "-e without --check keeps the check");
    let (_, d) = dest("-e -t 192.0.2.1:80 -r 10.0.0.2 --check none");
    assert_eq!(d.check, Some(HealthCheck::Off));
    let Command::AddService { opts, .. } =
        ok("-A -t 192.0.2.1:80 -s rr --health quorum=2,sorry=192.0.2.9:80,inhibit")
    else {
        panic!()
    };
    let p = opts.health.unwrap();
    assert_eq!(
        (p.quorum, p.sorry_server, p.inhibit_on_failure),
        (2, Some("192.0.2.9:80".parse().unwrap()), true)
    );
    assert_eq!(
        p,
        ServicePolicy::parse("quorum=2,sorry=192.0.2.9:80,inhibit").unwrap()
    );
    assert!(err("-a -t 192.0.2.1:80 -r 10.0.0.2 --check ftp").starts_with("invalid check `ftp`"));
    assert!(err("-a -t 192.0.2.1:80 -r 10.0.0.2 --check-timing rise=2").contains("needs --check"));
    assert!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 --check none --check-timing fall=1")
            .contains("not with --check none")
    );
    assert_eq!(
        err("-A -t 192.0.2.1:80 --check tcp"),
        "--check is not allowed with -A (--add-service)"
    );
    assert_eq!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 --health quorum=1"),
        "--health is not allowed with -a (--add-server)"
    );
    assert!(err("-A -t 192.0.2.1:80 --health quorum=x").starts_with("invalid health policy"));
    // Dynamic feedback.
    let (_, d) = dest("-a -t 192.0.2.1:80 -r 10.0.0.2 -w 100 --feedback port=9100,path=/load");
    assert_eq!(
        d.feedback,
        Some(Some(xvs_health::Feedback {
            port: Some(9100),
            path: "/load".into(),
            host: None
        }))
    );
    let (_, d) = dest("-e -t 192.0.2.1:80 -r 10.0.0.2 --feedback none");
    assert_eq!(d.feedback, Some(None));
    assert!(
        err("-a -t 192.0.2.1:80 -r 10.0.0.2 --feedback path=x").starts_with("invalid feedback")
    );
    // The listing of checks is a list format.
    let Command::List(l) = ok("-L -n --checks") else {
        panic!()
    };
    assert!(l.checks);
    assert!(err("-L -c --checks").contains("--checks"));
}
