//! Sender to receiver over real UDP on 127.0.0.1 (no root needed), with
//! loss, duplicates and forgeries; multicast on `lo` where the host allows.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use xvs_conntrack::{Addr, Fwd, Proto, TcpState};
use xvs_sync::socket::unix_ms;
use xvs_sync::{
    Encoder, Key, Multicast, Receiver, Recv, Reject, Sender, SyncConn, Verifier, VerifierConfig,
    WireError, wire,
};

fn key() -> Key {
    Key::from_bytes(b"udp test key, 32 bytes long.....").unwrap()
}

fn conn(i: u16) -> SyncConn {
    SyncConn {
        proto: Proto::Tcp,
        caddr: Addr::v4([198, 51, 100, (i % 200) as u8]),
        cport: 1024 + i,
        vaddr: Addr::v4([192, 0, 2, 10]),
        vport: 80,
        daddr: Addr::v4([10, 1, 0, (i % 8) as u8]),
        dport: 80,
        fwd: Fwd::Route,
        state: if i.is_multiple_of(5) {
            TcpState::FinWait
        } else {
            TcpState::Established
        },
        flags: 0,
        timeout_ms: 60_000 + u32::from(i),
        fwmark: 0,
    }
}

const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

fn receiver(syncid: u8) -> Receiver {
    let cfg = VerifierConfig {
        syncid,
        ..VerifierConfig::default()
    };
    Receiver::unicast(LOCAL, Verifier::new(key(), cfg)).unwrap()
}

/// Receives until `n` datagrams were accepted or rejected, or 5 s passed.
fn receive(rx: &mut Receiver, n: usize, out: &mut Vec<SyncConn>) -> Vec<Recv> {
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while events.len() < n && Instant::now() < deadline {
        match rx.recv(out).unwrap() {
            Recv::Idle => {}
            r => events.push(r),
        }
    }
    events
}

#[test]
fn unicast_with_loss_duplicates_and_forgeries() {
    let mut rx = receiver(3);
    let to = rx.local_addr().unwrap();
    // Datagrams from the master's encoder: 400 entries, 20 per datagram.
    let maxlen = wire::OVERHEAD + 20 * wire::ENTRY_V4_LEN;
    let mut enc = Encoder::with_random_id(key(), 3, maxlen).unwrap();
    let conns: Vec<_> = (0..400).map(conn).collect();
    let now = unix_ms();
    let mut dgrams = Vec::new();
    for c in &conns {
        if let Some(d) = enc.push(c, now) {
            dgrams.push(d.to_vec());
        }
    }
    dgrams.extend(enc.finish(now).map(<[u8]>::to_vec));
    assert_eq!(dgrams.len(), 20);

    // The wire drops every third datagram, delivers one twice, and an
    // attacker adds a corrupted copy and one signed with another key.
    let mut tx = Sender::unicast(LOCAL, vec![to], Encoder::new(key(), 3, maxlen, 1)).unwrap();
    let mut expected = Vec::new();
    let mut sent = 0;
    for (i, d) in dgrams.iter().enumerate() {
        if i % 3 == 1 {
            continue;
        }
        tx.send_datagram(d).unwrap();
        sent += 1;
        expected.extend_from_slice(&conns[i * 20..(i + 1) * 20]);
    }
    let delivered = sent;
    tx.send_datagram(&dgrams[0]).unwrap();
    let mut corrupt = dgrams[3].clone();
    corrupt[wire::HEADER_LEN + 7] ^= 0x10; // a port of the first entry
    tx.send_datagram(&corrupt).unwrap();
    let mut other = dgrams[2].clone();
    wire::seal(
        &mut other,
        &Key::from_bytes(b"not the cluster's key!!!").unwrap(),
    )
    .unwrap();
    tx.send_datagram(&other).unwrap();
    sent += 3;

    let mut got = Vec::new();
    let events = receive(&mut rx, sent, &mut got);
    assert_eq!(events.len(), sent, "all datagrams seen");
    // Loopback keeps order: the entries are exactly the delivered ones.
    assert_eq!(got, expected);
    let s = *rx.stats();
    assert_eq!(s.received, sent as u64);
    assert_eq!(s.accepted, delivered as u64);
    assert_eq!(s.entries, expected.len() as u64);
    assert_eq!(s.replayed, 1);
    assert_eq!(s.bad_mac, 2);
    assert_eq!(s.malformed + s.wrong_syncid + s.stale + s.too_old, 0);
    assert_eq!(s.new_senders, 1);
    assert!(events.iter().any(|e| matches!(
        e,
        Recv::Rejected {
            reason: Reject::Wire(WireError::BadMac),
            ..
        }
    )));
    assert_eq!(rx.verifier().senders()[0].0, enc.sender_id());
    assert_eq!(tx.stats().datagrams, sent as u64);
    assert_eq!(tx.stats().errors, 0);
}

