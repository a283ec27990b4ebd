//! Raw Ethernet traffic from a lab namespace at the highest rate the lab can
//! make: an AF_XDP TX-only socket (copy mode on veth) writing frames built by
//! a [`FrameSource`] straight into its UMEM, in batches of 64, kicked every
//! batch. On this kind of machine it reached 2.4 Mpps into a drop sink on
//! one core (docs/performance.md); `trafgen` reached half of that, and the
//! kernel has no pktgen.
//!
//! The socket needs no XDP program on either side (AF_XDP TX reaches the
//! veth peer as it is) and does not disturb the namespace's own traffic on
//! the same interface: the kernel's sockets keep working beside it.
//!
//! Frames go out exactly as built: no checksum is fixed, no padding added,
//! nothing is refused for being short or malformed (the veth peer gets
//! them as they are, up to its MTU plus the Ethernet header), which makes
//! this the tool for malformed-traffic tests as well as floods.
//!
//! A [`Generator`] runs on its own thread in the namespace until its source
//! runs out or it is stopped; [`Generator::sent`] and
//! [`Generator::completed`] count frames handed to the kernel and frames it
//! finished transmitting. Requires the `xsk` feature (it brings in
//! `xvs-dataplane` for its AF_XDP sockets).
//!
//! ```no_run
//! use xvs_lab::traffic::{Cycle, GenConfig, Generator};
//! use xvs_lab::{Mode, Topology};
//!
//! let lab = Topology::builder(Mode::Nat).real_servers(1).build()?;
//! let frame = vec![0u8; 60]; // build a real one, e.g. with etherparse
//! // Every frame of the list once, paced at 10 000 frames per second.
//! let g = Generator::start(
//!     lab.client(),
//!     GenConfig { rate: 10_000.0, ..GenConfig::default() },
//!     Cycle::once(vec![frame]),
//! )?;
//! let report = g.wait(std::time::Duration::from_secs(5))?;
//! assert_eq!(report.completed, 1);
//! # Ok::<(), xvs_lab::LabError>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xvs_dataplane::xsk::{Frame, Socket, SocketConfig, Umem, UmemConfig, XskError};

use crate::error::{LabError, Result};
use crate::netns::{Netns, NsThread};

/// Frames per TX submission (and kick).
pub const BATCH: usize = 64;

/// Where and how fast a [`Generator`] sends.
#[derive(Clone, Debug, PartialEq)]
pub struct GenConfig {
    /// Interface in the namespace (the lab's hosts have `eth0`).
    pub iface: String,
    /// Queue of the interface the socket binds to.
    pub queue: u32,
    /// Core to pin the generator's thread to; `None`: not pinned.
    pub core: Option<usize>,
    /// Frames per second; 0 (or less): as fast as it goes.
    pub rate: f64,
    /// Frames per submission (and kick), at most [`BATCH`]; paced, a batch
    /// leaves when it is due, so small batches keep bursts small.
    pub batch: usize,
}

impl Default for GenConfig {
    /// `eth0` queue 0, not pinned, full speed.
    fn default() -> Self {
        GenConfig {
            iface: "eth0".into(),
            queue: 0,
            core: None,
            rate: 0.0,
            batch: BATCH,
        }
    }
}

/// Builds the frames a [`Generator`] sends.
pub trait FrameSource: Send + 'static {
    /// Writes frame number `seq` (from 0) at the start of `buf` and returns
    /// its length, or `None` when there are no more frames. `buf` holds the
    /// bytes of an earlier frame (UMEM frames are reused): write every byte
    /// of the frame. Its length is the room of a UMEM frame (1792 bytes).
    fn frame(&mut self, seq: u64, buf: &mut [u8]) -> Option<usize>;
}

impl<F: FnMut(u64, &mut [u8]) -> Option<usize> + Send + 'static> FrameSource for F {
    fn frame(&mut self, seq: u64, buf: &mut [u8]) -> Option<usize> {
        self(seq, buf)
    }
}

/// A list of pre-built frames, sent in order: round robin for ever
/// ([`Cycle::forever`]) or once each ([`Cycle::once`]).
#[derive(Clone, Debug)]
pub struct Cycle {
    frames: Arc<Vec<Vec<u8>>>,
    once: bool,
}

impl Cycle {
    /// The frames round robin until the generator is stopped.
    pub fn forever(frames: impl Into<Arc<Vec<Vec<u8>>>>) -> Cycle {
        Cycle {
            frames: frames.into(),
            once: false,
        }
    }

    /// Each frame once, in order.
    pub fn once(frames: impl Into<Arc<Vec<Vec<u8>>>>) -> Cycle {
        Cycle {
            frames: frames.into(),
            once: true,
        }
    }
}

