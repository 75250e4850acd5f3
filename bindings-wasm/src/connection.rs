//! One client's link to the hub, across reconnections: the state machine behind `Client`.
//!
//! The life of one WebSocket: open it, wait for the server's `connected` welcome, send the
//! handshake (`authenticate` where the options give credentials, then `subscribe` for every
//! wanted channel), and report `connected` once the handshake is answered. Answers are
//! matched to commands first-in first-out: the server answers a connection's commands in
//! the order it received them, and deliveries carry their own frame kinds.
//!
//! With `getToken`, a connection first asks it for a token where the client has none that
//! is fresh, and the open connection asks again before the token's `exp`, sending the new
//! one as `authenticate` (module `token`).
//!
//! When the socket closes, or the heartbeat finds it silent for most of `heartbeatMs`, the
//! connection reports `disconnected` and opens a new socket after a jittered, growing delay.
//! `close()` (or credentials the server refuses) ends it for good. Two close codes stop the
//! reconnecting but leave the client usable through `connect()`: 4403 (the hub refuses this
//! page: its origin, or the app) and 4000 (the application disconnected it); coming back by
//! itself would only be refused again, or undo the application's decision.
//!
//! JavaScript callbacks may call back into the client, so nothing calls JavaScript while
//! the connection is borrowed: state changes queue [`Calls`], which [`with`] makes after
//! the borrow ends.

use crate::backoff::Delays;
use crate::command::Command;
use crate::error::{self, CLOSED, DISCONNECTED};
use crate::frame::Frame;
use crate::link::{self, Link};
use crate::options::Options;
use crate::subscriptions::{Added, Confirmed, Handlers, Removed, Subscriptions};
use crate::token;
use crate::Subscription;
use gloo_timers::callback::{Interval, Timeout};
use hubbub_core::protocol::{close, ChannelRef, Credentials, Since, StreamPosition, Subscribe};
use hubbub_core::{channel, Error, Rejection};
use js_sys::{Function, Promise};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;

pub(crate) type Shared = Rc<RefCell<Connection>>;

/// The states the application sees (`client.state`, `onStateChange`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// A socket is opening, or its handshake is not answered yet.
    Connecting,
    /// Welcomed, authenticated and resubscribed: commands go out at once.
    Connected,
    /// No socket: not connected yet, or waiting to reconnect.
    Disconnected,
    /// Closed for good.
    Closed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Disconnected => "disconnected",
            State::Closed => "closed",
        }
    }
}

/// The two functions that settle a promise handed to the application.
pub(crate) struct Resolver {
    pub resolve: Function,
    pub reject: Function,
}

impl Resolver {
    pub fn promise() -> (Promise, Resolver) {
        let mut resolver = None;
        let promise = Promise::new(&mut |resolve, reject| {
            resolver = Some(Resolver { resolve, reject });
        });
        // The executor runs before `Promise::new` returns. (`expect_throw`: a panic's
        // message machinery would weigh on the package.)
        (promise, resolver.expect_throw("the promise executor ran"))
    }
}

/// JavaScript calls (callbacks, promise settlements) queued while the connection is
/// borrowed, made in order once it is not.
#[derive(Default)]
pub(crate) struct Calls(Vec<Call>);

enum Call {
    /// A JS function and its argument.
    Js(Function, JsValue),
    /// Rust code that calls JavaScript itself (`getToken`).
    Later(Box<dyn FnOnce()>),
}

impl Calls {
    pub fn push(&mut self, f: &Function, arg: JsValue) {
        self.0.push(Call::Js(f.clone(), arg));
    }

    fn later(&mut self, f: impl FnOnce() + 'static) {
        self.0.push(Call::Later(Box::new(f)));
    }

    fn run(self) {
        for call in self.0 {
            match call {
                Call::Js(f, arg) => {
                    // An application callback that throws must not stop the others.
                    if let Err(e) = f.call1(&JsValue::UNDEFINED, &arg) {
                        web_sys::console::error_1(&e);
                    }
                }
                Call::Later(f) => f(),
            }
        }
    }
}

