//! The monitor: a scheduler thread and a pool of workers that check a set
//! of targets and report their up/down transitions to a [`Sink`].
//!
//! # Threads
//!
//! - The **scheduler** keeps a timer heap of the next check of each
//!   target and hands due checks to the workers over a channel. It sleeps
//!   until the earliest due check, a `configure`, or `stop`.
//! - The **workers** run one check at a time ([`probe`](mod@crate::probe)),
//!   apply rise/fall under the state lock, call the sink (outside the
//!   lock), then schedule the target's next check `interval` after this
//!   one ended. A target is never checked twice at once, so its
//!   transitions reach the sink in order.
//! - The pool starts with `workers` threads and grows, up to
//!   [`GROWTH`]× that (at most [`MAX_WORKERS`]), while checks wait for a
//!   free worker; threads above `workers` leave after [`IDLE_RETIRE`]
//!   without work. Each check is bounded by its own timeout, so a hung
//!   server holds one worker for at most that long, and the growth keeps
//!   a batch of hung servers from delaying the others.
//!
//! # Start times
//!
//! The first checks of the targets a `configure` adds are spread evenly
//! over their interval (the i-th of n new targets is due at
//! `i * interval / n`), so a thousand targets do not fire at once; the
//! first of them is checked at once.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use crate::health::Health;
use crate::probe;
use crate::spec::{Check, Timing};

/// The pool grows to at most this many times the `workers` given to
/// [`Monitor::start`].
pub const GROWTH: usize = 8;
/// The pool never grows past this many threads (unless `workers` is
/// larger).
pub const MAX_WORKERS: usize = 64;
/// A worker above the initial count leaves after this long without work.
pub const IDLE_RETIRE: Duration = Duration::from_secs(10);

/// Identifies one checked real server: the caller's service id and the
/// real server's address (its port is the real server's; a check may
/// override it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TargetKey {
    /// Opaque id of the virtual service, chosen by the caller.
    pub service: String,
    /// The real server.
    pub addr: SocketAddr,
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.service, self.addr)
    }
}

/// One target to monitor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Which real server of which service.
    pub key: TargetKey,
    /// How to check it.
    pub check: Check,
    /// How often, how patiently, and how many results in a row count.
    pub timing: Timing,
}

/// A target changed state (or, while up, its dynamic weight changed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The target.
    pub key: TargetKey,
    /// Its new state.
    pub up: bool,
    /// The weight a `misc_dynamic` command asked for; `None` means the
    /// configured weight (and is always `None` when down).
    pub weight: Option<u32>,
    /// The result of the check that made the change: `connect refused`,
    /// `status 500 (expected 200)`, `timeout after 3000 ms (connect)`, ...
    pub detail: String,
}

/// Receives transitions, from the monitor's worker threads.
///
/// Calls for one target come in order, one at a time; calls for different
/// targets may come concurrently. The call should be short (a channel
/// send): that target's next check waits for it. A transition can arrive
/// for a target that a concurrent [`Monitor::configure`] has just removed;
/// ignore keys you no longer know.
pub trait Sink: Send + Sync + 'static {
    /// One transition.
    fn transition(&self, t: Transition);
}

impl<F: Fn(Transition) + Send + Sync + 'static> Sink for F {
    fn transition(&self, t: Transition) {
        self(t)
    }
}

impl Sink for Sender<Transition> {
    fn transition(&self, t: Transition) {
        let _ = self.send(t);
    }
}

/// What [`Monitor::status`] reports for one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    /// The target.
    pub key: TargetKey,
    /// The check in its text form (its kind first: `tcp`, `http:...`).
    pub check: String,
    /// Current state.
    pub up: bool,
    /// The dynamic weight in force (`misc_dynamic`), if any.
    pub weight: Option<u32>,
    /// Successes in a row.
    pub consecutive_ok: u32,
    /// Failures in a row.
    pub consecutive_failed: u32,
    /// Checks passed since the target was added.
    pub total_ok: u64,
    /// Checks failed since the target was added.
    pub total_failed: u64,
    /// The detail of the last check (`not checked yet` before the first).
    pub last_detail: String,
    /// Milliseconds since the last transition, or since the target was
    /// added if it never changed.
    pub since_change_ms: u64,
}

