//! End-to-end packet rate on veth: xvsd (NAT, DR and TUN) against the
//! kernel's IP forwarding, nftables DNAT and a minimal AF_XDP forwarder (the
//! I/O floor), in one run, on the same cores.
//!
//! ```text
//! cargo build --release -p xvs-dataplane --bin xvsd
//! cargo bench -p xvs-benches --bench veth_pps        # as root
//! ```
//!
//! Each case gets a lab of its own (`xvs_lab::Topology`, two real servers),
//! all built before the first measurement:
//!
//! | case | lab | client sends to | the director |
//! |---|---|---|---|
//! | `sink` | NAT | the VIP | drops at its `eth0` ingress (the generator's ceiling) |
//! | `fwd` | NAT | the real servers' own addresses | kernel IP forwarding |
//! | `nft` | NAT | the VIP | nftables DNAT (conntrack), round robin |
//! | `floor` | DR | the VIP | the minimal AF_XDP forwarder (`xvs_lab::floor`): xvsd's steering, sockets and worker loop, MAC rewrite only |
//! | `nat` | NAT | the VIP | xvsd, `-m`, rr |
//! | `dr`  | DR  | the VIP | xvsd, `-g`, rr |
//! | `tun` | TUN | the VIP | xvsd, `-i`, rr (the real servers decapsulate in XDP) |
//! | `dr_sync` | DR | the VIP | xvsd, `-g`, rr, as a connection-sync master multicasting on its `eth0` (the cost of sync end to end) |
//!
//! Traffic: 60-byte IPv4 UDP frames (18 bytes of payload, valid checksums)
//! to port 9, over `VETH_PPS_FLOWS` source ports (to the two real servers in
//! turn for `fwd`), sent by an AF_XDP TX-only generator (copy mode, batches
//! of 64, kicked every batch) on its own core: as fast as it goes by
//! default, which measures the director's forwarding rate under overload
//! (the excess is dropped in front of the director), or paced at
//! `VETH_PPS_RATE` packets per second.
//!
//! Counting: every real server has an nftables `netdev` ingress chain on
//! its `eth0` that drops UDP to port 9 and counts it in `via_dir` when the
//! frame's source MAC is the director's (so only frames that went through
//! the director count), else in `stray` (a bridge flooding before it learnt
//! the director's MAC; reported when not zero). The delivered rate is the
//! growth of `via_dir` over the window; the offered rate is the generator's
//! completed transmissions over the same window.
//!
//! Pinning (`VETH_PPS_CORES=GEN,DIR`, default `0,1`): the generator thread
//! (and this process's other threads and commands) on `GEN`; everything of
//! the director on `DIR`:
//! - the director's receive: its interfaces in threaded NAPI mode, the NAPI
//!   threads pinned to `DIR`. A veth has NAPI once XDP is attached (xvsd)
//!   or GRO is on, so the kernel cases turn GRO on at the director's `eth0`,
//!   as every NIC driver has it. `VETH_PPS_KERNEL_RX=rps` uses RPS of the
//!   receive queue (`rps_cpus`) instead, GRO staying off (the veth default);
//!   on this VM the remote enqueue then limits the generator.
//! - xvsd under `taskset -c DIR` (its worker and control threads inherit the
//!   mask; `--cores` is not passed: with one core it adds nothing).
//! - the switch bridge and the real servers' ingress drop run where the
//!   director's transmit runs (`DIR`) in every case; in the DR lab the
//!   client's side of the bridge runs on `GEN`, in the generator's `sendto`.
//!   The switch namespace's bridge makes no netfilter calls
//!   (`bridge-nf-call-*` = 0).
//!
//! Procedure: `VETH_PPS_RUNS` rounds, each measuring every case in turn (so
//! a slow spell of the machine hits all cases alike): start the generator,
//! wait until packets arrive, `VETH_PPS_WARMUP` seconds, then a window of
//! `VETH_PPS_SECS` seconds. The table gives the median over the rounds and
//! the ratios to the baselines' medians (kernel forwarding, nftables DNAT,
//! the AF_XDP floor). At the end each xvsd prints its
//! per-worker counters.
//!
//! Settings (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `VETH_PPS_SECS` | 2 | measured window per run, seconds |
//! | `VETH_PPS_WARMUP` | 1 | traffic before the window, seconds |
//! | `VETH_PPS_RUNS` | 5 | rounds (median over them) |
//! | `VETH_PPS_CORES` | `0,1` | generator core, director core |
//! | `VETH_PPS_FLOWS` | 64 | UDP source ports (flows) |
//! | `VETH_PPS_CASES` | `sink,fwd,nft,floor,nat,dr,tun` | cases to run, in this order |
//! | `VETH_PPS_RATE` | 0 | offered pps (0: full speed) |
//! | `VETH_PPS_KERNEL_RX` | `napi` | `napi` or `rps` for the kernel cases |
//! | `XVSD` | next to the bench | the xvsd binary |
//! | `VETH_PPS_XVSD_ARGS` | | extra xvsd arguments, e.g. `--busy-poll` |
//! | `VETH_PPS_SVG` | | write a bar chart of the medians there |
//! | `VETH_PPS_MD` | | write the table (markdown, with the run's date, kernel and load) there |
//!
//! Relative output paths are taken from the workspace root.
//!
//! Without `XVSD` the binary is looked up as `<target>/release/xvsd` next to
//! this bench's executable (`<target>/release/deps/veth_pps-*`): build it
//! with the same `CARGO_TARGET_DIR`. `cargo bench` does not rebuild it.
//!
//! Without root (or `ip`, `ethtool`, `nft`, `taskset`) it prints why and
//! exits 0; run as a test (`cargo test --benches`, no `--bench` argument) it
//! does nothing. A full run takes about 1.5 minutes.

