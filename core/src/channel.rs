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
        // Written without `format!`: the browser client links this function, and core's
        // formatting machinery would weigh more there than the rule itself.
        let mut reason = String::from("channel name holds ");
        if bad.is_ascii_graphic() || bad == b' ' {
            // As `{:?}` shows a char: quoted, with `'` and `\` escaped.
            reason.push('\'');
            if bad == b'\'' || bad == b'\\' {
                reason.push('\\');
            }
            reason.push(bad as char);
            reason.push('\'');
        } else {
            reason.push_str("byte 0x");
            for digit in [bad >> 4, bad & 0xf] {
                reason.push(char::from_digit(digit.into(), 16).unwrap_or('0'));
            }
        }
        reason.push_str("; allowed are A-Z a-z 0-9 _ - : . @ / = +");
        return Err(Error::InvalidPayload.because(reason));
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

    #[test]
    fn names_the_offending_character_or_byte() {
        for bad in [b' ', b'*', b'\'', b'\\', b'"', b'#', b'\n', 0x7f, 0xc3] {
            let name = String::from_utf8_lossy(&[b'a', bad]).into_owned();
            let shown = if bad.is_ascii_graphic() || bad == b' ' {
                format!("{:?}", bad as char)
            } else {
                format!("byte 0x{:02x}", name.as_bytes()[1])
            };
            let reason = validate(&name).unwrap_err().reason.unwrap();
            assert_eq!(
                reason,
                format!("channel name holds {shown}; allowed are A-Z a-z 0-9 _ - : . @ / = +")
            );
        }
    }
}