/// Runs `f` on the connection, then makes the calls it queued.
pub(crate) fn with<R>(shared: &Shared, f: impl FnOnce(&mut Connection, &mut Calls) -> R) -> R {
    let mut calls = Calls::default();
    let result = f(&mut shared.borrow_mut(), &mut calls);
    calls.run();
    result
}

/// A command awaiting its answer on the current socket.
enum Pending {
    /// Part of the handshake: its refusal closes the client.
    Authenticate,
    /// A token from `getToken` replacing the session's on the open connection.
    Refresh,
    /// For every subscription of `channel`; `handshake` when sent as part of one.
    Subscribe { channel: String, handshake: bool },
    /// `done` resolves the application's `unsubscribe()` promise.
    Unsubscribe { channel: String, done: Function },
    /// `broadcast`, `direct`, `history`, `presence` and `rpc`: the answer settles the
    /// promise.
    Reply(Resolver, Reply),
    /// The heartbeat's.
    Ping,
}

/// What a command's promise resolves to.
#[derive(Clone, Copy)]
pub(crate) enum Reply {
    /// Nothing (`undefined`): `broadcast`, `direct`.
    Done,
    /// The `history` page.
    History,
    /// The `presence` list.
    Presence,
    /// The app's data, or its error, from `rpcResult`.
    Rpc,
}

/// One link to the hub (a WebSocket, or Server-Sent Events) and what was sent on it.
struct Socket {
    link: Link,
    generation: u32,
    /// The server's `connected` frame arrived: commands may go out.
    welcomed: bool,
    /// Handshake answers still awaited.
    handshake: usize,
    pending: VecDeque<Pending>,
    /// When a frame last arrived (or the socket was opened), in ms since the epoch.
    last_seen: f64,
    /// When the heartbeat last ran (or the socket was opened).
    last_beat: f64,
    ping_out: bool,
    _heartbeat: Option<Interval>,
    /// Asks `getToken` for the next token before the session's expires.
    refresh: Option<Timeout>,
    this: Weak<RefCell<Connection>>,
}

impl Socket {
    fn send(&mut self, command: &Command, pending: Pending) {
        // A link that is closing takes the frame and drops it; its close follows and
        // settles `pending` with the others.
        self.link
            .send(command.to_json(), self.generation, &self.this);
        self.pending.push_back(pending);
    }
}

pub(crate) struct Connection {
    /// The hub's URLs: the constructor's, then the `urls` option's.
    urls: Vec<String>,
    /// The one the next socket opens.
    next_url: usize,
    options: Options,
    state: State,
    socket: Option<Socket>,
    /// Counts sockets, so that events of an abandoned socket are recognised and ignored.
    generation: u32,
    client_id: Option<String>,
    subscriptions: Subscriptions,
    direct_handlers: Vec<(u32, Function)>,
    next_id: u32,
    /// `connect()` promises waiting for `connected`.
    connect_waiters: Vec<Resolver>,
    /// The reconnection delays of the current run of failures.
    delays: Option<Delays>,
    retry: Option<Timeout>,
    /// A WebSocket of this client was welcomed once: WebSocket works here, and a failed
    /// one is the hub's trouble, not a reason to fall back to Server-Sent Events.
    websocket_works: bool,
    /// With `getToken`: when the current token should be replaced (ms since the epoch);
    /// `None` while it needs no replacing (no `exp`).
    token_refresh_at: Option<f64>,
    pings: u64,
    this: Weak<RefCell<Connection>>,
}

