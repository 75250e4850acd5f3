//! The `hubbub` process as a whole: slow consumers, shutdown, configuration, the CLI.

mod common;

use common::{Client, Server, WAIT};
use hubbub_core::auth::verify;
use serde_json::json;
use std::process::Command;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn hubbub() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubbub"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HUBBUB_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A subscriber that stops reading is closed once its queue is full; a well-behaved one
/// gets every publication; the publisher is never refused; the server's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_are_closed_and_nobody_else_loses_anything() {
    const PUBLICATIONS: usize = 20_000;
    let server = Server::dev();

    // The raw client subscribes, then never reads again.
    let mut slow = Client::connect(&server).await;
    slow.subscribe("firehose").await;

    let mut good = Client::connect(&server).await;
    good.subscribe("firehose").await;
    let reader = tokio::spawn(async move {
        for seq in 0..PUBLICATIONS {
            let m = good.recv().await;
            assert_eq!(m["message"]["data"]["seq"], seq, "in order, none lost");
        }
        good
    });

    let rss_before = server.rss_kib();
    let http = reqwest::Client::new();
    let padding = "x".repeat(4000);
    for seq in 0..PUBLICATIONS {
        let body = json!({"channel": "firehose", "data": {"seq": seq, "pad": padding}});
        let r = http
            .post(server.url("/api/publish"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let mut good = tokio::time::timeout(WAIT * 3, reader)
        .await
        .expect("the good subscriber gets everything")
        .unwrap();
    let rss_after = server.rss_kib();

    // The slow client was closed: only the good one is left.
    server.wait_for_connections(1).await;
    // 20,000 publications of 4 KB are 80 MB; a server that buffered them for the slow
    // client would grow by that much.
    let growth_mib = rss_after.saturating_sub(rss_before) / 1024;
    assert!(
        growth_mib < 32,
        "RSS grew by {growth_mib} MiB ({rss_before} -> {rss_after} KiB)"
    );
    // Whatever reached the slow client's socket before the close, the stream ends, and
    // where the close frame got through it says why.
    let end = slow.closed().await;
    eprintln!(
        "slow consumer: RSS {rss_before} -> {rss_after} KiB ({growth_mib} MiB), ended with {end:?}"
    );
    assert!(
        matches!(end, None | Some(CloseCode::Policy)),
        "slow consumer ended with {end:?}"
    );
    good.assert_quiet().await;
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_0() {
    let mut server = Server::dev();
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.subscribe("x").await;
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(a.closed().await, Some(CloseCode::Away));
    assert_eq!(b.closed().await, Some(CloseCode::Away));
}

#[test]
fn invalid_configs_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "max_channels_per_client = \"many\"",
            "max_channels_per_client",
        ),
        ("colour = \"blue\"", "colour"),
        ("listen = \"here\"", "listen"),
        ("allowed_ips = [\"300.0.0.1/8\"]", "allowed_ips"),
        ("[anonymous]\nwrite = [\"*\"]", "write"),
        ("[[users]]\nname = \"a\"", "secret"),
        ("not toml at all", "hubbub.toml"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("hubbub.toml");
        std::fs::write(&path, text).unwrap();
        let out = hubbub().arg("--config").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{text}: {err}");
    }
    let out = hubbub()
        .args(["--listen", "127.0.0.1:0"])
        .env("HUBBUB_PING_INTERVAL", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ping_interval"));
    let out = hubbub().args(["--client-queue", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("client_queue"));
    let out = hubbub()
        .args(["--config", "/nonexistent/hubbub.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/hubbub.toml"));
}

#[test]
fn help_documents_every_option() {
    let out = hubbub().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--config",
        "--token-secret",
        "--listen",
        "--api-keys",
        "--allowed-ips",
        "--allowed-origins",
        "--max-message-size",
        "--max-channels-per-client",
        "--client-queue",
        "--ping-interval",
        "--client-rate",
        "--token-require-exp",
        "--anonymous-read",
        "--users",
        "--metrics",
        "--metrics-allowed-ips",
        "--log-format",
        "--admin-password",
        "HUBBUB_LISTEN",
        "token",
        "check-config",
    ] {
        assert!(help.contains(option), "--help lacks {option}");
    }
    let out = hubbub().args(["token", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for option in ["--user", "--read", "--write", "--ttl", "--info", "--config"] {
        assert!(help.contains(option), "token --help lacks {option}");
    }
}

#[tokio::test]
async fn the_token_command_mints_tokens_the_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hubbub.toml");
    std::fs::write(&path, "token_secret = \"from-the-file\"\n").unwrap();
    let out = hubbub()
        .args([
            "token", "--user", "42", "--read", "room:*", "--read", "lobby",
        ])
        .args([
            "--write",
            "room:1",
            "--ttl",
            "1h",
            "--info",
            r#"{"name":"ann"}"#,
        ])
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let claims = verify(b"from-the-file", &token, true).unwrap();
    assert_eq!(claims.sub, "42");
    assert_eq!(claims.read, ["room:*", "lobby"]);
    assert_eq!(claims.write, ["room:1"]);
    assert_eq!(claims.info.unwrap()["name"], "ann");
    let ttl = claims.exp.unwrap() - claims.iat.unwrap();
    assert_eq!(ttl, 3600);

    let server = Server::with_config("token_secret = \"from-the-file\"", &[]);
    let mut c = Client::connect(&server).await;
    c.expect(
        json!({"authenticate": {"token": token}}),
        json!({"authenticated": "42"}),
    )
    .await;
    c.subscribe("room:5").await;

    let out = hubbub().args(["token", "--user", "42"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token_secret"));
}

#[tokio::test]
async fn environment_variables_override_the_file_and_flags_override_both() {
    let server = Server::start_with_env(
        Some("max_channels_per_client = 5\n[anonymous]\nread = [\"*\"]"),
        &["--client-queue", "8"],
        &[("HUBBUB_MAX_CHANNELS_PER_CLIENT", "1")],
    );
    let mut c = Client::connect(&server).await;
    c.subscribe("a").await;
    let r = c.ask(json!({"subscribe": {"channel": "b"}})).await;
    assert_eq!(r["err"], "LIMIT_EXCEEDED");

    let flagged = Server::start_with_env(
        None,
        &["--max-channels-per-client", "2"],
        &[("HUBBUB_MAX_CHANNELS_PER_CLIENT", "1")],
    );
    let mut c = Client::connect(&flagged).await;
    c.subscribe("a").await;
    c.subscribe("b").await;
}

#[tokio::test]
async fn a_config_file_makes_nothing_implicit() {
    let server = Server::with_config("", &[]);
    let mut c = Client::connect(&server).await;
    let r = c.ask(json!({"subscribe": {"channel": "hello"}})).await;
    assert_eq!(r["err"], "ACCESS_DENIED");
}

/// The commented example config in the repository is a valid config.
#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../hubbub.example.toml");
    let out = hubbub()
        .args(["token", "--user", "1", "--config", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `log_format = "json"`: every line one JSON object, with the level, the message and the
/// event's fields at the top level (a connection's id, and why it ended).
#[tokio::test]
async fn json_logs_are_one_object_a_line_with_the_fields_at_the_top() {
    let server =
        Server::start_with_env(None, &["--log-format", "json"], &[("HUBBUB_LOG", "debug")]);
    let mut c = Client::connect(&server).await;
    let (status, _) = server
        .post("/api/disconnect", json!({"client": c.id}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(c.closed().await, Some(CloseCode::Library(4000)));
    let line = server
        .wait_for_log("\"disconnected\"")
        .expect("the disconnect is logged at debug");
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON object");
    assert_eq!(event["level"], "DEBUG", "{line}");
    assert_eq!(event["message"], "disconnected", "{line}");
    assert_eq!(event["client"], c.id.as_str(), "{line}");
    assert_eq!(event["code"], 4000, "{line}");
    assert_eq!(event["reason"], "disconnected by the application", "{line}");
}

/// `check-config` says what a config means without starting, and which keys it left to
/// their defaults; a bad one is refused as startup would refuse it.
#[test]
fn check_config_explains_a_config_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:7000\"\nengine = \"redis\"\nredis_url = \"redis://:pw@10.0.0.5:6379/0\"\n\
         [[namespaces]]\npattern = \"room:*\"\nhistory_size = 10\npresence = true\n",
    )
    .unwrap();
    let out = hubbub().args(["check-config"]).arg(&good).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "good.toml: valid",
        "127.0.0.1:7000",
        "refused: no token_secret",
        "room:*: history 10",
        "presence",
        "redis: redis://:***@10.0.0.5:6379/0 (prefix hubbub)",
        "defaulted",
        "token_secret",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
    assert!(!said.contains("pw@"), "the password is shown:\n{said}");
    let defaulted = said.lines().find(|l| l.contains("defaulted")).unwrap();
    assert!(!defaulted.contains("listen"), "{defaulted}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "client_queue = 0\n").unwrap();
    let out = hubbub().args(["check-config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("`client_queue`"), "{said}");
}
