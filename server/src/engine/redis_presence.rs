//! Presence kept in Redis, shared by every node. Each channel is a hash of client id to
//! the client's JSON, with a sorted set of when each entry expires: a node refreshes the
//! entries of its own subscribers, so that those of a node that died go away by
//! themselves.
//!
//! Keys, under the configured prefix `P`: `P:p:<channel>` (the hash) and `P:pe:<channel>`
//! (the expiries).

use super::{EngineError, PresenceManager, PresenceStats};
use async_trait::async_trait;
use hubbub_core::protocol::PresentClient;
use redis::aio::ConnectionManager;
use std::collections::HashSet;
use std::time::Duration;

/// How long an entry lives without being refreshed.
pub const PRESENCE_TTL: Duration = Duration::from_secs(60);

/// Drops expired entries, then lists the rest: KEYS hash, expiries; ARGV now in ms.
const LIST: &str = r#"
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
end
return redis.call('HVALS', KEYS[1])
"#;

/// Presence in Redis.
pub struct RedisPresence {
    redis: ConnectionManager,
    prefix: String,
    list: redis::Script,
}

fn failed(e: redis::RedisError) -> EngineError {
    EngineError(format!("redis: {e}"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl RedisPresence {
    pub fn new(redis: ConnectionManager, prefix: &str) -> RedisPresence {
        RedisPresence {
            redis,
            prefix: prefix.to_owned(),
            list: redis::Script::new(LIST),
        }
    }

    fn keys(&self, channel: &str) -> (String, String) {
        hubbub_core::engine::presence_keys(&self.prefix, channel)
    }
}

#[async_trait]
impl PresenceManager for RedisPresence {
    async fn add(&self, channel: &str, client: &PresentClient) -> Result<(), EngineError> {
        let (hash, expiries) = self.keys(channel);
        let json = serde_json::to_string(client).expect("clients serialize");
        let ttl = PRESENCE_TTL.as_millis() as u64;
        let _: () = redis::pipe()
            .atomic()
            .hset(&hash, &client.client, json)
            .ignore()
            .zadd(&expiries, &client.client, now_ms() + ttl)
            .ignore()
            .pexpire(&hash, ttl as i64)
            .ignore()
            .pexpire(&expiries, ttl as i64)
            .ignore()
            .query_async(&mut self.redis.clone())
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn remove(&self, channel: &str, client: &str) -> Result<(), EngineError> {
        let (hash, expiries) = self.keys(channel);
        let _: () = redis::pipe()
            .atomic()
            .hdel(&hash, client)
            .ignore()
            .zrem(&expiries, client)
            .ignore()
            .query_async(&mut self.redis.clone())
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn list(&self, channel: &str) -> Result<Vec<PresentClient>, EngineError> {
        let (hash, expiries) = self.keys(channel);
        let values: Vec<String> = self
            .list
            .key(hash)
            .key(expiries)
            .arg(now_ms())
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(failed)?;
        Ok(values
            .iter()
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect())
    }

    async fn stats(&self, channel: &str) -> Result<PresenceStats, EngineError> {
        let present = self.list(channel).await?;
        let users: HashSet<&str> = present.iter().filter_map(|c| c.user.as_deref()).collect();
        Ok(PresenceStats {
            clients: present.len(),
            users: users.len(),
        })
    }

    fn refresh_every(&self) -> Option<Duration> {
        Some(PRESENCE_TTL / 3)
    }
}