mod common;

use std::fmt::Write as _;
use std::fs::File;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use nix::unistd::Pid;
use xvs_conntrack::{Addr, Proto};
use xvs_dataplane::xdp::SteerKey;
use xvs_lab::floor::{Floor, FloorConfig};
use xvs_lab::traffic::{Cycle, GenConfig};
use xvs_lab::{Family, Host, Mode, Proc, Topology};

use common::{
    Res, env_cores, env_list, env_or, env_out_path, kernel, loadavg, median, pin, today, xvsd_path,
};

/// UDP destination port of the generated traffic (discard).
const PORT: u16 = 9;
/// Frame length without FCS: the Ethernet minimum.
const FRAME_LEN: usize = 60;
/// First UDP source port; flow `i` uses `SPORT + i`.
const SPORT: u16 = 10_000;
/// How long to wait for the first packets at the real servers (xvsd
/// resolves the real servers' MACs first).
const FIRST_PACKET: Duration = Duration::from_secs(20);

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "veth_pps: a benchmark; run it with `cargo bench -p xvs-benches --bench veth_pps`"
        );
        return;
    }
    if let Err(e) = xvs_lab::preflight(&["ethtool", "nft", "taskset"]) {
        println!("veth_pps: skipped: {e}");
        return;
    }
    let opts = match Opts::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("veth_pps: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("veth_pps: {e}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------ options

#[derive(Debug)]
struct Opts {
    window: Duration,
    warmup: Duration,
    runs: usize,
    gen_core: usize,
    dir_core: usize,
    flows: u16,
    cases: Vec<Kind>,
    xvsd: Option<PathBuf>,
    xvsd_args: Vec<String>,
    svg: Option<PathBuf>,
    md: Option<PathBuf>,
    kernel_rx: KernelRx,
    /// Offered packets per second; 0: as fast as the generator goes.
    rate: f64,
}

/// How the kernel cases move the director's receive to its core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KernelRx {
    /// GRO on and threaded NAPI, the thread pinned (as xvsd's interfaces).
    Napi,
    /// RPS (`rps_cpus`) of the receive queue, GRO off (the veth default).
    Rps,
}

impl Opts {
    fn from_env() -> Res<Opts> {
        let secs = |name, default: f64| -> Res<Duration> {
            let s: f64 = env_or(name, default)?;
            if !(0.0..=3600.0).contains(&s) {
                return Err(format!("{name}={s}: out of range"));
            }
            Ok(Duration::from_secs_f64(s))
        };
        let (gen_core, dir_core) = env_cores("VETH_PPS_CORES", "0,1")?;
        let cases = env_list(
            "VETH_PPS_CASES",
            "sink,fwd,nft,floor,nat,dr,tun,dr_sync",
            Kind::from_name,
        )?;
        let flows: u16 = env_or("VETH_PPS_FLOWS", 64)?;
        if flows == 0 || flows > 50_000 {
            return Err(format!("VETH_PPS_FLOWS={flows}: 1..=50000"));
        }
        let runs: usize = env_or("VETH_PPS_RUNS", 5)?;
        let kernel_rx = match env_or("VETH_PPS_KERNEL_RX", "napi".to_owned())?.as_str() {
            "napi" => KernelRx::Napi,
            "rps" => KernelRx::Rps,
            other => return Err(format!("VETH_PPS_KERNEL_RX={other:?}: napi or rps")),
        };
        Ok(Opts {
            window: secs("VETH_PPS_SECS", 2.0)?,
            warmup: secs("VETH_PPS_WARMUP", 1.0)?,
            runs: runs.max(1),
            gen_core,
            dir_core,
            flows,
            cases,
            xvsd: xvsd_path(),
            xvsd_args: std::env::var("VETH_PPS_XVSD_ARGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            svg: env_out_path("VETH_PPS_SVG")?,
            md: env_out_path("VETH_PPS_MD")?,
            kernel_rx,
            rate: env_or("VETH_PPS_RATE", 0.0)?,
        })
    }
}

// ------------------------------------------------------------------ cases

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sink,
    Fwd,
    Nft,
    Floor,
    XvsdNat,
    XvsdDr,
    XvsdTun,
    XvsdDrSync,
}

