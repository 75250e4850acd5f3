//! The channels the application wants, who gets their messages, and where each channel's
//! stream stands.
//!
//! A channel is wanted while at least one `Subscription` on it is alive. The registry
//! outlives connections: after a reconnect every wanted channel is subscribed again, and
//! subscriptions made while offline wait here for the next connection.
//!
//! Every `subscribe` the client sends carries `since`: the channel's last known position
//! (the epoch and offset of the last message with an offset, or of the last `resubscribed`
//! answer), or `"latest"` where none is known yet. So the server delivers what a
//! reconnection missed, and the answer tells whether the gap could be filled, which each
//! subscription's `onRecover` hears. One channel is subscribed on the server once, however
//! many `Subscription`s share it: a second `subscribe` would make the server replay the
//! missed messages to every callback of the channel again.

use crate::connection::{Calls, Resolver};
use crate::error;
use crate::message;
use hubbub_core::protocol::{Resubscribed, Since, StreamPosition};
use hubbub_core::Rejection;
use js_sys::Function;
use wasm_bindgen::JsValue;

/// A handful of channels per client: a list is all the map it needs.
#[derive(Default)]
pub(crate) struct Subscriptions {
    channels: Vec<Channel>,
}

struct Channel {
    name: String,
    entries: Vec<Entry>,
    /// A `subscribe` for this channel went out on the current connection.
    requested: bool,
    /// The server confirmed the subscription on the current connection.
    live: bool,
    /// Where this client stands in the channel's stream: the last `resubscribed` answer's
    /// position, moved on by every message with an offset. `None` until known.
    position: Option<StreamPosition>,
    /// The `since` of the `subscribe` in flight (`None`: `"latest"`).
    sent: Option<StreamPosition>,
    /// The last offset delivered since that `subscribe` went out: the server may deliver
    /// live messages past the answer's position before the answer itself.
    seen: u64,
}

/// What one subscription's callbacks are.
pub(crate) struct Handlers {
    pub on_message: Function,
    pub on_recover: Option<Function>,
    pub on_join: Option<Function>,
    pub on_leave: Option<Function>,
}

struct Entry {
    id: u32,
    handlers: Handlers,
    /// The `subscribe()` promise, until the server answers.
    waiting: Option<Resolver>,
    /// The position the application asked to start from, until the subscription is
    /// confirmed and told whether it was recovered.
    since: Option<StreamPosition>,
}

/// An entry now confirmed: its promise resolves to a `Subscription`.
pub(crate) struct Confirmed {
    pub id: u32,
    pub channel: String,
    pub resolver: Resolver,
}

/// What [`Subscriptions::add`] did with a new subscription.
pub(crate) enum Added {
    /// The channel is new: where the connection can take commands, the caller sends
    /// `subscribe` with [`Subscriptions::request`]'s `since`; otherwise the next
    /// connection's [`Subscriptions::wanted`] picks it up.
    New,
    /// The channel is subscribed on the server already: confirmed at once.
    Confirmed(Confirmed),
    /// It waits for the answer to the channel's `subscribe` in flight, or for the next
    /// connection.
    Waiting,
}

/// What [`Subscriptions::remove`] left behind.
pub(crate) enum Removed {
    /// Other subscriptions still want the channel, or it never reached the server.
    Nothing,
    /// The last subscription of a channel the server subscribed us to went away.
    LastOf(String),
}

impl Subscriptions {
    /// Adds a subscription. `since` is where the application asks it to start (a
    /// position the page was rendered at), reported through `onRecover` once confirmed.
    pub fn add(
        &mut self,
        id: u32,
        channel: &str,
        handlers: Handlers,
        since: Option<StreamPosition>,
        waiting: Resolver,
        calls: &mut Calls,
    ) -> Added {
        let mut entry = Entry {
            id,
            handlers,
            waiting: None,
            since,
        };
        let Some(c) = self.get_mut(channel) else {
            entry.waiting = Some(waiting);
            self.channels.push(Channel {
                name: channel.to_owned(),
                // The first subscription's `since` is the channel's: the server recovers
                // from it.
                position: entry.since.clone(),
                entries: vec![entry],
                requested: false,
                live: false,
                sent: None,
                seen: 0,
            });
            return Added::New;
        };
        if !c.live {
            entry.waiting = Some(waiting);
            c.entries.push(entry);
            return Added::Waiting;
        }
        // The channel's messages already flow: the new subscription gets them from here
        // on. It missed nothing only if it starts where the channel stands.
        if let (Some(since), Some(position)) = (entry.since.take(), &c.position) {
            let recovered = same_stream_position(&since, &position.epoch, position.offset);
            report(&entry.handlers, recovered, position, calls);
        }
        c.entries.push(entry);
        Added::Confirmed(Confirmed {
            id,
            channel: channel.to_owned(),
            resolver: waiting,
        })
    }