impl Connection {
    pub fn new(url: String, options: Options) -> Shared {
        Rc::new_cyclic(|this| {
            let mut urls = vec![url];
            urls.extend(options.urls.iter().cloned());
            let token_refresh_at = match &options.credentials {
                Some(Credentials::Token { token }) => token::refresh_at(token, js_sys::Date::now()),
                _ => None,
            };
            RefCell::new(Connection {
                urls,
                next_url: 0,
                options,
                state: State::Disconnected,
                socket: None,
                generation: 0,
                client_id: None,
                subscriptions: Subscriptions::default(),
                direct_handlers: Vec::new(),
                next_id: 0,
                connect_waiters: Vec::new(),
                delays: None,
                retry: None,
                websocket_works: false,
                token_refresh_at,
                pings: 0,
                this: this.clone(),
            })
        })
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn client_id(&self) -> Option<String> {
        self.client_id.clone()
    }

    // -----------------------------------------------------------------------------------
    // What the application calls
    // -----------------------------------------------------------------------------------

    /// Resolves once connected. With reconnection on, failed attempts are retried until
    /// one succeeds or the client is closed.
    pub fn connect(&mut self, calls: &mut Calls) -> Promise {
        let (promise, resolver) = Resolver::promise();
        match self.state {
            State::Closed => calls.push(&resolver.reject, error::error(CLOSED, None)),
            State::Connected => calls.push(&resolver.resolve, JsValue::UNDEFINED),
            State::Connecting => self.connect_waiters.push(resolver),
            State::Disconnected => {
                self.connect_waiters.push(resolver);
                // While a retry is scheduled, the waiter waits for it.
                if self.retry.is_none() {
                    self.open(calls);
                }
            }
        }
        promise
    }

    /// Resolves to a `Subscription` once the server confirms it. Made while offline, it
    /// waits for the next connection.
    pub fn subscribe(
        &mut self,
        channel: String,
        handlers: Handlers,
        since: Option<StreamPosition>,
        calls: &mut Calls,
    ) -> Promise {
        let (promise, resolver) = Resolver::promise();
        if self.state == State::Closed {
            calls.push(&resolver.reject, error::error(CLOSED, None));
            return promise;
        }
        if let Err(rejection) = channel::validate(&channel) {
            calls.push(
                &resolver.reject,
                error::channel_rejection(&rejection, &channel),
            );
            return promise;
        }
        let id = self.next_id();
        match self
            .subscriptions
            .add(id, &channel, handlers, since, resolver, calls)
        {
            Added::New => {
                if let Some(socket) = self.socket.as_mut().filter(|s| s.welcomed) {
                    let since = self.subscriptions.request(&channel);
                    socket.send(
                        &subscribe(&channel, since),
                        Pending::Subscribe {
                            channel,
                            handshake: false,
                        },
                    );
                }
            }
            Added::Confirmed(confirmed) => self.confirm(confirmed, calls),
            Added::Waiting => {}
        }
        promise
    }

    /// Ends one subscription at once; tells the server when it was the channel's last.
    pub fn unsubscribe(&mut self, id: u32, calls: &mut Calls) -> Promise {
        let (promise, resolver) = Resolver::promise();
        if let Removed::LastOf(channel) = self.subscriptions.remove(id) {
            // A channel is only requested on a welcomed socket.
            if let Some(socket) = self.socket.as_mut() {
                let command = Command::Unsubscribe(ChannelRef {
                    channel: channel.clone(),
                });
                socket.send(
                    &command,
                    Pending::Unsubscribe {
                        channel,
                        done: resolver.resolve,
                    },
                );
                return promise;
            }
        }
        calls.push(&resolver.resolve, JsValue::UNDEFINED);
        promise
    }

    /// Where subscription `id`'s channel stands in its stream, where it keeps history.
    pub fn position(&self, id: u32) -> Option<&StreamPosition> {
        self.subscriptions.position(id)
    }

    /// Sends `broadcast`, `direct`, `history`, `presence` or `rpc`; settles on the server's
    /// answer. Never queued or resent: offline, or when the connection drops before the
    /// answer, it rejects with `DISCONNECTED` (an rpc the app may have carried out must not
    /// run twice).
    pub fn command(
        &mut self,
        command: Result<Command, Rejection>,
        reply: Reply,
        calls: &mut Calls,
    ) -> Promise {
        let (promise, resolver) = Resolver::promise();
        let offline = if self.state == State::Closed {
            CLOSED
        } else {
            DISCONNECTED
        };
        match (command, self.socket.as_mut().filter(|s| s.welcomed)) {
            (Err(rejection), _) => calls.push(&resolver.reject, error::rejection(&rejection)),
            (Ok(_), None) => calls.push(
                &resolver.reject,
                error::error(offline, Some("the client is not connected")),
            ),
            (Ok(command), Some(socket)) => socket.send(&command, Pending::Reply(resolver, reply)),
        }
        promise
    }

    pub fn add_direct_handler(&mut self, handler: Function) -> u32 {
        let id = self.next_id();
        self.direct_handlers.push((id, handler));
        id
    }

    pub fn remove_direct_handler(&mut self, id: u32) {
        self.direct_handlers.retain(|(i, _)| *i != id);
    }

    /// Closes the socket and stops reconnecting, for good.
    pub fn close(&mut self, calls: &mut Calls) {
        self.shut(&error::error(CLOSED, Some("the client was closed")), calls);
    }

    // -----------------------------------------------------------------------------------
    // The socket's life
    // -----------------------------------------------------------------------------------

    fn open(&mut self, calls: &mut Calls) {
        self.retry = None;
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        self.set_state(State::Connecting, calls);
        if self.needs_token() {
            // The socket opens once `getToken` answers.
            return self.fetch_token(generation, calls);
        }
        self.open_socket(generation, false, calls);
    }

    /// Opens a WebSocket, or with `events` (or where the page cannot make a WebSocket)
    /// the hub's Server-Sent Events session.
    fn open_socket(&mut self, generation: u32, events: bool, calls: &mut Calls) {
        let this = &self.this;
        let link = self.urls.get(self.next_url).and_then(|url| {
            let websocket = match events {
                false => Link::websocket(url, generation, this),
                true => None,
            };
            websocket.or_else(|| Link::events(url, generation, this))
        });
        let Some(link) = link else {
            return self.connection_lost(calls);
        };
        let heartbeat = (self.options.heartbeat_ms > 0).then(|| {
            let this = self.this.clone();
            Interval::new((self.options.heartbeat_ms / 8).max(1), move || {
                if let Some(shared) = this.upgrade() {
                    with(&shared, |c, calls| c.beat(generation, calls));
                }
            })
        });
        let now = js_sys::Date::now();
        self.socket = Some(Socket {
            link,
            generation,
            welcomed: false,
            handshake: 0,
            pending: VecDeque::new(),
            last_seen: now,
            last_beat: now,
            ping_out: false,
            _heartbeat: heartbeat,
            refresh: None,
            this: self.this.clone(),
        });
    }

    /// The current socket, if `generation` is it.
    fn socket(&mut self, generation: u32) -> Option<&mut Socket> {
        self.socket.as_mut().filter(|s| s.generation == generation)
    }

    pub(crate) fn frame(&mut self, generation: u32, text: &str, calls: &mut Calls) {
        let Some(socket) = self.socket(generation) else {
            return;
        };
        socket.last_seen = js_sys::Date::now();
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(rejection) => return self.report(error::rejection(&rejection), calls),
        };
        match frame {
            Frame::Connected(client) => self.welcome(client, calls),
            Frame::Message {
                channel,
                offset,
                object,
            } => self.subscriptions.deliver(&channel, offset, &object, calls),
            Frame::DirectMessage(object) => {
                for (_, handler) in &self.direct_handlers {
                    calls.push(handler, object.clone());
                }
            }
            Frame::Join(channel, object) => self.subscriptions.joined(&channel, &object, calls),
            Frame::Leave(channel, object) => self.subscriptions.left(&channel, &object, calls),
            answer => self.answer(answer, calls),
        }
    }

