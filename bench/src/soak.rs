//! `hubbub-bench soak`: a long run of churn against one hubbub process, watching for what
//! only time shows: memory that grows, descriptors that are not given back, deliveries
//! lost to live subscribers, panics.
//!
//! The load, all at once for the whole run:
//! - publishers: one request loop per channel over the HTTP API, each numbering its
//!   publications (`{"seq": N}`), so that a subscriber can tell a gap from a duplicate;
//! - churners: connect, subscribe to a few channels without history, read for a while,
//!   then leave one of three ways: unsubscribe and close, a TCP reset with the
//!   subscriptions still in place, or a plain drop (FIN, no close frame);
//! - recoverers: on channels that keep history, subscribe from `"latest"`, drop the
//!   connection, come back after a pause and resubscribe with `since` their last offset:
//!   what they missed must arrive, once, in order;
//! - slow readers: read one frame now and then from a channel of big publications, until
//!   the server closes them as slow consumers (expected, counted), then come back.
//!
//! Every live subscriber checks what it receives per channel: every publication whose
//! request went out after its subscription was confirmed must arrive, in order, once; at
//! the end of its life (an `unsubscribed` answer, or a `pong` before a drop: both come
//! through the same queue as deliveries) everything the API had acknowledged must be in.
//! The server's RSS and open descriptors are sampled from /proc throughout.

use crate::target::spawn_until_line;
use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use hubbub_core::api::PublishRequest;
use hubbub_core::protocol::{
    close, Command, RawJson, ServerFrame, Since, StreamPosition, Subscribe,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Channels without history, for churners.
const LIVE: [&str; 6] = ["live:0", "live:1", "live:2", "live:3", "live:4", "live:5"];
/// Channels that keep history (namespace `hist:*`), for recoverers.
const HIST: [&str; 3] = ["hist:0", "hist:1", "hist:2"];
/// The channel of big publications that slow readers fall behind on.
const BULK: &str = "bulk";
const API_KEY: &str = "soak-key";
/// Deliveries queued per connection on the server: small, so that slow readers reach it
/// within seconds.
const CLIENT_QUEUE: u64 = 256;
/// How long any one step of a client may take before the run counts it as stuck.
const STEP: Duration = Duration::from_secs(10);

/// What a soak run does.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub duration: Duration,
    pub sample_every: Duration,
    pub churners: usize,
    pub recoverers: usize,
    pub slow_readers: usize,
    /// Publications per second on each live and history channel.
    pub rate: f64,
    /// Publications per second on the bulk channel, and their size.
    pub bulk_rate: f64,
    pub bulk_size: usize,
}

/// One look at the server process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub t: f64,
    pub rss_kb: u64,
    pub fds: u64,
    /// WebSocket connections the driver holds at that moment.
    pub clients: u64,
    pub deliveries: u64,
}

/// Everything the run counted.
#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    open: AtomicU64,
    deliveries: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    publishes: AtomicU64,
    publish_errors: AtomicU64,
    slow_closed: AtomicU64,
    slow_cut: AtomicU64,
    slow_not_closed: AtomicU64,
    unexpected_closes: AtomicU64,
    stuck: AtomicU64,
    recoveries: AtomicU64,
    recovered: AtomicU64,
    not_recovered: AtomicU64,
    tail_checks: AtomicU64,
    left_by_unsubscribe: AtomicU64,
    left_by_reset: AtomicU64,
    left_by_drop: AtomicU64,
}

