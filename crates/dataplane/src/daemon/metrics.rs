//! Prometheus metrics (`xvsd --metrics ADDR`): a small HTTP endpoint that
//! answers `GET /metrics` with the text exposition format (version 0.0.4),
//! built on demand from the control state:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `xvs_up` | gauge | |
//! | `xvs_service_connections_total`, `xvs_service_packets_total`, `xvs_service_bytes_total` | counter | `service`, (`direction` = `in`/`out` for packets and bytes) |
//! | `xvs_service_connection_rate`, `xvs_service_packet_rate`, `xvs_service_byte_rate` | gauge | as above (per second, IPVS's estimator) |
//! | `xvs_real_server_connections_total`, `_packets_total`, `_bytes_total` | counter | `service`, `server`, (`direction`) |
//! | `xvs_real_server_active_connections`, `_inactive_connections`, `_persistent_connections`, `_weight` | gauge | `service`, `server` |
//! | `xvs_real_server_up` | gauge | `service`, `server` (1 up, 0 down or removed; only checked servers) |
//! | `xvs_worker_frames_total` | counter | `worker`, `outcome` (`rx`, `tx`, `reply`, `pass`, `drop`) |
//! | `xvs_worker_busy_rounds_total`, `xvs_worker_sleeps_total`, `xvs_worker_tx_ring_full_total` | counter | `worker` |
//! | `xvs_drops_total`, `xvs_passes_total`, `xvs_replies_total` | counter | `reason` (summed over workers) |
//! | `xvs_conntrack_entries`, `xvs_conntrack_capacity` | gauge | |
//! | `xvs_conntrack_created_total`, `xvs_conntrack_expired_total`, `xvs_conntrack_full_total` | counter | |
//! | `xvs_sync_<counter>` | counter | `role` (`master`/`backup`) |
//! | `xvs_xdp_frames_total` | counter | `outcome` (`redirected` to the workers, `passed` to the kernel, `no_socket`: steered but no socket on the queue) |
//!
//! `service` is ipvsadm's key (`TCP 192.0.2.50:80`, `FWM 7`), `server` the
//! real server's `address:port`. The endpoint serves one request at a time,
//! reads at most 8 KiB of request with a 2 s timeout, and holds the control
//! lock only while it builds the text (as an `xvsadm -L` does): a slow or
//! hostile client cannot stall the control loop. It never touches a worker.

use std::fmt::Write as _;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use super::Control;

