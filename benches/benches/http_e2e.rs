//! HTTP end to end in the namespace lab: requests per second and latency
//! through xvsd DR, against no director at all (direct), HAProxy in TCP
//! mode and nginx `stream`, in one run, on the same cores.
//!
//! ```text
//! apt-get install wrk nginx libnginx-mod-stream haproxy
//! cargo build --release -p xvs-dataplane --bin xvsd
//! cargo bench -p xvs-benches --bench http_e2e        # as root
//! ```
//!
//! Each contender gets a DR lab of its own (`xvs_lab::Topology`, the
//! client, the director and `HTTP_E2E_RS` real servers on one bridged
//! segment; the real servers hold the VIP on `lo` with `arp_ignore=1` and
//! `arp_announce=2`, as `deploy/realserver-dr.sh` sets them up), all built
//! before the first measurement. Every real server runs nginx (one
//! process, `master_process off`) serving `GET /bytes/N`, a static file of
//! `HTTP_E2E_BODY` bytes, with keep-alive unlimited; `HTTP_E2E_SERVER=echo`
//! takes the lab's own echo server instead (threads per connection; for
//! comparison).
//!
//! | contender | wrk connects to | the director |
//! |---|---|---|
//! | `direct` | each real server's own address | none: wrk thread `i` talks to real server `i mod N` |
//! | `dr` | the VIP | xvsd, `-g`, rr |
//! | `haproxy` | the VIP (an address of the director) | HAProxy, `mode tcp`, `balance roundrobin`, one thread |
//! | `nginx` | the VIP (an address of the director) | nginx `stream` `proxy_pass`, round robin, one process |
//!
//! `direct` is the same load spread over the same N real servers by the
//! client itself (wrk's `setup()` hook gives each thread its own target), so
//! every contender serves the same requests from the same servers, and the
//! ratio to it is the cost of putting a director in the path.
//!
//! Load: wrk (`HTTP_E2E_THREADS` threads, default N, a multiple of N;
//! `HTTP_E2E_CONNS` connections), closed loop, for `HTTP_E2E_SECS`, in two
//! variants: `keepalive` (HTTP/1.1 persistent connections: the director
//! sees established flows only) and `close` (`Connection: close`: one TCP
//! connection per request, so every request is a new connection for the
//! director). Requests per second and wrk's latency percentiles (p50, p99)
//! come from a Lua `done()` hook; socket errors and non-2xx answers are
//! counted and shown.
//!
//! Pinning (`HTTP_E2E_CORES=CLIENT,DIR`, default `0,1`; real servers on
//! `HTTP_E2E_RS_CORE`, default DIR):
//! - wrk under `taskset -c CLIENT`; this process and its commands too.
//! - the director on DIR: xvsd under `taskset -c DIR` with `--cores DIR`,
//!   haproxy and nginx under `taskset -c DIR`.
//! - the real servers' nginx under `taskset -c RS_CORE`. By default they
//!   share the director's core, so that every contender crosses between
//!   the cores the same way: the client's packets to the other core and
//!   the answers back, whatever sits in between (a wake-up across cores
//!   is an inter-processor interrupt, dear in this VM, and with the
//!   servers on the client's core `direct` would cross none while every
//!   director crosses at least twice). The price: a director's CPU time
//!   is taken from the servers' core, so every director's cost shows in
//!   the rate. `HTTP_E2E_RS_CORE=CLIENT` gives the director a core of its
//!   own instead (the client and servers' core then saturates first).
//! - receive (`HTTP_E2E_RX=napi`, the default): every host's `eth0` in
//!   threaded NAPI mode, its NAPI thread pinned to the host's core (client
//!   and real servers: CLIENT / RS_CORE; director: DIR), GRO on (a veth
//!   has NAPI only with GRO or an XDP program; every NIC driver has GRO),
//!   and TSO off on the bridge's ports (a veth uses the receiver's NAPI
//!   for forwarded packets only when the sending device has no TSO).
//!   Without this a veth receives in the sender's context: the director's
//!   core would then run the real servers' and the client's TCP receive
//!   for every packet it sends, which the proxies send in both directions
//!   and xvsd in one, so the comparison would measure where veth bills the
//!   receive, not the directors. `HTTP_E2E_RX=sender` keeps that veth
//!   default, to show the effect. The bridge runs in its sender's context.
//!
//! CPU accounting per window: the CPU time of the director's threads (its
//! process and its NAPI thread, `/proc/PID/task/*/schedstat`; without
//! `CONFIG_IRQ_TIME_ACCOUNTING` that includes the softirq work run in their
//! context, such as the bridge behind what they send) and of the client and
//! real servers (wrk's rusage, the servers' nginx, or this process for
//! the echo server, and their NAPI threads),
//! each divided by the requests answered; the busy share of each core
//! (`/proc/stat`); and what is left, the CPU other jobs of the machine
//! used meanwhile. The director's CPU per request says what one director
//! core can carry when nothing else limits: the director-bound comparison,
//! which a two-core lab reaches only in part.
//!
//! A shared machine: before each window the bench waits (up to
//! `HTTP_E2E_PATIENCE`) until the idle lab's cores are busy at most
//! `HTTP_E2E_MAX_OTHERS`, and measures a window again (up to 4 tries) when
//! other jobs used more than that during it; windows kept anyway are
//! flagged in the round lines and counted at the end.
//!
//! Procedure: every contender is checked first (GETs until each real
//! server has answered through it), then warmed (`HTTP_E2E_WARMUP`
//! seconds of wrk per variant). Then `HTTP_E2E_RUNS` rounds, each running
//! every variant of every contender in turn, so a slow spell of the machine
//! hits all alike. The tables give medians over the rounds and the ratios
//! of xvsd DR to the others, in the same run. At the end each xvsd prints
//! its per-worker counters.
//!
//! Settings (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HTTP_E2E_SECS` | 5 | wrk duration per measurement, whole seconds |
//! | `HTTP_E2E_WARMUP` | 1 | wrk seconds per contender and variant before round 1 (0: none) |
//! | `HTTP_E2E_RUNS` | 5 | rounds (median over them) |
//! | `HTTP_E2E_CORES` | `0,1` | client core, director core |
//! | `HTTP_E2E_RS_CORE` | director core | the real servers' core |
//! | `HTTP_E2E_RS` | 2 | real servers |
//! | `HTTP_E2E_THREADS` | `HTTP_E2E_RS` | wrk threads (a multiple of the real servers) |
//! | `HTTP_E2E_CONNS` | 64 | wrk connections (all threads) |
//! | `HTTP_E2E_BODY` | 128 | response body, bytes |
//! | `HTTP_E2E_CASES` | `direct,dr,haproxy,nginx` | contenders, in this order |
//! | `HTTP_E2E_MODES` | `keepalive,close` | variants |
//! | `HTTP_E2E_SERVER` | `nginx` | real servers' HTTP server: `nginx` or `echo` |
//! | `HTTP_E2E_RX` | `napi` | `napi` (receive pinned per host) or `sender` |
//! | `HTTP_E2E_MAX_OTHERS` | 0.1 | most CPU other jobs may use during a window, in cores (8: no check) |
//! | `HTTP_E2E_PATIENCE` | 600 | seconds to wait for them to calm down before a window |
//! | `HTTP_E2E_PERF` | | after the rounds, one more window per contender and variant under `perf record -a -g`, to `PREFIX-CONTENDER-VARIANT.data` |
//! | `HTTP_E2E_MD` | | write the tables (markdown, with the run's date, kernel and load) there; a relative path from the workspace root |
//! | `XVSD` | next to the bench | the xvsd binary |
//! | `HTTP_E2E_XVSD_ARGS` | | extra xvsd arguments, e.g. `--busy-poll` |
//!
//! Without root or a needed program (`ip`, `ethtool`, `taskset`, `wrk`,
//! nginx for the real servers) it prints why and exits 0; a missing
//! `haproxy`, nginx stream module or xvsd binary skips that contender and
//! says so. Run as a test (`cargo test --benches`) it does nothing. With
//! the defaults a run takes about 4 minutes (5 rounds x 2 variants x 4
//! contenders x 5 s, plus set-up and warm-up).

