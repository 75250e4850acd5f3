//! Presence: who is subscribed to a channel, cluster-wide, where its namespace asks.

use super::EngineError;
use async_trait::async_trait;
use hubbub_core::protocol::PresentClient;

/// How many connections and distinct users a channel has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PresenceStats {
    pub clients: usize,
    /// Anonymous connections are not users.
    pub users: usize,
}

/// The presence lists of every channel.
#[async_trait]
pub trait PresenceManager: Send + Sync + 'static {
    /// Records `client` as present in `channel` (again, with its newest identity).
    async fn add(&self, channel: &str, client: &PresentClient) -> Result<(), EngineError>;

    /// Forgets `client` in `channel`.
    async fn remove(&self, channel: &str, client: &str) -> Result<(), EngineError>;

    /// Everyone present in `channel`.
    async fn list(&self, channel: &str) -> Result<Vec<PresentClient>, EngineError>;

    /// How many are present in `channel`.
    async fn stats(&self, channel: &str) -> Result<PresenceStats, EngineError>;

    /// How often a node must add its subscribers again for them to stay present, where
    /// entries expire (so that those of a node that died go away); `None` where they
    /// do not.
    fn refresh_every(&self) -> Option<std::time::Duration> {
        None
    }
}
