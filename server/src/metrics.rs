//! What `GET /metrics` tells Prometheus: counters kept as the server works, and gauges read
//! off the node when it is scraped.
//!
//! The counters are process-wide (one hub per process) and cost one atomic add where they
//! are counted: a publication's deliveries are counted once, by how many subscribers took
//! it, never once per subscriber. Every label takes its values from a closed set (command
//! and error names of the protocol, close codes the server sends, the API's routes, hook
//! names), never from what a client or caller wrote, so the series stay bounded.

use crate::node::Node;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabel {
    pub command: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Request {
    pub endpoint: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Endpoint {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabel {
    pub hook: &'static str,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// One publication made on this node, by `source`: `api` or `client`.
pub fn published_by(source: &'static str) {
    METRICS
        .publications
        .get_or_create(&Kind { kind: source })
        .inc();
}

/// Seconds, from 0.5 ms to about 16 s.
fn timings() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    subscriptions: Gauge,
    channels: Gauge,
    pub connections_opened: Counter,
    /// Frames and bytes from clients.
    pub frames_in: Counter,
    pub bytes_in: Counter,
    /// Frames queued for clients, and their bytes, by kind: message, join, leave, direct,
    /// answer.
    pub frames_out: Family<Kind, Counter>,
    pub bytes_out: Family<Kind, Counter>,
    /// Publications made on this node, by where they came from: api or client.
    pub publications: Family<Kind, Counter>,
    pub commands: Family<CommandLabel, Counter>,
    pub errors: Family<ErrorLabel, Counter>,
    pub closes: Family<CodeLabel, Counter>,
    pub slow_consumers: Counter,
    pub http_requests: Family<Request, Counter>,
    pub http_seconds: Timings<Endpoint>,
    pub hook_seconds: Timings<HookLabel>,
    pub hook_failures: Family<HookLabel, Counter>,
    pub engine_errors: Counter,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hubbub");
        let m = Metrics {
            connections: Gauge::default(),
            subscriptions: Gauge::default(),
            channels: Gauge::default(),
            connections_opened: Counter::default(),
            frames_in: Counter::default(),
            bytes_in: Counter::default(),
            frames_out: Family::default(),
            bytes_out: Family::default(),
            publications: Family::default(),
            commands: Family::default(),
            errors: Family::default(),
            closes: Family::default(),
            slow_consumers: Counter::default(),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(timings),
            hook_seconds: Family::new_with_constructor(timings),
            hook_failures: Family::default(),
            engine_errors: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "connections",
            "Open client connections",
            m.connections.clone(),
        );
        r.register(
            "subscriptions",
            "Subscriptions of the open connections",
            m.subscriptions.clone(),
        );
        r.register(
            "channels",
            "Channels with a subscriber on this node",
            m.channels.clone(),
        );
        r.register(
            "connections_opened",
            "Client connections accepted",
            m.connections_opened.clone(),
        );
        r.register(
            "frames_in",
            "Frames received from clients",
            m.frames_in.clone(),
        );
        r.register(
            "bytes_in",
            "Bytes of the frames from clients",
            m.bytes_in.clone(),
        );
        r.register(
            "frames_out",
            "Frames queued for clients, by kind (message, join, leave, direct, answer)",
            m.frames_out.clone(),
        );
        r.register(
            "bytes_out",
            "Bytes of the frames queued for clients, by kind",
            m.bytes_out.clone(),
        );
        r.register(
            "publications",
            "Publications made on this node, by source (api, client)",
            m.publications.clone(),
        );
        r.register("commands", "Client commands, by name", m.commands.clone());
        r.register("errors", "Errors answered, by name", m.errors.clone());
        r.register(
            "closes",
            "Client connections closed by the server, by close code",
            m.closes.clone(),
        );
        r.register(
            "slow_consumer_closes",
            "Connections closed because they read too slowly (1008)",
            m.slow_consumers.clone(),
        );
        r.register(
            "http_requests",
            "HTTP API requests, by endpoint and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "HTTP API request durations, by endpoint",
            m.http_seconds.clone(),
        );
        r.register(
            "hook_duration_seconds",
            "Calls to the app's hooks, by hook (connect, subscribe, rpc, events)",
            m.hook_seconds.clone(),
        );
        r.register(
            "hook_failures",
            "Hook calls that failed (unreachable, timed out, refused by an error status)",
            m.hook_failures.clone(),
        );
        r.register(
            "engine_errors",
            "Operations the engine (Redis) could not carry out",
            m.engine_errors.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A frame of `kind` queued for `n` clients.
    pub fn sent(&self, kind: &'static str, n: usize, bytes: usize) {
        if n == 0 {
            return;
        }
        let kind = Kind { kind };
        self.frames_out.get_or_create(&kind).inc_by(n as u64);
        self.bytes_out
            .get_or_create(&kind)
            .inc_by((n * bytes) as u64);
    }

    pub fn error(&self, error: &'static str) {
        self.errors.get_or_create(&ErrorLabel { error }).inc();
    }

    pub fn hook(&self, hook: &'static str, took: Duration, failed: bool) {
        let label = HookLabel { hook };
        self.hook_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if failed {
            self.hook_failures.get_or_create(&label).inc();
        }
    }

    /// The text exposition format, the gauges read off `node` first.
    pub fn render(&self, node: &Node) -> String {
        self.connections.set(node.connection_count() as i64);
        self.channels.set(node.channel_count() as i64);
        self.subscriptions.set(node.subscription_count() as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}