mod common;

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    CpuTimes, Res, children_cpu_ns, env_cores, env_list, env_or, ipis, loadavg, median, on_path,
    pin, pin_napi, runtime_ns,
};
use nix::unistd::Pid;
use xvs_lab::{EchoConfig, EchoServer, Family, Host, Mode, Proc, Topology};

/// The service port (HTTP) on the real servers and the VIP.
const PORT: u16 = 80;
/// wrk's per-request timeout (counted as an error beyond it).
const WRK_TIMEOUT: &str = "2s";
/// How long a contender may take to answer its first GET.
const FIRST_ANSWER: Duration = Duration::from_secs(20);
/// Where Debian's nginx keeps its dynamic modules when `nginx -V` does not
/// say.
const NGINX_MODULES: &str = "/usr/lib/nginx/modules";

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "http_e2e: a benchmark; run it with `cargo bench -p xvs-benches --bench http_e2e`"
        );
        return;
    }
    if let Err(e) = xvs_lab::preflight(&["ethtool", "taskset"]) {
        println!("http_e2e: skipped: {e}");
        return;
    }
    if !on_path("wrk") {
        println!("http_e2e: skipped: `wrk` not found on PATH (Debian: apt-get install wrk)");
        return;
    }
    let opts = match Opts::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("http_e2e: {e}");
            std::process::exit(2);
        }
    };
    if opts.server == Server::Nginx && !on_path("nginx") {
        println!(
            "http_e2e: skipped: `nginx` not found on PATH: the real servers run it \
             (Debian: apt-get install nginx; or HTTP_E2E_SERVER=echo)"
        );
        return;
    }
    if let Err(e) = run(&opts) {
        eprintln!("http_e2e: {e}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------ options

#[derive(Debug)]
struct Opts {
    secs: u64,
    warmup: u64,
    runs: usize,
    client_core: usize,
    dir_core: usize,
    rs_core: usize,
    real_servers: usize,
    threads: usize,
    conns: usize,
    body: usize,
    cases: Vec<Kind>,
    modes: Vec<Variant>,
    server: Server,
    rx: Rx,
    xvsd: Option<PathBuf>,
    xvsd_args: Vec<String>,
    /// Most CPU (in cores) other jobs may take during a window.
    max_others: f64,
    /// How long to wait for them to calm down before a window.
    patience: Duration,
    /// Profile one extra window of each contender, files starting so.
    perf: Option<PathBuf>,
    md: Option<PathBuf>,
}

/// The real servers' HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Nginx,
    Echo,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Nginx => "nginx",
            Server::Echo => "the lab's echo server",
        }
    }
}

/// Where every host's veth receive runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    /// Threaded NAPI, pinned to the host's core.
    Napi,
    /// The veth default: in the sender's context.
    Sender,
}

