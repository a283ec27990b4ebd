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
//! | `pipeline` | `pipeline` (criterion) | ns per packet by case, from `TARGET/criterion/*/new/estimates.json`, and the `scaling` table (the same bench's `scaling_dr` group) |
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
        let fragments = match *part {
            "memory" => vec![(*part, memory(quick)?)],
            "pipeline" => pipeline(quick)?,
            "veth" => vec![(*part, veth(&out, quick)?)],
            _ => vec![(*part, http(&out, quick)?)],
        };
        for (name, fragment) in fragments {
            text = splice(&text, name, &fragment)?;
        }
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

/// The pipeline's table and, from the same run, the scaling table.
fn pipeline(quick: bool) -> Result<Vec<(&'static str, String)>> {
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
    let mut chart = Vec::new();
    for (id, label, goal) in PIPELINE {
        let (batch, per) = criterion_estimate(&dir, id)?;
        chart.push((
            label.split(" (").next().unwrap_or(label).to_owned(),
            per,
            true,
        ));
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
    write_chart(
        "pipeline-ns.svg",
        &bar_chart(
            "Pipeline, ns per packet, one core (criterion medians)",
            "ns",
            &chart,
        ),
    )?;
    t.push_str("\n![ns per packet](pipeline-ns.svg)\n");
    let mut sc = format!(
        "Run of {}, same run as the pipeline table:\n\n\
         | threads (cores) | ns per batch of 64, per thread | ns per packet, per thread | \
         aggregate Mpps | vs 1 core |\n|---:|---:|---:|---:|---:|\n",
        today()
    );
    let mut one = None;
    let mut chart = Vec::new();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for n in 1..=cores.min(4) {
        let Ok((batch, _)) = criterion_estimate(&dir, &format!("scaling_dr/{n}_cores")) else {
            break;
        };
        let mpps = (64 * n) as f64 * 1e3 / batch;
        let base = *one.get_or_insert(mpps);
        chart.push((
            format!("{n} core{}", if n > 1 { "s" } else { "" }),
            mpps,
            true,
        ));
        sc.push_str(&format!(
            "| {n} | {batch:.0} | {:.1} | {mpps:.1} | {:.2} |\n",
            batch / 64.0,
            mpps / base
        ));
    }
    write_chart(
        "scaling.svg",
        &bar_chart(
            "Established DR, aggregate Mpps, shared table",
            "Mpps",
            &chart,
        ),
    )?;
    sc.push_str("\n![scaling](scaling.svg)\n");
    Ok(vec![("pipeline", t), ("scaling", sc)])
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
    let mut text = read_fragment(&md, "http_e2e", &log)?;
    let chart = http_rates(&text);
    if !chart.is_empty() {
        write_chart(
            "http-e2e.svg",
            &bar_chart(
                "HTTP requests per second (median), same cores",
                "k req/s",
                &chart,
            ),
        )?;
        text.push_str("\n![requests per second](http-e2e.svg)\n");
    }
    Ok(text)
}

/// `(variant: contender, k req/s, is xvsd)` from the http bench's tables.
fn http_rates(md: &str) -> Vec<(String, f64, bool)> {
    let mut variant = "";
    let mut out = Vec::new();
    for line in md.lines() {
        if let Some((v, _)) = line.split_once(" (wrk ") {
            variant = if v.starts_with("keep") {
                "keep-alive"
            } else {
                "close"
            };
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | contender | req/s | min - max | p50 | p99 | errors | vs direct |
        if cells.len() == 9 && cells[3].contains(" - ") {
            let rate = cells[2];
            let v = rate
                .strip_suffix('k')
                .and_then(|k| k.parse::<f64>().ok())
                .or_else(|| rate.parse::<f64>().ok().map(|r| r / 1e3));
            if let Some(v) = v {
                let who = cells[1].split(" (").next().unwrap_or(cells[1]);
                out.push((format!("{variant}: {who}"), v, who.starts_with("xvsd")));
            }
        }
    }
    out
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

/// A horizontal bar chart (plain SVG): one bar per `(label, value, xvs)`,
/// the value printed with `unit` after the bar; xvs's bars in orange, the
/// others' in blue.
pub fn bar_chart(title: &str, unit: &str, rows: &[(String, f64, bool)]) -> String {
    const W: f64 = 680.0;
    const LABEL: f64 = 260.0;
    const BAR_H: f64 = 22.0;
    const GAP: f64 = 10.0;
    const TOP: f64 = 34.0;
    let max = rows.iter().map(|r| r.1).fold(f64::MIN_POSITIVE, f64::max);
    let scale = (W - LABEL - 90.0) / max;
    let h = TOP + rows.len() as f64 * (BAR_H + GAP) + 8.0;
    let esc = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;");
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"8\" y=\"20\" font-size=\"14\">{}</text>\n",
        esc(title)
    );
    for (i, (label, v, ours)) in rows.iter().enumerate() {
        let y = TOP + i as f64 * (BAR_H + GAP);
        let color = if *ours { "#d9822b" } else { "#4a7ab5" };
        s.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\n\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{w:.1}\" height=\"{BAR_H}\" fill=\"{color}\"/>\n\
             <text x=\"{tx:.1}\" y=\"{ty}\">{v:.1} {unit}</text>\n",
            lx = LABEL - 8.0,
            ty = y + BAR_H / 2.0 + 4.0,
            label = esc(label),
            w = v * scale,
            tx = LABEL + v * scale + 6.0,
            unit = esc(unit),
        ));
    }
    s.push_str("</svg>\n");
    s
}

/// Writes `svg` to `docs/NAME`.
fn write_chart(name: &str, svg: &str) -> Result {
    let p = workspace().join("docs").join(name);
    std::fs::write(&p, svg).map_err(|e| format!("{}: {e}", p.display()))
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
    use super::{bar_chart, http_rates, splice};

    #[test]
    fn http_rates_read_the_benchs_table() {
        let md = "keep-alive (wrk -t2 -c64, 5 s, median of 5):\n\n\
                  | contender | req/s | min - max | p50 | p99 | errors | vs direct |\n\
                  |---|---:|---:|---:|---:|---:|---:|\n\
                  | direct (no director) | 50.6k | 49.0k - 52.3k | 0.92 ms | 1.88 ms | 0 | 1.00 |\n\
                  Connection: close (wrk -t2 -c64, 5 s, median of 5):\n\
                  | HAProxy (mode tcp, roundrobin) | 8178 | 7849 - 8258 | 6.95 ms | 13.13 ms | 0 | 0.39 |\n\
                  | contender | director CPU per request | x | y | z | a | b |\n";
        assert_eq!(
            http_rates(md),
            vec![
                ("keep-alive: direct".to_owned(), 50.6, false),
                ("close: HAProxy".to_owned(), 8.178, false)
            ]
        );
        let svg = bar_chart("t <&>", "k", &http_rates(md));
        assert!(
            svg.starts_with("<svg") && svg.contains("t &lt;&amp;>") && svg.ends_with("</svg>\n")
        );
        assert_eq!(svg.matches("<rect x=").count(), 2);
    }

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
