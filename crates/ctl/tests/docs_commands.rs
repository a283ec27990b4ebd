//! Every `xvsadm` command shown in the documentation is one xvsadm
//! accepts: the `sh` blocks of README.md and docs/*.md are scanned, each
//! `xvsadm ...` line (continuations joined, comments and redirections
//! removed) is parsed with the real grammar. A documented command that
//! drifts from the grammar fails here.

use std::path::{Path, PathBuf};

use xvs_ctl::restore::split_words;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `(file:line, words)` of every documented xvsadm command.
fn documented() -> Vec<(String, Vec<String>)> {
    let mut files = vec![repo().join("README.md")];
    for e in std::fs::read_dir(repo().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut in_sh = false;
        let mut pending: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with("```") {
                in_sh = !in_sh && (t == "```sh" || t == "```bash" || t == "```shell");
                continue;
            }
            if !in_sh {
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
            let cmd = cmd.strip_prefix("$ ").unwrap_or(&cmd).to_owned();
            if !cmd.starts_with("xvsadm ") && cmd != "xvsadm" {
                continue;
            }
            let mut words =
                split_words(&cmd).unwrap_or_else(|e| panic!("{name}:{start}: {cmd}: {e}"));
            // A comment, a redirection or a pipe ends the command.
            if let Some(end) = words
                .iter()
                .position(|w| w.starts_with('#') || w == ">" || w == "<" || w == "|")
            {
                words.truncate(end);
            }
            out.push((format!("{name}:{start}"), words));
        }
    }
    out
}

#[test]
fn every_documented_xvsadm_command_parses() {
    let cmds = documented();
    assert!(cmds.len() >= 20, "found only {} commands", cmds.len());
    let mut bad = Vec::new();
    for (at, words) in &cmds {
        if let Err(e) = xvs_ctl::parse_args(&words[1..]) {
            bad.push(format!("{at}: {}: {e}", words.join(" ")));
        }
    }
    assert!(
        bad.is_empty(),
        "documented commands xvsadm refuses:\n{}",
        bad.join("\n")
    );
}
