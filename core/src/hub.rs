//! Who is connected, who is subscribed to what, and fan-out to them, on this node.
//!
//! The hub is plain data behind whatever lock its owner chooses: every method is
//! synchronous and never waits, so the owner can hold its lock for the length of a call
//! and never across network I/O. It is generic over how a subscriber is reached: the
//! server plugs in its connection handles (a bounded queue per connection), tests plug in
//! plain channels.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How the hub hands a frame to one connection.
pub trait Subscriber: Clone {
    /// What is delivered: the server uses an encoded, shared frame so that one
    /// publication is encoded once whatever the number of subscribers.
    type Frame: Clone;

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

/// A subscriber that receives what is published as it comes.
struct Live<S> {
    handle: S,
    /// The offset it caught up to from history, where it did: a publication up to it
    /// that arrives later (it was on its way while the history was read) is one it has,
    /// and is not delivered again. 0 once a later one came.
    floor: AtomicU64,
}

impl<S> Live<S> {
    fn new(handle: S, floor: u64) -> Live<S> {
        Live {
            handle,
            floor: AtomicU64::new(floor),
        }
    }

    /// Whether the publication at `offset` is one it does not have yet.
    fn wants(&self, offset: Option<u64>) -> bool {
        let floor = self.floor.load(Ordering::Relaxed);
        match offset {
            Some(offset) if floor > 0 => {
                if offset > floor {
                    self.floor.store(0, Ordering::Relaxed);
                    true
                } else {
                    false
                }
            }
            _ => true,
        }
    }
}

/// The subscribers of one channel on this node.
struct Channel<S: Subscriber> {
    live: HashMap<ClientId, Live<S>>,
    /// Subscribers catching up from history: what is published meanwhile waits here,
    /// with its offset, until the catching up is done (see [`Hub::finish_recovery`]).
    recovering: HashMap<ClientId, Mutex<Recovery<S>>>,
}

impl<S: Subscriber> Default for Channel<S> {
    fn default() -> Self {
        Channel {
            live: HashMap::new(),
            recovering: HashMap::new(),
        }
    }
}

impl<S: Subscriber> Channel<S> {
    fn len(&self) -> usize {
        self.live.len() + self.recovering.len()
    }

    fn remove(&mut self, id: &str) {
        if self.live.remove(id).is_none() {
            self.recovering.remove(id);
        }
    }
}

struct Recovery<S: Subscriber> {
    handle: S,
    waiting: Vec<(Option<u64>, S::Frame)>,
    /// More was published meanwhile than the hub keeps for one subscriber.
    overflowed: bool,
}

/// What a subscribe did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// The client was not subscribed before; `first` when nobody else on this node was
    /// either (the node starts listening to the channel).
    New { first: bool },
    /// The client was subscribed already; nothing changed.
    Already,
    /// The client holds `max` subscriptions already.
    LimitExceeded,
}

/// A channel a client left, and whether it was the channel's last subscriber on this
/// node (the node stops listening to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub channel: Arc<str>,
    pub last: bool,
}

/// A connection the hub forgot, with the channels it left.
pub struct Gone<S> {
    pub handle: S,
    pub user: Option<String>,
    pub left: Vec<Left>,
}

/// The subscription registry of one node.
pub struct Hub<S: Subscriber> {
    clients: HashMap<ClientId, Client<S>>,
    channels: HashMap<Arc<str>, Channel<S>>,
    users: HashMap<String, HashSet<ClientId>>,
    recovery_limit: usize,
}

/// How many publications the hub keeps for one recovering subscriber by default.
pub const DEFAULT_RECOVERY_LIMIT: usize = 1024;

impl<S: Subscriber> Default for Hub<S> {
    fn default() -> Self {
        Hub {
            clients: HashMap::new(),
            channels: HashMap::new(),
            users: HashMap::new(),
            recovery_limit: DEFAULT_RECOVERY_LIMIT,
        }
    }
}

