//! The channels the application wants, and who gets their messages.
//!
//! A channel is wanted while at least one `Subscription` on it is alive. The registry
//! outlives connections: after a reconnect every wanted channel is subscribed again, and
//! subscriptions made while offline wait here for the next connection.

use crate::connection::{Calls, Resolver};
use crate::error;
use hubbub_core::protocol::Message;
use hubbub_core::Rejection;
use js_sys::Function;

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
}

struct Entry {
    id: u32,
    on_message: Function,
    /// The `subscribe()` promise, until the server answers.
    waiting: Option<Resolver>,
}

/// An entry the server confirmed: its promise resolves to a `Subscription`.
pub(crate) struct Confirmed {
    pub id: u32,
    pub channel: String,
    pub resolver: Resolver,
}

/// What `remove` left behind.
pub(crate) enum Removed {
    /// Other subscriptions still want the channel, or it never reached the server.
    Nothing,
    /// The last subscription of a channel the server subscribed us to went away.
    LastOf(String),
}

impl Subscriptions {
    /// Adds a subscription waiting for the server's answer. Where the connection can
    /// take commands, the caller then sends `subscribe` and calls
    /// [`Subscriptions::requested`]; otherwise the next connection's [`Subscriptions::wanted`]
    /// picks it up.
    pub fn add(&mut self, id: u32, channel: &str, on_message: Function, waiting: Resolver) {
        let entry = Entry {
            id,
            on_message,
            waiting: Some(waiting),
        };
        match self.get_mut(channel) {
            Some(c) => c.entries.push(entry),
            None => self.channels.push(Channel {
                name: channel.to_owned(),
                entries: vec![entry],
                requested: false,
                live: false,
            }),
        }
    }

    /// Marks a channel as requested on the current connection.
    pub fn requested(&mut self, channel: &str) {
        if let Some(c) = self.get_mut(channel) {
            c.requested = true;
        }
    }

    /// Every wanted channel, to subscribe on a new connection, with the entries waiting
    /// for an answer. Marks them all requested.
    pub fn wanted(&mut self) -> Vec<(String, Vec<u32>)> {
        self.channels
            .iter_mut()
            .map(|c| {
                c.requested = true;
                (c.name.clone(), c.waiting_ids())
            })
            .collect()
    }

    /// The server answered a `subscribe` for `channel` sent on behalf of the entries `ids`.
    ///
    /// On success the channel is live and those entries are confirmed (returned, for their
    /// promises to resolve). On refusal those entries' promises are rejected; entries that
    /// were confirmed on an earlier connection (a resubscription after a reconnect) are
    /// dropped and the refusal is reported through `onError`.
    pub fn answered(
        &mut self,
        channel: &str,
        ids: &[u32],
        result: Result<(), Rejection>,
        on_error: Option<&Function>,
        calls: &mut Calls,
    ) -> Vec<Confirmed> {
        let Some(c) = self.get_mut(channel) else {
            return Vec::new();
        };
        let mut confirmed = Vec::new();
        match result {
            Ok(()) => {
                c.live = true;
                for entry in c.entries.iter_mut().filter(|e| ids.contains(&e.id)) {
                    if let Some(resolver) = entry.waiting.take() {
                        confirmed.push(Confirmed {
                            id: entry.id,
                            channel: channel.to_owned(),
                            resolver,
                        });
                    }
                }
            }
            Err(rejection) => {
                let error = error::channel_rejection(&rejection, channel);
                let was_live = c.live;
                let mut reported = false;
                c.entries.retain_mut(|entry| {
                    if ids.contains(&entry.id) {
                        if let Some(resolver) = entry.waiting.take() {
                            calls.push(&resolver.reject, error.clone());
                            return false;
                        }
                    }
                    if was_live || entry.waiting.is_some() {
                        return true;
                    }
                    if !reported {
                        if let Some(on_error) = on_error {
                            calls.push(on_error, error.clone());
                        }
                        reported = true;
                    }
                    false
                });
                if c.entries.is_empty() {
                    self.channels.retain(|c| c.name != channel);
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

    /// Removes one subscription; its callback gets no further messages.
    pub fn remove(&mut self, id: u32) -> Removed {
        let Some(at) = self
            .channels
            .iter()
            .position(|c| c.entries.iter().any(|e| e.id == id))
        else {
            return Removed::Nothing;
        };
        let c = &mut self.channels[at];
        c.entries.retain(|e| e.id != id);
        if !c.entries.is_empty() {
            return Removed::Nothing;
        }
        let c = self.channels.swap_remove(at);
        if c.requested {
            Removed::LastOf(c.name)
        } else {
            Removed::Nothing
        }
    }

    /// Hands a publication to every callback of its channel.
    pub fn deliver(&self, message: &Message, calls: &mut Calls) {
        let Some(c) = self.channels.iter().find(|c| c.name == message.channel) else {
            return;
        };
        let object = crate::message::message(message);
        for entry in &c.entries {
            calls.push(&entry.on_message, object.clone());
        }
    }

    /// The connection is gone, and every subscription with it.
    pub fn connection_lost(&mut self) {
        for c in &mut self.channels {
            c.requested = false;
            c.live = false;
        }
    }

    /// The client closed: every waiting promise is rejected, every subscription ends.
    pub fn close(&mut self, error: &wasm_bindgen::JsValue, calls: &mut Calls) {
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
    fn get_mut(&mut self, channel: &str) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.name == channel)
    }
}

impl Channel {
    fn waiting_ids(&self) -> Vec<u32> {
        self.entries
            .iter()
            .filter(|e| e.waiting.is_some())
            .map(|e| e.id)
            .collect()
    }
}