/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The metrics endpoint's thread.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves until dropped.
    pub fn start(addr: SocketAddr, control: Arc<Mutex<Control>>) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("xvs-metrics".into())
            .spawn(move || {
                while !s.load(Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            if let Err(e) = serve(conn, &control) {
                                if e.kind() != io::ErrorKind::WouldBlock
                                    && e.kind() != io::ErrorKind::TimedOut
                                {
                                    eprintln!("xvsd: metrics: {e}");
                                }
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => {
                            eprintln!("xvsd: metrics: accept: {e}");
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (the port, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request on `conn`.
fn serve(mut conn: TcpStream, control: &Mutex<Control>) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(READ_TIMEOUT))?;
    conn.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST {
            return respond(&mut conn, "431 Request Header Fields Too Large", "");
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => {
            let body = render(&control.lock());
            respond(&mut conn, "200 OK", &body)
        }
        (Some("GET"), Some(_)) => respond(&mut conn, "404 Not Found", "only /metrics\n"),
        _ => respond(&mut conn, "400 Bad Request", "GET /metrics\n"),
    }
}

fn respond(conn: &mut TcpStream, status: &str, body: &str) -> io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// Writes metric families in the text exposition format.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// The whole exposition for the director's current state.
pub fn render(c: &Control) -> String {
    let mut e = Exposition::default();
    e.family("xvs_up", "gauge", "1 while xvsd serves.");
    e.sample("xvs_up", &[], 1);
    if let Ok(state) = c.state(None) {
        services(&mut e, &state);
    }
    workers(&mut e, c);
    let totals = c.counters();
    for (family, help, map) in [
        (
            "xvs_drops_total",
            "Frames dropped, by reason, all workers.",
            &totals.dropped,
        ),
        (
            "xvs_passes_total",
            "Frames not the director's, by reason, all workers.",
            &totals.passed,
        ),
        (
            "xvs_replies_total",
            "ICMP errors sent, by reason, all workers.",
            &totals.replied,
        ),
    ] {
        e.family(family, "counter", help);
        for (reason, v) in map {
            e.sample(family, &[("reason", reason)], v);
        }
    }
    if !totals.xdp.is_empty() {
        e.family(
            "xvs_xdp_frames_total",
            "counter",
            "Frames seen by the steering program, by outcome.",
        );
        for (outcome, v) in &totals.xdp {
            e.sample("xvs_xdp_frames_total", &[("outcome", outcome)], v);
        }
    }
    let t = &totals.conns;
    e.family(
        "xvs_conntrack_entries",
        "gauge",
        "Connections and templates in the table.",
    );
    e.sample("xvs_conntrack_entries", &[], t.entries);
    e.family(
        "xvs_conntrack_pressure",
        "gauge",
        "1 while the table is 7/8 full: half-open connections time out after 10 s.",
    );
    e.sample("xvs_conntrack_pressure", &[], u8::from(c.under_pressure()));
    e.family(
        "xvs_conntrack_capacity",
        "gauge",
        "Most entries the table holds (--max-conns).",
    );
    e.sample("xvs_conntrack_capacity", &[], t.capacity);
    for (name, help, v) in [
        ("xvs_conntrack_created_total", "Entries created.", t.created),
        (
            "xvs_conntrack_expired_total",
            "Entries expired or removed.",
            t.expired,
        ),
        (
            "xvs_conntrack_full_total",
            "Entries refused: table full.",
            t.refused_full,
        ),
    ] {
        e.family(name, "counter", help);
        e.sample(name, &[], v);
    }
    let daemons = c.daemons();
    let mut names: Vec<&String> = daemons.iter().flat_map(|d| d.counters.keys()).collect();
    names.sort();
    names.dedup();
    for n in names {
        let name = format!("xvs_sync_{n}");
        e.family(
            &name,
            "counter",
            "Connection sync daemon counter (docs/sync-protocol.md).",
        );
        for d in &daemons {
            if let Some(v) = d.counters.get(n) {
                e.sample(&name, &[("role", d.opts.state.name())], v);
            }
        }
    }
    e.finish()
}

fn services(e: &mut Exposition, state: &xvs_ctl::state::State) {
    let svc_names: Vec<String> = state
        .services
        .iter()
        .map(|s| {
            s.key
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let counters = [
        ("connections", "Connections scheduled.", None),
        ("packets", "Packets.", Some(true)),
        ("bytes", "Bytes.", Some(false)),
    ];
    for (what, help, kind) in counters {
        let name = format!("xvs_service_{what}_total");
        e.family(&name, "counter", help);
        for (s, id) in state.services.iter().zip(&svc_names) {
            let st = &s.stats;
            match kind {
                None => e.sample(&name, &[("service", id)], st.conns),
                Some(true) => {
                    e.sample(&name, &[("service", id), ("direction", "in")], st.inpkts);
                    e.sample(&name, &[("service", id), ("direction", "out")], st.outpkts);
                }
                Some(false) => {
                    e.sample(&name, &[("service", id), ("direction", "in")], st.inbytes);
                    e.sample(&name, &[("service", id), ("direction", "out")], st.outbytes);
                }
            }
        }
        let name = format!("xvs_real_server_{what}_total");
        e.family(&name, "counter", help);
        for (s, id) in state.services.iter().zip(&svc_names) {
            for d in s.dests.iter().filter(|d| !d.removed) {
                let server = SocketAddr::new(d.opts.addr, d.opts.port).to_string();
                let l = [("service", id.as_str()), ("server", server.as_str())];
                let st = &d.stats;
                match kind {
                    None => e.sample(&name, &l, st.conns),
                    Some(true) => {
                        e.sample(&name, &[l[0], l[1], ("direction", "in")], st.inpkts);
                        e.sample(&name, &[l[0], l[1], ("direction", "out")], st.outpkts);
                    }
                    Some(false) => {
                        e.sample(&name, &[l[0], l[1], ("direction", "in")], st.inbytes);
                        e.sample(&name, &[l[0], l[1], ("direction", "out")], st.outbytes);
                    }
                }
            }
        }
    }
    e.family(
        "xvs_service_connection_rate",
        "gauge",
        "Connections per second.",
    );
    for (s, id) in state.services.iter().zip(&svc_names) {
        e.sample(
            "xvs_service_connection_rate",
            &[("service", id)],
            s.rates.cps,
        );
    }
    e.family("xvs_service_packet_rate", "gauge", "Packets per second.");
    for (s, id) in state.services.iter().zip(&svc_names) {
        e.sample(
            "xvs_service_packet_rate",
            &[("service", id), ("direction", "in")],
            s.rates.inpps,
        );
        e.sample(
            "xvs_service_packet_rate",
            &[("service", id), ("direction", "out")],
            s.rates.outpps,
        );
    }
    e.family("xvs_service_byte_rate", "gauge", "Bytes per second.");
    for (s, id) in state.services.iter().zip(&svc_names) {
        e.sample(
            "xvs_service_byte_rate",
            &[("service", id), ("direction", "in")],
            s.rates.inbps,
        );
        e.sample(
            "xvs_service_byte_rate",
            &[("service", id), ("direction", "out")],
            s.rates.outbps,
        );
    }
    type Gauge = fn(&xvs_ctl::state::Dest) -> i64;
    let gauges: [(&str, &str, Gauge); 4] = [
        (
            "active_connections",
            "Connections in an active state.",
            |d| i64::from(d.active_conns),
        ),
        (
            "inactive_connections",
            "Connections in another state.",
            |d| i64::from(d.inactive_conns),
        ),
        ("persistent_connections", "Persistence templates.", |d| {
            i64::from(d.persistent_conns)
        }),
        (
            "weight",
            "Weight in force (health checks and feedback included).",
            |d| i64::from(d.weight()),
        ),
    ];
    for (what, help, f) in gauges {
        let name = format!("xvs_real_server_{what}");
        e.family(&name, "gauge", help);
        for (s, id) in state.services.iter().zip(&svc_names) {
            for d in s.dests.iter().filter(|d| !d.removed) {
                let server = SocketAddr::new(d.opts.addr, d.opts.port).to_string();
                e.sample(&name, &[("service", id), ("server", &server)], f(d));
            }
        }
    }
    e.family(
        "xvs_real_server_up",
        "gauge",
        "Health check state (1 up, 0 down), checked servers only.",
    );
    for (s, id) in state.services.iter().zip(&svc_names) {
        for d in &s.dests {
            if let Some(h) = &d.health {
                let server = SocketAddr::new(d.opts.addr, d.opts.port).to_string();
                let up = u8::from(h.up && !d.removed);
                e.sample(
                    "xvs_real_server_up",
                    &[("service", id), ("server", &server)],
                    up,
                );
            }
        }
    }
}

fn workers(e: &mut Exposition, c: &Control) {
    let ws = c.workers();
    let io = c.io_stats();
    e.family(
        "xvs_worker_frames_total",
        "counter",
        "Frames by outcome, per worker.",
    );
    for (i, w) in ws.iter().enumerate() {
        let n = i.to_string();
        let sum = |cs: &[crate::pipeline::Counter]| cs.iter().map(|c| c.get()).sum::<u64>();
        for (outcome, v) in [
            ("rx", w.rx.get()),
            ("tx", w.tx.get()),
            ("reply", sum(&w.replies)),
            ("pass", sum(&w.passes)),
            ("drop", sum(&w.drops)),
        ] {
            e.sample(
                "xvs_worker_frames_total",
                &[("worker", &n), ("outcome", outcome)],
                v,
            );
        }
    }
    type Io = fn(&crate::worker::IoStats) -> u64;
    let io_counters: [(&str, &str, Io); 3] = [
        (
            "xvs_worker_busy_rounds_total",
            "Rounds that received frames (load).",
            |s| s.busy_rounds.get(),
        ),
        (
            "xvs_worker_sleeps_total",
            "Sleeps in poll(2) when idle.",
            |s| s.sleeps.get(),
        ),
        (
            "xvs_worker_tx_ring_full_total",
            "Frames dropped on a full TX ring.",
            |s| s.tx_ring_full.get(),
        ),
    ];
    for (name, help, f) in io_counters {
        e.family(name, "counter", help);
        for (i, s) in io.iter().enumerate() {
            e.sample(name, &[("worker", &i.to_string())], f(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format_and_label_escaping() {
        let mut e = Exposition::default();
        e.family("xvs_x_total", "counter", "A counter.");
        e.sample("xvs_x_total", &[], 3);
        e.sample(
            "xvs_x_total",
            &[("a", "q\"b\\s\nn"), ("b", "TCP 1.2.3.4:80")],
            4,
        );
        assert_eq!(
            e.finish(),
            "# HELP xvs_x_total A counter.\n# TYPE xvs_x_total counter\nxvs_x_total 3\n\
             xvs_x_total{a=\"q\\\"b\\\\s\\nn\",b=\"TCP 1.2.3.4:80\"} 4\n"
        );
    }
}
