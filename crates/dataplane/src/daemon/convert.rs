//! ipvsadm commands ([`xvs_ctl::Command`]) applied to the [`Director`], and
//! the director's configuration back as commands (for `-S` and listings).
//!
//! What the data plane cannot do yet is refused here with a one-line reason,
//! never accepted and ignored: SCTP services, one-packet scheduling (`-o`),
//! persistence engines (`--pe`), GUE/GRE tunnels.

use xvs_conntrack::{Addr, Af, Proto};
use xvs_ctl::{Command, DestOpts, HealthCheck, ServiceOpts, SvcKey, TunType};
use xvs_health::{Check, Timing};

use crate::director::{DestConf, Director, ServiceConf};
use crate::service::{Persistence, SvcAddr};

/// The director's key of a service.
pub fn svc_addr(k: &SvcKey) -> SvcAddr {
    match *k {
        SvcKey::Tuple { proto, addr, port } => SvcAddr::Tuple {
            proto,
            vaddr: Addr::from(addr),
            vport: port,
        },
        SvcKey::Fwmark { mark, af } => SvcAddr::Fwmark { mark, af },
    }
}

/// The ipvsadm key of a service.
pub fn svc_key(a: &SvcAddr) -> SvcKey {
    match *a {
        SvcAddr::Tuple {
            proto,
            vaddr,
            vport,
        } => SvcKey::Tuple {
            proto,
            addr: vaddr.to_ip(),
            port: vport,
        },
        SvcAddr::Fwmark { mark, af } => SvcKey::Fwmark { mark, af },
    }
}

/// A service's settings, or why xvs cannot run them.
pub fn service_conf(k: &SvcKey, o: &ServiceOpts) -> Result<ServiceConf, String> {
    if k.proto() == Proto::Sctp && matches!(k, SvcKey::Tuple { .. }) {
        return Err("SCTP services are not supported by xvs".into());
    }
    if o.one_packet {
        return Err("one-packet scheduling (-o) is not supported by xvs".into());
    }
    if let Some(pe) = o.pe {
        return Err(format!(
            "persistence engine {} is not supported by xvs",
            pe.name()
        ));
    }
    let full = host_prefix(k.af());
    Ok(ServiceConf {
        sched: o.scheduler.clone(),
        flags: o.sched_flags,
        persistence: o.persistence.map(|secs| Persistence {
            timeout_ms: u64::from(secs) * 1000,
            netmask: o.netmask.unwrap_or(full),
        }),
    })
}

/// The ipvsadm settings of a service.
pub fn service_opts(k: &SvcKey, c: &ServiceConf) -> ServiceOpts {
    let full = host_prefix(k.af());
    ServiceOpts {
        scheduler: c.sched.clone(),
        sched_flags: c.flags,
        persistence: c.persistence.map(|p| (p.timeout_ms / 1000) as u32),
        netmask: c.persistence.map(|p| p.netmask).filter(|m| *m != full),
        ..ServiceOpts::default()
    }
}

/// A real server's settings, or why xvs cannot run them.
pub fn dest_conf(k: &SvcKey, d: &DestOpts) -> Result<DestConf, String> {
    if d.fwd == xvs_conntrack::Fwd::Tunnel && d.tun_type != TunType::Ipip {
        return Err(format!(
            "tunnel type {} is not supported by xvs (only ipip)",
            d.tun_type.name()
        ));
    }
    if Addr::from(d.addr).af() != k.af() {
        return Err("real server and service address families differ".into());
    }
    Ok(DestConf {
        addr: Addr::from(d.addr),
        port: d.port,
        fwd: d.fwd,
        weight: d.weight,
        upper: d.upper,
        lower: d.lower,
    })
}

/// A real server's health check, as the director keeps it.
fn check(d: &DestOpts) -> Option<(Check, Timing)> {
    match &d.check {
        Some(HealthCheck::On { check, timing }) => Some((check.clone(), *timing)),
        Some(HealthCheck::Off) | None => None,
    }
}