impl Counters {
    fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// What the JSON report holds.
#[derive(Debug, Serialize)]
pub struct Report {
    pub settings: Settings,
    pub samples: Vec<Sample>,
    pub totals: HashMap<&'static str, u64>,
    pub baseline_fds: u64,
    pub end_fds: u64,
    pub panics: u64,
    pub rss: RssVerdict,
    pub failures: Vec<String>,
}

/// How RSS moved after warm-up: the mean of the first and of the last tenth of the
/// samples after warm-up, and a least-squares slope over all of them.
#[derive(Debug, Serialize)]
pub struct RssVerdict {
    pub warmup_s: f64,
    pub start_kb: u64,
    pub after_warmup_kb: u64,
    pub end_kb: u64,
    pub max_kb: u64,
    pub slope_kb_per_hour: f64,
    /// The last tenth's mean is within 10% (and 2 MB) of the first tenth's.
    pub flat: bool,
    /// Once every client has left.
    pub after_clients_left_kb: u64,
}

/// Per-channel publication counters shared by a publisher and the subscribers' checks.
#[derive(Default)]
struct Feed {
    /// The highest sequence number whose publish request has gone out.
    started: AtomicU64,
    /// The highest sequence number the API has acknowledged.
    done: AtomicU64,
}

struct Shared {
    server: SocketAddr,
    feeds: HashMap<&'static str, Feed>,
    counters: Counters,
    stop: CancellationToken,
}

/// What one subscription has seen of its channel.
struct Track {
    /// Publications after this number must all arrive.
    floor: u64,
    /// The next number expected, once one has arrived.
    next: Option<u64>,
}

impl Track {
    fn new(floor: u64) -> Track {
        Track { floor, next: None }
    }

    /// Records publication `n`; returns (lost, duplicated).
    fn see(&mut self, n: u64) -> (u64, u64) {
        let expected = self.next.unwrap_or(self.floor + 1);
        match self.next {
            None if n <= expected => {
                // Published around the subscription: may or may not arrive, either is fine.
                self.next = Some(n + 1);
                (0, 0)
            }
            _ if n >= expected => {
                self.next = Some(n + 1);
                (n - expected, 0)
            }
            _ => (0, 1),
        }
    }

