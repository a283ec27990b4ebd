//! The Debian package `xvs`: built with cargo-deb from the metadata in
//! `crates/xvs/Cargo.toml`, checked by unpacking it.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, cargo, output, run, target_dir, workspace};

/// The crate that holds the package metadata.
const PACKAGE_CRATE: &str = "xvs";

/// What the package must install, with each file's mode. `check` fails
/// on a missing file or another mode; the package may hold more (every
/// page of docs/).
pub const EXPECTED: &[(&str, u32)] = &[
    ("usr/sbin/xvsd", 0o755),
    ("usr/sbin/xvsadm", 0o755),
    ("usr/lib/systemd/system/xvsd.service", 0o644),
    ("etc/xvs/xvsd.conf", 0o644),
    ("etc/default/xvsd", 0o644),
    ("usr/share/man/man8/xvsd.8.gz", 0o644),
    ("usr/share/man/man8/xvsadm.8.gz", 0o644),
    ("usr/share/bash-completion/completions/xvsd", 0o644),
    ("usr/share/bash-completion/completions/xvsadm", 0o644),
    ("usr/share/zsh/vendor-completions/_xvsd", 0o644),
    ("usr/share/zsh/vendor-completions/_xvsadm", 0o644),
    ("usr/share/fish/vendor_completions.d/xvsd.fish", 0o644),
    ("usr/share/fish/vendor_completions.d/xvsadm.fish", 0o644),
    ("usr/share/xvs/realserver-dr.sh", 0o755),
    ("usr/share/xvs/realserver-nat.sh", 0o755),
    ("usr/share/xvs/realserver-tun.sh", 0o755),
    ("usr/share/xvs/keepalived/keepalived.conf", 0o644),
    ("usr/share/xvs/keepalived/xvs-notify.sh", 0o755),
    ("usr/share/xvs/bird/bird.conf", 0o644),
    ("usr/share/xvs/bird/router.conf", 0o644),
    ("usr/share/doc/xvs/README.md", 0o644),
    ("usr/share/doc/xvs/index.md", 0o644),
    ("usr/share/doc/xvs/operations.md", 0o644),
    ("usr/share/doc/xvs/tuning.md", 0o644),
    ("usr/share/doc/xvs/copyright", 0o644),
];

/// Configuration files dpkg must keep across upgrades.
const CONFFILES: &[&str] = &["/etc/xvs/xvsd.conf", "/etc/default/xvsd"];

/// Run-time dependencies allowed: the C library. Anything else is a
/// change to look at.
const ALLOWED_DEPENDS: &[&str] = &["libc6"];

/// Release build of xvsd and xvsadm, their man pages and completions, the
/// package. Returns the .deb's path.
pub fn build(out: Option<&Path>) -> Result<PathBuf> {
    if output(Command::new(cargo()).args(["deb", "--version"])).is_err() {
        return Err("cargo-deb not found: `cargo install cargo-deb --locked` \
                    (scripts/package.sh installs it)"
            .into());
    }
    run(Command::new(cargo())
        .args(["build", "--release", "--locked"])
        .args(["-p", "xvs-dataplane", "-p", "xvs-ctl"])
        .args(["--bin", "xvsd", "--bin", "xvsadm"])
        .current_dir(workspace()))?;
    let target = target_dir();
    // cargo-deb finds build products under `target/release/` (its name for
    // the real target directory): the generated files go there too.
    let dist = target.join("release").join("dist");
    crate::dist::write(&dist)?;
    for name in ["xvsd", "xvsadm"] {
        // Debian's man pages are gzipped; -n: no name or time stamp, so
        // the same page gives the same bytes.
        run(Command::new("gzip")
            .args(["-9", "-n", "-f", "-k"])
            .arg(dist.join("man").join(format!("{name}.8"))))?;
    }
    let out = out.map_or_else(|| target.join("debian"), Path::to_owned);
    let stdout = output(
        Command::new(cargo())
            .args(["deb", "-p", PACKAGE_CRATE, "--no-build", "--locked"])
            // The release profile keeps line tables (debug = 1) for perf
            // and backtraces: the package gets stripped binaries, the
            // symbols go to a separate xvs-dbgsym .ddeb next to it.
            .arg("--dbgsym")
            .arg("--output")
            .arg(&out)
            .current_dir(workspace()),
    )?;
    stdout
        .lines()
        .map(PathBuf::from)
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| format!("cargo deb said where the package is in no line of: {stdout}"))
}

