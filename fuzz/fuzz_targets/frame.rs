//! The client frame parser: `Command::parse` on any text never panics, and whatever it
//! accepts survives a round trip through its own JSON unchanged.
#![no_main]

use hubbub_core::protocol::{check_depth, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(command) = Command::parse(text) else {
        return;
    };
    // Anything accepted passed the depth check.
    assert!(check_depth(text.as_bytes()).is_ok());
    // An unknown command has no JSON of its own (the server only names it in an error).
    if matches!(command, Command::Unknown(_)) {
        return;
    }
    let json = command.to_json();
    let again = Command::parse(&json)
        .unwrap_or_else(|e| panic!("{text:?} parsed, but its JSON {json:?} did not: {e:?}"));
    assert_eq!(command, again, "round trip of {text:?} through {json:?}");
    assert_eq!(json, again.to_json());
});