    /// Everything up to `done` should have arrived; returns how much did not.
    fn close(&self, done: u64) -> u64 {
        let have = self.next.map_or(self.floor, |n| n - 1);
        done.saturating_sub(have)
    }
}

#[derive(Deserialize)]
struct Numbered {
    seq: u64,
}

/// A small random generator per task (no shared state, no crate).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// Runs the soak: starts hubbub from `bin`, drives it for `settings.duration`, stops it.
pub async fn run(bin: &Path, settings: Settings, dir: &Path) -> Result<Report> {
    let config = dir.join("soak.toml");
    std::fs::write(&config, config_text())?;
    let log = dir.join("hubbub.log");
    std::fs::File::create(&log)?;
    let mut command = Process::new(bin);
    command
        .arg("--config")
        .arg(&config)
        .env("HUBBUB_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let listening = Regex::new(r"listening on http://([0-9.]+):([0-9]+)")?;
    let (mut child, server) =
        spawn_until_line(command, &log, Duration::from_secs(20), move |line| {
            let c = listening.captures(line)?;
            format!("{}:{}", &c[1], &c[2]).parse::<SocketAddr>().ok()
        })?;
    let pid = child.id();
    let baseline_fds = fds(pid)?;
    let start_kb = rss_kb(pid)?;

    let shared = Arc::new(Shared {
        server,
        feeds: LIVE
            .iter()
            .chain(HIST.iter())
            .chain([BULK].iter())
            .map(|&c| (c, Feed::default()))
            .collect(),
        counters: Counters::default(),
        stop: CancellationToken::new(),
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()?;
    let mut tasks = JoinSet::new();
    for &channel in LIVE.iter().chain(HIST.iter()) {
        tasks.spawn(publisher(
            shared.clone(),
            http.clone(),
            channel,
            settings.rate,
            0,
        ));
    }
    tasks.spawn(publisher(
        shared.clone(),
        http.clone(),
        BULK,
        settings.bulk_rate,
        settings.bulk_size,
    ));
    for i in 0..settings.churners {
        tasks.spawn(churner(shared.clone(), i as u64));
    }
    for i in 0..settings.recoverers {
        tasks.spawn(recoverer(
            shared.clone(),
            HIST[i % HIST.len()],
            1000 + i as u64,
        ));
    }
    for i in 0..settings.slow_readers {
        tasks.spawn(slow_reader(shared.clone(), 2000 + i as u64));
    }

    // Sample until the time is up; then let every client finish its step and leave.
    let started = Instant::now();
    let mut samples = vec![Sample {
        t: 0.0,
        rss_kb: start_kb,
        fds: baseline_fds,
        clients: 0,
        deliveries: 0,
    }];
    let mut tick = tokio::time::interval(settings.sample_every);
    tick.tick().await;
    while started.elapsed() < settings.duration {
        tick.tick().await;
        samples.push(Sample {
            t: started.elapsed().as_secs_f64(),
            rss_kb: rss_kb(pid)?,
            fds: fds(pid)?,
            clients: get(&shared.counters.open),
            deliveries: get(&shared.counters.deliveries),
        });
        if let Some(status) = child.try_wait()? {
            shared.stop.cancel();
            bail!(
                "hubbub exited during the soak ({status}); see {}",
                log.display()
            );
        }
    }
    shared.stop.cancel();
    while let Some(done) = tasks.join_next().await {
        done.context("a soak task panicked")?;
    }
    drop(http);

    // Every connection is closed on the driver's side: the server must give back every
    // descriptor. There is no event to await for that, so /proc is polled, bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut end_fds = fds(pid)?;
    while end_fds > baseline_fds && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        end_fds = fds(pid)?;
    }
    samples.push(Sample {
        t: started.elapsed().as_secs_f64(),
        rss_kb: rss_kb(pid)?,
        fds: end_fds,
        clients: get(&shared.counters.open),
        deliveries: get(&shared.counters.deliveries),
    });

    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    let log_text = std::fs::read_to_string(&log)?;
    let panics = log_text.matches("panicked").count() as u64;

    let c = &shared.counters;
    let totals: HashMap<&'static str, u64> = [
        ("connections", get(&c.connections)),
        ("deliveries", get(&c.deliveries)),
        ("lost", get(&c.lost)),
        ("duplicated", get(&c.duplicated)),
        ("publishes", get(&c.publishes)),
        ("publish_errors", get(&c.publish_errors)),
        ("slow_consumers_closed", get(&c.slow_closed)),
        ("slow_consumers_cut_without_close_frame", get(&c.slow_cut)),
        ("slow_readers_not_closed", get(&c.slow_not_closed)),
        ("unexpected_closes", get(&c.unexpected_closes)),
        ("stuck", get(&c.stuck)),
        ("recoveries", get(&c.recoveries)),
        ("recovered", get(&c.recovered)),
        ("not_recovered", get(&c.not_recovered)),
        ("tail_checks", get(&c.tail_checks)),
        ("left_by_unsubscribe_and_close", get(&c.left_by_unsubscribe)),
        ("left_by_tcp_reset", get(&c.left_by_reset)),
        ("left_by_drop_without_close", get(&c.left_by_drop)),
    ]
    .into_iter()
    .collect();

    let mut failures = Vec::new();
    for (name, what) in [
        ("lost", "deliveries lost to live subscribers"),
        ("duplicated", "deliveries duplicated or out of order"),
        ("publish_errors", "publish requests that failed"),
        (
            "unexpected_closes",
            "connections closed by the server for no expected reason",
        ),
        ("stuck", "client steps that got no answer within 10s"),
    ] {
        if totals[name] > 0 {
            failures.push(format!("{} {what}", totals[name]));
        }
    }
    if totals["deliveries"] == 0 {
        failures.push("nothing was delivered".to_owned());
    }
    if panics > 0 {
        failures.push(format!("{panics} panics in the server's log"));
    }
    if end_fds > baseline_fds {
        failures.push(format!(
            "descriptors not returned: {end_fds} open at the end, {baseline_fds} before the load"
        ));
    }
    if !status.success() {
        failures.push(format!("hubbub exited with {status} after SIGTERM"));
    }
    // Judged on the samples under load; the last one, after the clients left, is apart.
    let mut rss = rss_verdict(&samples[..samples.len() - 1], settings.duration);
    rss.after_clients_left_kb = samples.last().map_or(0, |s| s.rss_kb);
    Ok(Report {
        settings,
        samples,
        totals,
        baseline_fds,
        end_fds,
        panics,
        rss,
        failures,
    })
}

fn config_text() -> String {
    format!(
        r#"# Written by hubbub-bench soak.
listen = "127.0.0.1:0"
api_keys = ["{API_KEY}"]
client_queue = {CLIENT_QUEUE}

[anonymous]
read = ["*"]

[[namespaces]]
pattern = "hist:*"
history_size = 1000
history_ttl = "120s"
recover = true
"#
    )
}

/// Warm-up is the first tenth of the run, at least 10 s and at most 3 minutes.
fn rss_verdict(samples: &[Sample], duration: Duration) -> RssVerdict {
    let warmup_s = (duration.as_secs_f64() / 10.0).clamp(10.0, 180.0);
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t >= warmup_s).collect();
    let mean = |part: &[&Sample]| {
        if part.is_empty() {
            0
        } else {
            part.iter().map(|s| s.rss_kb).sum::<u64>() / part.len() as u64
        }
    };
    let tenth = (after.len() / 10).max(1).min(after.len());
    let after_warmup_kb = mean(&after[..tenth]);
    let end_kb = mean(&after[after.len() - tenth..]);
    let n = after.len() as f64;
    let slope_kb_per_hour = if after.len() > 1 {
        let (mt, mr) = (
            after.iter().map(|s| s.t).sum::<f64>() / n,
            after.iter().map(|s| s.rss_kb as f64).sum::<f64>() / n,
        );
        let cov: f64 = after
            .iter()
            .map(|s| (s.t - mt) * (s.rss_kb as f64 - mr))
            .sum();
        let var: f64 = after.iter().map(|s| (s.t - mt).powi(2)).sum();
        if var > 0.0 {
            cov / var * 3600.0
        } else {
            0.0
        }
    } else {
        0.0
    };
    RssVerdict {
        warmup_s,
        start_kb: samples.first().map_or(0, |s| s.rss_kb),
        after_warmup_kb,
        end_kb,
        max_kb: samples.iter().map(|s| s.rss_kb).max().unwrap_or(0),
        slope_kb_per_hour,
        flat: (end_kb as f64) <= after_warmup_kb as f64 * 1.10 + 2048.0,
        after_clients_left_kb: 0,
    }
}

fn rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

fn fds(pid: u32) -> Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// Publishes numbered publications on `channel` at `rate` per second, one request at a
/// time, so that the numbers are the channel's order.
async fn publisher(
    shared: Arc<Shared>,
    http: reqwest::Client,
    channel: &'static str,
    rate: f64,
    pad: usize,
) {
    let feed = &shared.feeds[channel];
    let url = format!("http://{}/api/publish", shared.server);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let padding = "x".repeat(pad);
    let mut seq = 0;
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        seq += 1;
        let data = if pad > 0 {
            format!(r#"{{"seq":{seq},"pad":"{padding}"}}"#)
        } else {
            format!(r#"{{"seq":{seq}}}"#)
        };
        let body = PublishRequest {
            channel: channel.to_owned(),
            data: RawJson::from_string(data).expect("valid JSON"),
            event: "soak".to_owned(),
        };
        feed.started.store(seq, Ordering::SeqCst);
        let sent = http
            .post(&url)
            .bearer_auth(API_KEY)
            .json(&body)
            .timeout(STEP)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                feed.done.store(seq, Ordering::SeqCst);
                shared.counters.add(&shared.counters.publishes, 1);
            }
            Ok(r) => {
                eprintln!("soak: publish on {channel} answered {}", r.status());
                shared.counters.add(&shared.counters.publish_errors, 1);
            }
            Err(e) => {
                eprintln!("soak: publish on {channel} failed: {e}");
                shared.counters.add(&shared.counters.publish_errors, 1);
            }
        }
    }
}

