//! The exception classes: `HubbubError`, a subclass per protocol error name a publisher,
//! a token check or a hook signature check can meet, and `Unavailable` (with `Timeout`
//! under it) for a hub that cannot be reached.
//!
//! Every instance carries `code` (the protocol's error name, e.g. `"ACCESS_DENIED"`, or
//! `"UNAVAILABLE"`, exactly as hubbub-publisher's `Error::code`), `reason` (the server's
//! explanation, or what happened instead of an answer, or `None`), `status` (the HTTP
//! status, or `None`) and `url` (what was called, or `None`).

use hubbub_core::{Error, Rejection};
use hubbub_publisher::Error as CallError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyType;

create_exception!(
    hubbub,
    HubbubError,
    PyException,
    "Base class of every error hubbub raises for a call that the hub refused or could not \
     answer.\n\nAttributes: ``code`` (the protocol's error name, e.g. ``\"ACCESS_DENIED\"``), \
     ``reason`` (the server's explanation or None), ``status`` (the HTTP status or None), \
     ``url`` (the URL called, or None)."
);
create_exception!(
    hubbub,
    InvalidPayload,
    HubbubError,
    "INVALID_PAYLOAD: the hub refused the request body (bad channel name, empty channel \
     list, malformed JSON) or a token argument was malformed."
);
create_exception!(
    hubbub,
    InvalidCredentials,
    HubbubError,
    "INVALID_CREDENTIALS: a missing or wrong API key (HTTP 401), or a token with a bad \
     signature, a bad algorithm or a malformed body."
);
create_exception!(
    hubbub,
    TokenExpired,
    HubbubError,
    "TOKEN_EXPIRED: a token whose signature is good but whose ``exp`` is past."
);
create_exception!(
    hubbub,
    AccessDenied,
    HubbubError,
    "ACCESS_DENIED: the caller's address is not in the hub's ``allowed_ips`` (HTTP 403), \
     or a hook request whose signature or timestamp ``verify_hook`` refused."
);
create_exception!(
    hubbub,
    InvalidClient,
    HubbubError,
    "INVALID_CLIENT: a direct message that matched no connected client or user (HTTP 404)."
);
create_exception!(
    hubbub,
    InvalidChannel,
    HubbubError,
    "INVALID_CHANNEL: the history or presence of a channel whose namespace keeps none \
     (HTTP 404)."
);
create_exception!(
    hubbub,
    LimitExceeded,
    HubbubError,
    "LIMIT_EXCEEDED: a request body over the hub's ``max_message_size`` (HTTP 413), or too \
     many subscriptions."
);
create_exception!(
    hubbub,
    Unavailable,
    HubbubError,
    "UNAVAILABLE: the hub cannot be reached (connection refused, reset or closed, DNS \
     failure, an untrusted certificate), did not answer in time, or something that is not \
     a hub answered (a gateway's 502, a 500, a web page: ``status`` is set). The message \
     names the URL."
);
create_exception!(
    hubbub,
    Timeout,
    Unavailable,
    "UNAVAILABLE because the hub did not answer within the publisher's ``timeout``."
);

/// The exception class of one protocol error name: a subclass for the errors a publisher
/// or a token check can meet, `HubbubError` itself (with the name in `code`) for the
/// errors only WebSocket clients meet.
fn class_of(py: Python<'_>, error: Error) -> Option<Bound<'_, PyType>> {
    Some(match error {
        Error::InvalidPayload => py.get_type::<InvalidPayload>(),
        Error::InvalidCredentials => py.get_type::<InvalidCredentials>(),
        Error::TokenExpired => py.get_type::<TokenExpired>(),
        Error::AccessDenied => py.get_type::<AccessDenied>(),
        Error::InvalidClient => py.get_type::<InvalidClient>(),
        Error::InvalidChannel => py.get_type::<InvalidChannel>(),
        Error::LimitExceeded => py.get_type::<LimitExceeded>(),
        // Registered on its own below, with the failures that never reached the hub.
        Error::Unavailable => return None,
        Error::UnknownCommand | Error::InvalidUser | Error::RateLimited => return None,
    })
}

/// Adds the exception classes to the module, each with its `code` as a class attribute.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base = py.get_type::<HubbubError>();
    for attribute in ["code", "reason", "status", "url"] {
        base.setattr(attribute, py.None())?;
    }
    m.add("HubbubError", &base)?;
    for error in Error::ALL {
        if let Some(class) = class_of(py, error) {
            class.setattr("code", error.name())?;
            m.add(class.name()?, class)?;
        }
    }
    let unavailable = py.get_type::<Unavailable>();
    unavailable.setattr("code", hubbub_publisher::UNAVAILABLE)?;
    m.add("Unavailable", unavailable)?;
    let timeout = py.get_type::<Timeout>();
    timeout.setattr("code", hubbub_publisher::UNAVAILABLE)?;
    m.add("Timeout", timeout)?;
    Ok(())
}

/// What went wrong, and where, in the words the exception will carry.
pub struct Details<'a> {
    pub code: &'a str,
    pub message: String,
    pub reason: Option<String>,
    pub status: Option<u16>,
    pub url: Option<String>,
}

/// Builds an exception of `class` with the attributes of `details`.
pub fn raise(py: Python<'_>, class: Bound<'_, PyType>, details: Details<'_>) -> PyErr {
    let err = PyErr::from_type(class, (details.message,));
    let value = err.value(py);
    // Setting attributes on a fresh exception instance cannot fail.
    let _ = value.setattr("code", details.code);
    let _ = value.setattr("reason", details.reason);
    let _ = value.setattr("status", details.status);
    let _ = value.setattr("url", details.url);
    err
}

/// The exception for core's verdict on a token or a hook request's signature.
pub fn rejection(py: Python<'_>, rejection: Rejection) -> PyErr {
    raise(
        py,
        class_of(py, rejection.error).unwrap_or_else(|| py.get_type::<HubbubError>()),
        Details {
            code: rejection.error.name(),
            message: rejection.to_string(),
            reason: rejection.reason,
            status: None,
            url: None,
        },
    )
}

/// The exception for a failed call of the publisher: the class of its error name
/// (`Timeout` for a call that ran out of time, `Unavailable` for the rest of
/// `UNAVAILABLE`), with its message, reason, status and URL.
pub fn call(py: Python<'_>, err: CallError) -> PyErr {
    let class = if err.is_timeout() {
        py.get_type::<Timeout>()
    } else if err.is_unavailable() {
        py.get_type::<Unavailable>()
    } else {
        err.name()
            .and_then(|name| class_of(py, name))
            .unwrap_or_else(|| py.get_type::<HubbubError>())
    };
    raise(
        py,
        class,
        Details {
            code: err.code(),
            message: err.to_string(),
            reason: err.reason(),
            status: err.status(),
            url: err.url().map(str::to_owned),
        },
    )
}
