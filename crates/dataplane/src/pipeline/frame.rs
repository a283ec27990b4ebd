//! A frame in a buffer with headroom.

/// A packet inside a larger buffer (an AF_XDP UMEM frame, or a test
/// buffer): the bytes `start..start + len`. The bytes before `start` are
/// headroom, where a tunnel header or an ICMP reply's headers are written
/// without moving the packet; the bytes after the packet are tailroom.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
}

impl<'a> Frame<'a> {
    /// The packet `buf[start..start + len]`, both clamped to `buf`.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Frame<'a> {
        let start = start.min(buf.len());
        let len = len.min(buf.len() - start);
        Frame { buf, start, len }
    }

    /// The packet bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The packet bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Offset of the packet in the buffer.
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }

    /// Packet length.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the packet is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes available in front of the packet.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Moves the start of the packet `n` bytes back into the headroom (the
    /// new bytes hold whatever the buffer held). False, and nothing done,
    /// when the headroom is too small.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        self.len += n;
        true
    }

    /// Sets the packet length, up to the end of the buffer. False, and
    /// nothing done, when it does not fit.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        if len > self.buf.len() - self.start {
            return false;
        }
        self.len = len;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_and_length_are_bounded() {
        let mut buf = [0u8; 64];
        let mut f = Frame::new(&mut buf, 16, 100);
        assert_eq!((f.start(), f.len(), f.headroom()), (16, 48, 16));
        assert!(!f.push_front(17));
        assert!(f.push_front(16));
        assert_eq!((f.start(), f.len()), (0, 64));
        assert!(!f.set_len(65));
        assert!(f.set_len(10));
        assert_eq!(f.data().len(), 10);
        let f = Frame::new(&mut buf, 100, 1);
        assert!(f.is_empty());
    }
}
