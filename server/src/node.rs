//! The running node: configuration, authenticator, hub, engine, shutdown, and the steps
//! that touch more than one of them (a subscription is a hub entry, maybe a broker
//! subscription, a presence entry and a join).
//!
//! The hub sits behind a synchronous lock taken for the length of one call and never
//! across an `.await`; engine calls are awaited with no lock of the hub held. The engine
//! hands publications back to [`Fanout`], which encodes each once and queues it for every
//! local subscriber.

use crate::config::{Config, Engine, Namespace};
use crate::engine::{
    Broker, BrokerHandler, Control, EngineError, HistoryFilter, HistoryResult, MemoryBroker,
    MemoryPresence, PresenceManager, PresenceStats, RedisBroker, RedisPresence, ShardedBroker,
    ShardedPresence,
};
use crate::metrics::METRICS;
use crate::outbox::{encode, encode_message, ClientHandle, Frame};
use crate::shutdown::Shutdown;
use hubbub_core::api::{NodeInfo, Target};
use hubbub_core::auth::Authenticator;
use hubbub_core::hub::{ClientId, Gone, Hub, Left, Subscribed};
use hubbub_core::protocol::{
    close, DirectMessage, Join, Leave, Message, PresentClient, RawJson, ServerFrame, StreamPosition,
};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Locks that serialize, channel by channel, the moments a channel gains its first or
/// loses its last subscriber on this node, so that the broker's subscription always ends
/// up matching the hub.
const CHANNEL_LOCKS: usize = 64;

type SharedHub = Arc<RwLock<Hub<ClientHandle>>>;

pub struct Node {
    pub config: Config,
    pub auth: Authenticator,
    pub shutdown: Shutdown,
    /// This node's id in the cluster.
    pub id: String,
    /// The app hooks, where the configuration sets any.
    pub hooks: Option<crate::hooks::Hooks>,
    hub: SharedHub,
    fanout: Arc<Fanout>,
    broker: Arc<dyn Broker>,
    presence: Arc<dyn PresenceManager>,
    channel_locks: Box<[tokio::sync::Mutex<()>]>,
    /// The presence entries of this node's subscribers, channel by channel, kept so that
    /// they can be refreshed where the engine's entries expire.
    local_presence: parking_lot::Mutex<HashMap<String, HashMap<String, PresentClient>>>,
    lock_hasher: std::collections::hash_map::RandomState,
    started: Instant,
}

/// How long a request to every node waits for their answers; a node that died without
/// leaving the node list yet is not waited for longer. (Core's, which the Redis publisher
/// waits as long.)
const CLUSTER_WAIT: Duration = hubbub_core::engine::CLUSTER_WAIT;

/// How soon a node looks again at the streams it knew before an outage, where Redis could
/// not answer its first look.
const VERIFY_AGAIN: Duration = Duration::from_millis(250);

/// How often a node announces itself, and how long an announcement counts.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(5);
const ANNOUNCE_TTL: Duration = Duration::from_secs(15);

/// A node's answer to a request of another (or of itself).
struct Reply {
    count: usize,
    channels: Option<std::collections::BTreeMap<String, usize>>,
}

/// What the broker's handler leaves for the node's own task: it must not wait, and these
/// need the engine.
enum Chore {
    /// Send this to the other nodes.
    Publish(Control),
    /// Tidy up after a connection closed by another node's request.
    Forget(ClientId, Gone<ClientHandle>),
    /// The broker reconnected: look for publications this node missed meanwhile (those
    /// on their way arrive within the duration).
    Verify(Duration),
    /// The channel's stream went back while in this epoch: give it a new one.
    Renew(String, String),
}

/// Where the broker hands publications back: encodes each once, queues it for every local
/// subscriber. Messages between nodes come here too.
struct Fanout {
    node_id: String,
    hub: SharedHub,
    /// Requests of this node waiting for the nodes' replies.
    waiting: parking_lot::Mutex<HashMap<String, mpsc::UnboundedSender<Reply>>>,
    /// Where this node stands in the stream of each channel with history it listens to.
    streams: parking_lot::Mutex<HashMap<String, Stand>>,
    /// Where it stood when the broker lost its connection, until it has looked at what
    /// became of each stream meanwhile (what subscribers do in between, such as leave,
    /// changes nothing to what is to be looked at).
    before_outage: parking_lot::Mutex<Option<Vec<Known>>>,
    chores: mpsc::UnboundedSender<Chore>,
    /// Publications per channel, counted only while the admin dashboard looks (see
    /// [`Node::publication_rates`]): nothing on the hot path otherwise.
    watched: std::sync::atomic::AtomicBool,
    rates: parking_lot::Mutex<Rates>,
}

/// Publications per channel since `since`.
struct Rates {
    since: std::time::Instant,
    counts: HashMap<String, u64>,
}

/// Channels counted at most, so that a flood of one-off channels cannot grow the map.
const RATED_CHANNELS: usize = 10_000;

/// How long after the dashboard's last look publications stop being counted per channel.
const UNWATCHED_AFTER: Duration = Duration::from_secs(10);

