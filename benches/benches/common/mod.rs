//! What the end-to-end benches in the namespace lab share: settings from
//! the environment, CPU pinning (processes and veth NAPI threads), per-core
//! CPU time, medians, the load average and the `xvsd` binary's path.
//!
//! Every such bench takes them from here (`mod common;`); each uses a part,
//! hence `dead_code` allowed.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;

use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::Pid;
use xvs_lab::Netns;

/// Errors of a bench: a sentence for the operator.
pub type Res<T> = Result<T, String>;

/// `$name` parsed, or `default` when unset or blank.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Res<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?}: not a valid value")),
        _ => Ok(default),
    }
}

/// `$name` as a comma-separated list of names, each parsed by `parse`.
pub fn env_list<T>(name: &str, default: &str, parse: impl Fn(&str) -> Res<T>) -> Res<Vec<T>> {
    let s: String = env_or(name, default.to_owned())?;
    let v = s
        .split(',')
        .map(|c| parse(c.trim()))
        .collect::<Res<Vec<_>>>()?;
    if v.is_empty() {
        return Err(format!("{name}: empty"));
    }
    Ok(v)
}

/// `$name` as `A,B` (two core numbers).
pub fn env_cores(name: &str, default: &str) -> Res<(usize, usize)> {
    let s: String = env_or(name, default.to_owned())?;
    s.split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
        .ok_or_else(|| format!("{name}={s:?}: expected two core numbers, A,B"))
}

/// An output file named by `$name`: a relative path is taken from the
/// workspace root (cargo runs a bench in its package directory, not where
/// it was invoked); its directory is created.
pub fn env_out_path(name: &str) -> Res<Option<PathBuf>> {
    let Some(p) = std::env::var_os(name).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(std::path::Path::new("."));
    let path = root.join(PathBuf::from(p));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{name}: {}: {e}", dir.display()))?;
    }
    Ok(Some(path))
}

/// Whether `program` is on `PATH`.
pub fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// `$XVSD`, else `xvsd` in the profile directory above this executable's
/// `deps/` (so `cargo build --release -p xvs-dataplane --bin xvsd` with the
/// same `CARGO_TARGET_DIR`; `cargo bench` does not rebuild it).
pub fn xvsd_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("XVSD") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("xvsd");
    candidate.is_file().then_some(candidate)
}

// ------------------------------------------------------------------ pinning

fn cpu_set(core: usize) -> Res<CpuSet> {
    let mut set = CpuSet::new();
    set.set(core).map_err(|e| format!("core {core}: {e}"))?;
    Ok(set)
}

/// Pins thread or process `pid` (0: the calling thread) to `core`.
pub fn pin(pid: Pid, core: usize) -> Res<()> {
    sched_setaffinity(pid, &cpu_set(core)?).map_err(|e| format!("pin {pid} to core {core}: {e}"))
}

/// Kernel threads named `napi/...`, by pid.
fn napi_threads() -> HashSet<(i32, String)> {
    let mut out = HashSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            let comm = comm.trim();
            if comm.starts_with("napi/") {
                out.insert((pid, comm.to_owned()));
            }
        }
    }
    out
}

/// A device's receive moved to a core (see [`pin_napi`]).
#[derive(Debug, Clone)]
pub struct NapiPin {
    /// What was done, for the report; starts with `NOT pinned` when no
    /// NAPI thread appeared (the receive then stays in the sender's
    /// context, the veth default).
    pub how: String,
    /// The device's NAPI threads.
    pub threads: Vec<i32>,
}

/// Moves the receive of `dev` in `ns` to `core`: GRO on when `gro` (a
/// veth has NAPI only with GRO on or an XDP program attached), threaded
/// NAPI, and the new NAPI threads pinned.
pub fn pin_napi(ns: &Netns, dev: &str, core: usize, gro: bool) -> Res<NapiPin> {
    if gro {
        ns.exec(&["ethtool", "-K", dev, "gro", "on"])
            .map_err(|e| format!("GRO on {dev} of {}: {e}", ns.name()))?;
    }
    let before = napi_threads();
    let cmd = format!("echo 1 > /sys/class/net/{dev}/threaded");
    ns.exec(&["sh", "-c", &cmd])
        .map_err(|e| format!("threaded NAPI on {dev} of {}: {e}", ns.name()))?;
    let prefix = format!("napi/{dev}-");
    let new: Vec<(i32, String)> = napi_threads()
        .difference(&before)
        .filter(|(_, comm)| comm.starts_with(&prefix))
        .cloned()
        .collect();
    if new.is_empty() {
        return Ok(NapiPin {
            how: format!("NOT pinned: no NAPI thread appeared for {dev}"),
            threads: Vec::new(),
        });
    }
    for (pid, _) in &new {
        pin(Pid::from_raw(*pid), core)?;
    }
    let names: Vec<&str> = new.iter().map(|(_, c)| c.as_str()).collect();
    Ok(NapiPin {
        how: format!("{} -> core {core}", names.join(", ")),
        threads: new.iter().map(|(pid, _)| *pid).collect(),
    })
}