impl Kind {
    fn from_name(s: &str) -> Res<Kind> {
        match s {
            "sink" => Ok(Kind::Sink),
            "fwd" => Ok(Kind::Fwd),
            "nft" => Ok(Kind::Nft),
            "floor" => Ok(Kind::Floor),
            "nat" => Ok(Kind::XvsdNat),
            "dr" => Ok(Kind::XvsdDr),
            "tun" => Ok(Kind::XvsdTun),
            "dr_sync" => Ok(Kind::XvsdDrSync),
            _ => Err(format!(
                "unknown case {s:?} (sink, fwd, nft, floor, nat, dr, tun, dr_sync)"
            )),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Sink => "generator alone (drop at the director's eth0 ingress)",
            Kind::Fwd => "kernel IP forwarding (client -> RS address)",
            Kind::Nft => "nftables DNAT (client -> VIP)",
            Kind::Floor => "minimal AF_XDP forwarder (MAC rewrite; DR lab)",
            Kind::XvsdNat => "xvsd NAT (-m, rr)",
            Kind::XvsdDr => "xvsd DR (-g, rr; DR lab)",
            Kind::XvsdTun => "xvsd TUN (-i, rr; TUN lab)",
            Kind::XvsdDrSync => "xvsd DR, sync master on (-g, rr; DR lab)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Sink => "generator alone",
            Kind::Fwd => "kernel forwarding",
            Kind::Nft => "nftables DNAT",
            Kind::Floor => "AF_XDP floor",
            Kind::XvsdNat => "xvsd NAT",
            Kind::XvsdDr => "xvsd DR",
            Kind::XvsdTun => "xvsd TUN",
            Kind::XvsdDrSync => "xvsd DR + sync",
        }
    }

    fn mode(self) -> Mode {
        match self {
            Kind::XvsdDr | Kind::XvsdDrSync | Kind::Floor => Mode::Dr,
            Kind::XvsdTun => Mode::Tun,
            _ => Mode::Nat,
        }
    }

    fn is_xvsd(self) -> bool {
        matches!(
            self,
            Kind::XvsdNat | Kind::XvsdDr | Kind::XvsdTun | Kind::XvsdDrSync
        )
    }
}

/// One case, set up and ready for traffic. Fields drop in order: the daemon
/// before its lab.
struct Case {
    kind: Kind,
    frames: Arc<Vec<Vec<u8>>>,
    pinning: String,
    xvsd: Option<Xvsd>,
    floor: Option<Floor>,
    lab: Topology,
}

impl Drop for Case {
    fn drop(&mut self) {
        // The forwarder's summary, as xvsd prints its own at exit.
        if let Some(f) = self.floor.take() {
            match f.stop() {
                Ok(r) => println!(
                    "{}: forwarded {} dropped {} tx-ring-full {}",
                    self.kind.short(),
                    r.forwarded,
                    r.dropped,
                    r.tx_ring_full
                ),
                Err(e) => println!("{}: {e}", self.kind.short()),
            }
        }
    }
}

fn v4(ip: IpAddr) -> [u8; 4] {
    match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => [0; 4],
    }
}

