//! The table of publisher cases (`tests/cases.json`), run against real `hubbub` processes
//! and real sockets, through the async publisher and through the blocking one. The Python
//! and Node suites run the same table.

mod common;

use hubbub_publisher::{blocking, Error, Options, Publisher, Target, DEFAULT_EVENT};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Every server the table names, by name, as a base URL.
struct Servers {
    urls: HashMap<String, String>,
    _hubs: Vec<common::Hub>,
    _silent: std::net::TcpListener,
}

fn start_servers(table: &Value, runtime: &tokio::runtime::Runtime) -> Servers {
    let mut urls = HashMap::new();
    let mut hubs = Vec::new();
    let (silent, silent_url) = common::silent();
    for (name, server) in table["servers"].as_object().expect("servers") {
        let url = match server {
            Value::Array(args) => {
                let args: Vec<&str> = args.iter().map(|a| a.as_str().unwrap()).collect();
                let hub = common::Hub::start(&args);
                let url = hub.url.clone();
                hubs.push(hub);
                url
            }
            Value::String(kind) => match kind.as_str() {
                "unreachable" => common::unreachable_url(),
                "silent" => silent_url.clone(),
                "other" => common::other_server(runtime),
                other => panic!("unknown server kind {other}"),
            },
            other => panic!("bad server {other}"),
        };
        urls.insert(name.clone(), url);
    }
    Servers {
        urls,
        _hubs: hubs,
        _silent: silent,
    }
}

impl Servers {
    /// `text` with each `{name}` replaced by that server's URL.
    fn fill(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (name, url) in &self.urls {
            text = text.replace(&format!("{{{name}}}"), url);
        }
        text
    }
}

fn options(case: &Value, servers: &Servers) -> Options {
    let o = &case["options"];
    Options {
        url: o["url"].as_str().map(|u| servers.fill(u)),
        api_key: o["api_key"].as_str().map(str::to_owned),
        timeout: o["timeout_ms"].as_u64().map(Duration::from_millis),
        namespaces: o
            .get("namespaces")
            .map(|n| serde_json::from_value(n.clone()).expect("namespaces")),
        redis_prefix: o["redis_prefix"].as_str().map(str::to_owned),
    }
}

fn set_env(case: &Value, servers: &Servers) {
    for name in ["HUBBUB_URL", "HUBBUB_API_KEY"] {
        std::env::remove_var(name);
    }
    if let Some(env) = case["env"].as_object() {
        for (name, value) in env {
            match value.as_str() {
                Some(v) => std::env::set_var(name, servers.fill(v)),
                None => std::env::remove_var(name),
            }
        }
    }
}

/// A call's arguments, read from the table.
struct Call<'a>(&'a Value);

impl Call<'_> {
    fn method(&self) -> &str {
        self.0["method"].as_str().expect("method")
    }
    fn channel(&self) -> String {
        self.0["channel"].as_str().expect("channel").to_owned()
    }
    fn channels(&self) -> Vec<String> {
        serde_json::from_value(self.0["channels"].clone()).expect("channels")
    }
    fn event(&self) -> String {
        self.0["event"].as_str().unwrap_or(DEFAULT_EVENT).to_owned()
    }
    fn data(&self) -> Value {
        match self.0["data_bytes"].as_u64() {
            Some(n) => Value::String("x".repeat(n as usize)),
            None => self.0["data"].clone(),
        }
    }
    fn target(&self) -> Target {
        let field = |name: &str| self.0[name].as_str().map(str::to_owned);
        Target::from_fields(field("client"), field("user")).expect("a target")
    }
    fn number(&self, name: &str) -> Option<u64> {
        self.0[name].as_u64()
    }
}

fn answer<T: serde::Serialize>(result: Result<T, Error>) -> Result<Value, Error> {
    result.map(|a| serde_json::to_value(a).expect("answers are JSON"))
}

async fn call_async(p: &Publisher, call: &Call<'_>) -> Result<Value, Error> {
    match call.method() {
        "publish" => answer(p.publish(call.channel(), call.event(), &call.data()).await),
        "broadcast" => answer(
            p.broadcast(call.channels(), call.event(), &call.data())
                .await,
        ),
        "direct" => answer(p.direct(call.target(), call.event(), &call.data()).await),
        "disconnect" => answer(p.disconnect(call.target()).await),
        "channels" => answer(p.channels().await),
        "info" => answer(p.info().await),
        "history" => answer(
            p.history(&call.channel(), call.number("limit"), call.number("since"))
                .await,
        ),
        "presence" => answer(p.presence(&call.channel()).await),
        "presence_stats" => answer(p.presence_stats(&call.channel()).await),
        other => panic!("unknown method {other}"),
    }
}