// ------------------------------------------------------------------ CPU time

/// Per-core CPU time from `/proc/stat`, in clock ticks: (busy, total).
/// Busy is user + nice + system + irq + softirq (+ guest, counted in user);
/// idle, iowait and steal are not busy.
#[derive(Debug, Clone)]
pub struct CpuTimes(Vec<(u64, u64)>);

impl CpuTimes {
    /// Reads `/proc/stat` now.
    pub fn now() -> CpuTimes {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let mut cores = Vec::new();
        for line in stat.lines() {
            let mut words = line.split_whitespace();
            let Some(name) = words.next() else { continue };
            let Some(idx) = name
                .strip_prefix("cpu")
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            let v: Vec<u64> = words.take(8).filter_map(|w| w.parse().ok()).collect();
            if v.len() < 8 {
                continue;
            }
            // user nice system idle iowait irq softirq steal
            let busy = v[0] + v[1] + v[2] + v[5] + v[6];
            let total: u64 = v.iter().sum();
            if cores.len() <= idx {
                cores.resize(idx + 1, (0, 0));
            }
            cores[idx] = (busy, total);
        }
        CpuTimes(cores)
    }

    /// Busy time of all cores between `earlier` and `self`, nanoseconds
    /// (`/proc/stat` counts in USER_HZ ticks, 100 per second on Linux).
    pub fn busy_ns_since(&self, earlier: &CpuTimes) -> u64 {
        const NS_PER_TICK: u64 = 1_000_000_000 / 100;
        self.0
            .iter()
            .zip(&earlier.0)
            .map(|(b, a)| b.0.saturating_sub(a.0) * NS_PER_TICK)
            .sum()
    }

    /// Fraction of `core` busy between `earlier` and `self` (0..=1).
    pub fn busy_since(&self, earlier: &CpuTimes, core: usize) -> f64 {
        let (Some(a), Some(b)) = (earlier.0.get(core), self.0.get(core)) else {
            return 0.0;
        };
        let total = b.1.saturating_sub(a.1);
        if total == 0 {
            return 0.0;
        }
        b.0.saturating_sub(a.0) as f64 / total as f64
    }
}

/// CPU time (nanoseconds on a core) used so far by every thread of process
/// or kernel thread `pid` (`/proc/PID/task/*/schedstat`). Without
/// `CONFIG_IRQ_TIME_ACCOUNTING` it includes the softirq work the kernel
/// ran in those threads' context. 0 for a process that is gone.
pub fn runtime_ns(pid: i32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU time (user + system, nanoseconds) of this process's children that
/// have ended and been waited for; the difference around a waited
/// command is that command's CPU time.
pub fn children_cpu_ns() -> u64 {
    let Ok(usage) = getrusage(UsageWho::RUSAGE_CHILDREN) else {
        return 0;
    };
    let ns = |t: nix::sys::time::TimeVal| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_usec()).unwrap_or(0) * 1_000
    };
    ns(usage.user_time()) + ns(usage.system_time())
}

/// Inter-processor interrupts received so far per core: rescheduling
/// (a thread woken from another core) plus function-call IPIs
/// (`/proc/interrupts` lines `RES` and `CAL`).
pub fn ipis() -> Vec<u64> {
    let text = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    let mut total: Vec<u64> = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if !(line.starts_with("RES:") || line.starts_with("CAL:")) {
            continue;
        }
        let counts = line
            .split_whitespace()
            .skip(1)
            .map_while(|w| w.parse::<u64>().ok());
        for (i, n) in counts.enumerate() {
            if total.len() <= i {
                total.resize(i + 1, 0);
            }
            total[i] += n;
        }
    }
    total
}

// ------------------------------------------------------------------ reporting

/// Median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The three load averages of `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Today's date (UTC), from `date`.
pub fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The running kernel's release.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
