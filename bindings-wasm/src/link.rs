//! What carries one connection attempt's frames: a WebSocket, or where no WebSocket can be
//! opened (a proxy that blocks them, a page without `WebSocket`), the hub's Server-Sent
//! Events session: an `EventSource` on `/connection/sse` for the frames, POSTs to
//! `/connection/sse/{session}` for the commands (the hub names the session first, in an
//! event named `session`). Both hand the connection the same frames
//! and the same close codes (the hub sends the close as an event named `close`), so the
//! state machine does not know which it has.
//!
//! Commands go out over Server-Sent Events in order: one POST at a time, carrying every
//! command queued meanwhile (one per line); the hub runs them in that order and answers on
//! the stream.

use crate::connection::{with, Connection};
use crate::error::{get, set};
use crate::token::on_settled;
use hubbub_core::protocol::COMMANDS_PER_POST;
use js_sys::{Object, JSON};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use web_sys::{EventSource, WebSocket};

#[wasm_bindgen]
extern "C" {
    /// The browser's `fetch` (on windows and workers alike).
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with(url: &str, init: &JsValue) -> js_sys::Promise;
}

/// The close code of a link that failed without the hub closing it (what browsers report
/// for a WebSocket that could not be opened).
pub(crate) const ABNORMAL: u16 = 1006;

type This = Weak<RefCell<Connection>>;

/// An event handler. Every one takes the event as a plain value, and the handlers are set
/// and the events read as plain properties (`get`, `set`): each typed signature and
/// accessor would add its own glue to the package.
type Handler = Closure<dyn FnMut(JsValue)>;

pub(crate) enum Link {
    WebSocket {
        ws: WebSocket,
        _on_message: Handler,
        _on_close: Handler,
    },
    Events(Box<Events>),
}

pub(crate) struct Events {
    source: EventSource,
    /// Where commands go, once the hub named the session.
    session: Rc<RefCell<Option<String>>>,
    /// Commands waiting for the POST in flight to finish.
    queue: Vec<String>,
    posting: bool,
    _on_message: Handler,
    _on_close: Handler,
    _on_session: Handler,
    _on_error: Handler,
}

impl Link {
    /// A WebSocket to `url`; `None` where the page cannot make one.
    pub fn websocket(url: &str, generation: u32, this: &This) -> Option<Link> {
        let ws = WebSocket::new(url).ok()?;
        let _on_message = on_frame(generation, this);
        let that = this.clone();
        let _on_close = Handler::new(move |event: JsValue| {
            let code = get(&event, "code").as_f64().unwrap_or(1006.0) as u16;
            let reason = get(&event, "reason").as_string().unwrap_or_default();
            closed(&that, generation, code, &reason);
        });
        set(&ws, "onmessage", _on_message.as_ref());
        set(&ws, "onclose", _on_close.as_ref());
        Some(Link::WebSocket {
            ws,
            _on_message,
            _on_close,
        })
    }

    /// The hub's Server-Sent Events session beside the WebSocket endpoint `ws_url`
    /// (`ws://host/ws` gives `http://host/connection/sse`).
    pub fn events(ws_url: &str, generation: u32, this: &This) -> Option<Link> {
        let base = events_url(ws_url)?;
        let source = EventSource::new(&base).ok()?;
        let _on_message = on_frame(generation, this);
        let that = this.clone();
        let _on_close = Handler::new(move |event: JsValue| {
            let close = get(&event, "data")
                .as_string()
                .and_then(|text| JSON::parse(&text).ok())
                .unwrap_or(JsValue::UNDEFINED);
            let code = get(&close, "code").as_f64().unwrap_or(1006.0) as u16;
            let reason = get(&close, "reason").as_string().unwrap_or_default();
            closed(&that, generation, code, &reason);
        });
        // EventSource would reconnect by itself, to a session the hub has ended: the
        // connection decides what comes next, as after a WebSocket's close.
        let that = this.clone();
        let _on_error = Handler::new(move |_| {
            closed(&that, generation, ABNORMAL, "");
        });
        // The session's name: the URL its commands go to.
        let session = Rc::new(RefCell::new(None));
        let named = session.clone();
        let _on_session = Handler::new(move |event: JsValue| {
            if let Some(name) = get(&event, "data").as_string() {
                *named.borrow_mut() = Some([&base, "/", &name].concat());
            }
        });
        let _ = source
            .add_event_listener_with_callback("session", _on_session.as_ref().unchecked_ref());
        set(&source, "onmessage", _on_message.as_ref());
        let _ =
            source.add_event_listener_with_callback("close", _on_close.as_ref().unchecked_ref());
        set(&source, "onerror", _on_error.as_ref());
        Some(Link::Events(Box::new(Events {
            source,
            session,
            queue: Vec::new(),
            posting: false,
            _on_message,
            _on_close,
            _on_session,
            _on_error,
        })))
    }

