//! Config parsing: `Config::from_toml` answers any text with a config or an error, never a
//! panic (the server reads the file before it logs anything, so a panic there would be a
//! crash with no explanation); and a config it accepts is one the server can run with:
//! its durations can be used the way the server uses them without overflowing.
#![no_main]

use hubbub_server::Config;
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    // What a running server asks of a config, with arbitrary channels and origins.
    let _ = config.namespace(text);
    let _ = config.origin_allowed(text);
    let _ = config.ip_allowed(std::net::IpAddr::from([127, 0, 0, 1]));
    let _ = config.authenticator();
    // connection.rs: a connection's write timeout is two ping intervals.
    assert!(
        config.ping_interval.checked_mul(2).is_some(),
        "ping_interval {:?} accepted, but twice it overflows",
        config.ping_interval
    );
    // The memory broker: a stream expires history_ttl after its last publication.
    let now = Instant::now();
    for ns in &config.namespaces {
        assert!(
            now.checked_add(ns.stream.history_ttl).is_some(),
            "history_ttl {:?} accepted, but now + it overflows",
            ns.stream.history_ttl
        );
    }
});
