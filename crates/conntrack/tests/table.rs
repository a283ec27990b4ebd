//! Behaviour of the connection table through its public API.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;
use xvs_conntrack::tcp_flags::{ACK, FIN, RST, SYN};
use xvs_conntrack::*;

const S: u64 = 1000;

fn table(capacity: usize, shards: usize) -> ConnTable {
    let dests = Arc::new(DestTable::new(16));
    for id in 0..16 {
        dests.configure(id, 1, 0, 0);
    }
    ConnTable::new(
        TableConfig {
            capacity,
            shards,
            prealloc: false,
        },
        dests,
    )
}

fn key(proto: Proto, client: u8, cport: u16) -> ConnKey {
    ConnKey {
        proto,
        caddr: Addr::v4([10, 0, 0, client]),
        cport,
        vaddr: Addr::v4([192, 0, 2, 1]),
        vport: 80,
    }
}

fn new_conn(k: ConnKey, fwd: Fwd, dest: DestId) -> NewConn {
    NewConn {
        key: k,
        daddr: Addr::v4([10, 9, 0, dest as u8]),
        dport: 8080,
        dest,
        fwd,
        template: None,
    }
}

fn reply(k: &ConnKey, n: &NewConn) -> ReplyKey {
    ReplyKey {
        proto: k.proto,
        caddr: k.caddr,
        cport: k.cport,
        daddr: n.daddr,
        dport: n.dport,
    }
}

#[test]
fn nat_entry_is_found_from_both_directions() {
    let t = table(1024, 8);
    let k = key(Proto::Tcp, 1, 40000);
    let n = new_conn(k, Fwd::Masq, 3);
    let Ok(Inserted::New(v)) = t.insert(0, &n, SYN, 60) else {
        panic!("insert")
    };
    assert_eq!(
        (v.dest, v.daddr, v.dport, v.fwd),
        (3, n.daddr, 8080, Fwd::Masq)
    );
    assert_eq!(v.state, TcpState::SynRecv);
    let out = t
        .lookup_out(S, &reply(&k, &n), SYN | ACK, 60)
        .expect("reply side");
    assert_eq!(out.id, v.id, "the same entry");
    assert_eq!(
        (out.vaddr, out.vport),
        (k.vaddr, k.vport),
        "reply knows the VIP"
    );
    let InLookup::Hit(h) = t.lookup_in(2 * S, &k, ACK, 52) else {
        panic!("in side")
    };
    assert_eq!(h.state, TcpState::Established);
    let c = t.peek_in(&k).unwrap();
    assert_eq!(
        (c.in_pkts, c.in_bytes, c.out_pkts, c.out_bytes),
        (2, 112, 1, 60)
    );
    // A different client port is a different connection.
    assert_eq!(
        t.lookup_in(2 * S, &key(Proto::Tcp, 1, 40001), ACK, 52),
        InLookup::Miss
    );
}

#[test]
fn dr_entry_has_no_reply_index() {
    let t = table(1024, 8);
    let k = key(Proto::Tcp, 1, 40000);
    let n = new_conn(k, Fwd::Route, 3);
    t.insert(0, &n, SYN, 60).unwrap();
    assert!(t.lookup_out(S, &reply(&k, &n), ACK, 60).is_none());
    // Input-only table: ACK establishes, FIN goes to FIN_WAIT.
    let InLookup::Hit(h) = t.lookup_in(S, &k, ACK, 52) else {
        panic!()
    };
    assert_eq!(h.state, TcpState::Established);
    let InLookup::Hit(h) = t.lookup_in(S, &k, FIN | ACK, 52) else {
        panic!()
    };
    assert_eq!(h.state, TcpState::FinWait);
}

