//! A worker: one thread, one queue of every director interface, one UMEM
//! shared by the sockets on them; the loop that joins AF_XDP I/O to the
//! [`Pipeline`] (or to any other [`Handler`]: the benchmarks' minimal
//! forwarder runs this same loop with a handler that only rewrites MACs,
//! which measures what the I/O costs without the director's logic).
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

use crate::pipeline::{Counter, Frame as PipeFrame, Pipeline, Verdict, WorkerStats};
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

/// What a worker does with each received frame: rewrite it in place and say
/// where it goes. [`Pipeline`] is the director's handler.
pub trait Handler {
    /// Handles one frame that arrived on interface `rx_iface`, with the
    /// round's clock and snapshot.
    fn handle(
        &mut self,
        now_ms: u64,
        snap: &Snapshot,
        rx_iface: u8,
        frame: &mut PipeFrame<'_>,
    ) -> Verdict;
}

impl Handler for Pipeline {
    #[inline]
    fn handle(
        &mut self,
        now_ms: u64,
        snap: &Snapshot,
        rx_iface: u8,
        frame: &mut PipeFrame<'_>,
    ) -> Verdict {
        self.process(now_ms, snap, rx_iface, frame)
    }
}

/// One worker: its UMEM, one socket per director interface (indexed by the
/// interface number the snapshot uses), its handler (the pipeline).
#[derive(Debug)]
pub struct Worker<H = Pipeline> {
    umem: Umem,
    sockets: Vec<Socket>,
    handler: H,
    snapshot: Arc<ArcSwap<Snapshot>>,
    clock: Clock,
    cfg: WorkerConfig,
    io: Arc<IoStats>,
    rx: Vec<Frame>,
    tx: Vec<Vec<Frame>>,
}

impl Worker<Pipeline> {
    /// The pipeline's counters (verdicts, per destination).
    pub fn stats(&self) -> Arc<WorkerStats> {
        Arc::clone(self.handler.stats())
    }

    /// This worker's connection-sync queue.
    pub fn sync_tap(&self) -> Arc<crate::pipeline::SyncTap> {
        Arc::clone(self.handler.sync_tap())
    }
}

impl<H: Handler> Worker<H> {
    /// A worker over `sockets` (socket `i` on director interface `i`, all
    /// of `umem`).
    pub fn new(
        umem: Umem,
        sockets: Vec<Socket>,
        handler: H,
        snapshot: Arc<ArcSwap<Snapshot>>,
        clock: Clock,
        cfg: WorkerConfig,
    ) -> Worker<H> {
        let batch = cfg.batch.max(1);
        let tx = sockets
            .iter()
            .map(|_| Vec::with_capacity(batch * sockets.len()))
            .collect();
        Worker {
            umem,
            sockets,
            handler,
            snapshot,
            clock,
            cfg: WorkerConfig { batch, ..cfg },
            io: Arc::new(IoStats::default()),
            rx: Vec::with_capacity(batch),
            tx,
        }
    }

    /// The handler (e.g. to read its counters after [`Worker::run`]).
    pub fn handler(&self) -> &H {
        &self.handler
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
            handler,
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
            for f in rx.iter() {
                umem.prefetch(f);
            }
            let rx_iface = i as u8;
            for mut f in rx.drain(..) {
                let v = umem
                    .frame(&mut f)
                    .with_pipeline(|pf| handler.handle(now, &snap, rx_iface, pf));
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