    /// The server's welcome: send the handshake.
    fn welcome(&mut self, client: String, calls: &mut Calls) {
        let Some(socket) = self.socket.as_mut().filter(|s| !s.welcomed) else {
            return;
        };
        socket.welcomed = true;
        self.websocket_works |= socket.link.is_websocket();
        self.client_id = Some(client);
        if let Some(credentials) = &self.options.credentials {
            socket.send(
                &Command::Authenticate(credentials.clone()),
                Pending::Authenticate,
            );
            socket.handshake += 1;
        }
        for (channel, since) in self.subscriptions.wanted() {
            socket.send(
                &subscribe(&channel, since),
                Pending::Subscribe {
                    channel,
                    handshake: true,
                },
            );
            socket.handshake += 1;
        }
        if socket.handshake == 0 {
            self.ready(calls);
        }
    }

    /// An answer: settles the oldest command awaiting one.
    fn answer(&mut self, frame: Frame, calls: &mut Calls) {
        let Some(pending) = self.socket.as_mut().and_then(|s| s.pending.pop_front()) else {
            // An error that answers nothing the client sent.
            if let Frame::Err(rejection) = frame {
                self.report(error::rejection(&rejection), calls);
            }
            return;
        };
        match pending {
            Pending::Authenticate => match frame {
                // The token outlived its time (a page that slept): `getToken` has a new
                // one for the next connection.
                Frame::Err(rejection)
                    if rejection.error == Error::TokenExpired
                        && self.options.get_token.is_some() =>
                {
                    self.token_refresh_at = Some(0.0);
                    self.report(error::rejection(&rejection), calls);
                    self.connection_lost(calls);
                }
                Frame::Err(rejection) => self.refused(&rejection, calls),
                _ => self.handshake_step(calls),
            },
            Pending::Refresh => match frame {
                // The session keeps its token until the hub closes it at `exp` (4001); the
                // next connection asks `getToken` again.
                Frame::Err(rejection) => self.report(error::rejection(&rejection), calls),
                _ => self.schedule_refresh(),
            },
            Pending::Subscribe { channel, handshake } => {
                let result = match frame {
                    Frame::Resubscribed(r) => Ok(Some(r)),
                    Frame::Err(rejection) => Err(rejection),
                    _ => Ok(None),
                };
                let on_error = self.options.on_error.as_ref();
                for confirmed in self
                    .subscriptions
                    .answered(&channel, result, on_error, calls)
                {
                    self.confirm(confirmed, calls);
                }
                if handshake {
                    self.handshake_step(calls);
                }
            }
            Pending::Unsubscribe { channel, done } => {
                self.subscriptions.unsubscribed(&channel);
                calls.push(&done, JsValue::UNDEFINED);
            }
            Pending::Reply(resolver, reply) => {
                let settled = match (frame, reply) {
                    (Frame::Err(rejection), _) => Err(error::rejection(&rejection)),
                    (Frame::History(page), Reply::History) => Ok(page),
                    (Frame::Presence(presence), Reply::Presence) => Ok(presence),
                    // The app's data, or its own error, code and reason as it wrote them.
                    (Frame::RpcResult(result), Reply::Rpc) => result,
                    (_, Reply::Done) => Ok(JsValue::UNDEFINED),
                    // The server answers in order: another kind of answer is a broken hub.
                    _ => Err(error::rejection(
                        &Error::InvalidPayload.because("an answer of the wrong kind"),
                    )),
                };
                match settled {
                    Ok(value) => calls.push(&resolver.resolve, value),
                    Err(error) => calls.push(&resolver.reject, error),
                }
            }
            Pending::Ping => {
                if let Some(socket) = self.socket.as_mut() {
                    socket.ping_out = false;
                }
            }
        }
    }

