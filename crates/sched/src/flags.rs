//! Scheduler flags: IPVS's `IP_VS_SVC_F_SCHED1..3` service flags and the
//! names `ipvsadm -b` gives them.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::str::FromStr;

use crate::SchedError;

/// The three scheduler-private service flags of IPVS.
///
/// The bits are the kernel's (`IP_VS_SVC_F_SCHED1` = `0x0008`, `SCHED2` =
/// `0x0010`, `SCHED3` = `0x0020`), so they can be carried in the service
/// flags word as they are. What a bit means is up to the scheduler: sh and
/// mh read SCHED1 as "fallback" and SCHED2 as "hash the source port too";
/// every other scheduler ignores them, and nobody uses SCHED3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags(u32);

impl SchedFlags {
    /// No flag.
    pub const NONE: SchedFlags = SchedFlags(0);
    /// `IP_VS_SVC_F_SCHED1` (`ipvsadm -b flag-1`).
    pub const SCHED1: SchedFlags = SchedFlags(0x0008);
    /// `IP_VS_SVC_F_SCHED2` (`ipvsadm -b flag-2`).
    pub const SCHED2: SchedFlags = SchedFlags(0x0010);
    /// `IP_VS_SVC_F_SCHED3` (`ipvsadm -b flag-3`), unused by every scheduler.
    pub const SCHED3: SchedFlags = SchedFlags(0x0020);
    /// `IP_VS_SVC_F_SCHED_SH_FALLBACK`: sh probes other buckets when the
    /// hashed server is unavailable.
    pub const SH_FALLBACK: SchedFlags = SchedFlags::SCHED1;
    /// `IP_VS_SVC_F_SCHED_SH_PORT`: sh hashes the source port as well.
    pub const SH_PORT: SchedFlags = SchedFlags::SCHED2;
    /// `IP_VS_SVC_F_SCHED_MH_FALLBACK`: mh probes other slots when the
    /// hashed server is unavailable.
    pub const MH_FALLBACK: SchedFlags = SchedFlags::SCHED1;
    /// `IP_VS_SVC_F_SCHED_MH_PORT`: mh hashes the source port as well.
    pub const MH_PORT: SchedFlags = SchedFlags::SCHED2;

    const ALL: u32 = 0x0008 | 0x0010 | 0x0020;

    /// The raw bits, as in the IPVS service flags word.
    #[inline]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// From raw bits; `None` if a bit other than SCHED1..3 is set.
    #[inline]
    pub const fn from_bits(bits: u32) -> Option<SchedFlags> {
        if bits & !Self::ALL == 0 {
            Some(SchedFlags(bits))
        } else {
            None
        }
    }

    /// From raw bits, dropping every bit that is not SCHED1..3 (for example
    /// a whole IPVS service flags word).
    #[inline]
    pub const fn from_bits_truncate(bits: u32) -> SchedFlags {
        SchedFlags(bits & Self::ALL)
    }

    /// Whether every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: SchedFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses an `ipvsadm -b` argument without knowing the scheduler:
    /// comma-separated names among `flag-1`, `flag-2`, `flag-3`,
    /// `sh-fallback`, `sh-port`, `mh-fallback`, `mh-port`. Empty items
    /// between commas are skipped (ipvsadm splits with `strtok`), but at
    /// least one name is required.
    pub fn parse(s: &str) -> Result<SchedFlags, SchedError> {
        Self::parse_inner(None, s)
    }

    /// Parses an `ipvsadm -b` argument for scheduler `sched` the way ipvsadm
    /// does: the `sh-*` names are refused unless `sched` is `sh`, the `mh-*`
    /// names unless it is `mh` ("incompatible scheduler flag"); the
    /// `flag-N` names go with any scheduler.
    pub fn parse_for(sched: &str, s: &str) -> Result<SchedFlags, SchedError> {
        Self::parse_inner(Some(sched), s)
    }

    fn parse_inner(sched: Option<&str>, s: &str) -> Result<SchedFlags, SchedError> {
        let mut flags = SchedFlags::NONE;
        let mut any = false;
        for name in s.split(',').filter(|n| !n.is_empty()) {
            any = true;
            let (bit, owner) = match name {
                "flag-1" => (SchedFlags::SCHED1, None),
                "flag-2" => (SchedFlags::SCHED2, None),
                "flag-3" => (SchedFlags::SCHED3, None),
                "sh-fallback" => (SchedFlags::SH_FALLBACK, Some("sh")),
                "sh-port" => (SchedFlags::SH_PORT, Some("sh")),
                "mh-fallback" => (SchedFlags::MH_FALLBACK, Some("mh")),
                "mh-port" => (SchedFlags::MH_PORT, Some("mh")),
                _ => return Err(SchedError::InvalidFlag(name.to_owned())),
            };
            if let (Some(sched), Some(owner)) = (sched, owner) {
                if sched != owner {
                    return Err(SchedError::IncompatibleFlag {
                        flag: name.to_owned(),
                        sched: sched.to_owned(),
                    });
                }
            }
            flags |= bit;
        }
        if any {
            Ok(flags)
        } else {
            Err(SchedError::InvalidFlag(s.to_owned()))
        }
    }

