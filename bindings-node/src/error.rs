//! Failures as JavaScript sees them: an `Error` carrying `.code` (one of the protocol's
//! error names, or `UNAVAILABLE`) and `.reason`, made here on the JavaScript thread.
//!
//! The package's `index.js` turns such an error into a `HubbubError` (an `Unavailable` for
//! `UNAVAILABLE`) by its `.code`; errors without one of these codes (a wrong argument type,
//! a bad URL) stay ordinary errors.

use hubbub_core::{Error, Rejection};
use napi::bindgen_prelude::{JsObjectValue, JsValue};
use napi::{Env, Status};
use napi_derive::napi;

/// Every code a failure can carry: the protocol's error names, then `UNAVAILABLE`. The
/// package's `index.js` makes a `HubbubError` of an error only when its `.code` is one of
/// these.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    Error::ALL
        .iter()
        .map(|e| e.name())
        .chain([hubbub_publisher::UNAVAILABLE])
        .collect()
}

/// A JavaScript `Error` with `.code` and `.reason` (and the message `"CODE: reason"`), as a
/// napi error that throws or rejects with exactly that object.
pub fn hubbub_error(env: &Env, code: &str, reason: Option<String>) -> napi::Error {
    let message = match &reason {
        Some(reason) => format!("{code}: {reason}"),
        None => code.to_owned(),
    };
    let made = (|| -> napi::Result<napi::Error> {
        let mut error =
            env.create_error(napi::Error::new(Status::GenericFailure, message.clone()))?;
        error.set_named_property("code", code)?;
        if let Some(reason) = &reason {
            error.set_named_property("reason", reason.as_str())?;
        }
        Ok(napi::Error::from(error.to_unknown()))
    })();
    // Failing to make an object (the environment shutting down) still fails with the text.
    made.unwrap_or_else(|_| napi::Error::from_reason(message))
}

/// A failed call of the publisher.
pub fn call(env: &Env, err: hubbub_publisher::Error) -> napi::Error {
    hubbub_error(env, err.code(), err.reason())
}

/// Core's refusal (of a token, or of a direct message without exactly one target).
pub fn rejection(env: &Env, rejection: Rejection) -> napi::Error {
    hubbub_error(env, rejection.error.name(), rejection.reason)
}

/// A wrong argument: an ordinary error, not a refusal.
pub fn invalid_arg(message: impl Into<String>) -> napi::Error {
    napi::Error::new(Status::InvalidArg, message.into())
}
