//! Failure drills: real `hubbub` nodes on a real `redis-server`, real WebSocket clients,
//! and the failures done for real: Redis killed and started again (with its data, and
//! empty), frozen, cut off from one node; a node killed; and a cluster under load.
//!
//! Every client here does what the browser client does: it keeps its position (epoch and
//! last offset) in each channel, and when its socket closes (4002 included) it connects
//! again and resubscribes with `since`. Publishers publish over HTTP all along and note
//! what each publication got: 200 with its offset, or 503 `UNAVAILABLE`. At the end every
//! client must have received, in order and once, every publication that got a 200 (from
//! where it started, or from where the server said it could not recover).

mod common;

use common::proxy::Proxy;
use common::redis::{redis_url, RedisProcess};
use common::Server;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// How long Redis (or the link to it) is down in the drills.
const OUTAGE: Duration = Duration::from_secs(5);

/// How long a publish may take to be refused while Redis refuses connections, and while
/// it does not answer at all (the node's response timeout is 2 s).
const PROMPT: Duration = Duration::from_millis(500);
const PROMPT_SILENT: Duration = Duration::from_millis(2500);

/// A node of the cluster `prefix` on the Redis at `redis`, where `room:*` keeps history.
fn node(redis: &str, prefix: &str) -> Server {
    let config = format!(
        r#"
engine = "redis"
redis_url = "{redis}"
redis_prefix = "{prefix}"

[anonymous]
read = ["*"]

[[namespaces]]
pattern = "room:*"
history_size = 20000
history_ttl = "10m"
"#
    );
    Server::with_config(&config, &[])
}

/// Polls `done` until it holds, failing the test after `within`.
async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Subscribers that recover, as the browser client does.

/// One channel, as one client sees it.
#[derive(Default)]
struct Track {
    /// The epoch and the last offset the client has.
    position: Option<(String, u64)>,
    /// Each run of the stream the client followed: its epoch and the offset it started
    /// after. A new one begins only where a resubscription answered `recovered: false`.
    segments: Vec<(String, u64)>,
    /// What arrived: the segment, the offset, the publication's sequence number.
    got: Vec<(usize, u64, u64)>,
}

#[derive(Default)]
struct Seen {
    tracks: HashMap<String, Track>,
    /// When a socket closed, and its close code where a close frame came.
    closes: Vec<(Instant, Option<u16>)>,
    /// Sockets opened and fully subscribed.
    sessions: usize,
    /// Subscribed on every channel right now.
    subscribed: bool,
    /// Commands the server refused (a subscribe while Redis is down, say).
    refusals: Vec<String>,
    /// What broke the rules: a gap, a message twice, a message out of place.
    errors: Vec<String>,
}

impl Seen {
    fn deliver(&mut self, channel: &str, offset: u64, seq: u64) {
        let track = self.tracks.entry(channel.to_owned()).or_default();
        let Some((_, last)) = &mut track.position else {
            self.errors
                .push(format!("{channel}: offset {offset} before any position"));
            return;
        };
        if offset != *last + 1 {
            self.errors
                .push(format!("{channel}: offset {offset} right after {last}"));
        }
        *last = offset;
        track.got.push((track.segments.len() - 1, offset, seq));
    }

    /// The answer to a `subscribe` with `since`, and the messages that came before it
    /// (recovered ones, then live ones held back meanwhile).
    fn resubscribed(&mut self, channel: &str, answer: &Value, before: Vec<(u64, u64)>) {
        let recovered = answer["recovered"] == true;
        let epoch = answer["epoch"].as_str().unwrap_or_default().to_owned();
        let offset = answer["offset"].as_u64().unwrap_or_default();
        let track = self.tracks.entry(channel.to_owned()).or_default();
        match (&track.position, recovered) {
            (Some((held, _)), true) => {
                if *held != epoch {
                    self.errors.push(format!(
                        "{channel}: recovered from epoch {held} into epoch {epoch}"
                    ));
                }
            }
            _ => {
                track.segments.push((epoch.clone(), offset));
                track.position = Some((epoch, offset));
            }
        }
        for (offset, seq) in before {
            self.deliver(channel, offset, seq);
        }
    }
}

