//! Health checks in the daemon: the checks configured with the real
//! servers (`--check`) run on `xvs-health`'s monitor threads, off the data
//! plane; their transitions come back through a channel, and on the control
//! thread each service's policy (`--health`: inhibit or remove, quorum,
//! sorry server; keepalived's rules, `xvs_health::policy`) turns them into
//! what the data plane sees ([`Director::set_mark`], [`Director::set_sorry`]).
//!
//! Real servers with a load endpoint (`--feedback`) are polled by
//! `xvs-health`'s feedback agent (the LVS paper's dynamic-feedback load
//! balancing): the weight it computes replaces the configured one in the
//! policy, as a MISC check's dynamic weight does.
//!
//! The configuration (`-S`) never changes: a failed real server is marked,
//! not deleted, so it comes back by itself, and `xvsadm -L` shows what is
//! in force (removed servers left out, inhibited ones at weight 0, the
//! sorry server while it serves).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender, unbounded};
use xvs_conntrack::{Addr, Fwd};
use xvs_health::feedback::{FeedbackAgent, FeedbackConfig, FeedbackTarget, WeightChange};
use xvs_health::policy::{Server, evaluate};
use xvs_health::{Monitor, ServicePolicy, Target, TargetKey, TargetStatus, Transition};

use super::convert;
use crate::director::{DestConf, Director, HealthMark};
use crate::service::SvcAddr;

/// Threads of the check pool (checks mostly wait on the network).
const CHECK_THREADS: usize = 4;

/// A target's last known health.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Known {
    up: bool,
    weight: Option<u32>,
}

/// The daemon's side of health checking.
#[derive(Debug)]
pub struct Health {
    monitor: Option<Monitor>,
    tx: Sender<Transition>,
    rx: Receiver<Transition>,
    /// Targets the monitor runs now.
    targets: Vec<Target>,
    /// Health by target, from transitions (absent: the initial state).
    known: HashMap<TargetKey, Known>,
    /// Quorum state by service.
    quorum: HashMap<SvcAddr, bool>,
    /// The dynamic-feedback agent, while some real server has a load
    /// endpoint, its channel and the weights it set.
    agent: Option<FeedbackAgent>,
    wtx: Sender<WeightChange>,
    wrx: Receiver<WeightChange>,
    feedback: Vec<FeedbackTarget>,
    fed: HashMap<TargetKey, u32>,
}

impl Default for Health {
    fn default() -> Self {
        let (tx, rx) = unbounded();
        let (wtx, wrx) = unbounded();
        Health {
            monitor: None,
            tx,
            rx,
            targets: Vec::new(),
            known: HashMap::new(),
            quorum: HashMap::new(),
            agent: None,
            wtx,
            wrx,
            feedback: Vec::new(),
            fed: HashMap::new(),
        }
    }
}

/// The monitor's id of a service: its ipvsadm key (`TCP 192.0.2.1:80`).
fn service_id(a: &SvcAddr) -> String {
    convert::svc_key(a).to_string()
}

fn socket(addr: &Addr, port: u16) -> SocketAddr {
    SocketAddr::new(addr.to_ip(), port)
}

impl Health {
    /// Makes the monitor run exactly the configured checks (started on the
    /// first, stopped after the last); unchanged targets keep their state.
    pub fn configure(&mut self, d: &Director) {
        self.configure_feedback(d);
        let targets: Vec<Target> = d
            .checks()
            .map(|(svc, addr, port, check, timing)| Target {
                key: TargetKey {
                    service: service_id(svc),
                    addr: socket(addr, port),
                },
                check: check.clone(),
                timing: *timing,
            })
            .collect();
        if targets == self.targets {
            return;
        }
        self.known
            .retain(|k, _| targets.iter().any(|t| t.key == *k));
        if targets.is_empty() {
            if let Some(m) = self.monitor.take() {
                m.stop();
            }
        } else {
            let tx = self.tx.clone();
            self.monitor
                .get_or_insert_with(|| Monitor::start(Arc::new(tx), CHECK_THREADS))
                .configure(targets.clone());
        }
        self.targets = targets;
    }

    /// Makes the feedback agent poll exactly the configured load endpoints
    /// (started on the first, stopped after the last).
    fn configure_feedback(&mut self, d: &Director) {
        let targets: Vec<FeedbackTarget> = d
            .feedbacks()
            .map(|(svc, c, f)| FeedbackTarget {
                key: TargetKey {
                    service: service_id(svc),
                    addr: socket(&c.addr, c.port),
                },
                weight: c.weight.max(0) as u32,
                port: f.port,
                path: f.path.clone(),
                host: f.host.clone(),
            })
            .collect();
        if targets == self.feedback {
            return;
        }
        self.fed.retain(|k, _| targets.iter().any(|t| t.key == *k));
        if targets.is_empty() {
            if let Some(a) = self.agent.take() {
                a.stop();
            }
        } else {
            if self.agent.is_none() {
                let sink = Arc::new(self.wtx.clone());
                match FeedbackAgent::start(sink, FeedbackConfig::default()) {
                    Ok(a) => self.agent = Some(a),
                    Err(e) => eprintln!("xvsd: feedback agent: {e}"),
                }
            }
            if let Some(a) = &self.agent {
                a.configure(targets.clone());
            }
        }
        self.feedback = targets;
    }

