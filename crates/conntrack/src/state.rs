//! The IPVS protocol state machines and their timeouts.
//!
//! TCP follows the kernel's `tcp_states` table (`ip_vs_proto_tcp.c`): the
//! next state is a function of the direction the packet travels (input:
//! client -> real server; output: real server -> client; input-only: a
//! DR/TUN connection whose replies never cross the director), the most
//! significant flag of the segment (RST, then SYN, then FIN, then ACK) and
//! the current state. UDP (and, until it has its own machine, SCTP) has one
//! state whose timeout is refreshed by every packet.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// TCP flag bits as they appear in the TCP header's flags byte.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// IPVS TCP connection states, numbered as in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// No segment seen yet.
    None = 0,
    /// Established.
    Established = 1,
    /// SYN seen from the real server.
    SynSent = 2,
    /// SYN seen from the client.
    SynRecv = 3,
    /// FIN seen.
    FinWait = 4,
    /// Both FINs seen.
    TimeWait = 5,
    /// Reset or closed.
    Close = 6,
    /// FIN from the client while established (NAT).
    CloseWait = 7,
    /// Last ACK awaited.
    LastAck = 8,
    /// Listen.
    Listen = 9,
    /// SYN+ACK seen.
    SynAck = 10,
}

impl TcpState {
    /// Every state, in kernel order.
    pub const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// From the stored byte; unknown values read as `Close`.
    #[inline]
    pub fn from_u8(v: u8) -> TcpState {
        *TcpState::ALL.get(v as usize).unwrap_or(&TcpState::Close)
    }

    /// The name `ipvsadm -Lnc` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Whether a connection in this state counts as active for its
    /// destination (kernel `tcp_state_active_table`: established and the
    /// pre-established states count, closing ones do not).
    #[inline]
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }
}

