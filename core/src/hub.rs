//! Who is connected, who is subscribed to what, and fan-out to them, on this node.
//!
//! The hub is plain data behind whatever lock its owner chooses: every method is
//! synchronous and never waits, so the owner can hold its lock for the length of a call
//! and never across network I/O. It is generic over how a subscriber is reached: the
//! server plugs in its connection handles (a bounded queue per connection), tests plug in
//! plain channels.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How the hub hands a frame to one connection.
pub trait Subscriber: Clone {
    /// What is delivered: the server uses an encoded, shared frame so that one
    /// publication is encoded once whatever the number of subscribers.
    type Frame;

    /// Queues `frame` without waiting. Returns `false` when the subscriber could not take
    /// it (gone, or too slow: the subscriber deals with that itself).
    fn deliver(&self, frame: &Self::Frame) -> bool;
}

/// A connection's id: unique, opaque, URL-safe.
pub type ClientId = Arc<str>;

struct Client<S> {
    handle: S,
    user: Option<String>,
    channels: HashSet<Arc<str>>,
}

/// What a subscribe did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// The client was not subscribed before.
    New,
    /// The client was subscribed already; nothing changed.
    Already,
    /// The client holds `max` subscriptions already.
    LimitExceeded,
}

/// The subscription registry of one node.
pub struct Hub<S> {
    clients: HashMap<ClientId, Client<S>>,
    channels: HashMap<Arc<str>, HashMap<ClientId, S>>,
    users: HashMap<String, HashSet<ClientId>>,
}

impl<S> Default for Hub<S> {
    fn default() -> Self {
        Hub {
            clients: HashMap::new(),
            channels: HashMap::new(),
            users: HashMap::new(),
        }
    }
}

