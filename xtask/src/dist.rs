//! Man pages and shell completions from the binaries' clap commands.
//!
//! The options sections come from clap (`clap_mangen`), so they list
//! exactly what the programs accept, with the same help text; the prose
//! around them (what the program is, its files, environment, signals and
//! exit status) is written here, in the sections a section-8 page has.

use std::path::{Path, PathBuf};

use clap_complete::Shell;
use roff::{Roff, bold, italic, roman};

use crate::Result;

/// Writes `man/xvsd.8`, `man/xvsadm.8` and
/// `completions/{bash,zsh,fish}/...` under `out`; returns the files.
pub fn write(out: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let man = out.join("man");
    mkdir(&man)?;
    for (name, page) in [("xvsd", xvsd_page()), ("xvsadm", xvsadm_page())] {
        let path = man.join(format!("{name}.8"));
        std::fs::write(&path, page).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push(path);
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let dir = out.join("completions").join(shell.to_string());
        mkdir(&dir)?;
        for name in ["xvsd", "xvsadm"] {
            let path = dir.join(completion_file(shell, name));
            std::fs::write(&path, completion(shell, name))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            files.push(path);
        }
    }
    Ok(files)
}

fn mkdir(dir: &Path) -> Result {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// The file name each shell looks up for a command's completion (the
/// names of Debian's completion directories: bash-completion loads
/// `completions/NAME`, zsh `_NAME`, fish `NAME.fish`).
pub fn completion_file(shell: Shell, name: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.to_owned(),
    }
}

/// The completion script of `name` (`xvsd` or `xvsadm`) for `shell`.
pub fn completion(shell: Shell, name: &str) -> Vec<u8> {
    let mut cmd = command(name);
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    buf
}

/// The clap command of `name`, as the binary parses it.
fn command(name: &str) -> clap::Command {
    match name {
        "xvsd" => xvs_dataplane::cli::command(),
        "xvsadm" => xvs_ctl::grammar::xvsadm_command(),
        _ => unreachable!("no program {name}"),
    }
}

/// The source line of the pages (`.TH`'s fourth field).
fn source() -> String {
    format!("xvs {}", env!("CARGO_PKG_VERSION"))
}

/// The pages' date (`.TH`'s third field; an empty one would shift the
/// fields): `SOURCE_DATE_EPOCH`'s day when set (reproducible builds), else
/// the last commit's, else today's.
fn date() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let tries: [Vec<String>; 3] = [
        match &epoch {
            Some(e) => vec!["date".into(), "-u".into(), format!("-d@{e}"), "+%F".into()],
            None => vec![],
        },
        [
            "git",
            "-C",
            &crate::workspace().display().to_string(),
            "log",
            "-1",
            "--format=%cs",
        ]
        .map(String::from)
        .to_vec(),
        ["date", "-u", "+%F"].map(String::from).to_vec(),
    ];
    tries
        .iter()
        .filter(|argv| !argv.is_empty())
        .find_map(|argv| {
            let out = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .output()
                .ok()?;
            let day = String::from_utf8(out.stdout).ok()?.trim().to_owned();
            (out.status.success() && day.len() == 10).then_some(day)
        })
        .unwrap_or_else(|| "1970-01-01".into())
}

/// clap's page (title, name, synopsis, description, options, version)
/// with `extra` appended.
fn page(cmd: clap::Command, description: &str, extra: &Roff) -> String {
    let cmd = cmd
        .long_about(description.to_owned())
        // After-help text goes in a section of our own, not clap_mangen's
        // "EXTRA".
        .after_help(clap::builder::Resettable::<clap::builder::StyledStr>::Reset)
        .after_long_help(clap::builder::Resettable::<clap::builder::StyledStr>::Reset);
    let man = clap_mangen::Man::new(cmd)
        .section("8")
        .date(date())
        .source(source())
        .manual("System Manager's Manual");
    let mut buf = Vec::new();
    man.render(&mut buf).expect("rendering to memory");
    let mut text = String::from_utf8(buf).expect("roff is UTF-8");
    // Our sections without a second copy of roff's preamble.
    let preamble = Roff::new().render();
    let ours = extra.render();
    text.push_str(ours.strip_prefix(&preamble).unwrap_or(&ours));
    text
}

/// A section heading.
fn section(r: &mut Roff, name: &str) {
    r.control("SH", [name]);
}

/// A tagged paragraph: `tag` in bold, then `text`.
fn item(r: &mut Roff, tag: &str, text: &str) {
    r.control("TP", []).text([bold(tag)]).text([roman(text)]);
}

/// Paragraphs separated by blank lines.
fn para(r: &mut Roff, text: &str) {
    for (i, p) in text.split("\n\n").enumerate() {
        if i > 0 {
            r.control("PP", []);
        }
        r.text([roman(p.replace('\n', " "))]);
    }
}

/// Literal lines (examples), not filled.
fn example(r: &mut Roff, lines: &[&str]) {
    r.control("PP", []).control("nf", []).control("RS", ["4"]);
    for l in lines {
        r.text([roman(*l)]);
    }
    r.control("RE", []).control("fi", []);
}

