//! The fourteen IPVS schedulers behind one trait.
//!
//! A scheduler chooses the real server for the first packet of a new
//! connection. Each one here mirrors the Linux kernel module of the same name
//! (`net/netfilter/ipvs/ip_vs_<name>.c`): same load formulas, same
//! tie-breaking, same hash functions and table sizes, same flags. Where this
//! crate departs from the kernel, the scheduler's documentation says so and
//! why.
//!
//! | name | kernel module | chooses |
//! |---|---|---|
//! | `rr` | `ip_vs_rr` | the next destination in list order |
//! | `wrr` | `ip_vs_wrr` | round robin in proportion to weight (gcd/max-weight passes) |
//! | `lc` | `ip_vs_lc` | least `active*256 + inactive` |
//! | `wlc` | `ip_vs_wlc` | least `(active*256 + inactive) / weight` (the default) |
//! | `sed` | `ip_vs_sed` | least `(active + 1) / weight` |
//! | `nq` | `ip_vs_nq` | an idle destination at once, else as sed |
//! | `lblc` | `ip_vs_lblc` | the destination last used for this destination address, unless overloaded |
//! | `lblcr` | `ip_vs_lblcr` | the least loaded of a replicated set per destination address |
//! | `dh` | `ip_vs_dh` | a static hash of the destination address |
//! | `sh` | `ip_vs_sh` | a static, weighted hash of the source address (and port) |
//! | `fo` | `ip_vs_fo` | the available destination of highest weight |
//! | `ovf` | `ip_vs_ovf` | the highest weight whose active connections do not exceed its weight |
//! | `mh` | `ip_vs_mh` | Maglev consistent hashing of the source address (and port) |
//! | `twos` | `ip_vs_twos` | the less loaded of two weighted random choices |
//!
//! # Contracts
//!
//! - **Who calls what.** The control plane builds a scheduler with
//!   [`by_name`] (or a type's `new`) and calls [`Scheduler::update`] with the
//!   service's destination list whenever a destination is added, removed or
//!   edited; `update` may allocate and may take its time. Workers call
//!   [`Scheduler::pick`] concurrently through `&self`, each with its own
//!   [`PickState`] for the service. `pick` never allocates, never panics,
//!   never reads a clock (time is [`PickCx::now_ms`]) and returns an index
//!   into the slice last given to `update`, or `None` when no destination
//!   may take the connection.
//! - **List order.** The slice order is the kernel's `svc->destinations`
//!   order: it decides rr/wrr order, every tie-break ("first in list
//!   order wins") and the dh/sh/mh tables. (The kernel links a new
//!   destination at the head of that list; the control plane chooses the
//!   order here and should keep it stable across updates.)
//! - **Where the numbers come from.** The weight is [`DestInfo::weight`] as
//!   given to `update`, the snapshot the tables were built from (negative
//!   weights count as 0). The connection counters, the overload flag
//!   (`-x`/`-y` thresholds, [`DestSlot::is_overloaded`]) and the
//!   availability of a destination are read live from the shared
//!   [`DestTable`] at pick time through [`DestInfo::id`].
//! - **Who may take a connection.** A destination takes new connections only
//!   with weight > 0 (weight 0 is quiescent: existing connections stay, no
//!   new ones come), when it is not overloaded and when its slot is still
//!   available (not retired). Every scheduler applies this test.
//! - **Per-worker state.** [`PickState`] carries the rr/wrr cursor and the
//!   random generator of twos. It remembers which `update` it was last used
//!   with, so after an update it restarts the way the kernel resets its
//!   marks (rr continues after the same destination, wrr restarts at the list
//!   head with its current weight adjusted like `ip_vs_wrr_dest_changed`).
//!   Round robin is therefore exact per worker, not across workers.
//! - **Shared state.** lblc and lblcr keep a table from destination address
//!   to server(s) that all workers share, behind a [`parking_lot::Mutex`]
//!   held only for a few table operations. The table is allocated once at
//!   construction, bounded, and evicts the least recently used entry rather
//!   than grow; entries expire by [`PickCx::now_ms`]. Clones made with
//!   [`Scheduler::clone_box`] share that table, so a rebuilt snapshot keeps
//!   the locality the old one learned.
//!
//! # Example
//!
//! ```
//! use xvs_conntrack::{Addr, ConnKey, DestTable, Proto};
//! use xvs_sched::{DestInfo, PickCx, PickState, SchedFlags, by_name};
//!
//! // The shared counters: one slot per real server, configured by the
//! // control plane (weight, upper and lower connection thresholds).
//! let table = DestTable::new(3);
//! let mut dests = Vec::new();
//! for (id, weight) in [(0u32, 4), (1, 3), (2, 2)] {
//!     table.configure(id, weight, 0, 0);
//!     dests.push(DestInfo { id, addr: Addr::v4([10, 0, 0, 1 + id as u8]), port: 80, weight });
//! }
//!
//! let mut wrr = by_name("wrr", SchedFlags::NONE)?;
//! wrr.update(&dests);
//!
//! // One PickState per worker and service.
//! let mut state = PickState::default();
//! let key = ConnKey {
//!     proto: Proto::Tcp,
//!     caddr: Addr::v4([192, 0, 2, 7]),
//!     cport: 40000,
//!     vaddr: Addr::v4([198, 51, 100, 1]),
//!     vport: 80,
//! };
//! let mut order = String::new();
//! for _ in 0..9 {
//!     let mut cx = PickCx { dests: &table, now_ms: 0, state: &mut state };
//!     let i = wrr.pick(&mut cx, &key).expect("a destination is available");
//!     order.push(['A', 'B', 'C'][i]);
//! }
//! assert_eq!(order, "AABABCABC");
//!
//! // Quiesce B (weight 0): it gets no new connections.
//! dests[1].weight = 0;
//! wrr.update(&dests);
//! let mut cx = PickCx { dests: &table, now_ms: 0, state: &mut state };
//! assert!((0..20).all(|_| wrr.pick(&mut cx, &key) != Some(1)));
//! # Ok::<(), xvs_sched::SchedError>(())
//! ```
//!
//! [`DestSlot::is_overloaded`]: xvs_conntrack::DestSlot::is_overloaded
#![forbid(unsafe_code)]

