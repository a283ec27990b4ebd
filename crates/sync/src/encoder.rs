//! [`Encoder`]: batches entries into sealed datagrams on the master.

use crate::conn::SyncConn;
use crate::key::Key;
use crate::wire::{
    self, ENTRY_V4_LEN, ENTRY_V6_LEN, HEADER_LEN, Header, MAC_LEN, MAX_DATAGRAM_LEN, MIN_MAXLEN,
    OVERHEAD,
};

/// What an encoder has produced so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Datagrams sealed.
    pub datagrams: u64,
    /// Entries in them.
    pub entries: u64,
    /// Their bytes (UDP payload).
    pub bytes: u64,
}

/// Packs entries into datagrams of at most `maxlen` bytes, each with its
/// header, its sequence number and its MAC.
///
/// The caller [`push`](Encoder::push)es entries; when one does not fit in
/// the datagram being filled, that datagram is sealed and handed back, and
/// the entry starts the next one. [`finish`](Encoder::finish) seals a
/// partly filled datagram: call it when the batch at hand is done or a short
/// delay has passed (IPVS sends a buffer after at most one second; a
/// backup's view is only as fresh as the last datagram sent).
///
/// Cost: two buffers of `maxlen` bytes allocated at construction, nothing
/// per entry or per datagram; a push copies about 32 bytes, a seal computes
/// one HMAC-SHA256 over the datagram with the pre-keyed state.
///
/// Time is an argument (`now_ms`: wall clock, ms since the Unix epoch, the
/// datagram's timestamp), so tests control it.
///
/// ```
/// use xvs_sync::{Encoder, Key, wire};
/// let key = Key::from_bytes(b"a secret of sixteen bytes or more").unwrap();
/// let mut enc = Encoder::new(key, 7, wire::DEFAULT_MAXLEN, 0x1234_5678);
/// assert_eq!(enc.finish(1_700_000_000_000), None, "nothing pending");
/// assert_eq!(Encoder::per_datagram(wire::DEFAULT_MAXLEN, false), 44);
/// ```
pub struct Encoder {
    key: Key,
    syncid: u8,
    sender: u32,
    pub(crate) seq: u64,
    maxlen: usize,
    /// The datagram being filled: header space, then `cur_len - HEADER_LEN`
    /// bytes of entries.
    cur: Box<[u8]>,
    cur_len: usize,
    cur_count: u16,
    /// The last sealed datagram, `done_len` bytes, lent to the caller.
    done: Box<[u8]>,
    done_len: usize,
    stats: EncoderStats,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("syncid", &self.syncid)
            .field("sender", &format_args!("{:08x}", self.sender))
            .field("seq", &self.seq)
            .field("maxlen", &self.maxlen)
            .field("pending", &self.cur_count)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder for sync group `syncid` with sender id `sender_id`,
    /// sequence numbers from 0. `maxlen` is clamped to
    /// [`MIN_MAXLEN`]..=[`MAX_DATAGRAM_LEN`] (a limit below one IPv6 entry
    /// could send nothing; ipvsadm accepts `--sync-maxlen` from 1).
    ///
    /// The sender id must be new each time a sender starts (its sequence
    /// starts again from 0): use [`Encoder::with_random_id`] outside tests.
    pub fn new(key: Key, syncid: u8, maxlen: usize, sender_id: u32) -> Encoder {
        let maxlen = maxlen.clamp(MIN_MAXLEN, MAX_DATAGRAM_LEN);
        Encoder {
            key,
            syncid,
            sender: sender_id,
            seq: 0,
            maxlen,
            cur: vec![0; maxlen].into_boxed_slice(),
            cur_len: HEADER_LEN,
            cur_count: 0,
            done: vec![0; maxlen].into_boxed_slice(),
            done_len: 0,
            stats: EncoderStats::default(),
        }
    }

    /// [`Encoder::new`] with a sender id from the operating system's random
    /// generator.
    pub fn with_random_id(key: Key, syncid: u8, maxlen: usize) -> std::io::Result<Encoder> {
        Ok(Encoder::new(key, syncid, maxlen, random_sender_id()?))
    }

    /// How many entries of one family a datagram of `maxlen` holds (after
    /// the same clamping as [`Encoder::new`]).
    pub fn per_datagram(maxlen: usize, v6: bool) -> usize {
        let maxlen = maxlen.clamp(MIN_MAXLEN, MAX_DATAGRAM_LEN);
        (maxlen - OVERHEAD) / if v6 { ENTRY_V6_LEN } else { ENTRY_V4_LEN }
    }

    /// Adds an entry. Returns the datagram sealed to make room for it, if
    /// the current one was full; the slice is valid until the next call.
    #[inline]
    pub fn push(&mut self, c: &SyncConn, now_ms: u64) -> Option<&[u8]> {
        let len = wire::entry_len(c);
        let sealed = if self.cur_len + len + MAC_LEN > self.maxlen {
            self.seal(now_ms);
            true
        } else {
            false
        };
        // `maxlen >= MIN_MAXLEN` leaves room for any entry in an empty
        // datagram, so this writes.
        if let Some(n) = wire::encode_entry(c, &mut self.cur[self.cur_len..]) {
            self.cur_len += n;
            self.cur_count += 1;
        }
        if sealed {
            Some(&self.done[..self.done_len])
        } else {
            None
        }
    }

    /// Seals the current datagram, if it holds any entry, and returns it;
    /// the slice is valid until the next call.
    pub fn finish(&mut self, now_ms: u64) -> Option<&[u8]> {
        if self.cur_count == 0 {
            return None;
        }
        self.seal(now_ms);
        Some(&self.done[..self.done_len])
    }

    /// Entries waiting in the unsealed datagram.
    #[inline]
    pub fn pending(&self) -> usize {
        usize::from(self.cur_count)
    }

    /// This sender's id.
    #[inline]
    pub fn sender_id(&self) -> u32 {
        self.sender
    }

    /// The sequence number the next datagram will carry.
    #[inline]
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// The sync group id written in every header.
    #[inline]
    pub fn syncid(&self) -> u8 {
        self.syncid
    }

    /// The datagram limit in use (after clamping).
    #[inline]
    pub fn maxlen(&self) -> usize {
        self.maxlen
    }

    /// Counters.
    #[inline]
    pub fn stats(&self) -> &EncoderStats {
        &self.stats
    }

    /// Writes the header and the MAC of the current datagram, makes it the
    /// `done` one and starts an empty one.
    fn seal(&mut self, now_ms: u64) {
        let header = Header {
            syncid: self.syncid,
            count: self.cur_count,
            sender: self.sender,
            seq: self.seq,
            timestamp_ms: now_ms,
        };
        if let Some(h) = self.cur.first_chunk_mut::<HEADER_LEN>() {
            header.write(h);
        }
        let len = self.cur_len + MAC_LEN;
        // `cur_len + MAC_LEN <= maxlen` is kept by `push`, and `len >= OVERHEAD`.
        let _ = wire::seal(&mut self.cur[..len], &self.key);
        std::mem::swap(&mut self.cur, &mut self.done);
        self.done_len = len;
        self.stats.datagrams += 1;
        self.stats.entries += u64::from(self.cur_count);
        self.stats.bytes += len as u64;
        self.seq += 1;
        self.cur_len = HEADER_LEN;
        self.cur_count = 0;
    }
}

/// A random sender id from the operating system's generator.
pub fn random_sender_id() -> std::io::Result<u32> {
    getrandom::u32().map_err(std::io::Error::other)
}
