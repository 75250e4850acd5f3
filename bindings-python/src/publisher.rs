//! `Publisher` (blocking calls) and `CallbackPublisher` (the same calls, finished on the
//! I/O thread, which then hands the answer to a Python callback: `AsyncPublisher` in
//! `hubbub/__init__.py` turns that into coroutines).
//!
//! Both are hubbub-publisher's publishers under Python names: this file converts the
//! arguments (with the GIL held), releases the GIL while a call waits, and turns answers
//! into dicts and failures into exceptions. The URL, the environment, the HTTP calls and
//! the reading of answers are hubbub-publisher's.

use crate::errors;
use crate::json;
use crate::transport::Process;
use hubbub_core::api::{HistoryPage, Presence, Target};
use hubbub_core::namespace::NamespaceSpec;
use hubbub_core::protocol::{Message, RawJson};
use hubbub_publisher::{blocking, ConfigError, Endpoint, Error, Options};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Serialize;
use std::future::Future;
use std::time::Duration;

/// The constructors' `timeout=5.0` (a literal, so that the signature Python shows and the
/// type stubs agree) is hubbub-publisher's default time limit; this stops the build if the
/// two ever part.
const _: () = assert!(hubbub_publisher::DEFAULT_TIMEOUT.as_millis() == 5_000);

/// Resolves the constructor's arguments (falling back on the environment, then the
/// defaults: hubbub-publisher's `Options`).
fn endpoint(
    url: Option<String>,
    api_key: Option<String>,
    timeout: f64,
    namespaces: Option<&Bound<'_, PyAny>>,
    redis_prefix: Option<String>,
) -> PyResult<Endpoint> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(PyValueError::new_err(format!(
            "timeout must be a positive number of seconds, not {timeout}"
        )));
    }
    let timeout = Duration::try_from_secs_f64(timeout)
        .map_err(|e| PyValueError::new_err(format!("bad timeout: {e}")))?;
    Endpoint::new(Options {
        url,
        api_key,
        timeout: Some(timeout),
        namespaces: namespace_specs(namespaces)?,
        redis_prefix,
    })
    .map_err(config_error)
}

/// The hubs' namespaces, for publishing through Redis: a list of dicts with the keys of
/// the hubs' config (`pattern`, `history_size`, `history_ttl`, ...), read by core as the
/// hubs read theirs (an unknown key is refused).
fn namespace_specs(namespaces: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<NamespaceSpec>>> {
    let Some(namespaces) = namespaces.filter(|n| !n.is_none()) else {
        return Ok(None);
    };
    if namespaces.is_instance_of::<pyo3::types::PyString>() || namespaces.is_instance_of::<PyDict>()
    {
        return Err(PyTypeError::new_err(
            "namespaces must be a list of dicts, e.g. [{\"pattern\": \"room:*\", \"history_size\": 100}]",
        ));
    }
    serde_json::from_value(json::to_value(namespaces)?)
        .map(Some)
        .map_err(|e| PyValueError::new_err(format!("bad namespaces: {e}")))
}

fn config_error(e: ConfigError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// `client=` or `user=`, exactly one (core's rule); a Python call that breaks it is a
/// `TypeError`, as a missing or doubled argument is.
fn target(client: Option<String>, user: Option<String>) -> PyResult<Target> {
    Target::from_fields(client, user).map_err(|r| {
        PyTypeError::new_err(
            r.reason
                .unwrap_or_else(|| "give client= or user=".to_owned()),
        )
    })
}

fn channel_list(channels: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if channels.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(
            "channels must be a list of channel names, not one str",
        ));
    }
    channels.extract()
}

/// An answer of the hub on its way to Python, made into Python objects once the GIL is
/// held again.
enum Answer {
    /// An answer without application data in it, as its JSON form.
    Plain(serde_json::Value),
    /// A page of history: each message's data is decoded by `json.loads`.
    History(HistoryPage),
    /// Who is in a channel: each client's info is decoded by `json.loads`.
    Presence(Presence),
}