mod flags;
mod hash;
mod lblc;
mod lc;
mod lru;
mod mh;
mod pool;
mod rr;
mod simple;
mod twos;
mod wrr;

#[cfg(test)]
mod testutil;

use std::fmt;

use xvs_conntrack::{Addr, ConnKey, DestId, DestTable};

pub use flags::SchedFlags;
pub use hash::{Dh, Sh};
pub use lblc::{Lblc, Lblcr};
pub use lc::{Lc, Nq, Sed, Wlc};
pub use mh::Mh;
pub use rr::Rr;
pub use simple::{Fo, Ovf};
pub use twos::Twos;
pub use wrr::Wrr;

/// One destination (real server) as the scheduler sees it; immutable once
/// given to [`Scheduler::update`].
#[derive(Clone, Debug, PartialEq)]
pub struct DestInfo {
    /// Slot of the destination's live counters in the [`DestTable`].
    pub id: DestId,
    /// Real server address (mh hashes it, with the port, to place the
    /// server in its table).
    pub addr: Addr,
    /// Real server port.
    pub port: u16,
    /// Weight (`ipvsadm -w`); 0 = quiescent, negative counts as 0.
    pub weight: i32,
}

/// Per-worker, per-service mutable scheduling state: the rr/wrr cursor and
/// the twos random generator.
///
/// Each worker owns one per service and passes it in [`PickCx::state`];
/// nothing in it is shared between workers. A default value is valid for
/// any scheduler, and a state is reset by the scheduler itself when the
/// scheduler was updated since the state was last used.
#[derive(Clone, Debug, Default)]
pub struct PickState {
    /// The update this state was last used with (0: never).
    pub(crate) generation: u64,
    /// rr: index of the last chosen destination ([`pool::HEAD`]: none);
    /// wrr with a precomputed sequence: the next sequence position.
    pub(crate) cursor: usize,
    /// wrr: index of the last chosen destination (IPVS `mark->cl`).
    pub(crate) cl: usize,
    /// wrr: current weight of the pass (IPVS `mark->cw`).
    pub(crate) cw: i64,
    /// rr: the last chosen destination, to find it again after an update.
    pub(crate) last_id: Option<DestId>,
    /// twos: xorshift64* state (0: not seeded yet).
    pub(crate) rng: u64,
}

impl PickState {
    /// A fresh state (same as `Default`).
    pub fn new() -> PickState {
        PickState::default()
    }

