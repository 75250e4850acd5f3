//! Publishes to a running hub, the way a Rust web app or worker would.
//!
//! Start a hub (`cargo run --release -p hubbub-server`), open http://127.0.0.1:9772/ in a
//! browser (the hello page subscribes to the channel `hello`), then:
//!
//!     cargo run -p hubbub-publisher --example publish [-- CHANNEL [TEXT]]
//!
//! `HUBBUB_URL` and `HUBBUB_API_KEY` point it at another hub.

use hubbub_publisher::{Options, Publisher};
use serde_json::json;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let channel = args.next().unwrap_or_else(|| "hello".to_owned());
    let text = args.next().unwrap_or_else(|| "hello from Rust".to_owned());

    let hub = match Publisher::new(Options::new()) {
        Ok(hub) => hub,
        Err(e) => {
            eprintln!("bad settings: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data = json!({"hello": text});
    match hub.publish(&channel, "message", &data).await {
        Ok(answer) => println!("{} <- {data} ({answer:?})", hub.url()),
        Err(e) if e.is_unavailable() => {
            eprintln!("{e}\nIs a hub running? cargo run --release -p hubbub-server");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("the hub refused: {} ({})", e.code(), e);
            return ExitCode::FAILURE;
        }
    }
    match hub.channels().await {
        Ok(channels) => {
            for (name, stats) in channels.channels {
                println!("  {name}: {} subscriber(s)", stats.subscribers);
            }
        }
        Err(e) => eprintln!("{e}"),
    }
    ExitCode::SUCCESS
}