#[test]
fn active_and_inactive_counts_follow_state() {
    let t = table(1024, 4);
    let d = t.dests().clone();
    let k = key(Proto::Tcp, 7, 1234);
    let n = new_conn(k, Fwd::Masq, 5);
    t.insert(0, &n, SYN, 60).unwrap();
    assert_eq!(
        (d.get(5).active(), d.get(5).inactive()),
        (1, 0),
        "SYN_RECV counts active"
    );
    t.lookup_out(0, &reply(&k, &n), SYN | ACK, 60).unwrap();
    t.lookup_in(0, &k, ACK, 40);
    assert_eq!((d.get(5).active(), d.get(5).inactive()), (1, 0));
    t.lookup_in(0, &k, FIN | ACK, 40);
    assert_eq!(
        (d.get(5).active(), d.get(5).inactive()),
        (0, 1),
        "CLOSE_WAIT is inactive"
    );
    t.lookup_out(0, &reply(&k, &n), FIN | ACK, 40).unwrap();
    assert_eq!(t.peek_in(&k).unwrap().tcp_state(), TcpState::TimeWait);
    // TIME_WAIT lasts 120 s.
    assert_eq!(t.expire(119 * S, usize::MAX), 0);
    assert_eq!(t.expire(121 * S, usize::MAX), 1);
    assert_eq!((d.get(5).active(), d.get(5).inactive()), (0, 0));
    // UDP is always inactive.
    let u = key(Proto::Udp, 7, 53);
    t.insert(200 * S, &new_conn(u, Fwd::Route, 6), 0, 80)
        .unwrap();
    assert_eq!((d.get(6).active(), d.get(6).inactive()), (0, 1));
}

#[test]
fn rst_moves_to_close_and_close_expires_in_ten_seconds() {
    let t = table(64, 1);
    let k = key(Proto::Tcp, 1, 1);
    t.insert(0, &new_conn(k, Fwd::Masq, 1), SYN, 60).unwrap();
    t.lookup_in(0, &k, ACK, 40);
    let InLookup::Hit(h) = t.lookup_in(5 * S, &k, RST, 40) else {
        panic!()
    };
    assert_eq!(h.state, TcpState::Close);
    assert_eq!(t.expire(14 * S, usize::MAX), 0);
    assert_eq!(t.expire(16 * S, usize::MAX), 1);
    assert!(t.is_empty());
}

#[test]
fn traffic_refreshes_expiry_and_set_changes_timeouts() {
    let t = table(64, 2);
    let k = key(Proto::Udp, 1, 5000);
    t.insert(0, &new_conn(k, Fwd::Route, 1), 0, 100).unwrap();
    // Keep it alive past its first 300 s deadline.
    t.lookup_in(250 * S, &k, 0, 100);
    assert_eq!(t.expire(400 * S, usize::MAX), 0, "refreshed to 550 s");
    assert_eq!(t.expire(551 * S, usize::MAX), 1);
    t.timeouts.set(0, 0, 10);
    t.insert(600 * S, &new_conn(k, Fwd::Route, 1), 0, 100)
        .unwrap();
    assert_eq!(t.peek_in(&k).unwrap().timeout_ms, 10_000);
    assert_eq!(t.expire(611 * S, usize::MAX), 1);
}

#[test]
fn capacity_is_a_hard_bound() {
    let t = table(8, 1);
    for p in 0..8 {
        t.insert(0, &new_conn(key(Proto::Udp, 1, p), Fwd::Route, 1), 0, 1)
            .unwrap();
    }
    let ninth = new_conn(key(Proto::Udp, 1, 99), Fwd::Route, 1);
    assert_eq!(t.insert(0, &ninth, 0, 1), Err(InsertError::Full));
    assert_eq!(t.stats().2, 1, "refusal counted");
    assert_eq!(t.len(), 8);
    assert_eq!(t.expire(301 * S, usize::MAX), 8);
    assert!(matches!(
        t.insert(302 * S, &ninth, 0, 1),
        Ok(Inserted::New(_))
    ));
}

#[test]
fn concurrent_insert_of_the_same_key_yields_one_entry() {
    let t = table(64, 4);
    let k = key(Proto::Tcp, 3, 3);
    assert!(matches!(
        t.insert(0, &new_conn(k, Fwd::Masq, 1), SYN, 60),
        Ok(Inserted::New(_))
    ));
    let r = t.insert(0, &new_conn(k, Fwd::Masq, 2), SYN, 60).unwrap();
    let Inserted::Existing(v) = r else { panic!() };
    assert_eq!(v.dest, 1, "first decision wins");
    assert_eq!(t.len(), 1);
    assert_eq!(t.dests().get(2).total(), 0, "loser bound nothing");
}

