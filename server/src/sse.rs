//! Server-Sent Events: the hub for browsers where WebSocket cannot be used.
//!
//! Two forms, both sessions like a WebSocket connection's (`session.rs`), fed by the same
//! bounded queue (`outbox.rs`):
//!
//! - `GET /sse/{channel}`: a channel read by a plain `EventSource`, with no client library
//!   (nchan's way of serving pages). An anonymous session subscribes to the channel, and
//!   every `message` frame becomes an event whose `data:` is the message object
//!   (`{channel, event, data, offset?, from?}`) and, where the channel keeps history, whose
//!   `id:` is its position, `<epoch>:<offset>`. When `EventSource` reconnects by itself it
//!   sends that id back as `Last-Event-ID`, and the subscription resumes from it exactly as
//!   a WebSocket client's `since` does: what was missed comes first, nothing twice.
//! - `GET /connection/sse` and `POST /connection/sse/{session}`: a whole session, the
//!   client library's fallback. The stream opens with an event named `session` holding the
//!   session's secret name (not the client id, which others see in presence), then carries
//!   every frame a WebSocket would, each as one event; the POST bodies carry commands,
//!   one per line, run in order, their answers on the stream; the end of the session comes
//!   as an event named `close` with the code and reason a WebSocket close frame would have.
//!
//! A stream ends when the browser goes (keep-alive comments find a vanished peer), when the
//! node closes the session (`/api/disconnect`, a slow reader, an expired token) and on
//! shutdown; then the session is taken off the node.

use crate::connection::new_client_id;
use crate::node::Node;
use crate::outbox::{encode, ClientHandle, Frame, Outbound, Outbox};
use crate::session::{Session, Step};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use hubbub_core::hub::ClientId;
use hubbub_core::protocol::{
    close, Command, ErrorBody, PresentClient, ServerFrame, Since, StreamPosition, Subscribe,
    COMMANDS_PER_POST,
};
use hubbub_core::Error;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// How long a browser's `EventSource` waits before reconnecting (its own default is a few
/// seconds, which is a long gap in a live page).
const RETRY: Duration = Duration::from_secs(1);

/// The sessions of `/connection/sse` that are open, by their secret names: where their
/// POSTs go.
static SESSIONS: LazyLock<Mutex<HashMap<ClientId, Arc<Posted>>>> = LazyLock::new(Default::default);

/// A session driven by POSTs.
struct Posted {
    /// The node it lives on (the process may run several, in tests).
    node: Arc<Node>,
    /// Locked for a whole POST: commands run one at a time, in order.
    session: tokio::sync::Mutex<Session>,
    /// When the session's token expires, for the stream to close it then.
    expires: watch::Sender<Option<SystemTime>>,
}

/// `GET /sse/{channel}`: the channel's messages as an event stream, for anonymous readers
/// (`[anonymous] read`), from the page's origin where `allowed_origins` lets it in.
pub async fn read_channel(
    State(node): State<Arc<Node>>,
    Path(channel): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refusal(&node, &headers) {
        return refusal;
    }
    let since = headers
        .get("last-event-id")
        .and_then(|id| position(id.to_str().ok()?))
        .map_or(Since::Latest, Since::Position);
    let (mut session, reader) = open(node);
    let subscribe = Command::Subscribe(Subscribe {
        channel,
        since: Some(since),
    })
    .to_json();
    // What the subscription queues, the messages recovered since `Last-Event-ID` and then
    // its answer, is taken while it runs: a long gap may not fit the queue.
    let collect = async {
        let mut recovered = Vec::new();
        while let Some(outbound) = reader.outbox.recv().await {
            match outbound {
                Outbound::Frame(frame) => recovered.push(frame),
                Outbound::Answer(answer) => return (recovered, Some(answer.0.clone())),
                Outbound::Ping | Outbound::Close(..) => {}
            }
        }
        (recovered, None)
    };
    let (_, (recovered, answer)) = tokio::join!(session.handle(&subscribe), collect);
    drop(session);
    let epoch = match answer.as_deref().map(ServerFrame::parse) {
        Some(Ok(ServerFrame::Resubscribed(r))) => r.epoch,
        Some(Ok(ServerFrame::Err(body))) => return refused(body, &headers),
        _ => String::new(),
    };
    let first: Vec<_> = recovered
        .iter()
        .filter_map(|frame| message_event(frame, &epoch))
        .collect();
    let node = reader.node.clone();
    let mode = Mode::Channel { epoch };
    respond(&node, &headers, first, reader.live(mode))
}