impl Case {
    fn setup(kind: Kind, opts: &Opts) -> Res<Case> {
        let lab = Topology::builder(kind.mode())
            .real_servers(2)
            .build()
            .map_err(|e| format!("{}: lab: {e}", kind.short()))?;
        // The bridge of the switch namespace: no netfilter calls (br_netfilter
        // is built in and on by default; nothing here filters bridged frames).
        lab.switch()
            .sysctl(&[
                ("net.bridge.bridge-nf-call-iptables", "0"),
                ("net.bridge.bridge-nf-call-ip6tables", "0"),
                ("net.bridge.bridge-nf-call-arptables", "0"),
            ])
            .map_err(|e| format!("bridge netfilter off: {e}"))?;
        install_sinks(&lab, kind)?;
        let frames = Arc::new(frames(&lab, kind, opts.flows));
        let what = |e: xvs_lab::LabError| format!("{}: {e}", kind.short());
        let mut floor = None;
        let (xvsd, pinning) = match kind {
            Kind::Sink => (None, pin_kernel_rx(&lab, opts)?),
            Kind::Fwd => {
                lab.enable_kernel_forwarding().map_err(what)?;
                (None, pin_kernel_rx(&lab, opts)?)
            }
            Kind::Nft => {
                lab.enable_nft_dnat(&[PORT]).map_err(what)?;
                (None, pin_kernel_rx(&lab, opts)?)
            }
            Kind::Floor => {
                let cfg = FloorConfig {
                    iface: lab.director_outside().dev.clone(),
                    core: Some(opts.dir_core),
                    steer: vec![SteerKey::new(
                        Proto::Udp,
                        Addr::from(lab.vip(Family::V4)),
                        PORT,
                    )],
                    next_hops: lab
                        .real_servers()
                        .iter()
                        .map(|rs| rs.mac().octets())
                        .collect(),
                };
                floor = Some(
                    Floor::start(lab.director(), cfg)
                        .map_err(|e| format!("minimal forwarder: {e}"))?,
                );
                let how = pin_napi(
                    &lab,
                    &[lab.director_outside().dev.as_str()],
                    opts.dir_core,
                    false,
                )?;
                (None, how)
            }
            Kind::XvsdNat | Kind::XvsdDr | Kind::XvsdTun | Kind::XvsdDrSync => {
                let x = Xvsd::start(&lab, kind, opts)?;
                let devs: Vec<&str> = lab
                    .director()
                    .ifaces()
                    .iter()
                    .map(|i| i.dev.as_str())
                    .collect();
                let how = pin_napi(&lab, &devs, opts.dir_core, false)?;
                (Some(x), how)
            }
        };
        Ok(Case {
            kind,
            frames,
            pinning,
            xvsd,
            floor,
            lab,
        })
    }
}

/// The generator's frames: client -> director MAC, UDP to port 9 from
/// `flows` source ports; to the VIP, or for kernel forwarding alternately to
/// each real server's own address.
fn frames(lab: &Topology, kind: Kind, flows: u16) -> Vec<Vec<u8>> {
    let client = lab.client();
    let smac = client.mac().octets();
    let dmac = lab.director_outside().mac.octets();
    let src = v4(client.addr(Family::V4));
    let dsts: Vec<[u8; 4]> = match kind {
        Kind::Fwd => lab
            .real_servers()
            .iter()
            .map(|rs| v4(rs.addr(Family::V4)))
            .collect(),
        _ => vec![v4(lab.vip(Family::V4))],
    };
    let payload = [0u8; FRAME_LEN - 14 - 20 - 8];
    (0..flows)
        .map(|i| {
            let dst = dsts[usize::from(i) % dsts.len()];
            let mut out = Vec::with_capacity(FRAME_LEN);
            PacketBuilder::ethernet2(smac, dmac)
                .ipv4(src, dst, 64)
                .udp(SPORT + i, PORT)
                .write(&mut out, &payload)
                .expect("a 60-byte frame fits a Vec");
            debug_assert_eq!(out.len(), FRAME_LEN);
            out
        })
        .collect()
}

// ------------------------------------------------------------------ sinks

const SINK_TABLE: &str = "xvs_bench";

/// Where the packets are counted: every real server, or for `sink` the
/// director itself.
fn sink_hosts(lab: &Topology, kind: Kind) -> Vec<&Host> {
    match kind {
        Kind::Sink => vec![lab.director()],
        _ => lab.real_servers().iter().collect(),
    }
}

/// The counting drop on the `eth0` ingress of every [`sink_hosts`]:
/// `via_dir` counts frames from the director's inside MAC (for `sink`, the
/// client's MAC).
fn install_sinks(lab: &Topology, kind: Kind) -> Res<()> {
    let dir_mac = match kind {
        Kind::Sink => lab.client().mac(),
        _ => lab.director_inside().mac,
    };
    for rs in sink_hosts(lab, kind) {
        let rules = format!(
            "table netdev {SINK_TABLE} {{\n\
             \tcounter via_dir {{ }}\n\
             \tcounter stray {{ }}\n\
             \tchain sink {{\n\
             \t\ttype filter hook ingress device \"eth0\" priority 0; policy accept;\n\
             \t\tether saddr {dir_mac} udp dport {PORT} counter name \"via_dir\" drop\n\
             \t\tudp dport {PORT} counter name \"stray\" drop\n\
             \t}}\n\
             }}\n"
        );
        rs.nft(&rules)
            .map_err(|e| format!("sink on {}: {e}", rs.role()))?;
    }
    Ok(())
}