/// A client connection with the checks of its subscriptions.
struct Client {
    ws: Ws,
    tracks: HashMap<String, Track>,
    /// The driver's count of open connections, given back on drop.
    open: Arc<Shared>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.open.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a client's connection ended early.
enum Ended {
    /// Closed by the server with this code and reason.
    Closed(u16, String),
    /// A step got no answer in time.
    Stuck(&'static str),
    /// The connection broke.
    Broken(String),
}

type Step<T> = std::result::Result<T, Ended>;

async fn connect(shared: &Arc<Shared>, recv_buffer: Option<u32>) -> Step<Client> {
    let open = async {
        let socket = TcpSocket::new_v4()?;
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        let stream = socket.connect(shared.server).await?;
        let url = format!("ws://{}/ws", shared.server);
        let (ws, _) = tokio_tungstenite::client_async(url.as_str(), stream).await?;
        anyhow::Ok(ws)
    };
    let ws = match tokio::time::timeout(STEP, open).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return Err(Ended::Broken(format!("connect: {e:#}"))),
        Err(_) => return Err(Ended::Stuck("connect")),
    };
    shared.counters.add(&shared.counters.connections, 1);
    shared.counters.add(&shared.counters.open, 1);
    Ok(Client {
        ws,
        tracks: HashMap::new(),
        open: shared.clone(),
    })
}

impl Client {
    async fn send(&mut self, command: Command) -> Step<()> {
        self.ws
            .send(WsMessage::text(command.to_json()))
            .await
            .map_err(|e| Ended::Broken(format!("send: {e}")))
    }