/// `GET /connection/sse`: a session whose frames come as events, the welcome first.
pub async fn open_session(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refusal(&node, &headers) {
        return refusal;
    }
    let (session, mut reader) = open(node.clone());
    let welcome = ServerFrame::Connected {
        client: reader.id.to_string(),
        user: None,
    };
    let _ = reader.outbox.try_send(Outbound::Frame(encode(&welcome)));
    let (expires, watching) = watch::channel(None);
    let posted = Arc::new(Posted {
        node: node.clone(),
        session: tokio::sync::Mutex::new(session),
        expires,
    });
    // 128 random bits, like a client id, and known only to this stream's reader.
    let name = new_client_id();
    lock(&SESSIONS).insert(name.clone(), posted);
    let named = Event::default().event("session").data(&*name);
    reader.posted = Some(name);
    let mode = Mode::Session { expires: watching };
    respond(&node, &headers, vec![named], reader.live(mode))
}

/// `POST /connection/sse/{session}`: commands for a session, one JSON object per line, run
/// in order; their answers go out on the session's stream. `204` once they ran.
pub async fn post_commands(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refusal) = refusal(&node, &headers) {
        return refusal;
    }
    let posted = lock(&SESSIONS).get(name.as_str()).cloned();
    let Some(posted) = posted.filter(|p| Arc::ptr_eq(&p.node, &node)) else {
        let gone = Error::InvalidClient.because("no such session: open a new one");
        return with_origin(
            &headers,
            (StatusCode::NOT_FOUND, Json(ErrorBody::from(gone))),
        );
    };
    let limit = node
        .config
        .max_message_size
        .saturating_mul(COMMANDS_PER_POST);
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        let big = Error::LimitExceeded.because("too many commands in one request");
        return with_origin(
            &headers,
            (StatusCode::PAYLOAD_TOO_LARGE, Json(ErrorBody::from(big))),
        );
    };
    let lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    if lines.len() > COMMANDS_PER_POST {
        let many = Error::LimitExceeded.because("too many commands in one request");
        return with_origin(
            &headers,
            (StatusCode::PAYLOAD_TOO_LARGE, Json(ErrorBody::from(many))),
        );
    }
    let mut session = posted.session.lock().await;
    for line in lines {
        let step = match std::str::from_utf8(line) {
            Ok(text) if text.len() <= node.config.max_message_size => session.handle(text).await,
            Ok(_) => {
                let big = Error::LimitExceeded.because("a command larger than max_message_size");
                session.refuse(big).await
            }
            Err(_) => {
                let bad = Error::InvalidPayload.because("commands are UTF-8 JSON text");
                session.refuse(bad).await
            }
        };
        if let Step::Stop = step {
            break;
        }
    }
    posted.expires.send_if_modified(|at| {
        let changed = *at != session.expires();
        *at = session.expires();
        changed
    });
    with_origin(&headers, StatusCode::NO_CONTENT)
}