fn call_blocking(p: &blocking::Publisher, call: &Call<'_>) -> Result<Value, Error> {
    match call.method() {
        "publish" => answer(p.publish(call.channel(), call.event(), &call.data())),
        "broadcast" => answer(p.broadcast(call.channels(), call.event(), &call.data())),
        "direct" => answer(p.direct(call.target(), call.event(), &call.data())),
        "disconnect" => answer(p.disconnect(call.target())),
        "channels" => answer(p.channels()),
        "info" => answer(p.info()),
        "history" => answer(p.history(&call.channel(), call.number("limit"), call.number("since"))),
        "presence" => answer(p.presence(&call.channel())),
        "presence_stats" => answer(p.presence_stats(&call.channel())),
        other => panic!("unknown method {other}"),
    }
}

/// What is wrong with an outcome, if anything.
fn check(expect: &Value, outcome: Result<Value, Error>) -> Option<String> {
    match outcome {
        Ok(got) => {
            if let Some(want) = expect.get("answer") {
                return (got != *want).then(|| format!("answered {got}, expected {want}"));
            }
            if let Some(keys) = expect.get("answer_keys") {
                let mut have: Vec<&String> = got.as_object()?.keys().collect();
                have.sort();
                let have = json!(have);
                return (have != *keys).then(|| format!("answered {got}, expected keys {keys}"));
            }
            Some(format!("answered {got}, expected {expect}"))
        }
        Err(err) => {
            let Some(name) = expect["error"].as_str() else {
                return Some(format!("failed with {err}, expected {expect}"));
            };
            if err.code() != name {
                return Some(format!("failed with {err}, expected {name}"));
            }
            if let Some(status) = expect["status"].as_u64() {
                if err.status() != Some(status as u16) {
                    return Some(format!("failed with {err}: not HTTP {status}"));
                }
            }
            if let Some(timeout) = expect["timeout"].as_bool() {
                if err.is_timeout() != timeout {
                    return Some(format!("failed with {err}: timeout should be {timeout}"));
                }
            }
            // Every failure says what was called.
            if err.code() == "UNAVAILABLE" && !err.to_string().contains(err.url()?) {
                return Some(format!("{err} does not name the URL"));
            }
            None
        }
    }
}

#[test]
fn every_case_of_the_table() {
    let table: Value =
        serde_json::from_str(include_str!("cases.json")).expect("cases.json is JSON");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let servers = start_servers(&table, &runtime);
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in table["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        if let Some(only) = case["only"].as_array() {
            if !only.contains(&json!("rust")) {
                continue;
            }
        }
        let through_redis = [&case["options"]["url"], &case["env"]["HUBBUB_URL"]]
            .iter()
            .any(|u| u.as_str().is_some_and(|u| u.starts_with("redis")));
        if through_redis && !cfg!(feature = "redis") {
            continue;
        }
        set_env(case, &servers);
        let expect = &case["expect"];
        let call = Call(&case["call"]);
        let made = (
            Publisher::new(options(case, &servers)),
            blocking::Publisher::new(options(case, &servers)),
        );
        let mut fail = |how: &str, why: String| failures.push(format!("{name} ({how}): {why}"));
        match made {
            (Ok(p), Ok(b)) => {
                if call.method() == "construct" {
                    let want = expect["url"].as_str().map(|u| servers.fill(u));
                    for (how, url) in [("async", p.url()), ("blocking", b.url())] {
                        if want.as_deref() != Some(url) {
                            fail(how, format!("url {url}, expected {expect}"));
                        }
                    }
                } else {
                    if let Some(why) = check(expect, runtime.block_on(call_async(&p, &call))) {
                        fail("async", why);
                    }
                    if let Some(why) = check(expect, call_blocking(&b, &call)) {
                        fail("blocking", why);
                    }
                }
            }
            (Err(e), Err(_)) => match expect["config_error"].as_str() {
                Some(says) if e.to_string().contains(says) => {}
                _ => fail("new", format!("refused: {e}, expected {expect}")),
            },
            (a, b) => fail("new", format!("async and blocking disagree: {a:?} / {b:?}")),
        }
        ran += 1;
    }
    for name in ["HUBBUB_URL", "HUBBUB_API_KEY"] {
        std::env::remove_var(name);
    }
    assert!(ran > 30, "only {ran} cases ran");
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
