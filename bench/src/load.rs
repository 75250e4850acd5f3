//! The load generator: WebSocket subscribers, HTTP publishers, and what they measure.
//!
//! Every payload carries the time it was sent (`bench|<ns>|<seq>|` then padding), taken on
//! the load generator's own monotonic clock just before the publish request goes out; a
//! subscriber subtracts it from the time the frame arrives. Publisher and subscribers live
//! in one process, so no clocks need to agree.

use crate::target::{ApiRequest, Incoming, Target};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

pub type Ws = WebSocketStream<TcpStream>;

/// What marks a payload inside any server's frame.
const MARKER: &str = "bench|";

/// Nanoseconds on the load generator's clock.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A payload of `size` bytes (at least the marker, time and sequence number): ASCII with no
/// quote or backslash, so every protocol can carry it as a string as it is.
pub fn payload(seq: u64, size: usize) -> String {
    let mut p = format!("{MARKER}{}|{seq}|", now_ns());
    while p.len() < size {
        p.push('x');
    }
    p
}

/// The send times inside a delivered frame: one per payload (some servers put several
/// messages in one frame).
fn sent_at(frame: &str) -> impl Iterator<Item = u64> + '_ {
    frame.match_indices(MARKER).filter_map(|(at, _)| {
        let rest = &frame[at + MARKER.len()..];
        rest[..rest.find('|')?].parse().ok()
    })
}

/// Latencies in microseconds, from 1 µs to 10 minutes, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// What the subscribers of one run saw.
pub struct Stats {
    pub received: AtomicU64,
    /// Subscriptions confirmed after the connections were handed over (pipelined opens).
    pub subscribed: AtomicU64,
    /// Connections the server closed (or lost) during the run.
    pub dropped: AtomicU64,
    pub latency: Mutex<Histogram<u64>>,
}

impl Stats {
    pub fn new() -> Arc<Stats> {
        Arc::new(Stats {
            received: AtomicU64::new(0),
            subscribed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            latency: Mutex::new(histogram()),
        })
    }

    fn record(&self, frame: &str) {
        let now = now_ns();
        let mut latency = self.latency.lock();
        for sent in sent_at(frame) {
            let us = (now.saturating_sub(sent) / 1000).max(1);
            latency.saturating_record(us);
            self.received.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

fn ws_config() -> WebSocketConfig {
    // Small buffers: tens of thousands of connections live in this one process.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
}

/// Opens one WebSocket connection from `source` and subscribes it to `channels`, returning
/// once the server has confirmed every subscription; `pipelined`: as soon as the
/// subscription is sent, without waiting for a greeting or an answer (the subscribers count
/// the answers later, in [`Stats::subscribed`]).
pub async fn open(
    target: &dyn Target,
    server: SocketAddr,
    source: Ipv4Addr,
    channels: &[String],
    pipelined: bool,
) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    // The port is chosen at connect time, knowing the destination: binding with port 0
    // otherwise searches the whole bind table under a lock, which costs more than the rest
    // of opening a connection once tens of thousands are open.
    nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::IpBindAddressNoPort,
        &true,
    )?;
    socket
        .bind((source, 0).into())
        .with_context(|| format!("bind {source}"))?;
    let stream = socket.connect(server).await.context("connect")?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{server}{}", target.ws_path(channels));
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(ws_config()))
            .await
            .context("WebSocket handshake")?;
    if target.greets() && !pipelined {
        loop {
            match next_text(&mut ws).await? {
                text if target.classify(&text) == Incoming::Welcome => break,
                text => {
                    if let Incoming::Refused(why) = target.classify(&text) {
                        bail!("refused: {why}");
                    }
                }
            }
        }
    }
    for frame in target.subscribe(channels) {
        ws.feed(Message::text(frame)).await?;
    }
    ws.flush().await?;
    if pipelined {
        return Ok(ws);
    }
    let mut acks = target.acks(channels);
    while acks > 0 {
        let text = next_text(&mut ws).await?;
        // A server may answer several commands in one frame, one reply per line
        // (Centrifugo does): each line counts.
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            match target.classify(line) {
                Incoming::Subscribed => acks = acks.saturating_sub(1),
                Incoming::Refused(why) => bail!("subscription refused: {why}"),
                _ => {
                    if let Some(reply) = target.reply(line) {
                        ws.send(Message::text(reply)).await?;
                    }
                }
            }
        }
    }
    Ok(ws)
}