impl<S: Subscriber> Hub<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps at most `limit` publications for each recovering subscriber; one that falls
    /// further behind fails its recovery.
    pub fn with_recovery_limit(limit: usize) -> Self {
        Hub {
            recovery_limit: limit,
            ..Self::default()
        }
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

    /// Forgets a connection and every subscription it held.
    pub fn disconnect(&mut self, id: &str) -> Option<Gone<S>> {
        let client = self.clients.remove(id)?;
        let left = client
            .channels
            .iter()
            .map(|channel| Left {
                channel: channel.clone(),
                last: self.remove_subscriber(channel, id),
            })
            .collect();
        if let Some(user) = &client.user {
            self.forget_user_client(user, id);
        }
        Some(Gone {
            handle: client.handle,
            user: client.user,
            left,
        })
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
        self.add_subscriber(id, channel, max, false)
    }

    /// Subscribes a connection that first catches up from history: until
    /// [`Hub::finish_recovery`], what is published on `channel` waits for it instead of
    /// being delivered. A connection already subscribed catches up too (it asked for what
    /// came after its position).
    pub fn subscribe_recovering(&mut self, id: &str, channel: &str, max: usize) -> Subscribed {
        self.add_subscriber(id, channel, max, true)
    }

    fn add_subscriber(&mut self, id: &str, channel: &str, max: usize, recover: bool) -> Subscribed {
        let Some(key) = self.clients.get_key_value(id).map(|(k, _)| k.clone()) else {
            return Subscribed::Already;
        };
        let client = self.clients.get_mut(id).expect("present");
        let outcome = if client.channels.contains(channel) {
            Subscribed::Already
        } else if client.channels.len() >= max {
            return Subscribed::LimitExceeded;
        } else {
            Subscribed::New {
                first: !self.channels.contains_key(channel),
            }
        };
        if outcome == Subscribed::Already && !recover {
            return outcome;
        }
        let name: Arc<str> = match self.channels.get_key_value(channel) {
            Some((name, _)) => name.clone(),
            None => Arc::from(channel),
        };
        client.channels.insert(name.clone());
        let subscribers = self.channels.entry(name).or_default();
        let handle = client.handle.clone();
        if recover {
            subscribers.live.remove(id);
            subscribers.recovering.insert(
                key,
                Mutex::new(Recovery {
                    handle,
                    waiting: Vec::new(),
                    overflowed: false,
                }),
            );
        } else {
            subscribers.live.insert(key, Live::new(handle, 0));
        }
        outcome
    }

    /// Ends a connection's catching up on `channel`: delivers what was published meanwhile
    /// after offset `after` (what it already has from history is skipped), then makes it
    /// an ordinary subscriber. Returns `false`, leaving it unsubscribed from `channel`,
    /// when it fell too far behind or could not take a delivery; `None` when it is no
    /// longer recovering there (it unsubscribed or left meanwhile).
    pub fn finish_recovery(&mut self, id: &str, channel: &str, after: u64) -> Option<bool> {
        let subscribers = self.channels.get_mut(channel)?;
        let (key, recovery) = subscribers.recovering.remove_entry(id)?;
        let recovery = recovery.into_inner().unwrap_or_else(|e| e.into_inner());
        let delivered = !recovery.overflowed
            && recovery
                .waiting
                .iter()
                .filter(|(offset, _)| offset.is_none_or(|o| o > after))
                .all(|(_, frame)| recovery.handle.deliver(frame));
        if delivered {
            subscribers
                .live
                .insert(key, Live::new(recovery.handle, after));
        } else {
            if subscribers.len() == 0 {
                self.channels.remove(channel);
            }
            if let Some(client) = self.clients.get_mut(id) {
                client.channels.remove(channel);
            }
        }
        Some(delivered)
    }

    /// Unsubscribes a connection from a channel. Returns `None` when it was not
    /// subscribed.
    pub fn unsubscribe(&mut self, id: &str, channel: &str) -> Option<Left> {
        let client = self.clients.get_mut(id)?;
        let channel = client.channels.take(channel)?;
        let last = self.remove_subscriber(&channel, id);
        Some(Left { channel, last })
    }

    /// Unsubscribes a connection from every channel for which `keep` says no; returns
    /// those channels.
    pub fn retain_subscriptions(&mut self, id: &str, keep: impl Fn(&str) -> bool) -> Vec<Left> {
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
        dropped
            .into_iter()
            .map(|channel| Left {
                last: self.remove_subscriber(&channel, id),
                channel,
            })
            .collect()
    }

    /// Delivers a frame to every subscriber of `channel` (holding it for those catching
    /// up); returns how many took it or hold it.
    pub fn publish(&self, channel: &str, frame: &S::Frame, offset: Option<u64>) -> usize {
        let Some(subscribers) = self.channels.get(channel) else {
            return 0;
        };
        let mut taken = subscribers
            .live
            .values()
            .filter(|s| s.wants(offset) && s.handle.deliver(frame))
            .count();
        if !subscribers.recovering.is_empty() {
            let limit = self.recovery_limit;
            for recovery in subscribers.recovering.values() {
                let mut recovery = recovery.lock().unwrap_or_else(|e| e.into_inner());
                if recovery.waiting.len() >= limit {
                    recovery.overflowed = true;
                    recovery.waiting = Vec::new();
                } else if !recovery.overflowed {
                    recovery.waiting.push((offset, frame.clone()));
                    taken += 1;
                }
            }
        }
        taken
    }

    /// Delivers a frame to every ordinary subscriber of `channel` but `except` (a
    /// subscriber is not told of its own join or leave); returns how many took it.
    pub fn deliver_except(&self, channel: &str, frame: &S::Frame, except: &str) -> usize {
        match self.channels.get(channel) {
            Some(subscribers) => subscribers
                .live
                .iter()
                .filter(|(id, s)| &***id != except && s.handle.deliver(frame))
                .count(),
            None => 0,
        }
    }

    /// Whether anyone on this node is subscribed to `channel`.
    pub fn has_subscribers(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    /// Whether a connection is subscribed to `channel` (or catching up on it).
    pub fn is_subscribed(&self, id: &str, channel: &str) -> bool {
        self.clients
            .get(id)
            .is_some_and(|c| c.channels.contains(channel))
    }

    /// The handle of every connection.
    pub fn clients(&self) -> impl Iterator<Item = &S> {
        self.clients.values().map(|c| &c.handle)
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

    /// The channels a connection is subscribed to.
    pub fn subscriptions(&self, id: &str) -> Vec<Arc<str>> {
        self.clients
            .get(id)
            .map(|c| c.channels.iter().cloned().collect())
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

    /// The handles of every subscriber of `channel` on this node.
    pub fn subscribers(&self, channel: &str) -> Vec<S> {
        match self.channels.get(channel) {
            Some(c) => c
                .live
                .values()
                .map(|s| s.handle.clone())
                .chain(
                    c.recovering
                        .values()
                        .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()).handle.clone()),
                )
                .collect(),
            None => Vec::new(),
        }
    }

    /// The ids of at most `max` subscribers of `channel` on this node.
    pub fn subscriber_ids(&self, channel: &str, max: usize) -> Vec<String> {
        match self.channels.get(channel) {
            Some(c) => c
                .live
                .keys()
                .chain(c.recovering.keys())
                .take(max)
                .map(|id| id.to_string())
                .collect(),
            None => Vec::new(),
        }
    }

    /// The number of subscribers of `channel` on this node.
    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, Channel::len)
    }

    pub fn connection_count(&self) -> usize {
        self.clients.len()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Takes `id` off `channel`'s subscribers; returns whether that left the channel
    /// without any on this node.
    fn remove_subscriber(&mut self, channel: &str, id: &str) -> bool {
        match self.channels.get_mut(channel) {
            Some(subscribers) => {
                subscribers.remove(id);
                if subscribers.len() == 0 {
                    self.channels.remove(channel);
                    true
                } else {
                    false
                }
            }
            None => false,
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

    fn m(text: &str) -> String {
        text.to_owned()
    }

    #[test]
    fn fan_out_reaches_each_subscriber_once() {
        let mut hub = Hub::new();
        let a = client(&mut hub, "a", 8);
        let b = client(&mut hub, "b", 8);
        assert_eq!(hub.subscribe("a", "c", 10), Subscribed::New { first: true });
        assert_eq!(hub.subscribe("a", "c", 10), Subscribed::Already);
        assert_eq!(
            hub.subscribe("b", "c", 10),
            Subscribed::New { first: false }
        );
        assert_eq!(hub.publish("c", &m("m"), None), 2);
        assert_eq!(a.try_iter().collect::<Vec<_>>(), ["m"]);
        assert_eq!(b.try_iter().collect::<Vec<_>>(), ["m"]);
        assert_eq!(hub.publish("other", &m("m"), None), 0);
    }

    #[test]
    fn full_subscribers_are_reported_not_waited_for() {
        let mut hub = Hub::new();
        let _a = client(&mut hub, "a", 1);
        hub.subscribe("a", "c", 10);
        assert_eq!(hub.publish("c", &m("1"), None), 1);
        assert_eq!(hub.publish("c", &m("2"), None), 0);
    }

    #[test]
    fn limits_and_cleanup() {
        let mut hub = Hub::new();
        let _a = client(&mut hub, "a", 8);
        assert_eq!(hub.subscribe("a", "x", 2), Subscribed::New { first: true });
        assert_eq!(hub.subscribe("a", "y", 2), Subscribed::New { first: true });
        assert_eq!(hub.subscribe("a", "z", 2), Subscribed::LimitExceeded);
        assert_eq!(hub.subscription_count("a"), 2);
        assert_eq!(hub.unsubscribe("a", "x").map(|l| l.last), Some(true));
        assert_eq!(hub.unsubscribe("a", "x"), None);
        assert!(!hub.has_subscribers("x"));
        hub.set_user("a", Some("u".into()));
        assert_eq!(hub.user_clients("u").len(), 1);
        let gone = hub.disconnect("a").unwrap();
        assert_eq!(gone.user.as_deref(), Some("u"));
        assert_eq!(
            gone.left,
            [Left {
                channel: "y".into(),
                last: true
            }]
        );
        assert!(hub.disconnect("a").is_none());
        assert_eq!(hub.channel_count(), 0);
        assert_eq!(hub.connection_count(), 0);
        assert!(hub.user_clients("u").is_empty());
    }

    #[test]
    fn the_last_subscriber_is_told_apart() {
        let mut hub = Hub::new();
        let _a = client(&mut hub, "a", 8);
        let _b = client(&mut hub, "b", 8);
        hub.subscribe("a", "c", 10);
        hub.subscribe("b", "c", 10);
        assert_eq!(hub.unsubscribe("a", "c").map(|l| l.last), Some(false));
        assert!(hub.disconnect("b").unwrap().left[0].last);
    }

    #[test]
    fn retain_drops_what_may_no_longer_be_read() {
        let mut hub = Hub::new();
        let _a = client(&mut hub, "a", 8);
        for c in ["public:1", "private:1", "private:2"] {
            hub.subscribe("a", c, 10);
        }
        let mut dropped: Vec<String> = hub
            .retain_subscriptions("a", |c| c.starts_with("public:"))
            .into_iter()
            .map(|l| l.channel.to_string())
            .collect();
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

    #[test]
    fn a_recovering_subscriber_gets_what_came_meanwhile_once() {
        let mut hub = Hub::new();
        let a = client(&mut hub, "a", 16);
        let b = client(&mut hub, "b", 16);
        hub.subscribe("b", "c", 10);
        assert_eq!(
            hub.subscribe_recovering("a", "c", 10),
            Subscribed::New { first: false }
        );
        hub.publish("c", &m("4"), Some(4));
        hub.publish("c", &m("5"), Some(5));
        // History gave it up to 4: only 5 is new.
        assert_eq!(a.try_iter().count(), 0);
        assert_eq!(hub.finish_recovery("a", "c", 4), Some(true));
        hub.publish("c", &m("6"), Some(6));
        assert_eq!(a.try_iter().collect::<Vec<_>>(), ["5", "6"]);
        assert_eq!(b.try_iter().collect::<Vec<_>>(), ["4", "5", "6"]);
        assert_eq!(hub.finish_recovery("a", "c", 4), None);
    }

    #[test]
    fn what_history_gave_is_not_delivered_again_when_it_arrives_late() {
        let mut hub = Hub::new();
        let a = client(&mut hub, "a", 16);
        let b = client(&mut hub, "b", 16);
        hub.subscribe("b", "c", 10);
        hub.subscribe_recovering("a", "c", 10);
        // History gave it up to 6; 5 and 6 were still on their way to this node.
        assert_eq!(hub.finish_recovery("a", "c", 6), Some(true));
        for n in 5..=8 {
            hub.publish("c", &m(&n.to_string()), Some(n));
        }
        assert_eq!(a.try_iter().collect::<Vec<_>>(), ["7", "8"]);
        assert_eq!(b.try_iter().collect::<Vec<_>>(), ["5", "6", "7", "8"]);
        // Past its floor, it gets whatever comes (a new stream starts again at 1).
        hub.publish("c", &m("1"), Some(1));
        hub.publish("c", &m("x"), None);
        assert_eq!(a.try_iter().collect::<Vec<_>>(), ["1", "x"]);
    }

    #[test]
    fn a_recovery_that_falls_too_far_behind_fails() {
        let mut hub = Hub::with_recovery_limit(2);
        let _a = client(&mut hub, "a", 16);
        hub.subscribe_recovering("a", "c", 10);
        for i in 1..=3 {
            hub.publish("c", &i.to_string(), Some(i));
        }
        assert_eq!(hub.finish_recovery("a", "c", 0), Some(false));
        assert!(!hub.is_subscribed("a", "c"));
        assert_eq!(hub.channel_count(), 0);
    }

    #[test]
    fn leaving_while_recovering_forgets_the_recovery() {
        let mut hub = Hub::new();
        let _a = client(&mut hub, "a", 16);
        hub.subscribe_recovering("a", "c", 10);
        assert_eq!(hub.unsubscribe("a", "c").map(|l| l.last), Some(true));
        assert_eq!(hub.finish_recovery("a", "c", 0), None);
        assert_eq!(hub.channel_count(), 0);
    }

    #[test]
    fn joins_and_leaves_skip_their_subject() {
        let mut hub = Hub::new();
        let a = client(&mut hub, "a", 16);
        let b = client(&mut hub, "b", 16);
        hub.subscribe("a", "c", 10);
        hub.subscribe("b", "c", 10);
        assert_eq!(hub.deliver_except("c", &m("join b"), "b"), 1);
        assert_eq!(a.try_iter().collect::<Vec<_>>(), ["join b"]);
        assert_eq!(b.try_iter().count(), 0);
    }
}
