//! How the node reaches a connection: its bounded outgoing queue and its controls, in one
//! small shared object ([`Outbox`]).
//!
//! Everything a client receives (answers and deliveries alike) goes through one bounded
//! queue per connection, so answers keep their order and a delivery never waits: a
//! subscriber whose queue is full is closed with 1008 `slow consumer` instead of slowing
//! the publisher or growing memory. The connection is told to end through the same
//! object: at once (`close`, `stop`), or after what is queued (`close_after_queue`).
//!
//! One task consumes an outbox (the connection's, in `connection.rs`, or an event
//! stream's, in `sse.rs`), so one waker serves for everything it waits on: frames queued,
//! a stop, a drain. This is lighter than a channel and cancellation tokens: an idle
//! connection holds a couple of hundred bytes here instead of about 2 KiB (a channel
//! allocates its first block of slots up front), and a delivery wakes the connection's
//! task once. This module knows nothing of sockets.

use axum::extract::ws::Utf8Bytes;
use futures_util::task::AtomicWaker;
use hubbub_core::hub::Subscriber;
use hubbub_core::protocol::{close, Message, ServerFrame};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::sync::Notify;

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

/// What the connection is asked to send.
pub enum Outbound {
    Frame(Frame),
    /// An answer, holding its share of the connection's answer budget until it is written
    /// (see `session.rs`): a client that sends commands and never reads its answers ties
    /// up that budget, not the server's memory.
    /// Boxed, so that every slot of the queue stays the size of a frame (answers are few
    /// next to deliveries).
    Answer(Box<(Frame, tokio::sync::OwnedSemaphorePermit)>),
    Ping,
    /// Sent after everything queued before it, then the connection ends.
    Close(u16, &'static str),
}

/// The reason of the close (1008) of a connection whose queue is full.
pub const SLOW_CONSUMER: &str = "slow consumer";

/// Why a frame was not queued.
pub enum Refused {
    /// The queue is full; the frame is handed back.
    Full(Outbound),
    /// The connection takes nothing more (it is ending, or closing after its queue).
    Closed,
}

/// What the consumer is told to do, besides sending frames.
pub enum Signal {
    /// End now.
    Stopped,
    /// End once what is queued has gone out.
    Draining,
}

/// `state` bits.
const STOPPED: u8 = 1;
const DRAINING: u8 = 2;

/// One connection's queue and controls, shared by the connection's task (the consumer),
/// its session, and the node (through [`ClientHandle`]).
pub struct Outbox {
    queue: Mutex<Queue>,
    capacity: usize,
    /// `STOPPED` and `DRAINING`: read without the lock on every delivery.
    state: AtomicU8,
    /// The close frame asked for; the first close asked wins.
    close: OnceLock<(u16, &'static str)>,
    /// The consumer's task, waiting for frames or for the end.
    consumer: AtomicWaker,
    /// A command waiting for room for its answer (deliveries never wait).
    room: Notify,
}

struct Queue {
    items: VecDeque<Outbound>,
    /// False once the connection takes nothing more: what is queued may still go out.
    open: bool,
}

impl Outbox {
    pub fn new(capacity: usize) -> Arc<Outbox> {
        Arc::new(Outbox {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                open: true,
            }),
            capacity: capacity.max(1),
            state: AtomicU8::new(0),
            close: OnceLock::new(),
            consumer: AtomicWaker::new(),
            room: Notify::new(),
        })
    }

    /// Queues `item` without waiting.
    pub fn try_send(&self, item: Outbound) -> Result<(), Refused> {
        {
            let mut queue = self.queue.lock();
            if !queue.open {
                return Err(Refused::Closed);
            }
            if queue.items.len() >= self.capacity {
                return Err(Refused::Full(item));
            }
            queue.items.push_back(item);
        }
        self.consumer.wake();
        Ok(())
    }

