//! The xvs demo on its embedded default configuration: one TCP virtual
//! service with three real servers, driven through the real connection
//! table, schedulers and service snapshot with simulated clients and a
//! simulated clock. Run with `scripts/demo.sh`.

use std::sync::Arc;

use xvs_conntrack::tcp_flags::{ACK, FIN, SYN};
use xvs_conntrack::*;
use xvs_dataplane::service::{Dest, Persistence, Service, Snapshot, SvcAddr};
use xvs_sched::{PickCx, PickState, SchedFlags, by_name};

const VIP: Addr = Addr::v4([192, 0, 2, 1]);
const SERVERS: [(&str, [u8; 4], i32); 3] = [
    ("A", [10, 0, 0, 2], 4),
    ("B", [10, 0, 0, 3], 3),
    ("C", [10, 0, 0, 4], 2),
];

fn service(sched: &str, persistence: Option<Persistence>, dests: &DestTable) -> Arc<Service> {
    let list: Vec<Dest> = SERVERS
        .iter()
        .enumerate()
        .map(|(i, (_, ip, w))| {
            dests.configure(i as u32, *w, 0, 0);
            Dest {
                id: i as u32,
                addr: Addr::v4(*ip),
                port: 80,
                fwd: Fwd::Route,
                weight: *w,
                mac: Some([2, 0, 0, 0, 0, ip[3]]),
                iface: 0,
                svc: 0,
            }
        })
        .collect();
    let sched = by_name(sched, SchedFlags::NONE).expect("known scheduler");
    Arc::new(Service::new(
        0,
        SvcAddr::Tuple {
            proto: Proto::Tcp,
            vaddr: VIP,
            vport: 80,
        },
        persistence,
        list,
        sched,
    ))
}

fn client(i: u32) -> ConnKey {
    ConnKey {
        proto: Proto::Tcp,
        caddr: Addr::v4([198, 51, (i >> 8) as u8, i as u8]),
        cport: 30000 + (i % 20000) as u16,
        vaddr: VIP,
        vport: 80,
    }
}

/// The first packet of a connection: find the service, reuse a persistence
/// template or schedule, insert. Returns the chosen server's index.
fn open(
    t: &ConnTable,
    snap: &Snapshot,
    st: &mut PickState,
    now: u64,
    k: &ConnKey,
) -> Option<usize> {
    let svc = snap.find(k.proto, &k.vaddr, k.vport, 0)?;
    let (idx, template) = match svc.persistence {
        Some(p) => {
            let tkey = ConnKey {
                caddr: k.caddr.masked(p.netmask),
                cport: 0,
                ..*k
            };
            match t.acquire_template(now, &tkey) {
                Some((id, v)) => (svc.dests.iter().position(|d| d.id == v.dest)?, Some(id)),
                None => {
                    let i = svc.sched.pick(
                        &mut PickCx {
                            dests: t.dests(),
                            now_ms: now,
                            state: st,
                        },
                        k,
                    )?;
                    let d = &svc.dests[i];
                    let nt = NewTemplate {
                        key: tkey,
                        daddr: d.addr,
                        dport: d.port,
                        dest: d.id,
                        fwd: d.fwd,
                        timeout_ms: p.timeout_ms,
                    };
                    (i, Some(t.create_template(now, &nt).ok()?.0))
                }
            }
        }
        None => (
            svc.sched.pick(
                &mut PickCx {
                    dests: t.dests(),
                    now_ms: now,
                    state: st,
                },
                k,
            )?,
            None,
        ),
    };
    let d = &svc.dests[idx];
    let n = NewConn {
        key: *k,
        daddr: d.addr,
        dport: d.port,
        dest: d.id,
        fwd: d.fwd,
        template,
    };
    t.insert(now, &n, SYN, 60).ok()?;
    Some(idx)
}

fn list(t: &ConnTable, title: &str) {
    println!("\n{title}");
    println!(
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
    );
    for (i, (name, ip, _)) in SERVERS.iter().enumerate() {
        let s = t.dests().get(i as u32);
        let addr = format!("{}.{}.{}.{}:80", ip[0], ip[1], ip[2], ip[3]);
        println!(
            "  -> {addr:<28} {:<7} {:<6} {:<10} {:<9} ({name})",
            "Route",
            s.weight(),
            s.active(),
            s.inactive()
        );
    }
}

fn main() {
    println!(
        "xvs demo: VIP {VIP}:80/tcp, real servers A=10.0.0.2 (w4) B=10.0.0.3 (w3) C=10.0.0.4 (w2), DR"
    );

    // 1. wrr reproduces IPVS's cycle.
    let dests = Arc::new(DestTable::new(8));
    let svc = service("wrr", None, &dests);
    let mut st = PickState::new();
    let cycle: String = (0..18)
        .map(|i| {
            let i = svc
                .sched
                .pick(
                    &mut PickCx {
                        dests: &dests,
                        now_ms: 0,
                        state: &mut st,
                    },
                    &client(i),
                )
                .unwrap();
            SERVERS[i].0
        })
        .collect();
    println!("\nwrr picks for 18 new connections: {cycle}  (IPVS: AABABCABC repeated)");

    // 2. Each scheduler spreads 9000 new connections; a third of them close.
    for sched in ["rr", "wrr", "wlc", "sed", "sh", "mh"] {
        let dests = Arc::new(DestTable::new(8));
        let table = ConnTable::new(
            TableConfig {
                capacity: 1 << 16,
                shards: 16,
                prealloc: false,
            },
            dests.clone(),
        );
        let snap = Snapshot::new(vec![service(sched, None, &dests)], &[], vec![], 1);
        let mut st = PickState::new();
        let mut per = [0u32; 3];
        for i in 0..9000 {
            let k = client(i);
            if let Some(d) = open(&table, &snap, &mut st, 0, &k) {
                per[d] += 1;
                table.lookup_in(1, &k, ACK, 52);
                if i % 3 == 0 {
                    table.lookup_in(2_000, &k, FIN | ACK, 52);
                }
            }
        }
        list(
            &table,
            &format!(
                "{sched}: 9000 connections (A {} / B {} / C {}), every third closing:",
                per[0], per[1], per[2]
            ),
        );
        let gone = table.expire(2_000 + 121_000, usize::MAX);
        println!(
            "  121 s later: {gone} closing connections expired (FIN_WAIT 120 s); {} remain",
            table.len()
        );
    }

    // 3. Persistence: one client, many source ports, one server.
    let dests = Arc::new(DestTable::new(8));
    let table = ConnTable::new(TableConfig::default(), dests.clone());
    let p = Persistence {
        timeout_ms: 300_000,
        netmask: 24,
    };
    let snap = Snapshot::new(vec![service("rr", Some(p), &dests)], &[], vec![], 1);
    let mut st = PickState::new();
    let picks: Vec<&str> = (0..6)
        .map(|port| {
            let k = ConnKey {
                cport: 40000 + port,
                ..client(7)
            };
            open(&table, &snap, &mut st, 0, &k).map_or("-", |d| SERVERS[d].0)
        })
        .collect();
    println!(
        "\npersistent rr (-p 300 -M 255.255.255.0): 6 connections of 198.51.0.7 went to {picks:?}"
    );
    let other = ConnKey {
        caddr: Addr::v4([198, 51, 0, 99]),
        ..client(8)
    };
    let d = open(&table, &snap, &mut st, 0, &other).map_or("-", |d| SERVERS[d].0);
    println!(
        "  198.51.0.99 (same /24) went to {d}; templates: {}",
        dests.get(0).persistent() + dests.get(1).persistent() + dests.get(2).persistent()
    );
}
