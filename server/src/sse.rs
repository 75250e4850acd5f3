//! Server-Sent Events: a channel read by a plain `EventSource`, with no client library
//! (nchan's way of serving pages).
//!
//! `GET /sse/{channel}` is a session like a WebSocket's, anonymous, that subscribes to one
//! channel and turns every `message` frame queued for it into an event: `data:` is the
//! message object (`{channel, event, data, offset?, from?}`), and where the channel keeps
//! history, `id:` is its position, `<epoch>:<offset>`. When the browser's `EventSource`
//! reconnects by itself it sends that id back as `Last-Event-ID`, and the subscription
//! resumes from it exactly as a WebSocket client's `since` does: what was missed comes
//! first, nothing twice. The stream goes through the connection's bounded queue
//! (`outbox.rs`), so a reader that falls behind is dropped as too slow, and ends when the
//! browser goes (keep-alive comments find a vanished peer), on `/api/disconnect` and on
//! shutdown; then the session is taken off the node.

use crate::connection::new_client_id;
use crate::node::Node;
use crate::outbox::{ClientHandle, Control, Frame, Outbound};
use crate::session::Session;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use hubbub_core::hub::ClientId;
use hubbub_core::protocol::{
    Command, ErrorBody, PresentClient, ServerFrame, Since, StreamPosition, Subscribe,
};
use hubbub_core::Error;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// How long a browser's `EventSource` waits before reconnecting (its own default is a few
/// seconds, which is a long gap in a live page).
const RETRY: Duration = Duration::from_secs(1);

/// `GET /sse/{channel}`: the channel's messages as an event stream, for anonymous readers
/// (`[anonymous] read`), from the page's origin where `allowed_origins` lets it in.
pub async fn read_channel(
    State(node): State<Arc<Node>>,
    Path(channel): Path<String>,
    headers: HeaderMap,
) -> Response {
    if node.shutdown.is_triggered() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let origin = headers.get(header::ORIGIN).cloned();
    if let Some(origin) = &origin {
        if !node.config.origin_allowed(origin.to_str().unwrap_or("")) {
            let refusal = Error::AccessDenied.because("origin not allowed");
            return refused(ErrorBody::from(refusal));
        }
    }
    let since = headers
        .get("last-event-id")
        .and_then(|id| position(id.to_str().ok()?))
        .map_or(Since::Latest, Since::Position);

    let (tx, rx) = mpsc::channel(node.config.client_queue);
    let control = Arc::new(Control::default());
    let handle = ClientHandle::new(tx.clone(), control.clone());
    let id = new_client_id();
    node.connect(id.clone(), handle.clone());
    let mut session = Session::new(node.clone(), id.clone(), tx, handle, None);
    let mut reader = Reader {
        who: session.present().clone(),
        node,
        id,
        control,
        rx,
        epoch: String::new(),
        _alive: None,
    };
    reader._alive = Some(reader.node.shutdown.connection());
    let subscribe = Command::Subscribe(Subscribe {
        channel,
        since: Some(since),
    });
    session.handle(&subscribe.to_json()).await;
    drop(session);

    // What the subscription queued: the messages recovered since `Last-Event-ID`, then
    // its answer, which says the stream's epoch, or why not.
    let mut recovered = Vec::new();
    while let Ok(outbound) = reader.rx.try_recv() {
        match outbound {
            Outbound::Frame(frame) => recovered.push(frame),
            Outbound::Answer(answer) => {
                match ServerFrame::parse(answer.0.as_str()) {
                    Ok(ServerFrame::Resubscribed(r)) => reader.epoch = r.epoch,
                    Ok(ServerFrame::Err(body)) => return refused(body),
                    _ => {}
                }
                break;
            }
            Outbound::Ping | Outbound::Close(..) => {}
        }
    }
    let first: Vec<_> = recovered
        .iter()
        .filter_map(|frame| event(frame, &reader.epoch))
        .collect();
    // Comments at the ping interval: a write to a browser that vanished fails, and ends
    // the stream.
    let keep_alive = KeepAlive::new().interval(reader.node.config.ping_interval);
    let hello = Event::default().retry(RETRY).comment("hubbub");
    let events = stream::iter(std::iter::once(hello).chain(first)).chain(live(reader));
    let mut response = Sse::new(events.map(Ok::<_, Infallible>))
        .keep_alive(keep_alive)
        .into_response();
    // A page of another origin may read the stream only if told so.
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// The refusal of a subscription as an HTTP error: `EventSource` does not retry those.
fn refused(body: ErrorBody) -> Response {
    let status = match body.err {
        Error::AccessDenied => StatusCode::FORBIDDEN,
        Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, Json(body)).into_response()
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

/// The event for a frame queued for the reader: `message` frames only (nothing else is
/// sent to a session that only subscribed).
fn event(frame: &Frame, epoch: &str) -> Option<Event> {
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

/// The live part of the stream: what the node queues for the reader, until it is closed.
fn live(reader: Reader) -> impl Stream<Item = Event> {
    stream::unfold(reader, |mut reader| async move {
        loop {
            let outbound = if reader.control.draining().is_cancelled() {
                // Closed after its queue: what is queued, then the end.
                reader.rx.try_recv().ok()
            } else {
                tokio::select! {
                    () = reader.control.stopped().cancelled() => None,
                    () = reader.control.draining().cancelled() => continue,
                    next = reader.rx.recv() => next,
                }
            };
            match outbound? {
                Outbound::Frame(frame) => {
                    if let Some(event) = event(&frame, &reader.epoch) {
                        return Some((event, reader));
                    }
                }
                Outbound::Close(..) => return None,
                Outbound::Answer(_) | Outbound::Ping => {}
            }
        }
    })
}

/// One reader's place on the node, given up when its stream is dropped: the browser went,
/// the node closed it, or the server shuts down.
struct Reader {
    node: Arc<Node>,
    id: ClientId,
    who: PresentClient,
    control: Arc<Control>,
    rx: mpsc::Receiver<Outbound>,
    /// The epoch of the channel's stream, for the events' ids.
    epoch: String,
    /// Counted among the connections that shutdown waits for.
    _alive: Option<TaskTrackerToken>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        let node = self.node.clone();
        let id = self.id.clone();
        let who = self.who.clone();
        let alive = self._alive.take();
        tokio::spawn(async move {
            node.disconnect(&id, &who).await;
            tracing::debug!(client = %id, "event stream ended");
            drop(alive);
        });
    }
}
