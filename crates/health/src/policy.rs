//! What the data plane should see of a service, given its real servers'
//! health: pure, no threads, no clock.
//!
//! This is keepalived's `ipwrapper.c` logic as a function:
//!
//! - a live real server is in with its weight: the dynamic one
//!   (`misc_dynamic`, feedback) if any, else the configured one;
//! - a failed real server is removed, or kept with weight 0 under
//!   `inhibit_on_failure` (its connections drain, new ones go elsewhere);
//! - the service has **quorum** while the sum of the live servers'
//!   weights is high enough. Quorum is lost when that sum falls below
//!   `quorum - hysteresis` (or to 0), and regained when it reaches
//!   `quorum + hysteresis` (and is above 0); in between, the previous
//!   state holds. The first evaluation (no previous state) has quorum iff
//!   the sum reaches `quorum + hysteresis`, as keepalived at start;
//! - while quorum is lost, or when no live weight is left at all, the
//!   **sorry server** (if configured) takes the service alone: every real
//!   server is out (weight 0 under `inhibit_on_failure`), as keepalived
//!   replaces the pool by the sorry server. Without a sorry server, losing
//!   quorum changes nothing in the pool (keepalived only notifies).
//!
//! ```
//! use xvs_health::ServicePolicy;
//! use xvs_health::policy::{Server, evaluate};
//!
//! let policy = ServicePolicy::parse("quorum=2,sorry=192.0.2.9:80")?;
//! let servers = [
//!     Server { addr: "10.0.0.1:80".parse()?, weight: 1, up: true, dynamic_weight: None },
//!     Server { addr: "10.0.0.2:80".parse()?, weight: 1, up: false, dynamic_weight: None },
//! ];
//! let d = evaluate(&policy, &servers, Some(true));
//! assert!(!d.quorum_up);
//! assert_eq!(d.sorry, policy.sorry_server);
//! assert_eq!(d.servers, vec![(servers[0].addr, None), (servers[1].addr, None)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::SocketAddr;

use crate::spec::ServicePolicy;

/// One real server of the service, as the caller knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    /// The real server.
    pub addr: SocketAddr,
    /// Its configured weight.
    pub weight: u32,
    /// Its health (the monitor's last transition, or its initial state).
    pub up: bool,
    /// A weight from `misc_dynamic` or the feedback agent, which replaces
    /// the configured one while set.
    pub dynamic_weight: Option<u32>,
}

/// What the data plane should see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Each real server, in the order given: `Some(weight)` to keep it in
    /// (0 when inhibited), `None` to remove it.
    pub servers: Vec<(SocketAddr, Option<u32>)>,
    /// The sorry server, when it is in.
    pub sorry: Option<SocketAddr>,
    /// The quorum state to pass back as `previous` next time.
    pub quorum_up: bool,
    /// The sum of the live servers' weights.
    pub alive_weight: u64,
}

impl Server {
    /// The weight this server counts for when up.
    pub fn effective_weight(&self) -> u32 {
        self.dynamic_weight.unwrap_or(self.weight)
    }
}

