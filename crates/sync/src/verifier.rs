//! [`Verifier`]: the backup's checks on each datagram — sync group, MAC,
//! format, freshness, and a per-sender anti-replay window.

use crate::key::Key;
use crate::wire::{self, Datagram, Header, WireError};

/// Sequence numbers a sender's window spans: a datagram up to this many
/// behind the newest one accepted from its sender is still taken (once).
///
/// IPsec's default (RFC 4303) is 64, for links that reorder little; sync
/// bursts of a busy master can put hundreds of datagrams in flight through
/// socket buffers, so the window is wider. It costs 128 bytes per sender.
pub const REPLAY_WINDOW: u64 = 1024;

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;
const _: () = assert!(REPLAY_WINDOW.is_multiple_of(64));

/// Default bound on tracked senders ([`VerifierConfig::max_senders`]).
pub const DEFAULT_MAX_SENDERS: usize = 16;

/// Default tolerance between the sender's timestamp and the receiver's
/// clock ([`VerifierConfig::max_skew_ms`]): one minute.
pub const DEFAULT_MAX_SKEW_MS: u64 = 60_000;

/// What a [`Verifier`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Sync group to accept; 0 accepts every group (as IPVS's backup does).
    pub syncid: u8,
    /// How many senders' windows are kept; when a new sender comes and the
    /// table is full, the one heard from least recently is forgotten. At
    /// least 1.
    pub max_senders: usize,
    /// Drop datagrams whose timestamp is further than this from the
    /// receiver's clock, in either direction; `None` disables the check.
    ///
    /// The window cannot protect a sender it has forgotten (evicted, or
    /// from before the backup started): a recorded datagram of such a sender
    /// would look new. The timestamp bounds how old such a replay can be.
    /// Needs the directors' clocks within this of each other (NTP).
    pub max_skew_ms: Option<u64>,
}

impl Default for VerifierConfig {
    fn default() -> VerifierConfig {
        VerifierConfig {
            syncid: 0,
            max_senders: DEFAULT_MAX_SENDERS,
            max_skew_ms: Some(DEFAULT_MAX_SKEW_MS),
        }
    }
}

/// Receiver counters. Every datagram given to [`Verifier::verify`] counts
/// in `received` and in exactly one of `accepted`, `malformed`, `bad_mac`,
/// `wrong_syncid`, `stale`, `replayed`, `too_old`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecvStats {
    /// Datagrams seen.
    pub received: u64,
    /// Datagrams accepted.
    pub accepted: u64,
    /// Entries in the accepted datagrams.
    pub entries: u64,
    /// Too short, not ours (magic), unknown version, or (after the MAC) a
    /// bad entry or count.
    pub malformed: u64,
    /// MAC mismatch: forged, corrupted, or another key.
    pub bad_mac: u64,
    /// Another sync group's (checked before the MAC: other clusters on the
    /// same multicast group usually have other keys and are not forgeries).
    pub wrong_syncid: u64,
    /// Timestamp outside [`VerifierConfig::max_skew_ms`].
    pub stale: u64,
    /// Sequence number already accepted from this sender.
    pub replayed: u64,
    /// Sequence number behind the sender's window.
    pub too_old: u64,
    /// Senders heard from for the first time (a master started).
    pub new_senders: u64,
    /// Senders forgotten to make room ([`VerifierConfig::max_senders`]).
    pub evicted_senders: u64,
}

/// Why [`Verifier::verify`] dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// Malformed or bad MAC ([`WireError::BadMac`]).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Another sync group.
    #[error("sync id {syncid}, not ours")]
    WrongSyncid {
        /// The datagram's sync id.
        syncid: u8,
    },
    /// Timestamp too far from the receiver's clock.
    #[error("timestamp {timestamp_ms} ms is too far from our clock {now_ms} ms")]
    Stale {
        /// The datagram's timestamp.
        timestamp_ms: u64,
        /// The receiver's clock.
        now_ms: u64,
    },
    /// Already accepted.
    #[error("replay of sequence {seq} from sender {sender:08x}")]
    Replayed {
        /// Sender id.
        sender: u32,
        /// Sequence number.
        seq: u64,
    },
    /// Behind the sender's window.
    #[error("sequence {seq} from sender {sender:08x} is older than the replay window")]
    TooOld {
        /// Sender id.
        sender: u32,
        /// Sequence number.
        seq: u64,
    },
}

