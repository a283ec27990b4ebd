//! The layout of a `pipeline` input: a configuration byte, then records of
//! one frame each, so one input drives a sequence of frames through the
//! same connection table.
//!
//! ```text
//! input:   cfg (1) | record | record | ...
//! record:  ctl (1) | len (2, big-endian) | frame (len bytes; fewer if the input ends)
//!
//! cfg      bit 0  sloppy_tcp
//!          bit 1  the sync tap is on (connections are offered to a sync master)
//! ctl      bit 0  receiving interface: 0 outside (clients), 1 inside (real servers)
//!          bit 1  run the table's expiry before the frame
//!          bits 2-7  n: the clock moves n^3 * 100 ms forward before the frame
//!                 (0 to 7 hours: connection and template timeouts are reached)
//! ```
//!
//! A record cut short by the end of the input keeps the bytes that are
//! there; a trailing control byte without a length is ignored.

/// What one record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The control byte.
    pub ctl: u8,
    /// The frame.
    pub frame: &'a [u8],
}

impl Record<'_> {
    /// The receiving interface (index into the director's interfaces).
    pub fn rx_iface(&self) -> u8 {
        self.ctl & 1
    }

    /// Whether the table's expiry runs before the frame.
    pub fn expire(&self) -> bool {
        self.ctl & 2 != 0
    }

    /// How far the clock moves before the frame, in milliseconds.
    pub fn advance_ms(&self) -> u64 {
        u64::from(self.ctl >> 2).pow(3) * 100
    }
}

/// The configuration byte's `sloppy_tcp` bit.
pub const CFG_SLOPPY_TCP: u8 = 1;
/// The configuration byte's sync tap bit.
pub const CFG_SYNC: u8 = 2;

/// Splits an input into its configuration byte and its records.
pub fn split(data: &[u8]) -> (u8, Records<'_>) {
    match data.split_first() {
        Some((&cfg, rest)) => (cfg, Records { rest }),
        None => (0, Records { rest: &[] }),
    }
}

/// Iterator over the records of an input.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let [ctl, hi, lo, rest @ ..] = self.rest else {
            self.rest = &[];
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (frame, rest) = rest.split_at(len);
        self.rest = rest;
        Some(Record { ctl: *ctl, frame })
    }
}

/// An input of configuration `cfg` and `records` (control byte, frame):
/// the inverse of [`split`], for the seed corpus and tests.
pub fn encode(cfg: u8, records: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = vec![cfg];
    for (ctl, frame) in records {
        let len = u16::try_from(frame.len()).unwrap_or(u16::MAX);
        out.push(*ctl);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&frame[..usize::from(len)]);
    }
    out
}

/// A control byte: receiving interface `rx`, the clock `n^3 * 100` ms
/// forward (`n` below 64), expiry run first when `expire`.
pub const fn ctl(rx: u8, n: u8, expire: bool) -> u8 {
    (rx & 1) | if expire { 2 } else { 0 } | (n << 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let a = [1u8, 2, 3];
        let b = [9u8; 300];
        let data = encode(3, &[(ctl(1, 5, true), &a), (0, &b), (4, &[])]);
        let (cfg, recs) = split(&data);
        assert_eq!(cfg, 3);
        let recs: Vec<_> = recs.collect();
        assert_eq!(recs.len(), 3);
        assert_eq!((recs[0].rx_iface(), recs[0].expire()), (1, true));
        assert_eq!(recs[0].advance_ms(), 125 * 100);
        assert_eq!(
            (recs[0].frame, recs[1].frame, recs[2].frame),
            (&a[..], &b[..], &[][..])
        );
        // Cut short: the bytes that are there.
        let (_, recs) = split(&data[..data.len() - 3 - 100]);
        let recs: Vec<_> = recs.collect();
        assert_eq!(recs[1].frame.len(), 200);
    }
}
