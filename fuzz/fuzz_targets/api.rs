//! The HTTP API bodies and the server frame parser. The first byte picks the reader:
//! `Request::from_body` for each request type never panics, and what it accepts keeps its
//! meaning through its own JSON; `ServerFrame::parse` (what every client does with every
//! frame) never panics, and round-trips what it accepts.
#![no_main]

use hubbub_core::api::{
    BroadcastRequest, DirectRequest, DisconnectRequest, PublishRequest, Request,
};
use hubbub_core::channel;
use hubbub_core::protocol::{check_depth, ServerFrame};
use libfuzzer_sys::fuzz_target;
use std::fmt::Debug;

/// Accepted bodies are within the depth limit, and their own JSON reads back the same.
fn round_trip<R: Request + serde::Serialize + PartialEq + Debug>(body: &[u8]) -> Option<R> {
    let request = R::from_body(body).ok()?;
    assert!(check_depth(body).is_ok());
    let json = serde_json::to_vec(&request).expect("requests serialize");
    let again = R::from_body(&json).unwrap_or_else(|e| {
        panic!(
            "{:?} was accepted, its JSON {:?} was not: {e:?}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(request, again);
    Some(request)
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Some(r) = round_trip::<PublishRequest>(body) {
                assert!(channel::validate(&r.channel).is_ok());
            }
        }
        1 => {
            if let Some(r) = round_trip::<BroadcastRequest>(body) {
                assert!(!r.channels.is_empty());
                assert!(r.channels.iter().all(|c| channel::validate(c).is_ok()));
            }
        }
        2 => {
            if let Some(r) = round_trip::<DirectRequest>(body) {
                let _ = r.target();
            }
        }
        3 => {
            if let Some(r) = round_trip::<DisconnectRequest>(body) {
                let _ = r.target();
            }
        }
        _ => {
            let Ok(text) = std::str::from_utf8(body) else {
                return;
            };
            let Ok(frame) = ServerFrame::parse(text) else {
                return;
            };
            let json = frame.to_json();
            let again = ServerFrame::parse(&json)
                .unwrap_or_else(|e| panic!("{text:?} parsed, its JSON {json:?} did not: {e:?}"));
            assert_eq!(frame, again, "round trip of {text:?} through {json:?}");
        }
    }
});