/// Where a node stands in a channel's stream, to tell whether each publication that
/// arrives follows the one before.
struct Stand {
    /// The epoch, as the last subscriber that subscribed with `since` was told: another
    /// one after a reconnect means the stream was lost meanwhile.
    epoch: Option<String>,
    /// The last offset delivered here, or where a subscriber started (`started`).
    last: u64,
    /// The publication at `last`, where it was delivered here: after a reconnect, the one
    /// Redis has at that offset must be the same, or the stream went back and its offsets
    /// went to other publications since.
    frame: Option<Frame>,
    /// `last` is where a subscriber started, read after this node began listening:
    /// publications up to it may still be on their way.
    started: bool,
    /// The stream went back behind `last` and is being given a new epoch: nothing is
    /// delivered meanwhile (the subscribers are closed with 4002 anyway).
    renewing: bool,
}

/// What a node knew of a channel's stream when the broker lost its connection.
#[derive(Clone)]
struct Known {
    channel: String,
    epoch: Option<String>,
    last: u64,
    frame: Option<Frame>,
}

/// What a publication that arrives is, next to what this node delivered before.
enum Arrival {
    /// The next one: delivered.
    Follows,
    /// Some went missing on their way here.
    Gap,
    /// Behind what was delivered already, in the same epoch as far as this node knows:
    /// the stream went back (Redis came back from an older copy of its data) or was made
    /// anew (Redis came back empty, the stream expired). Its subscribers' positions are
    /// no good; where the epoch is known, the stream gets a new one (see
    /// [`Broker::renew_epoch`]).
    Behind(Option<String>),
    /// Dropped while the stream gets its new epoch (its subscribers resync).
    Held,
}

impl Fanout {
    fn reply(
        &self,
        request: &str,
        count: usize,
        channels: Option<std::collections::BTreeMap<String, usize>>,
    ) {
        let _ = self.chores.send(Chore::Publish(Control::Reply {
            request: request.to_owned(),
            node: self.node_id.clone(),
            count,
            channels,
        }));
    }
}

impl Fanout {
    /// Where publication `offset` of `channel` (encoded: `frame`) stands next to what was
    /// delivered here.
    fn arrives(&self, channel: &str, offset: u64, frame: &Frame) -> Arrival {
        let mut streams = self.streams.lock();
        let Some(stand) = streams.get_mut(channel) else {
            streams.insert(
                channel.to_owned(),
                Stand {
                    epoch: None,
                    last: offset,
                    frame: Some(frame.clone()),
                    started: false,
                    renewing: false,
                },
            );
            return Arrival::Follows;
        };
        if stand.renewing {
            return Arrival::Held;
        }
        let last = std::mem::replace(&mut stand.last, offset);
        stand.frame = None;
        let arrival = if std::mem::take(&mut stand.started) {
            // Up to the starting point, publications may still be on their way.
            if offset > last + 1 {
                Arrival::Gap
            } else {
                Arrival::Follows
            }
        } else if offset == last + 1 {
            Arrival::Follows
        } else if offset > last + 1 {
            Arrival::Gap
        } else if stand.epoch.is_some() {
            stand.last = last;
            stand.renewing = true;
            Arrival::Behind(stand.epoch.clone())
        } else {
            Arrival::Behind(None)
        };
        if let Arrival::Follows | Arrival::Gap = arrival {
            stand.frame = Some(frame.clone());
        }
        arrival
    }

    /// A subscriber starts from `position`: the channel's epoch, and where this node
    /// stands in it when nothing was delivered here yet.
    fn starts_from(&self, channel: &str, position: &StreamPosition) {
        let mut streams = self.streams.lock();
        let stand = streams.entry(channel.to_owned()).or_insert(Stand {
            epoch: None,
            last: position.offset,
            frame: None,
            started: true,
            renewing: false,
        });
        stand.epoch = Some(position.epoch.clone());
    }

    /// This node stands at `position` now, whatever it saw before (where it still
    /// listens to the channel).
    fn restart(&self, channel: &str, position: &StreamPosition) {
        if !self.hub.read().has_subscribers(channel) {
            self.streams.lock().remove(channel);
            return;
        }
        self.streams.lock().insert(
            channel.to_owned(),
            Stand {
                epoch: Some(position.epoch.clone()),
                last: position.offset,
                frame: None,
                started: true,
                renewing: false,
            },
        );
    }

    /// The epoch, the last offset and the publication at it that this node knows of
    /// `channel`.
    fn stands(&self, channel: &str) -> (Option<String>, Option<u64>, Option<Frame>) {
        match self.streams.lock().get(channel) {
            Some(stand) => (stand.epoch.clone(), Some(stand.last), stand.frame.clone()),
            None => (None, None, None),
        }
    }

    /// Holds the publications of `channel` while its stream gets a new epoch; `false`
    /// where that is under way already.
    fn hold(&self, channel: &str) -> bool {
        match self.streams.lock().get_mut(channel) {
            Some(stand) => !std::mem::replace(&mut stand.renewing, true),
            None => true,
        }
    }

    /// This node no longer listens to `channel`: what it saw of it no longer counts.
    fn forget_channel(&self, channel: &str) {
        self.streams.lock().remove(channel);
    }