/// One sender's anti-replay state: the highest sequence number accepted
/// and a bitmap of which of the [`REPLAY_WINDOW`] numbers up to it were seen
/// (bit `seq % REPLAY_WINDOW`), as in RFC 4303 section 3.4.3 / RFC 6479.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    sender: u32,
    top: u64,
    bits: [u64; WORDS],
    /// Verifier tick of the last accepted datagram (LRU eviction).
    last_used: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    New,
    Replayed,
    TooOld,
}

impl Window {
    /// The window of a sender first heard with `seq`.
    pub(crate) fn new(sender: u32, seq: u64) -> Window {
        Window {
            sender,
            top: seq,
            bits: [0; WORDS],
            last_used: 0,
        }
    }

    #[inline]
    fn slot(seq: u64) -> (usize, u64) {
        let i = (seq % REPLAY_WINDOW) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    pub(crate) fn check(&self, seq: u64) -> Seen {
        if seq > self.top {
            return Seen::New;
        }
        if self.top - seq >= REPLAY_WINDOW {
            return Seen::TooOld;
        }
        let (w, b) = Window::slot(seq);
        if self.bits[w] & b != 0 {
            Seen::Replayed
        } else {
            Seen::New
        }
    }

    /// Records `seq` (which [`Window::check`] found new).
    pub(crate) fn accept(&mut self, seq: u64) {
        if seq > self.top {
            let ahead = seq - self.top;
            if ahead >= REPLAY_WINDOW {
                self.bits = [0; WORDS];
            } else {
                // The slots of the numbers skipped over held numbers now
                // out of the window.
                for s in self.top + 1..seq {
                    let (w, b) = Window::slot(s);
                    self.bits[w] &= !b;
                }
            }
            self.top = seq;
        }
        let (w, b) = Window::slot(seq);
        self.bits[w] |= b;
    }
}

/// The receiving side's checks, without I/O: give it each datagram and the
/// wall clock; it returns the checked datagram or why it was dropped, and
/// counts both ([`RecvStats`]).
///
/// Order: header sanity (length, magic, version) → sync id → MAC → entries
/// → timestamp → replay window. Only a datagram that passes everything
/// moves its sender's window, so a forgery cannot advance it.
///
/// ```
/// use xvs_sync::{Encoder, Key, Verifier, VerifierConfig, SyncConn};
/// use xvs_conntrack::{Addr, Fwd, Proto, TcpState};
///
/// let key = Key::from_bytes(b"a secret of sixteen bytes or more").unwrap();
/// let mut enc = Encoder::new(key.clone(), 0, 1452, 42);
/// let mut ver = Verifier::new(key, VerifierConfig::default());
/// let c = SyncConn {
///     proto: Proto::Tcp,
///     caddr: Addr::v4([198, 51, 100, 7]), cport: 40000,
///     vaddr: Addr::v4([192, 0, 2, 1]), vport: 80,
///     daddr: Addr::v4([10, 0, 0, 2]), dport: 80,
///     fwd: Fwd::Route, state: TcpState::Established,
///     flags: 0, timeout_ms: 900_000, fwmark: 0,
/// };
/// let now = 1_700_000_000_000;
/// assert!(enc.push(&c, now).is_none());
/// let dgram = enc.finish(now).unwrap().to_vec();
/// let got: Vec<SyncConn> = ver.verify(&dgram, now).unwrap().entries().collect();
/// assert_eq!(got, [c]);
/// assert!(ver.verify(&dgram, now).is_err(), "a replay is dropped");
/// assert_eq!(ver.stats().replayed, 1);
/// ```
#[derive(Clone)]
pub struct Verifier {
    key: Key,
    cfg: VerifierConfig,
    senders: Vec<Window>,
    tick: u64,
    stats: RecvStats,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("key", &self.key)
            .field("cfg", &self.cfg)
            .field("senders", &self.senders.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with no sender known yet.
    pub fn new(key: Key, cfg: VerifierConfig) -> Verifier {
        let cfg = VerifierConfig {
            max_senders: cfg.max_senders.max(1),
            ..cfg
        };
        Verifier {
            key,
            cfg,
            senders: Vec::with_capacity(cfg.max_senders.min(64)),
            tick: 0,
            stats: RecvStats::default(),
        }
    }

    /// Checks one datagram received at `now_ms` (wall clock, ms since the
    /// Unix epoch). On success the sender's window has recorded it and the
    /// entries can be applied.
    pub fn verify<'a>(&mut self, bytes: &'a [u8], now_ms: u64) -> Result<Datagram<'a>, Reject> {
        self.stats.received += 1;
        let r = self.check(bytes, now_ms);
        match &r {
            Ok(d) => {
                self.stats.accepted += 1;
                self.stats.entries += u64::from(d.header().count);
            }
            Err(Reject::Wire(WireError::BadMac)) => self.stats.bad_mac += 1,
            Err(Reject::Wire(_)) => self.stats.malformed += 1,
            Err(Reject::WrongSyncid { .. }) => self.stats.wrong_syncid += 1,
            Err(Reject::Stale { .. }) => self.stats.stale += 1,
            Err(Reject::Replayed { .. }) => self.stats.replayed += 1,
            Err(Reject::TooOld { .. }) => self.stats.too_old += 1,
        }
        r
    }