async fn next_text(ws: &mut Ws) -> Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => bail!("closed by the server: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

/// Opens `plan.len()` connections, at most `concurrency` at a time; connection `i` comes
/// from `sources[i]`, goes to `servers[i % servers.len()]` (the nodes of a cluster take
/// turns) and subscribes to `plan[i]` (see [`open`] for `pipelined`). Records each
/// connection's open time (µs) in `timings` when given.
pub async fn open_all(
    target: Arc<dyn Target>,
    servers: &[SocketAddr],
    sources: Vec<Ipv4Addr>,
    plan: Vec<Vec<String>>,
    concurrency: usize,
    timings: Option<&Mutex<Histogram<u64>>>,
    pipelined: bool,
) -> Result<Vec<Ws>> {
    if servers.is_empty() {
        bail!("no server to connect to");
    }
    let n = plan.len();
    let opened: Vec<Result<Ws>> = stream::iter(plan.into_iter().zip(sources).enumerate())
        .map(|(i, (channels, source))| {
            let target = target.clone();
            let server = servers[i % servers.len()];
            async move {
                let started = Instant::now();
                let ws = tokio::time::timeout(
                    Duration::from_secs(30),
                    open(target.as_ref(), server, source, &channels, pipelined),
                )
                .await
                .map_err(|_| anyhow!("timed out"))??;
                Ok((ws, started.elapsed()))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .map(|r: Result<(Ws, Duration)>| {
            r.map(|(ws, took)| {
                if let Some(h) = timings {
                    h.lock().saturating_record((took.as_micros() as u64).max(1));
                }
                ws
            })
        })
        .collect()
        .await;
    let mut sockets = Vec::with_capacity(n);
    let mut first_error = None;
    let mut failed = 0;
    for r in opened {
        match r {
            Ok(ws) => sockets.push(ws),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        bail!("{failed} of {n} connections failed; the first: {e:#}");
    }
    Ok(sockets)
}

/// The subscribers of one run, each reading its connection on its own task.
pub struct Subscribers {
    tasks: JoinSet<()>,
    stop: CancellationToken,
    pub stats: Arc<Stats>,
}

impl Subscribers {
    pub fn start(target: Arc<dyn Target>, sockets: Vec<Ws>) -> Subscribers {
        let stop = CancellationToken::new();
        let stats = Stats::new();
        let mut tasks = JoinSet::new();
        for ws in sockets {
            tasks.spawn(receive(ws, target.clone(), stats.clone(), stop.clone()));
        }
        Subscribers { tasks, stop, stats }
    }

    /// Waits until `expected` deliveries have arrived, or until none has for `quiet`.
    pub async fn drain(&self, expected: u64, quiet: Duration) {
        let mut last = self.stats.received();
        let mut last_change = Instant::now();
        loop {
            let now = self.stats.received();
            if now >= expected {
                return;
            }
            if now != last {
                last = now;
                last_change = Instant::now();
            } else if last_change.elapsed() > quiet {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Closes every connection.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn receive(mut ws: Ws, target: Arc<dyn Target>, stats: Arc<Stats>, stop: CancellationToken) {
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return,
            message = ws.next() => message,
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                // Lines of a batched frame (see `open`) are classified one by one, so a ping
                // that shares a frame with deliveries is still answered.
                let mut reply = None;
                for line in text.as_str().split('\n') {
                    match target.classify(line) {
                        Incoming::Delivery => stats.record(line),
                        Incoming::Subscribed => {
                            stats.subscribed.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => reply = reply.or_else(|| target.reply(line)),
                    }
                }
                if let Some(reply) = reply {
                    if ws.send(Message::text(reply)).await.is_err() {
                        break;
                    }
                }
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(_)) => {}
        }
    }
    if !stop.is_cancelled() {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The publishing side: the server's HTTP API over keep-alive connections. With several
/// servers (the nodes of a cluster), publication `seq` goes to server `seq % n`.
#[derive(Clone)]
pub struct Publisher {
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    target: Arc<dyn Target>,
    pub errors: Arc<AtomicU64>,
    pub first_error: Arc<Mutex<Option<String>>>,
}

impl Publisher {
    pub fn new(target: Arc<dyn Target>, servers: &[SocketAddr]) -> Result<Publisher> {
        if servers.is_empty() {
            bail!("no server to publish to");
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Publisher {
            http,
            bases: Arc::new(servers.iter().map(|s| format!("http://{s}")).collect()),
            target,
            errors: Arc::new(AtomicU64::new(0)),
            first_error: Arc::new(Mutex::new(None)),
        })
    }

    /// Sends `request` to the first server.
    pub async fn send(&self, request: ApiRequest) -> Result<String> {
        self.send_to(0, request).await
    }

    /// Sends `request` to server `index` (modulo their number).
    pub async fn send_to(&self, index: usize, request: ApiRequest) -> Result<String> {
        let base = &self.bases[index % self.bases.len()];
        let mut builder = self
            .http
            .request(request.method, format!("{base}{}", request.path));
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let response = builder.body(request.body).send().await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("HTTP {status}: {body}");
        }
        Ok(body)
    }

    /// Publishes one payload of `size` bytes on `channel` (through server `seq % n`);
    /// failures are counted, not raised.
    pub async fn publish(&self, channel: &str, seq: u64, size: usize) -> bool {
        let request = self.target.publish(channel, &payload(seq, size));
        match self.send_to(seq as usize, request).await {
            Ok(_) => true,
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.first_error.lock().get_or_insert(format!("{e:#}"));
                false
            }
        }
    }

    /// For servers that confirm no subscription: waits until the server reports `expected`
    /// subscriptions (or `timeout` passes).
    pub async fn await_subscriptions(&self, expected: u64, timeout: Duration) -> Result<()> {
        let Some(_) = self.target.subscriptions() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        let mut seen = None;
        while Instant::now() < deadline {
            let request = self.target.subscriptions().expect("checked");
            let body = self.send(request).await?;
            seen = self.target.parse_subscriptions(&body);
            if seen.is_some_and(|n| n >= expected) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("the server reports {seen:?} subscriptions, expected {expected}")
    }
}

/// Publications sent and what they should bring.
#[derive(Default, Debug)]
pub struct Sent {
    pub publications: u64,
    pub expected: u64,
    pub seconds: f64,
}

/// Publishes `rate` times a second for `duration`, on the channels `next(seq)` names
/// (with the number of subscribers each has), with at most `in_flight` requests at once.
///
/// Publication `seq` is due at `seq / rate` seconds; `in_flight` request loops share them
/// (loop `k` sends those with `seq % in_flight == k`), each sending its next one when it is
/// due and the loop's previous answer is in. A server that answers too slowly makes the
/// loops fall behind, which shows as a publish rate under the offered one. The loops are
/// futures of this one task: no task, timer or permit per publication, so the generator
/// spends its CPU on requests.
pub async fn publish_at_rate(
    publisher: &Publisher,
    rate: f64,
    duration: Duration,
    size: usize,
    in_flight: usize,
    next: impl Fn(u64) -> (String, u64),
) -> Sent {
    let started = Instant::now();
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let loops = (in_flight.max(1) as u64).min(total);
    let delivered = AtomicU64::new(0);
    let (next, delivered) = (&next, &delivered);
    let mut running: futures_util::stream::FuturesUnordered<_> = (0..loops)
        .map(|k| async move {
            for seq in (k..total).step_by(loops as usize) {
                let due = started + Duration::from_secs_f64(seq as f64 / rate);
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
                let (channel, subscribers) = next(seq);
                if publisher.publish(&channel, seq, size).await {
                    delivered.fetch_add(subscribers, Ordering::Relaxed);
                }
            }
        })
        .collect();
    while running.next().await.is_some() {}
    Sent {
        publications: total,
        expected: delivered.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Publishes as fast as `workers` request loops can for `duration`, on `channel`.
pub async fn publish_flat_out(
    publisher: &Publisher,
    channel: &str,
    subscribers: u64,
    duration: Duration,
    size: usize,
    workers: usize,
) -> Sent {
    let started = Instant::now();
    let deadline = started + duration;
    let seq = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..workers.max(1) {
        let publisher = publisher.clone();
        let channel = channel.to_owned();
        let seq = seq.clone();
        let ok = ok.clone();
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                if publisher.publish(&channel, n, size).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Sent {
        publications: seq.load(Ordering::Relaxed),
        expected: ok.load(Ordering::Relaxed) * subscribers,
        seconds: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_size_and_gives_back_its_time() {
        let p = payload(7, 100);
        assert_eq!(p.len(), 100);
        let frame = format!(r#"{{"message":{{"channel":"c","event":"b","data":"{p}"}}}}"#);
        let times: Vec<u64> = sent_at(&frame).collect();
        assert_eq!(times.len(), 1);
        assert!(times[0] <= now_ns());
        assert!(!p.contains('"') && !p.contains('\\'));
    }

    #[test]
    fn frames_without_a_payload_have_no_time() {
        assert_eq!(sent_at(r#"{"subscribed":"c"}"#).count(), 0);
        assert_eq!(sent_at("bench|notanumber|1|").count(), 0);
    }

    #[test]
    fn every_payload_of_a_frame_counts() {
        let frame = format!("{}\n{}", payload(1, 40), payload(2, 40));
        assert_eq!(sent_at(&frame).count(), 2);
    }
}
