//! BIRD in the lab: BGP between the router and the directors, from the
//! committed `deploy/bird/` configurations.
//!
//! With [`crate::Ecmp::Bgp`] the lab installs no VIP route on the router;
//! [`Bird::router`] and [`Bird::director`] run BIRD 2 (`bird -f`, in the
//! foreground) in those namespaces with `deploy/bird/router.conf` and
//! `deploy/bird/bird.conf`, their `define NAME = value;` lines rewritten
//! for the lab ([`render`]) and their `log syslog all;` sent to a file of
//! the guard's temporary directory instead (see [`Bird::log`]). Each
//! director announces the VIPs; the router installs them as multipath
//! routes; `birdc disable "vip*"` on a director withdraws it.
//!
//! The guard stops BIRD on drop (SIGTERM, then SIGKILL).
//!
//! ```no_run
//! use xvs_lab::bird::Bird;
//! use xvs_lab::{Ecmp, Mode, Topology};
//!
//! let lab = Topology::builder(Mode::Dr).directors(2).router(true).ecmp(Ecmp::Bgp).build()?;
//! let _router = Bird::router(&lab)?;
//! let d1 = Bird::director(&lab, 0)?;
//! let _d2 = Bird::director(&lab, 1)?;
//! d1.wait_established(std::time::Duration::from_secs(15))?;
//! d1.birdc("disable \"vip*\"")?; // d1 withdraws the VIPs
//! # Ok::<(), xvs_lab::LabError>(())
//! ```

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::netns::{self, Netns, Proc};
use crate::topology::{Family, Topology};

/// `deploy/bird/bird.conf`: a director announcing the VIPs.
pub const DIRECTOR_CONF: &str = include_str!("../../../deploy/bird/bird.conf");

/// `deploy/bird/router.conf`: the router taking them, for two directors.
pub const ROUTER_CONF: &str = include_str!("../../../deploy/bird/router.conf");