    /// The flags as an `ipvsadm -b` argument for scheduler `sched`
    /// (`sh-fallback,sh-port` for sh, `mh-port` for mh, `flag-1,flag-3`
    /// otherwise); empty when no flag is set. [`SchedFlags::parse_for`]
    /// reads it back.
    pub fn display_for(self, sched: &str) -> String {
        let prefix = match sched {
            "sh" => Some(("sh-fallback", "sh-port")),
            "mh" => Some(("mh-fallback", "mh-port")),
            _ => None,
        };
        let mut names: Vec<&str> = Vec::new();
        if self.contains(SchedFlags::SCHED1) {
            names.push(prefix.map_or("flag-1", |p| p.0));
        }
        if self.contains(SchedFlags::SCHED2) {
            names.push(prefix.map_or("flag-2", |p| p.1));
        }
        if self.contains(SchedFlags::SCHED3) {
            names.push("flag-3");
        }
        names.join(",")
    }
}

impl BitOr for SchedFlags {
    type Output = SchedFlags;
    #[inline]
    fn bitor(self, rhs: SchedFlags) -> SchedFlags {
        SchedFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for SchedFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: SchedFlags) {
        self.0 |= rhs.0;
    }
}

impl FromStr for SchedFlags {
    type Err = SchedError;
    /// Same as [`SchedFlags::parse`].
    fn from_str(s: &str) -> Result<SchedFlags, SchedError> {
        SchedFlags::parse(s)
    }
}

impl fmt::Display for SchedFlags {
    /// Scheduler-neutral names (`flag-1,flag-2`); see
    /// [`SchedFlags::display_for`] for the sh/mh spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_for(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipvsadm_names() {
        assert_eq!(
            SchedFlags::parse("sh-fallback,sh-port").unwrap(),
            SchedFlags::SH_FALLBACK | SchedFlags::SH_PORT
        );
        assert_eq!(SchedFlags::parse("mh-port").unwrap(), SchedFlags::MH_PORT);
        assert_eq!(SchedFlags::parse("flag-1").unwrap(), SchedFlags::SCHED1);
        assert_eq!(SchedFlags::parse("flag-3,,flag-2").unwrap().bits(), 0x30);
        assert_eq!("flag-2".parse::<SchedFlags>().unwrap(), SchedFlags::SCHED2);
    }

    #[test]
    fn rejects_unknown_and_empty() {
        assert_eq!(
            SchedFlags::parse("sh-fallback,bogus"),
            Err(SchedError::InvalidFlag("bogus".into()))
        );
        assert!(matches!(
            SchedFlags::parse(""),
            Err(SchedError::InvalidFlag(_))
        ));
        assert!(matches!(
            SchedFlags::parse(",,"),
            Err(SchedError::InvalidFlag(_))
        ));
        assert!(matches!(
            SchedFlags::parse("SH-PORT"),
            Err(SchedError::InvalidFlag(_))
        ));
        assert!(matches!(
            SchedFlags::parse("flag-4"),
            Err(SchedError::InvalidFlag(_))
        ));
    }

    #[test]
    fn scheduler_specific_names_need_their_scheduler() {
        assert!(SchedFlags::parse_for("sh", "sh-port,sh-fallback").is_ok());
        assert_eq!(
            SchedFlags::parse_for("mh", "sh-port"),
            Err(SchedError::IncompatibleFlag {
                flag: "sh-port".into(),
                sched: "mh".into()
            })
        );
        assert!(SchedFlags::parse_for("rr", "mh-fallback").is_err());
        assert_eq!(
            SchedFlags::parse_for("rr", "flag-1").unwrap(),
            SchedFlags::SCHED1
        );
    }

    #[test]
    fn bits_round_trip_and_display() {
        assert_eq!(
            SchedFlags::from_bits(0x18),
            Some(SchedFlags::SCHED1 | SchedFlags::SCHED2)
        );
        assert_eq!(SchedFlags::from_bits(0x1), None);
        assert_eq!(
            SchedFlags::from_bits_truncate(0x0019),
            SchedFlags::from_bits(0x18).unwrap()
        );
        let f = SchedFlags::SH_FALLBACK | SchedFlags::SH_PORT;
        assert_eq!(f.display_for("sh"), "sh-fallback,sh-port");
        assert_eq!(SchedFlags::parse_for("sh", &f.display_for("sh")), Ok(f));
        assert_eq!(SchedFlags::MH_PORT.display_for("mh"), "mh-port");
        assert_eq!(
            (SchedFlags::SCHED1 | SchedFlags::SCHED3).to_string(),
            "flag-1,flag-3"
        );
        assert_eq!(SchedFlags::NONE.display_for("sh"), "");
    }
}
