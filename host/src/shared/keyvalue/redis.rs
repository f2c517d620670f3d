//! The `redis://` backend: each bucket's keys are Redis keys
//! `wasmserve:ACCOUNT/BUCKET:KEY`, so several wasmserve hosts share them.
//!
//! One multiplexed connection per Redis URL (redis-rs's
//! `ConnectionManager`, which reconnects by itself after Redis restarts);
//! every command is bounded by [`REDIS_TIMEOUT`], so while Redis is down a
//! guest gets an error naming it within that time, never a hang.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{BucketId, Found, KvError, Swapped};

/// The longest a key-value call waits for Redis.
pub(crate) const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets `KEYS[1]` to `ARGV[2]` if it still holds `ARGV[1]` (or, when
/// `ARGV[3]` is `absent`, if it is still absent); returns 1 if it set it.
const SWAP_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[3] == 'absent' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
";

/// A Redis database holding buckets.
#[derive(Clone)]
pub(crate) struct RedisKv {
    connection: ConnectionManager,
    /// The URL without a password, for messages.
    shown: String,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// The connection settings every Redis connection of the host uses.
pub(crate) fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500))
}

/// What [`query`] sends: one command, or a pipeline (a transaction).
pub(crate) trait Query: Sync {
    /// Sends it on `connection` and reads the answer.
    fn send<T: redis::FromRedisValue>(
        &self,
        connection: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send;
}

impl Query for redis::Cmd {
    fn send<T: redis::FromRedisValue>(
        &self,
        connection: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(connection)
    }
}

impl Query for redis::Pipeline {
    fn send<T: redis::FromRedisValue>(
        &self,
        connection: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(connection)
    }
}

/// Runs `command` on `connection` within [`REDIS_TIMEOUT`] (`Err(None)`
/// when it ran out). A command that failed because the connection had
/// dropped (Redis restarted) is sent once more: the manager reconnects at
/// such a failure, and the guest should not see an error once Redis is
/// back.
pub(crate) async fn query<T: redis::FromRedisValue>(
    connection: &ConnectionManager,
    command: &impl Query,
) -> Result<T, Option<redis::RedisError>> {
    let attempts = async {
        let mut connection = connection.clone();
        match command.send(&mut connection).await {
            Err(err) if err.is_io_error() || err.is_connection_dropped() => {
                command.send(&mut connection).await
            }
            done => done,
        }
    };
    match tokio::time::timeout(REDIS_TIMEOUT, attempts).await {
        Ok(result) => result.map_err(Some),
        Err(_) => Err(None),
    }
}

impl RedisKv {
    /// A lazily connected backend for `client` (the first command
    /// connects; a failure is the guest's error, not the host's).
    pub(crate) fn new(client: redis::Client, shown: String) -> Result<Self, String> {
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config())
            .map_err(|err| format!("{shown}: {err}"))?;
        Ok(Self { connection, shown })
    }

    pub(super) fn key(id: &BucketId, key: &str) -> String {
        format!("wasmserve:{}:{key}", id.full)
    }

    /// Runs `command`, bounded in time, with errors that name Redis.
    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        command: &impl Query,
    ) -> Result<T, KvError> {
        match query(&self.connection, command).await {
            Ok(value) => Ok(value),
            Err(Some(err)) => Err(self.failure(&err)),
            Err(None) => Err(KvError::Backend(format!(
                "redis at {}: no answer within {REDIS_TIMEOUT:?}",
                self.shown
            ))),
        }
    }

    /// What Redis's `err` means to a guest.
    fn failure(&self, err: &redis::RedisError) -> KvError {
        let text = err.to_string();
        if text.contains("not an integer") {
            KvError::NotAnInteger
        } else if text.contains("would overflow") {
            KvError::Overflow
        } else {
            KvError::Backend(format!("redis at {}: {err}", self.shown))
        }
    }

    pub(super) async fn get(&self, id: &BucketId, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.run(redis::cmd("GET").arg(Self::key(id, key))).await
    }

    pub(super) async fn exists(&self, id: &BucketId, key: &str) -> Result<bool, KvError> {
        self.run(redis::cmd("EXISTS").arg(Self::key(id, key))).await
    }

    pub(super) async fn get_many(
        &self,
        id: &BucketId,
        keys: Vec<String>,
    ) -> Result<Found, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut command = redis::cmd("MGET");
        for key in &keys {
            command.arg(Self::key(id, key));
        }
        let values: Vec<Option<Vec<u8>>> = self.run(&command).await?;
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(key, value)| value.map(|value| (key, value)))
            .collect())
    }

    pub(super) async fn set_many(
        &self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        _max: u64,
    ) -> Result<(), KvError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut command = redis::cmd("MSET");
        for (key, value) in &pairs {
            command.arg(Self::key(id, key)).arg(value.as_slice());
        }
        self.run::<()>(&command).await
    }

    pub(super) async fn delete_many(
        &self,
        id: &BucketId,
        keys: Vec<String>,
    ) -> Result<(), KvError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut command = redis::cmd("DEL");
        for key in &keys {
            command.arg(Self::key(id, key));
        }
        self.run::<()>(&command).await
    }

    pub(super) async fn list_keys(
        &self,
        id: &BucketId,
        cursor: u64,
        page: usize,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let page = u32::try_from(page).unwrap_or(u32::MAX);
        let found = self.scan(id, cursor, None, page).await?;
        Ok((found.keys, (found.cursor != 0).then_some(found.cursor)))
    }

    pub(super) async fn increment(
        &self,
        id: &BucketId,
        key: &str,
        delta: i64,
        _max: u64,
    ) -> Result<i64, KvError> {
        self.run(redis::cmd("INCRBY").arg(Self::key(id, key)).arg(delta))
            .await
    }

    /// `increment-many`: one `INCRBY` per key in one transaction
    /// (`MULTI`/`EXEC`, which Redis runs without interleaving); a key that
    /// fails has its own error and the others still apply, as in Redis.
    pub(super) async fn increment_many(
        &self,
        id: &BucketId,
        deltas: Vec<(String, i64)>,
        _max: u64,
    ) -> Result<Vec<Result<i64, KvError>>, KvError> {
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        let mut transaction = redis::pipe();
        transaction.atomic().ignore_errors();
        for (key, delta) in &deltas {
            transaction
                .cmd("INCRBY")
                .arg(Self::key(id, key))
                .arg(*delta);
        }
        let results: Vec<redis::RedisResult<i64>> = self.run(&transaction).await?;
        Ok(results
            .into_iter()
            .map(|result| result.map_err(|err| self.failure(&err)))
            .collect())
    }

    pub(super) async fn swap(
        &self,
        id: &BucketId,
        key: &str,
        seen: Option<Vec<u8>>,
        value: Vec<u8>,
        _max: u64,
    ) -> Result<Swapped, KvError> {
        let absent = if seen.is_some() { "present" } else { "absent" };
        let swapped: i64 = self
            .run(
                redis::cmd("EVAL")
                    .arg(SWAP_SCRIPT)
                    .arg(1)
                    .arg(Self::key(id, key))
                    .arg(seen.unwrap_or_default())
                    .arg(value)
                    .arg(absent),
            )
            .await?;
        Ok(swapped == 1)
    }
}

/// `text` with Redis's glob characters escaped, for `SCAN MATCH`.
pub(super) fn glob_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
