//! Network namespaces as guards, and the commands run inside them.
//!
//! A [`Netns`] is created by `ip netns add` under a unique name
//! `xvs-<role>-<pid>-<n>` and deleted by its `Drop` (which also runs while a
//! panicking test unwinds): first every process still inside it is killed,
//! then `ip netns del`. A namespace left behind by a killed test process is
//! removed by [`cleanup_stale`], which [`crate::Topology`] calls before
//! building.
//!
//! Two ways to work inside a namespace:
//! - commands: [`Netns::ip`] (`ip -n NAME ...`), [`Netns::exec`] and
//!   [`Netns::command`] (`ip netns exec NAME ...`), [`Netns::spawn`] for a
//!   long-running program held by a [`Proc`] guard;
//! - code of this process: [`Netns::run`] runs a closure on a fresh thread
//!   that first moves itself into the namespace with `setns(2)`. Sockets
//!   created there belong to the namespace for their whole life, whichever
//!   thread uses them later. Only network operations see the namespace; the
//!   file system stays the host's.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{LabError, Result};

/// Prefix of every namespace the lab creates.
pub const NS_PREFIX: &str = "xvs-";

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A fresh number for a namespace name, unique within this process.
pub fn next_id() -> u32 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// An Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The six bytes.
    pub fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || LabError::Protocol(format!("not a MAC address: {s:?}"));
        let mut out = [0u8; 6];
        let mut parts = s.trim().split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self(out))
    }
}

/// A neighbour table entry as `ip neigh show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// The link-layer address, absent while INCOMPLETE or FAILED.
    pub lladdr: Option<MacAddr>,
    /// The NUD state words (`REACHABLE`, `STALE`, `FAILED`, `PERMANENT`...).
    pub state: String,
}

/// Options of a veth pair made by [`veth`].
#[derive(Debug, Clone, Default)]
pub struct VethOptions {
    /// `numtxqueues N numrxqueues N` on both ends (AF_XDP binds one socket
    /// per queue; attaching XDP needs rx queues >= the peer's tx queues).
    pub queues: Option<u16>,
    /// Address of the first end (random when `None`).
    pub mac_a: Option<MacAddr>,
    /// Address of the second end (random when `None`).
    pub mac_b: Option<MacAddr>,
    /// MTU of both ends (kernel default 1500 when `None`).
    pub mtu: Option<u32>,
}

/// A network namespace that is deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
    keep: bool,
}

impl Netns {
    /// Creates `xvs-<role>-<pid>-<n>` with a fresh `n`, loopback up.
    pub fn new(role: &str) -> Result<Self> {
        Self::with_id(role, next_id())
    }

