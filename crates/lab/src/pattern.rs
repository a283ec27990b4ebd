//! The deterministic content of `GET /bytes/N`.
//!
//! Byte `p` of every transfer is byte `p % 8` (little-endian) of
//! `splitmix64(p / 8)`: it depends on the absolute position, so a client
//! can verify any received range, and a lost, duplicated or reordered
//! segment shows up as a mismatch (the sequence has no short period).

/// SplitMix64 finaliser (Steele, Lea, Flood 2014).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The byte at absolute position `pos`.
pub fn byte_at(pos: u64) -> u8 {
    splitmix64(pos / 8).to_le_bytes()[(pos % 8) as usize]
}

/// Fills `buf` with the pattern bytes `offset .. offset + buf.len()`.
pub fn fill(offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let block = splitmix64(pos / 8).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&block[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

/// Position of the first byte of `buf` (received starting at `offset`)
/// that differs from the pattern; `None` if all match.
pub fn first_mismatch(offset: u64, buf: &[u8]) -> Option<u64> {
    let mut expect = [0u8; 4096];
    let mut done = 0usize;
    while done < buf.len() {
        let n = (buf.len() - done).min(expect.len());
        let pos = offset + done as u64;
        fill(pos, &mut expect[..n]);
        if let Some(i) = (0..n).find(|&i| expect[i] != buf[done + i]) {
            return Some(pos + i as u64);
        }
        done += n;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_matches_byte_at_from_any_offset() {
        for offset in [0u64, 1, 7, 8, 9, 4095, 1 << 33] {
            let mut buf = vec![0u8; 100];
            fill(offset, &mut buf);
            for (i, b) in buf.iter().enumerate() {
                assert_eq!(*b, byte_at(offset + i as u64), "offset {offset} i {i}");
            }
            assert_eq!(first_mismatch(offset, &buf), None);
        }
    }

    #[test]
    fn mismatch_found_at_its_position() {
        let mut buf = vec![0u8; 10_000];
        fill(3, &mut buf);
        buf[5000] ^= 1;
        assert_eq!(first_mismatch(3, &buf), Some(5003));
        // A shifted stream (one byte lost) is caught at once.
        assert_eq!(first_mismatch(3, &buf[1..]), Some(3));
    }

    #[test]
    fn fixed_prefix() {
        // Pinned so that a change of the pattern is a visible decision:
        // clients in other crates or scripts may check it.
        let mut buf = [0u8; 8];
        fill(0, &mut buf);
        assert_eq!(buf, splitmix64(0).to_le_bytes());
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }
}