/// The ipvsadm settings of a real server.
pub fn dest_opts(d: &DestConf) -> DestOpts {
    DestOpts {
        fwd: d.fwd,
        weight: d.weight,
        upper: d.upper,
        lower: d.lower,
        ..DestOpts::new(d.addr.to_ip(), d.port)
    }
}

/// A real server's settings as configured, its health check included.
pub fn configured_dest(d: &Director, svc: &SvcAddr, dc: &DestConf) -> DestOpts {
    DestOpts {
        check: d
            .check_of(svc, &dc.addr, dc.port)
            .map(|(c, t)| HealthCheck::On {
                check: c.clone(),
                timing: *t,
            }),
        feedback: d
            .feedback_of(svc, &dc.addr, dc.port)
            .map(|f| Some(f.clone())),
        ..dest_opts(dc)
    }
}

/// Prefix length of one host (a persistence mask that masks nothing).
fn host_prefix(af: Af) -> u8 {
    match af {
        Af::V4 => 32,
        Af::V6 => 128,
    }
}

/// What a batch of changes does besides the director: the last `--set`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SideEffects {
    /// `--set tcp tcpfin udp` (0 keeps a value).
    pub timeouts: Option<(u32, u32, u32)>,
    /// `-Z` of one service (`Some(Some(k))`) or all (`Some(None)`).
    pub zero: Option<Option<SvcKey>>,
    /// `--start-daemon` / `--stop-daemon`, in order.
    pub daemons: Vec<DaemonChange>,
}

/// A sync daemon to start or stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonChange {
    /// `--start-daemon`.
    Start(xvs_ctl::DaemonOpts),
    /// `--stop-daemon`.
    Stop(xvs_ctl::SyncState),
}

/// Applies one change command to `d`; other commands (listings, save...)
/// are not changes and are refused.
pub fn apply(d: &mut Director, cmd: &Command, fx: &mut SideEffects) -> Result<(), String> {
    let err = |e: crate::director::DirectorError| e.to_string();
    // ipvsadm's message for a real-server command on a missing service.
    let dest_err = |e: crate::director::DirectorError| match e {
        crate::director::DirectorError::NoService => "Service not defined".to_owned(),
        e => e.to_string(),
    };
    match cmd {
        Command::AddService { svc, opts } => {
            let a = svc_addr(svc);
            d.add_service(a, service_conf(svc, opts)?).map_err(err)?;
            d.set_policy(&a, opts.health.clone()).map_err(err)
        }
        Command::EditService { svc, opts } => {
            let a = svc_addr(svc);
            d.edit_service(&a, service_conf(svc, opts)?).map_err(err)?;
            // Without --health the policy stays as it was.
            match &opts.health {
                Some(p) => d.set_policy(&a, Some(p.clone())).map_err(err),
                None => Ok(()),
            }
        }
        Command::DelService { svc } => d.del_service(&svc_addr(svc)).map_err(err),
        Command::Clear => {
            d.clear();
            Ok(())
        }
        Command::AddDest { svc, dest } => {
            let a = svc_addr(svc);
            let c = dest_conf(svc, dest)?;
            d.add_dest(&a, c).map_err(dest_err)?;
            d.set_check(&a, &c.addr, c.port, check(dest))
                .map_err(dest_err)?;
            d.set_feedback(&a, &c.addr, c.port, dest.feedback.clone().flatten())
                .map_err(dest_err)
        }
        Command::EditDest { svc, dest } => {
            let a = svc_addr(svc);
            let c = dest_conf(svc, dest)?;
            d.edit_dest(&a, c).map_err(dest_err)?;
            // Without --check (--feedback) the check (endpoint) stays.
            if dest.check.is_some() {
                d.set_check(&a, &c.addr, c.port, check(dest))
                    .map_err(dest_err)?;
            }
            if let Some(f) = &dest.feedback {
                d.set_feedback(&a, &c.addr, c.port, f.clone())
                    .map_err(dest_err)?;
            }
            Ok(())
        }
        Command::DelDest { svc, addr, port } => d
            .del_dest(&svc_addr(svc), &Addr::from(*addr), *port)
            .map_err(dest_err),
        Command::SetTimeouts { tcp, tcpfin, udp } => {
            fx.timeouts = Some((*tcp, *tcpfin, *udp));
            Ok(())
        }
        Command::Zero(k) => {
            if let Some(k) = k {
                if d.service_index(&svc_addr(k)).is_none() {
                    return Err(crate::director::DirectorError::NoService.to_string());
                }
            }
            fx.zero = Some(*k);
            Ok(())
        }
        Command::DryRun(inner) => apply(d, inner, fx),
        Command::StartDaemon(o) => {
            fx.daemons.push(DaemonChange::Start(o.clone()));
            Ok(())
        }
        Command::StopDaemon { state, .. } => {
            fx.daemons.push(DaemonChange::Stop(*state));
            Ok(())
        }
        other => Err(format!("{} is not a change", other.option())),
    }
}