    /// The next frame from the server; deliveries are checked on the way.
    async fn next(&mut self, shared: &Shared) -> Step<ServerFrame> {
        loop {
            let message = match tokio::time::timeout(STEP, self.ws.next()).await {
                Err(_) => return Err(Ended::Stuck("read")),
                Ok(None) => return Err(Ended::Broken("connection ended".to_owned())),
                Ok(Some(Err(e))) => return Err(Ended::Broken(format!("read: {e}"))),
                Ok(Some(Ok(m))) => m,
            };
            let text = match message {
                WsMessage::Text(text) => text,
                WsMessage::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((u16::from(CloseCode::Status), String::new()));
                    return Err(Ended::Closed(code, reason));
                }
                _ => continue,
            };
            let frame = ServerFrame::parse(text.as_str())
                .map_err(|e| Ended::Broken(format!("unreadable frame {text}: {e:?}")))?;
            if let ServerFrame::Message(m) = &frame {
                shared.counters.add(&shared.counters.deliveries, 1);
                if let (Some(track), Ok(n)) =
                    (self.tracks.get_mut(&m.channel), m.data.decode::<Numbered>())
                {
                    let (lost, duplicated) = track.see(n.seq);
                    if lost > 0 {
                        eprintln!("soak: {} lost {lost} before seq {}", m.channel, n.seq);
                    }
                    shared.counters.add(&shared.counters.lost, lost);
                    shared.counters.add(&shared.counters.duplicated, duplicated);
                }
            }
            return Ok(frame);
        }
    }

    /// Reads frames until `until` accepts one.
    async fn wait_for(
        &mut self,
        shared: &Shared,
        until: impl Fn(&ServerFrame) -> bool,
    ) -> Step<ServerFrame> {
        loop {
            let frame = self.next(shared).await?;
            if let ServerFrame::Err(e) = &frame {
                return Err(Ended::Broken(format!("refused: {e:?}")));
            }
            if until(&frame) {
                return Ok(frame);
            }
        }
    }

    async fn subscribe(&mut self, shared: &Shared, channel: &str) -> Step<()> {
        self.send(Command::Subscribe(Subscribe {
            channel: channel.to_owned(),
            since: None,
        }))
        .await?;
        self.wait_for(
            shared,
            |f| matches!(f, ServerFrame::Subscribed(c) if c == channel),
        )
        .await?;
        // Everything whose request goes out from now on is for this subscriber.
        let floor = shared.feeds[channel].started.load(Ordering::SeqCst);
        self.tracks.insert(channel.to_owned(), Track::new(floor));
        Ok(())
    }

    async fn unsubscribe(&mut self, shared: &Shared, channel: &str) -> Step<()> {
        let done = shared.feeds[channel].done.load(Ordering::SeqCst);
        self.send(Command::Unsubscribe(hubbub_core::protocol::ChannelRef {
            channel: channel.to_owned(),
        }))
        .await?;
        self.wait_for(
            shared,
            |f| matches!(f, ServerFrame::Unsubscribed(c) if c == channel),
        )
        .await?;
        let track = self.tracks.remove(channel).expect("subscribed");
        self.tail_check(shared, channel, &track, done);
        Ok(())
    }