    /// Creates `xvs-<role>-<pid>-<id>`; the caller makes `(role, id)` unique
    /// within the process (see [`next_id`]). `role` must not be empty and
    /// may hold `[a-z0-9]` and inner `-`.
    pub fn with_id(role: &str, id: u32) -> Result<Self> {
        let valid = !role.is_empty()
            && !role.starts_with('-')
            && role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(LabError::Invalid(format!("bad namespace role {role:?}")));
        }
        require_root()?;
        let name = format!("{NS_PREFIX}{role}-{}-{id}", std::process::id());
        run_checked(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Self { name, keep: false };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's handle, `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// Leaves the namespace in place when dropped (for debugging a lab by
    /// hand; [`cleanup_stale`] removes it once this process is gone).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// `ip netns exec NAME program`, to add arguments to and run.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `argv` inside the namespace; returns its stdout, or an error
    /// with its stderr when it fails.
    pub fn exec(&self, argv: &[&str]) -> Result<String> {
        let (program, args) = split_argv(argv)?;
        run_checked(self.command(program).args(args))
    }

    /// Like [`Netns::exec`], feeding `stdin` to the program.
    pub fn exec_with_stdin(&self, argv: &[&str], stdin: &str) -> Result<String> {
        let (program, args) = split_argv(argv)?;
        run_with_stdin(self.command(program).args(args), stdin)
    }

    /// `ip -n NAME args...`; returns stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run_checked(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Starts `argv` inside the namespace (stdin and stdout null, stderr
    /// inherited); the [`Proc`] kills it when dropped.
    pub fn spawn(&self, argv: &[&str]) -> Result<Proc> {
        let (program, args) = split_argv(argv)?;
        let mut cmd = self.command(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Proc::spawn(&mut cmd)
    }

    /// Runs `f` on a new thread that first enters the namespace, and waits
    /// for it. Sockets opened by `f` live in the namespace. A panic in `f`
    /// is propagated.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let handle = self.open()?;
        std::thread::scope(|s| {
            let thread = s.spawn(move || -> Result<T> {
                setns(&handle, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| LabError::io("setns", e.into()))?;
                Ok(f())
            });
            match thread.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts `f` on a named thread inside the namespace and returns at
    /// once. The thread keeps the namespace alive for as long as it holds
    /// sockets in it.
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        thread_name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<JoinHandle<Result<T>>> {
        let handle = self.open()?;
        std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || -> Result<T> {
                setns(&handle, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| LabError::io("setns", e.into()))?;
                drop(handle);
                Ok(f())
            })
            .map_err(|e| LabError::io("spawn thread", e))
    }

    fn open(&self) -> Result<File> {
        File::open(self.path())
            .map_err(|e| LabError::io(format!("open {}", self.path().display()), e))
    }

    /// Sets sysctls inside the namespace (`sysctl -qw k=v ...`), keys in
    /// dotted form (`net.ipv4.ip_forward`).
    pub fn sysctl(&self, settings: &[(&str, &str)]) -> Result<()> {
        if settings.is_empty() {
            return Ok(());
        }
        let pairs: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut cmd = self.command("sysctl");
        cmd.arg("-qw").args(&pairs);
        run_checked(&mut cmd).map(drop)
    }

    /// Reads one sysctl inside the namespace.
    pub fn sysctl_get(&self, key: &str) -> Result<String> {
        Ok(self.exec(&["sysctl", "-n", key])?.trim().to_owned())
    }

    /// IPv4 and IPv6 forwarding on or off.
    pub fn ip_forward(&self, on: bool) -> Result<()> {
        let v = if on { "1" } else { "0" };
        self.sysctl(&[
            ("net.ipv4.ip_forward", v),
            ("net.ipv6.conf.all.forwarding", v),
        ])
    }

    /// The LVS real-server ARP settings: `arp_ignore=1` (answer ARP only
    /// for addresses on the receiving interface, so a VIP on `lo` is never
    /// announced) and `arp_announce=2` (use the best local address of the
    /// outgoing interface as ARP source, never the VIP), on `all` and `dev`.
    pub fn hide_arp(&self, dev: &str) -> Result<()> {
        let dev_ignore = format!("net.ipv4.conf.{dev}.arp_ignore");
        let dev_announce = format!("net.ipv4.conf.{dev}.arp_announce");
        self.sysctl(&[
            ("net.ipv4.conf.all.arp_ignore", "1"),
            ("net.ipv4.conf.all.arp_announce", "2"),
            (&dev_ignore, "1"),
            (&dev_announce, "2"),
        ])
    }

    /// Reverse-path filter mode (0 off, 1 strict, 2 loose) on `all`,
    /// `default` and `dev` (the kernel applies the max of `all` and `dev`).
    pub fn rp_filter(&self, dev: &str, mode: u8) -> Result<()> {
        let m = mode.to_string();
        let dev_key = format!("net.ipv4.conf.{dev}.rp_filter");
        self.sysctl(&[
            ("net.ipv4.conf.all.rp_filter", &m),
            ("net.ipv4.conf.default.rp_filter", &m),
            (&dev_key, &m),
        ])
    }

    /// `ip link set DEV up`.
    pub fn link_up(&self, dev: &str) -> Result<()> {
        self.ip(&["link", "set", dev, "up"]).map(drop)
    }

    /// Adds `addr/prefix` to `dev`; IPv6 addresses get `nodad` so they are
    /// usable at once.
    pub fn add_addr(&self, dev: &str, addr: IpAddr, prefix: u8) -> Result<()> {
        let cidr = format!("{addr}/{prefix}");
        match addr {
            IpAddr::V4(_) => self.ip(&["addr", "add", &cidr, "dev", dev]),
            IpAddr::V6(_) => self.ip(&["-6", "addr", "add", &cidr, "dev", dev, "nodad"]),
        }
        .map(drop)
    }

    /// Removes `addr/prefix` from `dev`.
    pub fn del_addr(&self, dev: &str, addr: IpAddr, prefix: u8) -> Result<()> {
        let cidr = format!("{addr}/{prefix}");
        self.ip(&["addr", "del", &cidr, "dev", dev]).map(drop)
    }

    /// Puts a VIP on `lo` as a host address (/32 or /128), the way an LVS
    /// DR or TUN real server holds it.
    pub fn add_loopback_vip(&self, vip: IpAddr) -> Result<()> {
        let prefix = if vip.is_ipv4() { 32 } else { 128 };
        self.add_addr("lo", vip, prefix)
    }

    /// `ip route replace DEST via GW` (`dest` is `default` or a CIDR).
    pub fn add_route(&self, dest: &str, via: IpAddr) -> Result<()> {
        let gw = via.to_string();
        let family = if via.is_ipv4() { "-4" } else { "-6" };
        self.ip(&[family, "route", "replace", dest, "via", &gw])
            .map(drop)
    }

    /// A permanent neighbour entry `ip` -> `mac` on `dev`.
    pub fn neigh_replace(&self, dev: &str, ip: IpAddr, mac: MacAddr) -> Result<()> {
        let (ip, mac) = (ip.to_string(), mac.to_string());
        self.ip(&[
            "neigh",
            "replace",
            &ip,
            "lladdr",
            &mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ])
        .map(drop)
    }

    /// Removes the neighbour entry of `ip` on `dev` (no error if absent).
    pub fn neigh_del(&self, dev: &str, ip: IpAddr) -> Result<()> {
        let ip = ip.to_string();
        match self.ip(&["neigh", "del", &ip, "dev", dev]) {
            Ok(_) => Ok(()),
            Err(LabError::Command { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The neighbour entry of `ip` on `dev`, if any.
    pub fn neigh_show(&self, dev: &str, ip: IpAddr) -> Result<Option<Neighbour>> {
        let ip = ip.to_string();
        let out = self.ip(&["neigh", "show", &ip, "dev", dev])?;
        let Some(line) = out.lines().find(|l| !l.trim().is_empty()) else {
            return Ok(None);
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let lladdr = match words.iter().position(|w| *w == "lladdr") {
            Some(i) => Some(words.get(i + 1).copied().unwrap_or_default().parse()?),
            None => None,
        };
        let state = words
            .iter()
            .filter(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Some(Neighbour { lladdr, state }))
    }

    /// The Ethernet address of `dev`.
    pub fn mac(&self, dev: &str) -> Result<MacAddr> {
        let out = self.ip(&["-o", "link", "show", "dev", dev])?;
        let mut words = out.split_whitespace();
        while let Some(w) = words.next() {
            if w == "link/ether" {
                return words.next().unwrap_or_default().parse();
            }
        }
        Err(LabError::Protocol(format!("no link/ether in {out:?}")))
    }

    /// `ethtool -K DEV tx off`: no partial checksums leave this interface.
    ///
    /// A veth with tx checksum offload hands partial checksums to its peer;
    /// forwarded through AF_XDP they arrive as bad checksums and are dropped
    /// (LAB.md), so clients and real servers of the lab turn it off.
    pub fn tx_checksum_off(&self, dev: &str) -> Result<()> {
        self.exec(&["ethtool", "-K", dev, "tx", "off"]).map(drop)
    }

    /// Attaches a map-less XDP object: `ip link set dev DEV xdp obj OBJ sec
    /// SEC` (native mode where the driver has it, as on veth).
    pub fn attach_xdp(&self, dev: &str, obj: &Path, sec: &str) -> Result<()> {
        let obj = obj.to_string_lossy();
        self.ip(&["link", "set", "dev", dev, "xdp", "obj", &obj, "sec", sec])
            .map(drop)
    }

    /// Removes any XDP program from `dev`.
    pub fn detach_xdp(&self, dev: &str) -> Result<()> {
        self.ip(&["link", "set", "dev", dev, "xdp", "off"])
            .map(drop)
    }

    /// The name of the XDP program attached to `dev`, if any.
    pub fn xdp_prog(&self, dev: &str) -> Result<Option<String>> {
        let out = self.ip(&["-d", "link", "show", "dev", dev])?;
        let mut words = out
            .split_whitespace()
            .skip_while(|w| !w.starts_with("prog/xdp"));
        if words.next().is_none() {
            return Ok(None);
        }
        let mut words = words.skip_while(|w| *w != "name");
        Ok(words.nth(1).map(str::to_owned).or(Some(String::new())))
    }

    /// Creates a bridge `name` (no STP, no multicast snooping, forwarding
    /// at once) and sets it up.
    pub fn add_bridge(&self, name: &str) -> Result<()> {
        self.ip(&[
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
            "forward_delay",
            "0",
        ])?;
        self.link_up(name)
    }

    /// Enslaves `dev` to `bridge` and sets it up.
    pub fn bridge_port(&self, bridge: &str, dev: &str) -> Result<()> {
        self.ip(&["link", "set", dev, "master", bridge])?;
        self.link_up(dev)
    }

    /// Loads an nftables ruleset (`nft -f -`).
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        self.exec_with_stdin(&["nft", "-f", "-"], ruleset).map(drop)
    }

    /// Pids of the processes inside the namespace (`ip netns pids`).
    pub fn pids(&self) -> Result<Vec<i32>> {
        ns_pids(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(e) = delete_ns(&self.name) {
            eprintln!("xvs-lab: deleting namespace {}: {e}", self.name);
        }
    }
}

/// A veth pair: `dev_a` in `a`, `dev_b` in `b`, both set up. Names only need
/// to be unique inside their own namespace.
pub fn veth(a: &Netns, dev_a: &str, b: &Netns, dev_b: &str, opts: &VethOptions) -> Result<()> {
    let queues = opts.queues.map(|q| q.to_string());
    let mtu = opts.mtu.map(|m| m.to_string());
    let mut args: Vec<String> = vec!["link".into(), "add".into(), dev_a.into()];
    let end_opts = |args: &mut Vec<String>, mac: Option<MacAddr>| {
        if let Some(mac) = mac {
            args.extend(["address".into(), mac.to_string()]);
        }
        if let Some(q) = &queues {
            args.extend([
                "numtxqueues".into(),
                q.clone(),
                "numrxqueues".into(),
                q.clone(),
            ]);
        }
        if let Some(m) = &mtu {
            args.extend(["mtu".into(), m.clone()]);
        }
    };
    end_opts(&mut args, opts.mac_a);
    args.extend([
        "type".into(),
        "veth".into(),
        "peer".into(),
        "name".into(),
        dev_b.into(),
    ]);
    end_opts(&mut args, opts.mac_b);
    args.extend(["netns".into(), b.name().into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    a.ip(&args)?;
    a.link_up(dev_a)?;
    b.link_up(dev_b)
}

/// A thread of this process inside a namespace that sets itself up, says
/// whether that worked, then runs until its stop flag is set; stopped (and
/// joined) on drop. The traffic generator and the benchmarks' minimal
/// forwarder are two.
#[derive(Debug)]
pub struct NsThread<T> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Result<T>>>>,
    what: &'static str,
}

impl<T: Send + 'static> NsThread<T> {
    /// Starts a thread named `name` in `ns`, pinned to `core` if given, that
    /// runs `setup` and then, with what it built, `body(state, stop)`.
    /// Returns once `setup` is done: with its error if it failed (the thread
    /// has then ended). `what` names the thread in errors.
    pub fn start<S>(
        ns: &Netns,
        (name, what): (&str, &'static str),
        core: Option<usize>,
        setup: impl FnOnce() -> Result<S> + Send + 'static,
        body: impl FnOnce(S, &AtomicBool) -> Result<T> + Send + 'static,
    ) -> Result<NsThread<T>> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let s = Arc::clone(&stop);
        let thread = ns.spawn_thread(name, move || {
            let state = core
                .map_or(Ok(()), pin_current_thread)
                .and_then(|()| setup());
            match state {
                Ok(state) => {
                    let _ = ready_tx.send(Ok(()));
                    body(state, &s)
                }
                Err(e) => {
                    let msg = e.to_string();
                    let _ = ready_tx.send(Err(e));
                    Err(LabError::Protocol(msg))
                }
            }
        })?;
        let mut t = NsThread {
            stop,
            thread: Some(thread),
            what,
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(t),
            Ok(Err(e)) => Err(e),
            // The thread ended before saying: setns failed, or it panicked.
            Err(_) => match t.join() {
                Err(e) => Err(e),
                Ok(_) => Err(LabError::Protocol(format!("{what} thread ended at start"))),
            },
        }
    }

    /// Whether the thread ended (its work ran out, or it failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Sets the stop flag, joins the thread and returns what it returned.
    pub fn stop(mut self) -> Result<T> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    fn join(&mut self) -> Result<T> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(LabError::Protocol(format!("{} thread panicked", self.what))),
            None => Err(LabError::Protocol(format!("{} already joined", self.what))),
        }
    }
}

impl<T> Drop for NsThread<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Pins the calling thread to `core`.
fn pin_current_thread(core: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(core)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    Ok(())
}

/// A long-running program in a namespace; killed (SIGKILL) and reaped when
/// dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    what: String,
}

impl Proc {
    /// Spawns `cmd` and guards the child.
    pub fn spawn(cmd: &mut Command) -> Result<Self> {
        let what = format!("{cmd:?}");
        let child = cmd.spawn().map_err(|e| spawn_error(&what, e))?;
        Ok(Self { child, what })
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The guarded child, e.g. to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Exit status if the program has ended.
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.child
            .try_wait()
            .map_err(|e| LabError::io(format!("wait for {}", self.what), e))
    }

    /// Sends SIGTERM and waits up to `grace` for the end, then SIGKILL.
    pub fn stop(mut self, grace: Duration) -> Result<std::process::ExitStatus> {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return self
                    .child
                    .wait()
                    .map_err(|e| LabError::io(format!("wait for {}", self.what), e));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Deletes the namespaces `xvs-<role>-<pid>-<n>` whose `pid` is no longer
/// running (left behind by a killed test). Namespaces of live processes and
/// names of any other shape are left alone. Returns the names removed.
pub fn cleanup_stale() -> Result<Vec<String>> {
    let entries = match fs::read_dir(NETNS_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LabError::io(format!("read {NETNS_DIR}"), e)),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        delete_ns(&name)?;
        removed.push(name);
    }
    Ok(removed)
}

/// The pid in a lab namespace name `xvs-<role>-<pid>-<n>`.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NS_PREFIX)?;
    let mut parts = rest.rsplitn(3, '-');
    let n = parts.next()?;
    let pid = parts.next()?;
    let role = parts.next()?;
    if role.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|p| *p > 0)
}

fn ns_pids(name: &str) -> Result<Vec<i32>> {
    let out = run_checked(Command::new("ip").args(["netns", "pids", name]))?;
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

fn delete_ns(name: &str) -> Result<()> {
    // Processes inside are ours (started in this uniquely named namespace):
    // end them by pid so the namespace really goes away with its links.
    let me = std::process::id() as i32;
    if let Ok(pids) = ns_pids(name) {
        for pid in pids.into_iter().filter(|p| *p != me && *p > 0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    run_checked(Command::new("ip").args(["netns", "del", name])).map(drop)
}

fn split_argv<'a>(argv: &'a [&'a str]) -> Result<(&'a str, &'a [&'a str])> {
    argv.split_first()
        .map(|(p, a)| (*p, a))
        .ok_or_else(|| LabError::Invalid("empty command".into()))
}

/// Fails with [`LabError::Unsupported`] unless the process is root.
pub fn require_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(LabError::Unsupported(
            "network namespaces need root (run the lab tests as root)".into(),
        ))
    }
}

fn spawn_error(what: &str, e: std::io::Error) -> LabError {
    if e.kind() == std::io::ErrorKind::NotFound {
        LabError::Unsupported(format!("cannot run {what}: program not found"))
    } else {
        LabError::io(format!("spawn {what}"), e)
    }
}

/// Words in a failing command's stderr meaning "this kernel or tool cannot".
const UNSUPPORTED_HINTS: &[&str] = &[
    "not supported",
    "Unknown device type",
    "Protocol not supported",
    "Address family not supported",
    "unknown keyword",
    "Garbage instead of arguments",
];

/// Runs `cmd`, returns stdout; a failure becomes [`LabError::Command`], or
/// [`LabError::Unsupported`] when stderr says the feature is missing.
pub(crate) fn run_checked(cmd: &mut Command) -> Result<String> {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(&what, e))?;
    finish(what, out)
}

pub(crate) fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Result<String> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(&what, e))?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes())
            .map_err(|e| LabError::io(format!("write to {what}"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::io(format!("wait for {what}"), e))?;
    finish(what, out)
}

fn finish(what: String, out: std::process::Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if UNSUPPORTED_HINTS.iter().any(|h| stderr.contains(h)) {
        return Err(LabError::Unsupported(format!("`{what}`: {stderr}")));
    }
    Err(LabError::Command {
        cmd: what,
        status: out.status.to_string(),
        stderr,
    })
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let m: MacAddr = "02:00:00:0a:ff:01".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0, 0x0a, 0xff, 1]);
        assert_eq!(m.to_string(), "02:00:00:0a:ff:01");
        assert!("02:00:00:0a:ff".parse::<MacAddr>().is_err());
        assert!("02:00:00:0a:ff:01:02".parse::<MacAddr>().is_err());
        assert!("02:00:00:0a:ff:1".parse::<MacAddr>().is_err());
    }

    #[test]
    fn owner_pid_parses_lab_names_only() {
        assert_eq!(owner_pid("xvs-cli-1234-0"), Some(1234));
        assert_eq!(owner_pid("xvs-nat-rs1-99-12"), Some(99));
        assert_eq!(owner_pid("xvs-cli-abc-0"), None);
        assert_eq!(owner_pid("xvs-1234-0"), None);
        assert_eq!(owner_pid("other-cli-1234-0"), None);
        assert_eq!(owner_pid("xvs-cli-0-0"), None);
    }
}
