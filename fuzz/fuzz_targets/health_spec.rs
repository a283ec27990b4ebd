//! The health checks' text forms (`xvs_health::{Check, Timing,
//! ServicePolicy, Feedback}::parse`, the `--check`, `--check-timing`,
//! `--check-policy` and `--feedback` options) and the feedback agent's
//! reply parser (`feedback::parse_reply`, fed by the real servers), on
//! arbitrary text.
//!
//! Invariants: never panics; an accepted value validates (where the type
//! has `validate`); its `Display` parses back to the same value; it
//! survives the admin protocol's JSON; an agent reply's canonical words
//! parse back to the same reply (unless it says nothing: only ignored
//! words such as `maxconn:N` and a comment, which the agent ignores).
#![no_main]

use std::fmt::Display;
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};
use xvs_health::feedback::parse_reply;
use xvs_health::{Check, Feedback, ServicePolicy, Timing};

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = parse_reply(data) {
        let words = reply.to_string();
        let says_nothing = (reply.capacity, reply.health, reply.admin) == (None, None, None);
        if !says_nothing {
            let back = parse_reply(words.as_bytes());
            assert_eq!(back.as_ref(), Ok(&reply), "{words:?}");
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(c) = round_trip::<Check>(text) {
        c.validate().expect("an accepted check validates");
    }
    if let Some(t) = round_trip::<Timing>(text) {
        t.validate().expect("an accepted timing validates");
    }
    round_trip::<ServicePolicy>(text);
    round_trip::<Feedback>(text);
});

/// Parses `text` as a `T`; when accepted, checks the `Display` and JSON
/// round trips and returns the value.
fn round_trip<T>(text: &str) -> Option<T>
where
    T: FromStr + Display + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned,
    T::Err: std::fmt::Debug,
{
    let v = T::from_str(text).ok()?;
    let shown = v.to_string();
    match T::from_str(&shown) {
        Ok(back) => assert_eq!(back, v, "{text:?} displayed as {shown:?}"),
        Err(e) => panic!("{text:?} displayed as {shown:?}, which does not parse: {e:?}"),
    }
    let json = serde_json::to_string(&v).expect("serialises");
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(back, v, "JSON {json}");
    Some(v)
}