#[test]
fn persistence_template_controls_connections() {
    let t = table(64, 4);
    let d = t.dests().clone();
    let client = Addr::v4([10, 0, 0, 9]);
    let tkey = ConnKey {
        proto: Proto::Tcp,
        caddr: client.masked(32),
        cport: 0,
        vaddr: Addr::v4([192, 0, 2, 1]),
        vport: 80,
    };
    let nt = NewTemplate {
        key: tkey,
        daddr: Addr::v4([10, 9, 0, 4]),
        dport: 8080,
        dest: 4,
        fwd: Fwd::Masq,
        timeout_ms: 300 * S,
    };
    assert!(t.acquire_template(0, &tkey).is_none());
    let (tid, tv) = t.create_template(0, &nt).unwrap();
    assert_eq!(tv.dest, 4);
    assert_eq!(d.get(4).persistent(), 1);
    let k = ConnKey {
        cport: 5555,
        caddr: client,
        ..tkey
    };
    let mut n = new_conn(k, Fwd::Masq, 4);
    n.template = Some(tid);
    t.insert(0, &n, SYN, 60).unwrap();
    // The connection stays in SYN_RECV (60 s) then goes; the template lives
    // on 300 s after its last use, then goes too.
    assert_eq!(t.expire(61 * S, usize::MAX), 1);
    assert_eq!(t.len(), 1, "template remains");
    // A second client connection reuses it.
    let (tid2, tv2) = t.acquire_template(100 * S, &tkey).expect("template reused");
    assert_eq!((tid2, tv2.dest), (tid, 4));
    let k2 = ConnKey { cport: 5556, ..k };
    let mut n2 = new_conn(k2, Fwd::Masq, 4);
    n2.template = Some(tid2);
    t.insert(100 * S, &n2, SYN, 60).unwrap();
    t.lookup_in(100 * S, &k2, ACK, 40); // ESTABLISHED: 900 s
    // At 400 s the template is due but still controls k2: it stays.
    assert_eq!(t.expire(401 * S, usize::MAX), 0);
    assert!(t.acquire_template(401 * S, &tkey).is_some());
    t.release_template(tid);
    // k2 expires at 1000 s; the template, due at 701 s, is kept until k2 is
    // gone (in the same pass or at its next re-arm, by shard order).
    assert!(t.expire(1001 * S, usize::MAX) >= 1);
    assert!(t.peek_in(&k2).is_none());
    t.expire(2000 * S, usize::MAX);
    assert!(t.is_empty());
    assert_eq!(d.get(4).persistent(), 0);
}

#[test]
fn quiescent_and_deleted_destinations_invalidate_templates() {
    let t = table(64, 4);
    let d = t.dests().clone();
    let tkey = ConnKey {
        proto: Proto::Any,
        caddr: Addr::v4([10, 0, 0, 0]),
        cport: 0,
        vaddr: Addr::v4([0, 0, 0, 7]), // fwmark 7
        vport: 0,
    };
    let nt = NewTemplate {
        key: tkey,
        daddr: Addr::v4([10, 9, 0, 2]),
        dport: 0,
        dest: 2,
        fwd: Fwd::Route,
        timeout_ms: 300 * S,
    };
    let (tid, _) = t.create_template(0, &nt).unwrap();
    t.release_template(tid);
    d.configure(2, 0, 0, 0); // weight 0
    assert!(
        t.acquire_template(1, &tkey).is_some(),
        "quiescent is reused by default"
    );
    t.release_template(tid);
    t.settings
        .expire_quiescent_template
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        t.acquire_template(2, &tkey).is_none(),
        "expire_quiescent_template"
    );
    // Invalidated: a new template with the same key can be made.
    let nt3 = NewTemplate { dest: 3, ..nt };
    let (_, v) = t.create_template(3, &nt3).unwrap();
    assert_eq!(v.dest, 3);
    d.retire(3);
    assert!(
        t.acquire_template(4, &tkey).is_none(),
        "deleted destination"
    );
}