/// Which way a packet crosses the director.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client -> real server.
    In,
    /// Real server -> client (NAT replies).
    Out,
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `[row][state]` where row = direction offset (input 0, output 4,
/// input-only 8) + flag index (syn 0, fin 1, ack 2, rst 3).
#[rustfmt::skip]
const TCP_STATES: [[TcpState; 11]; 12] = [
    // INPUT      NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    /* syn */   [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /* fin */   [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    /* ack */   [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /* rst */   [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    // OUTPUT
    /* syn */   [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    /* fin */   [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    /* ack */   [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    /* rst */   [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    // INPUT-ONLY
    /* syn */   [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /* fin */   [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /* ack */   [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /* rst */   [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// The kernel's flag precedence: RST, then SYN, then FIN, then ACK; a
/// segment with none of them moves the connection to CLOSE.
#[inline]
fn flag_index(flags: u8) -> Option<usize> {
    if flags & tcp_flags::RST != 0 {
        Some(3)
    } else if flags & tcp_flags::SYN != 0 {
        Some(0)
    } else if flags & tcp_flags::FIN != 0 {
        Some(1)
    } else if flags & tcp_flags::ACK != 0 {
        Some(2)
    } else {
        None
    }
}

/// Next TCP state for a segment with `flags` travelling `dir`. `input_only`
/// is set for connections that have not (yet) seen an output packet and
/// are not NAT (IPVS's `IP_VS_CONN_F_NOOUTPUT`).
#[inline]
pub fn tcp_next(state: TcpState, dir: Dir, input_only: bool, flags: u8) -> TcpState {
    let off = match (dir, input_only) {
        (Dir::Out, _) => 4,
        (Dir::In, true) => 8,
        (Dir::In, false) => 0,
    };
    match flag_index(flags) {
        Some(i) => TCP_STATES[off + i][state as usize],
        None => TcpState::Close,
    }
}

/// Default timeouts in seconds, as in the kernel.
pub const DEFAULT_TCP_TIMEOUTS: [u32; 11] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];
/// Default UDP timeout in seconds.
pub const DEFAULT_UDP_TIMEOUT: u32 = 300;

/// Protocol timeouts, changeable at run time (`xvsadm --set tcp tcpfin udp`)
/// while workers read them.
#[derive(Debug)]
pub struct Timeouts {
    tcp: [AtomicU32; 11],
    udp: AtomicU32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: DEFAULT_TCP_TIMEOUTS.map(AtomicU32::new),
            udp: AtomicU32::new(DEFAULT_UDP_TIMEOUT),
        }
    }
}

impl Timeouts {
    /// Timeout of a TCP state, in milliseconds.
    #[inline]
    pub fn tcp_ms(&self, s: TcpState) -> u64 {
        u64::from(self.tcp[s as usize].load(Relaxed)) * 1000
    }

    /// UDP (and SCTP) timeout, in milliseconds.
    #[inline]
    pub fn udp_ms(&self) -> u64 {
        u64::from(self.udp.load(Relaxed)) * 1000
    }

    /// Sets one TCP state's timeout, in seconds.
    pub fn set_tcp_state(&self, s: TcpState, secs: u32) {
        self.tcp[s as usize].store(secs, Relaxed);
    }

    /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP
    /// timeouts in seconds; 0 leaves a value unchanged.
    pub fn set(&self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.set_tcp_state(TcpState::Established, tcp);
        }
        if tcpfin != 0 {
            self.set_tcp_state(TcpState::FinWait, tcpfin);
        }
        if udp != 0 {
            self.udp.store(udp, Relaxed);
        }
    }

    /// `(tcp, tcpfin, udp)` in seconds, as `ipvsadm -L --timeout` prints.
    pub fn get(&self) -> (u32, u32, u32) {
        (
            self.tcp[TcpState::Established as usize].load(Relaxed),
            self.tcp[TcpState::FinWait as usize].load(Relaxed),
            self.udp.load(Relaxed),
        )
    }

    /// Every TCP state's timeout in seconds, in kernel order.
    pub fn tcp_all(&self) -> [u32; 11] {
        std::array::from_fn(|i| self.tcp[i].load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::TcpState::SynAck as SA;
    use super::tcp_flags::*;
    use super::*;

    fn walk(start: TcpState, input_only: bool, seq: &[(Dir, u8)]) -> Vec<TcpState> {
        let mut s = start;
        seq.iter()
            .map(|&(d, f)| {
                s = tcp_next(s, d, input_only, f);
                s
            })
            .collect()
    }

    #[test]
    fn nat_handshake_data_and_client_close() {
        use Dir::*;
        let got = walk(
            TcpState::None,
            false,
            &[
                (In, SYN),
                (Out, SYN | ACK),
                (In, ACK),
                (In, ACK),
                (Out, ACK),
                (In, FIN | ACK),
                (Out, ACK),
                (Out, FIN | ACK),
                (In, ACK),
            ],
        );
        assert_eq!(
            got,
            [SR, SR, ES, ES, ES, CW, CW, TW, TW],
            "SYN -> SYN_RECV, SYN+ACK keeps SYN_RECV, ACK establishes; client FIN -> CLOSE_WAIT, server FIN -> TIME_WAIT"
        );
    }

    #[test]
    fn nat_server_closes_first() {
        use Dir::*;
        let got = walk(
            ES,
            false,
            &[(Out, FIN | ACK), (In, ACK), (In, FIN | ACK), (Out, ACK)],
        );
        assert_eq!(got, [FW, FW, TW, TW]);
    }

    #[test]
    fn dr_input_only_close() {
        use Dir::*;
        let got = walk(
            TcpState::None,
            true,
            &[(In, SYN), (In, ACK), (In, ACK), (In, FIN | ACK), (In, ACK)],
        );
        assert_eq!(got, [SR, ES, ES, FW, FW]);
    }

    #[test]
    fn rst_closes_from_any_established_phase() {
        for dir in [Dir::In, Dir::Out] {
            for s in [ES, FW, CW, SS] {
                let n = tcp_next(s, dir, false, RST);
                if dir == Dir::Out && s == SS {
                    assert_eq!(n, SS, "kernel keeps SYN_SENT on an output RST");
                } else {
                    assert_eq!(n, CL, "{s:?} {dir:?} RST");
                }
            }
        }
        // A RST while SYN_RECV is ignored on input (blind RST defence).
        assert_eq!(tcp_next(SR, Dir::In, false, RST), SR);
    }

    #[test]
    fn simultaneous_close() {
        use Dir::*;
        // Both sides send FIN before seeing the other's.
        let got = walk(
            ES,
            false,
            &[(In, FIN | ACK), (Out, FIN | ACK), (In, ACK), (Out, ACK)],
        );
        assert_eq!(got, [CW, TW, TW, TW]);
    }

    #[test]
    fn rst_beats_syn_and_no_flags_close() {
        assert_eq!(tcp_next(ES, Dir::In, false, SYN | RST), CL);
        assert_eq!(tcp_next(ES, Dir::In, false, 0), CL);
        assert_eq!(
            tcp_next(ES, Dir::In, false, SYN | FIN),
            ES,
            "syn row wins over fin"
        );
    }

    #[test]
    fn active_states_and_timeouts() {
        let active: Vec<_> = TcpState::ALL.iter().filter(|s| s.is_active()).collect();
        assert_eq!(active, [&ES, &SS, &SR, &SA]);
        let t = Timeouts::default();
        assert_eq!(t.get(), (900, 120, 300));
        assert_eq!(t.tcp_ms(TcpState::Close), 10_000);
        t.set(3600, 0, 60);
        assert_eq!(t.get(), (3600, 120, 60));
        assert_eq!(t.tcp_ms(ES), 3_600_000);
        assert_eq!(TcpState::from_u8(200), CL);
        for s in TcpState::ALL {
            assert_eq!(TcpState::from_u8(s as u8), s);
        }
    }
}