/// Computes the effective set of a service (see the [module](self)
/// documentation). `previous` is the `quorum_up` of the last decision for
/// this service, `None` the first time.
pub fn evaluate(policy: &ServicePolicy, servers: &[Server], previous: Option<bool>) -> Decision {
    let alive_weight: u64 = servers
        .iter()
        .filter(|s| s.up)
        .map(|s| u64::from(s.effective_weight()))
        .sum();
    let quorum = u64::from(policy.quorum);
    let hysteresis = u64::from(policy.hysteresis);
    let gain = alive_weight > 0 && alive_weight >= quorum + hysteresis;
    let quorum_up = match previous {
        None | Some(false) => gain,
        Some(true) => alive_weight > 0 && alive_weight >= quorum.saturating_sub(hysteresis),
    };
    let sorry = policy.sorry_server.filter(|_| !quorum_up);
    let out = if policy.inhibit_on_failure {
        Some(0)
    } else {
        None
    };
    let servers = servers
        .iter()
        .map(|s| {
            let weight = match (sorry.is_some(), s.up) {
                (false, true) => Some(s.effective_weight()),
                _ => out,
            };
            (s.addr, weight)
        })
        .collect();
    Decision {
        servers,
        sorry,
        quorum_up,
        alive_weight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 80))
    }

    const SORRY: &str = "192.0.2.9:80";

    /// Servers as (weight, up, dynamic weight).
    fn servers(spec: &[(u32, bool, Option<u32>)]) -> Vec<Server> {
        spec.iter()
            .enumerate()
            .map(|(i, &(weight, up, dynamic_weight))| Server {
                addr: addr(i as u8 + 1),
                weight,
                up,
                dynamic_weight,
            })
            .collect()
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            policy: &'static str,
            servers: &'static [(u32, bool, Option<u32>)],
            previous: Option<bool>,
            weights: &'static [Option<u32>],
            sorry: bool,
            quorum_up: bool,
        }
        let cases = [
            Case {
                name: "all up, default policy",
                policy: "",
                servers: &[(1, true, None), (3, true, None)],
                previous: None,
                weights: &[Some(1), Some(3)],
                sorry: false,
                quorum_up: true,
            },
            Case {
                name: "a failed server is removed",
                policy: "",
                servers: &[(1, true, None), (3, false, None)],
                previous: Some(true),
                weights: &[Some(1), None],
                sorry: false,
                quorum_up: true,
            },
            Case {
                name: "inhibit_on_failure keeps it with weight 0",
                policy: "inhibit",
                servers: &[(1, true, None), (3, false, None)],
                previous: Some(true),
                weights: &[Some(1), Some(0)],
                sorry: false,
                quorum_up: true,
            },
            Case {
                name: "all down without a sorry server: quorum lost, pool as health says",
                policy: "",
                servers: &[(1, false, None), (3, false, None)],
                previous: Some(true),
                weights: &[None, None],
                sorry: false,
                quorum_up: false,
            },
            Case {
                name: "all down with a sorry server: the sorry server is in",
                policy: "sorry=192.0.2.9:80",
                servers: &[(1, false, None), (3, false, None)],
                previous: Some(true),
                weights: &[None, None],
                sorry: true,
                quorum_up: false,
            },
            Case {
                name: "all down, sorry server and inhibit",
                policy: "sorry=192.0.2.9:80,inhibit",
                servers: &[(1, false, None), (3, false, None)],
                previous: Some(true),
                weights: &[Some(0), Some(0)],
                sorry: true,
                quorum_up: false,
            },
            Case {
                name: "quorum lost with a sorry server: live servers are taken out too",
                policy: "quorum=3,sorry=192.0.2.9:80",
                servers: &[(1, true, None), (1, true, None), (1, false, None)],
                previous: Some(true),
                weights: &[None, None, None],
                sorry: true,
                quorum_up: false,
            },
            Case {
                name: "quorum lost with sorry and inhibit: everything at weight 0",
                policy: "quorum=3,sorry=192.0.2.9:80,inhibit",
                servers: &[(1, true, None), (1, true, None), (1, false, None)],
                previous: Some(true),
                weights: &[Some(0), Some(0), Some(0)],
                sorry: true,
                quorum_up: false,
            },
            Case {
                name: "quorum lost without a sorry server: live servers stay",
                policy: "quorum=3",
                servers: &[(1, true, None), (1, true, None), (1, false, None)],
                previous: Some(true),
                weights: &[Some(1), Some(1), None],
                sorry: false,
                quorum_up: false,
            },
            Case {
                name: "hysteresis: 2 >= 3-1 keeps quorum that was up",
                policy: "quorum=3,hysteresis=1,sorry=192.0.2.9:80",
                servers: &[(1, true, None), (1, true, None), (1, false, None)],
                previous: Some(true),
                weights: &[Some(1), Some(1), None],
                sorry: false,
                quorum_up: true,
            },
            Case {
                name: "hysteresis: 1 < 3-1 loses it",
                policy: "quorum=3,hysteresis=1,sorry=192.0.2.9:80",
                servers: &[(1, true, None), (1, false, None), (1, false, None)],
                previous: Some(true),
                weights: &[None, None, None],
                sorry: true,
                quorum_up: false,
            },
            Case {
                name: "hysteresis: 3 < 3+1 does not regain lost quorum",
                policy: "quorum=3,hysteresis=1,sorry=192.0.2.9:80",
                servers: &[(1, true, None), (1, true, None), (1, true, None)],
                previous: Some(false),
                weights: &[None, None, None],
                sorry: true,
                quorum_up: false,
            },
            Case {
                name: "hysteresis: 4 >= 3+1 regains it",
                policy: "quorum=3,hysteresis=1,sorry=192.0.2.9:80",
                servers: &[(1, true, None), (1, true, None), (2, true, None)],
                previous: Some(false),
                weights: &[Some(1), Some(1), Some(2)],
                sorry: false,
                quorum_up: true,
            },
            Case {
                name: "first evaluation needs quorum + hysteresis",
                policy: "quorum=3,hysteresis=1",
                servers: &[(3, true, None)],
                previous: None,
                weights: &[Some(3)],
                sorry: false,
                quorum_up: false,
            },
            Case {
                name: "dynamic weights replace configured ones and count for quorum",
                policy: "quorum=10,sorry=192.0.2.9:80",
                servers: &[(1, true, Some(8)), (1, true, Some(2)), (5, false, Some(9))],
                previous: Some(false),
                weights: &[Some(8), Some(2), None],
                sorry: false,
                quorum_up: true,
            },
            Case {
                name: "live servers of dynamic weight 0 are no live weight: sorry server",
                policy: "quorum=0,sorry=192.0.2.9:80",
                servers: &[(1, true, Some(0)), (1, false, None)],
                previous: Some(true),
                weights: &[None, None],
                sorry: true,
                quorum_up: false,
            },
            Case {
                name: "quorum 0 still has quorum with any live weight",
                policy: "quorum=0,hysteresis=5,sorry=192.0.2.9:80",
                servers: &[(1, true, None)],
                previous: Some(true),
                weights: &[Some(1)],
                sorry: false,
                quorum_up: true,
            },
        ];
        for c in cases {
            let policy = ServicePolicy::parse(c.policy).unwrap();
            let srv = servers(c.servers);
            let d = evaluate(&policy, &srv, c.previous);
            let want: Vec<_> = srv
                .iter()
                .map(|s| s.addr)
                .zip(c.weights.iter().copied())
                .collect();
            assert_eq!(d.servers, want, "{}", c.name);
            assert_eq!(
                d.sorry,
                c.sorry.then(|| SORRY.parse().unwrap()),
                "{}",
                c.name
            );
            assert_eq!(d.quorum_up, c.quorum_up, "{}", c.name);
        }
    }

    /// A server set that goes 3 → 2 → 1 → 2 → 3 → 4 live servers with
    /// quorum 3 and hysteresis 1 loses quorum at 1 and regains it at 4.
    #[test]
    fn hysteresis_walk() {
        let policy = ServicePolicy::parse("quorum=3,hysteresis=1,sorry=192.0.2.9:80").unwrap();
        let mut previous = None;
        let mut states = Vec::new();
        for live in [4, 3, 2, 1, 2, 3, 4, 3] {
            let srv: Vec<Server> = (0..4)
                .map(|i| Server {
                    addr: addr(i + 1),
                    weight: 1,
                    up: i < live,
                    dynamic_weight: None,
                })
                .collect();
            let d = evaluate(&policy, &srv, previous);
            previous = Some(d.quorum_up);
            states.push((live, d.quorum_up, d.sorry.is_some()));
        }
        assert_eq!(
            states,
            [
                (4, true, false),
                (3, true, false),
                (2, true, false),
                (1, false, true),
                (2, false, true),
                (3, false, true),
                (4, true, false),
                (3, true, false),
            ]
        );
    }

    #[test]
    fn no_servers() {
        let policy = ServicePolicy::parse("sorry=192.0.2.9:80").unwrap();
        let d = evaluate(&policy, &[], None);
        assert_eq!(
            (d.quorum_up, d.alive_weight, d.servers.len()),
            (false, 0, 0)
        );
        assert!(d.sorry.is_some());
    }
}
