//! `verify_hook()` and `sign_hook()`: the signatures of the requests hubbub posts to the
//! app's hooks (PROTOCOL.md section 10), checked and made by hubbub-core's `hooks::verify`
//! and `hooks::sign`, the very code the hub signs them with. Nothing about the signature
//! (the HMAC, its text form, the 5-minute window) is decided here.
//!
//! Also `pattern_matches()`, core's channel pattern rule, so that the Django receivers
//! pick their handlers by the same patterns the hub's permissions use.

use crate::errors;
use crate::token::Secret;
use hubbub_core::auth;
use hubbub_core::hooks;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

/// A request body as the receiver has it: bytes (or a bytearray), or text sent as UTF-8.
#[derive(FromPyObject)]
pub enum Body {
    Bytes(PyBackedBytes),
    Text(String),
}

impl Body {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Bytes(b) => b,
            Body::Text(s) => s.as_bytes(),
        }
    }
}

/// Checks a hook request as the app received it: the ``X-Hubbub-Timestamp`` and
/// ``X-Hubbub-Signature`` header values (``None`` where the header is missing) and the
/// exact bytes of the body, against ``secret`` (str or bytes: the hub's ``[hooks]
/// secret``).
///
/// Returns ``None`` when the request holds. Raises ``AccessDenied`` (``code`` is
/// ``"ACCESS_DENIED"``, ``reason`` says what failed) for a missing header, a bad
/// signature, or a timestamp more than 300 seconds away from ``now`` (Unix seconds,
/// default this machine's clock): a replay, or a wrong clock.
#[pyfunction]
#[pyo3(signature = (secret, timestamp, signature, body, now=None))]
pub fn verify_hook(
    py: Python<'_>,
    secret: Secret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: Body,
    now: Option<f64>,
) -> PyResult<()> {
    let now = match now {
        None => auth::unix_now(),
        Some(s) if s.is_finite() && s >= 0.0 => s as u64,
        Some(s) => return Err(PyValueError::new_err(format!("now is {s}"))),
    };
    hooks::verify(
        secret.named("hook secret")?,
        timestamp,
        signature,
        body.bytes(),
        now,
    )
    .map_err(|r| errors::rejection(py, r))
}

/// The ``X-Hubbub-Signature`` value of ``body`` sent at ``timestamp`` (Unix seconds)
/// under ``secret``: ``"sha256=<hex>"``, as the hub signs its hook requests. For an app's
/// tests, to post hook requests to its own receivers.
#[pyfunction]
pub fn sign_hook(secret: Secret, timestamp: u64, body: Body) -> PyResult<String> {
    Ok(hooks::sign(
        secret.named("hook secret")?,
        timestamp,
        body.bytes(),
    ))
}

/// Whether ``channel`` matches ``pattern`` as the hub matches permissions and namespaces:
/// ``*`` matches any run of characters, including none; every other character matches
/// itself.
#[pyfunction]
pub fn pattern_matches(pattern: &str, channel: &str) -> bool {
    auth::pattern_matches(pattern, channel)
}
