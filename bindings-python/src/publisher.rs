//! `Publisher` (blocking calls) and `CallbackPublisher` (the same calls, finished on the
//! I/O thread, which then hands the answer to a Python callback: `AsyncPublisher` in
//! `hubbub/__init__.py` turns that into coroutines).
//!
//! Both build their requests from core's `api` types, send them over kept-alive
//! connections (the calling thread's pool for `Publisher`, the I/O thread's for
//! `CallbackPublisher`), and decode the answers with core's types.

use crate::json;
use crate::transport::{self, CallError, Endpoint, Process};
use hubbub_core::api::{
    BroadcastPublished, BroadcastRequest, Channels, DirectDelivered, DirectRequest,
    DisconnectRequest, Disconnected, Info, PublishRequest, Published, Target,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The hub's address when neither the `url` argument nor `HUBBUB_URL` gives one.
const DEFAULT_URL: &str = "http://127.0.0.1:9772";

/// One call on its way: a future that owns everything it needs.
type Call = Pin<Box<dyn Future<Output = Result<serde_json::Value, CallError>> + Send>>;

/// Reads the constructor's arguments, falling back on the environment, then the default.
fn endpoint(url: Option<String>, api_key: Option<String>, timeout: f64) -> PyResult<Endpoint> {
    let url = url
        .or_else(|| std::env::var("HUBBUB_URL").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let api_key = api_key.or_else(|| std::env::var("HUBBUB_API_KEY").ok());
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(PyValueError::new_err(format!(
            "timeout must be a positive number of seconds, not {timeout}"
        )));
    }
    let timeout = Duration::try_from_secs_f64(timeout)
        .map_err(|e| PyValueError::new_err(format!("bad timeout: {e}")))?;
    Endpoint::new(&url, api_key.as_deref(), timeout).map_err(PyValueError::new_err)
}

fn target(client: Option<String>, user: Option<String>) -> PyResult<Target> {
    match (client, user) {
        (Some(c), None) => Ok(Target::Client(c)),
        (None, Some(u)) => Ok(Target::User(u)),
        (None, None) => Err(PyTypeError::new_err("give client= or user=")),
        (Some(_), Some(_)) => Err(PyTypeError::new_err("give client= or user=, not both")),
    }
}

fn body<T: Serialize>(request: &T) -> PyResult<Vec<u8>> {
    serde_json::to_vec(request).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Builds the calls of the HTTP API, one method per route.
struct Routes<'a> {
    endpoint: &'a Endpoint,
    client: &'a reqwest::Client,
}

impl Routes<'_> {
    fn call<A: DeserializeOwned + Serialize>(
        &self,
        method: Method,
        path: &'static str,
        body: Option<Vec<u8>>,
    ) -> Call {
        Box::pin(self.endpoint.call::<A>(self.client, method, path, body))
    }

    fn publish(&self, channel: String, data: &Bound<'_, PyAny>, event: String) -> PyResult<Call> {
        let request = PublishRequest {
            channel,
            data: json::encode(data)?,
            event,
        };
        Ok(self.call::<Published>(Method::POST, "/api/publish", Some(body(&request)?)))
    }

    fn broadcast(
        &self,
        channels: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        event: String,
    ) -> PyResult<Call> {
        if channels.is_instance_of::<pyo3::types::PyString>() {
            return Err(PyTypeError::new_err(
                "channels must be a list of channel names, not one str",
            ));
        }
        let request = BroadcastRequest {
            channels: channels.extract()?,
            data: json::encode(data)?,
            event,
        };
        Ok(self.call::<BroadcastPublished>(Method::POST, "/api/broadcast", Some(body(&request)?)))
    }

    fn direct(
        &self,
        data: &Bound<'_, PyAny>,
        client: Option<String>,
        user: Option<String>,
        event: String,
    ) -> PyResult<Call> {
        let request = DirectRequest::new(target(client, user)?, event, json::encode(data)?);
        Ok(self.call::<DirectDelivered>(Method::POST, "/api/direct", Some(body(&request)?)))
    }

    fn disconnect(&self, client: Option<String>, user: Option<String>) -> PyResult<Call> {
        let request = DisconnectRequest::new(target(client, user)?);
        Ok(self.call::<Disconnected>(Method::POST, "/api/disconnect", Some(body(&request)?)))
    }

    fn channels(&self) -> Call {
        self.call::<Channels>(Method::GET, "/api/channels", None)
    }

    fn info(&self) -> Call {
        self.call::<Info>(Method::GET, "/api/info", None)
    }
}