fn see_also(r: &mut Roff, pages: &[(&str, &str)]) {
    section(r, "SEE ALSO");
    let mut line = Vec::new();
    for (i, (name, sec)) in pages.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(*name));
        line.push(roman(format!("({sec})")));
    }
    line.push(roman("; the operations guide, "));
    line.push(italic("/usr/share/doc/xvs/operations.md"));
    line.push(roman("."));
    r.text(line);
}

const XVSD_DESCRIPTION: &str = "\
xvsd is the xvs director: a layer-4 load balancer in the manner of Linux \
IPVS (LVS), forwarding in user space on AF_XDP sockets. It attaches an XDP \
program to every --iface that steers the traffic of the configured virtual \
services (and NAT replies from their real servers) to one worker thread per \
receive queue; everything else (ARP, neighbour discovery, SSH, routing \
protocols) stays with the kernel. Workers forward by direct routing, NAT or \
IP-in-IP tunnelling, with the IPVS schedulers, connection table and \
timeouts.

xvsd is configured at start from --config (ipvsadm-restore syntax, as \
written by xvsadm -S) and at run time by xvsadm(8), which speaks the \
ipvsadm(8) command language over the control socket. It checks its real \
servers itself (TCP, HTTP, UDP, MISC checks) and syncs its connections to \
backup directors.

xvsd runs in the foreground and logs to standard error: under systemd, \
to the journal (journalctl -u xvsd).";

fn xvsd_page() -> String {
    let mut r = Roff::new();
    section(&mut r, "PRIVILEGES");
    para(
        &mut r,
        "xvsd needs the capabilities CAP_NET_ADMIN (XDP attachment, the \
         socket map, neighbour requests), CAP_NET_RAW (AF_XDP sockets), \
         CAP_BPF (BPF maps and program) and CAP_PERFMON (the BPF verifier \
         refuses the steering program's packet pointer arithmetic without \
         it), plus CAP_CHOWN for --socket-group; not CAP_SYS_ADMIN. The \
         AF_XDP packet buffers are locked memory: about 9 MB per worker and \
         interface at --ring-size 2048, charged to RLIMIT_MEMLOCK unless \
         xvsd holds CAP_IPC_LOCK (the packaged unit sets \
         LimitMEMLOCK=infinity).",
    );
    section(&mut r, "SIGNALS");
    item(
        &mut r,
        "SIGTERM, SIGINT",
        "Stop cleanly: the workers are joined, the XDP program is detached \
         from every interface, the control socket is removed.",
    );
    section(&mut r, "ENVIRONMENT");
    item(
        &mut r,
        "XVS_SOCKET",
        "The control socket, when --socket is not given.",
    );
    item(
        &mut r,
        "NOTIFY_SOCKET",
        "Set by systemd for Type=notify services: xvsd sends READY=1 once it \
         serves (the control socket answers, the XDP program is attached, the \
         workers run) and STOPPING=1 when asked to stop.",
    );
    section(&mut r, "EXIT STATUS");
    item(&mut r, "0", "Stopped by a signal, cleanly.");
    item(
        &mut r,
        "1",
        "Setting up failed: an interface, the XDP program, a socket (another \
         xvsd on the control socket). Starting again may succeed.",
    );
    item(
        &mut r,
        "2",
        "The command line, an option or the configuration file is wrong (the \
         message names the line). Starting again cannot succeed; the packaged \
         unit does not restart on it.",
    );
    section(&mut r, "FILES");
    item(
        &mut r,
        "/etc/xvs/xvsd.conf",
        "The configuration the packaged unit loads at start (--config): \
         virtual services and real servers, one xvsadm command per line.",
    );
    item(
        &mut r,
        "/etc/default/xvsd",
        "XVSD_ARGS, the interfaces and options the packaged unit starts xvsd \
         with.",
    );
    item(
        &mut r,
        "/run/xvs/xvsd.sock",
        "The control socket (mode 0660, root and --socket-group).",
    );
    item(
        &mut r,
        "/usr/share/xvs/",
        "Real-server scripts (DR, NAT, TUN), keepalived and BIRD examples, \
         the keepalived notify script.",
    );
    section(&mut r, "EXAMPLES");
    example(
        &mut r,
        &[
            "xvsd --iface eth0 --cores 2-5 --config /etc/xvs/xvsd.conf",
            "xvsd --iface eth0 --iface eth1 --socket-group xvsadm    # NAT: outside, inside",
            "systemctl enable --now xvsd    # with XVSD_ARGS in /etc/default/xvsd",
        ],
    );
    see_also(
        &mut r,
        &[
            ("xvsadm", "8"),
            ("ipvsadm", "8"),
            ("keepalived", "8"),
            ("systemd.exec", "5"),
        ],
    );
    page(command("xvsd"), XVSD_DESCRIPTION, &r)
}

const XVSADM_DESCRIPTION: &str = "\
xvsadm sets up, maintains and lists the virtual server table of the xvs \
director xvsd(8) in the command language of ipvsadm(8): the same commands \
and options, the same defaults (scheduler wlc, direct routing, weight 1), \
the same listings byte for byte. It talks to xvsd over its control socket.

