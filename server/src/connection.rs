//! One WebSocket connection: a reader that runs the client's commands in order, and a
//! writer that drains the connection's bounded queue in batches.
//!
//! Everything the client receives (answers and deliveries alike) goes through one bounded
//! queue, so answers keep their order and a delivery never waits: a subscriber whose queue
//! is full is closed with 1008 `slow consumer` instead of slowing the publisher or
//! growing memory.

use crate::node::Node;
use crate::session::{Session, Step};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hubbub_core::hub::{ClientId, Subscriber};
use hubbub_core::protocol::{close, ServerFrame};
use hubbub_core::Error;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// An encoded server frame, shared by reference among every connection it goes to.
pub type Frame = Utf8Bytes;

/// Encodes a server frame once.
pub fn encode(frame: &ServerFrame) -> Frame {
    Utf8Bytes::from(frame.to_json())
}

/// How many queued frames the writer sends before one flush.
const BATCH: usize = 64;

/// How long a close frame may take to go out before the socket is dropped regardless.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What the writer is asked to send.
pub enum Outbound {
    Frame(Frame),
    Ping,
    /// Sent after everything queued before it, then the connection ends.
    Close(u16, &'static str),
}

/// Tells a connection to stop now, whatever is queued, with the close frame to send.
#[derive(Default)]
pub struct Control {
    stop: CancellationToken,
    close: OnceLock<(u16, &'static str)>,
}

impl Control {
    /// Stops the connection, sending `code` and `reason` (the first close asked wins).
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.close.set((code, reason));
        self.stop.cancel();
    }

    /// Stops the connection without a close frame of ours.
    fn stop(&self) {
        self.stop.cancel();
    }

    fn close_frame(&self) -> Option<CloseFrame> {
        self.close.get().map(|&(code, reason)| CloseFrame {
            code,
            reason: reason.into(),
        })
    }
}

/// How the hub and the HTTP API reach a connection.
#[derive(Clone)]
pub struct ClientHandle {
    tx: mpsc::Sender<Outbound>,
    control: Arc<Control>,
}

impl ClientHandle {
    /// Queues a frame without waiting; a full queue closes the connection as too slow.
    pub fn deliver_frame(&self, frame: &Frame) -> bool {
        match self.tx.try_send(Outbound::Frame(frame.clone())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.control.close(close::POLICY, "slow consumer");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Closes the connection with `code` and `reason`.
    pub fn close(&self, code: u16, reason: &'static str) {
        self.control.close(code, reason);
    }
}

impl Subscriber for ClientHandle {
    type Frame = Frame;

    fn deliver(&self, frame: &Frame) -> bool {
        self.deliver_frame(frame)
    }
}

/// A new client id: 128 random bits, URL-safe, unique on the cluster.
fn new_client_id() -> ClientId {
    uuid::Uuid::new_v4().simple().to_string().into()
}

/// Runs one connection from the welcome to the close.
pub async fn serve(node: Arc<Node>, socket: WebSocket) {
    let _alive = node.shutdown.connection();
    let id = new_client_id();
    let (tx, rx) = mpsc::channel(node.config.client_queue);
    let control = Arc::new(Control::default());
    let handle = ClientHandle {
        tx: tx.clone(),
        control: control.clone(),
    };
    // The welcome goes first: nothing else can be queued before the hub knows the client.
    let welcome = encode(&ServerFrame::Connected {
        client: id.to_string(),
    });
    let _ = tx.try_send(Outbound::Frame(welcome));
    node.connect(id.clone(), handle);
    tracing::debug!(client = %id, "connected");

    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write(sink, rx, control.clone()));
    let session = Session::new(node.clone(), id.clone(), tx);
    read(&node, session, stream, &control).await;

    node.disconnect(&id);
    let _ = writer.await;
    tracing::debug!(client = %id, reason = ?control.close.get(), "disconnected");
}

/// The reader: runs commands in order until the client leaves or the connection is told
/// to stop; watches the peer's liveness and the server's shutdown.
async fn read(
    node: &Node,
    mut session: Session,
    mut stream: SplitStream<WebSocket>,
    control: &Control,
) {
    let interval = node.config.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
    let mut last_seen = Instant::now();
    // Made once, not on every turn of the loop: each would register a waiter anew.
    let stopped = control.stop.cancelled();
    let shutdown = node.shutdown.triggered();
    tokio::pin!(stopped, shutdown);
    loop {
        let message = tokio::select! {
            biased;
            _ = &mut stopped => return,
            _ = &mut shutdown => {
                control.close(close::GOING_AWAY, "server shutting down");
                return;
            }
            _ = ping.tick() => {
                if last_seen.elapsed() > interval * 2 {
                    control.close(close::GOING_AWAY, "ping timeout");
                    return;
                }
                session.ping();
                continue;
            }
            message = stream.next() => message,
        };
        let step = match message {
            None => {
                control.stop();
                return;
            }
            Some(Err(e)) => {
                if is_too_big(e) {
                    control.close(close::TOO_BIG, "frame too large");
                } else {
                    control.stop();
                }
                return;
            }
            Some(Ok(message)) => {
                last_seen = Instant::now();
                match message {
                    Message::Text(text) => session.handle(text.as_str()).await,
                    Message::Binary(_) => {
                        session
                            .refuse(
                                Error::InvalidPayload
                                    .because("binary frames are not part of the protocol"),
                            )
                            .await
                    }
                    Message::Ping(_) | Message::Pong(_) => Step::Continue,
                    Message::Close(_) => {
                        control.stop();
                        return;
                    }
                }
            }
        };
        if let Step::Stop = step {
            return;
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

enum Written {
    More,
    Close(CloseFrame),
    Drained,
    Failed,
}

/// The writer: drains the queue in batches with one flush each, until the queue ends, a
/// close is queued, or the connection is told to stop.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    control: Arc<Control>,
) {
    // Grows with the batches that actually come: an idle connection keeps a few slots
    // instead of BATCH of them (2.5 KiB).
    let mut batch = Vec::new();
    let stopped = control.stop.cancelled();
    tokio::pin!(stopped);
    let close = loop {
        let written = tokio::select! {
            biased;
            _ = &mut stopped => break control.close_frame(),
            written = write_batch(&mut sink, &mut rx, &mut batch) => written,
        };
        match written {
            Written::More => {}
            Written::Close(frame) => break Some(frame),
            Written::Drained => break None,
            Written::Failed => {
                control.stop();
                return;
            }
        }
    };
    // Tell the reader, whatever ended the writer.
    control.stop();
    if let Some(frame) = close {
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}

async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut mpsc::Receiver<Outbound>,
    batch: &mut Vec<Outbound>,
) -> Written {
    if rx.recv_many(batch, BATCH).await == 0 {
        return Written::Drained;
    }
    for outbound in batch.drain(..) {
        let message = match outbound {
            Outbound::Frame(text) => Message::Text(text),
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