#[test]
fn expire_nodest_conn_drops_connections_of_deleted_servers() {
    let t = table(64, 4);
    let k = key(Proto::Tcp, 1, 1);
    t.insert(0, &new_conn(k, Fwd::Route, 8), SYN, 60).unwrap();
    t.dests().retire(8);
    assert!(
        matches!(t.lookup_in(1, &k, ACK, 40), InLookup::Hit(_)),
        "default: keep forwarding"
    );
    t.settings
        .expire_nodest_conn
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(t.lookup_in(2, &k, ACK, 40), InLookup::NoDest);
    assert!(t.is_empty());
    assert_eq!(t.dests().get(8).total(), 0);
    assert!(t.dests().is_free(8));
}

#[test]
fn syn_on_a_closed_connection_reschedules() {
    let t = table(64, 4);
    let k = key(Proto::Tcp, 1, 1);
    let n = new_conn(k, Fwd::Masq, 1);
    t.insert(0, &n, SYN, 60).unwrap();
    t.lookup_in(0, &k, ACK, 40);
    t.lookup_in(0, &k, RST, 40);
    assert_eq!(t.lookup_in(1, &k, SYN, 60), InLookup::Miss);
    assert!(t.is_empty(), "old entry expired for reuse");
    t.insert(1, &n, SYN, 60).unwrap();
    // A retransmitted SYN on a live handshake is just a hit.
    assert!(matches!(t.lookup_in(2, &k, SYN, 60), InLookup::Hit(_)));
}

#[test]
fn budgeted_expiry_finishes_a_crowded_slot_over_several_calls() {
    let t = table(10_000, 1);
    for p in 0..5000u16 {
        t.insert(0, &new_conn(key(Proto::Udp, 2, p), Fwd::Route, 1), 0, 1)
            .unwrap();
    }
    // Touch half so they must be re-filed, not expired.
    for p in (0..5000u16).step_by(2) {
        t.lookup_in(200 * S, &key(Proto::Udp, 2, p), 0, 1);
    }
    let mut removed = 0;
    let mut calls = 0;
    while removed < 2500 {
        removed += t.expire(301 * S, 97);
        calls += 1;
        assert!(calls < 1000, "expiry makes progress");
    }
    assert_eq!(removed, 2500);
    assert_eq!(t.len(), 2500);
    assert_eq!(t.expire(501 * S, usize::MAX), 2500);
}

#[test]
fn listing_and_flush() {
    let t = table(4096, 16);
    for c in 0..100u8 {
        t.insert(
            0,
            &new_conn(key(Proto::Tcp, c, 1000), Fwd::Masq, u32::from(c % 4)),
            SYN,
            60,
        )
        .unwrap();
    }
    let mut seen = Vec::new();
    t.for_each(7, |_, c| seen.push(c.caddr));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 100);
    assert_eq!(t.remove_where(|c| c.dest == 1), 25);
    assert_eq!(t.len(), 75);
    assert_eq!(t.dests().get(1).total(), 0);
    assert!(t.memory_bytes() > 0);
}

#[test]
fn far_jump_of_the_clock_expires_everything_due() {
    let t = table(256, 2);
    for p in 0..100 {
        t.insert(0, &new_conn(key(Proto::Udp, 1, p), Fwd::Route, 1), 0, 1)
            .unwrap();
    }
    assert_eq!(t.expire(10_000_000 * S, usize::MAX), 100);
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u16),
    Lookup(u8, u16),
    Advance(u16),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4, 0u16..16).prop_map(|(c, p)| Op::Insert(c, p)),
        (0u8..4, 0u16..16).prop_map(|(c, p)| Op::Lookup(c, p)),
        (1u16..200).prop_map(Op::Advance),
        Just(Op::Expire),
    ]
}