/// A subscriber that follows `channels` for as long as it lives, through whatever
/// happens to its sockets.
struct Follower {
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Follower {
    /// Connects to `urls` (tried in turn, one after the other, from the first).
    fn start(urls: Vec<String>, channels: Vec<String>) -> Follower {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let task = tokio::spawn(follow(urls, channels, seen.clone()));
        Follower { seen, task }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    fn closes_between(&self, from: Instant, to: Instant) -> usize {
        self.seen()
            .closes
            .iter()
            .filter(|(at, _)| *at >= from && *at <= to)
            .count()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(urls: Vec<String>, channels: Vec<String>, seen: Arc<Mutex<Seen>>) {
    let mut attempt = 0;
    loop {
        let url = &urls[attempt % urls.len()];
        attempt += 1;
        let connect = tokio_tungstenite::connect_async(url.as_str());
        let code = match tokio::time::timeout(Duration::from_secs(2), connect).await {
            Ok(Ok((ws, _))) => {
                let code = session(ws, &channels, &seen).await;
                let mut seen = seen.lock().unwrap();
                seen.subscribed = false;
                seen.closes.push((Instant::now(), code));
                code
            }
            _ => None,
        };
        // As the browser client: at once after 4002, after a pause otherwise.
        if code != Some(hubbub_core::protocol::close::RESYNC) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[derive(serde::Deserialize)]
struct Frame {
    message: MessageFrame,
}

#[derive(serde::Deserialize)]
struct MessageFrame {
    channel: String,
    offset: u64,
    data: u64,
}

/// One socket's life: subscribes with `since` wherever a position is known, then reads
/// until the socket ends; returns its close code.
async fn session(mut ws: common::Socket, channels: &[String], seen: &Mutex<Seen>) -> Option<u16> {
    let mut answering: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    for channel in channels {
        let since = match &seen.lock().unwrap().tracks.get(channel) {
            Some(Track {
                position: Some((epoch, offset)),
                ..
            }) => json!({"epoch": epoch, "offset": offset}),
            _ => json!("latest"),
        };
        let subscribe = json!({"subscribe": {"channel": channel, "since": since}});
        if ws.send(Message::text(subscribe.to_string())).await.is_err() {
            return None;
        }
        answering.insert(channel, Vec::new());
    }
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        };
        // Messages are most of what arrives: read into a struct, cheaper than a Value.
        if text.starts_with(r#"{"message":"#) {
            let Frame { message: m } = serde_json::from_str(&text).expect("a message frame");
            match answering.get_mut(m.channel.as_str()) {
                Some(before) => before.push((m.offset, m.data)),
                None => seen.lock().unwrap().deliver(&m.channel, m.offset, m.data),
            }
            continue;
        }
        let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
        if let Some(answer) = frame.get("resubscribed") {
            let channel = answer["channel"].as_str().unwrap_or_default();
            let before = answering.remove(channel).unwrap_or_default();
            let mut seen = seen.lock().unwrap();
            seen.resubscribed(channel, answer, before);
            if answering.is_empty() {
                seen.sessions += 1;
                seen.subscribed = true;
            }
        } else if frame.get("err").is_some() {
            // Refused (UNAVAILABLE while Redis is down): start again on a new socket.
            seen.lock().unwrap().refusals.push(frame.to_string());
            let _ = ws.close(None).await;
            return None;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Publishers that note what each publication got.

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Published {
        epoch: String,
        offset: u64,
    },
    /// 503 `UNAVAILABLE`: not known to be published.
    Unavailable,
    /// No answer at all (the node died): not known to be published.
    NoAnswer,
}

#[derive(Debug, Clone)]
struct Attempt {
    channel: String,
    seq: u64,
    outcome: Outcome,
    at: Instant,
    took: Duration,
}

struct Publisher {
    attempts: Arc<Mutex<Vec<Attempt>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<String>>,
}

impl Publisher {
    /// Publishes sequence numbers `id * 1_000_000 + i` on `channels` in turn, to `nodes`
    /// (base URLs) in turn, one at a time, `pause` apart, until stopped.
    fn start(id: u64, nodes: Vec<String>, channels: Vec<String>, pause: Duration) -> Publisher {
        Publisher::start_n(id, nodes, channels, pause, u64::MAX)
    }

    /// The same, `n` publications at most.
    fn start_n(
        id: u64,
        nodes: Vec<String>,
        channels: Vec<String>,
        pause: Duration,
        n: u64,
    ) -> Publisher {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(publish(
            (id, n),
            nodes,
            channels,
            pause,
            attempts.clone(),
            stop.clone(),
        ));
        Publisher {
            attempts,
            stop,
            task,
        }
    }

    /// Publications that got a 200 since `since`.
    fn published_since(&self, since: Instant) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.at >= since && matches!(a.outcome, Outcome::Published { .. }))
            .count()
    }

    /// The (channel, epoch) of the publications made between `from` and `to`.
    fn epochs(&self, from: Instant, to: Instant) -> Vec<(String, String)> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.at >= from && a.at < to)
            .filter_map(|a| match &a.outcome {
                Outcome::Published { epoch, .. } => Some((a.channel.clone(), epoch.clone())),
                _ => None,
            })
            .collect()
    }

    fn refused_since(&self, since: Instant) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.at >= since && a.outcome == Outcome::Unavailable)
            .count()
    }

