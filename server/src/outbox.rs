//! How the node reaches a connection: its bounded outgoing queue and its controls.
//!
//! Everything a client receives (answers and deliveries alike) goes through one bounded
//! queue per connection, so answers keep their order and a delivery never waits: a
//! subscriber whose queue is full is closed with 1008 `slow consumer` instead of slowing
//! the publisher or growing memory. This module knows nothing of sockets; the connection
//! (`connection.rs`) drains the queue into the WebSocket.

use axum::extract::ws::Utf8Bytes;
use hubbub_core::hub::Subscriber;
use hubbub_core::protocol::{close, Message, ServerFrame};
use serde::Serialize;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// An encoded server frame, shared by reference among every connection it goes to.
pub type Frame = Utf8Bytes;

/// Encodes a server frame once.
pub fn encode(frame: &ServerFrame) -> Frame {
    Utf8Bytes::from(frame.to_json())
}

/// Encodes a publication as a `message` frame without copying it into a `ServerFrame`.
pub fn encode_message(message: &Message) -> Frame {
    #[derive(Serialize)]
    struct Wrapped<'a> {
        message: &'a Message,
    }
    Utf8Bytes::from(serde_json::to_string(&Wrapped { message }).expect("messages serialize"))
}

/// What the writer is asked to send.
pub enum Outbound {
    Frame(Frame),
    /// An answer, holding its share of the connection's answer budget until it is written
    /// (see `session.rs`): a client that sends commands and never reads its answers ties
    /// up that budget, not the server's memory.
    /// Boxed, so that every slot of every connection's queue stays the size of a frame
    /// (the queue allocates its slots up front; answers are few next to deliveries).
    Answer(Box<(Frame, tokio::sync::OwnedSemaphorePermit)>),
    Ping,
    /// Sent after everything queued before it, then the connection ends.
    Close(u16, &'static str),
}

/// How a connection is told to end: at once (`stop`), or after sending what is already
/// queued (`drain`), in both cases with the close frame recorded first.
#[derive(Default)]
pub struct Control {
    stop: CancellationToken,
    drain: CancellationToken,
    close: OnceLock<(u16, &'static str)>,
}

impl Control {
    /// Stops the connection now, dropping what is queued, sending `code` and `reason`
    /// (the first close asked wins).
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.close.set((code, reason));
        self.stop.cancel();
    }

    /// Ends the connection after what is queued has been sent (within the writer's
    /// grace), then sends `code` and `reason`.
    pub fn close_after_queue(&self, code: u16, reason: &'static str) {
        let _ = self.close.set((code, reason));
        self.drain.cancel();
    }

    /// Stops the connection without a close frame of ours.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn stopped(&self) -> &CancellationToken {
        &self.stop
    }

    pub fn draining(&self) -> &CancellationToken {
        &self.drain
    }

    /// The close frame asked for, if any.
    pub fn close_code(&self) -> Option<(u16, &'static str)> {
        self.close.get().copied()
    }
}

/// The reason of the close (1008) of a connection whose queue is full.
pub const SLOW_CONSUMER: &str = "slow consumer";

/// How the hub and the HTTP API reach a connection.
#[derive(Clone)]
pub struct ClientHandle {
    tx: mpsc::Sender<Outbound>,
    control: Arc<Control>,
}

impl ClientHandle {
    pub fn new(tx: mpsc::Sender<Outbound>, control: Arc<Control>) -> ClientHandle {
        ClientHandle { tx, control }
    }

    /// Queues a frame without waiting; a full queue closes the connection as too slow.
    /// Refused once the connection is closing after its queue.
    pub fn deliver_frame(&self, frame: &Frame) -> bool {
        // Closing after its queue: what is queued is all it gets. A subscriber closed
        // with 4002 because a publication never reached it must not get the ones after
        // (its position would move past the gap it is to recover).
        if self.control.draining().is_cancelled() {
            return false;
        }
        match self.tx.try_send(Outbound::Frame(frame.clone())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.control.close(close::POLICY, SLOW_CONSUMER);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Closes the connection with `code` and `reason` at once.
    pub fn close(&self, code: u16, reason: &'static str) {
        self.control.close(code, reason);
    }

    /// Closes the connection with `code` and `reason` once what is queued has gone out.
    pub fn close_after_queue(&self, code: u16, reason: &'static str) {
        self.control.close_after_queue(code, reason);
    }
}

impl Subscriber for ClientHandle {
    type Frame = Frame;

    fn deliver(&self, frame: &Frame) -> bool {
        self.deliver_frame(frame)
    }
}
