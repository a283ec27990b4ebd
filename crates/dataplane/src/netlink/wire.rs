//! Netlink framing, read by hand: splitting a datagram into messages and
//! reading the kernel's `NLMSG_ERROR` / `NLMSG_DONE` answers, including the
//! extended-ack text (`NLMSGERR_ATTR_MSG`) that says why a request failed.
//!
//! The typed payloads (links, routes, neighbours) are decoded by
//! `netlink-packet-route`; this module only has to be right about the 16-byte
//! header and never panic, whatever the bytes.

/// Length of `struct nlmsghdr`.
pub(super) const HDR_LEN: usize = 16;

pub(super) const NLMSG_NOOP: u16 = 1;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;
pub(super) const NLMSG_OVERRUN: u16 = 4;

/// Set on every message of a dump that raced with a change of the table.
pub(super) const NLM_F_DUMP_INTR: u16 = 0x10;
/// On `NLMSG_ERROR`: the original request's payload was not echoed.
const NLM_F_CAPPED: u16 = 0x100;
/// On `NLMSG_ERROR` / `NLMSG_DONE`: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// Extended-ack attribute: a NUL-terminated error message.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Attribute type bits that are flags (`NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_ne_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// One netlink message inside a datagram.
#[derive(Clone, Copy, Debug)]
pub(super) struct Frame<'a> {
    pub msg_type: u16,
    pub flags: u16,
    pub seq: u32,
    /// The whole message, header included.
    pub bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The bytes after the 16-byte header.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(HDR_LEN..).unwrap_or(&[])
    }
}

/// Iterator over the messages of one datagram. A malformed length ends the
/// iteration with one `Err`.
#[derive(Debug)]
pub(super) struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    pub fn new(datagram: &'a [u8]) -> Self {
        Frames { rest: datagram }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let Some(len) = u32_at(rest, 0) else {
            return Some(Err(format!(
                "{} trailing bytes, shorter than a netlink header",
                rest.len()
            )));
        };
        let len = len as usize;
        if len < HDR_LEN || len > rest.len() {
            return Some(Err(format!(
                "message length {len} outside 16..={}",
                rest.len()
            )));
        }
        let bytes = &rest[..len];
        self.rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(Frame {
            msg_type: u16_at(bytes, 4).unwrap_or(0),
            flags: u16_at(bytes, 6).unwrap_or(0),
            seq: u32_at(bytes, 8).unwrap_or(0),
            bytes,
        }))
    }
}

/// The kernel's verdict in an `NLMSG_ERROR` or `NLMSG_DONE` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Status {
    /// Positive errno; 0 for success (an ACK, or the end of a dump).
    pub errno: i32,
    /// The extended-ack message, if the kernel gave one.
    pub message: Option<String>,
}

fn status(code: i32, tlvs: Option<&[u8]>) -> Status {
    // The kernel sends `-errno`; a positive value is not expected, keep it
    // as is rather than lose it.
    let errno = if code < 0 {
        code.saturating_neg()
    } else {
        code
    };
    Status {
        errno,
        message: tlvs.and_then(|t| tlv_string(t, NLMSGERR_ATTR_MSG)),
    }
}

/// Reads an `NLMSG_ERROR` message: `i32 error`, the request's header (and
/// its payload unless `NLM_F_CAPPED`), then attributes if `NLM_F_ACK_TLVS`.
pub(super) fn parse_error(frame: &Frame<'_>) -> Result<Status, String> {
    let payload = frame.payload();
    let code = u32_at(payload, 0)
        .ok_or_else(|| format!("NLMSG_ERROR payload of {} bytes", payload.len()))?
        as i32;
    let tlvs = if frame.flags & NLM_F_ACK_TLVS != 0 {
        let orig = payload.get(4..).unwrap_or(&[]);
        let orig_len = if frame.flags & NLM_F_CAPPED != 0 {
            HDR_LEN
        } else {
            u32_at(orig, 0).map_or(HDR_LEN, |l| l as usize)
        };
        orig.get(align4(orig_len)..)
    } else {
        None
    };
    Ok(status(code, tlvs))
}

/// Reads an `NLMSG_DONE` message: an optional `i32 error`, then attributes if
/// `NLM_F_ACK_TLVS`.
pub(super) fn parse_done(frame: &Frame<'_>) -> Status {
    let payload = frame.payload();
    let code = u32_at(payload, 0).map_or(0, |c| c as i32);
    let tlvs = (frame.flags & NLM_F_ACK_TLVS != 0).then(|| payload.get(4..).unwrap_or(&[]));
    status(code, tlvs)
}

