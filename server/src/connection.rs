//! One WebSocket connection, in one task: it runs the client's commands in order, writes
//! what the connection's bounded queue (`outbox.rs`) holds in batches, sends pings, and
//! watches the peer's liveness and the token's expiry. The server's shutdown reaches it
//! through its queue, like `/api/disconnect` (the node tells every connection).
//!
//! One task rather than a reader and a writer: an idle connection costs one task's memory,
//! and a delivery wakes one task. A command may await the engine or the app; it runs as a
//! future the loop polls beside everything else, so while it waits the connection keeps
//! writing (its answer may be waiting for room in the queue), reads a few frames ahead (so
//! WebSocket pings are answered) and obeys a stop. A batch is written with a time limit: a
//! peer that stopped reading its socket never keeps a connection alive past two ping
//! intervals.
//!
//! Deliveries wake the task far more often than the peer writes, so the socket is read
//! only when it woke the task ([`ReadWake`]): a delivery costs no read attempt.

use crate::hooks::HookFailure;
use crate::metrics::{CodeLabel, METRICS};
use crate::node::Node;
use crate::outbox::{self, encode, ClientHandle, Outbound, Outbox, Signal};
use crate::session::{Session, Step};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::task::{ArcWake, AtomicWaker};
use futures_util::{SinkExt, StreamExt};
use hubbub_core::auth::{Identity, Permissions};
use hubbub_core::hooks::{ConnectAnswer, ConnectRequest, EventKind, EventNotice};
use hubbub_core::hub::ClientId;
use hubbub_core::protocol::{close, ServerFrame};
use hubbub_core::Error;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How many queued frames a connection writes before one flush.
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

/// Runs one connection from the welcome to the close.
pub fn serve(
    node: Arc<Node>,
    socket: WebSocket,
    upgrade: Option<Upgrade>,
) -> impl Future<Output = ()> + Send {
    serve_socket(node, socket, upgrade)
}

async fn serve_socket(node: Arc<Node>, mut socket: WebSocket, upgrade: Option<Upgrade>) {
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
            Box::pin(refuse_connection(socket, code, reason)).await;
            return;
        }
    };
    let (outbox, session) = open(&node, &id, identified);
    let (who, ending) = run(&node, session, &mut socket, &outbox).await;

    // Boxed: the ending's futures are made once per connection, at its end; inline, they
    // would make every connection's task larger for as long as it lives.
    Box::pin(end(node, id, who, socket, outbox, ending)).await;
}

/// Makes the connection's queue and session, queues the welcome and puts the client in
/// the hub. Not async: nothing of it stays in the connection's future.
fn open(
    node: &Arc<Node>,
    id: &ClientId,
    identified: Option<(Identity, Option<SystemTime>)>,
) -> (Arc<Outbox>, Box<Session>) {
    let user = identified
        .as_ref()
        .and_then(|(identity, _)| identity.user.clone());
    let outbox = Outbox::new(node.config.client_queue);
    let handle = ClientHandle::new(outbox.clone());
    // The welcome goes first: nothing else can be queued before the hub knows the client.
    let welcome = encode(&ServerFrame::Connected {
        client: id.to_string(),
        user: user.clone(),
    });
    let _ = outbox.try_send(Outbound::Frame(welcome));
    node.connect(id.clone(), handle.clone());
    if user.is_some() {
        node.set_user(id, user);
    }
    tracing::debug!(client = %id, "connected");

    // Boxed: the loop holds it by pointer, not twice inline (as its argument and while
    // idle) in its future.
    let session = Box::new(Session::new(node.clone(), id.clone(), handle, identified));
    (outbox, session)
}

/// Leaves the hub and sends what is left, together: the first may await the engine, the
/// second the peer.
async fn end(
    node: Arc<Node>,
    id: ClientId,
    who: hubbub_core::protocol::PresentClient,
    socket: WebSocket,
    outbox: Arc<Outbox>,
    ending: Ending,
) {
    let leave = async {
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
    };
    tokio::join!(leave, finish(socket, &outbox, ending));
    match outbox.close_code() {
        Some((code, reason)) => tracing::debug!(client = %id, code, reason, "disconnected"),
        // The client closed, asked to (`disconnect`), or its connection was lost.
        None => tracing::debug!(client = %id, by = "client", "disconnected"),
    }
}

/// Closes a connection that may not be opened, before any welcome.
pub async fn refuse_connection(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Close(Some(frame)))).await;
    // Wait (briefly) for the peer's close, so that the close frame is not lost to a reset.
    let _ = tokio::time::timeout(CLOSE_GRACE, socket.next()).await;
}

type Running = Pin<Box<dyn Future<Output = (Box<Session>, Step)> + Send>>;

