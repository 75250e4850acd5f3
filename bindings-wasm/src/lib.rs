//! # hubbub-client
//!
//! hubbub's browser client, compiled to WebAssembly with wasm-bindgen and published on npm
//! as `hubbub-client`:
//!
//! ```js
//! import init, { Client } from 'hubbub-client'
//! await init()
//! const client = new Client('ws://127.0.0.1:9772/ws', { token })
//! await client.connect()
//! const sub = await client.subscribe('room:1', (msg) => render(msg.event, msg.data), {
//!   since: position,                                  // rendered by the app's server
//!   onRecover: ({ recovered }) => recovered || reloadState(),
//! })
//! await client.broadcast('room:1', 'chat', { text: 'hi' })
//! const { messages } = await sub.history({ limit: 50 })
//! await sub.unsubscribe()
//! ```
//!
//! The commands on the wire are hubbub-core's, written as core writes them (`command`);
//! the server's frames are read by the browser's `JSON.parse` and walked into core's types
//! where the client steers by them (`frame`), so that no JSON parser or writer weighs on
//! the package.
//!
//! - [`Client`] and [`Subscription`]: the JavaScript API (this file).
//! - `connection`: the state machine (handshake, answers, heartbeat, reconnection).
//! - `link`: a WebSocket, or where none can be opened, Server-Sent Events and POSTs.
//! - `subscriptions`: which channels are wanted, and whose callbacks get their messages.
//! - `token`: when a token from `getToken` is due for replacing, and asking for it.
//! - `command`: the commands, written as JSON text.
//! - `frame`: server frames, read by the browser's `JSON.parse` and walked.
//! - `options`, `backoff`, `message`, `error`: the options object, the reconnection
//!   delays, positions as JS objects and data as JSON, and the errors.
//! - `types.d.ts`: the TypeScript types the generated declarations refer to.

mod backoff;
mod command;
mod connection;
mod error;
mod frame;
mod link;
mod message;
mod options;
mod subscriptions;
mod token;

use command::Command;
use connection::{with, Connection, Reply, Shared};
use hubbub_core::protocol::ChannelRef;
use js_sys::{Function, Promise};
use options::Options;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;

// talc rather than Rust's default allocator (dlmalloc): the package's weight.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = include_str!("types.d.ts");

/// A connection to a hubbub server that survives network trouble: it reconnects with
/// backoff, authenticates again and restores every subscription by itself.
#[wasm_bindgen]
pub struct Client {
    connection: Shared,
}

#[wasm_bindgen]
impl Client {
    /// A client for the hub's WebSocket URL (`ws://HOST:PORT/ws`). Nothing is sent until
    /// `connect()`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<Client, JsValue> {
        if web_sys::Url::new(&url).is_err() {
            return Err(options::not_a_url(&url));
        }
        let options = Options::from_js(&options)?;
        Ok(Client {
            connection: Connection::new(url, options),
        })
    }

    /// Opens the connection. Resolves once connected (and authenticated, where the options
    /// give credentials); rejects if the server refuses the credentials, if the client is
    /// closed, or (with `reconnect: false`) if the connection fails.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn connect(&self) -> Promise {
        with(&self.connection, |c, calls| c.connect(calls))
    }

    /// Subscribes to a channel. Resolves to a `Subscription` once the server confirms it;
    /// rejects with the server's error (`ACCESS_DENIED`, ...) otherwise. Every message on
    /// the channel goes to `onMessage` until `unsubscribe()`, across reconnections, which
    /// recover what was published meanwhile where the channel keeps history. `options`:
    /// `since` (a position to start after), `onRecover`, `onJoin`, `onLeave`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Subscription>")]
    pub fn subscribe(
        &self,
        channel: String,
        #[wasm_bindgen(js_name = onMessage, unchecked_param_type = "(message: Message) => void")]
        on_message: Function,
        #[wasm_bindgen(unchecked_optional_param_type = "SubscribeOptions")] options: JsValue,
    ) -> Result<Promise, JsValue> {
        let (handlers, since) = options::subscription(on_message, &options)?;
        Ok(with(&self.connection, |c, calls| {
            c.subscribe(channel, handlers, since, calls)
        }))
    }

    /// Publishes `data` (any value JSON can express) on a channel, where the credentials
    /// allow writing to it. Resolves once the server accepted it.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn broadcast(
        &self,
        channel: String,
        event: String,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> Promise {
        let command = message::to_json(&data).and_then(|data| {
            hubbub_core::channel::validate(&channel)?;
            Ok(Command::Broadcast {
                event,
                channel,
                data,
            })
        });
        with(&self.connection, |c, calls| {
            c.command(command, Reply::Done, calls)
        })
    }

    /// Sends `data` to one client, by its `clientId`. Needs an authenticated connection.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn direct(
        &self,
        client: String,
        event: String,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    ) -> Promise {
        let command = message::to_json(&data).map(|data| Command::Direct {
            event,
            client,
            data,
        });
        with(&self.connection, |c, calls| {
            c.command(command, Reply::Done, calls)
        })
    }

    // Calls one of the app's own commands (the hub's rpc hook): resolves with the data the
    // app answered; rejects with the app's error (its `code` and `reason`), or the hub's
    // (`UNKNOWN_COMMAND` where it has no rpc hook, `UNAVAILABLE` where the app failed), or
    // `DISCONNECTED`: an rpc is never resent, since the app may have carried it out.
    // Documented and declared (generic in the result) in `types.d.ts`; `//` rather than
    // `///` here, which wasm-bindgen would copy into the package's JS.
    #[wasm_bindgen(skip_typescript)]
    pub fn rpc(&self, method: String, data: JsValue) -> Promise {
        // Left out, the data is null: the command always carries some.
        let data = if data.is_undefined() {
            JsValue::NULL
        } else {
            data
        };
        let command = message::to_json(&data).map(|data| Command::Rpc { method, data });
        with(&self.connection, |c, calls| {
            c.command(command, Reply::Rpc, calls)
        })
    }

    /// Calls `handler` with every direct message to this client. Returns a function that
    /// removes the handler.
    #[wasm_bindgen(js_name = onDirect, unchecked_return_type = "() => void")]
    pub fn on_direct(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(message: DirectMessage) => void")]
        handler: Function,
    ) -> JsValue {
        let id = self.connection.borrow_mut().add_direct_handler(handler);
        let connection = Rc::downgrade(&self.connection);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(c) = connection.upgrade() {
                c.borrow_mut().remove_direct_handler(id);
            }
        })
        .into_js_value()
    }

    /// The server's id for this connection (the address for direct messages); changes on
    /// every reconnection; `undefined` while not connected.
    #[wasm_bindgen(getter, js_name = clientId)]
    pub fn client_id(&self) -> Option<String> {
        self.connection.borrow().client_id()
    }

    /// `connecting`, `connected`, `disconnected` or `closed`.
    #[wasm_bindgen(getter, unchecked_return_type = "ConnectionState")]
    pub fn state(&self) -> String {
        self.connection.borrow().state().name().to_owned()
    }

    /// Closes the connection for good: no more reconnection, every subscription ends.
    pub fn close(&self) {
        with(&self.connection, |c, calls| c.close(calls));
    }
}