/// Publishes to a hubbub hub over its HTTP API.
///
/// ``Publisher(url=None, api_key=None, timeout=5.0)``: ``url`` defaults to the
/// ``HUBBUB_URL`` environment variable, then ``http://127.0.0.1:9772``; ``api_key`` to
/// ``HUBBUB_API_KEY``, then none (a hub in zero-config mode accepts loopback callers
/// without a key). ``timeout`` bounds each call, in seconds.
///
/// Every method blocks until the hub answers and returns its answer, decoded. The GIL is
/// released while waiting, and one Publisher may be shared by any number of threads. Each
/// thread keeps its connections to the hub alive and reuses them for its next calls.
#[pyclass(frozen, module = "hubbub")]
pub struct Publisher {
    endpoint: Endpoint,
}

impl Publisher {
    /// Makes a call on this thread and waits, without the GIL, for it to finish.
    fn run<'py>(
        &self,
        py: Python<'py>,
        build: impl FnOnce(&Routes<'_>) -> PyResult<Call>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let answer = transport::on_this_thread(|runtime, client| {
            let call = build(&Routes {
                endpoint: &self.endpoint,
                client,
            })?;
            py.detach(|| {
                runtime.block_on(async {
                    // The runtime sleeps between calls. Yielding once lets it read what
                    // happened meanwhile, so connections the hub has closed (a restart,
                    // an idle timeout) leave the pool before the request picks one.
                    tokio::task::yield_now().await;
                    call.await
                })
            })
            .map_err(|err| err.into_pyerr(py))
        })?;
        json::to_python(py, &answer)
    }
}

#[pymethods]
impl Publisher {
    #[new]
    #[pyo3(signature = (url=None, api_key=None, timeout=5.0))]
    fn new(url: Option<String>, api_key: Option<String>, timeout: f64) -> PyResult<Publisher> {
        Ok(Publisher {
            endpoint: endpoint(url, api_key, timeout)?,
        })
    }

    /// The hub's base URL.
    #[getter]
    fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// The time limit of each call, in seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        self.endpoint.timeout.as_secs_f64()
    }

    fn __repr__(&self) -> String {
        format!("Publisher(url='{}')", self.endpoint.url)
    }

    /// Publishes ``data`` (any JSON value) to every subscriber of ``channel``.
    ///
    /// Returns ``{"published": channel}``. A channel without subscribers is fine: the
    /// publication reaches nobody.
    #[pyo3(signature = (channel, data, event="message".to_owned()), text_signature = "(self, channel, data, event='message')")]
    fn publish<'py>(
        &self,
        py: Python<'py>,
        channel: String,
        data: &Bound<'py, PyAny>,
        event: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |r| r.publish(channel, data, event))
    }

    /// Publishes ``data`` to every subscriber of each of ``channels`` (a list of names).
    ///
    /// Returns ``{"published": channels}``.
    #[pyo3(signature = (channels, data, event="message".to_owned()), text_signature = "(self, channels, data, event='message')")]
    fn broadcast<'py>(
        &self,
        py: Python<'py>,
        channels: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
        event: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |r| r.broadcast(channels, data, event))
    }

    /// Sends ``data`` to one connection (``client=`` its client id) or to every connection
    /// of one user (``user=`` the token's ``sub`` or the configured user's name).
    ///
    /// Returns ``{"directSent": client_or_user, "delivered": n}``; raises
    /// ``InvalidClient`` when nobody matched.
    #[pyo3(signature = (data, *, client=None, user=None, event="message".to_owned()), text_signature = "(self, data, *, client=None, user=None, event='message')")]
    fn direct<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        client: Option<String>,
        user: Option<String>,
        event: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |r| r.direct(data, client, user, event))
    }

    /// Closes one connection (``client=``) or every connection of one user (``user=``).
    ///
    /// Returns ``{"disconnected": n}``.
    #[pyo3(signature = (*, client=None, user=None))]
    fn disconnect<'py>(
        &self,
        py: Python<'py>,
        client: Option<String>,
        user: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |r| r.disconnect(client, user))
    }

    /// The channels that have subscribers: ``{"channels": {name: {"subscribers": n}}}``.
    fn channels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |r| Ok(r.channels()))
    }

    /// The hub's version and counters: ``{"version", "connections", "channels",
    /// "uptime_s"}``.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |r| Ok(r.info()))
    }
}