proptest! {
    /// UDP NAT entries against a model map of key -> expiry.
    #[test]
    fn matches_a_model_map(ops in proptest::collection::vec(op(), 1..200)) {
        let t = table(48, 4);
        t.timeouts.set(0, 0, 30);
        let mut model: HashMap<ConnKey, u64> = HashMap::new();
        let mut now = 0u64;
        for o in ops {
            match o {
                Op::Insert(c, p) => {
                    let k = key(Proto::Udp, c, p);
                    match t.insert(now, &new_conn(k, Fwd::Masq, 1), 0, 10) {
                        Ok(Inserted::New(_)) => prop_assert!(!model.contains_key(&k)),
                        Ok(Inserted::Existing(_)) => prop_assert!(model.contains_key(&k)),
                        Err(InsertError::Full) => {
                            prop_assert!(!model.contains_key(&k));
                            continue;
                        }
                    }
                    model.insert(k, now + 30 * S);
                }
                Op::Lookup(c, p) => {
                    let k = key(Proto::Udp, c, p);
                    let hit = matches!(t.lookup_in(now, &k, 0, 10), InLookup::Hit(_));
                    prop_assert_eq!(hit, model.contains_key(&k));
                    // The reply direction finds the same entry.
                    let back = t.lookup_out(now, &reply(&k, &new_conn(k, Fwd::Masq, 1)), 0, 10);
                    prop_assert_eq!(back.is_some(), hit);
                    if hit {
                        model.insert(k, now + 30 * S);
                    }
                }
                Op::Advance(ds) => now += u64::from(ds) * 100,
                Op::Expire => {
                    t.expire(now, usize::MAX);
                    let mut kept = HashMap::new();
                    t.for_each(16, |_, c| {
                        kept.insert(c.key(), c.expires);
                    });
                    for (k, e) in &model {
                        if *e > now {
                            prop_assert_eq!(kept.get(k), Some(e), "live entry kept as is");
                        }
                    }
                    for e in kept.values() {
                        prop_assert!(e + 1000 > now, "nothing a full tick past due remains");
                    }
                    prop_assert!(kept.keys().all(|k| model.contains_key(k)));
                    model = kept;
                }
            }
            prop_assert!(t.len() <= t.capacity());
            prop_assert_eq!(t.len(), model.len());
            prop_assert_eq!(t.len(), t.dests().get(1).total() as usize);
        }
    }
}

#[test]
fn sync_flag_marks_creation_state_changes_and_periodic_refresh() {
    let t = table(1024, 4);
    let k = key(Proto::Tcp, 9, 5555);
    let n = new_conn(k, Fwd::Route, 2);
    let Ok(Inserted::New(v)) = t.insert(0, &n, SYN, 60) else {
        panic!("insert")
    };
    assert!(v.sync, "a new connection is synced");
    let InLookup::Hit(h) = t.lookup_in(1, &k, ACK, 40) else {
        panic!("hit")
    };
    assert_eq!(h.state, TcpState::Established);
    assert!(h.sync, "SYN_RECV -> ESTABLISHED is synced");
    let mut synced = Vec::new();
    for i in 3..=200u64 {
        let InLookup::Hit(h) = t.lookup_in(i, &k, ACK, 40) else {
            panic!("hit")
        };
        if h.sync {
            synced.push(i);
        }
    }
    // Packet counts 3, 67, 131, 195 (the i-th lookup is packet i).
    assert_eq!(
        synced,
        (0..4)
            .map(|n| SYNC_THRESHOLD + n * SYNC_PERIOD)
            .collect::<Vec<_>>()
    );
}

fn synced(k: ConnKey, dest: DestId, state: TcpState, fwd: Fwd) -> Synced {
    Synced {
        key: k,
        daddr: Addr::v4([10, 9, 0, dest as u8]),
        dport: 8080,
        dest,
        fwd,
        state,
        template: false,
        timeout_ms: 900 * S,
    }
}

