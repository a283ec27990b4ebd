//! Serde forms of the types this crate borrows from `xvs-conntrack` and
//! `xvs-sched` (which do not depend on serde), for `#[serde(with = ...)]`.
//!
//! Names are lower-case words so the JSON is readable by scripts:
//! protocols `tcp`, `udp`, `sctp`, `ip`; families `ipv4`, `ipv6`;
//! forwarding methods `masq`, `tunnel`, `route`; scheduler flags as their
//! IPVS bit word (a number).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// [`xvs_conntrack::Proto`] as `tcp`, `udp`, `sctp` or `ip`.
pub(crate) mod proto {
    use super::*;
    use xvs_conntrack::Proto;

    pub(crate) fn serialize<S: Serializer>(p: &Proto, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match p {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Any => "ip",
        })
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Proto, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            "ip" => Ok(Proto::Any),
            _ => Err(D::Error::custom(format!(
                "unknown protocol `{s}` (tcp, udp, sctp, ip)"
            ))),
        }
    }
}

/// [`xvs_conntrack::Af`] as `ipv4` or `ipv6`.
pub(crate) mod af {
    use super::*;
    use xvs_conntrack::Af;

    pub(crate) fn serialize<S: Serializer>(a: &Af, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match a {
            Af::V4 => "ipv4",
            Af::V6 => "ipv6",
        })
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Af, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "ipv4" => Ok(Af::V4),
            "ipv6" => Ok(Af::V6),
            _ => Err(D::Error::custom(format!(
                "unknown address family `{s}` (ipv4, ipv6)"
            ))),
        }
    }
}

/// [`xvs_conntrack::Fwd`] as `masq`, `tunnel` or `route`.
pub(crate) mod fwd {
    use super::*;
    use xvs_conntrack::Fwd;

    pub(crate) fn serialize<S: Serializer>(f: &Fwd, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match f {
            Fwd::Masq => "masq",
            Fwd::Tunnel => "tunnel",
            Fwd::Route => "route",
        })
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fwd, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "masq" => Ok(Fwd::Masq),
            "tunnel" => Ok(Fwd::Tunnel),
            "route" => Ok(Fwd::Route),
            _ => Err(D::Error::custom(format!(
                "unknown forwarding method `{s}` (masq, tunnel, route)"
            ))),
        }
    }
}

/// [`xvs_sched::SchedFlags`] as its bit word; unknown bits are refused.
pub(crate) mod sched_flags {
    use super::*;
    use xvs_sched::SchedFlags;

    pub(crate) fn serialize<S: Serializer>(f: &SchedFlags, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(f.bits())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SchedFlags, D::Error> {
        let bits = u32::deserialize(d)?;
        SchedFlags::from_bits(bits)
            .ok_or_else(|| D::Error::custom(format!("invalid scheduler flags {bits:#x}")))
    }
}
