//! The six scenarios, each a function from a running server (or cluster) to its metrics.
//!
//! The rate-driven ones (fanout, channels, publish, cluster) either offer one fixed load or,
//! with a [`RampSettings`], step the offered rate up on the same connections until a step
//! does not hold (something lost, a connection dropped, the offered rate not kept, or p99
//! over the bound): their figures are then those of the last step that held, the ceiling,
//! and every step is kept in the report. Where even the first step does not hold, the ramp
//! first steps down (a quarter of the rate, up to four times) to find one that does.

use crate::load::{
    histogram, open_all, publish_at_rate, publish_flat_out, Publisher, Sent, Subscribers,
};
use crate::system::{ProcessTree, Sources, Usage};
use crate::target::{Servers, Target};
use anyhow::{bail, Result};
use clap::ValueEnum;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// N subscribers on one channel; publications at a fixed rate
    Fanout,
    /// N clients, each on a personal channel and a group channel of 10
    Channels,
    /// N idle connections: the server's memory per connection
    Idle,
    /// New connections (with one subscription each) per second
    Connect,
    /// connect, each connection sending its subscription with the upgrade and waiting for
    /// no answer, confirmed in bulk (like a subscription in the URL)
    ConnectPipelined,
    /// Publications per second through the publish API, one subscriber
    Publish,
    /// Fan-out over two nodes sharing one Redis, the subscribers split between them
    Cluster,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::Fanout,
        Scenario::Channels,
        Scenario::Idle,
        Scenario::Connect,
        Scenario::ConnectPipelined,
        Scenario::Publish,
        Scenario::Cluster,
    ];

    /// Nodes the scenario runs: more than one means a cluster sharing one Redis.
    pub fn nodes(self) -> usize {
        match self {
            Scenario::Cluster => CLUSTER_NODES,
            _ => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Channels => "channels",
            Scenario::Idle => "idle",
            Scenario::Connect => "connect",
            Scenario::ConnectPipelined => "connect-pipelined",
            Scenario::Publish => "publish",
            Scenario::Cluster => "cluster",
        }
    }

    /// The figure a scenario is about, its unit, and whether more is better.
    pub fn headline(self) -> (&'static str, &'static str, bool) {
        match self {
            Scenario::Fanout | Scenario::Channels | Scenario::Cluster => {
                ("deliveries/s", "deliveries/s", true)
            }
            Scenario::Idle => ("KiB/connection", "KiB per idle connection", false),
            Scenario::Connect | Scenario::ConnectPipelined => {
                ("connections/s", "connections/s", true)
            }
            Scenario::Publish => ("publishes/s", "publishes/s", true),
        }
    }
}

/// The load of every scenario (the command line's numbers).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    pub payload: usize,
    pub duration: Duration,
    pub fanout_subscribers: usize,
    pub fanout_rate: f64,
    pub channels_clients: usize,
    pub channels_rate: f64,
    pub idle_connections: usize,
    pub connect_connections: usize,
    pub connect_concurrency: usize,
    pub publish_workers: usize,
    pub open_concurrency: usize,
    pub in_flight: usize,
    /// cluster: subscribers on the channel, split evenly over the nodes (absent from reports
    /// made before the scenario existed).
    #[serde(default)]
    pub cluster_subscribers: usize,
    /// cluster: publications per second, alternating between the nodes.
    #[serde(default)]
    pub cluster_rate: f64,
    /// publish: the rate a ramp is scaled from (publications per second); fixed runs
    /// publish flat out instead.
    #[serde(default)]
    pub publish_rate: f64,
    /// Ramps instead of fixed loads (absent from reports made before ramps existed).
    #[serde(default)]
    pub ramp: Option<RampSettings>,
}

