//! One HTTP API call, and the runtimes and connection pools calls run on.
//!
//! Blocking calls (`Publisher`) run on a current-thread tokio runtime owned by the calling
//! thread, with that thread's own `reqwest::Client`: the request is written and the answer
//! read right there, with the GIL released, and the connections stay alive in the thread's
//! pool for its next calls. Calls for asyncio (`AsyncPublisher`) run on one I/O thread per
//! process, with its own pool.
//!
//! All of it is made on first use and made again in a child after `fork()` (Celery's
//! prefork pool, gunicorn with `--preload`): the parent's I/O thread does not exist in the
//! child, and its pooled sockets are shared with the parent, so the child leaves them be.

use crate::errors::{self, Details};
use hubbub_core::api::{self, AnswerError};
use hubbub_core::Rejection;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::error::Error as _;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

/// The I/O thread and connection pool of the current process, for asyncio calls.
pub struct Process {
    pid: u32,
    pub runtime: tokio::runtime::Runtime,
    pub client: reqwest::Client,
}

static CURRENT: AtomicPtr<Process> = AtomicPtr::new(ptr::null_mut());

impl Process {
    fn new(pid: u32) -> std::io::Result<Process> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hubbub-io")
            .enable_all()
            .build()?;
        let client = client().map_err(std::io::Error::other)?;
        Ok(Process {
            pid,
            runtime,
            client,
        })
    }

    /// The runtime and pool of this process, made on first use and after a fork.
    ///
    /// Lock-free on purpose: a lock held by another thread at the moment of a `fork()`
    /// would stay locked forever in the child.
    pub fn current() -> PyResult<&'static Process> {
        let pid = std::process::id();
        let seen = CURRENT.load(Ordering::Acquire);
        // SAFETY: a pointer stored in CURRENT comes from Box::into_raw and is never freed.
        if let Some(process) = unsafe { seen.as_ref() } {
            if process.pid == pid {
                return Ok(process);
            }
        }
        let fresh = Process::new(pid).map_err(|e| {
            PyRuntimeError::new_err(format!("hubbub cannot start its I/O thread: {e}"))
        })?;
        let fresh = Box::into_raw(Box::new(fresh));
        match CURRENT.compare_exchange(seen, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // The parent's Process, if any, is left allocated: its runtime's threads do not
            // exist in this process, so it must not be dropped (dropping would wait on
            // them), and other threads may still hold a reference.
            // SAFETY: `fresh` was just leaked from a Box.
            Ok(_) => Ok(unsafe { &*fresh }),
            Err(winner) => {
                // Another thread of this process made one first: use it, drop ours.
                // SAFETY: `fresh` was never shared; `winner` is a leaked Box of this process.
                drop(unsafe { Box::from_raw(fresh) });
                Ok(unsafe { &*winner })
            }
        }
    }
}