impl<S: Subscriber> Hub<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a new, anonymous connection.
    pub fn connect(&mut self, id: ClientId, handle: S) {
        self.clients.insert(
            id,
            Client {
                handle,
                user: None,
                channels: HashSet::new(),
            },
        );
    }

    /// Forgets a connection and every subscription it held; returns its handle if it was
    /// connected.
    pub fn disconnect(&mut self, id: &str) -> Option<S> {
        let client = self.clients.remove(id)?;
        for channel in &client.channels {
            self.remove_subscriber(channel, id);
        }
        if let Some(user) = &client.user {
            self.forget_user_client(user, id);
        }
        Some(client.handle)
    }

    /// Records which user a connection is (or that it is anonymous again).
    pub fn set_user(&mut self, id: &str, user: Option<String>) {
        let Some(key) = self.clients.get_key_value(id).map(|(k, _)| k.clone()) else {
            return;
        };
        let client = self.clients.get_mut(id).expect("present");
        let old = std::mem::replace(&mut client.user, user.clone());
        if let Some(old) = old {
            self.forget_user_client(&old, id);
        }
        if let Some(new) = user {
            self.users.entry(new).or_default().insert(key);
        }
    }

    /// Subscribes a connection to a channel, unless that would give it more than `max`
    /// subscriptions.
    pub fn subscribe(&mut self, id: &str, channel: &str, max: usize) -> Subscribed {
        let Some(key) = self.clients.get_key_value(id).map(|(k, _)| k.clone()) else {
            return Subscribed::Already;
        };
        let client = self.clients.get_mut(id).expect("present");
        if client.channels.contains(channel) {
            return Subscribed::Already;
        }
        if client.channels.len() >= max {
            return Subscribed::LimitExceeded;
        }
        let name: Arc<str> = match self.channels.get_key_value(channel) {
            Some((name, _)) => name.clone(),
            None => Arc::from(channel),
        };
        client.channels.insert(name.clone());
        self.channels
            .entry(name)
            .or_default()
            .insert(key, client.handle.clone());
        Subscribed::New
    }

    /// Unsubscribes a connection from a channel. Returns whether it was subscribed.
    pub fn unsubscribe(&mut self, id: &str, channel: &str) -> bool {
        let removed = match self.clients.get_mut(id) {
            Some(client) => client.channels.remove(channel),
            None => false,
        };
        if removed {
            self.remove_subscriber(channel, id);
        }
        removed
    }

    /// Unsubscribes a connection from every channel for which `keep` says no; returns
    /// those channels.
    pub fn retain_subscriptions(&mut self, id: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let Some(client) = self.clients.get_mut(id) else {
            return Vec::new();
        };
        let dropped: Vec<Arc<str>> = client
            .channels
            .iter()
            .filter(|c| !keep(c))
            .cloned()
            .collect();
        for channel in &dropped {
            client.channels.remove(channel);
        }
        for channel in &dropped {
            self.remove_subscriber(channel, id);
        }
        dropped.iter().map(|c| c.to_string()).collect()
    }

    /// Delivers a frame to every subscriber of `channel`; returns how many took it.
    pub fn publish(&self, channel: &str, frame: &S::Frame) -> usize {
        match self.channels.get(channel) {
            Some(subscribers) => subscribers.values().filter(|s| s.deliver(frame)).count(),
            None => 0,
        }
    }

    /// Whether anyone on this node is subscribed to `channel`.
    pub fn has_subscribers(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    /// The handle of a connection, if it is connected.
    pub fn client(&self, id: &str) -> Option<&S> {
        self.clients.get(id).map(|c| &c.handle)
    }

    /// The ids of every connection of `user`.
    pub fn user_client_ids(&self, user: &str) -> Vec<ClientId> {
        self.users
            .get(user)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The handles of every connection of `user`.
    pub fn user_clients(&self, user: &str) -> Vec<S> {
        self.users
            .get(user)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.client(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The number of channels a connection is subscribed to.
    pub fn subscription_count(&self, id: &str) -> usize {
        self.clients.get(id).map_or(0, |c| c.channels.len())
    }

    /// Every channel with subscribers on this node, with their number.
    pub fn channels(&self) -> impl Iterator<Item = (&str, usize)> {
        self.channels
            .iter()
            .map(|(name, subs)| (&**name, subs.len()))
    }

    pub fn connection_count(&self) -> usize {
        self.clients.len()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    fn remove_subscriber(&mut self, channel: &str, id: &str) {
        if let Some(subscribers) = self.channels.get_mut(channel) {
            subscribers.remove(id);
            if subscribers.is_empty() {
                self.channels.remove(channel);
            }
        }
    }

    fn forget_user_client(&mut self, user: &str, id: &str) {
        if let Some(ids) = self.users.get_mut(user) {
            ids.remove(id);
            if ids.is_empty() {
                self.users.remove(user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[derive(Clone)]
    struct Inbox(mpsc::SyncSender<String>);

    impl Subscriber for Inbox {
        type Frame = String;
        fn deliver(&self, frame: &String) -> bool {
            self.0.try_send(frame.clone()).is_ok()
        }
    }

    fn client(hub: &mut Hub<Inbox>, id: &str, room: usize) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::sync_channel(room);
        hub.connect(id.into(), Inbox(tx));
        rx
    }

    #[test]
    fn fan_out_reaches_each_subscriber_once() {
        let mut hub = Hub::new();
        let a = client(&mut hub, "a", 8);
        let b = client(&mut hub, "b", 8);
        assert_eq!(hub.subscribe("a", "c", 10), Subscribed::New);
        assert_eq!(hub.subscribe("a", "c", 10), Subscribed::Already);
        assert_eq!(hub.subscribe("b", "c", 10), Subscribed::New);
        assert_eq!(hub.publish("c", &"m".to_owned()), 2);
        assert_eq!(a.try_iter().collect::<Vec<_>>(), ["m"]);
        assert_eq!(b.try_iter().collect::<Vec<_>>(), ["m"]);
        assert_eq!(hub.publish("other", &"m".to_owned()), 0);
    }

    #[test]
    fn full_subscribers_are_reported_not_waited_for() {
        let mut hub = Hub::new();
        let _a = client(&mut hub, "a", 1);
        hub.subscribe("a", "c", 10);
        assert_eq!(hub.publish("c", &"1".to_owned()), 1);
        assert_eq!(hub.publish("c", &"2".to_owned()), 0);
    }

    #[test]
    fn limits_and_cleanup() {
        let mut hub = Hub::new();
        let _a = client(&mut hub, "a", 8);
        assert_eq!(hub.subscribe("a", "x", 2), Subscribed::New);
        assert_eq!(hub.subscribe("a", "y", 2), Subscribed::New);
        assert_eq!(hub.subscribe("a", "z", 2), Subscribed::LimitExceeded);
        assert_eq!(hub.subscription_count("a"), 2);
        assert!(hub.unsubscribe("a", "x"));
        assert!(!hub.unsubscribe("a", "x"));
        assert!(!hub.has_subscribers("x"));
        hub.set_user("a", Some("u".into()));
        assert_eq!(hub.user_clients("u").len(), 1);
        assert!(hub.disconnect("a").is_some());
        assert!(hub.disconnect("a").is_none());
        assert_eq!(hub.channel_count(), 0);
        assert_eq!(hub.connection_count(), 0);
        assert!(hub.user_clients("u").is_empty());
    }

    #[test]
    fn retain_drops_what_may_no_longer_be_read() {
        let mut hub = Hub::new();
        let _a = client(&mut hub, "a", 8);
        for c in ["public:1", "private:1", "private:2"] {
            hub.subscribe("a", c, 10);
        }
        let mut dropped = hub.retain_subscriptions("a", |c| c.starts_with("public:"));
        dropped.sort();
        assert_eq!(dropped, ["private:1", "private:2"]);
        assert_eq!(hub.channels().count(), 1);
    }

    #[test]
    fn users_follow_identity_changes() {
        let mut hub = Hub::new();
        let _a = client(&mut hub, "a", 8);
        let _b = client(&mut hub, "b", 8);
        hub.set_user("a", Some("u".into()));
        hub.set_user("b", Some("u".into()));
        assert_eq!(hub.user_clients("u").len(), 2);
        assert_eq!(hub.user_client_ids("u").len(), 2);
        hub.set_user("a", Some("v".into()));
        assert_eq!(hub.user_clients("u").len(), 1);
        hub.set_user("b", None);
        assert!(hub.user_clients("u").is_empty());
        assert_eq!(hub.user_clients("v").len(), 1);
    }
}
