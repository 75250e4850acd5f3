//! The running server's shared state: configuration, authenticator, hub, broker, shutdown.
//!
//! Every method takes the hub's lock for the length of one synchronous call and never
//! across an `.await`.

use crate::broker::{Broker, MemoryBroker};
use crate::config::Config;
use crate::connection::{encode, ClientHandle, Frame};
use crate::shutdown::Shutdown;
use hubbub_core::api::Target;
use hubbub_core::auth::Authenticator;
use hubbub_core::hub::{ClientId, Hub, Subscribed};
use hubbub_core::protocol::{DirectMessage, Message, RawJson, ServerFrame};
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::Instant;

pub struct Node {
    pub config: Config,
    pub auth: Authenticator,
    pub shutdown: Shutdown,
    hub: Arc<RwLock<Hub<ClientHandle>>>,
    broker: Box<dyn Broker>,
    started: Instant,
}

impl Node {
    pub fn new(config: Config) -> Arc<Node> {
        let hub = Arc::new(RwLock::new(Hub::new()));
        Arc::new(Node {
            auth: config.authenticator(),
            config,
            shutdown: Shutdown::new(),
            broker: Box::new(MemoryBroker::new(hub.clone())),
            hub,
            started: Instant::now(),
        })
    }

    pub fn connect(&self, id: ClientId, handle: ClientHandle) {
        self.hub.write().connect(id, handle);
    }

    pub fn disconnect(&self, id: &str) {
        self.hub.write().disconnect(id);
    }

    /// Closes the connections `target` names with `code`, taking them off the hub at once
    /// (so that they receive nothing more and are no longer counted); returns how many.
    pub fn kick(&self, target: &Target, code: u16, reason: &'static str) -> usize {
        let mut hub = self.hub.write();
        let ids = match target {
            Target::Client(id) => vec![ClientId::from(id.as_str())],
            Target::User(user) => hub.user_client_ids(user),
        };
        let mut kicked = 0;
        for id in ids {
            if let Some(client) = hub.disconnect(&id) {
                client.close(code, reason);
                kicked += 1;
            }
        }
        kicked
    }

    pub fn set_user(&self, id: &str, user: Option<String>) {
        self.hub.write().set_user(id, user);
    }

    pub fn subscribe(&self, id: &str, channel: &str) -> Subscribed {
        self.hub
            .write()
            .subscribe(id, channel, self.config.max_channels_per_client)
    }

    pub fn unsubscribe(&self, id: &str, channel: &str) -> bool {
        self.hub.write().unsubscribe(id, channel)
    }

    /// Drops the subscriptions of `id` for which `keep` says no.
    pub fn retain_subscriptions(&self, id: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.hub.write().retain_subscriptions(id, keep)
    }

    pub fn has_subscribers(&self, channel: &str) -> bool {
        self.broker.has_subscribers(channel)
    }

    /// Publishes on `channel`: the frame is encoded once and shared by every subscriber.
    pub fn publish(
        &self,
        channel: &str,
        event: String,
        data: RawJson,
        from: Option<String>,
    ) -> usize {
        let frame = encode(&ServerFrame::Message(Message {
            channel: channel.to_owned(),
            event,
            data,
            offset: None,
            from,
        }));
        self.broker.publish(channel, &frame)
    }

    /// The connections `target` names.
    pub fn targets(&self, target: &Target) -> Vec<ClientHandle> {
        let hub = self.hub.read();
        match target {
            Target::Client(id) => hub.client(id).cloned().into_iter().collect(),
            Target::User(user) => hub.user_clients(user),
        }
    }

    /// Sends a direct message to the connections `target` names; returns how many took it.
    pub fn direct(
        &self,
        target: &Target,
        event: String,
        data: RawJson,
        from: Option<String>,
    ) -> usize {
        let frame: Frame = encode(&ServerFrame::DirectMessage(DirectMessage {
            event,
            data,
            from,
        }));
        self.targets(target)
            .iter()
            .filter(|c| c.deliver_frame(&frame))
            .count()
    }

    /// Every channel with subscribers, with their number.
    pub fn channels(&self) -> Vec<(String, usize)> {
        self.hub
            .read()
            .channels()
            .map(|(name, n)| (name.to_owned(), n))
            .collect()
    }

    pub fn connection_count(&self) -> usize {
        self.hub.read().connection_count()
    }

    pub fn channel_count(&self) -> usize {
        self.hub.read().channel_count()
    }

    pub fn uptime_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