impl Answer {
    /// The answer as dicts and lists: the JSON the hub sent, decoded.
    fn into_python(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        match self {
            Answer::Plain(value) => json::to_python(py, &value),
            Answer::History(page) => {
                let messages = PyList::empty(py);
                for message in &page.messages {
                    messages.append(message_dict(py, message)?)?;
                }
                let dict = PyDict::new(py);
                dict.set_item("channel", page.channel)?;
                dict.set_item("epoch", page.epoch)?;
                dict.set_item("offset", page.offset)?;
                dict.set_item("messages", messages)?;
                Ok(dict.into_any())
            }
            Answer::Presence(presence) => {
                let clients = PyList::empty(py);
                for present in &presence.clients {
                    let client = PyDict::new(py);
                    client.set_item("client", &present.client)?;
                    client.set_item("user", &present.user)?;
                    // Absent where the connection has none, as on the wire.
                    if let Some(info) = &present.info {
                        client.set_item("info", json::decode(py, info)?)?;
                    }
                    clients.append(client)?;
                }
                let dict = PyDict::new(py);
                dict.set_item("channel", presence.channel)?;
                dict.set_item("clients", clients)?;
                Ok(dict.into_any())
            }
        }
    }
}

/// One message of a history page, with the keys of a `message` frame (`offset` and `from`
/// only where it has them).
fn message_dict<'py>(py: Python<'py>, message: &Message) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("channel", &message.channel)?;
    dict.set_item("event", &message.event)?;
    dict.set_item("data", json::decode(py, &message.data)?)?;
    if let Some(offset) = message.offset {
        dict.set_item("offset", offset)?;
    }
    if let Some(from) = &message.from {
        dict.set_item("from", from)?;
    }
    Ok(dict)
}

/// An answer without application data, as the JSON value Python will see.
fn answer<T: Serialize>(result: Result<T, Error>) -> Result<Answer, Error> {
    // Core's answer types always have a JSON form.
    result.map(|a| Answer::Plain(serde_json::to_value(a).unwrap_or_default()))
}

/// Publishes to a hubbub hub over its HTTP API, or straight into the hubs' Redis.
///
/// ``Publisher(url=None, api_key=None, timeout=5.0, *, namespaces=None,
/// redis_prefix=None)``: ``url`` defaults to the ``HUBBUB_URL`` environment variable, then
/// ``http://127.0.0.1:9772``; ``api_key`` to ``HUBBUB_API_KEY``, then none (a hub in
/// zero-config mode accepts loopback callers without a key). An environment variable set
/// to the empty string counts as unset. ``timeout`` bounds each call, in seconds.
///
/// A ``redis://`` URL publishes straight into the Redis the hubs share
/// (``engine = "redis"``; the hubs' whole ``redis_url``, where it lists several
/// instances), with no HTTP hop: ``namespaces`` must then be the hubs'
/// namespaces, as their config writes them (a list of dicts such as ``{"pattern":
/// "room:*", "history_size": 100, "history_ttl": "10m"}``; ``[]`` where no channel keeps
/// history), and ``redis_prefix`` their ``redis_prefix`` (default ``"hubbub"``). Whoever
/// can write to that Redis can publish anything: see "Publishing through Redis" in the
/// docs.
///
/// Every method blocks until the hub answers and returns its answer, decoded. The GIL is
/// released while waiting, and one Publisher may be shared by any number of threads. Each
/// thread keeps its connections to the hub alive and reuses them for its next calls.
#[pyclass(frozen, module = "hubbub")]
pub struct Publisher {
    inner: blocking::Publisher,
}

impl Publisher {
    /// Runs a call on this thread, without the GIL, and decodes its answer.
    fn run<'py>(
        &self,
        py: Python<'py>,
        call: impl FnOnce(&blocking::Publisher) -> Result<Answer, Error> + Send,
    ) -> PyResult<Bound<'py, PyAny>> {
        let answer = py
            .detach(|| call(&self.inner))
            .map_err(|e| errors::call(py, e))?;
        answer.into_python(py)
    }
}

#[pymethods]
impl Publisher {
    #[new]
    #[pyo3(signature = (url=None, api_key=None, timeout=5.0, *, namespaces=None, redis_prefix=None))]
    fn new(
        url: Option<String>,
        api_key: Option<String>,
        timeout: f64,
        namespaces: Option<&Bound<'_, PyAny>>,
        redis_prefix: Option<String>,
    ) -> PyResult<Publisher> {
        let endpoint = endpoint(url, api_key, timeout, namespaces, redis_prefix)?;
        Ok(Publisher {
            inner: blocking::Publisher::for_endpoint(endpoint),
        })
    }

