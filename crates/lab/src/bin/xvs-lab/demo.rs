//! The README's demo: the seed article's LVS session, on xvs.
//!
//! Two labs in turn, each with three real servers running the echo server
//! (which answers `GET /` with its name):
//!
//! 1. DR: `xvsd` on the director with an embedded rr configuration; the
//!    client GETs the VIP repeatedly and the answers alternate rs1, rs2,
//!    rs3 (the article's `watch curl VIP`); `xvsadm -l --stats`; then the
//!    article's maintenance steps: `-e ... -w 0` (rs2 gets no new
//!    connections), `-d` and `-a` of a real server.
//! 2. NAT: two arms, wrr with weights 3, 2, 1, TCP and UDP; the spread of
//!    answers and `xvsadm -L -n --stats`.
//!
//! Everything is removed at the end, also on failure.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use xvs_lab::{Family, LabError, Mode, Proc, Topology};

const HTTP: u16 = 80;
const UDP: u16 = 5353;

struct Tools {
    xvsd: PathBuf,
    xvsadm: PathBuf,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn beside_me(name: &str) -> Result<PathBuf, LabError> {
    let me = std::env::current_exe().map_err(|e| LabError::io("current_exe", e))?;
    Ok(me.with_file_name(name))
}

/// Runs the demo.
pub fn run(xvsd: Option<PathBuf>, xvsadm: Option<PathBuf>) -> Result<(), LabError> {
    let tools = Tools {
        xvsd: xvsd.map_or_else(|| beside_me("xvsd"), Ok)?,
        xvsadm: xvsadm.map_or_else(|| beside_me("xvsadm"), Ok)?,
    };
    for p in [&tools.xvsd, &tools.xvsadm] {
        if !p.is_file() {
            return Err(LabError::Invalid(format!(
                "{} not found (build it: cargo build --release -p xvs-dataplane -p xvs-ctl)",
                p.display()
            )));
        }
    }
    let dir = TempDir(std::env::temp_dir().join(format!("xvs-demo-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(|e| LabError::io("create demo dir", e))?;
    dr(&tools, &dir.0)?;
    println!();
    nat(&tools, &dir.0)?;
    println!("\nThe labs are removed. Done.");
    Ok(())
}

fn host(a: IpAddr) -> String {
    match a {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// xvsd on the lab's director, with its control socket in `dir`.
struct Director<'a> {
    proc: Option<Proc>,
    socket: PathBuf,
    tools: &'a Tools,
}

impl<'a> Director<'a> {
    fn start(lab: &Topology, tools: &'a Tools, dir: &Path, config: &str) -> Result<Self, LabError> {
        let tag = lab.mode().as_str();
        let conf = dir.join(format!("{tag}.conf"));
        let socket = dir.join(format!("{tag}.sock"));
        std::fs::write(&conf, config).map_err(|e| LabError::io("write config", e))?;
        println!("# xvsd's configuration ({}):", conf.display());
        for line in config.lines() {
            println!("#   {line}");
        }
        let mut argv = vec![tools.xvsd.display().to_string()];
        for ifc in lab.director().ifaces() {
            argv.push("--iface".into());
            argv.push(ifc.dev.clone());
        }
        argv.extend([
            "--config".into(),
            conf.display().to_string(),
            "--socket".into(),
            socket.display().to_string(),
        ]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let proc = lab.director().spawn(&argv)?;
        Ok(Director {
            proc: Some(proc),
            socket,
            tools,
        })
    }

    /// `xvsadm ARGS`, printed as typed and answered.
    fn xvsadm(&self, args: &[&str]) -> Result<(), LabError> {
        println!("$ xvsadm {}", args.join(" "));
        print!("{}", self.output(args)?);
        Ok(())
    }

    /// What `xvsadm ARGS` prints (an error if it fails).
    fn output(&self, args: &[&str]) -> Result<String, LabError> {
        let out = Command::new(&self.tools.xvsadm)
            .args(args)
            .env("XVS_SOCKET", &self.socket)
            .output()
            .map_err(|e| LabError::io("run xvsadm", e))?;
        if !out.status.success() {
            return Err(LabError::Invalid(format!(
                "xvsadm {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn stop(mut self) -> Result<(), LabError> {
        if let Some(p) = self.proc.take() {
            let status = p.stop(Duration::from_secs(5))?;
            println!("# xvsd stopped ({status})");
        }
        Ok(())
    }
}

/// Waits until the VIP answers (xvsd resolves the real servers' MACs
/// first).
fn wait_ready(lab: &Topology, vip: SocketAddr) -> Result<(), LabError> {
    lab.client()
        .http_get_retry(vip, "/", Duration::from_secs(15))
        .map(drop)
}

/// `n` GETs of the VIP from the client, each answer printed; returns the
/// count per real server.
fn curl(lab: &Topology, vip: SocketAddr, n: usize) -> Result<BTreeMap<String, usize>, LabError> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let r = lab.client().http_get(vip, "/")?;
        let name = r.text().trim().to_owned();
        println!("client$ curl http://{vip}/  ->  {name}");
        *seen.entry(name).or_insert(0) += 1;
    }
    Ok(seen)
}

fn dr(tools: &Tools, dir: &Path) -> Result<(), LabError> {
    println!("=== Direct routing (-g): client, director, rs1..rs3 on one segment ===");
    let lab = Topology::builder(Mode::Dr).real_servers(3).build()?;
    let _echo = lab.start_echo(HTTP, UDP)?;
    let vip = host(lab.vip(Family::V4));
    let rs: Vec<String> = lab
        .real_servers()
        .iter()
        .map(|r| host(r.addr(Family::V4)))
        .collect();
    let mut config = format!("-A -t {vip}:{HTTP} -s rr\n");
    for r in &rs {
        config += &format!("-a -t {vip}:{HTTP} -r {r}:{HTTP} -g -w 1\n");
    }
    let d = Director::start(&lab, tools, dir, &config)?;
    let addr = lab.vip_addr(Family::V4, HTTP);
    wait_ready(&lab, addr)?;
    println!("\n# rr: the answers alternate between the real servers");
    curl(&lab, addr, 6)?;
    d.xvsadm(&["-l", "--stats"])?;
    println!("\n# maintenance of rs2: weight 0, no new connections");
    let svc = format!("{vip}:{HTTP}");
    d.xvsadm(&["-e", "-t", &svc, "-r", &rs[1], "-w", "0"])?;
    let seen = curl(&lab, addr, 4)?;
    if seen.contains_key("rs2") {
        return Err(LabError::Invalid("rs2 answered at weight 0".into()));
    }
    d.xvsadm(&["-e", "-t", &svc, "-r", &rs[1], "-w", "1"])?;
    println!("\n# rs3 leaves the cluster, then comes back");
    d.xvsadm(&["-d", "-t", &svc, "-r", &rs[2]])?;
    curl(&lab, addr, 4)?;
    d.xvsadm(&["-a", "-t", &svc, "-r", &rs[2]])?;
    curl(&lab, addr, 3)?;
    d.xvsadm(&["-L", "-n", "--stats"])?;
    println!("# in DR the director sees only client-to-server packets: OutPkts stay 0");
    d.xvsadm(&["-S", "-n"])?;
    d.stop()
}

fn nat(tools: &Tools, dir: &Path) -> Result<(), LabError> {
    println!("=== NAT (-m): client outside, rs1..rs3 inside, replies through the director ===");
    let lab = Topology::builder(Mode::Nat).real_servers(3).build()?;
    let mut echo = lab.start_echo(HTTP, UDP)?;
    let vip = host(lab.vip(Family::V4));
    let mut config = format!("-A -t {vip}:{HTTP} -s wrr\n-A -u {vip}:{UDP} -s rr\n");
    for (i, r) in lab.real_servers().iter().enumerate() {
        let r = host(r.addr(Family::V4));
        config += &format!(
            "-a -t {vip}:{HTTP} -r {r}:{HTTP} -m -w {} --check http:path=/ \
             --check-timing interval=500ms,timeout=300ms,rise=1,fall=2\n",
            3 - i
        );
        config += &format!("-a -u {vip}:{UDP} -r {r}:{UDP} -m -w 1\n");
    }
    let d = Director::start(&lab, tools, dir, &config)?;
    let addr = lab.vip_addr(Family::V4, HTTP);
    wait_ready(&lab, addr)?;
    println!("\n# wrr 3:2:1");
    let seen = curl(&lab, addr, 12)?;
    println!("# answers per real server: {seen:?}");
    let udp = lab.vip_addr(Family::V4, UDP);
    for _ in 0..3 {
        let (answer, from) = lab
            .client()
            .udp_request(udp, b"hello", Duration::from_secs(2))?;
        println!(
            "client$ echo hello | nc -u {udp}  ->  {:?} from {from}",
            String::from_utf8_lossy(&answer).replace('\n', " ")
        );
    }
    d.xvsadm(&["-L", "-n", "--stats"])?;
    d.xvsadm(&["-L", "-n", "-c"])?;
    println!("\n# rs1 stops serving: its health check fails twice, xvsd takes it out");
    drop(echo.remove(0));
    let svc = format!("{vip}:{HTTP}");
    let rs1 = host(lab.real_servers()[0].addr(Family::V4));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while d.output(&["-L", "-n", "-t", &svc])?.contains(&rs1) {
        if std::time::Instant::now() > deadline {
            return Err(LabError::Invalid("rs1 was not taken out".into()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    d.xvsadm(&["-L", "-n", "--checks"])?;
    let seen = curl(&lab, addr, 5)?;
    if seen.contains_key("rs1") {
        return Err(LabError::Invalid(
            "rs1 answered after its check failed".into(),
        ));
    }
    d.stop()
}