/// Health checks of a set of targets on a pool of threads it owns.
///
/// ```
/// use std::sync::Arc;
/// use xvs_health::{Check, Monitor, Target, TargetKey, Timing, Transition};
///
/// let monitor = Monitor::start(Arc::new(|t: Transition| println!("{t:?}")), 2);
/// monitor.configure(vec![Target {
///     key: TargetKey { service: "TCP 192.0.2.1:80".into(), addr: "127.0.0.1:9".parse()? },
///     check: Check::Tcp { port: None },
///     timing: Timing::default(),
/// }]);
/// assert_eq!(monitor.status().len(), 1);
/// monitor.stop();
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub struct Monitor {
    shared: Arc<Shared>,
    scheduler: Option<JoinHandle<()>>,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("targets", &self.shared.state.lock().entries.len())
            .field("workers", &self.shared.total.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the scheduler: new or rescheduled targets, stop.
    wake: Condvar,
    /// Set by `stop`: the scheduler leaves, checks give up.
    cancel: AtomicBool,
    sink: Arc<dyn Sink>,
    base: usize,
    max: usize,
    /// Worker threads alive.
    total: AtomicUsize,
    /// Workers running a check.
    busy: AtomicUsize,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    /// Targets by id; a target gets a new id when its check or timing
    /// changes, which makes its old heap entry and running check stale.
    entries: HashMap<u64, Entry>,
    by_key: HashMap<TargetKey, u64>,
    /// Next check of each target not being checked, earliest first.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    next_id: u64,
}

struct Entry {
    target: Target,
    health: Health,
    last_detail: String,
    changed_at: Instant,
}

struct Job {
    id: u64,
    check: Check,
    addr: SocketAddr,
    timeout: Duration,
}

/// The timing with every field at least 1, as the monitor uses it.
fn sane(t: Timing) -> Timing {
    Timing {
        interval_ms: t.interval_ms.max(1),
        timeout_ms: t.timeout_ms.max(1),
        rise: t.rise.max(1),
        fall: t.fall.max(1),
        alpha: t.alpha,
    }
}

// The daemon shares one monitor between its threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Monitor>();
};