/// The engine under ``hubbub.AsyncPublisher``: the calls of ``Publisher``, each started
/// at once on hubbub's I/O thread, which calls ``done(answer, None)`` or
/// ``done(None, exception)`` when it finishes. Each method returns a ``PendingCall``.
#[pyclass(frozen, module = "hubbub._native")]
pub struct CallbackPublisher {
    endpoint: Endpoint,
}

/// A call started by ``CallbackPublisher``; ``cancel()`` abandons it.
#[pyclass(frozen, module = "hubbub._native")]
pub struct PendingCall {
    task: tokio::task::AbortHandle,
}

#[pymethods]
impl PendingCall {
    /// Abandons the call: ``done`` will not be called.
    fn cancel(&self) {
        self.task.abort();
    }
}

impl CallbackPublisher {
    fn start(
        &self,
        done: Py<PyAny>,
        build: impl FnOnce(&Routes<'_>) -> PyResult<Call>,
    ) -> PyResult<PendingCall> {
        let process = Process::current()?;
        let call = build(&Routes {
            endpoint: &self.endpoint,
            client: &process.client,
        })?;
        let task = process.runtime.spawn(async move {
            let outcome = call.await;
            // Python may be shutting down, with nobody left to tell.
            Python::try_attach(|py| {
                let (answer, error) = match outcome.map(|a| json::to_python(py, &a)) {
                    Ok(Ok(answer)) => (answer.unbind(), None),
                    Ok(Err(err)) => (py.None(), Some(err.into_value(py))),
                    Err(err) => (py.None(), Some(err.into_pyerr(py).into_value(py))),
                };
                if let Err(err) = done.call1(py, (answer, error)) {
                    err.write_unraisable(py, None);
                }
            });
        });
        Ok(PendingCall {
            task: task.abort_handle(),
        })
    }
}

#[pymethods]
impl CallbackPublisher {
    #[new]
    #[pyo3(signature = (url=None, api_key=None, timeout=5.0))]
    fn new(
        url: Option<String>,
        api_key: Option<String>,
        timeout: f64,
    ) -> PyResult<CallbackPublisher> {
        Ok(CallbackPublisher {
            endpoint: endpoint(url, api_key, timeout)?,
        })
    }

    /// The hub's base URL.
    #[getter]
    fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// The time limit of each call, in seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        self.endpoint.timeout.as_secs_f64()
    }

    /// ``Publisher.publish``, answering through ``done``.
    fn publish(
        &self,
        done: Py<PyAny>,
        channel: String,
        data: &Bound<'_, PyAny>,
        event: String,
    ) -> PyResult<PendingCall> {
        self.start(done, |r| r.publish(channel, data, event))
    }

    /// ``Publisher.broadcast``, answering through ``done``.
    fn broadcast(
        &self,
        done: Py<PyAny>,
        channels: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        event: String,
    ) -> PyResult<PendingCall> {
        self.start(done, |r| r.broadcast(channels, data, event))
    }

    /// ``Publisher.direct``, answering through ``done``.
    #[pyo3(signature = (done, data, client, user, event))]
    fn direct(
        &self,
        done: Py<PyAny>,
        data: &Bound<'_, PyAny>,
        client: Option<String>,
        user: Option<String>,
        event: String,
    ) -> PyResult<PendingCall> {
        self.start(done, |r| r.direct(data, client, user, event))
    }

    /// ``Publisher.disconnect``, answering through ``done``.
    #[pyo3(signature = (done, client, user))]
    fn disconnect(
        &self,
        done: Py<PyAny>,
        client: Option<String>,
        user: Option<String>,
    ) -> PyResult<PendingCall> {
        self.start(done, |r| r.disconnect(client, user))
    }

    /// ``Publisher.channels``, answering through ``done``.
    fn channels(&self, done: Py<PyAny>) -> PyResult<PendingCall> {
        self.start(done, |r| Ok(r.channels()))
    }

    /// ``Publisher.info``, answering through ``done``.
    fn info(&self, done: Py<PyAny>) -> PyResult<PendingCall> {
        self.start(done, |r| Ok(r.info()))
    }
}