    /// Queues `item`, waiting for room; `Err` when the connection takes nothing more.
    pub async fn send(&self, mut item: Outbound) -> Result<(), ()> {
        loop {
            // Registered before trying, so that room made in between is not missed.
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_send(item) {
                Ok(()) => return Ok(()),
                Err(Refused::Closed) => return Err(()),
                Err(Refused::Full(back)) => item = back,
            }
            room.await;
        }
    }

    /// Resolves `true` once something is queued, `false` once the queue is closed and
    /// empty. For the consumer's task only; it then takes the items with
    /// [`Outbox::try_recv`], so no batch is copied out and an idle connection keeps no
    /// buffer of its own for them.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<bool> {
        self.consumer.register(cx.waker());
        let queue = self.queue.lock();
        if !queue.items.is_empty() {
            Poll::Ready(true)
        } else if queue.open {
            Poll::Pending
        } else {
            Poll::Ready(false)
        }
    }

    /// See [`Outbox::poll_ready`].
    pub async fn ready(&self) -> bool {
        poll_fn(|cx| self.poll_ready(cx)).await
    }

    /// The next queued item; `None` once the queue is closed and empty. For the
    /// consumer's task only.
    pub async fn recv(&self) -> Option<Outbound> {
        poll_fn(|cx| {
            self.consumer.register(cx.waker());
            let mut queue = self.queue.lock();
            match self.pop(&mut queue) {
                Some(item) => Poll::Ready(Some(item)),
                None if queue.open => Poll::Pending,
                None => Poll::Ready(None),
            }
        })
        .await
    }

    /// The next queued item, if one is there now.
    pub fn try_recv(&self) -> Option<Outbound> {
        self.pop(&mut self.queue.lock())
    }

    fn pop(&self, queue: &mut Queue) -> Option<Outbound> {
        let was_full = queue.items.len() >= self.capacity;
        let item = queue.items.pop_front();
        if was_full {
            // Woken waiters take the lock after it is let go.
            self.room.notify_waiters();
        }
        item
    }

    /// Takes nothing more; what is queued may still be taken.
    pub fn close_queue(&self) {
        self.queue.lock().open = false;
        self.room.notify_waiters();
        self.consumer.wake();
    }

    /// Takes nothing more and drops what is queued (answers give their budget back).
    fn discard(&self) {
        let dropped = {
            let mut queue = self.queue.lock();
            queue.open = false;
            std::mem::take(&mut queue.items)
        };
        drop(dropped);
        self.room.notify_waiters();
    }

    /// Stops the connection now, dropping what is queued, sending `code` and `reason`
    /// (the first close asked wins).
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.close.set((code, reason));
        self.stop();
    }

    /// Ends the connection after what is queued has been sent (within the writer's
    /// grace), then sends `code` and `reason`.
    pub fn close_after_queue(&self, code: u16, reason: &'static str) {
        let _ = self.close.set((code, reason));
        self.state.fetch_or(DRAINING, Ordering::AcqRel);
        self.consumer.wake();
    }

    /// Stops the connection without a close frame of ours, dropping what is queued.
    pub fn stop(&self) {
        self.state.fetch_or(STOPPED, Ordering::AcqRel);
        // A command waiting for room gives up.
        self.discard();
        self.consumer.wake();
    }

    /// Whether the connection is told to stop or to close after its queue (a stop first).
    /// Registers nothing: the consumer registers with its next poll for frames.
    pub fn signal(&self) -> Option<Signal> {
        let state = self.state.load(Ordering::Acquire);
        if state & STOPPED != 0 {
            Some(Signal::Stopped)
        } else if state & DRAINING != 0 {
            Some(Signal::Draining)
        } else {
            None
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.state.load(Ordering::Acquire) & STOPPED != 0
    }

    pub fn is_draining(&self) -> bool {
        self.state.load(Ordering::Acquire) & DRAINING != 0
    }

    /// Resolves once the connection is told to stop. For the consumer's task only.
    pub async fn stopped(&self) {
        poll_fn(|cx| self.poll_flag(cx, STOPPED)).await
    }

    /// Resolves once the connection is told to close after its queue. For the consumer's
    /// task only.
    pub async fn draining(&self) {
        poll_fn(|cx| self.poll_flag(cx, DRAINING)).await
    }

    fn poll_flag(&self, cx: &mut Context<'_>, flag: u8) -> Poll<()> {
        if self.state.load(Ordering::Acquire) & flag != 0 {
            return Poll::Ready(());
        }
        self.consumer.register(cx.waker());
        if self.state.load(Ordering::Acquire) & flag != 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// The close frame asked for, if any.
    pub fn close_code(&self) -> Option<(u16, &'static str)> {
        self.close.get().copied()
    }
}

/// How the hub and the HTTP API reach a connection.
#[derive(Clone)]
pub struct ClientHandle(Arc<Outbox>);

impl ClientHandle {
    pub fn new(outbox: Arc<Outbox>) -> ClientHandle {
        ClientHandle(outbox)
    }

    /// The connection's queue and controls.
    pub fn outbox(&self) -> &Outbox {
        &self.0
    }

    /// Queues a frame without waiting; a full queue closes the connection as too slow.
    /// Refused once the connection is closing after its queue.
    pub fn deliver_frame(&self, frame: &Frame) -> bool {
        // Closing after its queue: what is queued is all it gets. A subscriber closed
        // with 4002 because a publication never reached it must not get the ones after
        // (its position would move past the gap it is to recover).
        if self.0.is_draining() {
            return false;
        }
        match self.0.try_send(Outbound::Frame(frame.clone())) {
            Ok(()) => true,
            Err(Refused::Full(_)) => {
                self.0.close(close::POLICY, SLOW_CONSUMER);
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// Closes the connection with `code` and `reason` at once.
    pub fn close(&self, code: u16, reason: &'static str) {
        self.0.close(code, reason);
    }

    /// Closes the connection with `code` and `reason` once what is queued has gone out.
    pub fn close_after_queue(&self, code: u16, reason: &'static str) {
        self.0.close_after_queue(code, reason);
    }
}

impl Subscriber for ClientHandle {
    type Frame = Frame;

    fn deliver(&self, frame: &Frame) -> bool {
        self.deliver_frame(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Outbound {
        Outbound::Frame(Frame::from(text))
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_waiting_send_gets_room_when_taken() {
        let outbox = Outbox::new(2);
        assert!(outbox.try_send(frame("a")).is_ok());
        assert!(outbox.try_send(frame("b")).is_ok());
        assert!(matches!(outbox.try_send(frame("c")), Err(Refused::Full(_))));
        let waiting = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.send(frame("c")).await })
        };
        assert!(outbox.ready().await);
        assert!(outbox.try_recv().is_some());
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert!(outbox.try_recv().is_some());
        assert!(outbox.try_recv().is_some());
        assert!(outbox.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_closed_queue_gives_what_it_holds_then_ends_and_refuses_more() {
        let outbox = Outbox::new(4);
        assert!(outbox.try_send(frame("a")).is_ok());
        outbox.close_queue();
        assert!(matches!(outbox.try_send(frame("b")), Err(Refused::Closed)));
        assert!(matches!(outbox.recv().await, Some(Outbound::Frame(_))));
        assert!(outbox.recv().await.is_none());
        assert!(!outbox.ready().await);
    }

    #[tokio::test]
    async fn a_stop_wakes_a_send_waiting_for_room_and_the_consumer() {
        let outbox = Outbox::new(1);
        assert!(outbox.try_send(frame("a")).is_ok());
        let waiting = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.send(frame("b")).await })
        };
        let stopped = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.stopped().await })
        };
        tokio::task::yield_now().await;
        outbox.close(close::POLICY, SLOW_CONSUMER);
        assert_eq!(waiting.await.unwrap(), Err(()));
        stopped.await.unwrap();
        assert_eq!(outbox.close_code(), Some((close::POLICY, SLOW_CONSUMER)));
    }
}
