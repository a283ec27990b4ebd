//! `xvsd`: the director daemon. Sets up the interfaces (XDP steering
//! program, one AF_XDP socket per queue), starts one pinned worker per
//! queue, and runs the control loop until asked to stop.
//!
//! Start-up, in order (any failure undoes what was done and is reported):
//!
//! 1. the interfaces are looked up (netlink) and their receive queues
//!    counted; workers = the smallest queue count (with two interfaces a
//!    worker needs a socket on both; packets on queues beyond it stay with
//!    the kernel, counted by the XDP program as `no_socket`);
//! 2. the configuration file (ipvsadm-restore syntax) is applied as one
//!    batch: an error names the line and nothing runs; the control socket
//!    is opened (another live xvsd on it stops this one here, before it
//!    touches any interface);
//! 3. the steering program is loaded and attached; each worker gets a UMEM
//!    and one socket per interface on its queue, registered in the socket
//!    map;
//! 4. the first snapshot is published (neighbour resolution starts), the
//!    workers start, the control loop runs.
//!
//! On SIGTERM or SIGINT the workers stop and are joined, the XDP program is
//! detached from every interface and the control socket removed.

mod control;
pub mod convert;
mod handler;
mod health;
pub mod metrics;
mod privs;
mod sync;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use xvs_conntrack::{ConnTable, DestTable, TableConfig};
use xvs_ctl::server::{Server, ServerConfig};

pub use control::Control;
pub use handler::CtlHandler;

use crate::director::Director;
use crate::netlink::{Link, Netlink};
use crate::pipeline::{self, Pipeline};
use crate::service::Snapshot;
use crate::worker::{Clock, IoStats, Worker, WorkerConfig};
use crate::xdp::{AttachMode, Steering};
use crate::xsk::{BindMode, Socket, SocketConfig, Umem, UmemConfig};

/// Everything `xvsd` is started with.
#[derive(Clone, Debug)]
pub struct Options {
    /// Interfaces, in order: the first faces clients (NAT's outside arm).
    pub ifaces: Vec<String>,
    /// Cores to pin workers to, in order (worker `i` on `cores[i % n]`);
    /// empty: not pinned.
    pub cores: Vec<usize>,
    /// Configuration to load (ipvsadm-restore syntax).
    pub config: Option<PathBuf>,
    /// Control socket.
    pub socket: PathBuf,
    /// Group allowed on the control socket (besides root and the daemon's
    /// user).
    pub socket_group: Option<u32>,
    /// How to attach the XDP program.
    pub xdp_mode: AttachMode,
    /// Copy or zero-copy AF_XDP.
    pub bind_mode: BindMode,
    /// Entries of each AF_XDP ring.
    pub ring_size: u32,
    /// Worker loop settings.
    pub worker: WorkerConfig,
    /// Most connections (and templates) tracked.
    pub max_conns: usize,
    /// Real-server slots.
    pub max_dests: usize,
    /// `sloppy_tcp`.
    pub sloppy_tcp: bool,
    /// The connection-sync secret's file (`--sync-key-file`).
    pub sync_key_file: Option<PathBuf>,
    /// Where to serve Prometheus metrics (`--metrics`).
    pub metrics: Option<std::net::SocketAddr>,
    /// Keep every capability after set-up (`--keep-privileges`); by
    /// default all but CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW are dropped.
    pub keep_privileges: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ifaces: Vec::new(),
            cores: Vec::new(),
            config: None,
            socket: PathBuf::from(xvs_ctl::client::DEFAULT_SOCKET),
            socket_group: None,
            xdp_mode: AttachMode::Auto,
            bind_mode: BindMode::Auto,
            ring_size: 2048,
            worker: WorkerConfig::default(),
            max_conns: 1 << 20,
            max_dests: 4096,
            sloppy_tcp: false,
            sync_key_file: None,
            metrics: None,
            keep_privileges: false,
        }
    }
}

impl Options {
    /// The AF_XDP rings of every socket.
    pub fn socket_config(&self) -> SocketConfig {
        SocketConfig {
            rx_size: self.ring_size,
            tx_size: self.ring_size,
            fill_size: self.ring_size,
            comp_size: self.ring_size,
            mode: self.bind_mode,
            need_wakeup: true,
        }
    }

    /// A worker's UMEM for sockets on `ifaces` interfaces: per socket, room
    /// for full fill and RX rings, frames in flight on TX and two batches.
    pub fn umem_config(&self, ifaces: usize) -> UmemConfig {
        let batch = self.worker.batch.max(1) as u32;
        let per_socket = 2 * self.ring_size + 2 * batch;
        UmemConfig {
            frame_count: per_socket * ifaces.max(1) as u32,
            ..UmemConfig::default()
        }
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// The configuration file is unreadable or invalid.
    #[error("{path}: {msg}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong (with the line).
        msg: String,
    },
    /// Setting up an interface, the XDP program or a socket failed.
    #[error("{what}: {msg}")]
    Setup {
        /// What was being set up.
        what: String,
        /// Why it failed.
        msg: String,
    },
}