#[test]
fn installed_entries_carry_the_flow_and_count_on_their_server() {
    let t = table(1024, 4);
    let d = t.dests().clone();
    let k = key(Proto::Tcp, 11, 4000);
    let e = synced(k, 4, TcpState::Established, Fwd::Route);
    assert_eq!(t.install(0, &e), Ok(Installed::New));
    assert_eq!((d.get(4).active(), d.get(4).inactive()), (1, 0));
    // A mid-stream packet (no SYN) finds it: the backup carries the flow.
    let InLookup::Hit(h) = t.lookup_in(S, &k, ACK, 40) else {
        panic!("synced entry not found")
    };
    assert_eq!(
        (h.dest, h.daddr, h.state),
        (4, e.daddr, TcpState::Established)
    );
    // A refresh with a later state moves the counts, once.
    let fin = Synced {
        state: TcpState::FinWait,
        timeout_ms: 120 * S,
        ..e
    };
    assert_eq!(t.install(2 * S, &fin), Ok(Installed::Updated));
    assert_eq!(t.install(2 * S, &fin), Ok(Installed::Updated));
    assert_eq!((d.get(4).active(), d.get(4).inactive()), (0, 1));
    assert_eq!(t.len(), 1);
    // The shorter timeout applies: gone after 120 s.
    assert_eq!(t.expire(100 * S, usize::MAX), 0);
    assert_eq!(t.expire(123 * S, usize::MAX), 1);
    assert_eq!((d.get(4).active(), d.get(4).inactive()), (0, 0));
}

#[test]
fn install_follows_the_master_when_it_moved_a_flow() {
    let t = table(1024, 4);
    let d = t.dests().clone();
    let k = key(Proto::Tcp, 12, 4001);
    t.insert(0, &new_conn(k, Fwd::Masq, 1), SYN, 60).unwrap();
    let e = synced(k, 3, TcpState::Established, Fwd::Masq);
    assert_eq!(t.install(S, &e), Ok(Installed::New));
    assert_eq!(t.len(), 1);
    assert_eq!(t.peek_in(&k).unwrap().dest, 3);
    assert_eq!((d.get(1).active(), d.get(3).active()), (0, 1));
    // NAT: the reply index points at the new real server.
    let r = ReplyKey {
        proto: Proto::Tcp,
        caddr: k.caddr,
        cport: k.cport,
        daddr: e.daddr,
        dport: e.dport,
    };
    assert!(t.lookup_out(2 * S, &r, ACK, 40).is_some());
}

#[test]
fn install_respects_capacity_and_templates() {
    let t = table(2, 1);
    let k1 = key(Proto::Tcp, 13, 1);
    let tk = ConnKey {
        proto: Proto::Tcp,
        caddr: Addr::v4([10, 0, 0, 0]),
        cport: 0,
        vaddr: Addr::v4([192, 0, 2, 1]),
        vport: 80,
    };
    let tmpl = Synced {
        template: true,
        timeout_ms: 300 * S,
        ..synced(tk, 2, TcpState::None, Fwd::Route)
    };
    assert_eq!(t.install(0, &tmpl), Ok(Installed::New));
    assert_eq!(t.dests().get(2).persistent(), 1);
    assert!(t.peek_in(&tk).unwrap().is_template());
    let e = synced(k1, 2, TcpState::Established, Fwd::Route);
    assert_eq!(t.install(0, &e), Ok(Installed::New));
    let e2 = synced(key(Proto::Tcp, 13, 2), 2, TcpState::Established, Fwd::Route);
    assert_eq!(t.install(0, &e2), Err(InsertError::Full));
    // The template is usable for persistence on the backup.
    let (_, v) = t.acquire_template(S, &tk).expect("template");
    assert_eq!(v.dest, 2);
}

#[test]
fn clamping_syn_recv_entries_expires_them_sooner() {
    let t = table(1024, 4);
    let half_open: Vec<ConnKey> = (0..10).map(|p| key(Proto::Tcp, 20, 1000 + p)).collect();
    for k in &half_open {
        t.insert(0, &new_conn(*k, Fwd::Route, 1), SYN, 60).unwrap();
    }
    let est = key(Proto::Tcp, 21, 2000);
    t.insert(0, &new_conn(est, Fwd::Route, 1), SYN, 60).unwrap();
    t.lookup_in(0, &est, ACK, 40);
    assert_eq!(t.clamp_expiry(S, TcpState::SynRecv, 10 * S), 10);
    assert_eq!(
        t.clamp_expiry(S, TcpState::SynRecv, 10 * S),
        0,
        "already clamped"
    );
    // Gone at 11 s instead of 60 s; the established one stays.
    assert_eq!(t.expire(12 * S, usize::MAX), 10);
    assert!(t.peek_in(&est).is_some());
    assert!(half_open.iter().all(|k| t.peek_in(k).is_none()));
}
