//! Commands back into canonical command lines: ipvsadm-save's format.
//!
//! For `-A` and `-a` the line is what `ipvsadm -S` prints (its
//! `print_service_entry` with `FMT_RULE`):
//!
//! ```text
//! -A -t 192.0.2.1:80 -s wlc -p 300 -M 255.255.255.0 --pe sip -o -b flag-1
//! -a -t 192.0.2.1:80 -r 10.0.0.2:80 -g -w 1
//! -a -f 5 -6 -r [2001:db8::2]:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
//! ```
//!
//! with three xvs additions, so that a save loses nothing and still reads
//! back with ipvsadm: `-x`/`-y` after the weight when the thresholds are
//! not zero (ipvsadm does not save them), `-M` even without `-p` when one
//! was given, and a `--set tcp tcpfin udp` line for the timeouts (the
//! caller emits [`Command::SetTimeouts`]). Every other command gets a
//! canonical line too (`-d -t 192.0.2.1:80 -r 10.0.0.2:80`, `-L -n
//! --stats`...), and [`crate::parse_args`] reads every line back to the
//! same command.
//!
//! Host names are never printed (xvs does not resolve addresses); without
//! `numeric`, ports are printed by name where `/etc/services` has one, as
//! `ipvsadm -S` without `-n` does.

use std::net::{IpAddr, Ipv4Addr};

use xvs_conntrack::{Af, Fwd, Proto};

use crate::Services;
use xvs_health::Timing;

use crate::cmd::{Command, DestOpts, HealthCheck, ServiceOpts, SvcKey, TunType};

/// The canonical line of `cmd`, without the program name. With `numeric`
/// false, ports with a name in the system's `/etc/services` are printed by
/// name.
pub fn save_line(cmd: &Command, numeric: bool) -> String {
    save_line_with(cmd, (!numeric).then(Services::system))
}

/// [`save_line`] with port names from `names`, or numeric with `None`.
pub fn save_line_with(cmd: &Command, names: Option<&Services>) -> String {
    let mut w = Words {
        out: Vec::new(),
        names,
    };
    w.command(cmd);
    let quoted: Vec<String> = w.out.iter().map(|word| quote(word)).collect();
    quoted.join(" ")
}

/// A word as restore input reads it back: as is when it holds only
/// characters the word splitter takes literally, else in single quotes.
/// Only interface names can need it (Linux allows quotes and `#` in them).
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_.,:/@+=%[]-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The numeric canonical argv of `cmd` (no program name): what
/// [`crate::parse_args`] reads back to `cmd`.
pub fn to_args(cmd: &Command) -> Vec<String> {
    let mut w = Words {
        out: Vec::new(),
        names: None,
    };
    w.command(cmd);
    w.out
}

/// One [`save_line`] per command, each ending in a newline: restore input.
pub fn save_text<'a>(cmds: impl IntoIterator<Item = &'a Command>, numeric: bool) -> String {
    let mut text = String::new();
    for c in cmds {
        text.push_str(&save_line(c, numeric));
        text.push('\n');
    }
    text
}

struct Words<'a> {
    out: Vec<String>,
    names: Option<&'a Services>,
}

