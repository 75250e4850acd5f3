//! The blocking [`Publisher`]: the async one's calls, each run to the end on the calling
//! thread.
//!
//! As in mini-redis's `BlockingClient`, it wraps the async client and runs it on a tokio
//! runtime of the current-thread kind, so a call writes the request and reads the answer
//! right on the caller's thread, with no hand-off to another thread and back. Unlike it,
//! the runtime and its pool of connections belong to the calling thread rather than to
//! the publisher: one publisher may be shared by any number of threads at once, each
//! thread keeps its connections alive between calls (and shares them among all its
//! publishers), and nothing is locked.
//!
//! A thread's runtime and pool are made on its first call, and made again in a child
//! after `fork()`: the parent's pooled sockets are shared with the parent, so the child
//! leaves them be. (Python's Celery and gunicorn fork processes that have published.)

use crate::client;
use crate::connections::Connections;
use crate::endpoint::{ConfigError, Endpoint, Options};
use crate::error::{Cause, Error};
use hubbub_core::api::{
    BroadcastPublished, Channels, DirectDelivered, Disconnected, HistoryPage, Info, Presence,
    PresenceStats, Published, Target,
};
use serde::Serialize;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

/// Publishes to a hubbub hub, blocking the calling thread until the hub answers.
///
/// `Send + Sync` and cheap to clone. Must not be called from inside an async runtime
/// (tokio refuses to block one of its threads); use [`crate::Publisher`] there.
///
/// ```no_run
/// use hubbub_publisher::{blocking, Options};
///
/// let hub = blocking::Publisher::new(Options::new())?;
/// hub.publish("hello", "message", &serde_json::json!({"hello": "world"}))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Publisher {
    endpoint: Endpoint,
}

/// The runtime and pool of one thread.
struct Local {
    pid: u32,
    runtime: tokio::runtime::Runtime,
    connections: Connections,
}

thread_local! {
    static LOCAL: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
}

/// This thread's runtime and pool, made on first use and after a fork.
fn local() -> Result<Rc<Local>, String> {
    LOCAL.with(|cell| {
        let pid = std::process::id();
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_some_and(|l| l.pid != pid) {
            // Made before a fork: its sockets are the parent's too, and dropping the
            // runtime would wait for threads that do not exist here. Leave them be.
            std::mem::forget(slot.take());
        }
        if let Some(local) = slot.as_ref() {
            return Ok(Rc::clone(local));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start this thread's runtime: {e}"))?;
        let connections = Connections::new().map_err(|e| e.to_string())?;
        let local = Rc::new(Local {
            pid,
            runtime,
            connections,
        });
        *slot = Some(Rc::clone(&local));
        Ok(local)
    })
}

impl Publisher {
    /// A publisher for the hub that `options` name, falling back on `HUBBUB_URL` and
    /// `HUBBUB_API_KEY` (see [`Options`]). Nothing is sent until the first call.
    pub fn new(options: Options) -> Result<Publisher, ConfigError> {
        Ok(Publisher::for_endpoint(Endpoint::new(options)?))
    }

    /// A publisher for the hub that the environment names.
    pub fn from_env() -> Result<Publisher, ConfigError> {
        Publisher::new(Options::new())
    }

    /// A publisher for an endpoint already resolved.
    pub fn for_endpoint(endpoint: Endpoint) -> Publisher {
        Publisher { endpoint }
    }

    /// Where the calls go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The hub's base URL.
    pub fn url(&self) -> &str {
        self.endpoint.url()
    }

    /// Runs one call of the async publisher on this thread's runtime and pool.
    fn run<T, F>(&self, call: impl FnOnce(client::Publisher) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        let local = local().map_err(|detail| Error::Unavailable {
            url: self.endpoint.url().to_owned(),
            cause: Cause::Unreachable(detail),
        })?;
        let publisher =
            client::Publisher::with_connections(self.endpoint.clone(), local.connections.clone());
        local.runtime.block_on(async {
            // The runtime sleeps between calls. Yielding once lets it read what happened
            // meanwhile, so connections the hub has closed (a restart, an idle timeout)
            // leave the pool before this request picks one.
            tokio::task::yield_now().await;
            call(publisher).await
        })
    }

    /// [`crate::Publisher::publish`], blocking.
    pub fn publish<D: Serialize + ?Sized>(
        &self,
        channel: impl Into<String>,
        event: impl Into<String>,
        data: &D,
    ) -> Result<Published, Error> {
        self.run(|p| async move { p.publish(channel, event, data).await })
    }

    /// [`crate::Publisher::broadcast`], blocking.
    pub fn broadcast<D: Serialize + ?Sized>(
        &self,
        channels: impl IntoIterator<Item = impl Into<String>>,
        event: impl Into<String>,
        data: &D,
    ) -> Result<BroadcastPublished, Error> {
        self.run(|p| async move { p.broadcast(channels, event, data).await })
    }

    /// [`crate::Publisher::direct`], blocking.
    pub fn direct<D: Serialize + ?Sized>(
        &self,
        target: Target,
        event: impl Into<String>,
        data: &D,
    ) -> Result<DirectDelivered, Error> {
        self.run(|p| async move { p.direct(target, event, data).await })
    }

    /// [`crate::Publisher::disconnect`], blocking.
    pub fn disconnect(&self, target: Target) -> Result<Disconnected, Error> {
        self.run(|p| async move { p.disconnect(target).await })
    }

    /// [`crate::Publisher::channels`], blocking.
    pub fn channels(&self) -> Result<Channels, Error> {
        self.run(|p| async move { p.channels().await })
    }

    /// [`crate::Publisher::info`], blocking.
    pub fn info(&self) -> Result<Info, Error> {
        self.run(|p| async move { p.info().await })
    }

    /// [`crate::Publisher::history`], blocking.
    pub fn history(
        &self,
        channel: &str,
        limit: Option<u64>,
        since: Option<u64>,
    ) -> Result<HistoryPage, Error> {
        self.run(|p| async move { p.history(channel, limit, since).await })
    }

    /// [`crate::Publisher::presence`], blocking.
    pub fn presence(&self, channel: &str) -> Result<Presence, Error> {
        self.run(|p| async move { p.presence(channel).await })
    }

    /// [`crate::Publisher::presence_stats`], blocking.
    pub fn presence_stats(&self, channel: &str) -> Result<PresenceStats, Error> {
        self.run(|p| async move { p.presence_stats(channel).await })
    }
}
