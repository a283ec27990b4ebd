//! What the xvsd end-to-end tests share: the daemon started in a lab
//! namespace with a configuration file, its control socket, and GETs
//! through the VIP.
#![allow(dead_code)] // each test file uses its own part of it

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use xvs_ctl::client::Client;
use xvs_ctl::proto::{Request, Response};
use xvs_ctl::state::State;
use xvs_lab::{Family, Host, Mode, Proc, Topology};

pub const XVSD: &str = env!("CARGO_BIN_EXE_xvsd");

/// xvsd running on the lab's director with `config`; killed on drop.
pub struct Xvsd {
    proc: Option<Proc>,
    /// The control socket.
    pub socket: PathBuf,
    /// Its standard error (printed when a test fails).
    pub log: PathBuf,
    /// Its files (configuration, socket, log).
    pub dir: TempDir,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("xvs-e2e-{}-{tag}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Xvsd {
    pub fn start(lab: &Topology, config: &str) -> Xvsd {
        Xvsd::start_on(lab.director(), lab.mode().as_str(), config, &[])
    }

    /// xvsd on `host` (every interface of it) with `config` and `extra`
    /// arguments; `tag` names its temporary directory.
    pub fn start_on(host: &Host, tag: &str, config: &str, extra: &[&str]) -> Xvsd {
        let mut d = Xvsd::spawn_on(host, tag, config, extra, &[]);
        d.wait_ready();
        d
    }

    /// As [`Xvsd::start_on`] with `env` added to xvsd's environment, but
    /// returns at once, without waiting for the control socket.
    pub fn spawn_on(
        host: &Host,
        tag: &str,
        config: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Xvsd {
        let dir = TempDir::new(tag);
        let conf = dir.0.join("xvsd.conf");
        std::fs::File::create(&conf)
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .unwrap();
        let sock = dir.0.join("xvsd.sock");
        let mut argv = vec![XVSD.to_owned()];
        for ifc in host.ifaces() {
            argv.push("--iface".into());
            argv.push(ifc.dev.clone());
        }
        argv.extend([
            "--config".into(),
            conf.display().to_string(),
            "--socket".into(),
            sock.display().to_string(),
            "--ring-size".into(),
            "512".into(),
            // Workers pinned (worker n on the n-th of these).
            "--cores".into(),
            "0-1".into(),
        ]);
        argv.extend(extra.iter().map(|a| (*a).to_owned()));
        let log = dir.0.join("xvsd.log");
        let mut cmd = host.command(&argv[0]);
        cmd.args(&argv[1..])
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let proc = Proc::spawn(&mut cmd).unwrap();
        Xvsd {
            proc: Some(proc),
            socket: sock,
            log,
            dir,
        }
    }

    /// The exit status, if xvsd has ended.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.proc.as_mut().and_then(|p| p.try_wait().ok().flatten())
    }

    /// Waits until the control socket answers a ping (the daemon is up:
    /// the socket opens before the workers start, so a little more).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ping = Client::connect(&self.socket).and_then(|mut c| c.call(&Request::Ping));
            if matches!(ping, Ok(Response::Ok)) {
                return;
            }
            if let Some(p) = self.proc.as_mut() {
                if let Ok(Some(status)) = p.try_wait() {
                    panic!("xvsd exited at start: {status}: {}", self.log_text());
                }
            }
            assert!(Instant::now() < deadline, "xvsd did not come up: {ping:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::id)
    }

    /// What xvsd logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The connection table (what `xvsadm -L -n -c` lists).
    pub fn connections(&self) -> Vec<xvs_ctl::state::Conn> {
        match self.call(&Request::GetConnections) {
            Response::Connections(c) => c,
            other => panic!("GetConnections: {other:?}"),
        }
    }

    /// Sends one request on the control socket.
    pub fn call(&self, req: &Request) -> Response {
        Client::connect(&self.socket)
            .and_then(|mut c| c.call(req))
            .unwrap_or_else(|e| panic!("control socket: {e}"))
    }

    /// Applies an ipvsadm command line, as `xvsadm ARGS` would.
    pub fn xvsadm(&self, args: &str) {
        let argv: Vec<&str> = args.split_whitespace().collect();
        let cmd = xvs_ctl::parse_args(&argv).unwrap();
        match self.call(&Request::Apply {
            commands: vec![cmd],
            dry_run: false,
        }) {
            Response::Ok => {}
            other => panic!("xvsadm {args}: {other:?}"),
        }
    }

    /// The data plane's counters (drops and passes by reason, the XDP
    /// program's, the connection table's).
    pub fn counters(&self) -> xvs_ctl::state::Counters {
        match self.call(&Request::GetCounters) {
            Response::Counters(c) => *c,
            other => panic!("GetCounters: {other:?}"),
        }
    }

    pub fn state(&self) -> State {
        match self.call(&Request::GetState { service: None }) {
            Response::State(s) => s,
            other => panic!("GetState: {other:?}"),
        }
    }

    /// Stops with SIGTERM and checks the exit was clean: status 0, no XDP
    /// program left on the director's interfaces.
    pub fn stop(mut self, lab: &Topology) {
        let status = self
            .proc
            .take()
            .unwrap()
            .stop(Duration::from_secs(5))
            .unwrap();
        assert!(status.success(), "xvsd exited with {status}");
        for ifc in lab.director().ifaces() {
            let link = lab.director().ip(&["link", "show", &ifc.dev]).unwrap();
            assert!(!link.contains("xdp"), "XDP left on {}: {link}", ifc.dev);
        }
    }
}

/// GETs `/` from the VIP until it answers (the director resolves the real
/// servers' MACs first), then returns the answering server's name.
pub fn first_answer(lab: &Topology, vip: SocketAddr) -> String {
    lab.client()
        .http_get_retry(vip, "/", Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("no answer from {vip}: {e}"))
        .text()
        .trim()
        .to_owned()
}

pub fn get(lab: &Topology, vip: SocketAddr) -> String {
    lab.client()
        .http_get(vip, "/")
        .unwrap_or_else(|e| panic!("GET {vip}: {e}"))
        .text()
        .trim()
        .to_owned()
}

pub fn lab(mode: Mode, n: usize) -> Option<Topology> {
    if !xvs_lab::ready("xvsd end-to-end", &["ethtool"]) {
        return None;
    }
    xvs_lab::or_skip("lab", Topology::builder(mode).real_servers(n).build())
}

pub fn rs_addr(lab: &Topology, i: usize, f: Family) -> String {
    match lab.real_servers()[i].addr(f) {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}

pub fn vip_str(lab: &Topology, f: Family) -> String {
    match lab.vip(f) {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// The `xvsadm` binary next to the test binary (built by the workspace).
pub fn xvsadm_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("xvsadm");
    assert!(
        bin.is_file(),
        "{} missing: run `cargo test --workspace` (or `cargo build -p xvs-ctl`) first",
        bin.display()
    );
    bin
}

impl Xvsd {
    /// Runs the `xvsadm` binary against this daemon; returns its exit
    /// code, standard output and standard error.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new(xvsadm_bin())
            .args(args)
            .env("XVS_SOCKET", &self.socket)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `xvsadm ARGS` (split on white space) that must succeed; its output.
    pub fn cli_ok(&self, args: &str) -> String {
        let argv: Vec<&str> = args.split_whitespace().collect();
        let (code, out, err) = self.cli(&argv);
        assert_eq!(code, 0, "xvsadm {args}: {err}");
        out
    }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `within`.
pub fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Xvsd {
    fn drop(&mut self) {
        if let Some(p) = self.proc.take() {
            let _ = p.stop(Duration::from_secs(3));
        }
        if std::thread::panicking() {
            eprintln!("xvsd log ({}):\n{}", self.dir.0.display(), self.log_text());
        }
    }
}

/// Where the e2e tests serve metrics, inside the director's namespace.
pub const METRICS: &str = "127.0.0.1:9800";

/// `GET path` on the metrics port inside the director's namespace: the
/// status line and the body.
pub fn scrape(lab: &Topology, request: &str) -> (String, String) {
    let request = request.to_owned();
    lab.director()
        .run(move || {
            let mut s = TcpStream::connect(METRICS).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
            (
                head.lines().next().unwrap_or("").to_owned(),
                body.to_owned(),
            )
        })
        .unwrap()
}

/// Samples by their full name with labels (`name{a="b"}`), and every line
/// well formed: comments, or a name and a number.
pub fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                k.to_owned(),
                v.parse().unwrap_or_else(|_| panic!("bad value {l:?}")),
            )
        })
        .collect()
}