    /// A fresh state whose random generator (used by twos) starts from
    /// `seed`, for example the worker's queue number. Without a seed, the
    /// generator is seeded from the first flow it schedules.
    pub fn with_seed(seed: u64) -> PickState {
        PickState {
            rng: pool::fmix64(seed) | 1,
            ..PickState::default()
        }
    }
}

/// What a pick may read besides the flow: the live destination counters, the
/// time, and the worker's own state.
#[derive(Debug)]
pub struct PickCx<'a> {
    /// Live counters, overload flags and availability of the destinations.
    pub dests: &'a DestTable,
    /// Current time in milliseconds on any monotonic clock (lblc/lblcr entry
    /// ages); schedulers never read a clock themselves.
    pub now_ms: u64,
    /// This worker's state for this service.
    pub state: &'a mut PickState,
}

/// A scheduling algorithm for one virtual service (the DPVS/IPVS
/// `init_service` + `update_service` + `schedule` vtable).
pub trait Scheduler: Send + Sync + fmt::Debug {
    /// The IPVS name (`"wlc"`, `"mh"`, ...).
    fn name(&self) -> &'static str;

    /// Rebuilds the scheduler's tables for a new destination list (control
    /// plane side; may allocate). State that does not depend on the list is
    /// kept: lblc/lblcr tables, and mh's placement (a Maglev table rebuilt
    /// for a slightly different list moves few slots).
    fn update(&mut self, dests: &[DestInfo]);

    /// Chooses a destination for a new connection with flow `key`: an index
    /// into the slice last given to [`Scheduler::update`], or `None` when no
    /// destination may take it. Never allocates, never panics.
    fn pick(&self, cx: &mut PickCx<'_>, key: &ConnKey) -> Option<usize>;

    /// A boxed copy (snapshots are cloned, updated and republished).
    fn clone_box(&self) -> Box<dyn Scheduler>;
}

impl Clone for Box<dyn Scheduler> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Errors of the scheduler registry and of flag parsing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// No scheduler of this name (the names are [`NAMES`]).
    #[error("unknown scheduler `{0}`")]
    UnknownScheduler(String),
    /// A scheduler flag name `ipvsadm -b` does not know.
    #[error("invalid scheduler flag `{0}`")]
    InvalidFlag(String),
    /// An `sh-*` flag for a scheduler other than sh, or `mh-*` other than mh.
    #[error("incompatible scheduler flag `{flag}` for scheduler `{sched}`")]
    IncompatibleFlag {
        /// The flag as given.
        flag: String,
        /// The scheduler it was given for.
        sched: String,
    },
    /// A Maglev table size that is not a prime within the supported range.
    #[error("Maglev table size {0} is not a prime in 2..={max}", max = Mh::MAX_TABLE_SIZE)]
    BadTableSize(usize),
}

/// Every scheduler name, in the order ipvsadm's manual lists them.
pub const NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "fo", "ovf", "mh", "twos",
];

/// The scheduler of a service created without `-s` (IPVS and ipvsadm: wlc).
pub const DEFAULT: &str = "wlc";

