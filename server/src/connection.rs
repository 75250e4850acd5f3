//! One WebSocket connection: a reader that runs the client's commands in order, and a
//! writer that drains the connection's bounded queue (`outbox.rs`) in batches.
//!
//! A command may await the engine (or, later, the app). While it runs, the reader keeps
//! reading a few frames ahead (so WebSocket pings are answered), sends its pings, watches
//! the peer's liveness, the token's expiry and the server's shutdown: a stuck command or a
//! peer that stopped reading its socket never keeps a connection alive past two ping
//! intervals.

use crate::hooks::HookFailure;
use crate::metrics::{CodeLabel, METRICS};
use crate::node::Node;
use crate::outbox::{self, encode, ClientHandle, Control, Outbound};
use crate::session::{Session, Step};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hubbub_core::auth::{Identity, Permissions};
use hubbub_core::hooks::{ConnectAnswer, ConnectRequest, EventKind, EventNotice};
use hubbub_core::hub::ClientId;
use hubbub_core::protocol::{close, ServerFrame};
use hubbub_core::Error;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How many queued frames the writer sends before one flush.
const BATCH: usize = 64;

/// How long a close frame may take to go out before the socket is dropped regardless.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long what is queued may take to go out when a connection is closed after its
/// queue (server shutdown, `/api/disconnect`).
const DRAIN_GRACE: Duration = Duration::from_secs(3);

/// Frames read ahead while a command runs; beyond that the reader stops reading, and a
/// peer that keeps writing meets TCP's back-pressure.
const READ_AHEAD: usize = 16;

/// A new client id: 128 random bits, URL-safe, unique on the cluster.
pub(crate) fn new_client_id() -> ClientId {
    uuid::Uuid::new_v4().simple().to_string().into()
}

/// What the app's connect hook is told of the upgrade request.
pub struct Upgrade {
    pub ip: String,
    /// The `forward_headers` the request carried, names in lower case.
    pub headers: std::collections::BTreeMap<String, String>,
}

/// Asks the app's connect hook who a new connection is. `Err` with the close code and
/// reason when the app refuses (4403) or fails (4503), or the server shuts down meanwhile.
async fn identify(
    node: &Node,
    id: &ClientId,
    upgrade: Upgrade,
) -> Result<Option<(Identity, Option<SystemTime>)>, (u16, &'static str)> {
    let Some(hooks) = &node.hooks else {
        return Ok(None);
    };
    let Some(url) = &hooks.config.connect_url else {
        return Ok(None);
    };
    let request = ConnectRequest {
        client: id.to_string(),
        ip: upgrade.ip,
        headers: upgrade.headers,
    };
    let answer = tokio::select! {
        answer = hooks.call::<ConnectAnswer>(url, &request) => answer,
        _ = node.shutdown.triggered() => return Err((close::GOING_AWAY, "server shutting down")),
    };
    match answer {
        Ok(answer) => {
            let expires = answer
                .expires_in
                .map(|s| SystemTime::now() + Duration::from_secs(s));
            let identity = match answer.user {
                Some(user) => Identity {
                    user: Some(user),
                    info: answer.info,
                    permissions: Permissions::new(answer.read, answer.write),
                },
                None => node.auth.anonymous(),
            };
            Ok(Some((identity, expires)))
        }
        Err(HookFailure::Refused(reason)) => {
            tracing::debug!(client = %id, "connect hook refused: {reason}");
            Err((close::ACCESS_DENIED, "access denied"))
        }
        Err(HookFailure::Unavailable(reason)) => {
            tracing::warn!(client = %id, "connect hook failed: {reason}");
            Err((close::APP_UNAVAILABLE, "app unavailable"))
        }
    }
}

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// Runs one connection from the welcome to the close. The socket is split before the
/// future is made, so the future holds two pointers rather than the whole socket for as
/// long as the connection lives.
pub fn serve(
    node: Arc<Node>,
    socket: WebSocket,
    upgrade: Option<Upgrade>,
) -> impl Future<Output = ()> + Send {
    let (sink, stream) = socket.split();
    serve_split(node, sink, stream, upgrade)
}

