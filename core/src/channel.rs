//! Channel names.
//!
//! A channel name is 1 to 255 characters from `A-Z a-z 0-9 _ - : . @ / = +`. Anything else
//! is refused with `INVALID_PAYLOAD`, so a name can be logged, put in a URL path or used as
//! a Redis key without escaping.

use crate::error::{Error, Rejection};

/// The longest channel name, in bytes (every allowed character is one byte).
pub const MAX_CHANNEL_LEN: usize = 255;

/// Whether `c` may appear in a channel name.
pub fn is_channel_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b':' | b'.' | b'@' | b'/' | b'=' | b'+')
}

/// Checks a channel name against the protocol's rules.
pub fn validate(name: &str) -> Result<(), Rejection> {
    if name.is_empty() {
        return Err(Error::InvalidPayload.because("channel name is empty"));
    }
    if name.len() > MAX_CHANNEL_LEN {
        return Err(Error::InvalidPayload.because("channel name is longer than 255 characters"));
    }
    if let Some(bad) = name.bytes().find(|&b| !is_channel_char(b)) {
        let shown = if bad.is_ascii_graphic() || bad == b' ' {
            format!("{:?}", bad as char)
        } else {
            format!("byte 0x{bad:02x}")
        };
        return Err(Error::InvalidPayload.because(format!(
            "channel name holds {shown}; allowed are A-Z a-z 0-9 _ - : . @ / = +"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        for ok in [
            "a",
            "room:1",
            "user@example.com/inbox",
            "A-Z_a.z=0+9",
            &"x".repeat(255),
        ] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "a b",
            "room*",
            "é",
            "a\nb",
            "a#b",
            "a?b",
            &"x".repeat(256),
        ] {
            let err = validate(bad).unwrap_err();
            assert_eq!(err.error, Error::InvalidPayload, "{bad:?}");
            assert!(err.reason.is_some());
        }
    }
}