/// Rewrites the `define NAME = value;` lines of a BIRD configuration: each
/// `(NAME, value)` of `defs` replaces the value of its line. A name the
/// configuration does not define is an error.
pub fn render(template: &str, defs: &[(&str, String)]) -> Result<String> {
    let mut used = vec![false; defs.len()];
    let mut out = String::with_capacity(template.len());
    for line in template.lines() {
        let def = line
            .strip_prefix("define ")
            .and_then(|rest| rest.split_once('='))
            .and_then(|(name, _)| defs.iter().position(|(n, _)| *n == name.trim()));
        match def {
            Some(i) => {
                used[i] = true;
                out.push_str(&format!("define {} = {};", defs[i].0, defs[i].1));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(LabError::Invalid(format!(
            "the BIRD configuration defines no {}",
            defs[i].0
        )));
    }
    Ok(out)
}

/// BIRD running in a namespace; stopped on drop.
#[derive(Debug)]
pub struct Bird {
    proc: Option<Proc>,
    dir: PathBuf,
    ns: String,
}

impl Bird {
    /// BIRD on the lab's router with `deploy/bird/router.conf`: a session
    /// to each of the two directors. Fails unless the lab was built with
    /// a router, [`crate::Ecmp::Bgp`] and two directors.
    pub fn router(lab: &Topology) -> Result<Bird> {
        let router = lab
            .router()
            .ok_or_else(|| LabError::Invalid("BGP needs the lab's router".into()))?;
        if lab.directors().len() != 2 || lab.ecmp() != Some(crate::Ecmp::Bgp) {
            return Err(LabError::Invalid(
                "deploy/bird/router.conf is written for two directors and Ecmp::Bgp".into(),
            ));
        }
        let d = lab.directors();
        let inside = &router.ifaces()[1];
        let defs = vec![
            ("ROUTER_ID", inside.addr(Family::V4).to_string()),
            ("D1", d[0].addr(Family::V4).to_string()),
            ("D2", d[1].addr(Family::V4).to_string()),
            ("D1_6", d[0].addr(Family::V6).to_string()),
            ("D2_6", d[1].addr(Family::V6).to_string()),
            ("VIP4", format!("{}/32", lab.vip(Family::V4))),
            ("VIP6", format!("{}/128", lab.vip(Family::V6))),
        ];
        Bird::start(router, &render(ROUTER_CONF, &defs)?)
    }

    /// BIRD on director `k` (from 0) with `deploy/bird/bird.conf`,
    /// announcing the VIPs to the router.
    pub fn director(lab: &Topology, k: usize) -> Result<Bird> {
        let router = lab
            .router()
            .ok_or_else(|| LabError::Invalid("BGP needs the lab's router".into()))?;
        let d = lab
            .directors()
            .get(k)
            .ok_or_else(|| LabError::Invalid(format!("no director {k}")))?;
        let inside = &router.ifaces()[1];
        let defs = vec![
            ("ROUTER_ID", d.addr(Family::V4).to_string()),
            ("ROUTER4", inside.addr(Family::V4).to_string()),
            ("ROUTER6", inside.addr(Family::V6).to_string()),
            ("VIP4", format!("{}/32", lab.vip(Family::V4))),
            ("VIP6", format!("{}/128", lab.vip(Family::V6))),
        ];
        Bird::start(d, &render(DIRECTOR_CONF, &defs)?)
    }

    /// Runs BIRD in `ns` with `config` (syntax checked first, `bird -p`).
    /// Fails with [`LabError::Unsupported`] when BIRD is not installed.
    pub fn start(ns: &Netns, config: &str) -> Result<Bird> {
        for tool in ["bird", "birdc"] {
            if crate::preflight(&[tool]).is_err() {
                return Err(LabError::Unsupported(format!(
                    "`{tool}` not found on PATH (apt-get install bird2)"
                )));
            }
        }
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xvs-bird-{}-{n}", ns.name()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir)
            .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)))
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        let mut bird = Bird {
            proc: None,
            dir,
            ns: ns.name().to_owned(),
        };
        let log = bird.dir.join("bird.log");
        let config = config.replace(
            "\nlog syslog all;\n",
            &format!("\nlog \"{}\" all;\n", log.display()),
        );
        let conf = bird.dir.join("bird.conf");
        fs::write(&conf, config)
            .map_err(|e| LabError::io(format!("write {}", conf.display()), e))?;
        let conf_s = conf.display().to_string();
        ns.exec(&["bird", "-p", "-c", &conf_s])?;
        let (sock, pid) = (
            bird.socket().display().to_string(),
            bird.dir.join("bird.pid"),
        );
        let pid = pid.display().to_string();
        let mut cmd = ns.command("bird");
        cmd.args(["-f", "-c", &conf_s, "-s", &sock, "-P", &pid])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        bird.proc = Some(Proc::spawn(&mut cmd)?);
        let deadline = Instant::now() + Duration::from_secs(5);
        while bird.birdc("show status").is_err() {
            if Instant::now() >= deadline {
                return Err(LabError::Protocol(format!(
                    "BIRD in {} does not answer on {sock}:\n{}",
                    bird.ns,
                    bird.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(bird)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    /// What BIRD logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("bird.log")).unwrap_or_default()
    }

    /// `birdc -s SOCKET COMMAND` (e.g. `disable "vip*"`, `show
    /// protocols`); its output.
    pub fn birdc(&self, command: &str) -> Result<String> {
        netns::run_checked(
            Command::new("birdc")
                .arg("-s")
                .arg(self.socket())
                .args(command.split_whitespace()),
        )
    }

    /// Waits until every BGP session of this BIRD is established.
    pub fn wait_established(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let out = self.birdc("show protocols").unwrap_or_default();
            let bgp: Vec<&str> = out.lines().filter(|l| l.contains(" BGP ")).collect();
            if !bgp.is_empty() && bgp.iter().all(|l| l.contains("Established")) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabError::Protocol(format!(
                    "BGP sessions in {} not up after {within:?}:\n{out}",
                    self.ns
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if let Some(p) = self.proc.take() {
            let _ = p.stop(Duration::from_secs(2));
        }
        if std::thread::panicking() {
            eprintln!("xvs-lab: BIRD log of {}:\n{}", self.ns, self.log());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_committed_configurations() {
        let d = render(
            DIRECTOR_CONF,
            &[
                ("ROUTER_ID", "192.0.2.11".into()),
                ("VIP4", "192.0.2.51/32".into()),
            ],
        )
        .unwrap();
        assert!(d.contains("\ndefine ROUTER_ID = 192.0.2.11;\n"));
        assert!(d.contains("\ndefine VIP4 = 192.0.2.51/32;\n"));
        assert!(
            d.contains("\ndefine ROUTER4 = 192.0.2.254;\n"),
            "others kept"
        );
        assert_eq!(d.lines().count(), DIRECTOR_CONF.lines().count());
        assert!(DIRECTOR_CONF.contains("\nlog syslog all;\n"));
        assert!(ROUTER_CONF.contains("\nlog syslog all;\n"));
        let r = render(ROUTER_CONF, &[("D2", "192.0.2.12".into())]).unwrap();
        assert!(r.contains("\ndefine D2 = 192.0.2.12;\n"));
        assert!(render(ROUTER_CONF, &[("NOPE", "1".into())]).is_err());
    }
}