/// The newest `TARGET/debian/xvs_*.deb`.
pub fn newest() -> Result<PathBuf> {
    let dir = target_dir().join("debian");
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        format!(
            "{}: {e} (build the package first: cargo xtask deb)",
            dir.display()
        )
    })?;
    entries
        .filter_map(std::result::Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("xvs_") && n.ends_with(".deb")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .ok_or_else(|| format!("no xvs_*.deb in {}", dir.display()))
}

/// Unpacks `deb` into a scratch root and checks it (see the crate docs).
pub fn check(deb: &Path) -> Result {
    println!("checking {}", deb.display());
    let field = |name: &str| -> Result<String> {
        Ok(
            output(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))?
                .trim()
                .to_owned(),
        )
    };
    let package = field("Package")?;
    if package != "xvs" {
        return Err(format!("Package: {package}, not xvs"));
    }
    let depends = field("Depends")?;
    println!(
        "  Package: {package} {} {}",
        field("Version")?,
        field("Architecture")?
    );
    println!("  Depends: {depends}");
    for dep in depends.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let name = dep.split([' ', '(']).next().unwrap_or(dep);
        if !ALLOWED_DEPENDS.contains(&name) {
            return Err(format!(
                "depends on {dep}: not one of {ALLOWED_DEPENDS:?} (a new run-time dependency?)"
            ));
        }
    }
    let conffiles = output(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"))?;
    for c in CONFFILES {
        if !conffiles.lines().any(|l| l.trim() == *c) {
            return Err(format!("{c} is not a conffile: {conffiles}"));
        }
    }

    let root = Scratch::new()?;
    run(Command::new("dpkg").arg("-x").arg(deb).arg(&root.0))?;
    for (path, mode) in EXPECTED {
        let p = root.0.join(path);
        let meta = std::fs::metadata(&p).map_err(|e| format!("/{path}: {e}"))?;
        let got = meta.permissions().mode() & 0o7777;
        if got != *mode {
            return Err(format!("/{path}: mode {got:o}, not {mode:o}"));
        }
    }
    println!("  {} files in place with their modes", EXPECTED.len());

    let sbin = root.0.join("usr/sbin");
    for (prog, args, want) in [
        ("xvsd", "--version", "xvsd 0.1.0"),
        ("xvsd", "--help", "--iface"),
        ("xvsadm", "--version", "xvsadm 0.1.0"),
        ("xvsadm", "--help", "--add-service"),
    ] {
        let out = output(Command::new(sbin.join(prog)).arg(args))?;
        if !out.contains(want) {
            return Err(format!("{prog} {args}: no `{want}` in: {out}"));
        }
        println!("  {prog} {args}: {}", out.lines().next().unwrap_or(""));
    }

    let man = root.0.join("usr/share/man/man8");
    for page in ["xvsd.8.gz", "xvsadm.8.gz"] {
        check_man_page(&man.join(page))?;
    }
    for name in ["xvsd", "xvsadm"] {
        let file = root
            .0
            .join("usr/share/bash-completion/completions")
            .join(name);
        let script = format!("source '{}' && complete -p {name}", file.display());
        output(Command::new("bash").args(["-c", &script]))?;
    }
    println!("  bash loads both completions");
    // zsh and fish check the syntax of theirs, where installed.
    for (shell, dir, file) in [
        ("zsh", "usr/share/zsh/vendor-completions", "_NAME"),
        ("fish", "usr/share/fish/vendor_completions.d", "NAME.fish"),
    ] {
        if Command::new(shell).arg("--version").output().is_err() {
            println!("  {shell} missing, its completions not parsed");
            continue;
        }
        for name in ["xvsd", "xvsadm"] {
            let f = root.0.join(dir).join(file.replace("NAME", name));
            output(Command::new(shell).arg("-n").arg(&f))?;
        }
        println!("  {shell} -n accepts both completions");
    }
    let share = root.0.join("usr/share/xvs");
    for script in [
        "realserver-dr.sh",
        "realserver-nat.sh",
        "realserver-tun.sh",
        "keepalived/xvs-notify.sh",
    ] {
        output(Command::new("sh").arg("-n").arg(share.join(script)))?;
    }
    println!("  the shell scripts parse (sh -n)");
    check_unit(&root.0)
}

