//! App hooks (PROTOCOL.md section 10): hubbub asks the application who a connection is,
//! whether it may subscribe, what its own commands answer, and tells it of unsubscribes,
//! logouts and disconnects.
//!
//! Every call is a signed `POST` (`hubbub_core::hooks::sign`) over one kept-alive HTTP
//! client, at most `concurrency` at once per node, each bounded by `timeout`. A call is
//! awaited only by the command that needs it: the connection keeps answering pings and
//! obeying shutdown meanwhile (see `connection.rs`), and no lock is held across it, so the
//! app may call the HTTP API from inside a hook. A hook that fails fails closed. Event
//! notices never block anyone: they are queued, posted in the background, retried a few
//! times with backoff, then logged and counted.

use crate::config::HooksConfig;
use crate::metrics::METRICS;
use backon::{ExponentialBuilder, Retryable};
use hubbub_core::hooks::{self, EventNotice, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Event notices waiting to be posted; past this, new ones are dropped (and counted)
/// rather than held without bound while the app is down.
const EVENT_QUEUE: usize = 10_000;

/// How a hook call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookFailure {
    /// The app answered with a 4xx status: it refuses.
    Refused(String),
    /// The app could not be reached, timed out, failed (5xx) or answered garbage.
    Unavailable(String),
}

impl HookFailure {
    pub fn reason(&self) -> &str {
        match self {
            HookFailure::Refused(r) | HookFailure::Unavailable(r) => r,
        }
    }
}

/// The hooks of one node.
pub struct Hooks {
    pub config: HooksConfig,
    caller: Arc<Caller>,
    events: mpsc::Sender<EventNotice>,
}

/// What makes one signed call: shared with the task that posts event notices.
struct Caller {
    http: reqwest::Client,
    secret: Vec<u8>,
    timeout: Duration,
    limit: Semaphore,
    failed_events: AtomicU64,
}

impl Hooks {
    /// The hooks `config` describes; starts the task that posts event notices.
    pub fn new(config: HooksConfig) -> Hooks {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client with default settings builds");
        let caller = Arc::new(Caller {
            http,
            secret: config.secret.as_bytes().to_vec(),
            timeout: config.timeout,
            limit: Semaphore::new(config.concurrency),
            failed_events: AtomicU64::new(0),
        });
        let (events, queue) = mpsc::channel(EVENT_QUEUE);
        if let Some(url) = config.events_url.clone() {
            tokio::spawn(post_events(caller.clone(), url, queue));
        }
        Hooks {
            config,
            caller,
            events,
        }
    }

    /// Calls `url` with `body`; the app's answer, read as `A`.
    pub async fn call<A: DeserializeOwned>(
        &self,
        url: &reqwest::Url,
        body: &impl Serialize,
    ) -> Result<A, HookFailure> {
        let hook = self.name_of(url);
        let started = std::time::Instant::now();
        let answer = self.caller.call(url, body).await;
        // A refusal is an answer; only a hook the app failed to answer counts as failed.
        let failed = matches!(answer, Err(HookFailure::Unavailable(_)));
        METRICS.hook(hook, started.elapsed(), failed);
        answer
    }

    /// Which hook `url` is, for the metrics (one URL may serve several: the first named).
    fn name_of(&self, url: &reqwest::Url) -> &'static str {
        let c = &self.config;
        [
            (&c.connect_url, "connect"),
            (&c.subscribe_url, "subscribe"),
            (&c.rpc_url, "rpc"),
        ]
        .into_iter()
        .find(|(u, _)| u.as_ref() == Some(url))
        .map_or("other", |(_, name)| name)
    }

    /// Queues an event notice for the app, without waiting; dropped (and counted) when
    /// the queue is full or no `events_url` is set.
    pub fn notify(&self, notice: EventNotice) {
        if self.config.events_url.is_none() {
            return;
        }
        if self.events.try_send(notice).is_err() {
            let lost = self.caller.failed_events.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                lost,
                "event notice dropped: {EVENT_QUEUE} already wait for the app"
            );
        }
    }
}

impl Caller {
    async fn call<A: DeserializeOwned>(
        &self,
        url: &reqwest::Url,
        body: &impl Serialize,
    ) -> Result<A, HookFailure> {
        let bytes = self.post(url, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            HookFailure::Unavailable(format!(
                "{url} answered something that is not a hook answer: {e}"
            ))
        })
    }

    /// Posts `body`, signed; the answer's body where the status is a success.
    async fn post(
        &self,
        url: &reqwest::Url,
        body: &impl Serialize,
    ) -> Result<axum::body::Bytes, HookFailure> {
        let body = serde_json::to_vec(body).expect("hook bodies serialize");
        match tokio::time::timeout(self.timeout, self.send(url, body)).await {
            Ok(answer) => answer,
            Err(_) => Err(HookFailure::Unavailable(format!(
                "{url} did not answer within {:?}",
                self.timeout
            ))),
        }
    }

    async fn send(
        &self,
        url: &reqwest::Url,
        body: Vec<u8>,
    ) -> Result<axum::body::Bytes, HookFailure> {
        let _permit = self.limit.acquire().await.expect("never closed");
        let timestamp = hubbub_core::auth::unix_now();
        let signature = hooks::sign(&self.secret, timestamp, &body);
        let response = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| HookFailure::Unavailable(format!("{url}: {}", without_url(&e))))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| HookFailure::Unavailable(format!("{url}: {}", without_url(&e))))?;
        if status.is_client_error() {
            return Err(HookFailure::Refused(format!("{url} answered {status}")));
        }
        if !status.is_success() {
            return Err(HookFailure::Unavailable(format!("{url} answered {status}")));
        }
        Ok(bytes)
    }
}

/// reqwest's messages repeat the URL, which the caller already names.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

/// Posts event notices as they come, each in its own task (the caller's limit bounds how
/// many at once), retrying a failed one a few times with backoff.
async fn post_events(
    caller: Arc<Caller>,
    url: reqwest::Url,
    mut queue: mpsc::Receiver<EventNotice>,
) {
    while let Some(notice) = queue.recv().await {
        let caller = caller.clone();
        let url = url.clone();
        tokio::spawn(async move {
            // Any success will do: the app need not answer anything in particular.
            let post = || async {
                let started = std::time::Instant::now();
                let posted = caller.post(&url, &notice).await;
                METRICS.hook("events", started.elapsed(), posted.is_err());
                posted
            };
            let posted = post
                .retry(
                    ExponentialBuilder::default()
                        .with_min_delay(Duration::from_millis(200))
                        .with_max_times(3)
                        .with_jitter(),
                )
                .await;
            if let Err(e) = posted {
                let lost = caller.failed_events.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    lost,
                    event = ?notice.event,
                    client = %notice.client,
                    "event notice not delivered after retries: {}",
                    e.reason()
                );
            }
        });
    }
}
