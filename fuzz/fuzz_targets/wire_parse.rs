//! `wire::parse` on arbitrary frames.
//!
//! Invariants: it never panics; a parsed frame's offsets and lengths lie
//! within the frame and in layer order (the IP packet after the Ethernet
//! header and its tags, the transport header after the IP header and its
//! options or extension headers, the quoted packet of an ICMP error inside
//! the ICMP message); the checksums it verifies (IPv4 header, ICMP,
//! ICMPv6) are right by an independent sum; ports and flags are those of
//! the bytes at the offsets it gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvs_conntrack::Af;
use xvs_dataplane::wire::{self, FragKind, ip_proto};
use xvs_fuzz::director::check_parsed_checksums;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = wire::parse(data) else {
        return;
    };
    let vlan = usize::from(info.vlan_count);
    assert!(vlan <= 2);
    assert_eq!(info.l3_off, 14 + 4 * vlan);
    let (min_ip, af_version) = match info.af {
        Af::V4 => (20, 4),
        Af::V6 => (40, 6),
    };
    assert_eq!(data[info.l3_off] >> 4, af_version);
    let ip_end = info.l3_off + info.ip_len;
    assert!(ip_end <= data.len(), "IP packet beyond the frame");
    assert!(info.l4_off >= info.l3_off + min_ip);
    assert_eq!(
        info.l4_off + info.l4_len,
        ip_end,
        "transport bytes end with the IP packet"
    );
    check_parsed_checksums(data, &info);
    let l4 = &data[info.l4_off..ip_end];
    if info.frag == FragKind::NonFirst {
        assert_eq!((info.sport, info.dport), (0, 0));
    } else {
        match (info.proto, info.af) {
            (ip_proto::TCP, _) => {
                assert!(l4.len() >= 20);
                assert_eq!(info.sport, u16::from_be_bytes([l4[0], l4[1]]));
                assert_eq!(info.dport, u16::from_be_bytes([l4[2], l4[3]]));
                assert_eq!(info.tcp_flags, l4[13]);
            }
            (ip_proto::UDP, _) => {
                assert!(l4.len() >= 8);
                assert_eq!(info.sport, u16::from_be_bytes([l4[0], l4[1]]));
                assert_eq!(info.dport, u16::from_be_bytes([l4[2], l4[3]]));
            }
            (ip_proto::ICMP, Af::V4) | (ip_proto::ICMPV6, Af::V6) => {
                assert!(l4.len() >= 8);
                assert_eq!((info.icmp_type, info.icmp_code), (l4[0], l4[1]));
            }
            _ => {}
        }
    }
    if let Some(inner) = info.inner {
        assert!(matches!(
            (info.proto, info.af),
            (ip_proto::ICMP, Af::V4) | (ip_proto::ICMPV6, Af::V6)
        ));
        assert_eq!(inner.af, info.af);
        assert_eq!(
            inner.l3_off,
            info.l4_off + 8,
            "quote right after the ICMP header"
        );
        assert!(inner.l4_off >= inner.l3_off + min_ip);
        assert!(
            inner.l4_off + inner.l4_len <= ip_end,
            "quote beyond the ICMP message"
        );
        if inner.sport != 0 || inner.dport != 0 {
            assert!(inner.l4_len >= 8);
            let q = &data[inner.l4_off..];
            assert_eq!(inner.sport, u16::from_be_bytes([q[0], q[1]]));
            assert_eq!(inner.dport, u16::from_be_bytes([q[2], q[3]]));
        }
    }
});