    /// The subscribers of `channel` here did not get everything: they are closed with
    /// 4002 once what is queued for them has gone out, and resubscribe with `since`.
    fn resync(&self, channel: &str) {
        for subscriber in self.hub.read().subscribers(channel) {
            subscriber.close_after_queue(
                hubbub_core::protocol::close::RESYNC,
                "missed publications: resubscribe with since",
            );
        }
    }
}

impl BrokerHandler for Fanout {
    fn interrupted(&self) {
        let mut before = self.before_outage.lock();
        if before.is_none() {
            let streams = self.streams.lock();
            *before = Some(
                streams
                    .iter()
                    .map(|(channel, s)| Known {
                        channel: channel.clone(),
                        epoch: s.epoch.clone(),
                        last: s.last,
                        frame: s.frame.clone(),
                    })
                    .collect(),
            );
        }
    }

    fn resumed(&self, in_flight: Duration) {
        let _ = self.chores.send(Chore::Verify(in_flight));
    }

    fn publication(&self, channel: &str, message: &Message) {
        let frame = encode_message(message);
        if let Some(offset) = message.offset {
            match self.arrives(channel, offset, &frame) {
                Arrival::Follows => {}
                Arrival::Gap => {
                    // Publications were lost on their way here: the subscribers
                    // reconnect and recover the gap from history.
                    tracing::warn!(
                        channel,
                        offset,
                        "publications lost on their way to this node: subscribers resync"
                    );
                    self.resync(channel);
                    return;
                }
                Arrival::Behind(epoch) => {
                    tracing::warn!(
                        channel,
                        offset,
                        "the stream went back behind what was delivered: subscribers resync"
                    );
                    match epoch {
                        // Held meanwhile; they resync once it has a new epoch.
                        Some(epoch) => {
                            let _ = self.chores.send(Chore::Renew(channel.to_owned(), epoch));
                        }
                        None => self.resync(channel),
                    }
                    return;
                }
                // Whoever subscribed while the stream gets its new epoch resyncs too.
                Arrival::Held => {
                    self.resync(channel);
                    return;
                }
            }
        }
        let taken = self.hub.read().publish(channel, &frame, message.offset);
        METRICS.sent("message", taken, frame.len());
        if self.watched.load(std::sync::atomic::Ordering::Relaxed) {
            let mut rates = self.rates.lock();
            if rates.since.elapsed() > UNWATCHED_AFTER {
                // Nobody has looked for a while (the dashboard was closed): stop counting.
                self.watched
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                rates.counts = HashMap::new();
            } else if let Some(n) = rates.counts.get_mut(channel) {
                *n += 1;
            } else if rates.counts.len() < RATED_CHANNELS {
                rates.counts.insert(channel.to_owned(), 1);
            }
        }
    }

    fn join(&self, channel: &str, client: &PresentClient) {
        let frame = encode(&ServerFrame::Join(Join {
            channel: channel.to_owned(),
            client: client.client.clone(),
            user: client.user.clone(),
            info: client.info.clone(),
        }));
        let taken = self
            .hub
            .read()
            .deliver_except(channel, &frame, &client.client);
        METRICS.sent("join", taken, frame.len());
    }

    fn leave(&self, channel: &str, client: &PresentClient) {
        let frame = encode(&ServerFrame::Leave(Leave {
            channel: channel.to_owned(),
            client: client.client.clone(),
            user: client.user.clone(),
        }));
        let taken = self
            .hub
            .read()
            .deliver_except(channel, &frame, &client.client);
        METRICS.sent("leave", taken, frame.len());
    }

    fn control(&self, control: &Control) {
        match control {
            Control::Direct {
                request,
                target,
                frame,
            } => {
                let frame = Frame::from(frame.clone());
                let handles = local_targets(&self.hub.read(), target);
                let count = handles.iter().filter(|c| c.deliver_frame(&frame)).count();
                METRICS.sent("direct", count, frame.len());
                self.reply(request, count, None);
            }
            Control::Disconnect { request, target } => {
                let gone: Vec<(ClientId, Gone<ClientHandle>)> = {
                    let mut hub = self.hub.write();
                    let ids = match target {
                        Target::Client(id) => vec![ClientId::from(id.as_str())],
                        Target::User(user) => hub.user_client_ids(user),
                    };
                    ids.into_iter()
                        .filter_map(|id| hub.disconnect(&id).map(|gone| (id, gone)))
                        .collect()
                };
                let count = gone.len();
                for (id, gone) in gone {
                    gone.handle.close_after_queue(
                        hubbub_core::protocol::close::DISCONNECTED,
                        "disconnected by the application",
                    );
                    let _ = self.chores.send(Chore::Forget(id, gone));
                }
                self.reply(request, count, None);
            }
            Control::Channels { request } => {
                let channels = self
                    .hub
                    .read()
                    .channels()
                    .map(|(name, n)| (name.to_owned(), n))
                    .collect();
                self.reply(request, 0, Some(channels));
            }
            Control::Reply {
                request,
                count,
                channels,
                ..
            } => {
                if let Some(waiting) = self.waiting.lock().get(request) {
                    let _ = waiting.send(Reply {
                        count: *count,
                        channels: channels.clone(),
                    });
                }
            }
        }
    }
}

