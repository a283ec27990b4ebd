//! `cargo xtask perf-report`: runs the benchmarks and rewrites the measured
//! parts of `docs/performance.md` in place.
//!
//! The report marks each regenerated part with a pair of comments,
//! `<!-- perf-report:NAME -->` and `<!-- /perf-report:NAME -->`; what lies
//! between is replaced, the prose around it is not (read the new figures
//! and check that the prose still says what they show). Parts:
//!
//! | part | bench | what is written |
//! |---|---|---|
//! | `memory` | `conntrack` (its first, untimed step) | bytes per connection at 8M NAT entries |
//! | `pipeline` | `pipeline` (criterion) | ns per packet by case, from `TARGET/criterion/*/new/estimates.json` |
//! | `veth` | `veth_pps` (root) | the packet-rate table; the chart `docs/veth-pps.svg` |
//! | `http` | `http_e2e` (root, wrk, nginx, haproxy) | the request-rate and CPU tables |
//!
//! `xvsd` is built in release first (the end-to-end benches run that
//! binary). Settings of the benches (rounds, windows, cores) come from the
//! environment as usual; `--quick` sets short ones, to check the command,
//! not to publish.

use std::path::Path;
use std::process::Command;

use crate::{Result, cargo, output, run, target_dir, workspace};

/// The parts, in the order they run.
pub const PARTS: [&str; 4] = ["memory", "pipeline", "veth", "http"];

/// Runs the benches of `parts` and splices their results into the report.
pub fn regenerate(parts: &[String], quick: bool) -> Result {
    for p in parts {
        if !PARTS.contains(&p.as_str()) {
            return Err(format!("unknown part {p:?} ({})", PARTS.join(", ")));
        }
    }
    let report = workspace().join("docs/performance.md");
    let mut text =
        std::fs::read_to_string(&report).map_err(|e| format!("{}: {e}", report.display()))?;
    let out = target_dir().join("perf");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    run(Command::new(cargo())
        .args(["build", "--release", "-p", "xvs-dataplane", "--bin", "xvsd"])
        .current_dir(workspace()))?;
    for part in PARTS.iter().filter(|p| parts.iter().any(|q| q == *p)) {
        eprintln!("xtask: perf-report: {part}");
        let fragment = match *part {
            "memory" => memory(quick)?,
            "pipeline" => pipeline(quick)?,
            "veth" => veth(&out, quick)?,
            _ => http(&out, quick)?,
        };
        text = splice(&text, part, &fragment)?;
        // Written after every part: a later part failing keeps the earlier.
        std::fs::write(&report, &text).map_err(|e| format!("{}: {e}", report.display()))?;
    }
    eprintln!("xtask: perf-report: {} rewritten", report.display());
    Ok(())
}

/// `cargo bench -p xvs-benches --bench NAME [-- ARGS]` with `env`.
fn bench(name: &str, args: &[&str], env: &[(&str, String)]) -> Result<String> {
    let mut cmd = Command::new(cargo());
    cmd.args(["bench", "-p", "xvs-benches", "--bench", name])
        .current_dir(workspace());
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(&mut cmd)
}

fn memory(quick: bool) -> Result<String> {
    // Only the memory step matters here: a filter no timed bench matches.
    let mut args = vec!["conntrack/memory-only"];
    if quick {
        args.push("--quick");
    }
    let out = bench("conntrack", &args, &[])?;
    let line = out
        .lines()
        .find(|l| l.starts_with("conntrack/memory/8M:"))
        .ok_or("the conntrack bench printed no memory line")?;
    let field = |key: &str| -> Result<f64> {
        let rest = &line[line.find(key).ok_or(format!("no {key:?} in {line:?}"))? + key.len()..];
        rest.split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("bad {key:?} in {line:?}"))
    };
    let rss = field("RSS delta ")?;
    let table = field("table accounting ")?;
    let verdict = if rss <= 136.0 { "met" } else { "NOT met" };
    Ok(format!(
        "Run of {}: `cargo bench -p xvs-benches --bench conntrack` (its first, untimed step).\n\n\
         | measure | bytes per connection |\n|---|---|\n\
         | RSS delta of the process over the entries | **{rss:.1}** |\n\
         | table's own accounting (slab chunks + bucket arrays + wheels) | {table:.1} |\n\n\
         Goal: at most 136 bytes per connection at 8M connections: {verdict}.\n",
        today()
    ))
}

/// The pipeline's cases: (criterion id, label, goal in ns per packet).
const PIPELINE: [(&str, &str, Option<f64>); 7] = [
    ("established/dr", "established DR", Some(40.0)),
    (
        "established/nat_in",
        "established NAT, client -> server",
        Some(60.0),
    ),
    (
        "established/nat_out",
        "established NAT, server -> client",
        None,
    ),
    ("established/tun", "established TUN (4in4)", None),
    (
        "new_conn/dr_rr",
        "new connection, DR, rr (SYN: schedule, insert, rewrite)",
        Some(150.0),
    ),
    (
        "established/dr_sync",
        "established DR, sync master on",
        None,
    ),
    (
        "new_conn/dr_rr_sync",
        "new connection, sync master on",
        None,
    ),
];