    /// A `pong` comes through the same queue as deliveries: once it is in, so is every
    /// publication the API acknowledged before the `ping` went out.
    async fn ping_and_check(&mut self, shared: &Shared) -> Step<()> {
        let done: Vec<(String, u64)> = self
            .tracks
            .keys()
            .map(|c| {
                (
                    c.clone(),
                    shared.feeds[c.as_str()].done.load(Ordering::SeqCst),
                )
            })
            .collect();
        self.send(Command::Ping(
            RawJson::from_string("1".to_owned()).expect("JSON"),
        ))
        .await?;
        self.wait_for(shared, |f| matches!(f, ServerFrame::Pong(_)))
            .await?;
        for (channel, done) in done {
            let track = &self.tracks[&channel];
            self.tail_check(shared, &channel, track, done);
        }
        Ok(())
    }

    fn tail_check(&self, shared: &Shared, channel: &str, track: &Track, done: u64) {
        let lost = track.close(done);
        if lost > 0 {
            eprintln!("soak: {channel}: {lost} acknowledged publications never arrived");
        }
        shared.counters.add(&shared.counters.lost, lost);
        shared.counters.add(&shared.counters.tail_checks, 1);
    }

    /// Reads (checking deliveries) for `how_long`.
    async fn read_for(&mut self, shared: &Shared, how_long: Duration) -> Step<()> {
        let until = tokio::time::Instant::now() + how_long;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(()),
                frame = self.next(shared) => {
                    if let ServerFrame::Err(e) = frame? {
                        return Err(Ended::Broken(format!("refused: {e:?}")));
                    }
                }
            }
        }
    }

    /// Ends the connection with a TCP reset: no close frame, no FIN.
    fn reset(self) {
        let linger = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        let _ = nix::sys::socket::setsockopt(
            self.ws.get_ref(),
            nix::sys::socket::sockopt::Linger,
            &linger,
        );
    }

    /// Ends the connection with a FIN and no close frame.
    fn drop_connection(self) {}

    /// The close handshake, then the end of the connection.
    async fn close(mut self) {
        let _ = tokio::time::timeout(STEP, async {
            let _ = self.ws.close(None).await;
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// Counts how a client's connection ended early; `expect_slow` for slow readers.
fn record_end(shared: &Shared, ended: Ended, who: &str, expect_slow: bool) {
    let c = &shared.counters;
    match ended {
        Ended::Closed(code, _) if expect_slow && code == close::POLICY => {
            c.add(&c.slow_closed, 1);
        }
        // The server gave up writing the close frame behind a full socket.
        Ended::Broken(_) if expect_slow => c.add(&c.slow_cut, 1),
        Ended::Closed(code, _) if code == close::GOING_AWAY && shared.stop.is_cancelled() => {}
        Ended::Closed(code, reason) => {
            eprintln!("soak: {who} closed by the server: {code} {reason}");
            c.add(&c.unexpected_closes, 1);
        }
        Ended::Stuck(step) => {
            eprintln!("soak: {who} stuck at {step}");
            c.add(&c.stuck, 1);
        }
        Ended::Broken(why) => {
            eprintln!("soak: {who}: {why}");
            c.add(&c.unexpected_closes, 1);
        }
    }
}

/// Connects, subscribes to 1–3 live channels, reads 1–5 s, leaves one of three ways; again.
async fn churner(shared: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed + 1);
    while !shared.stop.is_cancelled() {
        if let Err(ended) = churn_once(&shared, &mut rng).await {
            record_end(&shared, ended, "churner", false);
        }
    }
}

async fn churn_once(shared: &Arc<Shared>, rng: &mut Rng) -> Step<()> {
    let mut client = connect(shared, None).await?;
    let n = 1 + rng.below(3) as usize;
    let first = rng.below(LIVE.len() as u64) as usize;
    for k in 0..n {
        client
            .subscribe(shared, LIVE[(first + k) % LIVE.len()])
            .await?;
    }
    let stay = rng.millis(1000, 5000);
    client.read_for(shared, stay / 2).await?;
    // Leave one channel midway, the others stay.
    if n > 1 {
        client.unsubscribe(shared, LIVE[first]).await?;
    }
    client.read_for(shared, stay / 2).await?;
    match rng.below(3) {
        0 => {
            let channels: Vec<String> = client.tracks.keys().cloned().collect();
            for channel in channels {
                client.unsubscribe(shared, &channel).await?;
            }
            client.close().await;
            shared.counters.add(&shared.counters.left_by_unsubscribe, 1);
        }
        1 => {
            client.ping_and_check(shared).await?;
            client.reset();
            shared.counters.add(&shared.counters.left_by_reset, 1);
        }
        _ => {
            client.ping_and_check(shared).await?;
            client.drop_connection();
            shared.counters.add(&shared.counters.left_by_drop, 1);
        }
    }
    Ok(())
}

/// Where a recoverer left its channel.
struct Position {
    epoch: String,
    offset: u64,
}

/// Subscribes to a history channel, drops the connection, comes back with `since`.
async fn recoverer(shared: Arc<Shared>, channel: &'static str, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut position: Option<Position> = None;
    while !shared.stop.is_cancelled() {
        match recover_once(&shared, &mut rng, channel, position.take()).await {
            Ok(left_at) => position = Some(left_at),
            Err(ended) => {
                record_end(&shared, ended, "recoverer", false);
            }
        }
        if shared.stop.is_cancelled() {
            break;
        }
        // Away for a while: what is published meanwhile must come back on resubscribe.
        tokio::select! {
            _ = shared.stop.cancelled() => {}
            _ = tokio::time::sleep(rng.millis(200, 3000)) => {}
        }
    }
}

async fn recover_once(
    shared: &Arc<Shared>,
    rng: &mut Rng,
    channel: &'static str,
    from: Option<Position>,
) -> Step<Position> {
    let mut client = connect(shared, None).await?;
    let since = match &from {
        None => Since::Latest,
        Some(p) => Since::Position(StreamPosition {
            epoch: p.epoch.clone(),
            offset: p.offset,
        }),
    };
    client
        .send(Command::Subscribe(Subscribe {
            channel: channel.to_owned(),
            since: Some(since),
        }))
        .await?;
    // The recovered messages (and what came meanwhile) arrive before the answer; they are
    // checked by offset once the answer says where the stream stands.
    let mut early = Vec::new();
    let answer = loop {
        match client.next(shared).await? {
            ServerFrame::Message(m) => early.push(m.offset.unwrap_or(0)),
            ServerFrame::Resubscribed(r) => break r,
            ServerFrame::Err(e) => return Err(Ended::Broken(format!("refused: {e:?}"))),
            _ => {}
        }
    };
    let c = &shared.counters;
    let mut next = match &from {
        Some(p) => {
            c.add(&c.recoveries, 1);
            if answer.recovered && answer.epoch == p.epoch {
                c.add(&c.recovered, 1);
                p.offset + 1
            } else {
                // The protocol said it could not: not a loss, a restart from now.
                c.add(&c.not_recovered, 1);
                early.retain(|&o| o > answer.offset);
                answer.offset + 1
            }
        }
        None => answer.offset + 1,
    };
    let check = |offset: u64, next: &mut u64| {
        if offset > *next {
            eprintln!("soak: {channel} lost offsets {next}..{offset}");
            c.add(&c.lost, offset - *next);
        } else if offset < *next {
            c.add(&c.duplicated, 1);
        }
        *next = offset + 1;
    };
    for offset in early {
        check(offset, &mut next);
    }
    let until = tokio::time::Instant::now() + rng.millis(2000, 6000);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            frame = client.next(shared) => match frame? {
                ServerFrame::Message(m) => check(m.offset.unwrap_or(0), &mut next),
                ServerFrame::Err(e) => return Err(Ended::Broken(format!("refused: {e:?}"))),
                _ => {}
            }
        }
    }
    let left_at = Position {
        epoch: answer.epoch,
        offset: next - 1,
    };
    if rng.below(2) == 0 {
        client.reset();
    } else {
        client.drop_connection();
    }
    Ok(left_at)
}