/// The director's configuration as the commands that rebuild it, in
/// insertion order (`-S`).
pub fn to_commands(d: &Director) -> Vec<Command> {
    let mut out = Vec::new();
    for (addr, conf, dests) in d.services() {
        let svc = svc_key(addr);
        out.push(Command::AddService {
            svc,
            opts: ServiceOpts {
                health: d.policy(addr).cloned(),
                ..service_opts(&svc, conf)
            },
        });
        for (_, dc) in dests {
            out.push(Command::AddDest {
                svc,
                dest: configured_dest(d, addr, dc),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use xvs_conntrack::DestTable;
    use xvs_ctl::{parse_restore, save_text};

    use super::*;

    #[test]
    fn restore_then_save_is_the_identity() {
        let text = "\
-A -t 192.0.2.50:80 -s rr
-a -t 192.0.2.50:80 -r 192.0.2.20:80 -g -w 1
-a -t 192.0.2.50:80 -r 192.0.2.30:80 -g -w 2 -x 100 -y 50
-A -u [2001:db8::50]:53 -s wlc -p 600 -M 64
-a -u [2001:db8::50]:53 -r [2001:db8:2::20]:5353 -m -w 1
-A -f 7 -s sh -b flag-1
-a -f 7 -r 10.0.0.20:0 -i -w 3
-A -t 192.0.2.51:443 -s wlc --health quorum=2,hysteresis=1,sorry=192.0.2.99:443,inhibit
-a -t 192.0.2.51:443 -r 192.0.2.20:443 -g -w 1 --check tcp
-a -t 192.0.2.51:443 -r 192.0.2.30:443 -g -w 1 --check 'http:port=8080,path=/healthz' --check-timing interval=2s,timeout=1s,rise=1,fall=2 --feedback port=9100,path=/load
";
        let cmds = parse_restore(text).unwrap();
        let mut d = Director::new(Arc::new(DestTable::new(16)));
        let mut fx = SideEffects::default();
        for c in &cmds {
            apply(&mut d, c, &mut fx).unwrap();
        }
        assert_eq!(save_text(&to_commands(&d), true), save_text(&cmds, true));
    }

    #[test]
    fn what_xvs_cannot_do_is_refused_with_a_reason() {
        let mut d = Director::new(Arc::new(DestTable::new(4)));
        let mut fx = SideEffects::default();
        for (line, why) in [
            ("-A --sctp-service 192.0.2.1:80", "SCTP"),
            ("-A -u 192.0.2.1:53 -o", "one-packet"),
            ("-A -u 192.0.2.1:5060 -p --pe sip", "persistence engine sip"),
        ] {
            let c = &parse_restore(line).unwrap()[0];
            let e = apply(&mut d, c, &mut fx).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
        let cmds = parse_restore(
            "-A -t 192.0.2.1:80\n-a -t 192.0.2.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080",
        )
        .unwrap();
        apply(&mut d, &cmds[0], &mut fx).unwrap();
        let e = apply(&mut d, &cmds[1], &mut fx).unwrap_err();
        assert!(e.contains("gue"), "{e}");
        assert!(apply(&mut d, &Command::Version, &mut fx).is_err());
    }
}