    /// A subscription is confirmed: its `subscribe()` promise resolves.
    fn confirm(&self, confirmed: Confirmed, calls: &mut Calls) {
        let subscription = Subscription::new(self.this.clone(), confirmed.id, confirmed.channel);
        calls.push(&confirmed.resolver.resolve, subscription.into());
    }

    fn handshake_step(&mut self, calls: &mut Calls) {
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        socket.handshake = socket.handshake.saturating_sub(1);
        if socket.handshake == 0 && self.state == State::Connecting {
            self.ready(calls);
        }
    }

    /// The handshake is answered: the client is connected.
    fn ready(&mut self, calls: &mut Calls) {
        self.delays = None;
        self.schedule_refresh();
        for waiter in self.connect_waiters.drain(..) {
            calls.push(&waiter.resolve, JsValue::UNDEFINED);
        }
        self.set_state(State::Connected, calls);
    }

    // -----------------------------------------------------------------------------------
    // Tokens from `getToken`
    // -----------------------------------------------------------------------------------

    /// Whether a connection must first ask `getToken`: it has no token yet, or one due for
    /// replacing.
    fn needs_token(&self) -> bool {
        self.options.get_token.is_some()
            && (self.options.credentials.is_none()
                || self
                    .token_refresh_at
                    .is_some_and(|at| js_sys::Date::now() >= at))
    }