/// Reads one frame every 250 ms from the bulk channel, with a small receive buffer, for
/// 8 s: by then the server's queue for it is full and it is closed as a slow consumer.
/// The close frame waits behind megabytes in the socket, so it then reads at full speed
/// until the connection ends (with the close frame, or without it where the server gave
/// up writing it), and comes back.
async fn slow_reader(shared: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    while !shared.stop.is_cancelled() {
        let outcome = async {
            let mut client = connect(&shared, Some(4096)).await?;
            client.subscribe(&shared, BULK).await?;
            // Deliveries to a slow reader are not checked: it is expected to lose them.
            client.tracks.clear();
            let slow_until = tokio::time::Instant::now() + Duration::from_secs(8);
            while tokio::time::Instant::now() < slow_until {
                tokio::select! {
                    _ = shared.stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                client.next(&shared).await?;
            }
            let drained = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    tokio::select! {
                        _ = shared.stop.cancelled() => return Ok(()),
                        frame = client.next(&shared) => { frame?; }
                    }
                }
            })
            .await;
            match drained {
                Ok(ended) => ended,
                Err(_) => {
                    shared.counters.add(&shared.counters.slow_not_closed, 1);
                    Ok(())
                }
            }
        }
        .await;
        if let Err(ended) = outcome {
            record_end(&shared, ended, "slow reader", true);
        }
        tokio::select! {
            _ = shared.stop.cancelled() => {}
            _ = tokio::time::sleep(rng.millis(500, 1500)) => {}
        }
    }
}