impl Monitor {
    /// Starts the scheduler and `workers` worker threads (at least 1),
    /// with no targets.
    ///
    /// # Panics
    ///
    /// If the scheduler thread cannot be spawned (as [`thread::spawn`]).
    pub fn start(sink: Arc<dyn Sink>, workers: usize) -> Monitor {
        let base = workers.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            cancel: AtomicBool::new(false),
            sink,
            base,
            max: (base * GROWTH).min(MAX_WORKERS).max(base),
            total: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            handles: Mutex::new(Vec::new()),
        });
        let (tx, rx) = channel::unbounded();
        for _ in 0..base {
            spawn_worker(&shared, &rx);
        }
        let s = Arc::clone(&shared);
        let scheduler = thread::Builder::new()
            .name("xvs-health-sched".into())
            .spawn(move || schedule(&s, &tx, &rx))
            .expect("spawning the health-check scheduler thread");
        Monitor {
            shared,
            scheduler: Some(scheduler),
        }
    }

    /// Sets the targets to monitor.
    ///
    /// - A target whose key, check and timing are all unchanged keeps its
    ///   state, counters and schedule: calling `configure` again with the
    ///   same list changes nothing.
    /// - A target whose key is gone stops being checked; a check of it in
    ///   progress is discarded.
    /// - A new key starts up (down with `alpha`), with no transition
    ///   reported for that initial state.
    /// - A key whose check or timing changed keeps its up/down state and
    ///   weight (no transition), restarts its rise/fall runs and is checked
    ///   again from now, spread like new targets.
    ///
    /// When a key appears more than once, the last one wins. Timing fields
    /// of 0 are taken as 1.
    pub fn configure(&self, targets: Vec<Target>) {
        let mut wanted: HashMap<TargetKey, usize> = HashMap::new();
        let mut order: Vec<Target> = Vec::with_capacity(targets.len());
        for mut t in targets {
            t.timing = sane(t.timing);
            match wanted.entry(t.key.clone()) {
                MapEntry::Occupied(i) => order[*i.get()] = t,
                MapEntry::Vacant(v) => {
                    v.insert(order.len());
                    order.push(t);
                }
            }
        }
        let now = Instant::now();
        let mut st = self.shared.state.lock();
        let st = &mut *st;
        st.by_key.retain(|key, id| {
            let keep = wanted.contains_key(key);
            if !keep {
                st.entries.remove(id);
            }
            keep
        });
        let mut fresh = Vec::new();
        for t in order {
            let (health, last_detail, changed_at) = match st.by_key.get(&t.key) {
                Some(id) if st.entries[id].target == t => continue,
                Some(id) => {
                    let old = st.entries.remove(id).expect("by_key and entries agree");
                    (old.health.carried(), old.last_detail, old.changed_at)
                }
                None => (
                    Health::new(t.timing.alpha),
                    "not checked yet".to_owned(),
                    now,
                ),
            };
            let id = st.next_id;
            st.next_id += 1;
            st.by_key.insert(t.key.clone(), id);
            let interval = Duration::from_millis(u64::from(t.timing.interval_ms));
            fresh.push((id, interval));
            st.entries.insert(
                id,
                Entry {
                    target: t,
                    health,
                    last_detail,
                    changed_at,
                },
            );
        }
        let n = fresh.len() as u32;
        for (i, (id, interval)) in fresh.into_iter().enumerate() {
            st.heap.push(Reverse((now + interval * i as u32 / n, id)));
        }
        // Stale heap entries (removed or replaced targets) are skipped when
        // popped; drop them now if they dominate the heap.
        if st.heap.len() > 2 * st.entries.len() + 16 {
            let entries = &st.entries;
            st.heap.retain(|Reverse((_, id))| entries.contains_key(id));
        }
        self.shared.wake.notify_all();
    }

    /// The state of every target, ordered by key.
    pub fn status(&self) -> Vec<TargetStatus> {
        let now = Instant::now();
        let st = self.shared.state.lock();
        let mut out: Vec<TargetStatus> = st
            .entries
            .values()
            .map(|e| TargetStatus {
                key: e.target.key.clone(),
                check: e.target.check.to_string(),
                up: e.health.up,
                weight: e.health.weight,
                consecutive_ok: e.health.ok_run,
                consecutive_failed: e.health.fail_run,
                total_ok: e.health.total_ok,
                total_failed: e.health.total_failed,
                last_detail: e.last_detail.clone(),
                since_change_ms: u64::try_from(
                    now.saturating_duration_since(e.changed_at).as_millis(),
                )
                .unwrap_or(u64::MAX),
            })
            .collect();
        drop(st);
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Stops checking and joins every thread. Checks in progress give up
    /// within a few tens of milliseconds (MISC commands are killed); no
    /// transition is reported once this returns. Dropping the monitor does
    /// the same.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shared.cancel.store(true, Ordering::SeqCst);
        {
            let _st = self.shared.state.lock();
            self.shared.wake.notify_all();
        }
        if let Some(h) = self.scheduler.take() {
            let _ = h.join();
        }
        // The scheduler dropped the job sender: idle workers leave at once,
        // busy ones when their check sees `cancel`.
        let handles = std::mem::take(&mut *self.shared.handles.lock());
        for h in handles {
            let _ = h.join();
        }
    }
}

