//! Config parsing: `Config::from_toml` answers any text with a config or an error, never a
//! panic (the server reads the file before it logs anything, so a panic there would be a
//! crash with no explanation).
#![no_main]

use hubbub_server::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_toml(text) {
        // What a running server asks of a config, with arbitrary channels and origins.
        let _ = config.namespace(text);
        let _ = config.origin_allowed(text);
        let _ = config.ip_allowed(std::net::IpAddr::from([127, 0, 0, 1]));
        let _ = config.authenticator();
    }
});