async fn serve_split(node: Arc<Node>, sink: Sink, stream: Stream, upgrade: Option<Upgrade>) {
    let _alive = node.shutdown.connection();
    let id = new_client_id();
    // Asking the app and refusing are boxed: inline, their futures would make every
    // connection's task larger for as long as it lives, hooks or not.
    let identified = match upgrade {
        Some(upgrade) => Box::pin(identify(&node, &id, upgrade)).await,
        None => Ok(None),
    };
    let identified = match identified {
        Ok(identified) => identified,
        Err((code, reason)) => {
            Box::pin(refuse_split(sink, stream, code, reason)).await;
            return;
        }
    };
    let user = identified
        .as_ref()
        .and_then(|(identity, _)| identity.user.clone());
    let (tx, rx) = mpsc::channel(node.config.client_queue);
    let control = Arc::new(Control::default());
    let handle = ClientHandle::new(tx.clone(), control.clone());
    // The welcome goes first: nothing else can be queued before the hub knows the client.
    let welcome = encode(&ServerFrame::Connected {
        client: id.to_string(),
        user: user.clone(),
    });
    let _ = tx.try_send(Outbound::Frame(welcome));
    node.connect(id.clone(), handle.clone());
    if user.is_some() {
        node.set_user(&id, user);
    }
    tracing::debug!(client = %id, "connected");

    let write_timeout = node.config.ping_interval * 2;
    let mut writer = tokio::spawn(write(sink, rx, control.clone(), write_timeout));
    // Boxed: the reader holds it by pointer, not twice inline (as its argument and while
    // idle) in its future.
    let session = Box::new(Session::new(
        node.clone(),
        id.clone(),
        tx.clone(),
        handle,
        identified,
    ));
    let who = read(&node, session, stream, &control, tx).await;

    node.disconnect(&id, &who).await;
    if let Some(hooks) = &node.hooks {
        hooks.notify(EventNotice {
            event: EventKind::Disconnect,
            client: id.to_string(),
            user: who.user.clone(),
            channel: None,
            clients_in_channel: Vec::new(),
            clients_count: 0,
        });
    }
    // The writer ends by itself within its graces; this bound only guards against a bug.
    if tokio::time::timeout(DRAIN_GRACE + CLOSE_GRACE * 3, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    match control.close_code() {
        Some((code, reason)) => tracing::debug!(client = %id, code, reason, "disconnected"),
        // The client closed, asked to (`disconnect`), or its connection was lost.
        None => tracing::debug!(client = %id, by = "client", "disconnected"),
    }
}

/// Closes a connection that may not be opened, before any welcome.
pub async fn refuse_connection(socket: WebSocket, code: u16, reason: &'static str) {
    let (sink, stream) = socket.split();
    refuse_split(sink, stream, code, reason).await
}

async fn refuse_split(mut sink: Sink, mut stream: Stream, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
    // Wait (briefly) for the peer's close, so that the close frame is not lost to a reset.
    let _ = tokio::time::timeout(CLOSE_GRACE, stream.next()).await;
}

type Running = Pin<Box<dyn Future<Output = (Box<Session>, Step)> + Send>>;

/// Runs one command, handing the session back with what the reader does next.
fn run(mut session: Box<Session>, text: Utf8Bytes) -> Running {
    Box::pin(async move {
        let step = session.handle(text.as_str()).await;
        (session, step)
    })
}

fn refuse(mut session: Box<Session>, rejection: hubbub_core::Rejection) -> Running {
    Box::pin(async move {
        let step = session.refuse(rejection).await;
        (session, step)
    })
}

/// When a session's token expires, as a point on the runtime's clock.
fn deadline(expires: Option<SystemTime>) -> Option<Instant> {
    let expires = expires?;
    let left = expires
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}

/// The reader: runs commands in order until the client leaves or the connection is told
/// to stop; watches the peer's liveness, the token's expiry and the server's shutdown.
/// Returns who the session was at the end, for presence and leave notices.
async fn read(
    node: &Node,
    session: Box<Session>,
    mut stream: Stream,
    control: &Control,
    pings: mpsc::Sender<Outbound>,
) -> hubbub_core::protocol::PresentClient {
    let interval = node.config.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
    // A peer is alive while it sends something (a command, a pong) every two intervals.
    // Each frame only notes the time; the timer is moved when it fires, so a chatty peer
    // costs no timer work per frame.
    let liveness = tokio::time::sleep(interval * 2);
    let mut last_seen = Instant::now();
    // Only a session whose identity expires has a timer for it.
    // (An identity from the connect hook may expire before any command.)
    let mut expires = session.expires();
    let mut expiry = deadline(expires).map(|at| Box::pin(tokio::time::sleep_until(at)));
    // Made once, not on every turn of the loop: each would register a waiter anew.
    let stopped = control.stopped().cancelled();
    let draining = control.draining().cancelled();
    let shutdown = node.shutdown.triggered();
    tokio::pin!(stopped, draining, shutdown, liveness);

    let mut idle: Option<Box<Session>> = Some(session);
    let mut running: Option<Running> = None;
    let mut ahead: VecDeque<Message> = VecDeque::new();
    let mut who = idle.as_ref().expect("idle at start").present().clone();
    let mut reading = true;
    loop {
        // Start the next command where none runs.
        if running.is_none() {
            if let Some(message) = ahead.pop_front() {
                let session = idle.take().expect("a session when nothing runs");
                METRICS.frames_in.inc();
                let bytes = match &message {
                    Message::Text(text) => text.len(),
                    Message::Binary(data) => data.len(),
                    _ => 0,
                };
                METRICS.bytes_in.inc_by(bytes as u64);
                running = Some(match message {
                    Message::Text(text) => run(session, text),
                    _ => refuse(
                        session,
                        Error::InvalidPayload.because("binary frames are not part of the protocol"),
                    ),
                });
            } else if !reading {
                return who;
            }
        }
        tokio::select! {
            biased;
            _ = &mut stopped => return who,
            _ = &mut draining => return who,
            _ = &mut shutdown => {
                control.close_after_queue(close::GOING_AWAY, "server shutting down");
                return who;
            }
            _ = &mut liveness => {
                let due = last_seen + interval * 2;
                if due > Instant::now() {
                    liveness.as_mut().reset(due);
                    continue;
                }
                control.close(close::GOING_AWAY, "ping timeout");
                return who;
            }
            _ = async { expiry.as_mut().expect("guarded").await }, if expiry.is_some() => {
                control.close_after_queue(close::TOKEN_EXPIRED, "token expired");
                return who;
            }
            _ = ping.tick() => {
                let _ = pings.try_send(Outbound::Ping);
            }
            (session, step) = async { running.as_mut().expect("guarded").await }, if running.is_some() => {
                running = None;
                who = session.present().clone();
                if session.expires() != expires {
                    expires = session.expires();
                    expiry = deadline(expires).map(|at| Box::pin(tokio::time::sleep_until(at)));
                }
                idle = Some(session);
                if let Step::Stop = step {
                    return who;
                }
            }
            message = stream.next(), if reading && ahead.len() < READ_AHEAD => {
                match message {
                    None => {
                        control.stop();
                        reading = false;
                    }
                    Some(Err(e)) => {
                        if is_too_big(e) {
                            control.close(close::TOO_BIG, "frame too large");
                        } else {
                            control.stop();
                        }
                        return who;
                    }
                    Some(Ok(message)) => {
                        last_seen = Instant::now();
                        match message {
                            Message::Text(_) | Message::Binary(_) => ahead.push_back(message),
                            Message::Ping(_) | Message::Pong(_) => {}
                            Message::Close(_) => {
                                control.stop();
                                return who;
                            }
                        }
                    }
                }
            }
        }
    }
}

fn is_too_big(e: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    matches!(
        e.into_inner().downcast_ref::<WsError>(),
        Some(WsError::Capacity(_))
    )
}

/// How writing a batch ended.
enum Written {
    More,
    /// A queued close: send it, then end.
    Close(CloseFrame),
    Failed,
}

/// The writer: drains the queue in batches with one flush each, until the queue ends, a
/// close is queued, or the connection is told to stop. Told to close after its queue, it
/// sends what is queued (within [`DRAIN_GRACE`]) before the close frame. A batch that
/// cannot be written within `write_timeout` (a peer that stopped reading) ends it.
async fn write(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Outbound>,
    control: Arc<Control>,
    write_timeout: Duration,
) {
    // Grows with the batches that actually come: an idle connection keeps a few slots
    // instead of BATCH of them (2.5 KiB).
    let mut batch = Vec::new();
    let stopped = control.stopped().cancelled();
    let draining = control.draining().cancelled();
    tokio::pin!(stopped, draining);
    let mut drain_deadline: Option<Instant> = None;
    let close = loop {
        let received = tokio::select! {
            biased;
            _ = &mut stopped => break close_frame(&control),
            _ = &mut draining, if drain_deadline.is_none() => {
                // Nothing more is taken; what is queued still goes out.
                rx.close();
                drain_deadline = Some(Instant::now() + DRAIN_GRACE);
                continue;
            }
            n = rx.recv_many(&mut batch, BATCH) => n,
        };
        if received == 0 {
            break close_frame(&control);
        }
        let limit = match drain_deadline {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => write_timeout,
        };
        let written = tokio::select! {
            biased;
            _ = &mut stopped => break close_frame(&control),
            written = tokio::time::timeout(limit, write_batch(&mut sink, &mut batch)) => written,
        };
        match written {
            Ok(Written::More) => {}
            Ok(Written::Close(frame)) => break Some(frame),
            Ok(Written::Failed) => {
                control.stop();
                return;
            }
            Err(_) if drain_deadline.is_some() => break close_frame(&control),
            Err(_) => {
                control.close(close::POLICY, "write timeout");
                control.stop();
                return;
            }
        }
    };
    // Tell the reader, whatever ended the writer.
    control.stop();
    if let Some(frame) = &close {
        count_close(frame);
    }
    if let Some(frame) = close {
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}

fn count_close(frame: &CloseFrame) {
    let code = frame.code;
    METRICS.closes.get_or_create(&CodeLabel { code }).inc();
    if code == close::POLICY && frame.reason.as_str() == outbox::SLOW_CONSUMER {
        METRICS.slow_consumers.inc();
    }
}

fn close_frame(control: &Control) -> Option<CloseFrame> {
    control.close_code().map(|(code, reason)| CloseFrame {
        code,
        reason: reason.into(),
    })
}

async fn write_batch(sink: &mut Sink, batch: &mut Vec<Outbound>) -> Written {
    for outbound in batch.drain(..) {
        let message = match outbound {
            Outbound::Frame(text) => Message::Text(text),
            // The permit goes back to the budget as the frame is handed to the socket.
            Outbound::Answer(answer) => Message::Text(answer.0),
            Outbound::Ping => Message::Ping(Default::default()),
            Outbound::Close(code, reason) => {
                if sink.flush().await.is_err() {
                    return Written::Failed;
                }
                return Written::Close(CloseFrame {
                    code,
                    reason: reason.into(),
                });
            }
        };
        if sink.feed(message).await.is_err() {
            return Written::Failed;
        }
    }
    if sink.flush().await.is_err() {
        return Written::Failed;
    }
    Written::More
}
