//! A reference director configuration: [`Command`]s applied to a
//! [`State`] with IPVS's rules and ipvsadm's error messages, batches all or
//! nothing.
//!
//! This is the semantics [`crate::proto::Request::Apply`] promises, in
//! plain data: the daemon can keep its configuration in a [`Model`] (apply
//! the batch here first, then build the data-plane snapshot from
//! [`Model::state`]), and the tests of `xvsadm` run against it. It knows
//! nothing of counters beyond zeroing them (`-Z`): the daemon fills
//! [`crate::state::Stats`] and rates in the state it reports.

use crate::cmd::{Command, SvcKey};
use crate::state::{Dest, Rates, Service, State, Stats, SyncDaemon};

/// The director's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    /// Services, timeouts and sync daemons (counters as last zeroed).
    pub state: State,
}

impl Model {
    /// An empty director.
    pub fn new() -> Model {
        Model::default()
    }

    /// Applies a batch in order, all or nothing. On error, the index of the
    /// failing command and ipvsadm's message for it; the model is
    /// unchanged. With `dry_run`, checks only.
    pub fn apply_batch(&mut self, cmds: &[Command], dry_run: bool) -> Result<(), (usize, String)> {
        let mut next = self.clone();
        for (i, c) in cmds.iter().enumerate() {
            next.apply(c).map_err(|e| (i, e))?;
        }
        if !dry_run {
            *self = next;
        }
        Ok(())
    }

    /// Applies one command. The command is assumed to have passed
    /// [`Command::validate`]; this checks what depends on the state.
    pub fn apply(&mut self, cmd: &Command) -> Result<(), String> {
        let st = &mut self.state;
        match cmd {
            Command::AddService { svc, opts } => {
                if st.service(svc).is_some() {
                    return Err("Service already exists".into());
                }
                st.services.push(Service::new(*svc, opts.clone()));
            }
            Command::EditService { svc, opts } => {
                service_mut(st, svc, "No such service")?.opts = opts.clone();
            }
            Command::DelService { svc } => {
                let before = st.services.len();
                st.services.retain(|s| s.key != *svc);
                if st.services.len() == before {
                    return Err("No such service".into());
                }
            }
            Command::Clear => st.services.clear(),
            Command::AddDest { svc, dest } => {
                let s = service_mut(st, svc, "Service not defined")?;
                if s.dests
                    .iter()
                    .any(|d| d.opts.addr == dest.addr && d.opts.port == dest.port)
                {
                    return Err("Destination already exists".into());
                }
                s.dests.push(Dest::new(dest.clone()));
            }
            Command::EditDest { svc, dest } => {
                let s = service_mut(st, svc, "Service not defined")?;
                let d = s
                    .dests
                    .iter_mut()
                    .find(|d| d.opts.addr == dest.addr && d.opts.port == dest.port)
                    .ok_or("No such destination")?;
                d.opts = dest.clone();
            }
            Command::DelDest { svc, addr, port } => {
                let s = service_mut(st, svc, "Service not defined")?;
                let before = s.dests.len();
                s.dests
                    .retain(|d| !(d.opts.addr == *addr && d.opts.port == *port));
                if s.dests.len() == before {
                    return Err("No such destination".into());
                }
            }
            Command::Zero(None) => st.services.iter_mut().for_each(zero),
            Command::Zero(Some(svc)) => zero(service_mut(st, svc, "No such service")?),
            Command::SetTimeouts { tcp, tcpfin, udp } => {
                let t = &mut st.timeouts;
                for (slot, v) in [
                    (&mut t.tcp, tcp),
                    (&mut t.tcpfin, tcpfin),
                    (&mut t.udp, udp),
                ] {
                    if *v != 0 {
                        *slot = *v;
                    }
                }
            }
            Command::StartDaemon(opts) => {
                if st.daemons.iter().any(|d| d.opts.state == opts.state) {
                    return Err("Daemon has already run".into());
                }
                st.daemons.push(SyncDaemon {
                    opts: opts.clone(),
                    counters: Default::default(),
                });
            }
            Command::StopDaemon { state, .. } => {
                let before = st.daemons.len();
                st.daemons.retain(|d| d.opts.state != *state);
                if st.daemons.len() == before {
                    return Err("No daemon is running".into());
                }
            }
            other => return Err(format!("{} does not change the director", other.option())),
        }
        Ok(())
    }
}

fn service_mut<'a>(
    st: &'a mut State,
    key: &SvcKey,
    missing: &str,
) -> Result<&'a mut Service, String> {
    st.services
        .iter_mut()
        .find(|s| s.key == *key)
        .ok_or_else(|| missing.to_owned())
}

fn zero(s: &mut Service) {
    s.stats = Stats::default();
    s.rates = Rates::default();
    for d in &mut s.dests {
        d.stats = Stats::default();
        d.rates = Rates::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_args;

    fn cmd(args: &str) -> Command {
        parse_args(&args.split_whitespace().collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn ipvsadm_errors_and_atomic_batches() {
        let mut m = Model::new();
        let add = cmd("-A -t 192.0.2.1:80");
        m.apply(&add).unwrap();
        assert_eq!(m.apply(&add).unwrap_err(), "Service already exists");
        let dest = cmd("-a -t 192.0.2.1:80 -r 10.0.0.2");
        m.apply(&dest).unwrap();
        assert_eq!(m.apply(&dest).unwrap_err(), "Destination already exists");
        assert_eq!(
            m.apply(&cmd("-a -t 192.0.2.9:80 -r 10.0.0.2")).unwrap_err(),
            "Service not defined"
        );
        assert_eq!(
            m.apply(&cmd("-e -t 192.0.2.1:80 -r 10.0.0.3")).unwrap_err(),
            "No such destination"
        );
        assert_eq!(
            m.apply(&cmd("-D -t 192.0.2.9:80")).unwrap_err(),
            "No such service"
        );
        assert_eq!(
            m.apply(&cmd("--stop-daemon master")).unwrap_err(),
            "No daemon is running"
        );
        let before = m.clone();
        let batch = [
            cmd("-C"),
            cmd("-A -u 192.0.2.1:53"),
            cmd("-D -t 192.0.2.1:80"),
        ];
        assert_eq!(
            m.apply_batch(&batch, false),
            Err((2, "No such service".into()))
        );
        assert_eq!(m, before);
        m.apply_batch(&batch[..2], true).unwrap();
        assert_eq!(m, before);
        m.apply_batch(&batch[..2], false).unwrap();
        assert_eq!(m.state.services.len(), 1);
        m.apply(&cmd("--set 0 60 0")).unwrap();
        assert_eq!(
            (
                m.state.timeouts.tcp,
                m.state.timeouts.tcpfin,
                m.state.timeouts.udp
            ),
            (900, 60, 300)
        );
    }
}
