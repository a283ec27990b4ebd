//! keepalived in the lab: VRRP between directors, set up the way
//! `deploy/keepalived/` documents it.
//!
//! [`Keepalived::start`] runs Debian's `keepalived` inside a namespace,
//! VRRP only (`--vrrp`), in the foreground (`--dont-fork`), logging to its
//! console (kept in a log file, see [`Keepalived::log`]), never respawning
//! a dead child, with its pid files and configuration in a temporary
//! directory of its own. The configuration is the committed
//! `deploy/keepalived/keepalived.conf` with its `$NAME=value` definition
//! lines rewritten from a [`VrrpConfig`] ([`render`]); the notify script is
//! the committed `deploy/keepalived/xvs-notify.sh`, copied next to it
//! (keepalived runs only scripts no one but root may write).
//!
//! The guard ends keepalived when dropped (also while a failing test
//! unwinds): SIGTERM, which makes keepalived give up the VIP (priority 0
//! advert) and remove it, then SIGKILL for its whole process group.
//!
//! ```no_run
//! use xvs_lab::keepalived::{Keepalived, VrrpConfig};
//! use xvs_lab::{Mode, Topology};
//!
//! let lab = Topology::builder(Mode::Dr)
//!     .directors(2)
//!     .director_vip(false)
//!     .build()?;
//! let d1 = Keepalived::start(lab.director(), &VrrpConfig::for_lab(&lab, 150), &[])?;
//! let d2 = Keepalived::start(&lab.directors()[1], &VrrpConfig::for_lab(&lab, 100), &[])?;
//! d1.wait_state("MASTER", std::time::Duration::from_secs(10))?;
//! # Ok::<(), xvs_lab::LabError>(())
//! ```

use std::ffi::OsStr;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::error::{LabError, Result};
use crate::netns::{Netns, Proc};
use crate::topology::{Family, Topology};

/// `deploy/keepalived/keepalived.conf`, the template.
pub const TEMPLATE: &str = include_str!("../../../deploy/keepalived/keepalived.conf");

/// `deploy/keepalived/xvs-notify.sh`, the notify script.
pub const NOTIFY_SCRIPT: &str = include_str!("../../../deploy/keepalived/xvs-notify.sh");

/// What one director's keepalived is told; rendered into [`TEMPLATE`].
#[derive(Debug, Clone)]
pub struct VrrpConfig {
    /// VRRP and VIP interface (`$IFACE`).
    pub iface: String,
    /// The IPv4 VIP, in the adverts (`$VIP`).
    pub vip4: Ipv4Addr,
    /// The IPv6 VIP, moved along (`$VIP6`).
    pub vip6: Ipv6Addr,
    /// Virtual router id (`$VRID`).
    pub vrid: u8,
    /// Priority (`$PRIORITY`): the highest live one owns the VIP.
    pub priority: u8,
    /// Start as MASTER (take the VIP at once) rather than BACKUP
    /// (`$STATE`).
    pub start_master: bool,
    /// Interval between adverts (`$ADVERT_INT`, in seconds, hundredths
    /// kept): a backup takes over after three missed ones plus a skew.
    pub advert_int: Duration,
    /// Run the notify script on state changes; without it the notify
    /// lines run `/bin/true`.
    pub notify: bool,
    /// Interface of the sync daemons (`$SYNC_IFACE`).
    pub sync_iface: String,
    /// Sync id (`$SYNCID`).
    pub syncid: u8,
}

