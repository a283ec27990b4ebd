//! Tests of the format, the encoder and the verifier (no I/O); the sockets
//! are tested over real UDP in `tests/udp.rs`.

mod encoder;
mod verifier;
mod wire;

use xvs_conntrack::conn::flags;
use xvs_conntrack::{Addr, Fwd, Proto, TcpState};

use crate::wire::{HEADER_LEN, Header, MAC_LEN};
use crate::{Encoder, Key, SyncConn};

/// The receiver's clock in these tests (2023-11-14), ms.
pub const NOW: u64 = 1_700_000_000_000;

pub fn key() -> Key {
    Key::from_bytes(b"test key: thirty-two bytes long!").unwrap()
}

pub fn other_key() -> Key {
    Key::from_bytes(b"another key, also 32 bytes long!").unwrap()
}

/// A TCP connection over IPv4, distinguished by `i`.
pub fn v4(i: u16) -> SyncConn {
    SyncConn {
        proto: Proto::Tcp,
        caddr: Addr::v4([198, 51, 100, (i % 250) as u8]),
        cport: 10_000 + i,
        vaddr: Addr::v4([192, 0, 2, 1]),
        vport: 443,
        daddr: Addr::v4([10, 0, 0, 2 + (i % 4) as u8]),
        dport: 8443,
        fwd: Fwd::Masq,
        state: TcpState::Established,
        flags: 0,
        timeout_ms: 900_000,
        fwmark: 0,
    }
}

/// An IPv6 connection, distinguished by `i`.
pub fn v6(i: u16) -> SyncConn {
    let mut c6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    c6[14..].copy_from_slice(&i.to_be_bytes());
    SyncConn {
        proto: Proto::Udp,
        caddr: Addr::v6(c6),
        cport: 20_000 + i,
        vaddr: Addr::v6([
            0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80,
        ]),
        vport: 53,
        daddr: Addr::v6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12]),
        dport: 5353,
        fwd: Fwd::Route,
        state: TcpState::None,
        flags: 0,
        timeout_ms: 300_000,
        fwmark: 0,
    }
}

/// A fwmark persistence template (IPVS: protocol IP, the mark as virtual
/// address, client port 0).
pub fn fwmark_template() -> SyncConn {
    SyncConn {
        proto: Proto::Any,
        caddr: Addr::v4([198, 51, 100, 0]),
        cport: 0,
        vaddr: Addr::v4([0, 0, 0, 7]),
        vport: 0,
        daddr: Addr::v4([10, 0, 0, 3]),
        dport: 0,
        fwd: Fwd::Tunnel,
        state: TcpState::None,
        flags: flags::TEMPLATE | flags::PERSISTENT,
        timeout_ms: 360_000,
        fwmark: 7,
    }
}

/// One datagram holding `conns`, sender 0xfeedbeef, sequence `seq`.
pub fn datagram_with(conns: &[SyncConn], syncid: u8, seq: u64, ts: u64) -> Vec<u8> {
    let mut enc = Encoder::new(key(), syncid, crate::wire::MAX_DATAGRAM_LEN, 0xfeed_beef);
    enc.seq = seq;
    for c in conns {
        assert!(enc.push(c, ts).is_none(), "fits in one datagram");
    }
    enc.finish(ts).unwrap().to_vec()
}

/// `n` datagrams of one entry each from `sender`, sequence 0..n, at `NOW`.
pub fn series(sender: u32, n: usize, syncid: u8) -> Vec<Vec<u8>> {
    let mut enc = Encoder::new(key(), syncid, crate::wire::DEFAULT_MAXLEN, sender);
    (0..n)
        .map(|i| {
            assert!(enc.push(&v4(i as u16), NOW).is_none());
            enc.finish(NOW).unwrap().to_vec()
        })
        .collect()
}

/// A datagram from a raw body (entries region), with a valid MAC: for
/// exercising the checks that only a key holder could reach.
pub fn raw_sealed(count: u16, body: &[u8]) -> Vec<u8> {
    let h = Header {
        syncid: 0,
        count,
        sender: 1,
        seq: 0,
        timestamp_ms: NOW,
    };
    let mut d = vec![0; HEADER_LEN + body.len() + MAC_LEN];
    h.write(d.first_chunk_mut::<HEADER_LEN>().unwrap());
    d[HEADER_LEN..HEADER_LEN + body.len()].copy_from_slice(body);
    crate::wire::seal(&mut d, &key()).unwrap();
    d
}
