//! Verdicts and their reasons: what a worker does with a frame, and the
//! counter each outcome is recorded under.

use crate::wire::ParseError;

/// What to do with a frame after [`Pipeline::process`](super::Pipeline::process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the rewritten frame on director interface `iface`.
    Tx {
        /// Index into [`Snapshot::ifaces`](crate::service::Snapshot::ifaces).
        iface: u8,
    },
    /// The frame became an ICMP or ICMPv6 error to its sender: transmit it
    /// back out of the interface it came in on.
    Reply(ReplyReason),
    /// Not the director's to handle: give it to the kernel unchanged (IPVS's
    /// `NF_ACCEPT`).
    Pass(PassReason),
    /// Drop the frame.
    Drop(DropReason),
}

macro_rules! reasons {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $str:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vmeta])* $variant, )* }

        impl $name {
            /// Every reason, in [`index`](Self::index) order: the rows of a
            /// counter array.
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            /// Position in [`ALL`](Self::ALL).
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }

            /// A stable snake_case name for counters and logs.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $str,)* }
            }
        }
    };
}

reasons! {
    /// Why the director answered a packet with an ICMP error.
    pub enum ReplyReason {
        /// The service has no usable real server (IPVS `ip_vs_leave`: port
        /// unreachable for TCP and UDP alike).
        NoDest => "no_dest",
        /// The packet does not fit the egress MTU and may not be fragmented:
        /// ICMP fragmentation needed or ICMPv6 packet too big, with the MTU
        /// the packet must fit.
        TooBig => "too_big",
        /// The TTL or hop limit would reach zero: time exceeded.
        TtlExceeded => "ttl_exceeded",
        /// A TCP segment (not a reset) to a service that no connection
        /// takes and that may not start one: a reset, as the local stack
        /// behind IPVS sends (a client whose connection expired, or that
        /// a director took over without sync, learns it at once).
        Reset => "reset",
    }
}

reasons! {
    /// Why a packet was given to the kernel.
    pub enum PassReason {
        /// No service and no connection matches (the XDP program should not
        /// have redirected it).
        NoService => "no_service",
        /// A TCP reset to a service with no connection (other segments that
        /// cannot start one are answered with a reset, [`ReplyReason::Reset`]),
        /// or a segment whose source no answer may go to.
        NotSyn => "not_syn",
        /// ICMP that is not an error the director forwards (echo to a VIP,
        /// parameter problem...).
        IcmpNotError => "icmp_not_error",
        /// An ICMP error quoting no tracked connection.
        IcmpNoConn => "icmp_no_conn",
        /// A transport protocol the director does not balance.
        Untracked => "untracked_proto",
    }
}

/// Why a packet was dropped. [`Malformed`](Self::Malformed) carries the
/// parser's reason; each [`ParseError`] has a counter of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The frame does not parse.
    Malformed(ParseError),
    /// Other drop reasons.
    Other(Dropped),
}

reasons! {
    /// Drop reasons other than a malformed frame.
    pub enum Dropped {
        /// An IP fragment: the director does not reassemble (the XDP program
        /// redirects fragments of VIPs so they are counted here).
        Fragment => "fragment",
        /// The connection's real server was deleted and
        /// `expire_nodest_conn` is on: the connection was expired.
        DestDeleted => "dest_deleted",
        /// The connection table is full.
        TableFull => "table_full",
        /// The real server's MAC address is not resolved (yet).
        DestUnresolved => "dest_unresolved",
        /// NAT reply with no resolved gateway toward clients.
        GatewayUnresolved => "gateway_unresolved",
        /// The connection's destination is missing from the snapshot, or its
        /// interface is unknown (a control plane inconsistency).
        DestUnknown => "dest_unknown",
        /// The real server's address family cannot carry the packet (NAT
        /// and DR need the client's family; a tunnel needs a director
        /// address of the real server's family).
        FamilyMismatch => "family_mismatch",
        /// Too big for the egress MTU, and neither fragmentation needed nor
        /// packet too big may be sent (IPv4 without DF: IPVS would
        /// fragment; the director does not; or an ICMP error, or an MTU
        /// below the protocol minimum).
        TooBig => "too_big",
        /// An ICMP error whose TTL or hop limit ran out (no error is sent
        /// about an error).
        TtlExpired => "ttl_expired",
        /// An ICMP error that must not be sent: the packet's source is not
        /// a unicast address, or there is no address to send it from.
        ReplySuppressed => "reply_suppressed",
        /// The frame has too little headroom for a tunnel header or an ICMP
        /// reply (the I/O layer reserves enough; this means a bug there).
        NoHeadroom => "no_headroom",
    }
}

impl DropReason {
    /// Number of drop counters: one per [`ParseError`] and one per
    /// [`Dropped`].
    pub const COUNT: usize = ParseError::ALL.len() + Dropped::ALL.len();

    /// Position in a counter array of [`COUNT`](Self::COUNT) rows: parse
    /// errors first.
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            DropReason::Malformed(e) => e.index(),
            DropReason::Other(d) => ParseError::ALL.len() + d.index(),
        }
    }

    /// The reason of counter row `i`.
    pub fn from_index(i: usize) -> Option<DropReason> {
        match i.checked_sub(ParseError::ALL.len()) {
            None => ParseError::ALL.get(i).map(|e| DropReason::Malformed(*e)),
            Some(j) => Dropped::ALL.get(j).map(|d| DropReason::Other(*d)),
        }
    }

    /// A stable snake_case name for counters and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed(e) => e.as_str(),
            DropReason::Other(d) => d.as_str(),
        }
    }
}

impl From<ParseError> for DropReason {
    fn from(e: ParseError) -> DropReason {
        DropReason::Malformed(e)
    }
}

impl From<Dropped> for DropReason {
    fn from(d: Dropped) -> DropReason {
        DropReason::Other(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_indices_are_dense_and_round_trip() {
        let mut names = std::collections::HashSet::new();
        for i in 0..DropReason::COUNT {
            let r = DropReason::from_index(i).unwrap();
            assert_eq!(r.index(), i);
            assert!(names.insert(r.as_str()), "duplicate name {}", r.as_str());
        }
        assert!(DropReason::from_index(DropReason::COUNT).is_none());
        for (i, r) in ReplyReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        for (i, r) in PassReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