    /// Stops it; returns everything it tried. Fails on any answer but 200 and 503.
    async fn finish(self) -> Vec<Attempt> {
        self.stop.store(true, Ordering::SeqCst);
        self.done().await
    }

    /// Waits until it has made all its publications; returns everything it tried.
    async fn done(self) -> Vec<Attempt> {
        let wrong = self.task.await.unwrap();
        assert!(wrong.is_empty(), "publishers got wrong answers: {wrong:?}");
        Arc::try_unwrap(self.attempts)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

async fn publish(
    (id, n): (u64, u64),
    nodes: Vec<String>,
    channels: Vec<String>,
    pause: Duration,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut wrong = Vec::new();
    let mut i = 0u64;
    while i < n && !stop.load(Ordering::SeqCst) {
        let node = &nodes[i as usize % nodes.len()];
        let channel = &channels[i as usize % channels.len()];
        let seq = id * 1_000_000 + i;
        i += 1;
        let started = Instant::now();
        let sent = http
            .post(format!("{node}/api/publish"))
            .json(&json!({"channel": channel, "data": seq}))
            .send()
            .await;
        let outcome = match sent {
            Err(_) => Outcome::NoAnswer,
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                match status {
                    200 => Outcome::Published {
                        epoch: body["epoch"].as_str().unwrap_or_default().to_owned(),
                        offset: body["offset"].as_u64().unwrap_or_default(),
                    },
                    503 if body["err"] == "UNAVAILABLE" => Outcome::Unavailable,
                    _ => {
                        wrong.push(format!("{status} {body}"));
                        Outcome::NoAnswer
                    }
                }
            }
        };
        attempts.lock().unwrap().push(Attempt {
            channel: channel.clone(),
            seq,
            outcome,
            at: started,
            took: started.elapsed(),
        });
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    wrong
}

// ---------------------------------------------------------------------------------------
// The verdict.

/// What the publishers did, channel by channel.
struct Ledger {
    /// (channel, epoch, offset) → sequence numbers, for every 200: one, but where Redis
    /// went back to an older copy of its data and gave the same offsets again.
    published: HashMap<(String, String, u64), Vec<u64>>,
    /// Every sequence number tried, with its channel.
    tried: HashMap<u64, String>,
    /// Each channel's epoch at the end, and its last offset that got a 200.
    last: HashMap<String, (String, u64)>,
    /// Where a stream went back and was given a new epoch, a subscriber may follow it for
    /// a moment under the old epoch's name (its node had not heard yet) before it is told
    /// `recovered: false`: what it got in segments before its last one need only be what
    /// was published at that offset in some epoch.
    relabeled: bool,
}

impl Ledger {
    /// What `attempts` did; each (epoch, offset) of a channel went to one publication.
    fn new(attempts: &[Attempt]) -> Ledger {
        let mut ledger = Ledger::allowing_reuse(attempts);
        ledger.relabeled = false;
        for ((channel, epoch, offset), seqs) in &ledger.published {
            assert_eq!(seqs.len(), 1, "{channel} {epoch}:{offset} went to {seqs:?}");
        }
        ledger
    }

    fn allowing_reuse(attempts: &[Attempt]) -> Ledger {
        let mut ledger = Ledger {
            published: HashMap::new(),
            tried: HashMap::new(),
            last: HashMap::new(),
            relabeled: true,
        };
        let mut by_time: Vec<&Attempt> = attempts.iter().collect();
        by_time.sort_by_key(|a| a.at);
        for a in by_time {
            ledger.tried.insert(a.seq, a.channel.clone());
            if let Outcome::Published { epoch, offset } = &a.outcome {
                let key = (a.channel.clone(), epoch.clone(), *offset);
                ledger.published.entry(key).or_default().push(a.seq);
                let last = ledger
                    .last
                    .entry(a.channel.clone())
                    .or_insert((epoch.clone(), 0));
                if last.0 != *epoch {
                    *last = (epoch.clone(), 0);
                }
                last.1 = last.1.max(*offset);
            }
        }
        ledger
    }

    /// Whether `follower` has reached the last published offset of every channel.
    fn reached(&self, follower: &Follower) -> bool {
        let seen = follower.seen();
        seen.tracks.iter().all(
            |(channel, track)| match (self.last.get(channel), &track.position) {
                (Some((epoch, last)), Some((at_epoch, at))) => epoch == at_epoch && at >= last,
                (None, _) => true,
                _ => false,
            },
        )
    }

    /// The publications that got a 200 in each channel and epoch: offset and sequence
    /// number.
    fn offsets(&self) -> HashMap<(&str, &str), Vec<(u64, u64)>> {
        let mut offsets: HashMap<(&str, &str), Vec<(u64, u64)>> = HashMap::new();
        for ((channel, epoch, offset), seqs) in &self.published {
            let published = offsets.entry((channel, epoch)).or_default();
            published.extend(seqs.iter().map(|seq| (*offset, *seq)));
        }
        offsets
    }

    /// Every publication that got a 200 reached `follower` once and in order (from
    /// where it started, or from its last `recovered: false`), and nothing else did.
    /// Returns how many segments (runs between `recovered: false`) each channel had.
    fn check(&self, name: &str, follower: &Follower) -> Vec<usize> {
        self.check_with(name, follower, &self.offsets())
    }

    fn check_with(
        &self,
        name: &str,
        follower: &Follower,
        offsets: &HashMap<(&str, &str), Vec<(u64, u64)>>,
    ) -> Vec<usize> {
        let seen = follower.seen();
        assert!(seen.errors.is_empty(), "{name}: {:?}", seen.errors);
        let mut segments = Vec::new();
        for (channel, track) in &seen.tracks {
            let mut once = HashSet::new();
            for &(segment, offset, seq) in &track.got {
                assert!(once.insert(seq), "{name}: {seq} twice on {channel}");
                assert_eq!(
                    self.tried.get(&seq),
                    Some(channel),
                    "{name}: {seq} on {channel} was never published there"
                );
                let epoch = &track.segments[segment].0;
                if self.relabeled && segment + 1 < track.segments.len() {
                    assert!(
                        self.published.iter().any(|((c, _, o), seqs)| c == channel
                            && *o == offset
                            && seqs.contains(&seq)),
                        "{name}: {channel} {epoch}:{offset} is {seq}, never published at {offset}"
                    );
                } else if let Some(published) =
                    self.published
                        .get(&(channel.clone(), epoch.clone(), offset))
                {
                    assert!(
                        published.contains(&seq),
                        "{name}: {channel} {epoch}:{offset} is {seq}, published as {published:?}"
                    );
                }
            }
            let last = track.segments.len() - 1;
            let (epoch, start) = &track.segments[last];
            let got: HashSet<u64> = track
                .got
                .iter()
                .filter(|(s, _, _)| *s == last)
                .map(|(_, _, seq)| *seq)
                .collect();
            let published = offsets.get(&(channel.as_str(), epoch.as_str()));
            for (offset, seq) in published.into_iter().flatten() {
                if offset > start {
                    assert!(
                        got.contains(seq),
                        "{name}: {channel} {epoch}:{offset} ({seq}) never arrived"
                    );
                }
            }
            segments.push(track.segments.len());
        }
        segments
    }
}

fn channels(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Followers on `nodes`, `per_node` each, following `channels`; waits until all are
/// subscribed.
async fn followers(nodes: &[&Server], per_node: usize, channels: &[String]) -> Vec<Follower> {
    let followers: Vec<Follower> = nodes
        .iter()
        .flat_map(|n| (0..per_node).map(|_| Follower::start(vec![n.ws_url()], channels.to_vec())))
        .collect();
    wait_until("every follower is subscribed", common::WAIT, || {
        followers.iter().all(|f| f.seen().subscribed)
    })
    .await;
    followers
}

fn report(what: &str, attempts: &[Attempt], followers: &[Follower]) {
    let published = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Published { .. }))
        .count();
    let refused = attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Unavailable)
        .count();
    let slowest = attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Unavailable)
        .map(|a| a.took)
        .max()
        .unwrap_or_default();
    let resyncs: usize = followers
        .iter()
        .map(|f| {
            f.seen()
                .closes
                .iter()
                .filter(|(_, code)| *code == Some(hubbub_core::protocol::close::RESYNC))
                .count()
        })
        .sum();
    eprintln!(
        "{what}: {} publications tried, {published} published, {} refused (slowest refusal {slowest:?}); {resyncs} resyncs",
        attempts.len(),
        refused,
    );
}