/// A new scheduler by IPVS name, with the service's scheduler flags (only sh
/// and mh read them; the others accept and ignore them, as the kernel does).
/// The scheduler has no destinations until [`Scheduler::update`].
pub fn by_name(name: &str, flags: SchedFlags) -> Result<Box<dyn Scheduler>, SchedError> {
    Ok(match name {
        "rr" => Box::new(Rr::new()),
        "wrr" => Box::new(Wrr::new()),
        "lc" => Box::new(Lc::new()),
        "wlc" => Box::new(Wlc::new()),
        "sed" => Box::new(Sed::new()),
        "nq" => Box::new(Nq::new()),
        "lblc" => Box::new(Lblc::new()),
        "lblcr" => Box::new(Lblcr::new()),
        "dh" => Box::new(Dh::new()),
        "sh" => Box::new(Sh::new(flags)),
        "fo" => Box::new(Fo::new()),
        "ovf" => Box::new(Ovf::new()),
        "mh" => Box::new(Mh::new(flags)),
        "twos" => Box::new(Twos::new()),
        _ => return Err(SchedError::UnknownScheduler(name.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn registry_knows_every_name() {
        for &name in NAMES {
            let s = by_name(name, SchedFlags::NONE).unwrap();
            assert_eq!(s.name(), name);
            assert_eq!(s.clone_box().name(), name);
        }
        assert!(NAMES.contains(&DEFAULT));
        assert_eq!(by_name("wlc", SchedFlags::NONE).unwrap().name(), DEFAULT);
    }

    #[test]
    fn registry_rejects_unknown_names() {
        for bad in ["", "WLC", "round-robin", "wlc ", "maglev"] {
            assert_eq!(
                by_name(bad, SchedFlags::NONE).unwrap_err(),
                SchedError::UnknownScheduler(bad.to_owned())
            );
        }
        assert_eq!(
            by_name("bogus", SchedFlags::NONE).unwrap_err().to_string(),
            "unknown scheduler `bogus`"
        );
    }

    #[test]
    fn registry_accepts_flags_for_every_scheduler() {
        let all = SchedFlags::SCHED1 | SchedFlags::SCHED2 | SchedFlags::SCHED3;
        for &name in NAMES {
            assert!(by_name(name, all).is_ok());
        }
    }

    /// Every scheduler returns `None` cleanly with no destinations, with all
    /// weights 0, with all destinations overloaded and with all slots
    /// retired; and a fresh scheduler (never updated) too.
    #[test]
    fn every_scheduler_returns_none_when_nothing_is_available() {
        for &name in NAMES {
            for flags in [SchedFlags::NONE, SchedFlags::SCHED1 | SchedFlags::SCHED2] {
                let fresh = by_name(name, flags).unwrap();
                let lab = Lab::new(&[]);
                assert_eq!(
                    lab.pick_n(fresh.as_ref(), 3),
                    vec![None; 3],
                    "{name}: fresh"
                );

                let mut s = by_name(name, flags).unwrap();
                s.update(&[]);
                assert_eq!(lab.pick_n(s.as_ref(), 3), vec![None; 3], "{name}: no dests");

                let lab = Lab::new(&[0, 0, 0, 0]);
                s.update(&lab.infos);
                assert_eq!(
                    lab.pick_n(s.as_ref(), 8),
                    vec![None; 8],
                    "{name}: all weight 0"
                );

                let lab = Lab::new(&[3, 1, 2, 5]);
                s.update(&lab.infos);
                for i in 0..4 {
                    lab.set_overloaded(i, true);
                }
                assert_eq!(
                    lab.pick_n(s.as_ref(), 8),
                    vec![None; 8],
                    "{name}: all overloaded"
                );

                let lab = Lab::new(&[3, 1, 2, 5]);
                s.update(&lab.infos);
                for i in 0..4 {
                    lab.table.retire(i as u32);
                }
                assert_eq!(
                    lab.pick_n(s.as_ref(), 8),
                    vec![None; 8],
                    "{name}: all retired"
                );
            }
        }
    }

    /// With one usable destination among unusable ones, every scheduler
    /// either picks it or (the static hashes without fallback) returns
    /// `None`; never an unusable one.
    #[test]
    fn no_scheduler_picks_an_unusable_destination() {
        for &name in NAMES {
            let mut s = by_name(name, SchedFlags::NONE).unwrap();
            let lab = Lab::new(&[5, 0, 4, 3, 2]);
            lab.set_overloaded(2, true);
            lab.table.retire(3);
            s.update(&lab.infos);
            for got in lab.pick_varied(s.as_ref(), 200) {
                assert!(
                    matches!(got, None | Some(0) | Some(4)),
                    "{name}: picked {got:?}"
                );
            }
        }
    }

    /// A state used with one scheduler and then handed to another (or to
    /// the same scheduler after updates that shrink the list) never makes a
    /// pick panic or return an out-of-range index.
    #[test]
    fn stale_state_is_harmless() {
        let big = Lab::new(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let small = Lab::new(&[2, 1]);
        for &a in NAMES {
            for &b in NAMES {
                let mut sa = by_name(a, SchedFlags::NONE).unwrap();
                let mut sb = by_name(b, SchedFlags::NONE).unwrap();
                sa.update(&big.infos);
                sb.update(&small.infos);
                let mut st = PickState::default();
                for _ in 0..7 {
                    big.pick_with(sa.as_ref(), &mut st, &key(1, 1));
                }
                for _ in 0..5 {
                    let got = small.pick_with(sb.as_ref(), &mut st, &key(2, 2));
                    assert!(got.is_some_and(|i| i < 2), "{a} -> {b}: {got:?}");
                }
                sa.update(&small.infos);
                let got = small.pick_with(sa.as_ref(), &mut st, &key(3, 3));
                assert!(got.is_some_and(|i| i < 2), "{a} shrunk: {got:?}");
            }
        }
    }
}