fn pipeline(quick: bool) -> Result<String> {
    let args: &[&str] = if quick { &["--quick"] } else { &[] };
    bench("pipeline", args, &[])?;
    let dir = target_dir().join("criterion");
    let mut t = format!(
        "Run of {}, load average {} at the end:\n\n\
         | case | ns per batch of 64 | ns per packet | goal | Mpps, one core |\n\
         |---|---:|---:|---:|---:|\n",
        today(),
        loadavg()
    );
    for (id, label, goal) in PIPELINE {
        let (batch, per) = criterion_estimate(&dir, id)?;
        let goal = match goal {
            Some(g) if per <= g => format!("{g:.0} (met)"),
            Some(g) => format!("{g:.0} (NOT met)"),
            None => String::new(),
        };
        t.push_str(&format!(
            "| {label} | {batch:.0} | {per:.1} | {goal} | {:.1} |\n",
            1e3 / per
        ));
    }
    Ok(t)
}

/// Criterion's median for `id` (`group/function`): (ns per iteration, ns
/// per element of its throughput).
fn criterion_estimate(dir: &Path, id: &str) -> Result<(f64, f64)> {
    let read = |file: &str| -> Result<serde_json::Value> {
        let p = dir.join(id).join("new").join(file);
        let s = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&s).map_err(|e| format!("{}: {e}", p.display()))
    };
    let est = read("estimates.json")?;
    let ns = est["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{id}: no median in estimates.json"))?;
    let bench = read("benchmark.json")?;
    let elements = bench["throughput"]["Elements"].as_f64().unwrap_or(1.0);
    Ok((ns, ns / elements.max(1.0)))
}

fn veth(out: &Path, quick: bool) -> Result<String> {
    let md = out.join("veth_pps.md");
    let mut env = vec![
        ("VETH_PPS_MD", md.display().to_string()),
        (
            "VETH_PPS_SVG",
            workspace().join("docs/veth-pps.svg").display().to_string(),
        ),
    ];
    if quick {
        env.push(("VETH_PPS_RUNS", "1".into()));
        env.push(("VETH_PPS_SECS", "1".into()));
    }
    // A table left by an earlier run must not pass for this one's.
    let _ = std::fs::remove_file(&md);
    let log = bench("veth_pps", &[], &env)?;
    read_fragment(&md, "veth_pps", &log)
}

fn http(out: &Path, quick: bool) -> Result<String> {
    let md = out.join("http_e2e.md");
    let mut env = vec![("HTTP_E2E_MD", md.display().to_string())];
    if quick {
        env.push(("HTTP_E2E_RUNS", "1".into()));
        env.push(("HTTP_E2E_SECS", "2".into()));
        env.push(("HTTP_E2E_WARMUP", "0".into()));
    }
    let _ = std::fs::remove_file(&md);
    let log = bench("http_e2e", &[], &env)?;
    read_fragment(&md, "http_e2e", &log)
}

/// The table a bench wrote, or its output as the reason it wrote none (a
/// bench without root or its tools says why and exits 0).
fn read_fragment(path: &Path, name: &str, log: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|_| {
        format!(
            "{name} wrote no table ({}); its output:\n{log}",
            path.display()
        )
    })
}

/// `text` with what lies between the markers of `part` replaced by
/// `fragment`.
pub fn splice(text: &str, part: &str, fragment: &str) -> Result<String> {
    let open = format!("<!-- perf-report:{part} -->");
    let close = format!("<!-- /perf-report:{part} -->");
    let a = text
        .find(&open)
        .ok_or_else(|| format!("docs/performance.md has no {open}"))?;
    let b = text[a..]
        .find(&close)
        .map(|i| a + i)
        .ok_or_else(|| format!("docs/performance.md has {open} but no {close}"))?;
    let body = fragment.trim_end();
    Ok(format!(
        "{}{open}\n{body}\n{close}{}",
        &text[..a],
        &text[b + close.len()..]
    ))
}

fn today() -> String {
    output(Command::new("date").args(["-u", "+%Y-%m-%d"]))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn splice_replaces_only_between_the_markers() {
        let doc = "a\n<!-- perf-report:veth -->\nold\ntable\n<!-- /perf-report:veth -->\nb\n";
        let new = splice(doc, "veth", "| new |\n").unwrap();
        assert_eq!(
            new,
            "a\n<!-- perf-report:veth -->\n| new |\n<!-- /perf-report:veth -->\nb\n"
        );
        // Idempotent, and other parts are untouched.
        assert_eq!(splice(&new, "veth", "| new |").unwrap(), new);
        assert!(
            splice(doc, "http", "x")
                .unwrap_err()
                .contains("no <!-- perf-report:http")
        );
        let unclosed = "<!-- perf-report:veth -->\nold\n";
        assert!(
            splice(unclosed, "veth", "x")
                .unwrap_err()
                .contains("no <!-- /perf-report")
        );
    }
}
