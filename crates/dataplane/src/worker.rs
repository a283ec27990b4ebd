//! A worker: one thread, one queue of every director interface, one UMEM
//! shared by the sockets on them; the loop that joins AF_XDP I/O to the
//! [`Pipeline`].
//!
//! Per round, for each socket: completed TX frames go back to the free
//! list, the fill ring is topped up, up to a batch of frames is received
//! and each goes through [`Pipeline::process`] with the snapshot loaded once
//! for the round. The verdict places the frame: `Tx { iface }` on that
//! interface's socket (the UMEM is shared, so no copy), `Reply` back out of
//! the interface it came in on, `Pass` and `Drop` to the free list (AF_XDP
//! cannot hand a frame to the kernel: what the kernel should see, the XDP
//! program never redirects; the rest is counted by reason). Then every
//! socket with frames queued sends them in one call; frames the TX ring has
//! no room for are freed and counted.
//!
//! A worker shares nothing writable with the others except the connection
//! table: its counters are its own ([`WorkerStats`], [`IoStats`]), read by
//! the control thread.
//!
//! When a round finds nothing, the worker spins a little, then sleeps in
//! `poll(2)` on its sockets (up to [`WorkerConfig::idle_ms`]) unless it
//! busy-polls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::pipeline::{Counter, Pipeline, Verdict, WorkerStats};
use crate::service::Snapshot;
use crate::xsk::{Frame, Socket, Umem, XskError};

/// Milliseconds since the daemon started: the time base of the connection
/// table, shared by the workers and the control thread.
#[derive(Clone, Copy, Debug)]
pub struct Clock(Instant);

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        Clock(Instant::now())
    }

    /// Milliseconds since the clock started.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Worker loop settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Frames received per socket per round.
    pub batch: usize,
    /// Never sleep: spin on the rings (lowest latency, one core at 100%).
    pub busy_poll: bool,
    /// Empty rounds before sleeping.
    pub spin_rounds: u32,
    /// Longest sleep in `poll(2)`, milliseconds (also how soon a stop
    /// request is seen).
    pub idle_ms: i32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch: 64,
            busy_poll: false,
            spin_rounds: 256,
            idle_ms: 100,
        }
    }
}

/// A worker's I/O counters (single writer: the worker).
#[derive(Debug, Default)]
pub struct IoStats {
    /// Rounds that received at least one frame.
    pub busy_rounds: Counter,
    /// Sleeps in `poll(2)`.
    pub sleeps: Counter,
    /// Frames dropped because the TX ring was full.
    pub tx_ring_full: Counter,
    /// Frames whose verdict named an interface this worker has no socket on.
    pub tx_no_socket: Counter,
    /// I/O errors (a failed kick or wake-up).
    pub errors: Counter,
}

/// One worker: its UMEM, one socket per director interface (indexed by the
/// interface number the snapshot uses), its pipeline.
#[derive(Debug)]
pub struct Worker {
    umem: Umem,
    sockets: Vec<Socket>,
    pipeline: Pipeline,
    snapshot: Arc<ArcSwap<Snapshot>>,
    clock: Clock,
    cfg: WorkerConfig,
    io: Arc<IoStats>,
    rx: Vec<Frame>,
    tx: Vec<Vec<Frame>>,
}

impl Worker {
    /// A worker over `sockets` (socket `i` on director interface `i`, all
    /// of `umem`).
    pub fn new(
        umem: Umem,
        sockets: Vec<Socket>,
        pipeline: Pipeline,
        snapshot: Arc<ArcSwap<Snapshot>>,
        clock: Clock,
        cfg: WorkerConfig,
    ) -> Worker {
        let batch = cfg.batch.max(1);
        let tx = sockets
            .iter()
            .map(|_| Vec::with_capacity(batch * sockets.len()))
            .collect();
        Worker {
            umem,
            sockets,
            pipeline,
            snapshot,
            clock,
            cfg: WorkerConfig { batch, ..cfg },
            io: Arc::new(IoStats::default()),
            rx: Vec::with_capacity(batch),
            tx,
        }
    }

    /// The pipeline's counters (verdicts, per destination).
    pub fn stats(&self) -> Arc<WorkerStats> {
        Arc::clone(self.pipeline.stats())
    }

    /// This worker's connection-sync queue.
    pub fn sync_tap(&self) -> Arc<crate::pipeline::SyncTap> {
        Arc::clone(self.pipeline.sync_tap())
    }

    /// The I/O counters.
    pub fn io_stats(&self) -> Arc<IoStats> {
        Arc::clone(&self.io)
    }

    /// Fills every fill ring before traffic starts.
    pub fn prime(&mut self) -> Result<(), XskError> {
        for s in &mut self.sockets {
            s.refill(&mut self.umem)?;
        }
        Ok(())
    }

    /// Runs rounds until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut idle = 0u32;
        while !stop.load(Ordering::Relaxed) {
            if self.round() > 0 {
                idle = 0;
                continue;
            }
            idle = idle.saturating_add(1);
            if !self.cfg.busy_poll && idle >= self.cfg.spin_rounds {
                self.io.sleeps.add(1);
                if Socket::poll_any(&self.sockets, self.cfg.idle_ms).is_err() {
                    self.io.errors.add(1);
                }
                idle = 0;
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// One round over every socket; returns the frames received.
    pub fn round(&mut self) -> usize {
        let snap = self.snapshot.load();
        let now = self.clock.now_ms();
        let Worker {
            umem,
            sockets,
            pipeline,
            io,
            rx,
            tx,
            ..
        } = self;
        let mut got = 0;
        for (i, sock) in sockets.iter_mut().enumerate() {
            sock.complete(umem);
            if sock.refill(umem).is_err() {
                io.errors.add(1);
            }
            rx.clear();
            let n = sock.recv(rx);
            got += n;
            let rx_iface = i as u8;
            for mut f in rx.drain(..) {
                let v = umem
                    .frame(&mut f)
                    .with_pipeline(|pf| pipeline.process(now, &snap, rx_iface, pf));
                let out = match v {
                    Verdict::Tx { iface } => usize::from(iface),
                    Verdict::Reply(_) => i,
                    Verdict::Pass(_) | Verdict::Drop(_) => {
                        umem.release(f);
                        continue;
                    }
                };
                match tx.get_mut(out) {
                    Some(q) => q.push(f),
                    None => {
                        io.tx_no_socket.add(1);
                        umem.release(f);
                    }
                }
            }
        }
        for (sock, q) in sockets.iter_mut().zip(tx.iter_mut()) {
            if q.is_empty() {
                continue;
            }
            if sock.send(q).is_err() {
                io.errors.add(1);
            }
            if !q.is_empty() {
                io.tx_ring_full.add(q.len() as u64);
                for f in q.drain(..) {
                    umem.release(f);
                }
            }
        }
        if got > 0 {
            io.busy_rounds.add(1);
        }
        got
    }
}