/// How the rate-driven scenarios ramp their offered load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RampSettings {
    /// The first step offers this fraction of the scenario's rate.
    pub from: f64,
    /// Each step offers this many times the one before.
    pub factor: f64,
    /// Steps at most.
    pub max_steps: usize,
    /// How long each step publishes.
    pub step: Duration,
    /// A step whose p99 is above this did not hold.
    pub p99_bound_ms: f64,
    /// CPUs the load generator has: near 100% of them, it is the limit, not the server.
    pub client_cpus: usize,
}

/// One step of a ramp.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RampStep {
    /// Publications per second offered.
    pub offered_per_s: f64,
    /// Why the step did not hold; none: it held.
    pub failed: Option<String>,
    pub metrics: Metrics,
}

/// Every step of a ramp, and where it stopped.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ramp {
    pub p99_bound_ms: f64,
    pub steps: Vec<RampStep>,
    /// The last step that held, whose figures are the run's; none: not even the first did.
    pub ceiling_step: Option<usize>,
    /// The load generator used at least 90% of its CPUs in the step that did not hold (or
    /// the last step, where all held): the ceiling may be the generator's, not the
    /// server's.
    pub generator_bound: bool,
}

/// The nodes of the cluster scenario.
pub const CLUSTER_NODES: usize = 2;

/// Percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// What one scenario run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Metrics {
    pub connections: usize,
    pub publications: u64,
    pub expected: u64,
    pub delivered: u64,
    /// Deliveries that never arrived (expected minus delivered).
    pub lost: u64,
    /// Connections the server closed during the run (slow consumers, errors).
    pub dropped: u64,
    pub publish_errors: u64,
    pub seconds: f64,
    pub deliveries_per_s: f64,
    pub publishes_per_s: f64,
    /// Publish-to-receive latency.
    pub latency: Latency,
    pub connects_per_s: Option<f64>,
    /// Connect-and-subscribe time of each new connection (connect scenario).
    pub connect_latency: Option<Latency>,
    pub rss_per_connection_kib: Option<f64>,
    /// The server's CPU use during the measured window, in % of one core.
    pub server_cpu_pct: f64,
    /// The server's resident memory at the end of the measured window.
    pub server_rss_mib: f64,
    /// The load generator's CPU use over the same window, in % of one core: near 100 × its
    /// CPU count, the load generator (not the server) is what limits the figures.
    #[serde(default)]
    pub client_cpu_pct: f64,
    /// How busy the server's CPU set was over the window (any process, interrupts
    /// included), in % of the set.
    #[serde(default)]
    pub server_set_busy_pct: f64,
    /// The ramp these figures are the ceiling of (ramped runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Box<Ramp>>,
}

impl Metrics {
    /// The scenario's headline figure.
    pub fn headline(&self, scenario: Scenario) -> f64 {
        if self.ramp.as_ref().is_some_and(|r| r.ceiling_step.is_none()) {
            return 0.0;
        }
        match scenario {
            Scenario::Fanout | Scenario::Channels | Scenario::Cluster => self.deliveries_per_s,
            Scenario::Idle => self.rss_per_connection_kib.unwrap_or(0.0),
            Scenario::Connect | Scenario::ConnectPipelined => self.connects_per_s.unwrap_or(0.0),
            Scenario::Publish => self.publishes_per_s,
        }
    }
}

/// Everything a scenario needs.
pub struct Run<'a> {
    pub target: Arc<dyn Target>,
    /// One server, or the nodes of a cluster: connections and publications take turns.
    pub servers: &'a Servers,
    pub settings: &'a Settings,
    pub sources: &'a mut Sources,
}