/// Runs one command, handing the session back with what the connection does next.
fn start(mut session: Box<Session>, text: Utf8Bytes) -> Running {
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

/// How the connection ends, once [`run`] is done with it.
enum Ending {
    /// At once: what is queued is dropped; the close frame asked for (if any) is sent.
    Stop,
    /// After what is queued (within [`DRAIN_GRACE`]), then the close frame asked for or
    /// the one queued.
    AfterQueue,
    /// With this close frame, queued by the session (`disconnect`, too many failed logins).
    Close(CloseFrame),
    /// The socket failed or stopped taking frames: nothing more is sent.
    Failed,
}

/// The connection's loop: runs commands in order and writes the queue until the client
/// leaves or the connection is told to stop. Returns who the session was at the end, for
/// presence and leave notices, and how to end.
async fn run(
    node: &Node,
    session: Box<Session>,
    socket: &mut WebSocket,
    outbox: &Outbox,
) -> (hubbub_core::protocol::PresentClient, Ending) {
    let interval = node.config.ping_interval;
    let write_timeout = interval * 2;
    // One timer for the pings and the peer's liveness (a timer is about 100 bytes of every
    // connection's memory). A peer is alive while it sends something (a command, a pong)
    // every two intervals. Each frame only notes the time; the timer is moved when it
    // fires, so a chatty peer costs no timer work per frame.
    let mut next_ping = Instant::now() + interval;
    let timer = tokio::time::sleep_until(next_ping);
    let mut last_seen = Instant::now();
    // Only a session whose identity expires has a timer for it.
    // (An identity from the connect hook may expire before any command.)
    let mut expires = session.expires();
    let mut expiry = deadline(expires).map(|at| Box::pin(tokio::time::sleep_until(at)));
    tokio::pin!(timer);
    let read_wake = Arc::new(ReadWake {
        // Read first: the upgrade may have brought the client's first frames.
        woken: AtomicBool::new(true),
        task: AtomicWaker::new(),
    });
    let read_waker = futures_util::task::waker(read_wake.clone());

    let mut idle: Option<Box<Session>> = Some(session);
    let mut running: Option<Running> = None;
    let mut ahead: VecDeque<Message> = VecDeque::new();
    let mut who = idle.as_ref().expect("idle at start").present().clone();
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
                    Message::Text(text) => start(session, text),
                    _ => refuse(
                        session,
                        Error::InvalidPayload.because("binary frames are not part of the protocol"),
                    ),
                });
            }
        }
        // Biased: stops first; then the command and the peer's frames (read ahead at most
        // READ_AHEAD, so a flood of deliveries cannot keep them waiting long); the timers;
        // then the queue.
        tokio::select! {
            biased;
            // Not registered here: `outbox.ready()` below, polled before the task sleeps,
            // registers the task for the outbox's stops as well as its frames.
            signal = std::future::poll_fn(|_| outbox.signal().map_or(Poll::Pending, Poll::Ready)) => {
                return match signal {
                    Signal::Stopped => (who, Ending::Stop),
                    Signal::Draining => (who, Ending::AfterQueue),
                };
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
                    // A close is queued (or the queue takes nothing more).
                    return (who, Ending::AfterQueue);
                }
            }
            message = std::future::poll_fn(|cx| read_woken(socket, &read_wake, &read_waker, cx)), if ahead.len() < READ_AHEAD => {
                match message {
                    None => {
                        outbox.stop();
                        return (who, Ending::Stop);
                    }
                    Some(Err(e)) => {
                        if is_too_big(e) {
                            outbox.close(close::TOO_BIG, "frame too large");
                        } else {
                            outbox.stop();
                        }
                        return (who, Ending::Stop);
                    }
                    Some(Ok(message)) => {
                        last_seen = Instant::now();
                        match message {
                            Message::Text(_) | Message::Binary(_) => ahead.push_back(message),
                            Message::Ping(_) | Message::Pong(_) => {}
                            Message::Close(_) => {
                                outbox.stop();
                                return (who, Ending::Stop);
                            }
                        }
                    }
                }
            }
            _ = &mut timer => {
                let now = Instant::now();
                let silent_until = last_seen + interval * 2;
                if silent_until <= now {
                    outbox.close(close::GOING_AWAY, "ping timeout");
                    return (who, Ending::Stop);
                }
                if next_ping <= now {
                    let _ = outbox.try_send(Outbound::Ping);
                    next_ping = now + interval;
                }
                timer.as_mut().reset(next_ping.min(silent_until));
            }
            _ = async { expiry.as_mut().expect("guarded").await }, if expiry.is_some() => {
                outbox.close_after_queue(close::TOKEN_EXPIRED, "token expired");
                return (who, Ending::AfterQueue);
            }
            queued = outbox.ready() => {
                if !queued {
                    return (who, Ending::Stop);
                }
                let written = tokio::select! {
                    biased;
                    _ = outbox.stopped() => return (who, Ending::Stop),
                    written = tokio::time::timeout(write_timeout, write_batch(socket, outbox)) => written,
                };
                match written {
                    Ok(Written::More) => {}
                    Ok(Written::Close(frame)) => return (who, Ending::Close(frame)),
                    Ok(Written::Failed) => return (who, Ending::Failed),
                    Err(_) => {
                        outbox.close(close::POLICY, "write timeout");
                        return (who, Ending::Failed);
                    }
                }
            }
        }
    }
}

