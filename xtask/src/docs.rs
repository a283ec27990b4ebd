//! Every command shown in the documentation is checked against the code
//! (a test, `cargo test -p xtask`): the `sh` blocks of README.md, docs/
//! and deploy/ are scanned, each command line (continuations joined,
//! prompts, leading `VAR=value` settings and `sudo` removed) is classified,
//! and each class is checked:
//!
//! - `xvsadm ...`: parsed by xvsadm's grammar (at least 20 of them);
//! - `xvsd ...`: parsed by xvsd's clap command (a synopsis's `[...]`
//!   groups are read as given, a `...` is dropped, and the
//!   `--socket-group` name becomes `root`, a group every machine has);
//! - `cargo xtask ...`: parsed by this program's own command line;
//! - `cargo bench|test|build|run -p P [--bench|--test|--bin T]`: the
//!   package is a workspace member and the target exists;
//! - `cargo fuzz run ... TARGET`: the fuzz target exists;
//! - `scripts/...`: the script exists and is executable;
//! - anything else: its program must be in [`EXTERNAL`], the list of the
//!   operator's own tools the docs show (iproute2, sysctl, systemd...),
//!   each with the test or script that runs its equivalent. A command of a
//!   program not listed fails the test, so an example nobody checks cannot
//!   slip in.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use clap::Parser;

    /// Programs the docs show that the project does not implement: the
    /// operator's tools. Where the lab or a script runs the same commands,
    /// it is named.
    const EXTERNAL: &[(&str, &str)] = &[
        (
            "ip",
            "xvs-lab's topology and netns modules run ip(8) for every host",
        ),
        (
            "sysctl",
            "the lab sets the same sysctls (Netns::sysctl); deploy/realserver-*.sh",
        ),
        (
            "ethtool",
            "the lab (tx checksum off, GRO, channels) and the benches",
        ),
        (
            "systemctl",
            "scripts/systemd-check.sh (start, stop, restart in a container)",
        ),
        (
            "journalctl",
            "scripts/systemd-check.sh reads the unit's log",
        ),
        (
            "keepalived",
            "ha_e2e runs keepalived -f deploy/keepalived/keepalived.conf",
        ),
        (
            "install",
            "coreutils; the package's files, checked by cargo xtask check-deb",
        ),
        (
            "dpkg",
            "scripts/systemd-check.sh installs the package with dpkg -i",
        ),
        ("editor", "a placeholder for the operator's editor"),
        (
            "echo",
            "writes to /proc or /sys (IRQ affinity: a NIC's, not on veth)",
        ),
        ("head", "coreutils (a sync key from /dev/urandom)"),
        ("ls", "coreutils"),
        ("grep", "coreutils"),
        ("ss", "iproute2 (socket buffers)"),
        ("export", "the shell"),
        ("apt-get", "scripts/test.sh installs its packages with it"),
    ];

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// `(file:line, words)` of every command in a `sh` block.
    fn documented() -> Vec<(String, Vec<String>)> {
        let mut files = vec![repo().join("README.md")];
        for dir in ["docs", "deploy"] {
            for e in std::fs::read_dir(repo().join(dir)).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "md") {
                    files.push(p);
                }
            }
        }
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let name = f.strip_prefix(repo()).unwrap_or(&f).display().to_string();
            let mut in_sh = false;
            let mut pending: Option<(usize, String)> = None;
            for (i, line) in text.lines().enumerate() {
                let t = line.trim();
                if t.starts_with("```") {
                    in_sh = !in_sh && matches!(t, "```sh" | "```bash" | "```shell");
                    continue;
                }
                if !in_sh || (pending.is_none() && (t.is_empty() || t.starts_with('#'))) {
                    continue;
                }
                let (start, mut cmd) = match pending.take() {
                    Some((start, acc)) => (start, acc + " " + t),
                    None => (i + 1, t.to_owned()),
                };
                if cmd.ends_with('\\') {
                    cmd.pop();
                    pending = Some((start, cmd));
                    continue;
                }
                let cmd = cmd.strip_prefix("$ ").unwrap_or(&cmd);
                let mut words = xvs_ctl::restore::split_words(cmd)
                    .unwrap_or_else(|e| panic!("{name}:{start}: {cmd}: {e}"));
                // A comment, a redirection or a pipe ends the command.
                if let Some(end) = words.iter().position(|w| {
                    w.starts_with('#') || matches!(w.as_str(), ">" | "<" | "|" | "&&" | ";")
                }) {
                    words.truncate(end);
                }
                // Settings and sudo in front.
                while words
                    .first()
                    .is_some_and(|w| w == "sudo" || (w.contains('=') && !w.starts_with('-')))
                {
                    words.remove(0);
                }
                if !words.is_empty() {
                    out.push((format!("{name}:{start}"), words));
                }
            }
        }
        out
    }

    /// Workspace members by package name, with their directory.
    fn packages() -> Vec<(String, PathBuf)> {
        let root = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
        let members = root
            .split("members = [")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .unwrap();
        members
            .split(',')
            .map(|m| m.trim().trim_matches('"'))
            .filter(|m| !m.is_empty())
            .map(|m| {
                let dir = repo().join(m);
                let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
                let name = manifest
                    .lines()
                    .find_map(|l| l.strip_prefix("name = "))
                    .map(|n| n.trim_matches('"').to_owned())
                    .unwrap();
                (name, dir)
            })
            .collect()
    }

    /// The value after `flag` in `words`.
    fn arg<'a>(words: &'a [String], flag: &str) -> Option<&'a str> {
        words
            .iter()
            .position(|w| w == flag)
            .and_then(|i| words.get(i + 1))
            .map(String::as_str)
    }

    /// Checks one `cargo` command; `Err` says what is wrong.
    fn check_cargo(words: &[String]) -> Result<(), String> {
        let sub = words.get(1).map(String::as_str).unwrap_or_default();
        match sub {
            "xtask" => {
                let argv =
                    std::iter::once("cargo xtask").chain(words[2..].iter().map(String::as_str));
                crate::Cli::try_parse_from(argv)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            "fuzz" => {
                if words.get(2).map(String::as_str) != Some("run") {
                    return Ok(());
                }
                // The target is the first word after `run` that is neither
                // an option nor an option's value.
                let mut rest = words[3..].iter();
                let mut target = None;
                while let Some(w) = rest.next() {
                    if matches!(w.as_str(), "--fuzz-dir" | "--sanitizer" | "-j" | "--jobs") {
                        rest.next();
                    } else if !w.starts_with('-') {
                        target = Some(w.as_str());
                        break;
                    }
                }
                let target = target.ok_or("cargo fuzz run without a target")?;
                let p = repo()
                    .join("fuzz/fuzz_targets")
                    .join(format!("{target}.rs"));
                p.is_file()
                    .then_some(())
                    .ok_or(format!("no fuzz target {target}"))
            }
            "bench" | "test" | "build" | "run" | "clippy" | "fmt" => {
                let Some(pkg) = arg(words, "-p").or_else(|| arg(words, "--package")) else {
                    return Ok(());
                };
                let pkgs = packages();
                let (_, dir) = pkgs
                    .iter()
                    .find(|(n, _)| n == pkg)
                    .ok_or(format!("no workspace package {pkg}"))?;
                for (flag, sub) in [("--bench", "benches"), ("--test", "tests")] {
                    if let Some(t) = arg(words, flag) {
                        let file = dir.join(sub).join(format!("{t}.rs"));
                        if !file.is_file() {
                            return Err(format!("{pkg} has no {flag} {t} ({})", file.display()));
                        }
                    }
                }
                if let Some(b) = arg(words, "--bin") {
                    let file = dir.join("src/bin").join(format!("{b}.rs"));
                    let named = std::fs::read_to_string(dir.join("Cargo.toml"))
                        .unwrap_or_default()
                        .contains(&format!("name = \"{b}\""));
                    if !file.is_file() && !named {
                        return Err(format!("{pkg} has no binary {b}"));
                    }
                }
                Ok(())
            }
            other => Err(format!("cargo {other}: not a checked cargo command")),
        }
    }

    #[test]
    fn every_documented_command_is_checked_against_the_code() {
        let cmds = documented();
        assert!(cmds.len() >= 60, "found only {} commands", cmds.len());
        let mut bad = Vec::new();
        let mut checked = 0;
        for (at, words) in &cmds {
            let program = words[0].as_str();
            let verdict = match program {
                "xvsadm" => xvs_ctl::parse_args(&words[1..])
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                "xvsd" => {
                    // A synopsis: `[--iface eth1]` shows an optional part,
                    // `...` more options. A group name resolves on the
                    // machine, which need not have the example's group.
                    let mut argv: Vec<String> = words
                        .iter()
                        .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_owned())
                        .filter(|w| !w.is_empty() && w != "...")
                        .collect();
                    if let Some(i) = argv.iter().position(|w| w == "--socket-group") {
                        if let Some(g) = argv.get_mut(i + 1) {
                            "root".clone_into(g);
                        }
                    }
                    xvs_dataplane::cli::command()
                        .try_get_matches_from(&argv)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                "cargo" => check_cargo(words),
                p if p.starts_with("scripts/") => {
                    let path = repo().join(p);
                    match std::fs::metadata(&path) {
                        Ok(m) => {
                            use std::os::unix::fs::PermissionsExt;
                            (m.permissions().mode() & 0o111 != 0)
                                .then_some(())
                                .ok_or(format!("{p} is not executable"))
                        }
                        Err(e) => Err(format!("{p}: {e}")),
                    }
                }
                p => {
                    if EXTERNAL.iter().any(|(name, _)| *name == p) {
                        continue;
                    }
                    Err(format!(
                        "program {p:?} is neither the project's nor listed in EXTERNAL"
                    ))
                }
            };
            checked += 1;
            if let Err(e) = verdict {
                bad.push(format!("{at}: {}: {e}", words.join(" ")));
            }
        }
        assert!(checked >= 40, "only {checked} commands were checked");
        let xvsadm = cmds.iter().filter(|(_, w)| w[0] == "xvsadm").count();
        assert!(xvsadm >= 20, "found only {xvsadm} xvsadm commands");
        assert!(
            bad.is_empty(),
            "documented commands that do not match the code:\n{}",
            bad.join("\n")
        );
    }
}