/// The handles of the connections `target` names on this node.
fn local_targets(hub: &Hub<ClientHandle>, target: &Target) -> Vec<ClientHandle> {
    match target {
        Target::Client(id) => hub.client(id).cloned().into_iter().collect(),
        Target::User(user) => hub.user_clients(user),
    }
}

/// What a resubscription found: whether the gap can be filled, the channel's position,
/// and the messages that fill it.
pub struct Recovery {
    pub recovered: bool,
    pub position: StreamPosition,
    pub messages: Vec<Message>,
}

impl Node {
    /// A node with the engine its configuration names, its broker started.
    pub async fn new(config: Config, shutdown: Shutdown) -> Result<Arc<Node>, EngineError> {
        let hub: SharedHub = Arc::new(RwLock::new(Hub::with_recovery_limit(config.client_queue)));
        let (broker, presence): (Arc<dyn Broker>, Arc<dyn PresenceManager>) = match &config.engine {
            Engine::Memory => (
                Arc::new(MemoryBroker::new()),
                Arc::new(MemoryPresence::new()),
            ),
            Engine::Redis { urls, prefix } => {
                let mut brokers: Vec<Arc<dyn Broker>> = Vec::new();
                let mut presences: Vec<Arc<dyn PresenceManager>> = Vec::new();
                for url in urls {
                    let broker = RedisBroker::connect(url, prefix).await?;
                    presences.push(Arc::new(RedisPresence::new(broker.commands(), prefix)));
                    brokers.push(Arc::new(broker));
                }
                if brokers.len() == 1 {
                    (brokers.remove(0), presences.remove(0))
                } else {
                    (
                        Arc::new(ShardedBroker::new(brokers)),
                        Arc::new(ShardedPresence::new(presences)),
                    )
                }
            }
        };
        let id = crate::engine::new_epoch();
        let (chores, chores_queue) = mpsc::unbounded_channel();
        let fanout = Arc::new(Fanout {
            node_id: id.clone(),
            hub: hub.clone(),
            waiting: Default::default(),
            streams: Default::default(),
            before_outage: Default::default(),
            chores,
            watched: Default::default(),
            rates: parking_lot::Mutex::new(Rates {
                since: std::time::Instant::now(),
                counts: HashMap::new(),
            }),
        });
        broker.start(fanout.clone()).await?;
        let node = Arc::new(Node {
            hooks: config.hooks.clone().map(crate::hooks::Hooks::new),
            auth: config.authenticator(),
            config,
            shutdown,
            id,
            fanout,

            hub,
            broker,
            presence,
            channel_locks: (0..CHANNEL_LOCKS).map(|_| Default::default()).collect(),
            local_presence: Default::default(),
            lock_hasher: Default::default(),
            started: Instant::now(),
        });
        if let Some(every) = node.presence.refresh_every() {
            tokio::spawn(refresh_presence(Arc::downgrade(&node), every));
        }
        node.announce().await?;
        tokio::spawn(do_chores(Arc::downgrade(&node), chores_queue));
        tokio::spawn(close_on_shutdown(Arc::downgrade(&node)));
        Ok(node)
    }

    fn remember_presence(&self, channel: &str, who: &PresentClient) {
        self.local_presence
            .lock()
            .entry(channel.to_owned())
            .or_default()
            .insert(who.client.clone(), who.clone());
    }

    fn forget_presence(&self, channel: &str, client: &str) {
        let mut local = self.local_presence.lock();
        if let Some(present) = local.get_mut(channel) {
            present.remove(client);
            if present.is_empty() {
                local.remove(channel);
            }
        }
    }

    fn channel_lock(&self, channel: &str) -> &tokio::sync::Mutex<()> {
        let i = self.lock_hasher.hash_one(channel) as usize % self.channel_locks.len();
        &self.channel_locks[i]
    }

    pub fn namespace(&self, channel: &str) -> &Namespace {
        self.config.namespace(channel)
    }

    /// Puts a connection on the hub. Once shutdown has begun, it is told to close after
    /// its queue at once: `close_on_shutdown` may have gone over the hub before it joined.
    pub fn connect(&self, id: ClientId, handle: ClientHandle) {
        self.hub.write().connect(id, handle.clone());
        METRICS.connections_opened.inc();
        if self.shutdown.is_triggered() {
            handle.close_after_queue(close::GOING_AWAY, SHUTTING_DOWN);
        }
    }

    /// Takes a connection off the hub and tidies up after it.
    pub async fn disconnect(&self, id: &str, who: &PresentClient) {
        let gone = self.hub.write().disconnect(id);
        if let Some(gone) = gone {
            self.forget(gone, who).await;
        }
    }

    /// What a connection leaves behind: broker subscriptions nobody needs any more,
    /// presence entries, leave notices.
    async fn forget(&self, gone: Gone<ClientHandle>, who: &PresentClient) {
        for left in gone.left {
            self.after_leaving(&left, who).await;
        }
    }

    /// Closes the connections `target` names, on every node, once what is queued for them
    /// has gone out (4000), taking them off their hub at once (so that they receive
    /// nothing more and are no longer counted); returns how many.
    pub async fn kick(&self, target: &Target) -> Result<usize, EngineError> {
        let request = Control::Disconnect {
            request: uuid::Uuid::new_v4().simple().to_string(),
            target: target.clone(),
        };
        let replies = self.ask_every_node(request).await?;
        Ok(replies.iter().map(|r| r.count).sum())
    }