    /// Marks a channel as requested on the current connection; returns the `since` to
    /// subscribe with.
    pub fn request(&mut self, channel: &str) -> Since {
        match self.get_mut(channel) {
            Some(c) => c.request(),
            None => Since::Latest,
        }
    }

    /// Every wanted channel with its `since`, to subscribe on a new connection. Marks them
    /// all requested.
    pub fn wanted(&mut self) -> Vec<(String, Since)> {
        self.channels
            .iter_mut()
            .map(|c| (c.name.clone(), c.request()))
            .collect()
    }

    /// The server answered a `subscribe` for `channel`: `Ok(Some(..))` for `resubscribed`,
    /// `Ok(None)` for a plain `subscribed` (a server without streams).
    ///
    /// On success the channel is live, its waiting entries are confirmed (returned, for
    /// their promises to resolve), and every subscription that asked for a position, or
    /// was confirmed on an earlier connection (this is its recovery), hears the outcome
    /// through `onRecover`. On refusal the channel is dropped: waiting entries' promises
    /// are rejected, and the refusal of a channel confirmed earlier (a resubscription
    /// after a reconnect) is reported through `onError`.
    pub fn answered(
        &mut self,
        channel: &str,
        result: Result<Option<Resubscribed>, Rejection>,
        on_error: Option<&Function>,
        calls: &mut Calls,
    ) -> Vec<Confirmed> {
        let Some(at) = self.channels.iter().position(|c| c.name == channel) else {
            return Vec::new();
        };
        let mut confirmed = Vec::new();
        match result {
            Ok(answer) => {
                let Some(c) = self.channels.get_mut(at) else {
                    return confirmed;
                };
                let (recovered, answered) = match answer {
                    Some(r) => (
                        r.recovered,
                        StreamPosition {
                            epoch: r.epoch,
                            offset: r.offset,
                        },
                    ),
                    None => (
                        false,
                        StreamPosition {
                            epoch: String::new(),
                            offset: 0,
                        },
                    ),
                };
                let position = StreamPosition {
                    epoch: answered.epoch.clone(),
                    offset: answered.offset.max(c.seen),
                };
                c.live = true;
                for entry in &mut c.entries {
                    match entry.waiting.take() {
                        Some(resolver) => {
                            if let Some(since) = entry.since.take() {
                                // The server answered for the `since` that was sent; a
                                // subscription that joined the request with another one
                                // missed nothing only if it starts where the answer says.
                                let recovered = if c.sent.as_ref() == Some(&since) {
                                    recovered
                                } else {
                                    same_stream_position(&since, &answered.epoch, answered.offset)
                                };
                                report(&entry.handlers, recovered, &position, calls);
                            }
                            confirmed.push(Confirmed {
                                id: entry.id,
                                channel: channel.to_owned(),
                                resolver,
                            });
                        }
                        // Confirmed on an earlier connection: this was its recovery.
                        None => report(&entry.handlers, recovered, &position, calls),
                    }
                }
                c.position = Some(position);
            }
            Err(rejection) => {
                let error = error::channel_rejection(&rejection, channel);
                let Some(c) = self.take(at) else {
                    return confirmed;
                };
                let mut reported = false;
                for entry in c.entries {
                    match entry.waiting {
                        Some(resolver) => calls.push(&resolver.reject, error.clone()),
                        None if !reported => {
                            if let Some(on_error) = on_error {
                                calls.push(on_error, error.clone());
                            }
                            reported = true;
                        }
                        None => {}
                    }
                }
            }
        }
        confirmed
    }

    /// The server answered an `unsubscribe` for `channel`.
    pub fn unsubscribed(&mut self, channel: &str) {
        if let Some(c) = self.get_mut(channel) {
            c.live = false;
        }
    }

    /// Removes one subscription; its callbacks get nothing further.
    pub fn remove(&mut self, id: u32) -> Removed {
        let Some(at) = self.channel_of(id) else {
            return Removed::Nothing;
        };
        let Some(c) = self.channels.get_mut(at) else {
            return Removed::Nothing;
        };
        c.entries.retain(|e| e.id != id);
        if !c.entries.is_empty() {
            return Removed::Nothing;
        }
        match self.take(at) {
            Some(c) if c.requested => Removed::LastOf(c.name),
            _ => Removed::Nothing,
        }
    }

