//! The I/O floor: a minimal AF_XDP forwarder for the benchmarks.
//!
//! It is xvsd without the director: the same XDP steering program (a VIP in
//! its map), the same AF_XDP sockets with xvsd's default rings and UMEM, the
//! same worker loop ([`xvs_dataplane::worker::Worker`]: completions, fill,
//! receive a batch, transmit in one call), but a handler that only writes
//! the Ethernet addresses (the next hop's, picked by the UDP/TCP source port
//! among `next_hops`, and the interface's own) and sends the frame back out
//! of the interface it came in on, as DR does. What xvsd forwards less than
//! this is what the director's logic costs; what this forwards less than the
//! generator offers is what AF_XDP on the interface costs.
//!
//! The forwarder runs on a thread of this process inside the namespace
//! (pinned to `core` when given) until [`Floor::stop`] or drop. Requires the
//! `xsk` feature.
//!
//! ```no_run
//! use xvs_dataplane::xdp::SteerKey;
//! use xvs_conntrack::{Addr, Proto};
//! use xvs_lab::floor::{Floor, FloorConfig};
//! use xvs_lab::{Family, Mode, Topology};
//!
//! let lab = Topology::builder(Mode::Dr).real_servers(2).build()?;
//! let cfg = FloorConfig {
//!     steer: vec![SteerKey::new(Proto::Udp, Addr::from(lab.vip(Family::V4)), 9)],
//!     next_hops: lab.real_servers().iter().map(|rs| rs.mac().octets()).collect(),
//!     ..FloorConfig::default()
//! };
//! let floor = Floor::start(lab.director(), cfg)?;
//! // ... traffic ...
//! let report = floor.stop()?;
//! println!("forwarded {}", report.forwarded);
//! # Ok::<(), xvs_lab::LabError>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use xvs_dataplane::daemon::Options;
use xvs_dataplane::pipeline::{DropReason, Frame as PipeFrame, Verdict, set_macs};
use xvs_dataplane::service::Snapshot;
use xvs_dataplane::wire::ParseError;
use xvs_dataplane::worker::{Clock, Handler, Worker};
use xvs_dataplane::xdp::{AttachMode, SteerKey, Steering};
use xvs_dataplane::xsk::{Socket, Umem};

use crate::error::{LabError, Result};
use crate::netns::{Netns, NsThread};

/// What a [`Floor`] forwards and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloorConfig {
    /// Interface in the namespace.
    pub iface: String,
    /// Core to pin the forwarder's thread to; `None`: not pinned.
    pub core: Option<usize>,
    /// What the steering program redirects, as xvsd's VIPs.
    pub steer: Vec<SteerKey>,
    /// Destination MACs, picked by the source port of the frame.
    pub next_hops: Vec<[u8; 6]>,
}

impl Default for FloorConfig {
    /// `eth0`, not pinned, nothing steered, no next hop.
    fn default() -> Self {
        FloorConfig {
            iface: "eth0".into(),
            core: None,
            steer: Vec::new(),
            next_hops: Vec::new(),
        }
    }
}

/// What a [`Floor`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloorReport {
    /// Frames sent back out.
    pub forwarded: u64,
    /// Frames too short for an Ethernet header and ports.
    pub dropped: u64,
    /// Frames the TX ring had no room for.
    pub tx_ring_full: u64,
}

/// The handler: next hop by source port, own MAC as source, out where it
/// came in.
#[derive(Debug)]
struct MacRewrite {
    own: [u8; 6],
    hops: Vec<[u8; 6]>,
    forwarded: u64,
    dropped: u64,
}

impl Handler for MacRewrite {
    #[inline]
    fn handle(
        &mut self,
        _now_ms: u64,
        _snap: &Snapshot,
        rx_iface: u8,
        frame: &mut PipeFrame<'_>,
    ) -> Verdict {
        let d = frame.data_mut();
        // The source port of an IPv4 UDP/TCP packet without options (the
        // benchmarks' traffic); other frames take the first hop.
        if d.len() < 14 + 20 + 4 || self.hops.is_empty() {
            self.dropped += 1;
            return Verdict::Drop(DropReason::Malformed(ParseError::TruncatedEthernet));
        }
        let sport = u16::from_be_bytes([d[34], d[35]]);
        let hop = self.hops[usize::from(sport) % self.hops.len()];
        set_macs(d, hop, self.own);
        self.forwarded += 1;
        Verdict::Tx { iface: rx_iface }
    }
}

/// A running minimal forwarder; stopped (and joined) on drop.
#[derive(Debug)]
pub struct Floor(NsThread<FloorReport>);

impl Floor {
    /// Loads the steering program on `cfg.iface` of `ns`, binds a socket on
    /// its queue 0 and forwards from a thread of its own; returns once the
    /// socket is in the program's map (an error here means nothing runs).
    pub fn start(ns: &Netns, cfg: FloorConfig) -> Result<Floor> {
        let own = ns.mac(&cfg.iface)?.octets();
        let core = cfg.core;
        NsThread::start(
            ns,
            ("xvs-lab-floor", "forwarder"),
            core,
            move || setup(&cfg, own),
            run,
        )
        .map(Floor)
    }

    /// Stops forwarding (the XDP program is detached) and returns what it
    /// did.
    pub fn stop(self) -> Result<FloorReport> {
        self.0.stop()
    }
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> LabError {
    move |e| LabError::Protocol(format!("{what}: {e}"))
}

/// The forwarder's set-up, as xvsd's: the steering program, one socket on
/// queue 0, a primed worker.
fn setup(cfg: &FloorConfig, own: [u8; 6]) -> Result<(Steering, Worker<MacRewrite>)> {
    let opts = Options::default();
    let mut steering = Steering::load().map_err(err("XDP program"))?;
    let att = steering
        .attach(&cfg.iface, AttachMode::Auto)
        .map_err(err("attaching XDP"))?;
    for &key in &cfg.steer {
        steering.insert_vip(key, 0).map_err(err("VIP map"))?;
    }
    let mut umem = Umem::new(&opts.umem_config(1)).map_err(err("UMEM"))?;
    let sock = Socket::with_ifindex(&mut umem, att.ifindex, 0, &opts.socket_config())
        .map_err(err("AF_XDP socket"))?;
    steering
        .register_socket(att.ifindex, 0, &sock)
        .map_err(err("socket map"))?;
    let handler = MacRewrite {
        own,
        hops: cfg.next_hops.clone(),
        forwarded: 0,
        dropped: 0,
    };
    let mut w = Worker::new(
        umem,
        vec![sock],
        handler,
        Arc::new(ArcSwap::from_pointee(Snapshot::default())),
        Clock::new(),
        opts.worker,
    );
    w.prime().map_err(err("fill ring"))?;
    Ok((steering, w))
}

/// The forwarder thread after its set-up: the worker loop until stopped.
fn run(
    (steering, mut w): (Steering, Worker<MacRewrite>),
    stop: &AtomicBool,
) -> Result<FloorReport> {
    w.run(stop);
    let h = w.handler();
    let report = FloorReport {
        forwarded: h.forwarded,
        dropped: h.dropped,
        tx_ring_full: w.io_stats().tx_ring_full.get(),
    };
    drop(w);
    drop(steering);
    Ok(report)
}
