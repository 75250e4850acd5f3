//! Model-based property tests of the [`Hub`]: any interleaving of what the server does to
//! it (connect, subscribe, subscribe with recovery and its end, unsubscribe, identity
//! changes, publish, disconnect, dropping what may no longer be read) is run against the
//! hub and against a plain model of what it promises, and after every step the two must
//! agree on every delivery, every answer and every count.
//!
//! What the model says, in short: a publication reaches exactly the live subscribers of
//! that moment, each once, in order; a recovering subscriber gets it once when its
//! recovery finishes if its offset is past the recovery point (or it has none), and loses
//! its subscription instead when more came meanwhile than the hub keeps; a subscriber that
//! cannot take a delivery is skipped, never retried; a gone client holds nothing and
//! receives nothing.

use hubbub_core::hub::{Hub, Left, Subscribed, Subscriber};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Publication ids, in the order they were published.
type Frame = u64;

/// A connection's queue: bounded like the server's, so that "could not take it" is part
/// of what is tested.
#[derive(Clone)]
struct Inbox {
    received: Arc<Mutex<Vec<Frame>>>,
    room: usize,
}

impl Subscriber for Inbox {
    type Frame = Frame;

    fn deliver(&self, frame: &Frame) -> bool {
        let mut received = self.received.lock().unwrap();
        if received.len() >= self.room {
            return false;
        }
        received.push(*frame);
        true
    }
}