/// groff renders the page without a warning.
fn check_man_page(gz: &Path) -> Result {
    let name = gz.file_name().unwrap_or_default().to_string_lossy();
    if Command::new("groff").arg("--version").output().is_err() {
        println!("  {name}: groff missing, page not rendered");
        return Ok(());
    }
    let script = format!("zcat '{}' | groff -man -Tutf8 -ww -z 2>&1", gz.display());
    let warnings = output(Command::new("sh").args(["-c", &script]))?;
    if !warnings.trim().is_empty() {
        return Err(format!("{name}: groff warns: {warnings}"));
    }
    println!("  {name}: groff renders it without a warning");
    Ok(())
}

/// `systemd-analyze verify` on the unit, against the unpacked root (so
/// that ExecStart= names an existing program).
fn check_unit(root: &Path) -> Result {
    let unit = root.join("usr/lib/systemd/system/xvsd.service");
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("  systemd-analyze missing, unit not verified");
        return Ok(());
    }
    // verify checks that ExecStart= exists: point it at the scratch root's
    // binary in a copy of the unit (verify --root= does not cover it).
    let text = std::fs::read_to_string(&unit).map_err(|e| format!("{}: {e}", unit.display()))?;
    let copy = root.join("xvsd.service");
    let exec = root.join("usr/sbin/xvsd");
    std::fs::write(
        &copy,
        text.replace("/usr/sbin/xvsd", &exec.display().to_string()),
    )
    .map_err(|e| format!("{}: {e}", copy.display()))?;
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .map_err(|e| format!("systemd-analyze: {e}"))?;
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // Without systemd as PID 1 (containers, this kind of VM), verify
    // still parses the unit but also complains about the host; only what
    // it says about our unit counts.
    let ours: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("xvsd.service"))
        .collect();
    if !ours.is_empty() {
        return Err(format!("systemd-analyze verify: {}", ours.join("\n")));
    }
    println!("  systemd-analyze verify: the unit is clean");
    Ok(())
}