    /// Asks `getToken` (after the borrow ends) for a token for socket `generation`: the
    /// one about to open, or the open one whose token is due for replacing.
    fn fetch_token(&mut self, generation: u32, calls: &mut Calls) {
        let Some(get_token) = self.options.get_token.clone() else {
            return;
        };
        let this = self.this.clone();
        calls.later(move || {
            token::fetch(&get_token, move |result| {
                if let Some(shared) = this.upgrade() {
                    with(&shared, |c, calls| {
                        c.token_arrived(generation, result, calls)
                    });
                }
            })
        });
    }

    fn token_arrived(
        &mut self,
        generation: u32,
        result: Result<JsValue, JsValue>,
        calls: &mut Calls,
    ) {
        if generation != self.generation || self.state == State::Closed {
            return;
        }
        let token = match result.map(|value| value.as_string()) {
            Ok(Some(token)) => token,
            failed => {
                let reason = match failed {
                    Err(thrown) => error::get(&thrown, "message")
                        .as_string()
                        .unwrap_or_default(),
                    _ => "getToken must resolve to a string".into(),
                };
                let name = Error::Unavailable.name();
                self.report(error::error(name, Some(&reason)), calls);
                // A connection waiting for it counts as a failed attempt; an open one
                // keeps its token until the hub closes it at `exp`.
                if self.socket.is_none() && self.state == State::Connecting {
                    self.connection_lost(calls);
                }
                return;
            }
        };
        self.token_refresh_at = token::refresh_at(&token, js_sys::Date::now());
        self.options.credentials = Some(Credentials::Token {
            token: token.clone(),
        });
        match self.socket.as_mut() {
            None if self.state == State::Connecting => self.open_socket(generation, false, calls),
            // The socket it was for is gone; the token serves the next one.
            None => {}
            Some(socket) if socket.welcomed => {
                socket.send(
                    &Command::Authenticate(Credentials::Token { token }),
                    Pending::Refresh,
                );
            }
            // Not welcomed yet: the handshake sends the new token.
            Some(_) => {}
        }
    }

    /// Arms the current socket's timer for asking `getToken` before the token expires.
    fn schedule_refresh(&mut self) {
        let (Some(at), true) = (self.token_refresh_at, self.options.get_token.is_some()) else {
            return;
        };
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        let generation = socket.generation;
        let this = self.this.clone();
        let delay = (at - js_sys::Date::now()).max(0.0) as u32;
        socket.refresh = Some(Timeout::new(delay, move || {
            if let Some(shared) = this.upgrade() {
                with(&shared, |c, calls| {
                    if c.socket(generation).is_some_and(|s| s.welcomed) {
                        c.fetch_token(generation, calls);
                    }
                });
            }
        }));
    }

    /// The server refused the credentials: retrying with the same ones cannot help.
    fn refused(&mut self, rejection: &Rejection, calls: &mut Calls) {
        let error = error::rejection(rejection);
        self.report(error.clone(), calls);
        // What waits (connect(), subscriptions made before it) learns the real reason,
        // not just that the client closed.
        self.shut(&error, calls);
    }