const CHANNELS: [&str; 4] = ["news", "room:1", "room:2", "log"];
/// Channels 0 and 3 keep history (publications carry offsets); the others do not.
fn keeps_history(channel: usize) -> bool {
    channel == 0 || channel == 3
}
const USERS: [&str; 3] = ["ann", "bob", "cy"];
/// Small, so that overflowing a recovery happens within a few steps.
const RECOVERY_LIMIT: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// A new connection whose queue holds `room` frames.
    Connect {
        room: usize,
    },
    Subscribe {
        client: usize,
        channel: usize,
        max: usize,
    },
    SubscribeRecovering {
        client: usize,
        channel: usize,
        max: usize,
    },
    /// Finishes a recovery at `back` offsets before the channel's last one.
    FinishRecovery {
        client: usize,
        channel: usize,
        back: u64,
    },
    Unsubscribe {
        client: usize,
        channel: usize,
    },
    SetUser {
        client: usize,
        user: Option<usize>,
    },
    Publish {
        channel: usize,
    },
    Disconnect {
        client: usize,
    },
    /// Keeps the channels whose bit is set in `keep`.
    Retain {
        client: usize,
        keep: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    // Clients are named by index into every connection made so far (gone ones included,
    // so that calls about gone clients are tried too); the index is taken modulo.
    let c = 0..8usize;
    let ch = 0..CHANNELS.len();
    prop_oneof![
        2 => prop_oneof![Just(2usize), Just(100)].prop_map(|room| Op::Connect { room }),
        4 => (c.clone(), ch.clone(), 1..4usize)
            .prop_map(|(client, channel, max)| Op::Subscribe { client, channel, max }),
        2 => (c.clone(), ch.clone(), 1..4usize).prop_map(|(client, channel, max)| {
            Op::SubscribeRecovering { client, channel, max }
        }),
        2 => (c.clone(), ch.clone(), 0..4u64)
            .prop_map(|(client, channel, back)| Op::FinishRecovery { client, channel, back }),
        2 => (c.clone(), ch.clone()).prop_map(|(client, channel)| Op::Unsubscribe { client, channel }),
        1 => (c.clone(), proptest::option::of(0..USERS.len()))
            .prop_map(|(client, user)| Op::SetUser { client, user }),
        5 => ch.prop_map(|channel| Op::Publish { channel }),
        1 => c.clone().prop_map(|client| Op::Disconnect { client }),
        1 => (c, any::<u8>()).prop_map(|(client, keep)| Op::Retain { client, keep }),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Sub {
    Live,
    Recovering {
        waiting: Vec<(Option<u64>, Frame)>,
        overflowed: bool,
    },
}

struct ModelClient {
    connected: bool,
    room: usize,
    user: Option<usize>,
    subs: BTreeMap<usize, Sub>,
    received: Vec<Frame>,
}

impl ModelClient {
    fn take(&mut self, frame: Frame) -> bool {
        if self.received.len() >= self.room {
            return false;
        }
        self.received.push(frame);
        true
    }
}

#[derive(Default)]
struct Model {
    clients: Vec<ModelClient>,
    next_frame: Frame,
    /// The last offset of each channel that keeps history.
    offsets: [u64; CHANNELS.len()],
}

impl Model {
    fn subscribers(&self, channel: usize) -> usize {
        self.clients
            .iter()
            .filter(|c| c.connected && c.subs.contains_key(&channel))
            .count()
    }

    /// What the hub answers to a subscribe, and the model's new state.
    fn subscribe(
        &mut self,
        client: usize,
        channel: usize,
        max: usize,
        recover: bool,
    ) -> Subscribed {
        let first = self.subscribers(channel) == 0;
        let c = &mut self.clients[client];
        if !c.connected {
            return Subscribed::Already;
        }
        let outcome = if c.subs.contains_key(&channel) {
            Subscribed::Already
        } else if c.subs.len() >= max {
            return Subscribed::LimitExceeded;
        } else {
            Subscribed::New { first }
        };
        if recover {
            // A new recovery starts afresh, whatever the subscription was.
            let fresh = Sub::Recovering {
                waiting: Vec::new(),
                overflowed: false,
            };
            c.subs.insert(channel, fresh);
        } else {
            c.subs.entry(channel).or_insert(Sub::Live);
        }
        outcome
    }

    fn left(&mut self, client: usize, channels: Vec<usize>) -> BTreeSet<(usize, bool)> {
        let mut out = BTreeSet::new();
        for channel in channels {
            self.clients[client].subs.remove(&channel);
            out.insert((channel, self.subscribers(channel) == 0));
        }
        out
    }
}

fn id(client: usize) -> String {
    format!("client-{client}")
}

fn channel_index(name: &str) -> usize {
    CHANNELS.iter().position(|c| *c == name).unwrap()
}

fn lefts(left: Vec<Left>) -> BTreeSet<(usize, bool)> {
    left.into_iter()
        .map(|l| (channel_index(&l.channel), l.last))
        .collect()
}

/// Runs `ops` against a hub and the model, comparing after every step.
fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut hub: Hub<Inbox> = Hub::with_recovery_limit(RECOVERY_LIMIT);
    let mut model = Model::default();
    let mut inboxes: Vec<Inbox> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        // Client indexes refer to connections made so far; before the first, only
        // Connect and Publish mean anything.
        let pick = |c: usize| (!model.clients.is_empty()).then(|| c % model.clients.len());
        match op {
            Op::Connect { room } => {
                let n = model.clients.len();
                let inbox = Inbox {
                    received: Arc::default(),
                    room,
                };
                hub.connect(id(n).into(), inbox.clone());
                inboxes.push(inbox);
                model.clients.push(ModelClient {
                    connected: true,
                    room,
                    user: None,
                    subs: BTreeMap::new(),
                    received: Vec::new(),
                });
            }
            Op::Subscribe {
                client,
                channel,
                max,
            }
            | Op::SubscribeRecovering {
                client,
                channel,
                max,
            } => {
                let Some(c) = pick(client) else { continue };
                let recover = matches!(op, Op::SubscribeRecovering { .. });
                let got = if recover {
                    hub.subscribe_recovering(&id(c), CHANNELS[channel], max)
                } else {
                    hub.subscribe(&id(c), CHANNELS[channel], max)
                };
                let want = model.subscribe(c, channel, max, recover);
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
            }
            Op::FinishRecovery {
                client,
                channel,
                back,
            } => {
                let Some(c) = pick(client) else { continue };
                let after = model.offsets[channel].saturating_sub(back);
                let got = hub.finish_recovery(&id(c), CHANNELS[channel], after);
                let mc = &mut model.clients[c];
                let want = match mc.subs.get(&channel).cloned() {
                    Some(Sub::Recovering {
                        waiting,
                        overflowed,
                    }) if mc.connected => {
                        let delivered = !overflowed
                            && waiting
                                .iter()
                                .filter(|(offset, _)| offset.is_none_or(|o| o > after))
                                .all(|&(_, frame)| mc.take(frame));
                        if delivered {
                            mc.subs.insert(channel, Sub::Live);
                        } else {
                            mc.subs.remove(&channel);
                        }
                        Some(delivered)
                    }
                    _ => None,
                };
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
            }
            Op::Unsubscribe { client, channel } => {
                let Some(c) = pick(client) else { continue };
                let got = hub
                    .unsubscribe(&id(c), CHANNELS[channel])
                    .map(|l| (channel_index(&l.channel), l.last));
                let want =
                    if model.clients[c].connected && model.clients[c].subs.contains_key(&channel) {
                        model.left(c, vec![channel]).into_iter().next()
                    } else {
                        None
                    };
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
            }
            Op::SetUser { client, user } => {
                let Some(c) = pick(client) else { continue };
                hub.set_user(&id(c), user.map(|u| USERS[u].to_owned()));
                if model.clients[c].connected {
                    model.clients[c].user = user;
                }
            }
            Op::Publish { channel } => {
                let frame = model.next_frame;
                model.next_frame += 1;
                let offset = keeps_history(channel).then(|| {
                    model.offsets[channel] += 1;
                    model.offsets[channel]
                });
                let got = hub.publish(CHANNELS[channel], &frame, offset);
                let mut want = 0;
                for mc in model.clients.iter_mut().filter(|c| c.connected) {
                    let Some(sub) = mc.subs.get_mut(&channel) else {
                        continue;
                    };
                    match sub {
                        Sub::Live => want += usize::from(mc.take(frame)),
                        Sub::Recovering {
                            waiting,
                            overflowed,
                        } => {
                            if waiting.len() >= RECOVERY_LIMIT {
                                *overflowed = true;
                                waiting.clear();
                            } else if !*overflowed {
                                waiting.push((offset, frame));
                                want += 1;
                            }
                        }
                    }
                }
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
            }
            Op::Disconnect { client } => {
                let Some(c) = pick(client) else { continue };
                let gone = hub.disconnect(&id(c));
                if model.clients[c].connected {
                    let gone = gone.expect("a connected client is forgotten once");
                    let user = model.clients[c].user.map(|u| USERS[u].to_owned());
                    prop_assert_eq!(gone.user, user);
                    let channels: Vec<usize> = model.clients[c].subs.keys().copied().collect();
                    model.clients[c].connected = false;
                    let want = model.left(c, channels);
                    prop_assert_eq!(lefts(gone.left), want, "step {}: {:?}", step, op);
                } else {
                    prop_assert!(gone.is_none(), "step {}: a gone client left twice", step);
                }
            }
            Op::Retain { client, keep } => {
                let Some(c) = pick(client) else { continue };
                let kept = |ch: usize| keep & (1 << ch) != 0;
                let got = lefts(hub.retain_subscriptions(&id(c), |name| kept(channel_index(name))));
                let dropped: Vec<usize> = if model.clients[c].connected {
                    model.clients[c]
                        .subs
                        .keys()
                        .copied()
                        .filter(|&ch| !kept(ch))
                        .collect()
                } else {
                    Vec::new()
                };
                let want = model.left(c, dropped);
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
            }
        }
        agree(&hub, &model, &inboxes, step)?;
    }
    Ok(())
}