    fn check<'a>(&mut self, bytes: &'a [u8], now_ms: u64) -> Result<Datagram<'a>, Reject> {
        let Header { syncid, .. } = Header::peek(bytes)?;
        if self.cfg.syncid != 0 && syncid != self.cfg.syncid {
            return Err(Reject::WrongSyncid { syncid });
        }
        let d = wire::open(bytes, &self.key)?;
        let h = *d.header();
        if let Some(skew) = self.cfg.max_skew_ms {
            if h.timestamp_ms.abs_diff(now_ms) > skew {
                return Err(Reject::Stale {
                    timestamp_ms: h.timestamp_ms,
                    now_ms,
                });
            }
        }
        let idx = self.senders.iter().position(|w| w.sender == h.sender);
        let seen = idx.map_or(Seen::New, |i| self.senders[i].check(h.seq));
        match seen {
            Seen::Replayed => {
                return Err(Reject::Replayed {
                    sender: h.sender,
                    seq: h.seq,
                });
            }
            Seen::TooOld => {
                return Err(Reject::TooOld {
                    sender: h.sender,
                    seq: h.seq,
                });
            }
            Seen::New => {}
        }
        let i = match idx {
            Some(i) => i,
            None => self.add_sender(h.sender, h.seq),
        };
        self.tick += 1;
        let w = &mut self.senders[i];
        w.accept(h.seq);
        w.last_used = self.tick;
        Ok(d)
    }

    /// Makes room if needed and adds an empty window; returns its index.
    fn add_sender(&mut self, sender: u32, seq: u64) -> usize {
        self.stats.new_senders += 1;
        if self.senders.len() >= self.cfg.max_senders {
            let oldest = self
                .senders
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| w.last_used)
                .map_or(0, |(i, _)| i);
            self.senders.swap_remove(oldest);
            self.stats.evicted_senders += 1;
        }
        self.senders.push(Window::new(sender, seq));
        self.senders.len() - 1
    }

    /// Counters.
    #[inline]
    pub fn stats(&self) -> &RecvStats {
        &self.stats
    }

    /// The configuration (with `max_senders` at least 1).
    #[inline]
    pub fn config(&self) -> &VerifierConfig {
        &self.cfg
    }

    /// The senders tracked: id and highest sequence number accepted, most
    /// recently heard first.
    pub fn senders(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<_> = self
            .senders
            .iter()
            .map(|w| (w.last_used, w.sender, w.top))
            .collect();
        v.sort_unstable_by_key(|w| std::cmp::Reverse(w.0));
        v.into_iter().map(|(_, s, t)| (s, t)).collect()
    }
}