// ---------------------------------------------------------------------------------------
// The drills.

/// Redis goes down for a while (killed, or frozen) and comes back with everything it
/// held, under continuous publishing on two nodes.
async fn redis_outage(prefix: &str, durable: bool, freeze: bool, wipe: bool, snapshot: bool) {
    let mut redis = RedisProcess::start(durable);
    let a = node(&redis.url(), prefix);
    let b = node(&redis.url(), prefix);
    let rooms = channels(&["room:1", "room:2", "room:3"]);
    let followers = followers(&[&a, &b], 5, &rooms).await;
    let publishers = [
        Publisher::start(1, vec![a.url("")], rooms.clone(), Duration::from_millis(5)),
        Publisher::start(2, vec![b.url("")], rooms.clone(), Duration::from_millis(5)),
    ];
    let start = Instant::now();
    wait_until("publishing works", common::WAIT, || {
        publishers.iter().all(|p| p.published_since(start) >= 20)
    })
    .await;
    if snapshot {
        // What is published after the snapshot is lost with the kill.
        redis.save();
        let saved = Instant::now();
        wait_until("more is published after the snapshot", common::WAIT, || {
            publishers.iter().all(|p| p.published_since(saved) >= 20)
        })
        .await;
    }

    // Down.
    let down = Instant::now();
    if freeze {
        redis.pause();
    } else {
        redis.kill();
    }
    wait_until("both nodes refuse publications", common::WAIT, || {
        publishers.iter().all(|p| p.refused_since(down) >= 2)
    })
    .await;
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    let closes: usize = followers
        .iter()
        .map(|f| f.closes_between(down, Instant::now()))
        .sum();
    assert_eq!(closes, 0, "clients stay connected while Redis is down");

    // Back.
    let up = Instant::now();
    if freeze {
        redis.resume();
    } else {
        if wipe {
            redis.wipe();
        }
        redis.restart();
    }
    wait_until("both nodes publish again", common::WAIT, || {
        publishers.iter().all(|p| p.published_since(up) >= 20)
    })
    .await;
    if snapshot {
        // Until every stream is in a new epoch, positions in the old one look as good as
        // any; then every client must learn it.
        let before: HashSet<(String, String)> = publishers
            .iter()
            .flat_map(|p| p.epochs(start, down))
            .collect();
        wait_until("every stream is in a new epoch", common::WAIT, || {
            let now: HashSet<(String, String)> = publishers
                .iter()
                .flat_map(|p| p.epochs(up, Instant::now()))
                .collect();
            rooms.iter().all(|room| {
                now.iter()
                    .any(|(c, e)| c == room && !before.contains(&(c.clone(), e.clone())))
            })
        })
        .await;
        wait_until(
            "every follower learned that its streams went back",
            common::WAIT,
            || {
                followers.iter().all(|f| {
                    let seen = f.seen();
                    seen.subscribed && seen.tracks.values().all(|t| t.segments.len() >= 2)
                })
            },
        )
        .await;
        let told = Instant::now();
        wait_until("more is published in the new epochs", common::WAIT, || {
            publishers.iter().all(|p| p.published_since(told) >= 20)
        })
        .await;
    }
    let mut attempts = Vec::new();
    for p in publishers {
        attempts.extend(p.finish().await);
    }
    for a in attempts
        .iter()
        .filter(|a| a.at >= down && a.at + a.took < up)
    {
        assert!(
            !matches!(a.outcome, Outcome::Published { .. }),
            "published while Redis was down: {a:?}"
        );
    }
    let prompt = if freeze { PROMPT_SILENT } else { PROMPT };
    for a in attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Unavailable)
    {
        assert!(a.took < prompt, "a refusal took {:?}", a.took);
    }
    let ledger = if snapshot {
        Ledger::allowing_reuse(&attempts)
    } else {
        Ledger::new(&attempts)
    };
    wait_until("every follower has everything", common::WAIT, || {
        followers.iter().all(|f| ledger.reached(f))
    })
    .await;
    report(prefix, &attempts, &followers);
    for (i, f) in followers.iter().enumerate() {
        let segments = ledger.check(&format!("follower {i}"), f);
        if snapshot {
            // Told that what it has is not in the stream any more (once, or twice where
            // it resubscribed before the stream had its new epoch), then everything of
            // the new epoch.
            assert!(segments.iter().all(|&s| s >= 2), "{segments:?}");
        } else if wipe {
            // Told once that what it missed is gone, then everything of the new epoch.
            assert!(segments.iter().all(|&s| s == 2), "{segments:?}");
        } else {
            assert!(segments.iter().all(|&s| s == 1), "{segments:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_its_data() {
    redis_outage("drill-kill", true, false, false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_empty() {
    redis_outage("drill-empty", false, false, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen() {
    redis_outage("drill-freeze", false, true, false, false).await;
}

/// Redis killed and started again from a snapshot written before: the publications since
/// are gone, and their offsets go to new ones. The streams get a new epoch, so that no
/// position from before is taken for one in them: every client learns that what it has
/// cannot be continued (`recovered: false`), then gets everything of the new epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_from_an_older_snapshot() {
    redis_outage("drill-snapshot", false, false, false, true).await;
}

/// A network partition between one node and Redis: the node's connections to Redis are
/// dropped and it cannot make new ones, while the other node goes on publishing. The cut
/// node refuses publications promptly, keeps its clients, and once it reaches Redis again
/// its clients recover what went by meanwhile, on a channel that goes quiet after the
/// partition too (no later publication shows the gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis() {
    let redis = RedisProcess::start(false);
    let link = Proxy::start(vec![format!("127.0.0.1:{}", redis.port)]).await;
    let a = node(&format!("redis://{}/0", link.addr), "drill-cut");
    let b = node(&redis.url(), "drill-cut");
    let rooms = channels(&["room:1", "room:2", "room:3"]);
    let mut followed = rooms.clone();
    followed.push("room:quiet".into());
    let followers = followers(&[&a, &b], 5, &followed).await;
    let before = Instant::now();
    let quiet = Publisher::start(
        3,
        vec![b.url("")],
        channels(&["room:quiet"]),
        Duration::ZERO,
    );
    wait_until("the quiet channel has a publication", common::WAIT, || {
        quiet.published_since(before) >= 1
    })
    .await;
    let mut attempts = quiet.finish().await;
    let publishers = [
        Publisher::start(1, vec![a.url("")], rooms.clone(), Duration::from_millis(5)),
        Publisher::start(2, vec![b.url("")], rooms.clone(), Duration::from_millis(5)),
    ];
    let start = Instant::now();
    wait_until("publishing works", common::WAIT, || {
        publishers.iter().all(|p| p.published_since(start) >= 20)
    })
    .await;

    let down = Instant::now();
    link.cut();
    wait_until("the cut node refuses publications", common::WAIT, || {
        publishers[0].refused_since(down) >= 2
    })
    .await;
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    let closes: usize = followers
        .iter()
        .map(|f| f.closes_between(down, Instant::now()))
        .sum();
    assert_eq!(
        closes, 0,
        "clients stay connected while their node is cut off"
    );
    assert!(
        publishers[1].published_since(down + Duration::from_secs(1)) >= 20,
        "the other node publishes all along"
    );
    let quiet = Publisher::start(
        4,
        vec![b.url("")],
        channels(&["room:quiet"]),
        Duration::ZERO,
    );
    wait_until("the quiet channel has publications", common::WAIT, || {
        quiet.published_since(down) >= 3
    })
    .await;
    attempts.extend(quiet.finish().await);

    let up = Instant::now();
    link.heal();
    wait_until("the cut node publishes again", common::WAIT, || {
        publishers[0].published_since(up) >= 20
    })
    .await;
    for p in publishers {
        attempts.extend(p.finish().await);
    }
    for a in attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Unavailable)
    {
        assert!(a.took < PROMPT, "a refusal took {:?}", a.took);
    }
    let ledger = Ledger::new(&attempts);
    wait_until("every follower has everything", common::WAIT, || {
        followers.iter().all(|f| ledger.reached(f))
    })
    .await;
    report("drill-cut", &attempts, &followers);
    for (i, f) in followers.iter().enumerate() {
        let segments = ledger.check(&format!("follower {i}"), f);
        assert!(segments.iter().all(|&s| s == 1), "{segments:?}");
    }
    // The followers on the cut node were told, and recovered; those on the other were not.
    let resynced = |f: &Follower| f.seen().sessions > 1;
    assert!(followers[..5].iter().all(resynced));
    assert!(!followers[5..].iter().any(resynced));
}

/// A node killed with SIGKILL: its clients, behind a balancer that sends each new
/// connection to a live node, connect again to the other node and recover from history
/// what was published meanwhile, losing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_clients_recover_on_another() {
    let redis = RedisProcess::start(false);
    let mut a = node(&redis.url(), "drill-node");
    let b = node(&redis.url(), "drill-node");
    let balancer = Proxy::start(vec![a.addr.clone(), b.addr.clone()]).await;
    let rooms = channels(&["room:1", "room:2", "room:3"]);
    let url = format!("ws://{}/ws", balancer.addr);
    let followers: Vec<Follower> = (0..10)
        .map(|_| Follower::start(vec![url.clone()], rooms.clone()))
        .collect();
    wait_until("every follower is subscribed", common::WAIT, || {
        followers.iter().all(|f| f.seen().subscribed)
    })
    .await;
    a.wait_for_connections(5).await;
    let publisher = Publisher::start(1, vec![b.url("")], rooms.clone(), Duration::from_millis(5));
    let start = Instant::now();
    wait_until("publishing works", common::WAIT, || {
        publisher.published_since(start) >= 20
    })
    .await;

    let killed = Instant::now();
    a.kill();
    wait_until("the killed node's clients are back", common::WAIT, || {
        followers
            .iter()
            .filter(|f| {
                let seen = f.seen();
                seen.sessions == 2 && seen.subscribed
            })
            .count()
            == 5
    })
    .await;
    let moved = killed.elapsed();
    b.wait_for_connections(10).await;
    let back = Instant::now();
    wait_until("more is published", common::WAIT, || {
        publisher.published_since(back) >= 20
    })
    .await;
    let attempts = publisher.finish().await;
    let ledger = Ledger::new(&attempts);
    wait_until("every follower has everything", common::WAIT, || {
        followers.iter().all(|f| ledger.reached(f))
    })
    .await;
    report("drill-node", &attempts, &followers);
    eprintln!("drill-node: the killed node's clients were back on the other within {moved:?}");
    for (i, f) in followers.iter().enumerate() {
        let segments = ledger.check(&format!("follower {i}"), f);
        assert!(segments.iter().all(|&s| s == 1), "{segments:?}");
    }
    assert!(
        attempts
            .iter()
            .all(|a| matches!(a.outcome, Outcome::Published { .. })),
        "the live node published everything"
    );
}

/// Three nodes, 3,000 clients spread over them, each following two of 200 channels;
/// 10,000 publications from four publishers, each over HTTP to the nodes in turn: every
/// client receives every publication of its channels once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_three_thousand_clients() {
    const CLIENTS: usize = 3000;
    const CHANNELS: usize = 200;
    const PUBLISHERS: u64 = 4;
    const PUBLICATIONS: u64 = 10_000;
    let started = Instant::now();
    let nodes: Vec<Server> = (0..3).map(|_| node(redis_url(), "drill-load")).collect();
    let rooms: Vec<String> = (0..CHANNELS).map(|i| format!("room:load:{i}")).collect();
    let mut followers = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let first = i % CHANNELS;
        let mut second = (i * 7 + 13) % CHANNELS;
        if second == first {
            second = (first + 1) % CHANNELS;
        }
        let url = nodes[i % nodes.len()].ws_url();
        let follows = vec![rooms[first].clone(), rooms[second].clone()];
        followers.push(Follower::start(vec![url], follows));
        if i % 100 == 99 {
            // A hundred connections at a time, not 3,000 at once.
            wait_until("the clients so far are subscribed", common::WAIT, || {
                followers.iter().all(|f| f.seen().subscribed)
            })
            .await;
        }
    }
    let connected = started.elapsed();
    // Counted cluster-wide.
    nodes[0].wait_for_connections(CLIENTS as u64).await;
    let publishing = Instant::now();
    let publishers: Vec<Publisher> = (0..PUBLISHERS)
        .map(|id| {
            // Each publisher starts at another node and channel.
            let mut to: Vec<String> = nodes.iter().map(|n| n.url("")).collect();
            to.rotate_left(id as usize % nodes.len());
            let mut on = rooms.clone();
            on.rotate_left(id as usize * CHANNELS / PUBLISHERS as usize);
            Publisher::start_n(id, to, on, Duration::ZERO, PUBLICATIONS / PUBLISHERS)
        })
        .collect();
    let mut attempts = Vec::new();
    for p in publishers {
        attempts.extend(p.done().await);
    }
    let published = publishing.elapsed();
    assert!(
        attempts
            .iter()
            .all(|a| matches!(a.outcome, Outcome::Published { .. })),
        "every publication got a 200"
    );
    let ledger = Ledger::new(&attempts);
    wait_until(
        "every client has everything",
        Duration::from_secs(60),
        || followers.iter().all(|f| ledger.reached(f)),
    )
    .await;
    let delivered = publishing.elapsed();
    let offsets = ledger.offsets();
    let mut deliveries = 0;
    for (i, f) in followers.iter().enumerate() {
        let segments = ledger.check_with(&format!("client {i}"), f, &offsets);
        assert_eq!(segments, [1, 1]);
        assert_eq!(f.seen().sessions, 1, "client {i} was never disconnected");
        deliveries += f.seen().tracks.values().map(|t| t.got.len()).sum::<usize>();
    }
    assert_eq!(deliveries, CLIENTS * 2 * PUBLICATIONS as usize / CHANNELS);
    eprintln!(
        "drill-load: {CLIENTS} clients connected in {connected:?}; {PUBLICATIONS} publications \
         in {published:?}, {deliveries} deliveries done {delivered:?} after the first; \
         {:?} in all",
        started.elapsed()
    );
}