impl Words<'_> {
    fn push(&mut self, w: impl Into<String>) {
        self.out.push(w.into());
    }

    fn pair(&mut self, opt: &str, v: impl ToString) {
        self.push(opt);
        self.push(v.to_string());
    }

    fn flag(&mut self, on: bool, opt: &str) {
        if on {
            self.push(opt);
        }
    }

    fn addr_port(&self, addr: IpAddr, port: u16, proto: Proto) -> String {
        let p = self
            .names
            .and_then(|s| s.name(port, proto))
            .map_or_else(|| port.to_string(), str::to_owned);
        match addr {
            IpAddr::V4(a) => format!("{a}:{p}"),
            IpAddr::V6(a) => format!("[{a}]:{p}"),
        }
    }

    fn svc(&mut self, svc: &SvcKey) {
        match *svc {
            SvcKey::Tuple { proto, addr, port } => {
                self.push(match proto {
                    Proto::Tcp => "-t",
                    Proto::Udp => "-u",
                    Proto::Sctp => "--sctp-service",
                    // Refused by validation; ipvsadm prints the same.
                    Proto::Any => "--xxx-service",
                });
                let ap = self.addr_port(addr, port, proto);
                self.push(ap);
            }
            SvcKey::Fwmark { mark, af } => {
                self.pair("-f", mark);
                self.flag(af == Af::V6, "-6");
            }
        }
    }

    fn service(&mut self, cmd: &str, svc: &SvcKey, o: &ServiceOpts) {
        self.push(cmd);
        self.svc(svc);
        self.pair("-s", &o.scheduler);
        if let Some(t) = o.persistence {
            self.pair("-p", t);
        }
        if let Some(bits) = o.netmask {
            match svc.af() {
                Af::V4 => {
                    let m = u32::MAX
                        .checked_shl(32 - u32::from(bits.min(32)))
                        .unwrap_or(0);
                    self.pair("-M", Ipv4Addr::from(m));
                }
                Af::V6 => self.pair("-M", bits),
            }
        }
        if let Some(pe) = o.pe {
            self.pair("--pe", pe.name());
        }
        self.flag(o.one_packet, "-o");
        if !o.sched_flags.is_empty() {
            self.pair("-b", o.sched_flags.display_for(&o.scheduler));
        }
        if let Some(h) = &o.health {
            self.pair("--health", h);
        }
    }

    fn dest(&mut self, cmd: &str, svc: &SvcKey, d: &DestOpts) {
        self.push(cmd);
        self.svc(svc);
        let r = self.addr_port(d.addr, d.port, svc.proto());
        self.pair("-r", r);
        self.push(match d.fwd {
            Fwd::Masq => "-m",
            Fwd::Tunnel => "-i",
            Fwd::Route => "-g",
        });
        self.pair("-w", d.weight);
        if d.fwd == Fwd::Tunnel {
            self.pair("--tun-type", d.tun_type.name());
            match d.tun_type {
                TunType::Ipip => {}
                TunType::Gue { port } => {
                    self.pair("--tun-port", port);
                    self.push(d.tun_csum.option());
                }
                TunType::Gre => self.push(d.tun_csum.option()),
            }
        }
        if d.upper != 0 {
            self.pair("-x", d.upper);
        }
        if d.lower != 0 {
            self.pair("-y", d.lower);
        }
        match &d.check {
            None => {}
            Some(HealthCheck::Off) => self.pair("--check", "none"),
            Some(HealthCheck::On { check, timing }) => {
                self.pair("--check", check);
                if *timing != Timing::default() {
                    self.pair("--check-timing", timing);
                }
            }
        }
        match &d.feedback {
            None => {}
            Some(None) => self.pair("--feedback", "none"),
            Some(Some(f)) => self.pair("--feedback", f),
        }
    }

    fn command(&mut self, cmd: &Command) {
        match cmd {
            Command::AddService { svc, opts } => self.service("-A", svc, opts),
            Command::EditService { svc, opts } => self.service("-E", svc, opts),
            Command::DelService { svc } => {
                self.push("-D");
                self.svc(svc);
            }
            Command::Clear => self.push("-C"),
            Command::AddDest { svc, dest } => self.dest("-a", svc, dest),
            Command::EditDest { svc, dest } => self.dest("-e", svc, dest),
            Command::DelDest { svc, addr, port } => {
                self.push("-d");
                self.svc(svc);
                let r = self.addr_port(*addr, *port, svc.proto());
                self.pair("-r", r);
            }
            Command::Zero(svc) => {
                self.push("-Z");
                if let Some(svc) = svc {
                    self.svc(svc);
                }
            }
            Command::SetTimeouts { tcp, tcpfin, udp } => {
                self.push("--set");
                for v in [tcp, tcpfin, udp] {
                    self.push(v.to_string());
                }
            }
            Command::List(l) => {
                self.push("-L");
                if let Some(svc) = &l.service {
                    self.svc(svc);
                }
                self.flag(l.connections, "-c");
                self.flag(l.numeric, "-n");
                self.flag(l.stats, "--stats");
                self.flag(l.rate, "--rate");
                self.flag(l.exact, "--exact");
                self.flag(l.thresholds, "--thresholds");
                self.flag(l.persistent_conn, "--persistent-conn");
                self.flag(l.tun_info, "--tun-info");
                self.flag(!l.sort, "--nosort");
                self.flag(l.json, "--json");
                self.flag(l.checks, "--checks");
            }
            Command::Timeouts { json } => {
                self.push("-L");
                self.push("--timeout");
                self.flag(*json, "--json");
            }
            Command::Daemon { json } => {
                self.push("-L");
                self.push("--daemon");
                self.flag(*json, "--json");
            }
            Command::Save { numeric } => {
                self.push("-S");
                self.flag(*numeric, "-n");
            }
            Command::Restore => self.push("-R"),
            Command::StartDaemon(d) => {
                self.pair("--start-daemon", d.state.name());
                self.pair("--mcast-interface", &d.mcast_iface);
                if d.syncid != 0 {
                    self.pair("--syncid", d.syncid);
                }
                if let Some(n) = d.sync_maxlen {
                    self.pair("--sync-maxlen", n);
                }
                if let Some(g) = d.mcast_group {
                    self.pair("--mcast-group", g);
                }
                if let Some(p) = d.mcast_port {
                    self.pair("--mcast-port", p);
                }
                if let Some(t) = d.mcast_ttl {
                    self.pair("--mcast-ttl", t);
                }
                for p in &d.peers {
                    self.pair("--sync-peer", p);
                }
            }
            Command::StopDaemon { state, syncid } => {
                self.pair("--stop-daemon", state.name());
                if *syncid != 0 {
                    self.pair("--syncid", syncid);
                }
            }
            Command::Version => self.push("-v"),
            Command::Help => self.push("-h"),
            Command::DryRun(inner) => {
                self.command(inner);
                self.push("--dry-run");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{DaemonOpts, ListOpts, Pe, SyncState, TunCsum};
    use crate::parse_args_with;
    use xvs_sched::SchedFlags;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn web() -> SvcKey {
        SvcKey::Tuple {
            proto: Proto::Tcp,
            addr: ip("192.0.2.1"),
            port: 80,
        }
    }

    fn add(svc: SvcKey, f: impl FnOnce(&mut ServiceOpts)) -> Command {
        let mut opts = ServiceOpts::default();
        f(&mut opts);
        Command::AddService { svc, opts }
    }

    fn add_dest(svc: SvcKey, addr: &str, port: u16, f: impl FnOnce(&mut DestOpts)) -> Command {
        let mut dest = DestOpts::new(ip(addr), port);
        f(&mut dest);
        Command::AddDest { svc, dest }
    }

    /// The lines `ipvsadm -S -n` prints for the same table.
    #[test]
    fn service_lines_as_ipvsadm_save() {
        let cases = [
            (
                add(web(), |o| o.scheduler = "rr".into()),
                "-A -t 192.0.2.1:80 -s rr",
            ),
            (add(web(), |_| {}), "-A -t 192.0.2.1:80 -s wlc"),
            (
                add(web(), |o| o.persistence = Some(300)),
                "-A -t 192.0.2.1:80 -s wlc -p 300",
            ),
            (
                add(web(), |o| {
                    o.persistence = Some(1800);
                    o.netmask = Some(24);
                }),
                "-A -t 192.0.2.1:80 -s wlc -p 1800 -M 255.255.255.0",
            ),
            (
                add(web(), |o| {
                    o.persistence = Some(60);
                    o.netmask = Some(0);
                }),
                "-A -t 192.0.2.1:80 -s wlc -p 60 -M 0.0.0.0",
            ),
            (
                add(
                    SvcKey::Tuple {
                        proto: Proto::Udp,
                        addr: ip("2001:db8::1"),
                        port: 5060,
                    },
                    |o| {
                        o.scheduler = "sh".into();
                        o.persistence = Some(60);
                        o.netmask = Some(64);
                        o.pe = Some(Pe::Sip);
                        o.one_packet = true;
                        o.sched_flags = SchedFlags::SH_FALLBACK | SchedFlags::SH_PORT;
                    },
                ),
                "-A -u [2001:db8::1]:5060 -s sh -p 60 -M 64 --pe sip -o -b sh-fallback,sh-port",
            ),
            (
                add(
                    SvcKey::Tuple {
                        proto: Proto::Sctp,
                        addr: ip("192.0.2.1"),
                        port: 0,
                    },
                    |o| o.persistence = Some(300),
                ),
                "-A --sctp-service 192.0.2.1:0 -s wlc -p 300",
            ),
            (
                add(
                    SvcKey::Fwmark {
                        mark: 5,
                        af: Af::V4,
                    },
                    |o| {
                        o.sched_flags = SchedFlags::SCHED1 | SchedFlags::SCHED3;
                    },
                ),
                "-A -f 5 -s wlc -b flag-1,flag-3",
            ),
            (
                add(
                    SvcKey::Fwmark {
                        mark: 5,
                        af: Af::V6,
                    },
                    |o| o.scheduler = "mh".into(),
                ),
                "-A -f 5 -6 -s mh",
            ),
        ];
        for (cmd, line) in cases {
            assert_eq!(save_line(&cmd, true), line);
            assert_eq!(cmd.to_string(), line);
        }
    }

    #[test]
    fn server_lines_as_ipvsadm_save() {
        let fw6 = SvcKey::Fwmark {
            mark: 5,
            af: Af::V6,
        };
        let cases = [
            (
                add_dest(web(), "10.0.0.2", 80, |_| {}),
                "-a -t 192.0.2.1:80 -r 10.0.0.2:80 -g -w 1",
            ),
            (
                add_dest(web(), "10.0.0.2", 8080, |d| {
                    d.fwd = Fwd::Masq;
                    d.weight = 3;
                }),
                "-a -t 192.0.2.1:80 -r 10.0.0.2:8080 -m -w 3",
            ),
            (
                add_dest(web(), "10.0.0.2", 80, |d| {
                    d.fwd = Fwd::Tunnel;
                    d.weight = 0;
                }),
                "-a -t 192.0.2.1:80 -r 10.0.0.2:80 -i -w 0 --tun-type ipip",
            ),
            (
                add_dest(fw6, "2001:db8::2", 0, |d| {
                    d.fwd = Fwd::Tunnel;
                    d.tun_type = TunType::Gue { port: 6080 };
                }),
                "-a -f 5 -6 -r [2001:db8::2]:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
            ),
            (
                add_dest(web(), "10.0.0.2", 80, |d| {
                    d.fwd = Fwd::Tunnel;
                    d.tun_type = TunType::Gre;
                    d.tun_csum = TunCsum::Csum;
                }),
                "-a -t 192.0.2.1:80 -r 10.0.0.2:80 -i -w 1 --tun-type gre --tun-csum",
            ),
            // xvs: thresholds are saved too, after what ipvsadm prints.
            (
                add_dest(web(), "10.0.0.2", 80, |d| {
                    d.upper = 100;
                    d.lower = 10;
                }),
                "-a -t 192.0.2.1:80 -r 10.0.0.2:80 -g -w 1 -x 100 -y 10",
            ),
            (
                Command::SetTimeouts {
                    tcp: 900,
                    tcpfin: 120,
                    udp: 300,
                },
                "--set 900 120 300",
            ),
        ];
        for (cmd, line) in cases {
            assert_eq!(save_line(&cmd, true), line);
        }
    }

    #[test]
    fn other_commands_have_canonical_lines() {
        let mut l = ListOpts {
            numeric: true,
            stats: true,
            sort: false,
            ..ListOpts::default()
        };
        l.service = Some(web());
        let mut d = DaemonOpts::new(SyncState::Backup);
        d.syncid = 4;
        d.mcast_group = Some(ip("ff02::81"));
        let cases = [
            (Command::DelService { svc: web() }, "-D -t 192.0.2.1:80"),
            (Command::Clear, "-C"),
            (
                Command::DelDest {
                    svc: web(),
                    addr: ip("10.0.0.2"),
                    port: 80,
                },
                "-d -t 192.0.2.1:80 -r 10.0.0.2:80",
            ),
            (Command::Zero(None), "-Z"),
            (Command::Zero(Some(web())), "-Z -t 192.0.2.1:80"),
            (Command::List(l), "-L -t 192.0.2.1:80 -n --stats --nosort"),
            (Command::Timeouts { json: true }, "-L --timeout --json"),
            (Command::Daemon { json: false }, "-L --daemon"),
            (Command::Save { numeric: true }, "-S -n"),
            (Command::Restore, "-R"),
            (
                Command::StartDaemon(d),
                "--start-daemon backup --mcast-interface eth0 --syncid 4 --mcast-group ff02::81",
            ),
            (
                Command::StopDaemon {
                    state: SyncState::Master,
                    syncid: 0,
                },
                "--stop-daemon master",
            ),
            (Command::Version, "-v"),
            (Command::Help, "-h"),
            (Command::DryRun(Box::new(Command::Clear)), "-C --dry-run"),
        ];
        for (cmd, line) in cases {
            assert_eq!(save_line(&cmd, true), line);
            let words: Vec<&str> = line.split(' ').collect();
            assert_eq!(
                parse_args_with(&words, &Services::empty()),
                Ok(cmd),
                "{line}"
            );
        }
    }

    #[test]
    fn names_for_ports_unless_numeric() {
        let names = Services::parse("http 80/tcp\ndomain 53/udp\n");
        let cmd = add_dest(web(), "10.0.0.2", 80, |_| {});
        assert_eq!(
            save_line_with(&cmd, Some(&names)),
            "-a -t 192.0.2.1:http -r 10.0.0.2:http -g -w 1"
        );
        assert_eq!(
            save_line_with(&cmd, None),
            "-a -t 192.0.2.1:80 -r 10.0.0.2:80 -g -w 1"
        );
        // Names are looked up under the service's protocol.
        let dns = SvcKey::Tuple {
            proto: Proto::Udp,
            addr: ip("192.0.2.1"),
            port: 80,
        };
        assert_eq!(
            save_line_with(&Command::DelService { svc: dns }, Some(&names)),
            "-D -u 192.0.2.1:80"
        );
        let text = save_text([&cmd, &Command::Clear], true);
        assert_eq!(text, "-a -t 192.0.2.1:80 -r 10.0.0.2:80 -g -w 1\n-C\n");
        assert_eq!(to_args(&Command::Clear), ["-C"]);
    }

    #[test]
    fn odd_interface_names_are_quoted() {
        for name in ["it's", "#x", "a\"b", "a$b", "a\\b"] {
            let mut d = DaemonOpts::new(SyncState::Master);
            d.mcast_iface = name.into();
            let cmd = Command::StartDaemon(d);
            assert_eq!(cmd.validate(), Ok(()));
            let line = save_line(&cmd, true);
            assert_eq!(
                crate::parse_restore_with(&line, &Services::empty()),
                Ok(vec![cmd.clone()]),
                "{line}"
            );
            assert_eq!(to_args(&cmd)[3], name, "argv words are not quoted");
        }
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("[2001:db8::1]:80"), "[2001:db8::1]:80");
    }
}