    /// Hands a publication to every callback of its channel, and moves the channel's
    /// position to it.
    pub fn deliver(
        &mut self,
        channel: &str,
        offset: Option<u64>,
        object: &JsValue,
        calls: &mut Calls,
    ) {
        let Some(c) = self.get_mut(channel) else {
            return;
        };
        if let Some(offset) = offset {
            c.seen = offset;
            // Recovered messages move the position too: should the connection drop before
            // the answer, the next one must not ask for them again.
            if let Some(position) = &mut c.position {
                // A subscription still waiting to hear whether its `since` was recovered,
                // and that stood where the channel stood, has this message too.
                for entry in &mut c.entries {
                    if let Some(since) = entry.since.as_mut().filter(|s| **s == *position) {
                        since.offset = offset;
                    }
                }
                position.offset = offset;
            }
        }
        for entry in &c.entries {
            calls.push(&entry.handlers.on_message, object.clone());
        }
    }

    /// Someone subscribed to a channel with join/leave events.
    pub fn joined(&self, channel: &str, join: &JsValue, calls: &mut Calls) {
        if let Some(c) = self.get(channel) {
            let handlers = c.entries.iter().filter_map(|e| e.handlers.on_join.as_ref());
            push_all(handlers, join, calls);
        }
    }

    /// Someone left a channel with join/leave events.
    pub fn left(&self, channel: &str, leave: &JsValue, calls: &mut Calls) {
        if let Some(c) = self.get(channel) {
            let handlers = c
                .entries
                .iter()
                .filter_map(|e| e.handlers.on_leave.as_ref());
            push_all(handlers, leave, calls);
        }
    }

    /// Where the channel of subscription `id` stands, where it keeps history.
    pub fn position(&self, id: u32) -> Option<&StreamPosition> {
        let c = self.channels.get(self.channel_of(id)?)?;
        c.position.as_ref().filter(|p| !p.epoch.is_empty())
    }

    /// The connection is gone, and every subscription with it.
    pub fn connection_lost(&mut self) {
        for c in &mut self.channels {
            c.requested = false;
            c.live = false;
        }
    }

    /// The client closed: every waiting promise is rejected with `error`, every
    /// subscription ends.
    pub fn close(&mut self, error: &JsValue, calls: &mut Calls) {
        for c in std::mem::take(&mut self.channels) {
            for entry in c.entries {
                if let Some(resolver) = entry.waiting {
                    calls.push(&resolver.reject, error.clone());
                }
            }
        }
    }
}

impl Subscriptions {
    fn get(&self, channel: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == channel)
    }

    fn get_mut(&mut self, channel: &str) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.name == channel)
    }

    /// Removes the channel at `at`. Checked first, so that no panic (with its message
    /// machinery) is linked in for an index that is always valid.
    fn take(&mut self, at: usize) -> Option<Channel> {
        (at < self.channels.len()).then(|| self.channels.swap_remove(at))
    }

    fn channel_of(&self, id: u32) -> Option<usize> {
        self.channels
            .iter()
            .position(|c| c.entries.iter().any(|e| e.id == id))
    }
}

impl Channel {
    fn request(&mut self) -> Since {
        self.requested = true;
        self.sent = self.position.clone();
        self.seen = 0;
        match &self.position {
            Some(position) => Since::Position(position.clone()),
            None => Since::Latest,
        }
    }
}

/// Whether `since` is exactly the position `epoch`/`offset` of a stream (a channel without
/// history has no position to be at).
fn same_stream_position(since: &StreamPosition, epoch: &str, offset: u64) -> bool {
    !epoch.is_empty() && since.epoch == epoch && since.offset == offset
}

/// Tells a subscription's `onRecover` the outcome of a resubscription.
fn report(handlers: &Handlers, recovered: bool, position: &StreamPosition, calls: &mut Calls) {
    if let Some(on_recover) = &handlers.on_recover {
        calls.push(on_recover, message::recovery(recovered, position));
    }
}

/// Hands one object to every handler.
fn push_all<'a>(handlers: impl Iterator<Item = &'a Function>, object: &JsValue, calls: &mut Calls) {
    for handler in handlers {
        calls.push(handler, object.clone());
    }
}
