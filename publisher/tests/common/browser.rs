//! A WebSocket client of a hub, as a browser is, for the tests that check what subscribers
//! receive.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any one expected frame may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A WebSocket client of the hub, one JSON object per frame.
pub struct Browser {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
}

impl Browser {
    pub async fn connect(hub: &super::Hub) -> Browser {
        let url = format!("ws://127.0.0.1:{}/ws", hub.port);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut browser = Browser {
            ws,
            id: String::new(),
        };
        let hello = browser.recv().await;
        browser.id = hello["connected"]["client"].as_str().unwrap().to_owned();
        browser
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// The next frame, or `Value::Null` once the hub has closed the connection.
    pub async fn recv(&mut self) -> Value {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
            {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(Message::Close(frame))) => {
                    return json!({"closed": frame.map(|f| u16::from(f.code))})
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Value::Null,
            }
        }
    }

    pub async fn command(&mut self, frame: Value) -> Value {
        self.send(frame).await;
        self.recv().await
    }

    pub async fn subscribe(&mut self, channel: &str) {
        let answer = self
            .command(json!({"subscribe": {"channel": channel}}))
            .await;
        assert_eq!(answer, json!({"subscribed": channel}));
    }
}