fn setup(what: impl Into<String>) -> impl FnOnce(&dyn std::fmt::Display) -> DaemonError {
    let what = what.into();
    move |e| DaemonError::Setup {
        what,
        msg: e.to_string(),
    }
}

/// Receive queues of an interface (`/sys/class/net/IF/queues/rx-*`), at
/// least 1.
pub fn rx_queues(ifname: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{ifname}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

/// A running director: its control state, workers and their stop flag.
#[derive(Debug)]
pub struct Daemon {
    /// Configuration, resolution, publication (shared with the control
    /// socket's handler).
    pub control: Arc<Mutex<Control>>,
    server: Option<Server>,
    metrics: Option<metrics::MetricsServer>,
    /// Each worker's I/O counters.
    pub io: Vec<Arc<IoStats>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    /// Whether the sockets run in zero-copy mode.
    pub zerocopy: bool,
}

impl Daemon {
    /// Sets everything up and starts the workers (see the module docs).
    pub fn start(opts: &Options) -> Result<Daemon, DaemonError> {
        if opts.ifaces.is_empty() {
            return Err(DaemonError::Usage("at least one --iface is needed".into()));
        }
        if opts.ifaces.len() > usize::from(u8::MAX) {
            return Err(DaemonError::Usage("too many interfaces".into()));
        }
        if !opts.ring_size.is_power_of_two() || opts.ring_size < 64 {
            return Err(DaemonError::Usage(
                "--ring-size must be a power of two, at least 64".into(),
            ));
        }
        let mut nl = Netlink::open().map_err(|e| setup("netlink")(&e))?;
        let mut links: Vec<Link> = Vec::new();
        for name in &opts.ifaces {
            let link = nl
                .link_by_name(name)
                .map_err(|e| setup(format!("interface {name}"))(&e))?;
            if link.mac.is_none() {
                return Err(DaemonError::Usage(format!(
                    "interface {name} is not an Ethernet interface"
                )));
            }
            if links.iter().any(|l| l.ifindex == link.ifindex) {
                return Err(DaemonError::Usage(format!("interface {name} given twice")));
            }
            links.push(link);
        }
        let queues: Vec<u32> = opts.ifaces.iter().map(|i| rx_queues(i)).collect();
        let nworkers = queues.iter().copied().min().unwrap_or(1);
        if queues.iter().any(|q| *q != nworkers) {
            eprintln!(
                "xvsd: interfaces have {queues:?} receive queues: running {nworkers} workers; \
                 traffic on the other queues stays with the kernel"
            );
        }

        // The configuration, applied to an empty director as one batch.
        let dests = Arc::new(DestTable::new(opts.max_dests.max(2)));
        let conns = Arc::new(ConnTable::new(
            TableConfig {
                capacity: opts.max_conns,
                ..TableConfig::default()
            },
            Arc::clone(&dests),
        ));
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let clock = Clock::new();
        let director = Director::new(dests);
        let mut control = Control::new(
            director,
            Arc::clone(&conns),
            Arc::clone(&snapshot),
            None,
            nl,
            links.clone(),
            clock,
        );
        if let Some(path) = &opts.sync_key_file {
            let key = xvs_sync::Key::from_file(path).map_err(|e| {
                DaemonError::Usage(format!("--sync-key-file {}: {e}", path.display()))
            })?;
            control.set_sync_key(key);
        }
        if let Some(path) = &opts.config {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| DaemonError::Config {
                path: shown.clone(),
                msg: e.to_string(),
            })?;
            let cmds = xvs_ctl::parse_restore(&text).map_err(|(line, e)| DaemonError::Config {
                path: shown.clone(),
                msg: format!("line {line}: {e}"),
            })?;
            control
                .apply(&cmds, false)
                .map_err(|(i, e)| DaemonError::Config {
                    path: shown.clone(),
                    msg: format!("`{}`: {e}", xvs_ctl::save_line(&cmds[i], true)),
                })?;
        }

        // The control socket, before any interface is touched.
        let mut sc = ServerConfig::new(&opts.socket);
        sc.group = opts.socket_group;
        let control = Arc::new(Mutex::new(control));
        let server = Server::start(sc, Arc::new(CtlHandler::new(Arc::clone(&control))))
            .map_err(|e| setup("control socket")(&e))?;
        let metrics = match opts.metrics {
            Some(a) => Some(
                metrics::MetricsServer::start(a, Arc::clone(&control))
                    .map_err(|e| setup(format!("metrics on {a}"))(&e))?,
            ),
            None => None,
        };

        // Steering and sockets.
        let mut steering = Steering::load().map_err(|e| setup("XDP program")(&e))?;
        for l in &links {
            steering
                .attach_ifindex(l.ifindex, opts.xdp_mode)
                .map_err(|e| setup(format!("attaching XDP to {}", l.name))(&e))?;
        }
        let rings = opts.socket_config();
        let mut workers = Vec::new();
        let mut zerocopy = false;
        for q in 0..nworkers {
            let mut umem = Umem::new(&opts.umem_config(links.len()))
                .map_err(|e| setup(format!("UMEM of worker {q}"))(&e))?;
            let mut sockets = Vec::new();
            for l in &links {
                let s = Socket::with_ifindex(&mut umem, l.ifindex, q, &rings)
                    .map_err(|e| setup(format!("AF_XDP socket on {} queue {q}", l.name))(&e))?;
                zerocopy |= s.is_zerocopy();
                sockets.push(s);
            }
            workers.push((q, umem, sockets));
        }

        // Publish, then register the sockets and start the workers.
        let mut ctl = control.lock();
        ctl.set_steering(steering);
        ctl.publish();
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        let mut io = Vec::new();
        for (q, umem, sockets) in workers {
            for (s, l) in sockets.iter().zip(&links) {
                ctl.steering_mut()
                    .map(|st| st.register_socket(l.ifindex, q, s))
                    .transpose()
                    .map_err(|e| setup(format!("socket map, {} queue {q}", l.name))(&e))?;
            }
            let pipe = Pipeline::new(
                Arc::clone(&conns),
                pipeline::Config {
                    sloppy_tcp: opts.sloppy_tcp,
                },
                q,
            );
            let mut w = Worker::new(
                umem,
                sockets,
                pipe,
                Arc::clone(&snapshot),
                clock,
                opts.worker,
            );
            w.prime()
                .map_err(|e| setup(format!("fill ring of worker {q}"))(&e))?;
            ctl.add_worker(w.stats(), w.io_stats(), w.sync_tap());
            io.push(w.io_stats());
            let core = (!opts.cores.is_empty()).then(|| opts.cores[q as usize % opts.cores.len()]);
            let stop = Arc::clone(&stop);
            let h = std::thread::Builder::new()
                .name(format!("xvs-worker-{q}"))
                .spawn(move || {
                    if let Some(id) = core {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                            eprintln!("xvsd: worker {q}: cannot pin to core {id}");
                        }
                    }
                    w.run(&stop);
                })
                .map_err(|e| setup(format!("worker {q} thread"))(&e))?;
            handles.push(h);
        }
        drop(ctl);
        if !opts.keep_privileges {
            let kept = privs::drop_privileges().map_err(|e| setup("dropping privileges")(&e))?;
            let names: Vec<String> = kept.iter().map(|c| c.to_string()).collect();
            eprintln!("xvsd: capabilities kept after set-up: {}", names.join(", "));
        }
        Ok(Daemon {
            control,
            server: Some(server),
            metrics,
            io,
            stop,
            workers: handles,
            zerocopy,
        })
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Runs the control loop until `stop` is set (a signal), ticking every
    /// `tick`.
    pub fn run_until(&mut self, stop: &AtomicBool, tick: Duration) {
        while !stop.load(Ordering::Relaxed) {
            self.control.lock().tick();
            std::thread::sleep(tick);
        }
    }

    /// Stops and joins the workers; the XDP program is detached when the
    /// daemon is dropped. Returns one summary line per worker (frames in,
    /// out, replied, passed, dropped, TX ring overflows) for the log.
    pub fn shutdown(mut self) -> Vec<String> {
        self.stop_workers();
        let ctl = self.control.lock();
        ctl.workers()
            .iter()
            .zip(&self.io)
            .enumerate()
            .map(|(i, (w, io))| {
                let sum = |c: &[crate::pipeline::Counter]| c.iter().map(|c| c.get()).sum::<u64>();
                format!(
                    "worker {i}: rx {} tx {} replied {} passed {} dropped {} tx-ring-full {}",
                    w.rx.get(),
                    w.tx.get(),
                    sum(&w.replies),
                    sum(&w.passes),
                    sum(&w.drops),
                    io.tx_ring_full.get(),
                )
            })
            .collect()
    }

    fn stop_workers(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
        self.metrics.take();
        self.stop.store(true, Ordering::Relaxed);
        for h in self.workers.drain(..) {
            if h.join().is_err() {
                eprintln!("xvsd: a worker panicked");
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop_workers();
    }
}