/// The refusal of what the WebSocket endpoint refuses: requests during shutdown, and
/// pages of an origin `allowed_origins` does not list.
fn refusal(node: &Node, headers: &HeaderMap) -> Option<Response> {
    if node.shutdown.is_triggered() {
        return Some((StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response());
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    match origin {
        Some(origin) if !node.config.origin_allowed(origin) => {
            let refusal = ErrorBody::from(Error::AccessDenied.because("origin not allowed"));
            Some((StatusCode::FORBIDDEN, Json(refusal)).into_response())
        }
        _ => None,
    }
}

/// A new session on the node, anonymous, with its queue (which the reader consumes).
fn open(node: Arc<Node>) -> (Session, Reader) {
    let outbox = Outbox::new(node.config.client_queue);
    let handle = ClientHandle::new(outbox.clone());
    let id = new_client_id();
    node.connect(id.clone(), handle.clone());
    let session = Session::new(node.clone(), id.clone(), handle, None);
    let reader = Reader {
        who: session.present().clone(),
        alive: Some(node.shutdown.connection()),
        node,
        id,
        outbox,
        posted: None,
    };
    (session, reader)
}

/// The event stream: `first`, then the live events.
fn respond(
    node: &Node,
    headers: &HeaderMap,
    first: Vec<Event>,
    live: impl Stream<Item = Event> + Send + 'static,
) -> Response {
    let hello = Event::default().retry(RETRY).comment("hubbub");
    let events = stream::iter(std::iter::once(hello).chain(first)).chain(live);
    // Comments while nothing else goes out: a write to a browser that vanished fails, and
    // ends the stream; proxies keep an idle stream open.
    let keep_alive = KeepAlive::new().interval(node.config.ping_interval);
    let sse = Sse::new(events.map(Ok::<_, Infallible>)).keep_alive(keep_alive);
    with_origin(headers, sse)
}

/// A page of another origin may read the answer only if told so (its origin was checked).
fn with_origin(headers: &HeaderMap, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// The refusal of a subscription as an HTTP error: `EventSource` does not retry those.
fn refused(body: ErrorBody, headers: &HeaderMap) -> Response {
    let status = match body.err {
        Error::AccessDenied => StatusCode::FORBIDDEN,
        Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    with_origin(headers, (status, Json(body)))
}

/// An event id, `<epoch>:<offset>`, as a position. Epochs are opaque, so the offset is
/// what follows the last colon.
fn position(id: &str) -> Option<StreamPosition> {
    let (epoch, offset) = id.rsplit_once(':')?;
    Some(StreamPosition {
        epoch: epoch.to_owned(),
        offset: offset.parse().ok()?,
    })
}

/// The event of a `message` frame on `/sse/{channel}`: nothing else is sent to a session
/// that only subscribed.
fn message_event(frame: &Frame, epoch: &str) -> Option<Event> {
    #[derive(Deserialize)]
    struct Delivery<'a> {
        #[serde(borrow)]
        message: &'a RawValue,
    }
    #[derive(Deserialize)]
    struct Offset {
        offset: Option<u64>,
    }
    let delivery: Delivery = serde_json::from_str(frame.as_str()).ok()?;
    let message = delivery.message.get();
    let event = Event::default().data(message);
    Some(match serde_json::from_str::<Offset>(message) {
        Ok(Offset {
            offset: Some(offset),
        }) => event.id(format!("{epoch}:{offset}")),
        _ => event,
    })
}

/// What a stream sends.
enum Mode {
    /// `/sse/{channel}`: its messages, with ids in the stream of epoch `epoch`.
    Channel { epoch: String },
    /// `/connection/sse`: every frame, and the token's expiry to watch.
    Session {
        expires: watch::Receiver<Option<SystemTime>>,
    },
}

/// One reader's place on the node, given up when its stream is dropped: the browser went,
/// the node closed it, or the server shuts down.
struct Reader {
    node: Arc<Node>,
    id: ClientId,
    who: PresentClient,
    outbox: Arc<Outbox>,
    /// Its name in `SESSIONS`, where it is listed.
    posted: Option<ClientId>,
    /// Counted among the connections that shutdown waits for.
    alive: Option<TaskTrackerToken>,
}

/// Where the live part of a stream stands.
struct Live {
    reader: Reader,
    mode: Mode,
    ended: bool,
}

impl Reader {
    /// What the node queues for the reader, as events, until the session is closed.
    fn live(self, mode: Mode) -> impl Stream<Item = Event> {
        let live = Live {
            reader: self,
            mode,
            ended: false,
        };
        stream::unfold(live, |mut live| async move {
            if live.ended {
                return None;
            }
            let event = live.next().await;
            Some((event, live))
        })
    }
}

impl Live {
    /// The next event; the last one, after which the stream ends, where the session closed.
    async fn next(&mut self) -> Event {
        loop {
            let outbox = self.reader.outbox.clone();
            let outbound = if outbox.is_draining() {
                // Closed after its queue: what is queued, then the end.
                outbox.try_recv()
            } else {
                let expiry = match &mut self.mode {
                    Mode::Session { expires } => *expires.borrow_and_update(),
                    Mode::Channel { .. } => None,
                };
                let left =
                    expiry.map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
                tokio::select! {
                    () = outbox.stopped() => None,
                    () = outbox.draining() => continue,
                    () = self.reader.node.shutdown.triggered() => {
                        outbox.close_after_queue(close::GOING_AWAY, "server shutting down");
                        continue;
                    }
                    () = tokio::time::sleep(left.unwrap_or_default()), if left.is_some() => {
                        outbox.close_after_queue(close::TOKEN_EXPIRED, "token expired");
                        continue;
                    }
                    _ = changed(&mut self.mode) => continue,
                    next = outbox.recv() => next,
                }
            };
            let closing = match outbound {
                Some(Outbound::Frame(frame)) => match &self.mode {
                    Mode::Channel { epoch } => match message_event(&frame, epoch) {
                        Some(event) => return event,
                        None => continue,
                    },
                    Mode::Session { .. } => return Event::default().data(frame.as_str()),
                },
                Some(Outbound::Answer(answer)) => match &self.mode {
                    Mode::Session { .. } => return Event::default().data(answer.0.as_str()),
                    Mode::Channel { .. } => continue,
                },
                Some(Outbound::Ping) => continue,
                Some(Outbound::Close(code, reason)) => Some((code, reason)),
                None => outbox.close_code(),
            };
            self.ended = true;
            let (code, reason) = closing.unwrap_or((close::GOING_AWAY, ""));
            let close = serde_json::json!({ "code": code, "reason": reason });
            return Event::default().event("close").data(close.to_string());
        }
    }
}

/// Resolves when a session's token expiry changes (never for `/sse/{channel}`).
async fn changed(mode: &mut Mode) {
    match mode {
        Mode::Session { expires } => {
            if expires.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        Mode::Channel { .. } => std::future::pending().await,
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(name) = &self.posted {
            lock(&SESSIONS).remove(name);
        }
        let node = self.node.clone();
        let id = self.id.clone();
        let who = self.who.clone();
        let alive = self.alive.take();
        tokio::spawn(async move {
            node.disconnect(&id, &who).await;
            tracing::debug!(client = %id, "event stream ended");
            drop(alive);
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
