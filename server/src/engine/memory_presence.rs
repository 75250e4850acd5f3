//! Presence kept in this node's memory: the embedded engine, where the cluster is this node.

use super::{EngineError, PresenceManager, PresenceStats};
use async_trait::async_trait;
use hubbub_core::protocol::PresentClient;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};

/// Presence lists in a map, channel by channel.
#[derive(Default)]
pub struct MemoryPresence {
    channels: Mutex<HashMap<String, HashMap<String, PresentClient>>>,
}

impl MemoryPresence {
    pub fn new() -> MemoryPresence {
        MemoryPresence::default()
    }
}

#[async_trait]
impl PresenceManager for MemoryPresence {
    async fn add(&self, channel: &str, client: &PresentClient) -> Result<(), EngineError> {
        self.channels
            .lock()
            .entry(channel.to_owned())
            .or_default()
            .insert(client.client.clone(), client.clone());
        Ok(())
    }

    async fn remove(&self, channel: &str, client: &str) -> Result<(), EngineError> {
        let mut channels = self.channels.lock();
        if let Some(present) = channels.get_mut(channel) {
            present.remove(client);
            if present.is_empty() {
                channels.remove(channel);
            }
        }
        Ok(())
    }

    async fn list(&self, channel: &str) -> Result<Vec<PresentClient>, EngineError> {
        Ok(self
            .channels
            .lock()
            .get(channel)
            .map(|present| present.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn stats(&self, channel: &str) -> Result<PresenceStats, EngineError> {
        let channels = self.channels.lock();
        let Some(present) = channels.get(channel) else {
            return Ok(PresenceStats::default());
        };
        let users: HashSet<&str> = present.values().filter_map(|c| c.user.as_deref()).collect();
        Ok(PresenceStats {
            clients: present.len(),
            users: users.len(),
        })
    }
}