    /// The heartbeat, every eighth of `heartbeatMs`: ping a quiet connection, give up on a
    /// silent one.
    fn beat(&mut self, generation: u32, calls: &mut Calls) {
        let heartbeat = f64::from(self.options.heartbeat_ms);
        let ping = self.pings;
        let Some(socket) = self.socket(generation) else {
            return;
        };
        let now = js_sys::Date::now();
        let late = now - socket.last_beat > heartbeat / 4.0;
        socket.last_beat = now;
        if late {
            // The timer was held back (a hidden tab's timers run once a minute; a laptop
            // slept), while the socket's events were not: the silence may be ours, not the
            // hub's. Ask, and judge at the next beat that comes on time.
            socket.last_seen = socket.last_seen.max(now - heartbeat / 2.0);
        }
        let idle = now - socket.last_seen;
        if idle >= heartbeat * 7.0 / 8.0 {
            // Nothing heard for most of a heartbeat, not even the answer to a ping: the
            // connection is dead even if the socket does not know it yet (a peer that
            // vanished without closing). The next beat would be past `heartbeatMs`.
            if !self.fall_back(calls) {
                self.connection_lost(calls);
            }
        } else if idle >= heartbeat / 2.0 && socket.welcomed && !socket.ping_out {
            socket.send(&Command::Ping(ping), Pending::Ping);
            socket.ping_out = true;
            self.pings += 1;
        }
    }