impl Opts {
    fn from_env() -> Res<Opts> {
        let (client_core, dir_core) = env_cores("HTTP_E2E_CORES", "0,1")?;
        let real_servers: usize = env_or("HTTP_E2E_RS", 2)?;
        if !(1..=xvs_lab::topology::MAX_REAL_SERVERS).contains(&real_servers) {
            return Err(format!(
                "HTTP_E2E_RS={real_servers}: 1..={}",
                xvs_lab::topology::MAX_REAL_SERVERS
            ));
        }
        let threads: usize = env_or("HTTP_E2E_THREADS", real_servers)?;
        if threads == 0 || !threads.is_multiple_of(real_servers) {
            return Err(format!(
                "HTTP_E2E_THREADS={threads}: a multiple of the {real_servers} real servers \
                 (direct gives each wrk thread one real server)"
            ));
        }
        let conns: usize = env_or("HTTP_E2E_CONNS", 64)?;
        if conns < threads || conns > 8000 {
            return Err(format!(
                "HTTP_E2E_CONNS={conns}: from the {threads} threads to 8000"
            ));
        }
        let body: usize = env_or("HTTP_E2E_BODY", 128)?;
        if body > 1 << 20 {
            return Err(format!("HTTP_E2E_BODY={body}: at most 1 MiB"));
        }
        let secs: u64 = env_or("HTTP_E2E_SECS", 5)?;
        if !(1..=3600).contains(&secs) {
            return Err(format!("HTTP_E2E_SECS={secs}: 1..=3600"));
        }
        let server = match env_or("HTTP_E2E_SERVER", "nginx".to_owned())?.as_str() {
            "nginx" => Server::Nginx,
            "echo" => Server::Echo,
            other => return Err(format!("HTTP_E2E_SERVER={other:?}: nginx or echo")),
        };
        let rx = match env_or("HTTP_E2E_RX", "napi".to_owned())?.as_str() {
            "napi" => Rx::Napi,
            "sender" => Rx::Sender,
            other => return Err(format!("HTTP_E2E_RX={other:?}: napi or sender")),
        };
        Ok(Opts {
            secs,
            warmup: env_or("HTTP_E2E_WARMUP", 1)?,
            runs: env_or("HTTP_E2E_RUNS", 5usize)?.max(1),
            client_core,
            dir_core,
            rs_core: env_or("HTTP_E2E_RS_CORE", dir_core)?,
            real_servers,
            threads,
            conns,
            body,
            cases: env_list("HTTP_E2E_CASES", "direct,dr,haproxy,nginx", Kind::from_name)?,
            modes: env_list("HTTP_E2E_MODES", "keepalive,close", Variant::from_name)?,
            server,
            rx,
            max_others: env_or("HTTP_E2E_MAX_OTHERS", 0.1)?,
            patience: Duration::from_secs(env_or("HTTP_E2E_PATIENCE", 600)?),
            perf: std::env::var_os("HTTP_E2E_PERF")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            md: common::env_out_path("HTTP_E2E_MD")?,
            xvsd: common::xvsd_path(),
            xvsd_args: std::env::var("HTTP_E2E_XVSD_ARGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }

    /// The path every GET asks for.
    fn path(&self) -> String {
        format!("/bytes/{}", self.body)
    }
}

// ------------------------------------------------------------------ contenders

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Direct,
    Dr,
    Haproxy,
    Nginx,
}

impl Kind {
    fn from_name(s: &str) -> Res<Kind> {
        match s {
            "direct" => Ok(Kind::Direct),
            "dr" => Ok(Kind::Dr),
            "haproxy" => Ok(Kind::Haproxy),
            "nginx" => Ok(Kind::Nginx),
            _ => Err(format!(
                "unknown contender {s:?} (direct, dr, haproxy, nginx)"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Dr => "dr",
            Kind::Haproxy => "haproxy",
            Kind::Nginx => "nginx",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Direct => "direct (no director)",
            Kind::Dr => "xvsd DR (-g, rr)",
            Kind::Haproxy => "HAProxy (mode tcp, roundrobin)",
            Kind::Nginx => "nginx stream (round robin)",
        }
    }
}

/// HTTP connection use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Persistent connections (HTTP/1.1 default).
    KeepAlive,
    /// `Connection: close`: one TCP connection per request.
    Close,
}

impl Variant {
    fn from_name(s: &str) -> Res<Variant> {
        match s {
            "keepalive" | "keep-alive" => Ok(Variant::KeepAlive),
            "close" => Ok(Variant::Close),
            _ => Err(format!("unknown variant {s:?} (keepalive, close)")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Variant::KeepAlive => "keep-alive",
            Variant::Close => "Connection: close",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Variant::KeepAlive => "keepalive",
            Variant::Close => "close",
        }
    }
}

/// A long-running program of a case: stopped with SIGTERM on drop (then
/// killed); for xvsd, its exit summary is printed.
struct Daemon {
    proc: Option<Proc>,
    log: PathBuf,
    what: String,
    /// Print the log's lines after `stopping` when it ends (xvsd's
    /// per-worker counters).
    summary: bool,
}

impl Daemon {
    fn spawn(mut cmd: std::process::Command, log: PathBuf, what: String) -> Res<Daemon> {
        let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(
                file.try_clone()
                    .map_err(|e| format!("{}: {e}", log.display()))?,
            )
            .stderr(file);
        let proc = Proc::spawn(&mut cmd).map_err(|e| format!("start {what}: {e}"))?;
        Ok(Daemon {
            proc: Some(proc),
            log,
            what,
            summary: false,
        })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An error if it has exited.
    fn check_alive(&mut self) -> Res<()> {
        let exited = self.proc.as_mut().and_then(|p| p.try_wait().ok().flatten());
        match exited {
            Some(status) => Err(format!(
                "{} exited ({status}): {}",
                self.what,
                self.log_text()
            )),
            None => Ok(()),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(p) = self.proc.take() {
            let _ = p.stop(Duration::from_secs(3));
            if self.summary {
                let log = self.log_text();
                for line in log.lines().skip_while(|l| !l.contains("stopping")).skip(1) {
                    println!("{line}");
                }
            }
        }
    }
}

/// The real servers' HTTP servers (held until the case ends).
#[derive(Default)]
struct Servers {
    nginx: Vec<Daemon>,
    /// Held only: dropping one stops it.
    _echo: Vec<EchoServer>,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One contender, set up and answering. Fields drop in order: the director,
/// the real servers' servers, their files, then the lab.
struct Case {
    kind: Kind,
    /// wrk's URL.
    url: String,
    /// The wrk script (targets of `direct`, the result line).
    script: PathBuf,
    /// How the receive of each host is pinned.
    pinning: Vec<String>,
    /// The director's process and NAPI threads, for its CPU time.
    dir_tasks: Vec<i32>,
    /// The real servers' nginx and the client's and real servers' NAPI
    /// threads.
    side_tasks: Vec<i32>,
    director: Option<Daemon>,
    _servers: Servers,
    _dir: TempDir,
    lab: Topology,
}

impl Case {
    fn setup(kind: Kind, opts: &Opts, tools: &Tools) -> Res<Case> {
        let what = |e: xvs_lab::LabError| format!("{}: {e}", kind.name());
        let lab = Topology::builder(Mode::Dr)
            .real_servers(opts.real_servers)
            .build()
            .map_err(what)?;
        let dir = TempDir(std::env::temp_dir().join(format!(
            "xvs-http-e2e-{}-{}",
            std::process::id(),
            kind.name()
        )));
        std::fs::create_dir_all(&dir.0).map_err(|e| format!("{}: {e}", dir.0.display()))?;
        // The bridge makes no netfilter calls (br_netfilter is built in).
        lab.switch()
            .sysctl(&[
                ("net.bridge.bridge-nf-call-iptables", "0"),
                ("net.bridge.bridge-nf-call-ip6tables", "0"),
                ("net.bridge.bridge-nf-call-arptables", "0"),
            ])
            .map_err(|e| format!("bridge netfilter off: {e}"))?;
        // One connection per request reuses source ports within seconds:
        // the widest range, for the client and the proxies' own connects,
        // and TIME_WAIT reuse where the client closes first. wrk closes as
        // soon as it has read a `Connection: close` answer, before the
        // server's FIN when that comes later (as through a proxy), so the
        // client holds the TIME_WAIT; without reuse its 64k ports run out
        // in seconds at these rates and the rate collapses (seen with
        // HAProxy: 8k, then 3.7k, then 150 requests per second).
        for host in [lab.client(), lab.director()] {
            host.sysctl(&[
                ("net.ipv4.ip_local_port_range", "1024 65535"),
                ("net.ipv4.tcp_tw_reuse", "1"),
            ])
            .map_err(what)?;
        }
        let mut pinning = Vec::new();
        // The client's and real servers' NAPI threads and nginx processes,
        // for their CPU time (wrk's own comes from its rusage).
        let mut side_tasks = Vec::new();
        if opts.rx == Rx::Napi {
            napi_eligible(&lab)?;
            let p = pin_napi(lab.client(), "eth0", opts.client_core, true)?;
            pinning.push(format!("client {}", p.how));
            side_tasks.extend(p.threads);
            for rs in lab.real_servers() {
                let p = pin_napi(rs, "eth0", opts.rs_core, true)?;
                pinning.push(format!("{} {}", rs.role(), p.how));
                side_tasks.extend(p.threads);
            }
        }
        let servers = start_servers(&lab, &dir.0, opts)?;
        if opts.server == Server::Echo {
            // The echo servers are threads of this process (which is idle
            // otherwise while wrk runs).
            side_tasks.push(std::process::id() as i32);
        }
        side_tasks.extend(
            servers
                .nginx
                .iter()
                .filter_map(|d| d.proc.as_ref())
                .map(|p| p.id() as i32),
        );
        let vip = lab.vip(Family::V4);
        let path = opts.path();
        let (director, url) = match kind {
            Kind::Direct => {
                let rs1 = lab.real_servers()[0].addr(Family::V4);
                (None, format!("http://{rs1}{path}"))
            }
            Kind::Dr => {
                let d = start_xvsd(&lab, &dir.0, opts)?;
                (Some(d), format!("http://{vip}{path}"))
            }
            Kind::Haproxy => {
                let d = start_haproxy(&lab, &dir.0, opts)?;
                (Some(d), format!("http://{vip}{path}"))
            }
            Kind::Nginx => {
                let module = tools.stream_module.as_ref().ok().cloned().flatten();
                let d = start_nginx_stream(&lab, &dir.0, opts, module.as_deref())?;
                (Some(d), format!("http://{vip}{path}"))
            }
        };
        // The director's threads: its process, and its NAPI thread (the
        // receive of the veth, where XDP and the copy into the AF_XDP ring
        // run for xvsd).
        let mut dir_tasks: Vec<i32> = director
            .as_ref()
            .and_then(|d| d.proc.as_ref())
            .map(|p| p.id() as i32)
            .into_iter()
            .collect();
        if kind != Kind::Direct && opts.rx == Rx::Napi {
            // xvsd's XDP program gave the veth its NAPI; the proxies get it
            // from GRO.
            let gro = kind != Kind::Dr;
            let p = pin_napi(lab.director(), "eth0", opts.dir_core, gro)?;
            pinning.push(format!("director {}", p.how));
            dir_tasks.extend(p.threads);
        }
        let targets: Vec<SocketAddr> = match kind {
            Kind::Direct => lab
                .real_servers()
                .iter()
                .map(|rs| SocketAddr::new(rs.addr(Family::V4), PORT))
                .collect(),
            _ => Vec::new(),
        };
        let script = dir.0.join("wrk.lua");
        std::fs::write(&script, wrk_script(&targets))
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let mut case = Case {
            kind,
            url,
            script,
            pinning,
            dir_tasks,
            side_tasks,
            director,
            _servers: servers,
            _dir: dir,
            lab,
        };
        case.check(opts)?;
        Ok(case)
    }

    /// GETs through the contender until every real server has answered
    /// (round robin works), or fails.
    fn check(&mut self, opts: &Opts) -> Res<()> {
        let vip = SocketAddr::new(self.lab.vip(Family::V4), PORT);
        let path = opts.path();
        let want: Vec<&str> = self.lab.real_servers().iter().map(Host::role).collect();
        let mut seen: Vec<String> = Vec::new();
        let deadline = Instant::now() + FIRST_ANSWER;
        let mut tries = 0;
        while want.iter().any(|w| !seen.iter().any(|s| s == w)) {
            let to = match self.kind {
                Kind::Direct => SocketAddr::new(
                    self.lab.real_servers()[tries % want.len()].addr(Family::V4),
                    PORT,
                ),
                _ => vip,
            };
            tries += 1;
            let answer = self
                .lab
                .client()
                .http_get_retry(to, &path, Duration::from_secs(1));
            if let Some(d) = self.director.as_mut() {
                d.check_alive()?;
            }
            match answer {
                Ok(r) if r.status == 200 && r.body.len() == opts.body => {
                    if let Some(name) = r.real_server() {
                        if !seen.iter().any(|s| s == name) {
                            seen.push(name.to_owned());
                        }
                    }
                }
                Ok(r) => {
                    return Err(format!(
                        "{}: GET {path} from {to}: status {}, {} bytes (want 200, {})",
                        self.kind.name(),
                        r.status,
                        r.body.len(),
                        opts.body
                    ));
                }
                Err(_) if Instant::now() < deadline => {}
                Err(e) => {
                    let log = self
                        .director
                        .as_ref()
                        .map(Daemon::log_text)
                        .unwrap_or_default();
                    return Err(format!(
                        "{}: no answer from {to} in {FIRST_ANSWER:?}: {e}\n{log}",
                        self.kind.name()
                    ));
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{}: only {seen:?} of {want:?} answered in {FIRST_ANSWER:?}",
                    self.kind.name()
                ));
            }
        }
        Ok(())
    }
}

/// Lets every host's veth take its NAPI path for what the bridge hands
/// it: TSO off on the bridge's ports. A veth sends a packet through the
/// receiver's NAPI (where GRO and the pinned NAPI thread are) only when the
/// sending device has no TSO or the packet is a local socket's (Linux
/// `veth_skb_is_eligible_for_gro`); the bridge's ports are the senders
/// here and forward, so with TSO on (the veth default) every receive would
/// stay in the sender's context despite GRO and threaded NAPI. A director
/// with TSO (the proxies' `eth0`) then has its large sends segmented by the
/// bridge's port, as before a NIC without TSO.
fn napi_eligible(lab: &Topology) -> Res<()> {
    let sw = lab.switch();
    let links = sw
        .ip(&["-o", "link", "show", "master", "br0"])
        .map_err(|e| format!("bridge ports: {e}"))?;
    for line in links.lines() {
        // `7: rs1@if6: <...> ...`
        let Some(port) = line
            .split(':')
            .nth(1)
            .map(|p| p.trim().split('@').next().unwrap_or_default())
        else {
            continue;
        };
        sw.exec(&["ethtool", "-K", port, "tso", "off"])
            .map_err(|e| format!("TSO off on bridge port {port}: {e}"))?;
    }
    Ok(())
}

/// The real servers' HTTP servers, answering `GET /bytes/BODY` with
/// `X-Real-Server: rsN`.
fn start_servers(lab: &Topology, dir: &Path, opts: &Opts) -> Res<Servers> {
    let mut out = Servers::default();
    for rs in lab.real_servers() {
        match opts.server {
            Server::Echo => {
                // Its threads (and those they start) inherit this thread's
                // core.
                pin(Pid::from_raw(0), opts.rs_core)?;
                let cfg = EchoConfig::wildcard(rs.role(), PORT, 0);
                let s = EchoServer::start_in(rs, &cfg);
                pin(Pid::from_raw(0), opts.client_core)?;
                out._echo
                    .push(s.map_err(|e| format!("echo server on {}: {e}", rs.role()))?);
            }
            Server::Nginx => {
                let d = dir.join(rs.role());
                let html = d.join("html").join("bytes");
                std::fs::create_dir_all(&html).map_err(|e| format!("{}: {e}", html.display()))?;
                let body = format!("{}\n", rs.role());
                let mut bytes = body.into_bytes();
                bytes.resize(opts.body, b'x');
                let file = html.join(opts.body.to_string());
                std::fs::write(&file, &bytes).map_err(|e| format!("{}: {e}", file.display()))?;
                let conf = d.join("nginx.conf");
                std::fs::write(&conf, nginx_server_conf(&d, rs.role()))
                    .map_err(|e| format!("{}: {e}", conf.display()))?;
                let mut cmd = rs.command("taskset");
                cmd.args(["-c", &opts.rs_core.to_string(), "nginx", "-p"])
                    .arg(&d)
                    .arg("-c")
                    .arg(&conf);
                let daemon =
                    Daemon::spawn(cmd, d.join("stderr.log"), format!("nginx on {}", rs.role()))?;
                out.nginx.push(daemon);
            }
        }
    }
    Ok(out)
}

/// nginx on a real server: one process (nothing to orphan, one thing to
/// pin), the static file from `root`, no access log, keep-alive for as
/// long as the client wants.
fn nginx_server_conf(dir: &Path, name: &str) -> String {
    let d = dir.display();
    format!(
        "daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         worker_rlimit_nofile 65536;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n\
         \taccess_log off;\n\
         \tdefault_type application/octet-stream;\n\
         \tsendfile on;\n\
         \topen_file_cache max=64;\n\
         \tkeepalive_requests 100000000;\n\
         \tkeepalive_timeout 300s;\n\
         \tclient_body_temp_path {d}/tmp;\n\
         \tproxy_temp_path {d}/tmp;\n\
         \tfastcgi_temp_path {d}/tmp;\n\
         \tuwsgi_temp_path {d}/tmp;\n\
         \tscgi_temp_path {d}/tmp;\n\
         \tserver {{\n\
         \t\tlisten {PORT} backlog=4096;\n\
         \t\troot {d}/html;\n\
         \t\tadd_header X-Real-Server {name} always;\n\
         \t}}\n\
         }}\n"
    )
}

/// xvsd on the director: `-g`, rr over every real server; ready once its
/// XDP program is on `eth0`.
fn start_xvsd(lab: &Topology, dir: &Path, opts: &Opts) -> Res<Daemon> {
    let bin = opts.xvsd.as_ref().ok_or("no xvsd binary")?;
    let vip = lab.vip(Family::V4);
    let mut config = format!("-A -t {vip}:{PORT} -s rr\n");
    for rs in lab.real_servers() {
        let _ = writeln!(
            config,
            "-a -t {vip}:{PORT} -r {}:{PORT} -g -w 1",
            rs.addr(Family::V4)
        );
    }
    let conf = dir.join("xvsd.conf");
    std::fs::write(&conf, config).map_err(|e| format!("{}: {e}", conf.display()))?;
    let core = opts.dir_core.to_string();
    let mut cmd = lab.director().command("taskset");
    cmd.args(["-c", &core])
        .arg(bin)
        .args(["--iface", "eth0", "--cores", &core, "--config"])
        .arg(&conf)
        .arg("--socket")
        .arg(dir.join("xvsd.sock"))
        .args(&opts.xvsd_args);
    let mut d = Daemon::spawn(cmd, dir.join("xvsd.log"), "xvsd".to_owned())?;
    d.summary = true;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !matches!(lab.director().xdp_prog("eth0"), Ok(Some(_))) {
        d.check_alive()?;
        if Instant::now() > deadline {
            return Err(format!("xvsd did not attach XDP in 15 s: {}", d.log_text()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(d)
}

/// HAProxy on the director: TCP mode, round robin, one thread.
fn start_haproxy(lab: &Topology, dir: &Path, opts: &Opts) -> Res<Daemon> {
    let vip = lab.vip(Family::V4);
    // maxconn: HAProxy 2.6 refuses more than the file limit allows (about
    // 9990 here).
    let mut cfg = format!(
        "global\n\
         \tnbthread 1\n\
         \tmaxconn 8000\n\
         defaults\n\
         \tmode tcp\n\
         \tmaxconn 8000\n\
         \ttimeout connect 5s\n\
         \ttimeout client 60s\n\
         \ttimeout server 60s\n\
         frontend fe\n\
         \tbind {vip}:{PORT}\n\
         \tdefault_backend rs\n\
         backend rs\n\
         \tbalance roundrobin\n"
    );
    for rs in lab.real_servers() {
        let _ = writeln!(cfg, "\tserver {} {}:{PORT}", rs.role(), rs.addr(Family::V4));
    }
    let conf = dir.join("haproxy.cfg");
    std::fs::write(&conf, cfg).map_err(|e| format!("{}: {e}", conf.display()))?;
    let mut cmd = lab.director().command("taskset");
    cmd.args(["-c", &opts.dir_core.to_string(), "haproxy", "-db", "-f"])
        .arg(&conf);
    Daemon::spawn(cmd, dir.join("haproxy.log"), "haproxy".to_owned())
}

/// nginx `stream` on the director: `proxy_pass` to an upstream of every
/// real server (round robin, the default), one process.
fn start_nginx_stream(
    lab: &Topology,
    dir: &Path,
    opts: &Opts,
    module: Option<&Path>,
) -> Res<Daemon> {
    let vip = lab.vip(Family::V4);
    let d = dir.join("proxy");
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    let ds = d.display();
    let load = module
        .map(|m| format!("load_module {};\n", m.display()))
        .unwrap_or_default();
    let mut upstream = String::new();
    for rs in lab.real_servers() {
        let _ = writeln!(upstream, "\t\tserver {}:{PORT};", rs.addr(Family::V4));
    }
    let conf_text = format!(
        "{load}\
         daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         worker_rlimit_nofile 65536;\n\
         pid {ds}/nginx.pid;\n\
         error_log {ds}/error.log warn;\n\
         events {{ worker_connections 16384; }}\n\
         stream {{\n\
         \tupstream rs {{\n\
         {upstream}\
         \t}}\n\
         \tserver {{\n\
         \t\tlisten {vip}:{PORT} backlog=4096;\n\
         \t\tproxy_pass rs;\n\
         \t}}\n\
         }}\n"
    );
    let conf = d.join("nginx.conf");
    std::fs::write(&conf, conf_text).map_err(|e| format!("{}: {e}", conf.display()))?;
    let mut cmd = lab.director().command("taskset");
    cmd.args(["-c", &opts.dir_core.to_string(), "nginx", "-p"])
        .arg(&d)
        .arg("-c")
        .arg(&conf);
    Daemon::spawn(cmd, d.join("stderr.log"), "nginx stream".to_owned())
}

// ------------------------------------------------------------------ tools

/// What the contenders need beyond wrk.
struct Tools {
    haproxy: Res<String>,
    /// nginx's stream module: `Ok(None)` built in, `Ok(Some(path))` to
    /// load, `Err(why)` missing.
    stream_module: Res<Option<PathBuf>>,
    nginx: Option<String>,
    wrk: String,
}

fn first_line(argv: &[&str]) -> Option<String> {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

impl Tools {
    fn probe() -> Tools {
        let haproxy = if on_path("haproxy") {
            Ok(first_line(&["haproxy", "-v"]).unwrap_or_else(|| "haproxy".into()))
        } else {
            Err("`haproxy` not found on PATH (Debian: apt-get install haproxy)".into())
        };
        let (nginx, stream_module) = if on_path("nginx") {
            let v = std::process::Command::new("nginx").arg("-V").output();
            let text = v
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            let version = text.lines().next().map(|l| l.trim().to_owned());
            let configure: Vec<&str> = text.split_whitespace().collect();
            let modules = configure
                .iter()
                .find_map(|a| a.strip_prefix("--modules-path="))
                .unwrap_or(NGINX_MODULES);
            let stream = if configure.contains(&"--with-stream") {
                Ok(None)
            } else if configure.contains(&"--with-stream=dynamic") {
                let so = Path::new(modules).join("ngx_stream_module.so");
                if so.is_file() {
                    Ok(Some(so))
                } else {
                    Err(format!(
                        "nginx's stream module {} is missing (Debian: apt-get install \
                         libnginx-mod-stream)",
                        so.display()
                    ))
                }
            } else {
                Err("this nginx was built without the stream module".into())
            };
            (version, stream)
        } else {
            (
                None,
                Err("`nginx` not found on PATH (Debian: apt-get install nginx)".into()),
            )
        };
        Tools {
            haproxy,
            stream_module,
            nginx,
            wrk: first_line(&["wrk", "-v"]).unwrap_or_else(|| "wrk".into()),
        }
    }

    /// Why `kind` cannot run here, if it cannot.
    fn missing(&self, kind: Kind, opts: &Opts) -> Option<String> {
        match kind {
            Kind::Direct => None,
            Kind::Dr if opts.xvsd.is_none() => Some(
                "no xvsd binary (set XVSD, or `cargo build --release -p xvs-dataplane --bin \
                 xvsd` with the same CARGO_TARGET_DIR)"
                    .into(),
            ),
            Kind::Dr => None,
            Kind::Haproxy => self.haproxy.as_ref().err().cloned(),
            Kind::Nginx => self.stream_module.as_ref().err().cloned(),
        }
    }
}

// ------------------------------------------------------------------ wrk

/// The wrk script: with `targets`, thread `i` connects to `targets[i mod
/// n]`; `done()` prints one `XVS-RESULT` line (latencies in microseconds).
fn wrk_script(targets: &[SocketAddr]) -> String {
    let mut s = String::new();
    if !targets.is_empty() {
        s.push_str("local targets = {\n");
        for t in targets {
            let _ = writeln!(s, "  {{ \"{}\", \"{}\" }},", t.ip(), t.port());
        }
        s.push_str(
            "}\n\
             local n = 0\n\
             function setup(thread)\n\
             \x20 local t = targets[(n % #targets) + 1]\n\
             \x20 thread.addr = wrk.lookup(t[1], t[2])[1]\n\
             \x20 n = n + 1\n\
             end\n",
        );
    }
    s.push_str(
        "function done(summary, latency, requests)\n\
         \x20 local e = summary.errors\n\
         \x20 io.write(string.format(\"XVS-RESULT requests=%d duration_us=%d connect=%d \
         read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\\n\",\n\
         \x20   summary.requests, summary.duration, e.connect, e.read, e.write, e.status,\n\
         \x20   e.timeout, latency:percentile(50), latency:percentile(99)))\n\
         end\n",
    );
    s
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    /// Socket errors (connect, read, write, timeout) and non-2xx/3xx answers.
    errors: u64,
    /// CPU time of the director's process and NAPI threads per request,
    /// microseconds.
    dir_us_per_req: f64,
    /// CPU time of wrk, the real servers' nginx and the client's and real
    /// servers' NAPI threads per request, microseconds.
    side_us_per_req: f64,
    /// CPU used by everything else during the window, in cores (0.25: a
    /// quarter of one core).
    others: f64,
    /// Inter-processor interrupts (wake-ups from the other core) into the
    /// client's and the director's core, per request.
    ipis_client: f64,
    ipis_dir: f64,
    /// Busy share of the client, director and real-server cores.
    busy_client: f64,
    busy_dir: f64,
    busy_rs: f64,
}

/// One wrk run of `secs` against `case` in `variant`.
fn wrk(case: &Case, variant: Variant, secs: u64, opts: &Opts) -> Res<Sample> {
    let mut cmd = case.lab.client().command("taskset");
    cmd.args([
        "-c",
        &opts.client_core.to_string(),
        "wrk",
        "-t",
        &opts.threads.to_string(),
        "-c",
        &opts.conns.to_string(),
        "-d",
        &format!("{secs}s"),
        "--timeout",
        WRK_TIMEOUT,
        "-s",
    ])
    .arg(&case.script);
    if variant == Variant::Close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(&case.url);
    let runtime = |tasks: &[i32]| -> u64 { tasks.iter().map(|t| runtime_ns(*t)).sum() };
    let before = CpuTimes::now();
    let start = Instant::now();
    let (dir_before, side_before) = (runtime(&case.dir_tasks), runtime(&case.side_tasks));
    let wrk_before = children_cpu_ns();
    let ipis_before = ipis();
    let out = cmd
        .output()
        .map_err(|e| format!("{}: wrk: {e}", case.kind.name()))?;
    let wrk_ns = children_cpu_ns().saturating_sub(wrk_before);
    let ipis_after = ipis();
    let ipis_on = |core: usize| -> f64 {
        let n = |v: &[u64]| v.get(core).copied().unwrap_or(0);
        n(&ipis_after).saturating_sub(n(&ipis_before)) as f64
    };
    let (dir_after, side_after) = (runtime(&case.dir_tasks), runtime(&case.side_tasks));
    let after = CpuTimes::now();
    let wall = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("XVS-RESULT "))
        .ok_or_else(|| {
            format!(
                "{}: wrk gave no result ({}): {stdout}{}",
                case.kind.name(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let duration = field("duration_us") / 1e6;
    if duration <= 0.0 || field("requests") == 0.0 {
        let log = case
            .director
            .as_ref()
            .map(Daemon::log_text)
            .unwrap_or_default();
        return Err(format!(
            "{} ({}): no request answered: {line}\n{log}",
            case.kind.name(),
            variant.name()
        ));
    }
    let errors = ["connect", "read", "write", "status", "timeout"]
        .iter()
        .map(|f| field(f) as u64)
        .sum();
    let dir_ns = dir_after.saturating_sub(dir_before) as f64;
    let side_ns = (side_after.saturating_sub(side_before) + wrk_ns) as f64;
    Ok(Sample {
        dir_us_per_req: dir_ns / 1e3 / field("requests"),
        side_us_per_req: side_ns / 1e3 / field("requests"),
        ipis_client: ipis_on(opts.client_core) / field("requests"),
        ipis_dir: ipis_on(opts.dir_core) / field("requests"),
        rps: field("requests") / duration,
        p50_us: field("p50_us"),
        p99_us: field("p99_us"),
        errors,
        // Everything else the cores did meanwhile: other jobs of the
        // machine (and this bench's own checks, which are idle here).
        others: (after.busy_ns_since(&before) as f64 - dir_ns - side_ns).max(0.0) / 1e9 / wall,
        busy_client: after.busy_since(&before, opts.client_core),
        busy_dir: after.busy_since(&before, opts.dir_core),
        busy_rs: after.busy_since(&before, opts.rs_core),
    })
}

/// One extra window per contender and variant under `perf record -a -g`
/// (both cores, call graphs), written to `PREFIX-CONTENDER-VARIANT.data`;
/// perf's own cost makes these windows slower, so they stay out of the
/// tables.
fn profile(cases: &[Case], prefix: &Path, opts: &Opts) -> Res<()> {
    if !on_path("perf") {
        println!(
            "http_e2e: HTTP_E2E_PERF: `perf` not found on PATH (Debian: apt-get install linux-perf)"
        );
        return Ok(());
    }
    println!();
    for variant in &opts.modes {
        for case in cases {
            wait_quiet(opts);
            let file = PathBuf::from(format!(
                "{}-{}-{}.data",
                prefix.display(),
                case.kind.name(),
                variant.short()
            ));
            let secs = opts.secs.to_string();
            let mut perf = std::process::Command::new("perf");
            perf.args(["record", "-q", "-g", "-a", "-o"])
                .arg(&file)
                .args(["--", "sleep", &secs])
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            let mut perf = Proc::spawn(&mut perf).map_err(|e| format!("perf: {e}"))?;
            let s = wrk(case, *variant, opts.secs, opts);
            let status = perf.child_mut().wait().map_err(|e| format!("perf: {e}"))?;
            let s = s?;
            println!(
                "http_e2e: profile {} ({status}): {} {} req/s under perf",
                file.display(),
                case.kind.name(),
                rate(s.rps)
            );
        }
    }
    Ok(())
}

/// Tries per measurement when other jobs took more than
/// `HTTP_E2E_MAX_OTHERS` during the window.
const TRIES: usize = 4;

/// One window of `case` in `variant` on a quiet machine: waits until the
/// other jobs of the machine are below `HTTP_E2E_MAX_OTHERS`, measures, and
/// measures again (up to [`TRIES`] times) when they were not quiet during
/// the window. The last try is kept whatever it saw.
fn measure(case: &Case, variant: Variant, opts: &Opts) -> Res<Sample> {
    let mut tries = 0;
    loop {
        tries += 1;
        wait_quiet(opts);
        let s = wrk(case, variant, opts.secs, opts)?;
        if s.others <= opts.max_others || tries >= TRIES {
            return Ok(s);
        }
        println!(
            "http_e2e: {} {}: other jobs used {} of a core during the window: again",
            case.kind.name(),
            variant.name(),
            pct(s.others)
        );
    }
}

/// Waits (at most `HTTP_E2E_PATIENCE`) until the cores, where the lab is
/// idle, are busy at most `HTTP_E2E_MAX_OTHERS` over one second.
fn wait_quiet(opts: &Opts) {
    if opts.max_others >= 8.0 {
        return;
    }
    let deadline = Instant::now() + opts.patience;
    let mut said = false;
    loop {
        let before = CpuTimes::now();
        std::thread::sleep(Duration::from_secs(1));
        let busy = CpuTimes::now().busy_ns_since(&before) as f64 / 1e9;
        if busy <= opts.max_others || Instant::now() > deadline {
            return;
        }
        if !said {
            println!(
                "http_e2e: waiting for other jobs to calm down ({} of a core busy)",
                pct(busy)
            );
            said = true;
        }
    }
}

// ------------------------------------------------------------------ report

fn rate(v: f64) -> String {
    if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1e3)
}

fn pct(f: f64) -> String {
    format!("{:.0}%", f * 100.0)
}

struct Row {
    kind: Kind,
    rps: f64,
    min: f64,
    max: f64,
    p50: f64,
    p99: f64,
    errors: u64,
    dir_us: f64,
    side_us: f64,
    others: f64,
    ipis_client: f64,
    ipis_dir: f64,
    busy_client: f64,
    busy_dir: f64,
    busy_rs: f64,
}

impl Row {
    fn of(kind: Kind, s: &[Sample]) -> Row {
        let rps: Vec<f64> = s.iter().map(|x| x.rps).collect();
        let m = |f: fn(&Sample) -> f64| median(&s.iter().map(f).collect::<Vec<_>>());
        Row {
            kind,
            rps: median(&rps),
            min: rps.iter().copied().fold(f64::INFINITY, f64::min),
            max: rps.iter().copied().fold(0.0, f64::max),
            p50: m(|x| x.p50_us),
            p99: m(|x| x.p99_us),
            errors: s.iter().map(|x| x.errors).sum(),
            dir_us: m(|x| x.dir_us_per_req),
            side_us: m(|x| x.side_us_per_req),
            others: m(|x| x.others),
            ipis_client: m(|x| x.ipis_client),
            ipis_dir: m(|x| x.ipis_dir),
            busy_client: m(|x| x.busy_client),
            busy_dir: m(|x| x.busy_dir),
            busy_rs: m(|x| x.busy_rs),
        }
    }
}

fn run(opts: &Opts) -> Res<()> {
    let ncpu = std::thread::available_parallelism().map_or(1, usize::from);
    for core in [opts.client_core, opts.dir_core, opts.rs_core] {
        if core >= ncpu {
            return Err(format!("core {core}: this machine has {ncpu} cores"));
        }
    }
    // This thread and what it starts (ip, sysctl, the checks) stay off the
    // director's core.
    pin(Pid::from_raw(0), opts.client_core)?;
    let tools = Tools::probe();
    let mut kinds = Vec::new();
    for &kind in &opts.cases {
        match tools.missing(kind, opts) {
            Some(why) => println!("http_e2e: {} SKIPPED: {why}", kind.label()),
            None => kinds.push(kind),
        }
    }
    println!("http_e2e: {}", tools.wrk);
    if let Some(v) = &tools.nginx {
        println!("http_e2e: {v}");
    }
    if let Ok(v) = &tools.haproxy {
        println!("http_e2e: {v}");
    }
    if let Some(x) = &opts.xvsd {
        println!("http_e2e: xvsd = {}", x.display());
    }
    let mut cases = Vec::new();
    for kind in kinds {
        let case = Case::setup(kind, opts, &tools)?;
        for p in &case.pinning {
            println!("http_e2e: {:<8} rx: {p}", kind.name());
        }
        cases.push(case);
    }
    if cases.is_empty() {
        return Err("no contender can run".into());
    }
    let server = match opts.server {
        Server::Nginx => "nginx (one process)",
        Server::Echo => "the lab's echo server (a thread per connection)",
    };
    let rs_core = if opts.rs_core == opts.client_core {
        "sharing the client's core".to_owned()
    } else if opts.rs_core == opts.dir_core {
        "sharing the director's core".to_owned()
    } else {
        format!("on core {}", opts.rs_core)
    };
    println!(
        "http_e2e: {} rounds of {} s per contender and variant; wrk -t{} -c{} GET {} \
         ({}-byte body) from {} real servers running {server} ({rs_core}); client on core {}, \
         director on core {}; receive {}; {ncpu} cores; load average {}",
        opts.runs,
        opts.secs,
        opts.threads,
        opts.conns,
        opts.path(),
        opts.body,
        opts.real_servers,
        opts.client_core,
        opts.dir_core,
        match opts.rx {
            Rx::Napi => "in threaded NAPI pinned per host",
            Rx::Sender => "in the sender's context (veth default)",
        },
        loadavg()
    );
    let started = Instant::now();
    if opts.warmup > 0 {
        for variant in &opts.modes {
            for case in &cases {
                wrk(case, *variant, opts.warmup, opts)?;
            }
        }
    }
    // samples[variant][case]
    let mut samples: Vec<Vec<Vec<Sample>>> = vec![vec![Vec::new(); cases.len()]; opts.modes.len()];
    let mut noisy = 0usize;
    for round in 1..=opts.runs {
        for (v, variant) in opts.modes.iter().enumerate() {
            let mut line = format!("round {round} {:<17}", variant.name());
            for (c, case) in cases.iter().enumerate() {
                let s = measure(case, *variant, opts)?;
                let _ = write!(line, "  {} {}", case.kind.name(), rate(s.rps));
                if s.errors > 0 {
                    let _ = write!(line, " ({} errors)", s.errors);
                }
                if s.others > opts.max_others {
                    noisy += 1;
                    let _ = write!(line, " (others {})", pct(s.others));
                }
                samples[v][c].push(s);
            }
            println!("{line}");
        }
    }
    let elapsed = started.elapsed();
    if let Some(prefix) = &opts.perf {
        profile(&cases, prefix, opts)?;
    }
    let mut md = String::new();
    for (v, variant) in opts.modes.iter().enumerate() {
        let rows: Vec<Row> = cases
            .iter()
            .zip(&samples[v])
            .map(|(case, s)| Row::of(case.kind, s))
            .collect();
        let text = report(*variant, &rows, opts);
        print!("{text}");
        md.push_str(&text);
    }
    if let Some(path) = &opts.md {
        let head = format!(
            "Run of {}, kernel {}, load average {} at the end; wrk -t{} -c{}, {} s windows, \
             {} real servers ({}), {}-byte bodies.\n",
            common::today(),
            common::kernel(),
            loadavg(),
            opts.threads,
            opts.conns,
            opts.secs,
            opts.real_servers,
            opts.server.name(),
            opts.body,
        );
        std::fs::write(path, head + &md).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("http_e2e: tables written to {}", path.display());
    }
    println!();
    if noisy > 0 {
        println!(
            "http_e2e: {noisy} windows kept although other jobs used more than {} of a core \
             ({TRIES} tries each): compare with care",
            pct(opts.max_others)
        );
    }
    println!(
        "http_e2e: measuring took {:.0} s; load average at the end {}",
        elapsed.as_secs_f64(),
        loadavg()
    );
    Ok(())
}

/// The tables and ratios of one variant, in markdown.
fn report(variant: Variant, rows: &[Row], opts: &Opts) -> String {
    let mut out = String::new();
    let find = |k: Kind| rows.iter().find(|r| r.kind == k).map(|r| r.rps);
    let direct = find(Kind::Direct);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{} (wrk -t{} -c{}, {} s, median of {}):",
        variant.name(),
        opts.threads,
        opts.conns,
        opts.secs,
        opts.runs
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| contender | req/s | min - max | p50 | p99 | errors | vs direct |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let ratio = direct.map_or("-".to_owned(), |d| format!("{:.2}", r.rps / d));
        let _ = writeln!(
            out,
            "| {} | {} | {} - {} | {} | {} | {} | {ratio} |",
            r.kind.label(),
            rate(r.rps),
            rate(r.min),
            rate(r.max),
            ms(r.p50),
            ms(r.p99),
            r.errors,
        );
    }
    // Where the CPU went (medians over the rounds).
    let _ = writeln!(out);
    let (c, d) = (opts.client_core, opts.dir_core);
    let mut head = format!(
        "| contender | director CPU per request | client + servers CPU per request | core {c} \
         busy | core {d} busy |"
    );
    let mut rule = "|---|---:|---:|---:|---:|".to_owned();
    if opts.rs_core != c && opts.rs_core != d {
        let _ = write!(head, " core {} busy |", opts.rs_core);
        rule.push_str("---:|");
    }
    let _ = write!(
        head,
        " IPIs per request into core {c} / {d} | CPU used by other jobs |"
    );
    rule.push_str("---:|---:|");
    let _ = writeln!(out, "{head}");
    let _ = writeln!(out, "{rule}");
    for r in rows {
        let us = |v: f64| format!("{v:.1} µs");
        let dir_us = if r.kind == Kind::Direct {
            "-".to_owned()
        } else {
            us(r.dir_us)
        };
        let side_us = us(r.side_us);
        let mut line = format!(
            "| {} | {dir_us} | {side_us} | {} | {} |",
            r.kind.label(),
            pct(r.busy_client),
            pct(r.busy_dir),
        );
        if opts.rs_core != c && opts.rs_core != d {
            let _ = write!(line, " {} |", pct(r.busy_rs));
        }
        let _ = write!(
            line,
            " {:.2} / {:.2} | {} |",
            r.ipis_client,
            r.ipis_dir,
            pct(r.others)
        );
        let _ = writeln!(out, "{line}");
    }
    let Some(dr) = find(Kind::Dr) else {
        return out;
    };
    let mut ratios = Vec::new();
    for (k, what, goal) in [
        (Kind::Direct, "direct", Some(0.95)),
        (Kind::Haproxy, "HAProxy", Some(1.3)),
        (Kind::Nginx, "nginx stream", None),
    ] {
        if let Some(other) = find(k) {
            let r = dr / other;
            let verdict = match goal {
                Some(g) if r >= g => format!(" (goal >= {g}: met)"),
                Some(g) => format!(" (goal >= {g}: NOT met)"),
                None => String::new(),
            };
            ratios.push(format!("xvsd DR / {what} = {r:.3}{verdict}"));
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}: {}", variant.name(), ratios.join("; "));
    // What one director core could carry if nothing else limited: the
    // director-bound comparison, which a two-core lab reaches only in part.
    let cost = |k: Kind| rows.iter().find(|r| r.kind == k).map(|r| r.dir_us);
    if let Some(x) = cost(Kind::Dr).filter(|x| *x > 0.0) {
        let mut line = format!(
            "{}: director CPU per request: xvsd DR {x:.1} µs ({} req/s per core)",
            variant.name(),
            rate(1e6 / x)
        );
        for (k, what) in [(Kind::Haproxy, "HAProxy"), (Kind::Nginx, "nginx stream")] {
            if let Some(o) = cost(k) {
                let _ = write!(
                    line,
                    "; {what} {o:.1} µs ({} req/s per core, xvsd carries {:.2}x)",
                    rate(1e6 / o),
                    o / x
                );
            }
        }
        let _ = writeln!(out, "{line}");
    }
    out
}