impl VrrpConfig {
    /// The lab's VIPs on `eth0`, router id 50, sync on `eth0` with id 50,
    /// an advert a second, `priority`; BACKUP at start, notify script on.
    pub fn for_lab(lab: &Topology, priority: u8) -> VrrpConfig {
        let vip4 = match lab.vip(Family::V4) {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        let vip6 = match lab.vip(Family::V6) {
            IpAddr::V6(a) => a,
            IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
        };
        VrrpConfig {
            iface: "eth0".into(),
            vip4,
            vip6,
            vrid: 50,
            priority,
            start_master: false,
            advert_int: Duration::from_secs(1),
            notify: true,
            sync_iface: "eth0".into(),
            syncid: 50,
        }
    }

    /// Worst time for a backup of this priority to take over from a
    /// silent master (RFC 9568 Master_Down_Interval: three adverts plus
    /// `(256 - priority) / 256` of one).
    pub fn master_down_interval(&self) -> Duration {
        self.advert_int * 3
            + self
                .advert_int
                .mul_f64(f64::from(256 - u32::from(self.priority)) / 256.0)
    }

    /// The template's definitions for this configuration; `notify` is the
    /// path of the notify script.
    fn definitions(&self, notify: &Path) -> Vec<(&'static str, String)> {
        let hundredths = self.advert_int.as_millis().div_ceil(10).max(1);
        let advert = if hundredths.is_multiple_of(100) {
            (hundredths / 100).to_string()
        } else {
            format!("{}.{:02}", hundredths / 100, hundredths % 100)
        };
        vec![
            ("IFACE", self.iface.clone()),
            ("VIP", self.vip4.to_string()),
            ("VIP6", self.vip6.to_string()),
            ("VRID", self.vrid.to_string()),
            (
                "STATE",
                if self.start_master {
                    "MASTER"
                } else {
                    "BACKUP"
                }
                .into(),
            ),
            ("PRIORITY", self.priority.to_string()),
            ("ADVERT_INT", advert),
            (
                "NOTIFY",
                if self.notify {
                    notify.display().to_string()
                } else {
                    "/bin/true".into()
                },
            ),
            ("SYNC_IFACE", self.sync_iface.clone()),
            ("SYNCID", self.syncid.to_string()),
        ]
    }
}

/// Rewrites the definition lines `$NAME=value` of a keepalived
/// configuration: each `(NAME, value)` of `defs` replaces the value of its
/// line. A name the template does not define is an error, so the lab and
/// the committed file cannot drift apart silently.
pub fn render(template: &str, defs: &[(&str, String)]) -> Result<String> {
    let mut used = vec![false; defs.len()];
    let mut out = String::with_capacity(template.len());
    for line in template.lines() {
        let def = line
            .strip_prefix('$')
            .and_then(|rest| rest.split_once('='))
            .and_then(|(name, _)| defs.iter().position(|(n, _)| *n == name));
        match def {
            Some(i) => {
                used[i] = true;
                out.push_str(&format!("${}={}", defs[i].0, defs[i].1));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(LabError::Invalid(format!(
            "the keepalived template defines no ${}",
            defs[i].0
        )));
    }
    Ok(out)
}

/// keepalived (VRRP only) running in a namespace; ended on drop.
#[derive(Debug)]
pub struct Keepalived {
    proc: Option<Proc>,
    dir: PathBuf,
    ns: String,
}

impl Keepalived {
    /// Renders `cfg`, checks it (`keepalived -t`) and starts keepalived in
    /// `ns` with `env` added to its environment (the notify script reads
    /// `XVS_SOCKET` and `XVSADM`). Fails with [`LabError::Unsupported`]
    /// when keepalived is not installed.
    pub fn start(ns: &Netns, cfg: &VrrpConfig, env: &[(&str, &OsStr)]) -> Result<Keepalived> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if !std::env::split_paths(&path).any(|d| d.join("keepalived").is_file()) {
            return Err(LabError::Unsupported(
                "`keepalived` not found on PATH (apt-get install keepalived)".into(),
            ));
        }
        let dir = temp_dir(ns.name())?;
        // From here on the guard removes the directory.
        let mut k = Keepalived {
            proc: None,
            dir,
            ns: ns.name().to_owned(),
        };
        let notify = k.dir.join("xvs-notify.sh");
        write_file(&notify, NOTIFY_SCRIPT, 0o755)?;
        let conf = k.config_path();
        write_file(&conf, &render(TEMPLATE, &cfg.definitions(&notify))?, 0o644)?;
        let conf_s = conf.display().to_string();
        ns.exec(&["keepalived", "-t", "-f", &conf_s])?;
        let log = fs::File::create(k.log_path())
            .map_err(|e| LabError::io(format!("create {}", k.log_path().display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| LabError::io("dup the log file", e))?;
        let file = |name: &str| k.dir.join(name).display().to_string();
        let mut cmd = ns.command("keepalived");
        cmd.args([
            "--vrrp",
            "--dont-fork",
            "--dont-respawn",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "-f",
            &conf_s,
            "-p",
            &file("keepalived.pid"),
            "-r",
            &file("vrrp.pid"),
            "-c",
            &file("checkers.pid"),
            "-b",
            &file("bfd.pid"),
        ])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        // Its own process group: the guard can end keepalived and its VRRP
        // child (and any notify script still running) together.
        .process_group(0);
        k.proc = Some(Proc::spawn(&mut cmd)?);
        Ok(k)
    }

    /// The rendered configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("keepalived.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("keepalived.log")
    }

    /// Everything keepalived logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last VRRP state keepalived entered (`MASTER`, `BACKUP`,
    /// `FAULT`), from its log.
    pub fn state(&self) -> Option<String> {
        let log = self.log();
        log.lines().rev().find_map(|l| {
            let rest = &l[l.find("Entering ")? + "Entering ".len()..];
            rest.split_whitespace().next().map(str::to_owned)
        })
    }

    /// Waits until keepalived entered `state`; the error carries the log.
    pub fn wait_state(&self, state: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if self.state().as_deref() == Some(state) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabError::Protocol(format!(
                    "keepalived in {} not {state} after {within:?}:\n{}",
                    self.ns,
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The parent process's pid.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::id)
    }

    /// Ends keepalived as a crash would: SIGKILL to all its processes, so
    /// it neither sends a last advert nor removes the VIP.
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.take() {
            let pgid = Pid::from_raw(p.id() as i32);
            let _ = killpg(pgid, Signal::SIGKILL);
            drop(p);
        }
    }

    /// Ends keepalived cleanly (SIGTERM: it hands the VIP over with a
    /// priority 0 advert and removes it), SIGKILL after `grace`.
    pub fn stop(mut self, grace: Duration) {
        self.terminate(grace);
    }

    fn terminate(&mut self, grace: Duration) {
        let Some(mut p) = self.proc.take() else {
            return;
        };
        let pid = Pid::from_raw(p.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = p.try_wait() {
                // Exited, after waiting for its VRRP child.
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Still there (so its pid is still its group's): the whole group,
        // the VRRP child and any notify script included.
        let _ = killpg(pid, Signal::SIGKILL);
        drop(p);
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(3));
        if std::thread::panicking() {
            eprintln!("xvs-lab: keepalived log of {}:\n{}", self.ns, self.log());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A fresh private directory `/tmp/xvs-keepalived-<ns>-<n>` (mode 0700).
fn temp_dir(ns: &str) -> Result<PathBuf> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("xvs-keepalived-{ns}-{n}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| LabError::io(format!("chmod {}", dir.display()), e))?;
    Ok(dir)
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    fs::write(path, text)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
        .map_err(|e| LabError::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VrrpConfig {
        VrrpConfig {
            iface: "eth0".into(),
            vip4: Ipv4Addr::new(192, 0, 2, 50),
            vip6: "2001:db8::50".parse().unwrap(),
            vrid: 51,
            priority: 150,
            start_master: true,
            advert_int: Duration::from_millis(250),
            notify: true,
            sync_iface: "eth1".into(),
            syncid: 7,
        }
    }

    #[test]
    fn renders_every_definition_of_the_committed_template() {
        let text = render(TEMPLATE, &cfg().definitions(Path::new("/x/notify.sh"))).unwrap();
        for line in [
            "$IFACE=eth0",
            "$VIP=192.0.2.50",
            "$VIP6=2001:db8::50",
            "$VRID=51",
            "$STATE=MASTER",
            "$PRIORITY=150",
            "$ADVERT_INT=0.25",
            "$NOTIFY=/x/notify.sh",
            "$SYNC_IFACE=eth1",
            "$SYNCID=7",
        ] {
            assert_eq!(text.lines().filter(|l| *l == line).count(), 1, "{line}");
        }
        // Everything else is the committed file, line for line.
        assert_eq!(text.lines().count(), TEMPLATE.lines().count());
        assert!(text.contains("notify_master \"${NOTIFY} master ${SYNC_IFACE} ${SYNCID}\""));
        let mut c = cfg();
        c.notify = false;
        c.advert_int = Duration::from_secs(2);
        let text = render(TEMPLATE, &c.definitions(Path::new("/x"))).unwrap();
        assert!(text.contains("\n$NOTIFY=/bin/true\n") && text.contains("\n$ADVERT_INT=2\n"));
    }

    #[test]
    fn unknown_definition_is_an_error() {
        let e = render("$A=1\n", &[("B", "2".into())]).unwrap_err();
        assert!(e.to_string().contains("$B"), "{e}");
        assert_eq!(
            render("$A=1\nx $A=3\n", &[("A", "2".into())]).unwrap(),
            "$A=2\nx $A=3\n"
        );
    }

    #[test]
    fn master_down_interval_follows_the_rfc() {
        let mut c = cfg();
        c.advert_int = Duration::from_secs(1);
        c.priority = 100;
        let t = c.master_down_interval().as_secs_f64();
        assert!((t - (3.0 + 156.0 / 256.0)).abs() < 1e-6, "{t}");
    }
}
