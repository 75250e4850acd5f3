//! One client's session: its identity and what each of its commands does.
//!
//! [`Session::handle`] is the one place a client frame is read ([`Command::parse`]) and
//! applied; each command has its own method below. Answers are queued in the order the
//! commands came, on the same queue as deliveries.

use crate::connection::{encode, Outbound};
use crate::node::Node;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hubbub_core::api::Target;
use hubbub_core::auth::Identity;
use hubbub_core::hub::{ClientId, Subscribed};
use hubbub_core::protocol::close;
use hubbub_core::protocol::{
    Broadcast, ChannelRef, Command, Credentials, Direct, Resubscribed, ServerFrame, Subscribe, True,
};
use hubbub_core::{Error, Rejection};
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the reader does after a command.
pub enum Step {
    Continue,
    Stop,
}

type Answer = Result<ServerFrame, Rejection>;

pub struct Session {
    node: Arc<Node>,
    id: ClientId,
    identity: Identity,
    tx: mpsc::Sender<Outbound>,
    rate: Option<DefaultDirectRateLimiter>,
}

impl Session {
    pub fn new(node: Arc<Node>, id: ClientId, tx: mpsc::Sender<Outbound>) -> Session {
        let rate = NonZeroU32::new(node.config.client_rate)
            .map(|per_second| RateLimiter::direct(Quota::per_second(per_second)));
        Session {
            identity: node.auth.anonymous(),
            node,
            id,
            tx,
            rate,
        }
    }

    /// Reads and runs one client frame, queueing its answer.
    pub async fn handle(&mut self, text: &str) -> Step {
        if let Some(rate) = &self.rate {
            if rate.check().is_err() {
                return self.refuse(Error::RateLimited.into()).await;
            }
        }
        let command = match Command::parse(text) {
            Ok(command) => command,
            Err(rejection) => return self.refuse(rejection).await,
        };
        let answer = match command {
            Command::Authenticate(credentials) => self.authenticate(&credentials),
            Command::Subscribe(subscribe) => self.subscribe(subscribe),
            Command::Unsubscribe(ChannelRef { channel }) => self.unsubscribe(channel),
            Command::Broadcast(broadcast) => self.broadcast(broadcast),
            Command::Direct(direct) => self.direct(direct),
            Command::Logout(True) => self.logout(),
            Command::Disconnect(True) => {
                let _ = self.tx.send(Outbound::Close(close::NORMAL, "")).await;
                return Step::Stop;
            }
            Command::Ping(value) => Ok(ServerFrame::Pong(value)),
            Command::Presence(_) | Command::History(_) | Command::Rpc(_) => {
                Err(Error::UnknownCommand.because(format!(
                    "{} is not available on this server",
                    command.name()
                )))
            }
            Command::Unknown(name) => {
                Err(Error::UnknownCommand.because(format!("unknown command {name:?}")))
            }
        };
        self.answer(answer).await
    }

    /// Answers a frame that could not be run.
    pub async fn refuse(&mut self, rejection: Rejection) -> Step {
        self.answer(Err(rejection)).await
    }

    /// Queues a WebSocket ping (never waits: a full queue means one is not needed).
    pub fn ping(&self) {
        let _ = self.tx.try_send(Outbound::Ping);
    }

    async fn answer(&mut self, answer: Answer) -> Step {
        let frame = answer.unwrap_or_else(|r| ServerFrame::Err(r.into()));
        match self.tx.send(Outbound::Frame(encode(&frame))).await {
            Ok(()) => Step::Continue,
            Err(_) => Step::Stop,
        }
    }

    fn authenticate(&mut self, credentials: &Credentials) -> Answer {
        let identity = self.node.auth.authenticate(credentials)?;
        let user = identity.user.clone().unwrap_or_default();
        self.assume_identity(identity);
        Ok(ServerFrame::Authenticated(user))
    }

    fn logout(&mut self) -> Answer {
        self.assume_identity(self.node.auth.anonymous());
        Ok(ServerFrame::LoggedOut(True))
    }

    /// Takes on a new identity, dropping the subscriptions it may not read.
    fn assume_identity(&mut self, identity: Identity) {
        self.node.set_user(&self.id, identity.user.clone());
        let permissions = identity.permissions.clone();
        self.node
            .retain_subscriptions(&self.id, |c| permissions.can_read(c));
        self.identity = identity;
    }

    fn subscribe(&mut self, Subscribe { channel, since }: Subscribe) -> Answer {
        if !self.identity.permissions.can_read(&channel) {
            return Err(Error::AccessDenied.because(format!("no read permission on {channel:?}")));
        }
        match self.node.subscribe(&self.id, &channel) {
            Subscribed::LimitExceeded => Err(Error::LimitExceeded.because(format!(
                "at most {} subscriptions per connection",
                self.node.config.max_channels_per_client
            ))),
            // This node keeps no history, so a gap after a reconnect cannot be filled.
            Subscribed::New | Subscribed::Already if since.is_some() => {
                Ok(ServerFrame::Resubscribed(Resubscribed {
                    channel,
                    recovered: false,
                    epoch: String::new(),
                    offset: 0,
                }))
            }
            Subscribed::New | Subscribed::Already => Ok(ServerFrame::Subscribed(channel)),
        }
    }

    fn unsubscribe(&mut self, channel: String) -> Answer {
        self.node.unsubscribe(&self.id, &channel);
        Ok(ServerFrame::Unsubscribed(channel))
    }

    fn broadcast(
        &mut self,
        Broadcast {
            event,
            channel,
            data,
        }: Broadcast,
    ) -> Answer {
        if !self.identity.permissions.can_write(&channel) {
            return Err(Error::AccessDenied.because(format!("no write permission on {channel:?}")));
        }
        if !self.node.has_subscribers(&channel) {
            return Err(
                Error::InvalidChannel.because(format!("nobody is subscribed to {channel:?}"))
            );
        }
        self.node
            .publish(&channel, event, data, self.identity.user.clone());
        Ok(ServerFrame::Broadcasted(channel))
    }

    fn direct(
        &mut self,
        Direct {
            event,
            client,
            data,
        }: Direct,
    ) -> Answer {
        if self.identity.is_anonymous() {
            return Err(
                Error::AccessDenied.because("direct messages need an authenticated session")
            );
        }
        let target = Target::Client(client);
        // Nobody took it: the client is unknown, gone, or being closed as too slow.
        if self
            .node
            .direct(&target, event, data, self.identity.user.clone())
            == 0
        {
            return Err(Error::InvalidClient.because(format!("no client {:?}", target.name())));
        }
        Ok(ServerFrame::DirectSent(target.name().to_owned()))
    }
}
