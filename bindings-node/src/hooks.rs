//! `verifyHook` and `signHook`: the signatures of the hub's hook requests, checked and made
//! by hubbub-core (`hooks::verify`, `hooks::sign`), so that a Node receiver checks exactly
//! what the hub signs. The receiver around them (`createHookHandler`, in `hooks.js`) is
//! plain JavaScript: routing requests to the app's functions is no protocol logic.

use crate::error;
use hubbub_core::auth::{pattern_matches, unix_now};
use hubbub_core::hooks;
use napi::bindgen_prelude::Either;
use napi::{Env, Result};
use napi_derive::napi;

/// The secret as bytes: a missing or empty one is a mistake in the caller's setup (an
/// environment variable not set), said plainly rather than as a type conversion. Every
/// signature made with an empty key would be forgeable by anyone who guesses that.
fn secret_bytes(secret: &Option<String>) -> Result<&[u8]> {
    match secret.as_deref() {
        None => Err(error::invalid_arg(
            "the hooks secret is missing (undefined or null): pass the hub's [hooks] secret, \
             e.g. process.env.HUBBUB_HOOKS_SECRET, and check that it is set",
        )),
        Some("") => Err(error::invalid_arg("the hooks secret is empty")),
        Some(s) => Ok(s.as_bytes()),
    }
}

/// A body as the bytes that were signed: a string is taken as its UTF-8 encoding, which is
/// what Node sends and what `Buffer.from(string)` gives.
fn body_bytes<'a>(body: &'a Either<String, &'a [u8]>) -> &'a [u8] {
    match body {
        Either::A(text) => text.as_bytes(),
        Either::B(bytes) => bytes,
    }
}

/// Seconds since the Unix epoch from a JavaScript number: whole, 0 or more, and no larger
/// than a number holds exactly.
fn seconds(value: f64, what: &str) -> Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_991.0
    {
        Ok(value as u64)
    } else {
        Err(error::invalid_arg(format!(
            "{what} must be a whole number of seconds since the Unix epoch"
        )))
    }
}

/// Checks a hook request as the receiver got it: the values of its `X-Hubbub-Timestamp`
/// and `X-Hubbub-Signature` headers (undefined where missing) and its raw body, against the
/// hooks secret and the clock (`now`, seconds since the Unix epoch; default the system
/// clock). Throws `ACCESS_DENIED`, with the reason, for a missing header, a bad signature,
/// or a timestamp more than 300 seconds from `now` (a replay, or a wrong clock).
#[napi(
    ts_args_type = "secret: string, timestamp: string | undefined | null, signature: string | undefined | null, body: string | Uint8Array, now?: number"
)]
pub fn verify_hook(
    env: &Env,
    secret: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
    body: Either<String, &[u8]>,
    now: Option<f64>,
) -> Result<()> {
    let key = secret_bytes(&secret)?;
    let now = match now {
        Some(now) => seconds(now, "now")?,
        None => unix_now(),
    };
    hooks::verify(
        key,
        timestamp.as_deref(),
        signature.as_deref(),
        body_bytes(&body),
        now,
    )
    .map_err(|r| error::rejection(env, r))
}

/// The `X-Hubbub-Signature` value of `body` sent at `timestamp` (seconds since the Unix
/// epoch), `sha256=<hex>`, as the hub makes it: for testing a receiver.
#[napi(ts_args_type = "secret: string, timestamp: number, body: string | Uint8Array")]
pub fn sign_hook(
    secret: Option<String>,
    timestamp: f64,
    body: Either<String, &[u8]>,
) -> Result<String> {
    let key = secret_bytes(&secret)?;
    let timestamp = seconds(timestamp, "the timestamp")?;
    Ok(hooks::sign(key, timestamp, body_bytes(&body)))
}

/// Whether `channel` matches `pattern` the way the hub matches its permission patterns (`*`
/// matches any run of characters): how `createHookHandler` picks a subscribe handler.
/// Internal to the package (not re-exported by index.js).
#[napi]
pub fn channel_matches(pattern: String, channel: String) -> bool {
    pattern_matches(&pattern, &channel)
}