/// Packets counted by all sinks: (via the director, stray).
fn sink_counts(case: &Case) -> Res<(u64, u64)> {
    let mut total = (0, 0);
    for rs in sink_hosts(&case.lab, case.kind) {
        let (f, s) = read_sink(rs)?;
        total.0 += f;
        total.1 += s;
    }
    Ok(total)
}

fn read_sink(rs: &Host) -> Res<(u64, u64)> {
    let out = rs
        .exec(&["nft", "list", "counters", "table", "netdev", SINK_TABLE])
        .map_err(|e| format!("reading the sink of {}: {e}", rs.role()))?;
    let (mut fwd, mut stray) = (None, None);
    let mut current = "";
    for line in out.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("counter") => current = words.next().unwrap_or_default(),
            Some("packets") => {
                let n = words.next().and_then(|w| w.parse::<u64>().ok());
                match current {
                    "via_dir" => fwd = n,
                    "stray" => stray = n,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    match (fwd, stray) {
        (Some(f), Some(s)) => Ok((f, s)),
        _ => Err(format!(
            "no counters in `nft list counters` of {}: {out}",
            rs.role()
        )),
    }
}

// ------------------------------------------------------------------ pinning

/// Kernel cases: the director's receive softirq on `core` by RPS of the
/// outside interface's queue.
fn rps(lab: &Topology, core: usize) -> Res<String> {
    let dev = &lab.director_outside().dev;
    let mask = format!("{:x}", 1u64 << core);
    let cmd = format!("echo {mask} > /sys/class/net/{dev}/queues/rx-0/rps_cpus");
    lab.director()
        .exec(&["sh", "-c", &cmd])
        .map_err(|e| format!("RPS on the director's {dev}: {e}"))?;
    Ok(format!("RPS of director {dev} rx-0 -> core {core}"))
}

/// Threaded NAPI on the director's `devs` (a veth has NAPI once XDP is
/// attached or GRO is on), the new NAPI threads pinned to `core`.
fn pin_napi(lab: &Topology, devs: &[&str], core: usize, gro: bool) -> Res<String> {
    let how = devs
        .iter()
        .map(|dev| common::pin_napi(lab.director(), dev, core, gro).map(|p| p.how))
        .collect::<Res<Vec<String>>>()?;
    Ok(format!("director: {}", how.join("; ")))
}

/// Kernel cases: the director's receive on `core`, by threaded NAPI (GRO on
/// gives the veth its NAPI, as every NIC driver has) or by RPS.
fn pin_kernel_rx(lab: &Topology, opts: &Opts) -> Res<String> {
    let dev = lab.director_outside().dev.as_str();
    match opts.kernel_rx {
        KernelRx::Rps => rps(lab, opts.dir_core),
        KernelRx::Napi => pin_napi(lab, &[dev], opts.dir_core, true),
    }
}

// ------------------------------------------------------------------ xvsd

/// xvsd on a lab's director; stopped (SIGTERM) on drop.
struct Xvsd {
    proc: Option<Proc>,
    dir: PathBuf,
    what: &'static str,
    /// Runs a sync master (`dr_sync`).
    sync: bool,
}

impl Xvsd {
    fn start(lab: &Topology, kind: Kind, opts: &Opts) -> Res<Xvsd> {
        let bin = opts.xvsd.as_ref().ok_or_else(|| {
            "no xvsd binary: build it with `cargo build --release -p xvs-dataplane --bin xvsd` \
             (same CARGO_TARGET_DIR) or set XVSD=/path/to/xvsd"
                .to_owned()
        })?;
        // One directory per case: two cases may share a lab mode.
        let dir =
            std::env::temp_dir().join(format!("xvs-veth-pps-{}-{kind:?}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let method = match kind {
            Kind::XvsdDr | Kind::XvsdDrSync => "-g",
            Kind::XvsdTun => "-i",
            _ => "-m",
        };
        let vip = lab.vip(Family::V4);
        let mut config = format!("-A -u {vip}:{PORT} -s rr\n");
        for rs in lab.real_servers() {
            let _ = writeln!(
                config,
                "-a -u {vip}:{PORT} -r {}:{PORT} {method} -w 1",
                rs.addr(Family::V4)
            );
        }
        let mut sync_args = Vec::new();
        if kind == Kind::XvsdDrSync {
            // A master multicasting on the director's first interface, into
            // the lab's own segment.
            let key = dir.join("sync.key");
            std::fs::write(&key, "veth-pps lab sync key, 32 bytes\n")
                .map_err(|e| format!("{}: {e}", key.display()))?;
            let dev = &lab.director().ifaces()[0].dev;
            let _ = writeln!(
                config,
                "--start-daemon master --mcast-interface {dev} --syncid 1"
            );
            sync_args.push("--sync-key-file".into());
            sync_args.push(key.into_os_string());
        }
        let conf = dir.join("xvsd.conf");
        std::fs::write(&conf, config).map_err(|e| format!("{}: {e}", conf.display()))?;
        let log = dir.join("xvsd.log");
        let log_file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let core = opts.dir_core.to_string();
        let mut cmd = lab.director().command("taskset");
        cmd.args(["-c", &core]).arg(bin);
        for ifc in lab.director().ifaces() {
            cmd.args(["--iface", &ifc.dev]);
        }
        cmd.arg("--config")
            .arg(&conf)
            .arg("--socket")
            .arg(dir.join("xvsd.sock"))
            .args(&sync_args)
            .args(&opts.xvsd_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let proc = Proc::spawn(&mut cmd).map_err(|e| format!("start xvsd: {e}"))?;
        let mut x = Xvsd {
            proc: Some(proc),
            dir,
            what: kind.short(),
            sync: kind == Kind::XvsdDrSync,
        };
        // Ready once its XDP program is on every interface.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let attached = lab
                .director()
                .ifaces()
                .iter()
                .all(|i| matches!(lab.director().xdp_prog(&i.dev), Ok(Some(_))));
            if attached {
                return Ok(x);
            }
            let exited = x.proc.as_mut().and_then(|p| p.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(format!("xvsd exited ({status}): {}", x.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("xvsd did not attach XDP in 15 s: {}", x.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("xvsd.log")).unwrap_or_default()
    }

    /// The sync master's counters (`xvsadm -L --daemon --json`), to show
    /// that it synced while it was measured.
    fn sync_counters(&self) -> Result<String, String> {
        let mut client = xvs_ctl::client::Client::connect(&self.dir.join("xvsd.sock"))
            .map_err(|e| e.to_string())?;
        match client.call(&xvs_ctl::proto::Request::GetDaemons) {
            Ok(xvs_ctl::proto::Response::Daemons(ds)) => Ok(ds
                .iter()
                .map(|d| format!("{} {:?}", d.opts.state.name(), d.counters))
                .collect::<Vec<_>>()
                .join("; ")),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Xvsd {
    fn drop(&mut self) {
        if self.sync {
            match self.sync_counters() {
                Ok(c) => println!("{}: sync: {c}", self.what),
                Err(e) => println!("{}: sync counters: {e}", self.what),
            }
        }
        if let Some(p) = self.proc.take() {
            let _ = p.stop(Duration::from_secs(3));
            // Its summary at exit (per-worker counters).
            let log = self.log();
            let tail = log.lines().skip_while(|l| !l.contains("stopping")).skip(1);
            for line in tail {
                println!("{}: {line}", self.what);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ------------------------------------------------------------------ generator

/// The case's frames round robin from the client's `eth0` queue 0
/// (`xvs_lab::traffic`: a TX-only AF_XDP socket, batches of 64, kicked
/// every batch) on `core`, until stopped.
struct Generator(xvs_lab::traffic::Generator);

impl Generator {
    fn start(case: &Case, core: usize, rate: f64) -> Res<Generator> {
        let cfg = GenConfig {
            core: Some(core),
            rate,
            ..GenConfig::default()
        };
        xvs_lab::traffic::Generator::start(
            case.lab.client(),
            cfg,
            Cycle::forever(Arc::clone(&case.frames)),
        )
        .map(Generator)
        .map_err(|e| format!("generator: {e}"))
    }

    fn completed(&self) -> u64 {
        self.0.completed()
    }

    fn failed(&self) -> bool {
        self.0.is_finished()
    }

    fn finish(self) -> Res<()> {
        self.0
            .stop()
            .map(|_| ())
            .map_err(|e| format!("generator: {e}"))
    }
}

// ------------------------------------------------------------------ measuring

#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Packets per second counted at the real servers.
    delivered: f64,
    /// Packets per second the generator completed.
    offered: f64,
    /// Frames that reached a real server without going through the director.
    stray: u64,
}

fn measure(case: &Case, opts: &Opts) -> Res<Sample> {
    let (base, _) = sink_counts(case)?;
    let generator = Generator::start(case, opts.gen_core, opts.rate)?;
    let deadline = Instant::now() + FIRST_PACKET;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if sink_counts(case)?.0 > base {
            break;
        }
        if generator.failed() {
            return Err(generator.finish().err().unwrap_or_default());
        }
        if Instant::now() > deadline {
            let log = case.xvsd.as_ref().map(Xvsd::log).unwrap_or_default();
            return Err(format!(
                "{}: no packet reached the real servers in {FIRST_PACKET:?} \
                 ({} frames sent){}{log}",
                case.kind.short(),
                generator.completed(),
                if log.is_empty() { "" } else { "; xvsd log:\n" },
            ));
        }
    }
    std::thread::sleep(opts.warmup);
    let snapshot = || -> Res<(Instant, u64, u64, u64)> {
        let t = Instant::now();
        let g = generator.completed();
        let (fwd, stray) = sink_counts(case)?;
        // The counters were read at some point of the reads: take the middle.
        let mid = t + (Instant::now() - t) / 2;
        Ok((mid, g, fwd, stray))
    };
    let (t0, g0, f0, s0) = snapshot()?;
    std::thread::sleep(opts.window);
    let (t1, g1, f1, s1) = snapshot()?;
    generator.finish()?;
    let dt = (t1 - t0).as_secs_f64();
    Ok(Sample {
        delivered: (f1 - f0) as f64 / dt,
        offered: (g1 - g0) as f64 / dt,
        stray: s1 - s0,
    })
}

fn pps(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.0}k", v / 1e3)
    }
}

struct Row {
    kind: Kind,
    median: f64,
    min: f64,
    max: f64,
    offered: f64,
}

fn run(opts: &Opts) -> Res<()> {
    let ncpu = std::thread::available_parallelism().map_or(1, usize::from);
    if opts.gen_core >= ncpu || opts.dir_core >= ncpu {
        return Err(format!(
            "VETH_PPS_CORES={},{}: this machine has {ncpu} cores",
            opts.gen_core, opts.dir_core
        ));
    }
    // This thread and what it starts (ip, nft, the sink reads) stay off the
    // director's core.
    pin(Pid::from_raw(0), opts.gen_core)?;
    let mut kinds = opts.cases.clone();
    if opts.xvsd.is_none() && kinds.iter().any(|k| k.is_xvsd()) {
        println!(
            "veth_pps: no xvsd binary (set XVSD, or `cargo build --release -p xvs-dataplane \
             --bin xvsd` with the same CARGO_TARGET_DIR): xvsd cases skipped"
        );
        kinds.retain(|k| !k.is_xvsd());
    }
    if let Some(x) = &opts.xvsd {
        println!("veth_pps: xvsd = {}", x.display());
    }
    let mut cases = Vec::new();
    for kind in kinds {
        let case = Case::setup(kind, opts)?;
        println!("veth_pps: {:<18} {}", kind.short(), case.pinning);
        cases.push(case);
    }
    // Let the set-up's aftermath (udev, neighbour resolution) pass.
    std::thread::sleep(Duration::from_secs(2));
    let offered = if opts.rate > 0.0 {
        format!("paced at {}", pps(opts.rate))
    } else {
        "at full speed".to_owned()
    };
    let load_start = loadavg();
    println!(
        "veth_pps: {} runs of {:.1} s after {:.1} s warm-up, {} flows, 60-byte UDP {offered}, \
         generator on core {}, director on core {} ({} cores, load {})",
        opts.runs,
        opts.window.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        opts.flows,
        opts.gen_core,
        opts.dir_core,
        ncpu,
        loadavg()
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cases.len()];
    for round in 1..=opts.runs {
        let mut line = format!("round {round}:");
        for (case, out) in cases.iter().zip(&mut samples) {
            let s = measure(case, opts)?;
            let _ = write!(line, "  {} {}", case.kind.short(), pps(s.delivered));
            if s.stray > 0 {
                let _ = write!(line, " ({} stray)", s.stray);
            }
            out.push(s);
        }
        println!("{line}");
    }
    let rows: Vec<Row> = cases
        .iter()
        .zip(&samples)
        .map(|(case, s)| {
            let d: Vec<f64> = s.iter().map(|x| x.delivered).collect();
            let o: Vec<f64> = s.iter().map(|x| x.offered).collect();
            Row {
                kind: case.kind,
                median: median(&d),
                min: d.iter().copied().fold(f64::INFINITY, f64::min),
                max: d.iter().copied().fold(0.0, f64::max),
                offered: median(&o),
            }
        })
        .collect();
    let base = rows.iter().find(|r| r.kind == Kind::Fwd).map(|r| r.median);
    let table = table(&rows, opts);
    println!();
    print!("{table}");
    println!("(load average at the end: {})", loadavg());
    if let Some(path) = &opts.md {
        let text = format!(
            "Run of {}, {}; {} cores, kernel {}, load average {} at the start, {} at the end.\n\n{table}",
            today(),
            offered,
            ncpu,
            kernel(),
            load_start,
            loadavg()
        );
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("veth_pps: table written to {}", path.display());
    }
    if let Some(path) = &opts.svg {
        std::fs::write(path, svg(&rows, base, opts))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("veth_pps: chart written to {}", path.display());
    }
    Ok(())
}

/// The medians as a markdown table, with ratios to each baseline that ran.
fn table(rows: &[Row], opts: &Opts) -> String {
    let of = |k: Kind| rows.iter().find(|r| r.kind == k).map(|r| r.median);
    let bases: Vec<(&str, Kind, f64)> = [
        ("vs kernel forwarding", Kind::Fwd),
        ("vs nftables DNAT", Kind::Nft),
        ("vs AF_XDP floor", Kind::Floor),
    ]
    .into_iter()
    .filter_map(|(h, k)| of(k).map(|m| (h, k, m)))
    .collect();
    let mut t = format!(
        "| path | delivered pps, median of {} | min - max | offered pps |",
        opts.runs
    );
    for (h, _, _) in &bases {
        let _ = write!(t, " {h} |");
    }
    t.push_str("\n|---|---:|---:|---:|");
    t.push_str(&"---:|".repeat(bases.len()));
    t.push('\n');
    for r in rows {
        // Nearly all offered packets delivered: the generator, not the
        // director, set the rate.
        let bound = if r.median > 0.95 * r.offered {
            " (all)"
        } else {
            ""
        };
        let _ = write!(
            t,
            "| {} | {} | {} - {} | {}{bound} |",
            r.kind.label(),
            pps(r.median),
            pps(r.min),
            pps(r.max),
            pps(r.offered),
        );
        for (_, k, m) in &bases {
            if r.kind == Kind::Sink || r.kind == *k {
                t.push_str(" - |");
            } else {
                let _ = write!(t, " {:.2} |", r.median / m);
            }
        }
        t.push('\n');
    }
    t
}

/// A horizontal bar chart of the medians (plain SVG, no dependencies).
fn svg(rows: &[Row], base: Option<f64>, opts: &Opts) -> String {
    const W: f64 = 640.0;
    const LABEL: f64 = 150.0;
    const BAR_H: f64 = 26.0;
    const GAP: f64 = 12.0;
    const TOP: f64 = 34.0;
    let max = rows.iter().map(|r| r.max).fold(1.0, f64::max);
    let scale = (W - LABEL - 110.0) / max;
    let h = TOP + rows.len() as f64 * (BAR_H + GAP) + 10.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"8\" y=\"20\" font-size=\"14\">60-byte UDP on veth, one director core, \
         median of {} runs (bars: min-max)</text>\n",
        opts.runs
    );
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + i as f64 * (BAR_H + GAP);
        let color = if r.kind.is_xvsd() {
            "#d9822b"
        } else {
            "#4a7ab5"
        };
        let ratio = match base {
            Some(b) if r.kind != Kind::Sink => format!(" ({:.2}x)", r.median / b),
            _ => String::new(),
        };
        let _ = write!(
            s,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\n\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{w:.1}\" height=\"{BAR_H}\" fill=\"{color}\"/>\n\
             <line x1=\"{x0:.1}\" x2=\"{x1:.1}\" y1=\"{ym}\" y2=\"{ym}\" stroke=\"black\"/>\n\
             <text x=\"{tx:.1}\" y=\"{ty}\">{value}{ratio}</text>\n",
            lx = LABEL - 8.0,
            ty = y + BAR_H / 2.0 + 5.0,
            label = r.kind.short(),
            w = r.median * scale,
            x0 = LABEL + r.min * scale,
            x1 = LABEL + r.max * scale,
            ym = y + BAR_H / 2.0,
            tx = LABEL + r.max.max(r.median) * scale + 6.0,
            value = pps(r.median),
        );
    }
    s.push_str("</svg>\n");
    s
}