    /// Sends a request to every node and gathers their replies (for at most
    /// [`CLUSTER_WAIT`]).
    async fn ask_every_node(&self, request: Control) -> Result<Vec<Reply>, EngineError> {
        let id = match &request {
            Control::Direct { request, .. }
            | Control::Disconnect { request, .. }
            | Control::Channels { request } => request.clone(),
            Control::Reply { .. } => unreachable!("replies are not requests"),
        };
        let expected = self.broker.nodes().await?.len().max(1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.fanout.waiting.lock().insert(id.clone(), tx);
        let sent = self.broker.publish_control(&request).await;
        let mut replies = Vec::new();
        if sent.is_ok() {
            let deadline = tokio::time::Instant::now() + CLUSTER_WAIT;
            while replies.len() < expected {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(reply)) => replies.push(reply),
                    _ => break,
                }
            }
        }
        self.fanout.waiting.lock().remove(&id);
        sent.map(|()| replies)
    }

    /// Says that this node is alive, with its figures.
    /// Takes this node off the list of live nodes (it shuts down).
    pub async fn withdraw(&self) {
        if let Err(e) = self.broker.withdraw(&self.id).await {
            tracing::warn!("cannot take this node off the list of nodes: {e}");
        }
    }

    async fn announce(&self) -> Result<(), EngineError> {
        self.broker.announce(&self.info(), ANNOUNCE_TTL).await
    }

    /// The ten channels with the most publications per second on this node since the last
    /// call, and over how long; counting starts with the first call (the dashboard's).
    pub fn publication_rates(&self) -> (Vec<(String, f64)>, Duration) {
        self.fanout
            .watched
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let mut rates = self.fanout.rates.lock();
        let over = rates.since.elapsed();
        rates.since = std::time::Instant::now();
        let counts = std::mem::take(&mut rates.counts);
        drop(rates);
        let seconds = over.as_secs_f64().max(1e-3);
        let mut top: Vec<(String, f64)> = counts
            .into_iter()
            .map(|(channel, n)| (channel, n as f64 / seconds))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(10);
        (top, over)
    }

    /// This node's figures.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            id: self.id.clone(),
            connections: self.connection_count(),
            uptime_s: self.uptime_s(),
        }
    }

    /// Every live node, with this one's figures as they are now.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        let mut nodes = self.broker.nodes().await?;
        nodes.retain(|n| n.id != self.id);
        nodes.push(self.info());
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    /// Every channel with subscribers on the cluster, with their number.
    pub async fn channels(&self) -> Result<Vec<(String, usize)>, EngineError> {
        let request = Control::Channels {
            request: uuid::Uuid::new_v4().simple().to_string(),
        };
        let mut all: std::collections::BTreeMap<String, usize> = Default::default();
        for reply in self.ask_every_node(request).await? {
            for (channel, n) in reply.channels.unwrap_or_default() {
                *all.entry(channel).or_default() += n;
            }
        }
        Ok(all.into_iter().collect())
    }

    pub fn set_user(&self, id: &str, user: Option<String>) {
        self.hub.write().set_user(id, user);
    }

    /// Subscribes a connection to `channel`, the broker too where it is the channel's
    /// first subscriber here.
    pub async fn subscribe(&self, id: &str, channel: &str) -> Result<Subscribed, EngineError> {
        self.add_subscriber(id, channel, false).await
    }

    async fn add_subscriber(
        &self,
        id: &str,
        channel: &str,
        recover: bool,
    ) -> Result<Subscribed, EngineError> {
        let max = self.config.max_channels_per_client;
        let _lock = self.channel_lock(channel).lock().await;
        let subscribed = if recover {
            self.hub.write().subscribe_recovering(id, channel, max)
        } else {
            self.hub.write().subscribe(id, channel, max)
        };
        if let Subscribed::New { first: true } = subscribed {
            if let Err(e) = self.broker.subscribe(channel).await {
                self.hub.write().unsubscribe(id, channel);
                return Err(e);
            }
        }
        Ok(subscribed)
    }

    /// Starts a resubscription: subscribes a connection to `channel` with what is
    /// published from now on held back, and reads what the channel published after
    /// `since` (`None`: nothing, just the position). The caller queues the messages, then
    /// calls [`Node::finish_recovery`], so that there is no loss and no duplicate in the
    /// seam between recovered and live messages.
    pub async fn start_recovery(
        &self,
        id: &str,
        channel: &str,
        since: Option<&StreamPosition>,
    ) -> Result<Result<Recovery, Subscribed>, EngineError> {
        let namespace = self.namespace(channel);
        let subscribed = self.add_subscriber(id, channel, true).await?;
        if subscribed == Subscribed::LimitExceeded {
            return Ok(Err(subscribed));
        }
        let may_recover = namespace.recover && since.is_some();
        let filter = HistoryFilter {
            since: since.map(|p| p.offset),
            limit: if may_recover { None } else { Some(0) },
        };
        let history = match self
            .broker
            .history(channel, filter, &namespace.stream)
            .await
        {
            Ok(history) => history,
            Err(e) => {
                self.unsubscribe(id, channel, None).await;
                return Err(e);
            }
        };
        let HistoryResult { position, messages } = history;
        self.fanout.starts_from(channel, &position);
        let recovered = match since {
            None => true,
            Some(_) if !may_recover => false,
            Some(since) => {
                since.epoch == position.epoch
                    && (since.offset == position.offset
                        || since.offset < position.offset
                            && messages.first().and_then(|m| m.offset) == Some(since.offset + 1))
            }
        };
        Ok(Ok(Recovery {
            recovered,
            position,
            messages: if recovered { messages } else { Vec::new() },
        }))
    }

    /// Ends a resubscription: delivers what was held back after `after` and makes the
    /// connection an ordinary subscriber. `false` when it fell too far behind meanwhile
    /// (it is then closed as too slow).
    pub async fn finish_recovery(
        &self,
        id: &str,
        handle: &ClientHandle,
        channel: &str,
        after: u64,
    ) -> bool {
        let finished = self.hub.write().finish_recovery(id, channel, after);
        match finished {
            Some(false) => {
                handle.close(hubbub_core::protocol::close::POLICY, "slow consumer");
                let left = Left {
                    channel: channel.into(),
                    last: !self.hub.read().has_subscribers(channel),
                };
                self.release_channel(&left).await;
                false
            }
            Some(true) | None => true,
        }
    }

    /// Unsubscribes a connection from `channel`; `who` is told to the others where the
    /// channel has presence or join/leave. Returns whether it was subscribed.
    pub async fn unsubscribe(&self, id: &str, channel: &str, who: Option<&PresentClient>) -> bool {
        let left = self.hub.write().unsubscribe(id, channel);
        match left {
            Some(left) => {
                match who {
                    Some(who) => self.after_leaving(&left, who).await,
                    None => self.release_channel(&left).await,
                }
                true
            }
            None => false,
        }
    }

    /// Whether the connection `id` (on this node) is subscribed to `channel`.
    pub fn is_subscribed(&self, id: &str, channel: &str) -> bool {
        self.hub.read().is_subscribed(id, channel)
    }

    /// Drops the subscriptions of `id` for which `keep` says no.
    pub async fn retain_subscriptions(
        &self,
        id: &str,
        keep: impl Fn(&str) -> bool,
        who: &PresentClient,
    ) {
        let dropped = self.hub.write().retain_subscriptions(id, keep);
        for left in dropped {
            self.after_leaving(&left, who).await;
        }
    }

    /// A subscriber left `left.channel`: stop listening where it was the last, take it out
    /// of presence, tell the others.
    async fn after_leaving(&self, left: &Left, who: &PresentClient) {
        self.release_channel(left).await;
        let namespace = self.namespace(&left.channel);
        if namespace.presence {
            self.forget_presence(&left.channel, &who.client);
            if let Err(e) = self.presence.remove(&left.channel, &who.client).await {
                tracing::warn!(channel = %left.channel, "cannot remove from presence: {e}");
            }
        }
        if namespace.join_leave {
            if let Err(e) = self.broker.publish_leave(&left.channel, who).await {
                tracing::warn!(channel = %left.channel, "cannot publish a leave: {e}");
            }
        }
    }

    async fn release_channel(&self, left: &Left) {
        if !left.last {
            return;
        }
        let _lock = self.channel_lock(&left.channel).lock().await;
        // Someone may have subscribed again while the lock was awaited.
        if self.hub.read().has_subscribers(&left.channel) {
            return;
        }
        self.fanout.forget_channel(&left.channel);
        if let Err(e) = self.broker.unsubscribe(&left.channel).await {
            tracing::warn!(channel = %left.channel, "cannot unsubscribe the broker: {e}");
        }
    }

    /// A new subscriber of `channel`: into presence, and a join for the others.
    pub async fn joined(&self, channel: &str, who: &PresentClient) -> Result<(), EngineError> {
        let namespace = self.namespace(channel);
        if namespace.presence {
            self.remember_presence(channel, who);
            self.presence.add(channel, who).await?;
        }
        if namespace.join_leave {
            self.broker.publish_join(channel, who).await?;
        }
        Ok(())
    }

    /// Records a subscriber's new identity in the presence of every channel it is in.
    pub async fn refresh_presence(&self, id: &str, who: &PresentClient) {
        let channels = self.hub.read().subscriptions(id);
        for channel in channels {
            if self.namespace(&channel).presence {
                self.remember_presence(&channel, who);
                if let Err(e) = self.presence.add(&channel, who).await {
                    tracing::warn!(%channel, "cannot update presence: {e}");
                }
            }
        }
    }

    /// Whether `channel` has a subscriber anywhere on the cluster.
    pub async fn has_subscribers(&self, channel: &str) -> Result<bool, EngineError> {
        self.broker.has_subscribers(channel).await
    }

    /// Publishes on `channel`; the answer is its position where the channel keeps history.
    pub async fn publish(
        &self,
        channel: &str,
        event: String,
        data: RawJson,
        from: Option<String>,
    ) -> Result<Option<StreamPosition>, EngineError> {
        let message = Message {
            channel: channel.to_owned(),
            event,
            data,
            offset: None,
            from,
        };
        let namespace = self.namespace(channel);
        self.broker
            .publish(channel, message, &namespace.stream)
            .await
    }

    /// The channel's position and the messages `filter` asks for.
    pub async fn history(
        &self,
        channel: &str,
        filter: HistoryFilter,
    ) -> Result<HistoryResult, EngineError> {
        let namespace = self.namespace(channel);
        self.broker
            .history(channel, filter, &namespace.stream)
            .await
    }

    pub async fn presence(&self, channel: &str) -> Result<Vec<PresentClient>, EngineError> {
        self.presence.list(channel).await
    }

    pub async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, EngineError> {
        self.presence.stats(channel).await
    }

    /// Who is in `channel` for the app's hooks: the first `max` client ids and how many
    /// there are, from presence where the namespace keeps it (cluster-wide), from this
    /// node's subscribers otherwise.
    pub async fn clients_in_channel(
        &self,
        channel: &str,
        max: usize,
    ) -> Result<(Vec<String>, usize), EngineError> {
        if self.namespace(channel).presence {
            let present = self.presence.list(channel).await?;
            let count = present.len();
            let ids = present.into_iter().take(max).map(|c| c.client).collect();
            return Ok((ids, count));
        }
        let hub = self.hub.read();
        Ok((
            hub.subscriber_ids(channel, max),
            hub.subscriber_count(channel),
        ))
    }

    /// Sends a direct message to the connections `target` names, on every node; returns
    /// how many took it.
    pub async fn direct(
        &self,
        target: &Target,
        event: String,
        data: RawJson,
        from: Option<String>,
    ) -> Result<usize, EngineError> {
        let frame = encode(&ServerFrame::DirectMessage(DirectMessage {
            event,
            data,
            from,
        }));
        let request = Control::Direct {
            request: uuid::Uuid::new_v4().simple().to_string(),
            target: target.clone(),
            frame: frame.to_string(),
        };
        let replies = self.ask_every_node(request).await?;
        Ok(replies.iter().map(|r| r.count).sum())
    }

    /// After the broker reconnected: publications of the channels this node listens to
    /// may have gone by meanwhile. Where a channel's stream is another one now (Redis
    /// came back empty), went back (Redis came back from an older snapshot), or moved
    /// past what reached this node (publications while this node was not subscribed),
    /// its subscribers here resync: closed with 4002, they resubscribe with `since` and
    /// recover the gap from history, or learn that it is gone (`recovered: false`).
    async fn verify_streams(self: Arc<Self>, in_flight: Duration) {
        // What this node knew when the connection dropped. Every stream it knew is
        // looked at, whether its subscribers here are still there or not: a stream that
        // went back gets a new epoch, for whoever comes back with a position in it later.
        let Some(known) = self.fanout.before_outage.lock().take() else {
            return;
        };
        let all = known.clone();
        let mut lost = Vec::new();
        let mut back = Vec::new();
        let mut ahead = Vec::new();
        for Known {
            channel,
            epoch,
            last,
            frame,
        } in known
        {
            let position = self
                .history(
                    &channel,
                    HistoryFilter {
                        since: None,
                        limit: Some(0),
                    },
                )
                .await;
            let Ok(now) = position.map(|h| h.position) else {
                // The commands connection's first answer after an outage can still be
                // the error of its last attempt, or Redis is down again: look again in a
                // moment (or at the next reconnection, whichever comes first).
                self.fanout.before_outage.lock().get_or_insert(all);
                tokio::time::sleep(VERIFY_AGAIN).await;
                let _ = self.fanout.chores.send(Chore::Verify(in_flight));
                return;
            };
            match epoch {
                Some(epoch) if epoch != now.epoch => lost.push((channel, now)),
                // Went back; or went back, and on past `last` again with other publications.
                Some(epoch)
                    if now.offset < last || !self.still_has(&channel, last, frame).await =>
                {
                    back.push((channel, epoch))
                }
                None if now.offset < last => lost.push((channel, now)),
                _ if now.offset > last => ahead.push((channel, now.offset)),
                _ => {}
            }
        }
        for (channel, now) in lost {
            tracing::warn!(
                %channel,
                "the stream was lost while Redis was unreachable: subscribers resync"
            );
            self.fanout.restart(&channel, &now);
            self.fanout.resync(&channel);
        }
        for (channel, epoch) in back {
            tracing::warn!(
                %channel,
                "the stream went back while Redis was unreachable: subscribers resync"
            );
            if self.fanout.hold(&channel) {
                self.clone().renew_epoch(channel, epoch).await;
            }
        }
        if ahead.is_empty() {
            return;
        }
        tokio::time::sleep(in_flight).await;
        for (channel, offset) in ahead {
            let (_, last, _) = self.fanout.stands(&channel);
            if last.is_some_and(|last| last < offset) {
                tracing::warn!(
                    %channel,
                    "publications went by while Redis was unreachable: subscribers resync"
                );
                self.fanout.resync(&channel);
            }
        }
    }

    /// Whether the stream of `channel` still has `frame` (the publication last delivered
    /// here) at offset `last`; where either is unknown, or no longer kept, or Redis cannot
    /// be asked, there is nothing to hold against it.
    async fn still_has(&self, channel: &str, last: u64, frame: Option<Frame>) -> bool {
        let Some(frame) = frame else {
            return true;
        };
        let filter = HistoryFilter {
            since: Some(last.saturating_sub(1)),
            limit: Some(1),
        };
        match self.history(channel, filter).await {
            Ok(h) => match h.messages.first() {
                Some(m) if m.offset == Some(last) => encode_message(m) == frame,
                _ => true,
            },
            Err(_) => true,
        }
    }

    /// Gives the stream of `channel` (held: see [`Fanout::hold`]) a new epoch where it is
    /// still in `epoch` (it went back behind what was delivered here), then closes its
    /// subscribers here (4002): they resubscribe with their position in the old epoch,
    /// and learn that it cannot be continued. Tries until Redis answers: the stream must
    /// not go on in the old epoch, whoever listens to it.
    async fn renew_epoch(self: Arc<Self>, channel: String, epoch: String) {
        let options = self.namespace(&channel).stream;
        let mut delay = VERIFY_AGAIN;
        loop {
            match self.broker.renew_epoch(&channel, &epoch, &options).await {
                Ok(position) => {
                    tracing::warn!(
                        %channel,
                        epoch = %position.epoch,
                        "the stream went back behind what was delivered: it is in a new epoch"
                    );
                    self.fanout.restart(&channel, &position);
                    self.fanout.resync(&channel);
                    return;
                }
                Err(e) => {
                    tracing::warn!(%channel, "cannot give the stream a new epoch yet: {e}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    pub fn connection_count(&self) -> usize {
        self.hub.read().connection_count()
    }

    pub fn channel_count(&self) -> usize {
        self.hub.read().channel_count()
    }

    /// The subscriptions of this node's connections, all channels together.
    pub fn subscription_count(&self) -> usize {
        self.hub.read().channels().map(|(_, n)| n).sum()
    }

    pub fn uptime_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// Adds this node's subscribers to presence again, every `every`, for as long as the node
/// lives: where the engine's entries expire, those of a node that died go away by
/// themselves, and those of a live one stay.
async fn refresh_presence(node: std::sync::Weak<Node>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else {
            return;
        };
        let entries: Vec<(String, PresentClient)> = node
            .local_presence
            .lock()
            .iter()
            .flat_map(|(channel, present)| present.values().map(|p| (channel.clone(), p.clone())))
            .collect();
        for (channel, who) in entries {
            // Gone since the snapshot: not brought back.
            let still_here = node
                .local_presence
                .lock()
                .get(&channel)
                .is_some_and(|present| present.contains_key(&who.client));
            if !still_here {
                continue;
            }
            if let Err(e) = node.presence.add(&channel, &who).await {
                tracing::warn!(%channel, "cannot refresh presence: {e}");
            }
        }
    }
}

/// The node's own work that the broker's handler cannot do itself: sending replies to the
/// other nodes, tidying up after connections another node's request closed, and
/// announcing the node now and then. Ends with the node.
/// When the server shuts down, tells every connection on the hub to close after what is
/// queued for it (1001). Connections are told here, once, rather than each watching the
/// shutdown on every wake-up; one that joins the hub meanwhile looks for itself after
/// joining ([`Node::connect`]).
async fn close_on_shutdown(node: std::sync::Weak<Node>) {
    let Some(shutdown) = node.upgrade().map(|node| node.shutdown.clone()) else {
        return;
    };
    shutdown.triggered().await;
    let Some(node) = node.upgrade() else {
        return;
    };
    for client in node.hub.read().clients() {
        client.close_after_queue(close::GOING_AWAY, SHUTTING_DOWN);
    }
}

/// The reason of the close (1001) of every connection when the server shuts down.
pub const SHUTTING_DOWN: &str = "server shutting down";

async fn do_chores(node: std::sync::Weak<Node>, mut queue: mpsc::UnboundedReceiver<Chore>) {
    let mut announce = tokio::time::interval(ANNOUNCE_EVERY);
    announce.tick().await;
    loop {
        let chore = tokio::select! {
            chore = queue.recv() => chore,
            _ = announce.tick() => {
                let Some(node) = node.upgrade() else { return };
                if let Err(e) = node.announce().await {
                    tracing::warn!("cannot announce this node: {e}");
                }
                continue;
            }
        };
        let (Some(chore), Some(node)) = (chore, node.upgrade()) else {
            return;
        };
        match chore {
            Chore::Publish(control) => {
                if let Err(e) = node.broker.publish_control(&control).await {
                    tracing::warn!("cannot answer another node: {e}");
                }
            }
            Chore::Verify(in_flight) => {
                tokio::spawn(node.verify_streams(in_flight));
            }
            Chore::Renew(channel, epoch) => {
                tokio::spawn(node.renew_epoch(channel, epoch));
            }
            Chore::Forget(id, gone) => {
                let who = PresentClient {
                    client: id.to_string(),
                    user: gone.user.clone(),
                    info: None,
                };
                node.forget(gone, &who).await;
            }
        }
    }
}