    /// The socket's close event (an error event is always followed by one).
    pub(crate) fn closed(&mut self, generation: u32, code: u16, reason: &str, calls: &mut Calls) {
        if self.socket(generation).is_none() {
            return;
        }
        // A close of the hub's own is not a WebSocket that could not be opened.
        if code == link::ABNORMAL && self.fall_back(calls) {
            return;
        }
        let because = |default: &'static str| -> String {
            if reason.is_empty() {
                default.to_owned()
            } else {
                reason.to_owned()
            }
        };
        match code {
            // The application closed this connection on purpose: coming back would undo it.
            close::DISCONNECTED => {
                let reason = because("disconnected by the application");
                self.stop(error::closed(DISCONNECTED, &reason, code), calls);
            }
            // The hub refuses this page (its origin, or the app's connect hook): the same
            // request would be refused again.
            close::ACCESS_DENIED => {
                let reason = because("access denied");
                let name = Error::AccessDenied.name();
                self.stop(error::closed(name, &reason, code), calls);
            }
            // The app behind the hub failed; it may be back in a moment. Said once per
            // failed attempt, and retried with the growing delays.
            close::APP_UNAVAILABLE => {
                let reason = because("app unavailable");
                let name = Error::Unavailable.name();
                self.report(error::closed(name, &reason, code), calls);
                self.connection_lost(calls);
            }
            // Token expired (4001), shutdown, slow consumer, a dropped network: come back.
            // After 4001 the new connection authenticates again, and where the token is
            // past its `exp` that refusal (TOKEN_EXPIRED) is what the application hears.
            _ => self.connection_lost(calls),
        }
    }

    /// Where the current link is a WebSocket that never got through (it failed, or stalled
    /// in its opening), and no WebSocket of this client ever did, a proxy may be blocking
    /// them: the same attempt goes on over Server-Sent Events. Says whether it did.
    fn fall_back(&mut self, calls: &mut Calls) -> bool {
        let Some(socket) = &self.socket else {
            return false;
        };
        if !socket.link.is_websocket() || socket.welcomed || self.websocket_works {
            return false;
        }
        self.socket = None;
        self.generation = self.generation.wrapping_add(1);
        self.open_socket(self.generation, true, calls);
        true
    }

    /// A POST of commands over Server-Sent Events ended: the next may go, or, where it
    /// failed (the session is gone), the link is lost.
    pub(crate) fn posted(&mut self, generation: u32, ok: bool, calls: &mut Calls) {
        let Some(socket) = self.socket(generation) else {
            return;
        };
        if ok {
            let this = socket.this.clone();
            socket.link.posted(generation, &this);
        } else {
            self.connection_lost(calls);
        }
    }

    /// The hub said not to come back: no more reconnecting until the application calls
    /// `connect()` again. Subscriptions stay, to be restored by that connection.
    fn stop(&mut self, error: JsValue, calls: &mut Calls) {
        let pending = self.drop_socket();
        let gone = error::error(
            DISCONNECTED,
            Some("the connection dropped before the answer"),
        );
        settle(pending, &gone, calls);
        self.subscriptions.connection_lost();
        self.retry = None;
        self.delays = None;
        self.set_state(State::Disconnected, calls);
        self.report(error.clone(), calls);
        for waiter in self.connect_waiters.drain(..) {
            calls.push(&waiter.reject, error.clone());
        }
    }

    /// The socket is gone: settle what it owed, then schedule the next attempt, at the
    /// next URL where there are several (the node behind this one may be down).
    fn connection_lost(&mut self, calls: &mut Calls) {
        self.next_url += 1;
        if self.next_url >= self.urls.len() {
            self.next_url = 0;
        }
        let pending = self.drop_socket();
        let gone = error::error(
            DISCONNECTED,
            Some("the connection dropped before the answer"),
        );
        settle(pending, &gone, calls);
        self.subscriptions.connection_lost();
        self.set_state(State::Disconnected, calls);
        match self.options.reconnect {
            Some(policy) => {
                let delay = self.delays.get_or_insert_with(|| policy.delays()).next_ms();
                let this = self.this.clone();
                self.retry = Some(Timeout::new(delay, move || {
                    if let Some(shared) = this.upgrade() {
                        with(&shared, |c, calls| c.open(calls));
                    }
                }));
            }
            None => {
                let failed = error::error(DISCONNECTED, Some("could not connect"));
                for waiter in self.connect_waiters.drain(..) {
                    calls.push(&waiter.reject, failed.clone());
                }
            }
        }
    }

    /// Ends everything, for good; `error` rejects what still waits.
    fn shut(&mut self, error: &JsValue, calls: &mut Calls) {
        if self.state == State::Closed {
            return;
        }
        self.retry = None;
        self.delays = None;
        let pending = self.drop_socket();
        settle(pending, error, calls);
        self.subscriptions.close(error, calls);
        for waiter in self.connect_waiters.drain(..) {
            calls.push(&waiter.reject, error.clone());
        }
        self.set_state(State::Closed, calls);
    }

    /// Closes the current socket (if any) and returns the commands it still owed answers.
    fn drop_socket(&mut self) -> VecDeque<Pending> {
        self.client_id = None;
        match self.socket.take() {
            Some(mut socket) => std::mem::take(&mut socket.pending),
            None => VecDeque::new(),
        }
    }

    // -----------------------------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------------------------

    fn set_state(&mut self, state: State, calls: &mut Calls) {
        if self.state == state {
            return;
        }
        self.state = state;
        if let Some(on_state_change) = &self.options.on_state_change {
            calls.push(on_state_change, state.name().into());
        }
    }

    fn report(&self, error: JsValue, calls: &mut Calls) {
        if let Some(on_error) = &self.options.on_error {
            calls.push(on_error, error);
        }
    }

    fn next_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }
}

/// Settles the commands a lost socket still owed answers. Subscriptions are not settled:
/// they wait for the next connection.
fn settle(pending: VecDeque<Pending>, error: &JsValue, calls: &mut Calls) {
    for p in pending {
        match p {
            Pending::Reply(resolver, _) => calls.push(&resolver.reject, error.clone()),
            // The server forgets a lost connection's subscriptions anyway.
            Pending::Unsubscribe { done, .. } => calls.push(&done, JsValue::UNDEFINED),
            Pending::Authenticate
            | Pending::Refresh
            | Pending::Subscribe { .. }
            | Pending::Ping => {}
        }
    }
}

fn subscribe(channel: &str, since: Since) -> Command {
    Command::Subscribe(Subscribe {
        channel: channel.to_owned(),
        since: Some(since),
    })
}
