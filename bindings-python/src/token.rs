//! `token()` and `verify_token()`: the HS256 tokens browsers authenticate with, made and
//! checked by hubbub-core, the same code the hub verifies them with.

use crate::errors;
use crate::json;
use hubbub_core::auth::{self, Claims, DEFAULT_TOKEN_TTL};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString};

/// A token or hook secret given as str or bytes.
#[derive(FromPyObject)]
pub enum Secret {
    Text(String),
    Bytes(Vec<u8>),
}

impl Secret {
    fn bytes(&self) -> PyResult<&[u8]> {
        self.named("token secret")
    }

    /// The secret's bytes; a `ValueError` naming `what` it is when empty, since an empty
    /// key would sign and verify anything anyone can compute.
    pub fn named(&self, what: &str) -> PyResult<&[u8]> {
        let bytes = match self {
            Secret::Text(s) => s.as_bytes(),
            Secret::Bytes(b) => b.as_slice(),
        };
        if bytes.is_empty() {
            return Err(PyValueError::new_err(format!("the {what} is empty")));
        }
        Ok(bytes)
    }
}

/// How long a token lasts: `expires_in` as seconds (an int, a float or a
/// ``datetime.timedelta``), or `None` for no expiry.
pub enum Expiry {
    Never,
    After(f64),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Expiry {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Expiry> {
        if obj.is_none() {
            return Ok(Expiry::Never);
        }
        let seconds: f64 = if obj.hasattr("total_seconds")? {
            obj.call_method0("total_seconds")?.extract()?
        } else {
            obj.extract().map_err(|_| {
                PyTypeError::new_err(
                    "expires_in must be seconds (int or float), a timedelta, or None",
                )
            })?
        };
        if !seconds.is_finite() {
            return Err(PyValueError::new_err(format!("expires_in is {seconds}")));
        }
        Ok(Expiry::After(seconds))
    }
}

/// The signature's `expires_in=3600`, as Python shows it, is core's default lifetime; this
/// stops the build if the two ever part.
const _: () = assert!(DEFAULT_TOKEN_TTL == 3600);

/// Mints a token for ``user``: a standard HS256 JWT signed with ``secret`` (str or
/// bytes, the hub's ``token_secret``).
///
/// ``user`` becomes the ``sub`` claim (a str, or an int such as a primary key).
/// ``read`` and ``write`` are lists of channel patterns (``*`` matches any run of
/// characters). ``info`` is a dict of JSON values others see in presence. The token
/// expires ``expires_in`` seconds from now (an int, a float or a ``timedelta``); ``None``
/// leaves out ``exp``: hubs refuse such a token unless their config sets
/// ``token_require_exp = false``, and ``verify_token`` refuses it unless given
/// ``require_exp=False``.
#[pyfunction]
#[pyo3(
    signature = (secret, user, *, read=Vec::new(), write=Vec::new(), info=None, expires_in=Expiry::After(DEFAULT_TOKEN_TTL as f64)),
    text_signature = "(secret, user, *, read=(), write=(), info=None, expires_in=3600)"
)]
pub fn token(
    py: Python<'_>,
    secret: Secret,
    user: &Bound<'_, PyAny>,
    read: Vec<String>,
    write: Vec<String>,
    info: Option<&Bound<'_, PyAny>>,
    expires_in: Expiry,
) -> PyResult<String> {
    let sub = if user.is_instance_of::<PyString>() || user.is_instance_of::<PyInt>() {
        user.str()?.to_cow()?.into_owned()
    } else {
        return Err(PyTypeError::new_err(format!(
            "user must be a str or an int, not {}",
            user.get_type().name()?
        )));
    };
    if sub.is_empty() {
        return Err(PyValueError::new_err("user is empty"));
    }
    let info = match info {
        None => None,
        Some(info) if info.is_none() => None,
        Some(info) => {
            if !info.is_instance_of::<PyDict>() {
                return Err(PyTypeError::new_err(format!(
                    "info must be a dict, not {}",
                    info.get_type().name()?
                )));
            }
            match json::to_value(info)? {
                serde_json::Value::Object(map) => Some(map),
                _ => unreachable!("a dict encodes as a JSON object"),
            }
        }
    };
    let ttl = match expires_in {
        Expiry::Never => None,
        // A negative expires_in makes a token that has already expired (for tests).
        Expiry::After(s) => Some(s),
    };
    let claims = Claims {
        read,
        write,
        info,
        ..Claims::new(sub)
    }
    .issued_now(ttl);
    auth::sign(secret.bytes()?, &claims).map_err(|r| errors::rejection(py, r))
}

/// Checks a token made with ``secret`` and returns its claims as a dict (``sub``,
/// ``exp``, ``iat``, ``read``, ``write``, ``info``).
///
/// Raises ``InvalidCredentials`` for a bad signature, another algorithm or a malformed
/// token, and ``TokenExpired`` once ``exp`` is past. A token without ``exp`` is refused
/// unless ``require_exp=False``.
#[pyfunction]
#[pyo3(signature = (secret, token, *, require_exp=true))]
pub fn verify_token<'py>(
    py: Python<'py>,
    secret: Secret,
    token: &str,
    require_exp: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let claims =
        auth::verify(secret.bytes()?, token, require_exp).map_err(|r| errors::rejection(py, r))?;
    let value = serde_json::to_value(&claims).map_err(|e| PyValueError::new_err(e.to_string()))?;
    json::to_python(py, &value)
}
