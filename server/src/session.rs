//! One client's session: its identity and what each of its commands does.
//!
//! [`Session::handle`] is the one place a client frame is read ([`Command::parse`]) and
//! applied; each command has its own method below. Answers are queued in the order the
//! commands came, on the same queue as deliveries. A command may await the engine; the
//! connection keeps pinging and watching for shutdown meanwhile (see `connection.rs`).

use crate::metrics::{CommandLabel, METRICS};
use crate::node::{Node, Recovery};
use crate::outbox::{encode, encode_message, ClientHandle, Frame, Outbound};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hubbub_core::api::Target;
use hubbub_core::auth::Identity;
use hubbub_core::hooks::{
    EventKind, EventNotice, RpcAnswer, RpcRequest, SubscribeAnswer, SubscribeRequest,
    MAX_CLIENTS_LISTED,
};
use hubbub_core::hub::{ClientId, Subscribed};
use hubbub_core::protocol::{close, PresentClient, RawJson, Since};
use hubbub_core::protocol::{
    Broadcast, ChannelRef, Command, Credentials, Direct, HistoryPage, HistoryQuery, Presence,
    Resubscribed, ServerFrame, Subscribe, True,
};
use hubbub_core::protocol::{Message, Rpc, RpcResult};
use hubbub_core::{Error, Rejection};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the reader does after a command.
pub enum Step {
    Continue,
    Stop,
}

/// Failed `authenticate` commands one connection may send; the next failure closes it
/// (1008): enough for a mistyped secret, far too few to guess one.
const MAX_FAILED_LOGINS: u32 = 5;

/// Bytes of answers one connection may have waiting to be written. A command's answer
/// waits for room, so a client that keeps sending commands and never reads is held to
/// this much (and closed by its ping timeout), whatever the size of its commands.
const ANSWER_BUDGET: usize = 1 << 20;

type Answer = Result<ServerFrame, Rejection>;

pub struct Session {
    node: Arc<Node>,
    id: ClientId,
    identity: Identity,
    /// The identity as others see it in presence and join/leave frames.
    present: PresentClient,
    /// When the identity's token expires, if it came from a token with `exp`.
    expires: Option<SystemTime>,
    failed_logins: u32,
    /// The connection's queue, through which answers go out too.
    handle: ClientHandle,
    rate: Option<DefaultDirectRateLimiter>,
    answer_budget: Arc<tokio::sync::Semaphore>,
    /// Frames that go out right after the current command's answer (a subscribe hook's
    /// initial messages).
    after_answer: Vec<Frame>,
}

impl Session {
    /// A session for a new connection: anonymous, or whoever the app's connect hook said
    /// it is (`identified`, with when that ends).
    pub fn new(
        node: Arc<Node>,
        id: ClientId,
        handle: ClientHandle,
        identified: Option<(Identity, Option<SystemTime>)>,
    ) -> Session {
        let rate = NonZeroU32::new(node.config.client_rate)
            .map(|per_second| RateLimiter::direct(Quota::per_second(per_second)));
        let (identity, expires) = identified.unwrap_or_else(|| (node.auth.anonymous(), None));
        Session {
            present: present(&id, &identity),
            identity,
            expires,
            after_answer: Vec::new(),
            failed_logins: 0,
            node,
            id,
            handle,
            rate,
            answer_budget: Arc::new(tokio::sync::Semaphore::new(ANSWER_BUDGET)),
        }
    }

    /// Who this session is, as others see it.
    pub fn present(&self) -> &PresentClient {
        &self.present
    }