    /// Takes the transitions that came in and applies every service's
    /// policy to `d`. Returns whether what the data plane sees changed.
    pub fn update(&mut self, d: &mut Director) -> bool {
        for t in self.rx.try_iter() {
            if self.targets.iter().any(|x| x.key == t.key) {
                if !t.up {
                    eprintln!("xvsd: health: {} down: {}", t.key, t.detail);
                } else {
                    eprintln!("xvsd: health: {} up: {}", t.key, t.detail);
                }
                self.known.insert(
                    t.key,
                    Known {
                        up: t.up,
                        weight: t.weight,
                    },
                );
            }
        }
        for c in self.wrx.try_iter() {
            if self.feedback.iter().any(|t| t.key == c.key) {
                eprintln!(
                    "xvsd: feedback: {} weight {}: {}",
                    c.key, c.weight, c.detail
                );
                self.fed.insert(c.key, c.weight);
            }
        }
        let mut changed = false;
        let services: Vec<(SvcAddr, Option<ServicePolicy>, Vec<DestConf>)> = d
            .services()
            .map(|(a, _, ds)| {
                (
                    *a,
                    d.policy(a).cloned(),
                    ds.iter().map(|(_, c)| *c).collect(),
                )
            })
            .collect();
        self.quorum
            .retain(|a, _| services.iter().any(|(s, _, _)| s == a));
        for (svc, policy, dests) in services {
            let checked = dests.iter().any(|c| {
                d.check_of(&svc, &c.addr, c.port).is_some()
                    || d.feedback_of(&svc, &c.addr, c.port).is_some()
            });
            if policy.is_none() && !checked {
                // Nothing to do for this service; undo what a removed
                // check left behind.
                for c in &dests {
                    changed |= d.set_mark(&svc, &c.addr, c.port, None).unwrap_or(false);
                }
                changed |= d.set_sorry(&svc, None).unwrap_or(false);
                continue;
            }
            let id = service_id(&svc);
            let servers: Vec<Server> = dests
                .iter()
                .map(|c| {
                    let key = TargetKey {
                        service: id.clone(),
                        addr: socket(&c.addr, c.port),
                    };
                    let initial = d
                        .check_of(&svc, &c.addr, c.port)
                        .is_none_or(|(_, t)| !t.alpha);
                    let k = self.known.get(&key);
                    Server {
                        addr: key.addr,
                        weight: c.weight.max(0) as u32,
                        up: k.map_or(initial, |k| k.up),
                        // A MISC check's weight first, then the agent's.
                        dynamic_weight: k
                            .and_then(|k| k.weight)
                            .or_else(|| self.fed.get(&key).copied()),
                    }
                })
                .collect();
            let policy = policy.unwrap_or_default();
            let decision = evaluate(&policy, &servers, self.quorum.get(&svc).copied());
            if self.quorum.get(&svc) != Some(&decision.quorum_up) {
                if self.quorum.contains_key(&svc) || !decision.quorum_up {
                    eprintln!(
                        "xvsd: health: {id}: quorum {} (live weight {})",
                        if decision.quorum_up { "up" } else { "lost" },
                        decision.alive_weight
                    );
                }
                self.quorum.insert(svc, decision.quorum_up);
            }
            for (c, (_, w)) in dests.iter().zip(&decision.servers) {
                let mark = match w {
                    None => Some(HealthMark::Removed),
                    Some(w) if i64::from(*w) == i64::from(c.weight) => None,
                    Some(w) => Some(HealthMark::Weight((*w).min(65535) as i32)),
                };
                changed |= d.set_mark(&svc, &c.addr, c.port, mark).unwrap_or(false);
            }
            let sorry = decision.sorry.map(|sa| DestConf {
                addr: Addr::from(sa.ip()),
                port: sa.port(),
                // As keepalived: the sorry server is forwarded to like the
                // service's real servers.
                fwd: dests.first().map_or(Fwd::Route, |c| c.fwd),
                weight: 1,
                upper: 0,
                lower: 0,
            });
            match d.set_sorry(&svc, sorry) {
                Ok(c) => changed |= c,
                Err(e) => eprintln!("xvsd: health: {id}: sorry server: {e}"),
            }
        }
        changed
    }

    /// The monitor's view of every target (`xvsadm -L --checks`).
    pub fn status(&self) -> Vec<TargetStatus> {
        self.monitor.as_ref().map_or_else(Vec::new, Monitor::status)
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        if let Some(m) = self.monitor.take() {
            m.stop();
        }
        if let Some(a) = self.agent.take() {
            a.stop();
        }
    }
}
