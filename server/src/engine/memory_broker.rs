//! The broker of the embedded engine: the cluster is this node, so a publication goes
//! straight back to the node's handler, and streams live in this node's memory (a restart
//! starts every stream anew, with a new epoch).
//!
//! Channels are spread over a fixed number of stripes, each behind its own lock. A
//! publication holds its channel's stripe from the moment it takes an offset until the
//! handler has queued it for every local subscriber, so every subscriber sees a channel's
//! publications in one order however many publishers there are, and appending to the
//! history and publishing are one step.

use super::{
    new_epoch, Broker, BrokerHandler, Control, EngineError, HistoryFilter, HistoryResult,
    StreamOptions,
};
use async_trait::async_trait;
use hubbub_core::api::NodeInfo;
use hubbub_core::protocol::{Message, PresentClient, StreamPosition};
use parking_lot::{Mutex, MutexGuard};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// Locks that channels share: enough that unrelated channels rarely wait on each other.
const STRIPES: usize = 64;

/// How often expired streams are dropped (they are treated as gone as soon as they
/// expire; the sweep only returns their memory).
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// The embedded engine's broker.
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

struct Inner {
    /// This node, as it last announced itself.
    node: Mutex<Option<NodeInfo>>,
    stripes: Box<[Mutex<Stripe>]>,
    hasher: std::collections::hash_map::RandomState,
    handler: OnceLock<Arc<dyn BrokerHandler>>,
}

#[derive(Default)]
struct Stripe {
    /// Channels with a subscriber on this node.
    subscribed: HashSet<Box<str>>,
    streams: HashMap<Box<str>, Stream>,
}

struct Stream {
    epoch: String,
    offset: u64,
    messages: VecDeque<Message>,
    expires: Instant,
}

impl Stripe {
    /// The channel's live stream, made anew where there is none or it expired.
    fn stream(&mut self, channel: &str, now: Instant, options: &StreamOptions) -> &mut Stream {
        let expired = self.streams.get(channel).is_some_and(|s| s.expires <= now);
        if expired {
            self.streams.remove(channel);
        }
        self.streams
            .entry(channel.into())
            .or_insert_with(|| Stream {
                epoch: new_epoch(),
                offset: 0,
                messages: VecDeque::new(),
                expires: now + options.history_ttl,
            })
    }
}

impl Default for MemoryBroker {
    fn default() -> Self {
        MemoryBroker::new()
    }
}

impl MemoryBroker {
    pub fn new() -> MemoryBroker {
        MemoryBroker {
            inner: Arc::new(Inner {
                node: Mutex::new(None),
                stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
                hasher: Default::default(),
                handler: OnceLock::new(),
            }),
        }
    }
}

impl Inner {
    fn stripe(&self, channel: &str) -> MutexGuard<'_, Stripe> {
        let i = self.hasher.hash_one(channel) as usize % self.stripes.len();
        self.stripes[i].lock()
    }

    fn handler(&self) -> Option<&Arc<dyn BrokerHandler>> {
        self.handler.get()
    }

    fn sweep(&self) {
        let now = Instant::now();
        for stripe in self.stripes.iter() {
            stripe.lock().streams.retain(|_, s| s.expires > now);
        }
    }
}

