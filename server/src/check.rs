//! `hubbub check-config FILE`: what a checked configuration means, in words, and which of
//! its keys were left to their defaults.

use crate::config::{Config, Engine, LogFormat};
use std::fmt::Write as _;
use std::path::Path;

/// Every top-level key of the config file, in the order `hubbub.example.toml` gives them.
const KEYS: [&str; 25] = [
    "listen",
    "token_secret",
    "token_require_exp",
    "api_keys",
    "allowed_ips",
    "allowed_origins",
    "max_message_size",
    "max_channels_per_client",
    "client_queue",
    "ping_interval",
    "client_rate",
    "max_connections",
    "max_connections_per_ip",
    "http_timeout",
    "engine",
    "redis_url",
    "redis_prefix",
    "metrics",
    "metrics_allowed_ips",
    "admin_password",
    "log_format",
    "anonymous",
    "users",
    "namespaces",
    "hooks",
];

/// The keys neither `file` (its text) nor a `HUBBUB_<KEY>` environment variable sets.
pub fn defaulted(file: &str) -> Vec<&'static str> {
    let table: toml::Table = file.parse().unwrap_or_default();
    KEYS.iter()
        .copied()
        .filter(|k| !table.contains_key(*k))
        .filter(|k| std::env::var_os(format!("HUBBUB_{}", k.to_uppercase())).is_none())
        .collect()
}

/// What `config`, read from `path`, means.
pub fn describe(path: &Path, config: &Config, defaulted: &[&str]) -> String {
    let mut out = String::new();
    let mut line = |what: &str, text: String| {
        let _ = writeln!(out, "  {what:<16} {text}");
    };
    line("listen", config.listen.to_string());
    line(
        "tokens",
        match &config.token_secret {
            Some(_) if config.token_require_exp => "accepted (HS256, exp required)".into(),
            Some(_) => "accepted (HS256, exp optional)".into(),
            None => "refused: no token_secret".into(),
        },
    );
    line(
        "users",
        match config.users.len() {
            0 => "none".into(),
            _ => config
                .users
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        },
    );
    line("anonymous read", list(&config.anonymous_read, "nothing"));
    line(
        "HTTP API",
        format!(
            "{}; callers: {}",
            match config.api_keys.len() {
                0 => "no key needed".to_owned(),
                n => format!("{n} key(s)"),
            },
            match &config.allowed_ips {
                Some(nets) => list(&nets.iter().map(|n| n.to_string()).collect::<Vec<_>>(), ""),
                None => "any address".into(),
            }
        ),
    );
    line("origins", list(&config.allowed_origins, "none"));
    for (i, ns) in config.namespaces.iter().enumerate() {
        let mut keeps = Vec::new();
        if ns.stream.history_size > 0 {
            keeps.push(format!(
                "history {} for {}",
                ns.stream.history_size,
                humantime::format_duration(ns.stream.history_ttl)
            ));
        }
        for (on, what) in [
            (ns.recover, "recovery"),
            (ns.presence, "presence"),
            (ns.join_leave, "join/leave"),
            (ns.subscribe_hook, "subscribe hook decides"),
        ] {
            if on {
                keeps.push(what.to_owned());
            }
        }
        let keeps = if keeps.is_empty() {
            "nothing kept".to_owned()
        } else {
            keeps.join(", ")
        };
        line(
            if i == 0 { "namespaces" } else { "" },
            format!("{}: {keeps}", ns.pattern),
        );
    }
    if config.namespaces.is_empty() {
        line("namespaces", "none: no channel keeps anything".into());
    }
    match &config.hooks {
        Some(h) => {
            let urls = [
                ("connect", &h.connect_url),
                ("subscribe", &h.subscribe_url),
                ("rpc", &h.rpc_url),
                ("events", &h.events_url),
            ];
            let set: Vec<String> = urls
                .iter()
                .filter_map(|(name, url)| url.as_ref().map(|u| format!("{name} {u}")))
                .collect();
            line(
                "hooks",
                format!(
                    "{}; timeout {}",
                    set.join(", "),
                    humantime::format_duration(h.timeout)
                ),
            );
        }
        None => line("hooks", "none".into()),
    }
    line(
        "engine",
        match &config.engine {
            Engine::Memory => "memory (this node alone)".into(),
            Engine::Redis { urls, prefix } => format!(
                "redis: {} (prefix {prefix})",
                urls.iter()
                    .map(|u| hubbub_core::engine::shown_redis_url(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    );
    line(
        "limits",
        format!(
            "max_message_size {}, max_channels_per_client {}, client_queue {}, client_rate {}, \
             max_connections {}, max_connections_per_ip {}",
            config.max_message_size,
            config.max_channels_per_client,
            config.client_queue,
            or_none(config.client_rate as usize),
            or_none(config.max_connections),
            or_none(config.max_connections_per_ip),
        ),
    );
    line(
        "timing",
        format!(
            "ping every {}, HTTP headers within {}",
            humantime::format_duration(config.ping_interval),
            humantime::format_duration(config.http_timeout)
        ),
    );
    line(
        "metrics",
        if config.metrics {
            let nets: Vec<String> = config
                .metrics_allowed_ips
                .iter()
                .map(|n| n.to_string())
                .collect();
            format!("GET /metrics for {}", nets.join(", "))
        } else {
            "off".into()
        },
    );
    line(
        "admin",
        if config.admin_password.is_some() {
            "dashboard at /admin (password set)"
        } else {
            "off"
        }
        .into(),
    );
    line(
        "logs",
        match config.log_format {
            LogFormat::Text => "text".into(),
            LogFormat::Json => "json".into(),
        },
    );
    let mut text = format!("{}: valid\n{out}", path.display());
    if !defaulted.is_empty() {
        let _ = writeln!(text, "  defaulted        {}", defaulted.join(", "));
    }
    text
}

fn list(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(", ")
    }
}

/// A limit where 0 means none.
fn or_none(n: usize) -> String {
    if n == 0 {
        "0 (none)".into()
    } else {
        n.to_string()
    }
}