impl FrameSource for Cycle {
    fn frame(&mut self, seq: u64, buf: &mut [u8]) -> Option<usize> {
        let n = self.frames.len() as u64;
        if n == 0 || (self.once && seq >= n) {
            return None;
        }
        let f = &self.frames[(seq % n) as usize];
        let out = buf.get_mut(..f.len())?;
        out.copy_from_slice(f);
        Some(f.len())
    }
}

/// TCP SYNs from random spoofed sources to one IPv4 address and port: a
/// SYN flood. Source addresses are random in `src_net` (base address and
/// prefix length), source ports random from 1024, sequence numbers random;
/// IPv4 and TCP checksums valid, 60-byte frames (a 20-byte TCP header and
/// the Ethernet minimum's padding).
#[derive(Clone, Debug)]
pub struct SynFlood {
    template: [u8; 60],
    net: u32,
    host_mask: u32,
    rng: u64,
}

impl SynFlood {
    /// SYNs from `smac` to `dmac` (the director), to `dst:dport`, from
    /// random addresses of `src_net`; `seed` makes the sequence repeatable.
    pub fn new(
        smac: [u8; 6],
        dmac: [u8; 6],
        src_net: (std::net::Ipv4Addr, u8),
        dst: std::net::Ipv4Addr,
        dport: u16,
        seed: u64,
    ) -> SynFlood {
        let mut t = [0u8; 60];
        t[0..6].copy_from_slice(&dmac);
        t[6..12].copy_from_slice(&smac);
        t[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        // IPv4: 20-byte header, total length 40, DF, TTL 64, TCP.
        t[14] = 0x45;
        t[16..18].copy_from_slice(&40u16.to_be_bytes());
        t[20] = 0x40;
        t[22] = 64;
        t[23] = 6;
        t[30..34].copy_from_slice(&dst.octets());
        // TCP: data offset 5, SYN, window 64240.
        t[36..38].copy_from_slice(&dport.to_be_bytes());
        t[46] = 0x50;
        t[47] = 0x02;
        t[48..50].copy_from_slice(&64240u16.to_be_bytes());
        let prefix = u32::from(src_net.1.min(32));
        let host_mask = u32::MAX.checked_shr(prefix).unwrap_or(0);
        SynFlood {
            template: t,
            net: u32::from(src_net.0) & !host_mask,
            host_mask,
            rng: seed | 1,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl FrameSource for SynFlood {
    fn frame(&mut self, seq: u64, buf: &mut [u8]) -> Option<usize> {
        let r = self.next_u64();
        let f = buf.get_mut(..60)?;
        f.copy_from_slice(&self.template);
        let src = self.net | (r as u32 & self.host_mask);
        let sport = 1024 + ((r >> 32) as u16 % (u16::MAX - 1024));
        f[18..20].copy_from_slice(&(seq as u16).to_be_bytes());
        f[26..30].copy_from_slice(&src.to_be_bytes());
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[38..42].copy_from_slice(&((r >> 16) as u32).to_be_bytes());
        let ip = crate::client::internet_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&ip.to_be_bytes());
        // TCP checksum over the pseudo-header and the 20-byte header.
        let mut pseudo = [0u8; 32];
        pseudo[0..8].copy_from_slice(&f[26..34]);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
        pseudo[12..32].copy_from_slice(&f[34..54]);
        let tcp = crate::client::internet_checksum(&pseudo);
        f[50..52].copy_from_slice(&tcp.to_be_bytes());
        Some(60)
    }
}

/// What a generator did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenReport {
    /// Frames handed to the kernel (put on the TX ring).
    pub sent: u64,
    /// Frames the kernel finished with (completion ring): transmitted to
    /// the veth peer, which may still drop them (its queue full).
    pub completed: u64,
    /// Descriptors the kernel refused (`tx_invalid_descs`: longer than the
    /// interface allows, or bad).
    pub invalid: u64,
    /// How long it sent.
    pub elapsed: Duration,
}

impl GenReport {
    /// Completed frames per second.
    pub fn pps(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A generator thread in a namespace; stopped (and joined) on drop.
#[derive(Debug)]
pub struct Generator {
    sent: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    thread: NsThread<GenReport>,
}

impl Generator {
    /// Binds a TX-only AF_XDP socket on `cfg.iface` queue `cfg.queue` of
    /// `ns` and sends what `source` builds, from a thread of its own; returns
    /// once the socket is bound (an error here means none was sent).
    pub fn start(ns: &Netns, cfg: GenConfig, source: impl FrameSource) -> Result<Generator> {
        let sent = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let (n, d) = (Arc::clone(&sent), Arc::clone(&done));
        let core = cfg.core;
        let (iface, queue) = (cfg.iface.clone(), cfg.queue);
        let thread = NsThread::start(
            ns,
            ("xvs-lab-gen", "generator"),
            core,
            move || bind(&iface, queue),
            move |(umem, sock), stop| run(&cfg, source, (umem, sock), stop, &n, &d),
        )?;
        Ok(Generator { sent, done, thread })
    }

    /// Frames handed to the kernel so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Frames the kernel finished transmitting so far.
    pub fn completed(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Whether the thread ended (its source ran out, or it failed).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops sending and returns what it did.
    pub fn stop(self) -> Result<GenReport> {
        self.thread.stop()
    }

    /// Waits until the source runs out and every frame is completed (at
    /// most `timeout`, then stops it) and returns what it did.
    pub fn wait(self, timeout: Duration) -> Result<GenReport> {
        let deadline = Instant::now() + timeout;
        while !self.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.thread.stop()
    }
}

fn xsk_err(what: &str) -> impl FnOnce(XskError) -> LabError + '_ {
    move |e| LabError::io(what, std::io::Error::other(e))
}

/// How long a finished source waits for its last completions.
const DRAIN: Duration = Duration::from_secs(2);
/// How long binding retries while the queue is still busy.
const BIND_RETRY: Duration = Duration::from_secs(5);

/// The generator's set-up: a TX-only socket on `iface` queue `queue`.
fn bind(iface: &str, queue: u32) -> Result<(Umem, Socket)> {
    let sc = SocketConfig {
        rx_size: 64,
        fill_size: 64,
        tx_size: 2048,
        comp_size: 2048,
        ..SocketConfig::default()
    };
    // The kernel lets go of a closed socket's queue from a work item:
    // right after an earlier generator on the same queue, binding can
    // find it still busy for a while (seen on a loaded machine).
    let deadline = Instant::now() + BIND_RETRY;
    loop {
        let mut umem = Umem::new(&UmemConfig::default()).map_err(xsk_err("generator UMEM"))?;
        match Socket::new(&mut umem, iface, queue, &sc) {
            Ok(sock) => return Ok((umem, sock)),
            Err(XskError::Sys { source, .. })
                if source.kind() == std::io::ErrorKind::ResourceBusy
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(xsk_err("generator AF_XDP socket")(e)),
        }
    }
}

/// The generator thread after its set-up: sends until the source runs out
/// or it is stopped.
fn run(
    cfg: &GenConfig,
    mut source: impl FrameSource,
    (mut umem, mut sock): (Umem, Socket),
    stop: &AtomicBool,
    sent_out: &AtomicU64,
    done_out: &AtomicU64,
) -> Result<GenReport> {
    let want = cfg.batch.clamp(1, BATCH);
    let mut batch: Vec<Frame> = Vec::with_capacity(want);
    let (mut seq, mut sent, mut done) = (0u64, 0u64, 0u64);
    let mut exhausted = false;
    let start = Instant::now();
    let mut drain_until = None;
    while !stop.load(Ordering::Relaxed) {
        done += sock.complete(&mut umem) as u64;
        done_out.store(done, Ordering::Relaxed);
        if exhausted && batch.is_empty() {
            if done >= sent {
                break;
            }
            let until = *drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
            if Instant::now() > until {
                break;
            }
            // Copy-mode TX moves only on a kick.
            sock.kick().map_err(xsk_err("generator kick"))?;
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        if cfg.rate > 0.0 {
            // Paced: the next batch is due when the ones before it are.
            let due = start + Duration::from_secs_f64(sent as f64 / cfg.rate);
            while Instant::now() < due && !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
        while batch.len() < want && !exhausted {
            let Some(mut f) = umem.alloc() else { break };
            let mut view = umem.frame(&mut f);
            let room = view.tailroom() + view.len();
            let len = view
                .set_len(room)
                .ok()
                .and_then(|()| source.frame(seq, view.data_mut()));
            match len.filter(|n| *n <= room) {
                Some(n) => {
                    let _ = view.set_len(n);
                    seq += 1;
                    batch.push(f);
                }
                None => {
                    exhausted = true;
                    umem.release(f);
                }
            }
        }
        sent += sock.send(&mut batch).map_err(xsk_err("generator send"))? as u64;
        sent_out.store(sent, Ordering::Relaxed);
    }
    for f in batch.drain(..) {
        umem.release(f);
    }
    let invalid = sock.stats().map_or(0, |s| s.tx_invalid_descs);
    Ok(GenReport {
        sent,
        completed: done,
        invalid,
        elapsed: start.elapsed(),
    })
}