/// Notes that the socket woke the connection's task, and wakes it.
struct ReadWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for ReadWake {
    fn wake_by_ref(this: &Arc<Self>) {
        this.woken.store(true, Ordering::Release);
        this.task.wake();
    }
}

/// The socket's next frame, polled only when the socket woke the task since it was last
/// polled (or last gave a frame: more may be buffered).
fn read_woken(
    socket: &mut WebSocket,
    wake: &ReadWake,
    read_waker: &Waker,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Message, axum::Error>>> {
    wake.task.register(cx.waker());
    if !wake.woken.swap(false, Ordering::AcqRel) {
        return Poll::Pending;
    }
    let read = socket.poll_next_unpin(&mut Context::from_waker(read_waker));
    if read.is_ready() {
        wake.woken.store(true, Ordering::Release);
    }
    read
}

fn is_too_big(e: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    matches!(
        e.into_inner().downcast_ref::<WsError>(),
        Some(WsError::Capacity(_))
    )
}

/// Ends the connection as [`run`] decided: what is queued goes out first where the
/// ending says so, then the close frame, then the socket is closed.
async fn finish(mut socket: WebSocket, outbox: &Outbox, ending: Ending) {
    let close = match ending {
        Ending::Failed => {
            outbox.stop();
            return;
        }
        Ending::Stop => {
            outbox.stop();
            close_frame(outbox)
        }
        Ending::Close(frame) => {
            outbox.stop();
            Some(frame)
        }
        Ending::AfterQueue => {
            // Nothing more is taken; what is queued still goes out.
            outbox.close_queue();
            match drain(&mut socket, outbox).await {
                Ok(close) => close,
                Err(()) => {
                    outbox.stop();
                    return;
                }
            }
        }
    };
    outbox.stop();
    if let Some(frame) = close {
        count_close(&frame);
        let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Close(Some(frame)))).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, socket.close()).await;
}

/// Sends what is queued within [`DRAIN_GRACE`]: the close frame to send after it (the
/// one queued, or the one asked for), or `Err` where the socket failed.
async fn drain(socket: &mut WebSocket, outbox: &Outbox) -> Result<Option<CloseFrame>, ()> {
    let until = Instant::now() + DRAIN_GRACE;
    loop {
        let queued = tokio::select! {
            biased;
            _ = outbox.stopped() => return Ok(close_frame(outbox)),
            queued = outbox.ready() => queued,
        };
        if !queued {
            return Ok(close_frame(outbox));
        }
        let written = tokio::select! {
            biased;
            _ = outbox.stopped() => return Ok(close_frame(outbox)),
            written = tokio::time::timeout_at(until, write_batch(socket, outbox)) => written,
        };
        match written {
            Ok(Written::More) => {}
            Ok(Written::Close(frame)) => return Ok(Some(frame)),
            Ok(Written::Failed) => return Err(()),
            Err(_) => return Ok(close_frame(outbox)),
        }
    }
}

fn count_close(frame: &CloseFrame) {
    let code = frame.code;
    METRICS.closes.get_or_create(&CodeLabel { code }).inc();
    if code == close::POLICY && frame.reason.as_str() == outbox::SLOW_CONSUMER {
        METRICS.slow_consumers.inc();
    }
}

fn close_frame(outbox: &Outbox) -> Option<CloseFrame> {
    outbox.close_code().map(|(code, reason)| CloseFrame {
        code,
        reason: reason.into(),
    })
}

/// How writing a batch ended.
enum Written {
    More,
    /// A queued close: send it, then end.
    Close(CloseFrame),
    Failed,
}

/// Writes up to [`BATCH`] queued frames with one flush.
async fn write_batch(socket: &mut WebSocket, outbox: &Outbox) -> Written {
    for _ in 0..BATCH {
        let Some(outbound) = outbox.try_recv() else {
            break;
        };
        let message = match outbound {
            Outbound::Frame(text) => Message::Text(text),
            // The permit goes back to the budget as the frame is handed to the socket.
            Outbound::Answer(answer) => Message::Text(answer.0),
            Outbound::Ping => Message::Ping(Default::default()),
            Outbound::Close(code, reason) => {
                if socket.flush().await.is_err() {
                    return Written::Failed;
                }
                return Written::Close(CloseFrame {
                    code,
                    reason: reason.into(),
                });
            }
        };
        if socket.feed(message).await.is_err() {
            return Written::Failed;
        }
    }
    if socket.flush().await.is_err() {
        return Written::Failed;
    }
    Written::More
}