Every change is atomic: a -R batch applies whole or not at all. Connections \
already established keep their real server whatever changes elsewhere.

The deliberate differences from ipvsadm: the command may come anywhere on \
the line; addresses are numeric (host names are refused, never resolved); \
every refusal exits with status 2; and the xvs extensions below (health \
checks, --dry-run, --json, unicast --sync-peer, --socket). SCTP services, \
one-packet scheduling and persistence engines are refused with a message.";

fn xvsadm_page() -> String {
    let mut r = Roff::new();
    section(&mut r, "ADDRESSES");
    para(
        &mut r,
        "A virtual-service is -t|-u|--sctp-service ADDRESS[:PORT] or -f \
         FWMARK [-6]. An IPv6 address with a port is written [ADDRESS]:PORT. \
         Addresses are numeric. A port is a number or a name from \
         /etc/services. Without any argument, xvsadm lists the table (-L).",
    );
    section(&mut r, "EXIT STATUS");
    item(&mut r, "0", "Success.");
    item(
        &mut r,
        "1",
        "A listing failed (-L -t of a missing service), as with ipvsadm.",
    );
    item(
        &mut r,
        "2",
        "An invalid command line, a command the director refuses (Service \
         already exists, No such service...), or xvsd cannot be reached. The \
         message is one line on standard error.",
    );
    section(&mut r, "ENVIRONMENT");
    item(
        &mut r,
        "XVS_SOCKET",
        "The control socket, when --socket is not given (default \
         /run/xvs/xvsd.sock).",
    );
    section(&mut r, "FILES");
    item(&mut r, "/run/xvs/xvsd.sock", "xvsd's control socket.");
    item(
        &mut r,
        "/etc/xvs/xvsd.conf",
        "The configuration xvsd loads at start under the packaged unit; \
         xvsadm -S -n > /etc/xvs/xvsd.conf saves the running table there.",
    );
    item(&mut r, "/etc/services", "Port names.");
    section(&mut r, "EXAMPLES");
    example(
        &mut r,
        &[
            "xvsadm -A -t 192.0.2.50:80 -s rr",
            "xvsadm -a -t 192.0.2.50:80 -r 192.0.2.20 -g -w 1 --check http:path=/healthz",
            "xvsadm -L -n --stats",
            "xvsadm -e -t 192.0.2.50:80 -r 192.0.2.20 -w 0    # drain",
            "xvsadm -S -n > /etc/xvs/xvsd.conf",
            "xvsadm --start-daemon master --mcast-interface eth0 --syncid 7",
        ],
    );
    see_also(&mut r, &[("xvsd", "8"), ("ipvsadm", "8")]);
    page(command("xvsadm"), XVSADM_DESCRIPTION, &r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_every_option_and_our_sections() {
        for (name, page) in [("xvsd", xvsd_page()), ("xvsadm", xvsadm_page())] {
            assert!(page.starts_with(".ie \\n(.g"), "roff preamble");
            assert_eq!(
                page.matches(".ie \\n(.g").count(),
                1,
                "{name}: one preamble"
            );
            assert!(
                page.contains(&format!(".TH {name} 8 {} \"{}\"", date(), source())),
                "{name}: title"
            );
            for sec in ["NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "FILES"] {
                // roff quotes a heading with a space.
                let heading = if sec.contains(' ') {
                    format!(".SH \"{sec}\"\n")
                } else {
                    format!(".SH {sec}\n")
                };
                assert!(page.contains(&heading), "{name}: {sec}");
            }
            assert!(!page.contains(".SH EXTRA"), "{name}");
            for arg in command(name).get_arguments() {
                if let Some(long) = arg.get_long() {
                    // roff escapes the dashes.
                    let shown = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(page.contains(&shown), "{name}: --{long} missing");
                }
            }
        }
        assert!(xvsadm_page().contains(".SH \"REAL SERVER OPTIONS\""));
        assert!(xvsd_page().contains("NOTIFY_SOCKET"));
    }

    #[test]
    fn completions_name_the_options() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            for (name, opts) in [
                ("xvsd", &["--iface", "--sync-key-file", "--xdp-mode"][..]),
                (
                    "xvsadm",
                    &["--add-service", "--socket", "--check-timing"][..],
                ),
            ] {
                let text = String::from_utf8(completion(shell, name)).unwrap();
                for o in opts {
                    // fish writes `-l add-service`.
                    let bare = o.trim_start_matches('-');
                    assert!(text.contains(bare), "{shell} {name}: {o}");
                }
                assert!(text.contains(name));
            }
        }
        // The names the shells look up.
        assert_eq!(completion_file(Shell::Zsh, "xvsadm"), "_xvsadm");
        assert_eq!(completion_file(Shell::Bash, "xvsadm"), "xvsadm");
    }

    #[test]
    fn writes_the_tree() {
        let dir = std::env::temp_dir().join(format!("xvs-xtask-dist-{}", std::process::id()));
        let files = write(&dir).unwrap();
        assert_eq!(files.len(), 2 + 3 * 2);
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() > 100, "{}", f.display());
        }
        assert!(dir.join("completions/zsh/_xvsd").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