#[test]
fn sender_push_and_flush_to_two_peers() {
    let mut a = receiver(0);
    let mut b = receiver(0);
    let peers = vec![a.local_addr().unwrap(), b.local_addr().unwrap()];
    let enc = Encoder::with_random_id(key(), 9, wire::DEFAULT_MAXLEN).unwrap();
    let mut tx = Sender::unicast(LOCAL, peers.clone(), enc).unwrap();
    assert_eq!(tx.destinations(), &peers[..]);
    for i in 0..100 {
        tx.push(&conn(i)).unwrap();
    }
    assert_eq!(tx.encoder().pending(), 100 - 2 * 44);
    tx.flush().unwrap();
    tx.flush().unwrap(); // nothing pending: sends nothing
    assert_eq!(tx.encoder().stats().datagrams, 3);
    assert_eq!(tx.stats().datagrams, 6, "3 datagrams to 2 peers");
    let want: Vec<_> = (0..100).map(conn).collect();
    for rx in [&mut a, &mut b] {
        let mut got = Vec::new();
        let ev = receive(rx, 3, &mut got);
        assert!(
            ev.iter()
                .all(|e| matches!(e, Recv::Accepted { entries, .. } if *entries > 0))
        );
        assert_eq!(got, want);
        assert_eq!(rx.stats().accepted, 3);
    }
}

#[test]
fn receiver_idles_and_filters() {
    let mut rx = receiver(1);
    let mut out = Vec::new();
    rx.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    assert_eq!(rx.recv(&mut out).unwrap(), Recv::Idle);
    rx.set_nonblocking(true).unwrap();
    assert_eq!(rx.recv(&mut out).unwrap(), Recv::Idle);
    rx.set_nonblocking(false).unwrap();
    // Another sync group's master, and junk.
    let to = rx.local_addr().unwrap();
    let mut tx = Sender::unicast(LOCAL, vec![to], Encoder::new(key(), 2, 1452, 5)).unwrap();
    tx.push(&conn(1)).unwrap();
    tx.flush().unwrap();
    tx.send_datagram(b"hello").unwrap();
    let ev = receive(&mut rx, 2, &mut out);
    assert!(matches!(
        ev[0],
        Recv::Rejected {
            reason: Reject::WrongSyncid { syncid: 2 },
            ..
        }
    ));
    assert!(matches!(
        ev[1],
        Recv::Rejected {
            reason: Reject::Wire(WireError::Truncated { len: 5 }),
            ..
        }
    ));
    assert!(out.is_empty());
    let s = rx.stats();
    assert_eq!((s.wrong_syncid, s.malformed, s.accepted), (1, 1, 0));
}

#[test]
fn bad_configuration_is_refused() {
    let enc = || Encoder::new(key(), 0, 1452, 1);
    let v6peer: SocketAddr = "[::1]:8848".parse().unwrap();
    assert!(Sender::unicast(LOCAL, vec![v6peer], enc()).is_err());
    assert!(Sender::unicast(LOCAL, vec![], enc()).is_err());
    let mut m = Multicast::ipvs_default("no-such-if0");
    let err = Sender::multicast(&m, enc()).unwrap_err();
    assert!(err.to_string().contains("no-such-if0"), "{err}");
    assert!(Receiver::multicast(&m, Verifier::new(key(), VerifierConfig::default())).is_err());
    m.iface = "lo".into();
    m.group = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let err = Sender::multicast(&m, enc()).unwrap_err();
    assert!(err.to_string().contains("not a multicast"), "{err}");
}

/// Sync over multicast on `lo`: sender and receiver set up by interface
/// index, the group joined on `lo`. The sender turns multicast loopback off
/// (as IPVS does, so a director does not hear itself), but what is sent
/// *through* `lo` comes back in as input, so a receiver on the same host
/// gets it. Skipped where the host has no multicast on `lo`.
fn multicast_on_lo(group: IpAddr, port: u16) {
    let m = Multicast {
        group,
        port,
        iface: "lo".into(),
        ttl: 1,
    };
    let mut rx = match Receiver::multicast(&m, Verifier::new(key(), VerifierConfig::default())) {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("multicast receiver on lo for {group} unavailable ({e}): skipped");
            return;
        }
    };
    let mut tx = match Sender::multicast(&m, Encoder::new(key(), 0, 1452, 77)) {
        Ok(tx) => tx,
        Err(e) => {
            eprintln!("multicast sender on lo for {group} unavailable ({e}): skipped");
            return;
        }
    };
    assert_eq!(tx.destinations()[0].ip(), group);
    assert_eq!(tx.destinations()[0].port(), port);
    let sent = (0..50)
        .try_for_each(|i| tx.push(&conn(i)))
        .and_then(|()| tx.flush());
    if let Err(e) = sent {
        eprintln!("multicast send on lo to {group} failed ({e}): skipped");
        return;
    }
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let ev = receive(&mut rx, 2, &mut got);
    if ev.is_empty() {
        eprintln!("no multicast delivery on lo for {group}: skipped");
        return;
    }
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(
        ev.iter().all(|e| matches!(e, Recv::Accepted { .. })),
        "{ev:?}"
    );
    assert_eq!(got, (0..50).map(conn).collect::<Vec<_>>());
    eprintln!("multicast on lo for {group}: {:?}", rx.stats());
}

#[test]
fn multicast_on_lo_if_available() {
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    multicast_on_lo(IpAddr::V4(Ipv4Addr::new(239, 255, 81, 81)), port);
    multicast_on_lo("ff02::8848".parse().unwrap(), port + 1);
}