fn spawn_worker(shared: &Arc<Shared>, rx: &Receiver<Job>) {
    let s = Arc::clone(shared);
    let rx = rx.clone();
    shared.total.fetch_add(1, Ordering::SeqCst);
    match thread::Builder::new()
        .name("xvs-health".into())
        .spawn(move || work(&s, &rx))
    {
        Ok(h) => {
            let mut handles = shared.handles.lock();
            handles.retain(|h| !h.is_finished());
            handles.push(h);
        }
        Err(_) => {
            // Out of threads: the pool stays as it is.
            shared.total.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The scheduler thread.
fn schedule(shared: &Arc<Shared>, tx: &Sender<Job>, rx: &Receiver<Job>) {
    let mut st = shared.state.lock();
    while !shared.cancel.load(Ordering::SeqCst) {
        let now = Instant::now();
        while let Some(&Reverse((due, id))) = st.heap.peek() {
            if due > now {
                break;
            }
            st.heap.pop();
            let Some(e) = st.entries.get(&id) else {
                continue; // removed or replaced
            };
            let job = Job {
                id,
                check: e.target.check.clone(),
                addr: e.target.key.addr,
                timeout: Duration::from_millis(u64::from(e.target.timing.timeout_ms)),
            };
            // Unbounded: never blocks, and the workers hold the receiver.
            let _ = tx.send(job);
        }
        let waiting = !tx.is_empty();
        let total = shared.total.load(Ordering::SeqCst);
        if waiting && shared.busy.load(Ordering::SeqCst) >= total && total < shared.max {
            spawn_worker(shared, rx);
        }
        let mut until = st
            .heap
            .peek()
            .map_or(now + Duration::from_secs(3600), |r| r.0.0);
        if waiting {
            // Look again soon: the pool may need to grow.
            until = until.min(now + Duration::from_millis(50));
        }
        shared.wake.wait_until(&mut st, until);
    }
}

/// A worker thread.
fn work(shared: &Arc<Shared>, rx: &Receiver<Job>) {
    loop {
        let job = match rx.recv_timeout(IDLE_RETIRE) {
            Ok(job) => job,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let total = &shared.total;
                let mut n = total.load(Ordering::SeqCst);
                let mut retired = false;
                while n > shared.base {
                    match total.compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst) {
                        Ok(_) => {
                            retired = true;
                            break;
                        }
                        Err(now) => n = now,
                    }
                }
                if retired {
                    return;
                }
                continue;
            }
        };
        shared.busy.fetch_add(1, Ordering::SeqCst);
        let outcome = probe::run(&job.check, job.addr, job.timeout, &shared.cancel);
        shared.busy.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Some(outcome) => complete(shared, job.id, outcome),
            None => break, // cancelled: the monitor is stopping
        }
    }
    shared.total.fetch_sub(1, Ordering::SeqCst);
}

/// Applies a check result to its target, reports a change, and schedules
/// the next check.
fn complete(shared: &Shared, id: u64, outcome: probe::Outcome) {
    let mut st = shared.state.lock();
    let Some(e) = st.entries.get_mut(&id) else {
        return; // removed or replaced while being checked
    };
    let timing = e.target.timing;
    let change = e
        .health
        .record(outcome.ok, outcome.weight, timing.rise, timing.fall);
    let interval = Duration::from_millis(u64::from(timing.interval_ms));
    let transition = change.map(|c| {
        e.changed_at = Instant::now();
        Transition {
            key: e.target.key.clone(),
            up: c.up,
            weight: c.weight,
            detail: outcome.detail.clone(),
        }
    });
    e.last_detail = outcome.detail;
    if let Some(t) = transition {
        // Not under the lock: the sink may call `status`. The target is
        // not in the heap yet, so its next check waits for this call.
        drop(st);
        if !shared.cancel.load(Ordering::SeqCst) {
            // A panicking sink is a bug of the caller's (the panic hook
            // has reported it); it must not stop this target's checks.
            let _ = panic::catch_unwind(AssertUnwindSafe(|| shared.sink.transition(t)));
        }
        st = shared.state.lock();
        if !st.entries.contains_key(&id) {
            return;
        }
    }
    st.heap.push(Reverse((Instant::now() + interval, id)));
    shared.wake.notify_all();
}