    /// When the session's token expires, if it does.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
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
        METRICS
            .commands
            .get_or_create(&CommandLabel {
                command: command.label(),
            })
            .inc();
        let answer = match command {
            Command::Authenticate(credentials) => self.authenticate(&credentials).await,
            Command::Subscribe(subscribe) => self.subscribe(subscribe).await,
            Command::Unsubscribe(ChannelRef { channel }) => self.unsubscribe(channel).await,
            Command::Broadcast(broadcast) => self.broadcast(broadcast).await,
            Command::Direct(direct) => self.direct(direct).await,
            Command::Logout(True) => self.logout().await,
            Command::Disconnect(True) => {
                let _ = self
                    .handle
                    .outbox()
                    .send(Outbound::Close(close::NORMAL, ""))
                    .await;
                return Step::Stop;
            }
            Command::Ping(value) => Ok(ServerFrame::Pong(value)),
            Command::Presence(ChannelRef { channel }) => self.presence(channel).await,
            Command::History(query) => self.history(query).await,
            Command::Rpc(rpc) => self.rpc(rpc).await,
            Command::Unknown(name) => {
                Err(Error::UnknownCommand.because(format!("unknown command {name:?}")))
            }
        };
        if self.failed_logins > MAX_FAILED_LOGINS {
            let _ = self.answer(answer).await;
            let _ = self
                .handle
                .outbox()
                .send(Outbound::Close(close::POLICY, "too many failed logins"))
                .await;
            return Step::Stop;
        }
        self.answer(answer).await
    }

    /// Answers a frame that could not be run.
    pub async fn refuse(&mut self, rejection: Rejection) -> Step {
        self.answer(Err(rejection)).await
    }

    async fn answer(&mut self, answer: Answer) -> Step {
        let failed = answer.is_err();
        let frame = encode(&answer.unwrap_or_else(|r| {
            METRICS.error(r.error.name());
            ServerFrame::Err(r.into())
        }));
        METRICS.sent("answer", 1, frame.len());
        // An answer larger than the whole budget takes all of it.
        let share = frame.len().clamp(1, ANSWER_BUDGET) as u32;
        let Ok(permit) = self.answer_budget.clone().acquire_many_owned(share).await else {
            return Step::Stop;
        };
        let answer = Outbound::Answer(Box::new((frame, permit)));
        if self.handle.outbox().send(answer).await.is_err() {
            return Step::Stop;
        }
        let after = std::mem::take(&mut self.after_answer);
        if !failed {
            for frame in after {
                if self
                    .handle
                    .outbox()
                    .send(Outbound::Frame(frame))
                    .await
                    .is_err()
                {
                    return Step::Stop;
                }
            }
        }
        Step::Continue
    }

    /// Tells the app (where it listens for events) what this connection did.
    fn notify(&self, event: EventKind, channel: Option<String>, clients: (Vec<String>, usize)) {
        if let Some(hooks) = &self.node.hooks {
            hooks.notify(EventNotice {
                event,
                client: self.id.to_string(),
                user: self.identity.user.clone(),
                channel,
                clients_in_channel: clients.0,
                clients_count: clients.1,
            });
        }
    }

    async fn authenticate(&mut self, credentials: &Credentials) -> Answer {
        let (identity, exp) = match self.node.auth.authenticate_with_expiry(credentials) {
            Ok(found) => found,
            Err(rejection) => {
                self.failed_logins += 1;
                return Err(rejection);
            }
        };
        let user = identity.user.clone().unwrap_or_default();
        self.expires = exp.map(|exp| UNIX_EPOCH + Duration::from_secs(exp));
        self.assume_identity(identity).await;
        Ok(ServerFrame::Authenticated(user))
    }

    async fn logout(&mut self) -> Answer {
        self.notify(EventKind::Logout, None, (Vec::new(), 0));
        self.expires = None;
        self.assume_identity(self.node.auth.anonymous()).await;
        Ok(ServerFrame::LoggedOut(True))
    }

    /// Takes on a new identity, dropping the subscriptions it may not read and showing it
    /// in the presence of the others.
    async fn assume_identity(&mut self, identity: Identity) {
        self.node.set_user(&self.id, identity.user.clone());
        let old = std::mem::replace(&mut self.present, present(&self.id, &identity));
        let permissions = identity.permissions.clone();
        self.node
            .retain_subscriptions(&self.id, |c| permissions.can_read(c), &old)
            .await;
        self.identity = identity;
        self.node.refresh_presence(&self.id, &self.present).await;
    }

    fn may_read(&self, channel: &str) -> Result<(), Rejection> {
        if self.identity.permissions.can_read(channel) {
            Ok(())
        } else {
            Err(Error::AccessDenied.because(format!("no read permission on {channel:?}")))
        }
    }

    /// History and presence: where the app decides subscriptions (`subscribe_hook`), only a
    /// subscriber it allowed may look, whatever the read patterns say (they do not decide
    /// there); elsewhere, read permission.
    fn may_look(&self, channel: &str) -> Result<(), Rejection> {
        if !self.node.namespace(channel).subscribe_hook {
            return self.may_read(channel);
        }
        if self.node.is_subscribed(&self.id, channel) {
            Ok(())
        } else {
            Err(Error::AccessDenied.because(format!(
                "the app decides who reads {channel:?}: subscribe first"
            )))
        }
    }

    /// A hook call that failed: the details (the app's URL, its status, the error) go to
    /// the log, where an operator acts on them; the client learns only that the app could
    /// not answer, not where the app lives inside the network.
    fn app_failed(&self, hook: &'static str, failure: &crate::hooks::HookFailure) -> Rejection {
        tracing::warn!(client = %self.id, hook, "app hook failed: {}", failure.reason());
        Error::Unavailable.because(format!("the app did not answer the {hook} hook"))
    }

    fn limit_exceeded(&self) -> Rejection {
        Error::LimitExceeded.because(format!(
            "at most {} subscriptions per connection",
            self.node.config.max_channels_per_client
        ))
    }

    async fn subscribe(&mut self, Subscribe { channel, since }: Subscribe) -> Answer {
        if self.node.namespace(&channel).subscribe_hook {
            self.ask_the_app(&channel).await?;
        } else {
            self.may_read(&channel)?;
        }
        let keeps_history = self.node.namespace(&channel).stream.keeps_history();
        let (subscribed, answer) = match since {
            Some(since) if keeps_history => return self.resubscribe(channel, since).await,
            // No stream: nothing to recover, and no position to give.
            Some(_) => {
                let subscribed = self.node.subscribe(&self.id, &channel).await?;
                let answer = ServerFrame::Resubscribed(Resubscribed {
                    channel: channel.clone(),
                    recovered: false,
                    epoch: String::new(),
                    offset: 0,
                });
                (subscribed, answer)
            }
            None => {
                let subscribed = self.node.subscribe(&self.id, &channel).await?;
                (subscribed, ServerFrame::Subscribed(channel.clone()))
            }
        };
        match subscribed {
            Subscribed::LimitExceeded => return Err(self.limit_exceeded()),
            Subscribed::New { .. } => self.node.joined(&channel, &self.present).await?,
            Subscribed::Already => {}
        }
        Ok(answer)
    }

    /// `subscribe` with `since` on a channel that keeps history: the recovered messages
    /// are queued before the answer, and what was published meanwhile right after them.
    async fn resubscribe(&mut self, channel: String, since: Since) -> Answer {
        let position = match &since {
            Since::Latest => None,
            Since::Position(position) => Some(position),
        };
        let Recovery {
            recovered,
            position,
            messages,
        } = match self
            .node
            .start_recovery(&self.id, &channel, position)
            .await?
        {
            Ok(recovery) => recovery,
            Err(_) => return Err(self.limit_exceeded()),
        };
        for message in &messages {
            if self
                .handle
                .outbox()
                .send(Outbound::Frame(encode_message(message)))
                .await
                .is_err()
            {
                break;
            }
        }
        if self
            .node
            .finish_recovery(&self.id, &self.handle, &channel, position.offset)
            .await
        {
            self.node.joined(&channel, &self.present).await?;
        }
        Ok(ServerFrame::Resubscribed(Resubscribed {
            channel,
            recovered,
            epoch: position.epoch,
            offset: position.offset,
        }))
    }

    /// In a namespace with `subscribe_hook`, the app decides who subscribes: allowed, its
    /// initial messages go to this subscriber alone, right after the answer.
    async fn ask_the_app(&mut self, channel: &str) -> Result<(), Rejection> {
        let Some((hooks, url)) = self
            .node
            .hooks
            .as_ref()
            .and_then(|h| Some((h, h.config.subscribe_url.as_ref()?)))
        else {
            return Err(Error::Unavailable.because("no subscribe hook is configured"));
        };
        let (clients_in_channel, clients_count) = self
            .node
            .clients_in_channel(channel, MAX_CLIENTS_LISTED)
            .await?;
        let request = SubscribeRequest {
            client: self.id.to_string(),
            user: self.identity.user.clone(),
            info: self.present.info.clone(),
            channel: channel.to_owned(),
            clients_in_channel,
            clients_count,
        };
        let answer: SubscribeAnswer = hooks
            .call(url, &request)
            .await
            .map_err(|f| self.app_failed("subscribe", &f))?;
        if !answer.allow {
            return Err(Error::AccessDenied.because(
                answer
                    .reason
                    .unwrap_or_else(|| format!("the app refused {channel:?}")),
            ));
        }
        self.after_answer = answer
            .messages
            .into_iter()
            .map(|m| {
                encode_message(&Message {
                    channel: channel.to_owned(),
                    event: m.event,
                    data: m.data,
                    offset: None,
                    from: None,
                })
            })
            .collect();
        Ok(())
    }

    async fn unsubscribe(&mut self, channel: String) -> Answer {
        let was = self
            .node
            .unsubscribe(&self.id, &channel, Some(&self.present))
            .await;
        if was && self.node.hooks.is_some() {
            let clients = self
                .node
                .clients_in_channel(&channel, MAX_CLIENTS_LISTED)
                .await
                .unwrap_or_default();
            self.notify(EventKind::Unsubscribe, Some(channel.clone()), clients);
        }
        Ok(ServerFrame::Unsubscribed(channel))
    }

    /// A command of the app's own, forwarded with this connection's identity.
    async fn rpc(&mut self, Rpc { method, data }: Rpc) -> Answer {
        let Some((hooks, url)) = self
            .node
            .hooks
            .as_ref()
            .and_then(|h| Some((h, h.config.rpc_url.as_ref()?)))
        else {
            return Err(Error::UnknownCommand
                .because("rpc is not available: the hub has no rpc_url to forward it to"));
        };
        let request = RpcRequest {
            client: self.id.to_string(),
            user: self.identity.user.clone(),
            info: self.present.info.clone(),
            method: method.clone(),
            data,
        };
        let answer: RpcAnswer = hooks
            .call(url, &request)
            .await
            .map_err(|f| self.app_failed("rpc", &f))?;
        if answer.data.is_none() && answer.error.is_none() {
            return Err(
                Error::Unavailable.because("the app's rpc answer has neither data nor error")
            );
        }
        Ok(ServerFrame::RpcResult(RpcResult {
            method,
            data: if answer.error.is_some() {
                None
            } else {
                answer.data
            },
            error: answer.error,
        }))
    }

    async fn broadcast(
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
        if !self.node.has_subscribers(&channel).await? {
            return Err(
                Error::InvalidChannel.because(format!("nobody is subscribed to {channel:?}"))
            );
        }
        self.node
            .publish(&channel, event, data, self.identity.user.clone())
            .await?;
        crate::metrics::published_by("client");
        Ok(ServerFrame::Broadcasted(channel))
    }

    async fn direct(
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
            .await?
            == 0
        {
            return Err(Error::InvalidClient.because(format!("no client {:?}", target.name())));
        }
        Ok(ServerFrame::DirectSent(target.name().to_owned()))
    }

    async fn presence(&mut self, channel: String) -> Answer {
        self.may_look(&channel)?;
        if !self.node.namespace(&channel).presence {
            return Err(no_presence(&channel));
        }
        let clients = self.node.presence(&channel).await?;
        Ok(ServerFrame::Presence(Presence { channel, clients }))
    }

    async fn history(
        &mut self,
        HistoryQuery {
            channel,
            limit,
            since,
        }: HistoryQuery,
    ) -> Answer {
        self.may_look(&channel)?;
        if !self.node.namespace(&channel).stream.keeps_history() {
            return Err(no_history(&channel));
        }
        let filter = crate::engine::HistoryFilter {
            since,
            limit: limit.map(|l| l as usize),
        };
        let history = self.node.history(&channel, filter).await?;
        Ok(ServerFrame::History(HistoryPage {
            channel,
            epoch: history.position.epoch,
            offset: history.position.offset,
            messages: history.messages,
        }))
    }
}

/// A session's identity as others see it in presence and join/leave frames.
fn present(id: &str, identity: &Identity) -> PresentClient {
    PresentClient {
        client: id.to_owned(),
        user: identity.user.clone(),
        info: identity
            .info
            .as_ref()
            .and_then(|info| RawJson::from_value(info).ok()),
    }
}

/// The refusal of `history` on a channel no namespace keeps history for.
pub fn no_history(channel: &str) -> Rejection {
    Error::InvalidChannel.because(format!(
        "{channel:?} keeps no history (no namespace with history_size matches it)"
    ))
}

/// The refusal of `presence` on a channel no namespace enables presence for.
pub fn no_presence(channel: &str) -> Rejection {
    Error::InvalidChannel.because(format!(
        "{channel:?} has no presence (no namespace with presence = true matches it)"
    ))
}