/// Writes the report and prints its summary; the run fails on any failure.
pub fn summary(report: &Report) -> String {
    let t = &report.totals;
    let r = &report.rss;
    let mut out = String::new();
    out += &format!(
        "soak: {:.0}s, {} connections, {} publishes, {} deliveries checked\n",
        report.settings.duration.as_secs_f64(),
        t["connections"],
        t["publishes"],
        t["deliveries"]
    );
    out += &format!(
        "  lost {} · duplicated {} · publish errors {} · unexpected closes {} · stuck {}\n",
        t["lost"], t["duplicated"], t["publish_errors"], t["unexpected_closes"], t["stuck"]
    );
    out += &format!(
        "  left by unsubscribe+close {} · by TCP reset {} · by drop without close {} · tail checks {}\n",
        t["left_by_unsubscribe_and_close"],
        t["left_by_tcp_reset"],
        t["left_by_drop_without_close"],
        t["tail_checks"]
    );
    out += &format!(
        "  recoveries {} (recovered {}, told not recovered {})\n",
        t["recoveries"], t["recovered"], t["not_recovered"]
    );
    out += &format!(
        "  slow readers: closed with 1008 {}, cut without a close frame {}, never closed {}\n",
        t["slow_consumers_closed"],
        t["slow_consumers_cut_without_close_frame"],
        t["slow_readers_not_closed"]
    );
    out += &format!(
        "  RSS: start {} KiB, after warm-up ({:.0}s) {} KiB, end {} KiB, max {} KiB, slope {:+.0} KiB/h: {}; {} KiB once the clients left\n",
        r.start_kb,
        r.warmup_s,
        r.after_warmup_kb,
        r.end_kb,
        r.max_kb,
        r.slope_kb_per_hour,
        if r.flat { "flat" } else { "GROWING" },
        r.after_clients_left_kb
    );
    out += &format!(
        "  descriptors: {} before the load, {} after it; panics in the log: {}\n",
        report.baseline_fds, report.end_fds, report.panics
    );
    if report.failures.is_empty() {
        out += "  soak passed\n";
    } else {
        for f in &report.failures {
            out += &format!("  FAILED: {f}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Track;

    #[test]
    fn a_track_tells_gaps_duplicates_and_missing_tails() {
        // Subscribed when 10 had gone out: 9 or 10 may or may not come, 11 on must.
        let mut t = Track::new(10);
        assert_eq!(t.see(9), (0, 0));
        assert_eq!(t.see(10), (0, 0));
        assert_eq!(t.see(11), (0, 0));
        assert_eq!(t.see(14), (2, 0));
        assert_eq!(t.see(14), (0, 1));
        assert_eq!(t.close(14), 0);
        assert_eq!(t.close(16), 2);
        // Nothing arrived: everything after the floor up to what was acknowledged is lost.
        let mut t = Track::new(5);
        assert_eq!(t.close(5), 0);
        assert_eq!(t.close(8), 3);
        assert_eq!(t.see(8), (2, 0));
    }
}