/// The string value of the first attribute of type `ty` in `tlvs`.
fn tlv_string(mut tlvs: &[u8], ty: u16) -> Option<String> {
    while let (Some(len), Some(t)) = (u16_at(tlvs, 0), u16_at(tlvs, 2)) {
        let len = len as usize;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if t & NLA_TYPE_MASK == ty {
            let value = &tlvs[4..len];
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            return Some(String::from_utf8_lossy(&value[..end]).into_owned());
        }
        tlvs = tlvs.get(align4(len)..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = (HDR_LEN + payload.len()) as u32;
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn tlv(ty: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn splits_a_datagram_with_padding() {
        let mut d = msg(20, 2, 7, &[1, 2, 3]);
        d.extend(msg(NLMSG_DONE, 2, 7, &0i32.to_ne_bytes()));
        let frames: Vec<_> = Frames::new(&d).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].msg_type, 20);
        assert_eq!(frames[0].seq, 7);
        assert_eq!(frames[0].payload(), &[1, 2, 3]);
        assert_eq!(frames[1].msg_type, NLMSG_DONE);
        assert_eq!(parse_done(&frames[1]).errno, 0);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let d = msg(20, 0, 1, &[9; 10]);
        for cut in 1..d.len() {
            let r: Result<Vec<_>, _> = Frames::new(&d[..cut]).collect();
            // 26 bytes of message, padded to 28: cutting the padding is fine.
            if cut >= 26 {
                assert!(r.is_ok(), "cut {cut}");
            } else {
                assert!(r.is_err(), "cut {cut}");
            }
        }
    }

    #[test]
    fn zero_or_huge_length_ends_iteration() {
        let mut d = msg(20, 0, 1, &[]);
        d[0..4].copy_from_slice(&0u32.to_ne_bytes());
        let mut it = Frames::new(&d);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        d[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        let mut it = Frames::new(&d);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn error_with_extack_message_capped() {
        let mut payload = (-22i32).to_ne_bytes().to_vec();
        payload.extend(msg(28, 5, 3, &[])); // the echoed request header
        payload.extend(tlv(NLMSGERR_ATTR_MSG, b"Invalid neighbor\0"));
        let d = msg(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 3, &payload);
        let f = Frames::new(&d).next().unwrap().unwrap();
        let s = parse_error(&f).unwrap();
        assert_eq!(s.errno, 22);
        assert_eq!(s.message.as_deref(), Some("Invalid neighbor"));
    }

    #[test]
    fn error_with_echoed_payload_then_tlvs() {
        let mut payload = (-2i32).to_ne_bytes().to_vec();
        payload.extend(msg(28, 5, 3, &[0xaa; 12]));
        payload.extend(tlv(5, &[1, 2, 3, 4])); // some other attribute first
        payload.extend(tlv(NLMSGERR_ATTR_MSG, b"no such entry\0"));
        let d = msg(NLMSG_ERROR, NLM_F_ACK_TLVS, 3, &payload);
        let f = Frames::new(&d).next().unwrap().unwrap();
        let s = parse_error(&f).unwrap();
        assert_eq!(s.errno, 2);
        assert_eq!(s.message.as_deref(), Some("no such entry"));
    }

    #[test]
    fn ack_and_short_error() {
        let d = msg(NLMSG_ERROR, 0, 1, &0i32.to_ne_bytes());
        let f = Frames::new(&d).next().unwrap().unwrap();
        assert_eq!(
            parse_error(&f).unwrap(),
            Status {
                errno: 0,
                message: None
            }
        );
        let d = msg(NLMSG_ERROR, NLM_F_ACK_TLVS, 1, &[0xff, 0xff]);
        let f = Frames::new(&d).next().unwrap().unwrap();
        assert!(parse_error(&f).is_err());
    }

    #[test]
    fn done_with_error_code() {
        let d = msg(NLMSG_DONE, 2, 1, &(-4i32).to_ne_bytes());
        let f = Frames::new(&d).next().unwrap().unwrap();
        assert_eq!(parse_done(&f).errno, 4);
        let d = msg(NLMSG_DONE, 2, 1, &[]);
        let f = Frames::new(&d).next().unwrap().unwrap();
        assert_eq!(parse_done(&f).errno, 0);
    }

    #[test]
    fn bad_tlvs_do_not_panic() {
        for junk in [
            &[][..],
            &[1],
            &[3, 0, 1, 0],
            &[200, 0, 1, 0, 0],
            &[8, 0, 1, 0, b'x'],
        ] {
            let _ = tlv_string(junk, NLMSGERR_ATTR_MSG);
        }
        assert_eq!(tlv_string(&tlv(1, b"abc"), 1).as_deref(), Some("abc"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for f in Frames::new(&bytes).flatten() {
                let _ = parse_error(&f);
                let _ = parse_done(&f);
                let _ = f.payload();
            }
        }
    }
}