impl Run<'_> {
    /// Opens one connection per entry of `plan` (spread evenly over the nodes), waits until
    /// the server holds every subscription, and starts reading them.
    async fn subscribers(
        &mut self,
        plan: Vec<Vec<String>>,
        concurrency: usize,
        timings: Option<&Mutex<Histogram<u64>>>,
    ) -> Result<(Subscribers, Publisher)> {
        self.open(plan, concurrency, timings, false).await
    }

    /// [`Run::subscribers`], `pipelined` or not (see [`open_all`]): pipelined connections
    /// are handed over once their subscription is sent, and their answers are awaited all
    /// together at the end.
    async fn open(
        &mut self,
        plan: Vec<Vec<String>>,
        concurrency: usize,
        timings: Option<&Mutex<Histogram<u64>>>,
        pipelined: bool,
    ) -> Result<(Subscribers, Publisher)> {
        let subscriptions = self.target.expected_subscriptions(&plan);
        let acks: u64 = plan.iter().map(|c| self.target.acks(c) as u64).sum();
        let sources = self.sources.take(plan.len());
        let addrs = self.servers.addrs();
        let target = self.target.clone();
        let sockets = open_all(
            target.clone(),
            &addrs,
            sources,
            plan,
            concurrency,
            timings,
            pipelined,
        )
        .await?;
        let subscribers = Subscribers::start(target.clone(), sockets);
        if pipelined {
            let deadline = Instant::now() + Duration::from_secs(60);
            while subscribers.stats.subscribed.load(Ordering::Relaxed) < acks {
                if Instant::now() > deadline {
                    bail!("subscriptions unanswered after 60 s");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let publisher = Publisher::new(target, &addrs)?;
        publisher
            .await_subscriptions(subscriptions, Duration::from_secs(60))
            .await?;
        Ok((subscribers, publisher))
    }
}

/// Runs `scenario` against the running server.
pub async fn run(scenario: Scenario, mut run: Run<'_>) -> Result<Metrics> {
    let tree = run.servers.tree();
    let s = run.settings.clone();
    match scenario {
        Scenario::Fanout => {
            let (n, rate) = (s.fanout_subscribers, s.fanout_rate);
            fanout(&mut run, &tree, "fanout", n, rate).await
        }
        Scenario::Cluster => {
            let nodes = run.servers.nodes.len();
            if nodes != CLUSTER_NODES {
                bail!("the cluster scenario runs {CLUSTER_NODES} nodes, not {nodes}");
            }
            let (n, rate) = (s.cluster_subscribers, s.cluster_rate);
            fanout(&mut run, &tree, "cluster", n, rate).await
        }
        Scenario::Channels => channels(&mut run, &tree).await,
        Scenario::Idle => idle(&mut run, &tree).await,
        Scenario::Connect => connect(&mut run, &tree, false).await,
        Scenario::ConnectPipelined => connect(&mut run, &tree, true).await,
        Scenario::Publish => publish(&mut run, &tree).await,
    }
}

/// How long the subscribers may stay silent before what has not arrived counts as lost.
const QUIET: Duration = Duration::from_secs(3);

/// What the subscribers and the publisher had counted before a window began: the window's
/// figures are what it added.
#[derive(Clone, Copy, Default)]
struct Counted {
    received: u64,
    dropped: u64,
    errors: u64,
}

impl Counted {
    /// Reads the counts now and starts a fresh latency histogram.
    fn restart(subscribers: &Subscribers, publisher: &Publisher) -> Counted {
        subscribers.stats.latency.lock().reset();
        Counted {
            received: subscribers.stats.received(),
            dropped: subscribers.stats.dropped.load(Ordering::Relaxed),
            errors: publisher.errors.load(Ordering::Relaxed),
        }
    }
}

/// Metrics from what was sent, what arrived since `since`, and the server's usage over the
/// window.
#[allow(clippy::too_many_arguments)]
fn metrics(
    subscribers: &Subscribers,
    publisher: &Publisher,
    since: Counted,
    connections: usize,
    sent: &Sent,
    window: Duration,
    before: Usage,
    after: Usage,
) -> Metrics {
    let stats = &subscribers.stats;
    let delivered = stats.received() - since.received;
    let seconds = window.as_secs_f64();
    Metrics {
        connections,
        publications: sent.publications,
        expected: sent.expected,
        delivered,
        lost: sent.expected.saturating_sub(delivered),
        dropped: stats.dropped.load(Ordering::Relaxed) - since.dropped,
        publish_errors: publisher.errors.load(Ordering::Relaxed) - since.errors,
        seconds,
        deliveries_per_s: delivered as f64 / seconds,
        publishes_per_s: sent.publications as f64 / sent.seconds.max(1e-9),
        latency: Latency::of(&stats.latency.lock()),
        server_cpu_pct: 100.0 * (after.cpu_s - before.cpu_s) / seconds,
        server_rss_mib: after.rss_bytes as f64 / (1024.0 * 1024.0),
        client_cpu_pct: 100.0 * (after.client_cpu_s - before.client_cpu_s) / seconds,
        server_set_busy_pct: busy(before, after),
        ..Metrics::default()
    }
}

/// Offers `load(rate, duration)` once, at `rate` publications per second for the run's
/// duration; or, with a ramp, in steps from `rate * from` up, until a step does not hold.
/// The figures of a ramp are those of its last step that held.
#[allow(clippy::too_many_arguments)]
async fn offer<F, Fut>(
    settings: &Settings,
    tree: &ProcessTree,
    subscribers: &Subscribers,
    publisher: &Publisher,
    connections: usize,
    rate: f64,
    mut load: F,
) -> Result<Metrics>
where
    F: FnMut(f64, Duration) -> Fut,
    Fut: std::future::Future<Output = Sent>,
{
    let Some(ramp) = settings.ramp.clone() else {
        let load = load(rate, settings.duration);
        return window(tree, subscribers, publisher, connections, load).await;
    };
    let mut steps: Vec<RampStep> = Vec::new();
    let mut offered = rate * ramp.from;
    let mut descents = 0;
    while steps.len() < ramp.max_steps.max(1) {
        let load = load(offered, ramp.step);
        let m = window(tree, subscribers, publisher, connections, load).await?;
        let failed = held(&m, offered, ramp.p99_bound_ms).err();
        let stop = failed.is_some();
        let none_held = steps.iter().all(|s| s.failed.is_some());
        steps.push(RampStep {
            offered_per_s: offered,
            failed,
            metrics: m,
        });
        if stop && none_held && descents < RAMP_DESCENTS {
            // A server far slower than the starting rate: look lower before climbing.
            descents += 1;
            offered /= RAMP_DESCENT;
        } else if stop {
            break;
        } else {
            offered *= ramp.factor;
        }
    }
    let ceiling_step = steps.iter().rposition(|s| s.failed.is_none());
    let last = steps.last().expect("one step at least");
    let generator_bound = last.metrics.client_cpu_pct >= 90.0 * ramp.client_cpus.max(1) as f64;
    let mut m = steps[ceiling_step.unwrap_or(0)].metrics.clone();
    m.ramp = Some(Box::new(Ramp {
        p99_bound_ms: ramp.p99_bound_ms,
        steps,
        ceiling_step,
        generator_bound,
    }));
    Ok(m)
}

/// Where no step has held yet, the next is this many times lower...
const RAMP_DESCENT: f64 = 4.0;
/// ...this many times at most.
const RAMP_DESCENTS: usize = 4;

/// One measured window: `load` publishes, the subscribers drain what it should bring.
async fn window(
    tree: &ProcessTree,
    subscribers: &Subscribers,
    publisher: &Publisher,
    connections: usize,
    load: impl std::future::Future<Output = Sent>,
) -> Result<Metrics> {
    let since = Counted::restart(subscribers, publisher);
    let before = tree.usage()?;
    let started = Instant::now();
    let sent = load.await;
    subscribers
        .drain(since.received + sent.expected, QUIET)
        .await;
    let window = started.elapsed();
    let after = tree.usage()?;
    Ok(metrics(
        subscribers,
        publisher,
        since,
        connections,
        &sent,
        window,
        before,
        after,
    ))
}

/// Whether a step at `offered` publications per second held; if not, why.
fn held(m: &Metrics, offered: f64, p99_bound_ms: f64) -> Result<(), String> {
    if m.lost > 0 || m.dropped > 0 || m.publish_errors > 0 {
        return Err(format!(
            "{} lost, {} connections dropped, {} publish errors",
            m.lost, m.dropped, m.publish_errors
        ));
    }
    // The publisher falls behind the offered rate when the server answers too slowly.
    if m.publishes_per_s < 0.95 * offered {
        return Err(format!(
            "{:.0} pub/s published of {offered:.0} offered",
            m.publishes_per_s
        ));
    }
    if m.latency.p99_ms > p99_bound_ms {
        return Err(format!(
            "p99 {:.1} ms over the bound of {p99_bound_ms} ms",
            m.latency.p99_ms
        ));
    }
    Ok(())
}

/// How busy the server's CPU set was between two readings, in %.
fn busy(before: Usage, after: Usage) -> f64 {
    let total = after.set_total_s - before.set_total_s;
    if total <= 0.0 {
        return 0.0;
    }
    100.0 * (after.set_busy_s - before.set_busy_s) / total
}

/// `n` subscribers on `channel`, publications at `rate`: on one server (fanout) or with the
/// subscribers and publications split over the nodes of a cluster (cluster).
async fn fanout(
    run: &mut Run<'_>,
    tree: &ProcessTree,
    channel: &str,
    n: usize,
    rate: f64,
) -> Result<Metrics> {
    let s = run.settings.clone();
    let channel = channel.to_owned();
    let (subscribers, publisher) = run
        .subscribers(vec![vec![channel.clone()]; n], s.open_concurrency, None)
        .await?;
    let m = offer(
        &s,
        tree,
        &subscribers,
        &publisher,
        n,
        rate,
        |rate, duration| {
            let channel = channel.clone();
            publish_at_rate(
                &publisher,
                rate,
                duration,
                s.payload,
                s.in_flight,
                move |_| (channel.clone(), n as u64),
            )
        },
    )
    .await;
    subscribers.stop().await;
    m
}

/// The channels of client `i` in the channels scenario: its own, and its group of ten.
fn personal_and_group(i: usize) -> Vec<String> {
    vec![format!("u{i}"), format!("g{}", i / 10)]
}

async fn channels(run: &mut Run<'_>, tree: &ProcessTree) -> Result<Metrics> {
    let s = run.settings.clone();
    let n = s.channels_clients;
    let plan: Vec<_> = (0..n).map(personal_and_group).collect();
    // Publications go round every channel, the group channels spread among the personal ones.
    let mut targets: Vec<(String, u64)> = Vec::new();
    for i in 0..n {
        targets.push((format!("u{i}"), 1));
        if i % 10 == 9 || i == n - 1 {
            let size = (i % 10 + 1) as u64;
            targets.push((format!("g{}", i / 10), size));
        }
    }
    let (subscribers, publisher) = run.subscribers(plan, s.open_concurrency, None).await?;
    let targets = &targets;
    let m = offer(
        &s,
        tree,
        &subscribers,
        &publisher,
        n,
        s.channels_rate,
        |rate, duration| {
            publish_at_rate(&publisher, rate, duration, s.payload, s.in_flight, |seq| {
                targets[seq as usize % targets.len()].clone()
            })
        },
    )
    .await;
    subscribers.stop().await;
    m
}

async fn idle(run: &mut Run<'_>, tree: &ProcessTree) -> Result<Metrics> {
    let s = run.settings.clone();
    let n = s.idle_connections;
    let baseline = tree.usage()?;
    let (subscribers, publisher) = run
        .subscribers(vec![vec!["idle".to_owned()]; n], s.open_concurrency, None)
        .await?;
    // The connections sit idle for a moment; what the server spends on them meanwhile
    // (timers, pings) is the CPU figure.
    let before = tree.usage()?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = tree.usage()?;
    // One publication to all of them shows every connection is alive.
    let sent = publish_at_rate(
        &publisher,
        1.0,
        Duration::from_secs(1),
        s.payload,
        1,
        |_| ("idle".to_owned(), n as u64),
    )
    .await;
    subscribers.drain(sent.expected, QUIET).await;
    let window = started.elapsed();
    let since = Counted::default();
    let mut m = metrics(
        &subscribers,
        &publisher,
        since,
        n,
        &sent,
        window,
        before,
        held,
    );
    m.server_cpu_pct = 100.0 * (held.cpu_s - before.cpu_s) / 2.0;
    m.client_cpu_pct = 100.0 * (held.client_cpu_s - before.client_cpu_s) / 2.0;
    m.server_set_busy_pct = busy(before, held);
    let grown = held.rss_bytes.saturating_sub(baseline.rss_bytes) as f64;
    m.rss_per_connection_kib = Some(grown / 1024.0 / n as f64);
    subscribers.stop().await;
    Ok(m)
}

/// New connections with one subscription each: `pipelined`, each sends its subscription
/// right after the upgrade and frees its place for the next at once, and the answers (or
/// the server's subscription count, for servers that send none) are awaited all together,
/// which is the work of a subscription in the URL (nchan's) for every server; otherwise
/// each waits for the answers its protocol gives before the next opens. Connection times
/// are the upgrade and, not pipelined, the answers.
async fn connect(run: &mut Run<'_>, tree: &ProcessTree, pipelined: bool) -> Result<Metrics> {
    let s = run.settings.clone();
    let n = s.connect_connections;
    let timings = Mutex::new(histogram());
    let before = tree.usage()?;
    let started = Instant::now();
    let (subscribers, publisher) = run
        .open(
            vec![vec!["connect".to_owned()]; n],
            s.connect_concurrency,
            Some(&timings),
            pipelined,
        )
        .await?;
    let opened = started.elapsed();
    let after = tree.usage()?;
    let sent = publish_at_rate(
        &publisher,
        1.0,
        Duration::from_secs(1),
        s.payload,
        1,
        |_| ("connect".to_owned(), n as u64),
    )
    .await;
    subscribers.drain(sent.expected, QUIET).await;
    let since = Counted::default();
    let mut m = metrics(
        &subscribers,
        &publisher,
        since,
        n,
        &sent,
        opened,
        before,
        after,
    );
    m.deliveries_per_s = 0.0;
    m.connects_per_s = Some(n as f64 / opened.as_secs_f64());
    m.connect_latency = Some(Latency::of(&timings.lock()));
    subscribers.stop().await;
    Ok(m)
}

async fn publish(run: &mut Run<'_>, tree: &ProcessTree) -> Result<Metrics> {
    let s = run.settings.clone();
    let channel = "publish";
    let (subscribers, publisher) = run
        .subscribers(vec![vec![channel.to_owned()]], 1, None)
        .await?;
    // A fixed run publishes flat out; a ramp offers each step's rate.
    let ramped = s.ramp.is_some();
    let (publisher, s) = (&publisher, &s);
    let m = offer(
        s,
        tree,
        &subscribers,
        publisher,
        1,
        s.publish_rate,
        |rate, duration| async move {
            if ramped {
                publish_at_rate(publisher, rate, duration, s.payload, s.in_flight, |_| {
                    (channel.to_owned(), 1)
                })
                .await
            } else {
                let workers = s.publish_workers;
                publish_flat_out(publisher, channel, 1, duration, s.payload, workers).await
            }
        },
    )
    .await;
    subscribers.stop().await;
    let m = m?;
    if m.publications == 0 {
        bail!("no publication went through");
    }
    Ok(m)
}