/// Everything the hub tells from outside matches the model.
fn agree(
    hub: &Hub<Inbox>,
    model: &Model,
    inboxes: &[Inbox],
    step: usize,
) -> Result<(), TestCaseError> {
    let connected = model.clients.iter().filter(|c| c.connected).count();
    prop_assert_eq!(hub.connection_count(), connected, "step {}", step);
    for (n, (mc, inbox)) in model.clients.iter().zip(inboxes).enumerate() {
        // Every delivery, gone clients' included: exactly these frames, each once, in order.
        let received = inbox.received.lock().unwrap().clone();
        prop_assert_eq!(
            &received,
            &mc.received,
            "step {}: deliveries of client {}",
            step,
            n
        );
        let subs: BTreeSet<usize> = hub
            .subscriptions(&id(n))
            .iter()
            .map(|c| channel_index(c))
            .collect();
        let want: BTreeSet<usize> = mc.subs.keys().copied().collect();
        prop_assert_eq!(&subs, &want, "step {}: subscriptions of client {}", step, n);
        prop_assert_eq!(hub.subscription_count(&id(n)), want.len());
        prop_assert_eq!(hub.client(&id(n)).is_some(), mc.connected);
        for (ch, name) in CHANNELS.iter().enumerate() {
            prop_assert_eq!(hub.is_subscribed(&id(n), name), want.contains(&ch));
        }
        if !mc.connected {
            prop_assert!(
                mc.subs.is_empty(),
                "the model kept a gone client's subscriptions"
            );
        }
    }
    let mut channels = 0;
    for (ch, name) in CHANNELS.iter().enumerate() {
        let n = model.subscribers(ch);
        channels += usize::from(n > 0);
        prop_assert_eq!(
            hub.subscriber_count(name),
            n,
            "step {}: subscribers of {}",
            step,
            name
        );
        prop_assert_eq!(hub.has_subscribers(name), n > 0);
    }
    prop_assert_eq!(
        hub.channel_count(),
        channels,
        "step {}: channel count",
        step
    );
    let listed: BTreeMap<String, usize> = hub.channels().map(|(c, n)| (c.to_owned(), n)).collect();
    prop_assert_eq!(listed.len(), channels);
    prop_assert!(
        listed.values().all(|&n| n > 0),
        "a channel without subscribers is listed"
    );
    for (u, user) in USERS.iter().enumerate() {
        let ids: BTreeSet<String> = hub
            .user_client_ids(user)
            .iter()
            .map(|i| i.to_string())
            .collect();
        let want: BTreeSet<String> = model
            .clients
            .iter()
            .enumerate()
            .filter(|(_, c)| c.connected && c.user == Some(u))
            .map(|(n, _)| id(n))
            .collect();
        prop_assert_eq!(ids, want, "step {}: connections of {}", step, user);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_hub_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..120)) {
        check(ops)?;
    }
}

/// One hand-written interleaving of the cases that matter most, so that a failure of the
/// model itself shows without shrinking.
#[test]
fn a_known_interleaving() {
    let ops = vec![
        Op::Connect { room: 100 },
        Op::Connect { room: 2 },
        Op::Subscribe {
            client: 0,
            channel: 0,
            max: 3,
        },
        Op::SubscribeRecovering {
            client: 1,
            channel: 0,
            max: 3,
        },
        Op::Publish { channel: 0 },
        Op::Publish { channel: 0 },
        Op::FinishRecovery {
            client: 1,
            channel: 0,
            back: 1,
        },
        Op::Publish { channel: 0 },
        Op::Publish { channel: 0 },
        Op::SetUser {
            client: 0,
            user: Some(0),
        },
        Op::Retain { client: 0, keep: 0 },
        Op::Disconnect { client: 1 },
        Op::Publish { channel: 0 },
    ];
    check(ops).unwrap();
}