/// One `subscribe()` call's hold on a channel.
#[wasm_bindgen]
pub struct Subscription {
    connection: Weak<RefCell<Connection>>,
    id: u32,
    channel: String,
}

impl Subscription {
    pub(crate) fn new(connection: Weak<RefCell<Connection>>, id: u32, channel: String) -> Self {
        Subscription {
            connection,
            id,
            channel,
        }
    }
}

#[wasm_bindgen]
impl Subscription {
    /// The channel's name.
    #[wasm_bindgen(getter)]
    pub fn channel(&self) -> String {
        self.channel.clone()
    }

    /// Where this subscription stands in the channel's stream: the epoch and offset of the
    /// last message, or of the last (re)subscription; `undefined` where the channel keeps
    /// no history, or the subscription ended.
    #[wasm_bindgen(getter, unchecked_return_type = "StreamPosition | undefined")]
    pub fn position(&self) -> JsValue {
        let position = self.connection.upgrade().and_then(|connection| {
            let c = connection.borrow();
            c.position(self.id).map(message::position)
        });
        position.unwrap_or(JsValue::UNDEFINED)
    }

    /// The channel's recent messages (oldest first) and its current position: `limit` the
    /// newest ones at most, `since` only those after that offset. Rejects with
    /// `INVALID_CHANNEL` where the channel keeps no history.
    #[wasm_bindgen(unchecked_return_type = "Promise<HistoryPage>")]
    pub fn history(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "HistoryOptions")] options: JsValue,
    ) -> Result<Promise, JsValue> {
        let query = options::history(self.channel.clone(), &options)?;
        Ok(self.command(Command::History(query), Reply::History))
    }

    /// Who is subscribed to the channel, cluster-wide. Rejects with `INVALID_CHANNEL` where
    /// the channel has no presence.
    #[wasm_bindgen(unchecked_return_type = "Promise<Presence>")]
    pub fn presence(&self) -> Promise {
        let channel = ChannelRef {
            channel: self.channel.clone(),
        };
        self.command(Command::Presence(channel), Reply::Presence)
    }

    /// Stops the messages to this subscription's callback at once; unsubscribes from the
    /// channel on the server when no other subscription wants it. Resolves once done.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn unsubscribe(&self) -> Promise {
        match self.connection.upgrade() {
            Some(connection) => with(&connection, |c, calls| c.unsubscribe(self.id, calls)),
            None => Promise::resolve(&JsValue::UNDEFINED),
        }
    }
}

impl Subscription {
    fn command(&self, command: Command, reply: Reply) -> Promise {
        match self.connection.upgrade() {
            Some(connection) => with(&connection, |c, calls| c.command(Ok(command), reply, calls)),
            // The client itself is gone.
            None => Promise::reject(&error::error(error::CLOSED, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use hubbub_core::Error;

    /// The `ErrorCode` type in the TypeScript declarations lists exactly the protocol's
    /// error names and the client's own codes.
    #[test]
    fn declared_error_codes_match_the_protocol() {
        let types = include_str!("types.d.ts");
        let union = |name: &str| -> Vec<String> {
            let start = types
                .find(&format!("export type {name} ="))
                .unwrap_or_else(|| panic!("{name} is declared"));
            let end = start + types[start..].find(';').expect("the type ends");
            types[start..end]
                .split('\'')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        let protocol: Vec<String> = Error::ALL.iter().map(|e| e.name().to_owned()).collect();
        assert_eq!(union("ProtocolErrorCode"), protocol);
        let client: Vec<String> = crate::error::CLIENT_CODES.map(str::to_owned).to_vec();
        assert_eq!(union("ClientErrorCode"), client);
    }
}