/// A temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let p = std::env::temp_dir().join(format!("xvs-check-deb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[package.metadata.deb]` of the package crate, from cargo metadata.
    fn deb_metadata() -> serde_json::Value {
        let meta = crate::metadata().unwrap();
        let pkg = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == PACKAGE_CRATE)
            .unwrap()
            .clone();
        pkg["metadata"]["deb"].clone()
    }

    /// Where each asset lands: `dest` itself, or `dest` + the source's
    /// file name when `dest` ends with `/` (cargo-deb's rule); globs
    /// expanded over the directory.
    fn installed(src: &str, dest: &str) -> Vec<String> {
        let crate_dir = workspace().join("crates/xvs");
        let names: Vec<String> = match src.rsplit_once("/*") {
            Some((dir, suffix)) => std::fs::read_dir(crate_dir.join(dir))
                .unwrap()
                .filter_map(|e| {
                    let n = e.ok()?.file_name().to_string_lossy().into_owned();
                    n.ends_with(suffix).then_some(n)
                })
                .collect(),
            None => vec![src.rsplit('/').next().unwrap().to_owned()],
        };
        names
            .into_iter()
            .map(|n| match dest.strip_suffix('/') {
                Some(d) => format!("{d}/{n}"),
                None => dest.to_owned(),
            })
            .collect()
    }

    #[test]
    fn assets_exist_and_cover_what_the_check_expects() {
        let deb = deb_metadata();
        let mut dests = Vec::new();
        let tmp = std::env::temp_dir().join(format!("xvs-xtask-assets-{}", std::process::id()));
        let dist = crate::dist::write(&tmp).unwrap();
        std::fs::remove_dir_all(&tmp).unwrap();
        for a in deb["assets"].as_array().unwrap() {
            let src = a[0].as_str().unwrap();
            let dest = a[1].as_str().unwrap();
            let mode = u32::from_str_radix(a[2].as_str().unwrap(), 8).unwrap();
            if let Some(generated) = src.strip_prefix("target/release/dist/") {
                // Generated by `dist` (the man pages then gzipped).
                let generated = generated.strip_suffix(".gz").unwrap_or(generated);
                assert!(
                    dist.iter().any(|f| f.ends_with(generated)),
                    "{src}: dist makes no {generated}"
                );
            } else if !src.starts_with("target/release/") && !src.contains('*') {
                let p = workspace().join("crates/xvs").join(src);
                assert!(p.is_file(), "asset {src} missing");
                let exec = std::fs::metadata(&p).unwrap().permissions().mode() & 0o111 != 0;
                assert_eq!(exec, mode & 0o111 != 0, "{src}: executable bit vs {mode:o}");
            }
            for d in installed(src, dest) {
                dests.push((d, mode));
            }
        }
        // The unit comes from systemd-units.
        let units = &deb["systemd-units"];
        assert_eq!(units["unit-name"], "xvsd");
        assert!(workspace().join("deploy/xvsd.service").is_file());
        dests.push(("usr/lib/systemd/system/xvsd.service".into(), 0o644));
        dests.push(("usr/share/doc/xvs/copyright".into(), 0o644));
        for (path, mode) in EXPECTED {
            assert!(
                dests.iter().any(|(d, m)| d == path && m == mode),
                "/{path} ({mode:o}) is in no asset: {dests:?}"
            );
        }
    }

    #[test]
    fn the_unit_runs_what_the_package_installs() {
        let unit = std::fs::read_to_string(workspace().join("deploy/xvsd.service")).unwrap();
        let line = |key: &str| {
            unit.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in the unit"))
                .to_owned()
        };
        assert_eq!(line("Type="), "notify");
        assert_eq!(line("EnvironmentFile="), "-/etc/default/xvsd");
        let exec = line("ExecStart=");
        assert!(
            exec.starts_with("/usr/sbin/xvsd $XVSD_ARGS --config /etc/xvs/xvsd.conf"),
            "{exec}"
        );
        assert_eq!(line("RuntimeDirectory="), "xvs");
        // The socket is the default one, inside the runtime directory.
        assert_eq!(xvs_ctl::client::DEFAULT_SOCKET, "/run/xvs/xvsd.sock");
        assert_eq!(line("RestartPreventExitStatus="), "2");
        let default = std::fs::read_to_string(workspace().join("deploy/xvsd.default")).unwrap();
        assert!(default.lines().any(|l| l.starts_with("XVSD_ARGS=")));
        // Every option the default file and the unit mention exists.
        let cmd = xvs_dataplane::cli::command();
        let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
        // Every option the default file documents (its `#   --opt` lines
        // and its example) and the unit passes exists.
        let documented = default.lines().filter_map(|l| {
            let l = l.strip_prefix('#')?.trim_start();
            if l.starts_with("--") {
                l.split_whitespace().next()
            } else {
                l.strip_prefix("Example: XVSD_ARGS=")
            }
        });
        let mut seen = 0;
        for words in documented.chain([exec.as_str()]) {
            for word in words.split_whitespace() {
                let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-');
                if let Some(opt) = word.strip_prefix("--") {
                    assert!(longs.contains(&opt), "--{opt} is no xvsd option");
                    seen += 1;
                }
            }
        }
        assert!(seen >= 8, "{seen} options checked");
    }

    #[test]
    fn the_shipped_config_and_its_example_parse() {
        let text = std::fs::read_to_string(workspace().join("deploy/xvsd.conf")).unwrap();
        let cmds = xvs_ctl::parse_restore(&text).unwrap();
        assert!(cmds.is_empty(), "the default configuration is empty");
        let example: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# -"))
            .map(|l| format!("-{l}\n"))
            .collect();
        let cmds = xvs_ctl::parse_restore(&example).unwrap();
        assert_eq!(cmds.len(), 6, "{example}");
    }
}