    pub fn is_websocket(&self) -> bool {
        matches!(self, Link::WebSocket { .. })
    }

    /// Sends one command's text. A link that is closing takes it and drops it; its close
    /// follows.
    pub fn send(&mut self, text: String, generation: u32, this: &This) {
        match self {
            Link::WebSocket { ws, .. } => {
                let _ = ws.send_with_str(&text);
            }
            Link::Events(events) => {
                events.queue.push(text);
                events.post(generation, this);
            }
        }
    }

    /// The POST in flight went through: the next may go.
    pub fn posted(&mut self, generation: u32, this: &This) {
        if let Link::Events(events) = self {
            events.posting = false;
            events.post(generation, this);
        }
    }
}

impl Events {
    /// POSTs what is queued, unless a POST is in flight (its end calls this again).
    fn post(&mut self, generation: u32, this: &This) {
        let Some(url) = self.session.borrow().clone() else {
            return;
        };
        if self.posting || self.queue.is_empty() {
            return;
        }
        self.posting = true;
        let init: JsValue = Object::new().into();
        set(&init, "method", &"POST".into());
        // At most what the hub takes in one request; the rest goes in the next.
        let batch = self.queue.len().min(COMMANDS_PER_POST);
        let body = self.queue.drain(..batch).collect::<Vec<_>>().join("\n");
        set(&init, "body", &body.into());
        let that = this.clone();
        on_settled(fetch_with(&url, &init), move |result| {
            let ok = result.is_ok_and(|response| get(&response, "ok").is_truthy());
            if let Some(shared) = that.upgrade() {
                with(&shared, |c, calls| c.posted(generation, ok, calls));
            }
        });
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        match self {
            Link::WebSocket { ws, .. } => {
                set(ws, "onmessage", &JsValue::NULL);
                set(ws, "onclose", &JsValue::NULL);
                let _ = ws.close_with_code(1000);
            }
            Link::Events(events) => {
                set(&events.source, "onmessage", &JsValue::NULL);
                set(&events.source, "onerror", &JsValue::NULL);
                let _ = events.source.remove_event_listener_with_callback(
                    "close",
                    events._on_close.as_ref().unchecked_ref(),
                );
                let _ = events.source.remove_event_listener_with_callback(
                    "session",
                    events._on_session.as_ref().unchecked_ref(),
                );
                events.source.close();
            }
        }
    }
}

/// Hands each frame's text to the connection.
fn on_frame(generation: u32, this: &This) -> Handler {
    let this = this.clone();
    Handler::new(move |event: JsValue| {
        // Text only: the protocol has no binary frames.
        if let (Some(shared), Some(text)) = (this.upgrade(), get(&event, "data").as_string()) {
            with(&shared, |c, calls| c.frame(generation, &text, calls));
        }
    })
}

fn closed(this: &This, generation: u32, code: u16, reason: &str) {
    if let Some(shared) = this.upgrade() {
        with(&shared, |c, calls| {
            c.closed(generation, code, reason, calls)
        });
    }
}

/// `/connection/sse` beside the WebSocket endpoint: the same host, `http(s)` for `ws(s)`,
/// the path's last segment (`ws`) replaced, no query.
fn events_url(ws_url: &str) -> Option<String> {
    let (scheme, rest) = ws_url.split_once(':')?;
    let http = if scheme.eq_ignore_ascii_case("wss") {
        "https:"
    } else {
        "http:"
    };
    // Resolved against the endpoint, the relative `connection/sse` replaces the last
    // segment and drops the query, as URLs do.
    let url = web_sys::Url::new_with_base("connection/sse", &[http, rest].concat()).ok()?;
    Some(url.href())
}