/// The runtime and connection pool of one thread, for blocking calls.
///
/// A blocking call runs on a current-thread runtime owned by the calling thread, so the
/// request is written and the answer read on that thread, with no hand-off to the I/O
/// thread and back. Its connections stay in this thread's pool between calls.
struct Local {
    pid: u32,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

thread_local! {
    static LOCAL: std::cell::RefCell<Option<Rc<Local>>> = const { std::cell::RefCell::new(None) };
}

/// The TLS settings of every client in the process, for `https://` hubs: the system's
/// certificate authorities (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`).
///
/// Loading them takes about a millisecond, far longer than an HTTP call, so it is done
/// once per process rather than for each thread's client.
static TLS: AtomicPtr<rustls::ClientConfig> = AtomicPtr::new(ptr::null_mut());

fn tls() -> Result<rustls::ClientConfig, String> {
    let seen = TLS.load(Ordering::Acquire);
    // SAFETY: a pointer stored in TLS comes from Box::into_raw and is never freed.
    if let Some(config) = unsafe { seen.as_ref() } {
        return Ok(config.clone());
    }
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let made = Box::into_raw(Box::new(config));
    // Lock-free, like Process::current: two threads may both make it; one is kept.
    match TLS.compare_exchange(seen, made, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: `made` was just leaked from a Box.
        Ok(_) => Ok(unsafe { &*made }.clone()),
        Err(winner) => {
            // SAFETY: `made` was never shared; `winner` is a leaked Box.
            drop(unsafe { Box::from_raw(made) });
            Ok(unsafe { &*winner }.clone())
        }
    }
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("hubbub-python/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .tls_backend_preconfigured(tls()?)
        .build()
        .map_err(|e| e.to_string())
}

/// Runs `f` with this thread's runtime and pool, made on first use and after a fork.
///
/// `f` may run Python code (encoding data can set off the garbage collector, and a
/// `__del__` may publish), so the thread-local is not borrowed while it runs.
pub fn on_this_thread<R>(
    f: impl FnOnce(&tokio::runtime::Runtime, &reqwest::Client) -> PyResult<R>,
) -> PyResult<R> {
    let local = LOCAL.with(|cell| -> PyResult<Rc<Local>> {
        let pid = std::process::id();
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_some_and(|l| l.pid != pid) {
            // Made before a fork: its sockets are the parent's too. Leave them be.
            std::mem::forget(slot.take());
        }
        if let Some(local) = slot.as_ref() {
            return Ok(Rc::clone(local));
        }
        let failed = |e: &dyn std::fmt::Display| {
            PyRuntimeError::new_err(format!("hubbub cannot start its HTTP client: {e}"))
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed(&e))?;
        let client = client().map_err(|e| failed(&e))?;
        let local = Rc::new(Local {
            pid,
            runtime,
            client,
        });
        *slot = Some(Rc::clone(&local));
        Ok(local)
    })?;
    f(&local.runtime, &local.client)
}

/// Where a publisher sends its calls: the hub's base URL, the API key and the timeout.
#[derive(Debug)]
pub struct Endpoint {
    pub url: String,
    authorization: Option<HeaderValue>,
    pub timeout: Duration,
}

/// Why a call failed, before it becomes a Python exception.
#[derive(Debug)]
pub enum CallError {
    /// The hub answered with a protocol error.
    Refused {
        rejection: Rejection,
        status: u16,
        url: String,
    },
    /// The hub could not be reached, or a gateway in front of it said so.
    Unavailable { url: String, detail: String },
    /// No answer within the timeout.
    Timeout { url: String, after: Duration },
    /// An answer that is not the protocol's.
    Unexpected {
        url: String,
        status: u16,
        detail: String,
    },
}

impl CallError {
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            CallError::Refused {
                rejection,
                status,
                url,
            } => errors::rejection(py, rejection, Some(status), Some(url)),
            CallError::Unavailable { url, detail } => errors::raise(
                py,
                py.get_type::<errors::Unavailable>(),
                Details {
                    code: errors::UNAVAILABLE,
                    message: format!("cannot reach the hub at {url}: {detail}"),
                    reason: Some(detail),
                    status: None,
                    url: Some(url),
                },
            ),
            CallError::Timeout { url, after } => errors::raise(
                py,
                py.get_type::<errors::Timeout>(),
                Details {
                    code: errors::TIMEOUT,
                    message: format!(
                        "the hub at {url} did not answer within {}s",
                        after.as_secs_f64()
                    ),
                    reason: None,
                    status: None,
                    url: Some(url),
                },
            ),
            CallError::Unexpected {
                url,
                status,
                detail,
            } => errors::raise(
                py,
                py.get_type::<errors::HubbubError>(),
                Details {
                    code: errors::UNEXPECTED_RESPONSE,
                    message: format!("unexpected answer from {url} (HTTP {status}): {detail}"),
                    reason: Some(detail),
                    status: Some(status),
                    url: Some(url),
                },
            ),
        }
    }
}

/// What a reqwest error says, from its causes (its own text repeats the URL), e.g.
/// "client error (Connect): tcp connect error: Connection refused (os error 111)".
fn describe(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !parts.iter().any(|p| p.contains(&said)) {
            parts.push(said);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}

impl Endpoint {
    /// An endpoint at `url` (no trailing slash needed), calling with `api_key` if given.
    pub fn new(url: &str, api_key: Option<&str>, timeout: Duration) -> Result<Endpoint, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad hub URL {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "the hub URL must be http:// or https://, not {url:?}"
            ));
        }
        let authorization = match api_key {
            Some(key) if !key.is_empty() => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| "the API key holds characters a header cannot carry")?;
                value.set_sensitive(true);
                Some(value)
            }
            _ => None,
        };
        Ok(Endpoint {
            url: url.trim_end_matches('/').to_owned(),
            authorization,
            timeout,
        })
    }

    /// Makes one call and decodes the answer as `A`, returning it as a JSON value.
    ///
    /// The returned future owns everything it needs, so it can run on the I/O thread
    /// while the caller's thread waits without the GIL.
    pub fn call<A>(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &'static str,
        body: Option<Vec<u8>>,
    ) -> impl std::future::Future<Output = Result<serde_json::Value, CallError>> + Send + 'static
    where
        A: DeserializeOwned + Serialize,
    {
        let url = format!("{}{}", self.url, path);
        let mut request = client
            .request(method, &url)
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let timeout = self.timeout;
        async move {
            let failed = |e: reqwest::Error| {
                if e.is_timeout() {
                    CallError::Timeout {
                        url: url.clone(),
                        after: timeout,
                    }
                } else {
                    CallError::Unavailable {
                        url: url.clone(),
                        detail: describe(&e),
                    }
                }
            };
            let response = request.send().await.map_err(failed)?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(failed)?;
            let answer: A = match api::read_answer(status, &body) {
                Ok(answer) => answer,
                Err(AnswerError::Refused(rejection)) => {
                    return Err(CallError::Refused {
                        rejection,
                        status,
                        url,
                    })
                }
                Err(AnswerError::Unavailable(detail)) => {
                    return Err(CallError::Unavailable { detail, url })
                }
                Err(AnswerError::Unexpected(detail)) => {
                    return Err(CallError::Unexpected {
                        detail,
                        url,
                        status,
                    })
                }
            };
            serde_json::to_value(&answer).map_err(|e| CallError::Unexpected {
                url: url.clone(),
                status,
                detail: e.to_string(),
            })
        }
    }
}