/// Drops expired streams now and then, for as long as the broker lives.
async fn sweep(inner: Weak<Inner>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        match inner.upgrade() {
            Some(inner) => inner.sweep(),
            None => return,
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn start(&self, handler: Arc<dyn BrokerHandler>) -> Result<(), EngineError> {
        if self.inner.handler.set(handler).is_err() {
            return Err(EngineError("the broker was started twice".into()));
        }
        tokio::spawn(sweep(Arc::downgrade(&self.inner)));
        Ok(())
    }

    async fn publish(
        &self,
        channel: &str,
        mut message: Message,
        options: &StreamOptions,
    ) -> Result<Option<StreamPosition>, EngineError> {
        let mut stripe = self.inner.stripe(channel);
        let subscribed = stripe.subscribed.contains(channel);
        if !options.keeps_history() {
            if let (true, Some(handler)) = (subscribed, self.inner.handler()) {
                handler.publication(channel, &message);
            }
            return Ok(None);
        }
        let now = Instant::now();
        let stream = stripe.stream(channel, now, options);
        stream.offset += 1;
        stream.expires = now + options.history_ttl;
        message.offset = Some(stream.offset);
        stream.messages.push_back(message);
        while stream.messages.len() > options.history_size {
            stream.messages.pop_front();
        }
        let position = StreamPosition {
            epoch: stream.epoch.clone(),
            offset: stream.offset,
        };
        if let (true, Some(handler), Some(message)) =
            (subscribed, self.inner.handler(), stream.messages.back())
        {
            handler.publication(channel, message);
        }
        Ok(Some(position))
    }

    async fn publish_join(&self, channel: &str, client: &PresentClient) -> Result<(), EngineError> {
        let stripe = self.inner.stripe(channel);
        if let (true, Some(handler)) = (stripe.subscribed.contains(channel), self.inner.handler()) {
            handler.join(channel, client);
        }
        Ok(())
    }

    async fn publish_leave(
        &self,
        channel: &str,
        client: &PresentClient,
    ) -> Result<(), EngineError> {
        let stripe = self.inner.stripe(channel);
        if let (true, Some(handler)) = (stripe.subscribed.contains(channel), self.inner.handler()) {
            handler.leave(channel, client);
        }
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.inner.stripe(channel).subscribed.insert(channel.into());
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.inner.stripe(channel).subscribed.remove(channel);
        Ok(())
    }

    async fn has_subscribers(&self, channel: &str) -> Result<bool, EngineError> {
        Ok(self.inner.stripe(channel).subscribed.contains(channel))
    }

    async fn publish_control(&self, control: &Control) -> Result<(), EngineError> {
        if let Some(handler) = self.inner.handler() {
            handler.control(control);
        }
        Ok(())
    }

    async fn announce(&self, node: &NodeInfo, _ttl: Duration) -> Result<(), EngineError> {
        *self.inner.node.lock() = Some(node.clone());
        Ok(())
    }

    async fn withdraw(&self, node_id: &str) -> Result<(), EngineError> {
        let mut node = self.inner.node.lock();
        if node.as_ref().is_some_and(|n| n.id == node_id) {
            *node = None;
        }
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        Ok(self.inner.node.lock().iter().cloned().collect())
    }

    async fn history(
        &self,
        channel: &str,
        filter: HistoryFilter,
        options: &StreamOptions,
    ) -> Result<HistoryResult, EngineError> {
        let mut stripe = self.inner.stripe(channel);
        let stream = stripe.stream(channel, Instant::now(), options);
        let kept = &stream.messages;
        let messages: Vec<Message> = match filter.since {
            Some(since) => kept
                .iter()
                .filter(|m| m.offset.is_some_and(|o| o > since))
                .take(filter.limit.unwrap_or(usize::MAX))
                .cloned()
                .collect(),
            None => {
                let n = filter.limit.unwrap_or(kept.len()).min(kept.len());
                kept.iter().skip(kept.len() - n).cloned().collect()
            }
        };
        Ok(HistoryResult {
            position: StreamPosition {
                epoch: stream.epoch.clone(),
                offset: stream.offset,
            },
            messages,
        })
    }

    async fn renew_epoch(
        &self,
        channel: &str,
        epoch: &str,
        options: &StreamOptions,
    ) -> Result<StreamPosition, EngineError> {
        let mut stripe = self.inner.stripe(channel);
        let stream = stripe.stream(channel, Instant::now(), options);
        if stream.epoch == epoch {
            stream.epoch = new_epoch();
        }
        Ok(StreamPosition {
            epoch: stream.epoch.clone(),
            offset: stream.offset,
        })
    }
}