    /// The hub's base URL (a Redis URL without its password).
    #[getter]
    fn url(&self) -> &str {
        self.inner.url()
    }

    /// The time limit of each call, in seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        self.inner.endpoint().timeout().as_secs_f64()
    }

    fn __repr__(&self) -> String {
        format!("Publisher(url='{}')", self.inner.url())
    }

    /// Publishes ``data`` (any JSON value) to every subscriber of ``channel``.
    ///
    /// Returns ``{"published": channel}``, plus ``"offset"`` and ``"epoch"`` (the
    /// publication's place in the channel's stream) where the channel keeps history. A
    /// channel without subscribers is fine: the publication reaches nobody.
    #[pyo3(signature = (channel, data, event="message".to_owned()), text_signature = "(self, channel, data, event='message')")]
    fn publish<'py>(
        &self,
        py: Python<'py>,
        channel: String,
        data: &Bound<'py, PyAny>,
        event: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data = json::encode(data)?;
        self.run(py, |p| answer(p.publish(channel, event, &data)))
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
        let channels = channel_list(channels)?;
        let data = json::encode(data)?;
        self.run(py, |p| answer(p.broadcast(channels, event, &data)))
    }

    /// Sends ``data`` to one connection (``client=`` its client id) or to every connection
    /// of one user (``user=`` the token's ``sub`` or the configured user's name).
    ///
    /// Returns ``{"directSent": client_or_user, "delivered": n}``; raises
    /// ``InvalidClient`` when nobody matched (nobody connected as that client or user).
    #[pyo3(signature = (data, *, client=None, user=None, event="message".to_owned()), text_signature = "(self, data, *, client=None, user=None, event='message')")]
    fn direct<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        client: Option<String>,
        user: Option<String>,
        event: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let target = target(client, user)?;
        let data = json::encode(data)?;
        self.run(py, |p| answer(p.direct(target, event, &data)))
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
        let target = target(client, user)?;
        self.run(py, |p| answer(p.disconnect(target)))
    }

    /// The channels that have subscribers: ``{"channels": {name: {"subscribers": n}}}``.
    fn channels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |p| answer(p.channels()))
    }

    /// The hub's version and counters: ``{"version", "connections", "channels",
    /// "uptime_s"}``.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |p| answer(p.info()))
    }

    /// The channel's position and the messages it keeps, oldest first: ``{"channel",
    /// "epoch", "offset", "messages": [{"channel", "event", "data", "offset"}, ...]}``.
    ///
    /// Without ``since``, the newest ``limit`` messages; with ``since``, the first
    /// ``limit`` after that offset; without ``limit``, every message kept. ``limit=0``
    /// gives just the position (``epoch`` and ``offset``). Raises ``InvalidChannel`` where
    /// the channel's namespace keeps no history.
    #[pyo3(signature = (channel, limit=None, since=None))]
    fn history<'py>(
        &self,
        py: Python<'py>,
        channel: String,
        limit: Option<u64>,
        since: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |p| {
            p.history(&channel, limit, since).map(Answer::History)
        })
    }

    /// Every connection subscribed to ``channel``: ``{"channel", "clients": [{"client",
    /// "user", "info"}, ...]}`` (``user`` is None for an anonymous connection; ``info`` is
    /// there where the connection has one). Raises ``InvalidChannel`` where the channel's
    /// namespace has no presence.
    fn presence<'py>(&self, py: Python<'py>, channel: String) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |p| p.presence(&channel).map(Answer::Presence))
    }

    /// How many connections and distinct users are subscribed to ``channel``:
    /// ``{"channel", "clients": n, "users": m}``. Raises ``InvalidChannel`` where the
    /// channel's namespace has no presence.
    fn presence_stats<'py>(&self, py: Python<'py>, channel: String) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, |p| answer(p.presence_stats(&channel)))
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
    /// Starts a call of hubbub-publisher's async publisher on the I/O thread, over the
    /// process's pool; `done` hears how it ended.
    fn start<F>(
        &self,
        done: Py<PyAny>,
        call: impl FnOnce(hubbub_publisher::Publisher) -> F,
    ) -> PyResult<PendingCall>
    where
        F: Future<Output = Result<Answer, Error>> + Send + 'static,
    {
        let process = Process::current()?;
        let publisher = hubbub_publisher::Publisher::with_connections(
            self.endpoint.clone(),
            process.connections.clone(),
        );
        let call = call(publisher);
        let task = process.runtime.spawn(async move {
            let outcome = call.await;
            // Python may be shutting down, with nobody left to tell.
            crate::transport::in_python(|py| {
                let (answer, error) = match outcome.map(|a| a.into_python(py)) {
                    Ok(Ok(answer)) => (answer.unbind(), None),
                    Ok(Err(err)) => (py.None(), Some(err.into_value(py))),
                    Err(err) => (py.None(), Some(errors::call(py, err).into_value(py))),
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
    #[pyo3(signature = (url=None, api_key=None, timeout=5.0, *, namespaces=None, redis_prefix=None))]
    fn new(
        url: Option<String>,
        api_key: Option<String>,
        timeout: f64,
        namespaces: Option<&Bound<'_, PyAny>>,
        redis_prefix: Option<String>,
    ) -> PyResult<CallbackPublisher> {
        Ok(CallbackPublisher {
            endpoint: endpoint(url, api_key, timeout, namespaces, redis_prefix)?,
        })
    }

    /// The hub's base URL (a Redis URL without its password).
    #[getter]
    fn url(&self) -> &str {
        self.endpoint.url()
    }

    /// The time limit of each call, in seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        self.endpoint.timeout().as_secs_f64()
    }

    /// ``Publisher.publish``, answering through ``done``.
    fn publish(
        &self,
        done: Py<PyAny>,
        channel: String,
        data: &Bound<'_, PyAny>,
        event: String,
    ) -> PyResult<PendingCall> {
        let data: RawJson = json::encode(data)?;
        self.start(done, |p| async move {
            answer(p.publish(channel, event, &data).await)
        })
    }

    /// ``Publisher.broadcast``, answering through ``done``.
    fn broadcast(
        &self,
        done: Py<PyAny>,
        channels: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        event: String,
    ) -> PyResult<PendingCall> {
        let channels = channel_list(channels)?;
        let data = json::encode(data)?;
        self.start(done, |p| async move {
            answer(p.broadcast(channels, event, &data).await)
        })
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
        let target = target(client, user)?;
        let data = json::encode(data)?;
        self.start(done, |p| async move {
            answer(p.direct(target, event, &data).await)
        })
    }

    /// ``Publisher.disconnect``, answering through ``done``.
    #[pyo3(signature = (done, client, user))]
    fn disconnect(
        &self,
        done: Py<PyAny>,
        client: Option<String>,
        user: Option<String>,
    ) -> PyResult<PendingCall> {
        let target = target(client, user)?;
        self.start(done, |p| async move { answer(p.disconnect(target).await) })
    }

    /// ``Publisher.channels``, answering through ``done``.
    fn channels(&self, done: Py<PyAny>) -> PyResult<PendingCall> {
        self.start(done, |p| async move { answer(p.channels().await) })
    }

    /// ``Publisher.info``, answering through ``done``.
    fn info(&self, done: Py<PyAny>) -> PyResult<PendingCall> {
        self.start(done, |p| async move { answer(p.info().await) })
    }

    /// ``Publisher.history``, answering through ``done``.
    #[pyo3(signature = (done, channel, limit, since))]
    fn history(
        &self,
        done: Py<PyAny>,
        channel: String,
        limit: Option<u64>,
        since: Option<u64>,
    ) -> PyResult<PendingCall> {
        self.start(done, |p| async move {
            p.history(&channel, limit, since).await.map(Answer::History)
        })
    }

    /// ``Publisher.presence``, answering through ``done``.
    fn presence(&self, done: Py<PyAny>, channel: String) -> PyResult<PendingCall> {
        self.start(done, |p| async move {
            p.presence(&channel).await.map(Answer::Presence)
        })
    }

    /// ``Publisher.presence_stats``, answering through ``done``.
    fn presence_stats(&self, done: Py<PyAny>, channel: String) -> PyResult<PendingCall> {
        self.start(
            done,
            |p| async move { answer(p.presence_stats(&channel).await) },
        )
    }
}
