//! The `keyspace` operations on the `redis://` backend: Redis's own
//! commands on the prefixed keys (`PEXPIREAT`, `GETEX`, `GETDEL`,
//! `RENAME`, `COPY`, `MSETNX`, `SCAN`), so Redis's clock and its own active
//! expiry do the work; a conditional write is one Lua script, atomic in
//! Redis. Counting and clearing a bucket scan its prefix.

use std::hash::{BuildHasher, RandomState};

use super::BucketId;
use super::KvError;
use super::keyspace::{
    Expiry, ExpiryCondition, RenameOutcome, ScanPage, WriteCondition, WriteExpiry, WriteOutcome,
};
use super::redis::{RedisKv, glob_escaped};

/// `SET KEYS[1] ARGV[1]` if the condition `ARGV[2]` (`always`, `absent`,
/// `present`, `equal` to `ARGV[3]`) holds, with the deadline `ARGV[4]`
/// (`clear`, `keep`, `at` `ARGV[5]`); returns whether it wrote and the
/// value before.
const WRITE_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
local condition = ARGV[2]
local allowed = condition == 'always'
  or (condition == 'absent' and not current)
  or (condition == 'present' and current)
  or (condition == 'equal' and current == ARGV[3])
if not allowed then return {0, current} end
if ARGV[4] == 'keep' then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
elseif ARGV[4] == 'at' then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return {1, current}
";

/// Keys a `SCAN` of the whole database looks at per call when counting,
/// clearing or picking a random key.
const SCAN_BATCH: u32 = 1000;

impl RedisKv {
    fn prefix(id: &BucketId) -> String {
        Self::key(id, "")
    }

    /// One `SCAN` batch of the bucket's keys (full Redis keys) from
    /// `cursor`, and the next cursor (0 at the end).
    async fn batch(&self, id: &BucketId, cursor: u64) -> Result<(u64, Vec<String>), KvError> {
        let pattern = format!("{}*", glob_escaped(&Self::prefix(id)));
        self.run(
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_BATCH),
        )
        .await
    }

    pub(super) async fn expiry(&self, id: &BucketId, key: &str) -> Result<Expiry, KvError> {
        let at: i64 = self
            .run(redis::cmd("PEXPIRETIME").arg(Self::key(id, key)))
            .await?;
        Ok(match at {
            -2 => Expiry::Absent,
            -1 => Expiry::Persistent,
            at => Expiry::At(u64::try_from(at).unwrap_or(0)),
        })
    }

    pub(super) async fn set_expiry(
        &self,
        id: &BucketId,
        key: &str,
        deadline: Option<u64>,
        condition: ExpiryCondition,
    ) -> Result<bool, KvError> {
        let key = Self::key(id, key);
        let Some(at) = deadline else {
            // Removing a deadline: only a key that has one changes, and
            // "never" is never earlier than it.
            if condition.if_none || condition.if_earlier {
                return Ok(false);
            }
            let changed: i64 = self.run(redis::cmd("PERSIST").arg(key)).await?;
            return Ok(changed == 1);
        };
        let mut command = redis::cmd("PEXPIREAT");
        command.arg(key).arg(at);
        for (set, flag) in [
            (condition.if_none, "NX"),
            (condition.if_some, "XX"),
            (condition.if_later, "GT"),
            (condition.if_earlier, "LT"),
        ] {
            if set {
                command.arg(flag);
            }
        }
        let changed: i64 = self.run(&command).await?;
        Ok(changed == 1)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the contract's `write` takes these"
    )]
    pub(super) async fn write(
        &self,
        id: &BucketId,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
        expiry: WriteExpiry,
        want_previous: bool,
        _max: u64,
    ) -> Result<WriteOutcome, KvError> {
        let (condition, expected) = match condition {
            WriteCondition::Always => ("always", Vec::new()),
            WriteCondition::IfAbsent => ("absent", Vec::new()),
            WriteCondition::IfPresent => ("present", Vec::new()),
            WriteCondition::IfEqual(expected) => ("equal", expected),
        };
        let (mode, at) = match expiry {
            WriteExpiry::Clear => ("clear", 0),
            WriteExpiry::Keep => ("keep", 0),
            WriteExpiry::At(at) => ("at", at),
        };
        let (written, previous): (i64, Option<Vec<u8>>) = self
            .run(
                redis::cmd("EVAL")
                    .arg(WRITE_SCRIPT)
                    .arg(1)
                    .arg(Self::key(id, key))
                    .arg(value)
                    .arg(condition)
                    .arg(expected)
                    .arg(mode)
                    .arg(at.max(1)),
            )
            .await?;
        Ok(WriteOutcome {
            written: written == 1,
            previous: previous.filter(|_| want_previous),
        })
    }

    pub(super) async fn get_and_expire(
        &self,
        id: &BucketId,
        key: &str,
        deadline: Option<u64>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let mut command = redis::cmd("GETEX");
        command.arg(Self::key(id, key));
        match deadline {
            Some(at) => command.arg("PXAT").arg(at.max(1)),
            None => command.arg("PERSIST"),
        };
        self.run(&command).await
    }

    pub(super) async fn take(&self, id: &BucketId, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.run(redis::cmd("GETDEL").arg(Self::key(id, key))).await
    }

    pub(super) async fn count(&self, id: &BucketId) -> Result<u64, KvError> {
        let (mut cursor, mut count) = (0, 0u64);
        loop {
            let (next, keys) = self.batch(id, cursor).await?;
            count += keys.len() as u64;
            if next == 0 {
                return Ok(count);
            }
            cursor = next;
        }
    }

    pub(super) async fn clear(&self, id: &BucketId) -> Result<(), KvError> {
        let mut cursor = 0;
        loop {
            let (next, keys) = self.batch(id, cursor).await?;
            if !keys.is_empty() {
                self.run::<()>(redis::cmd("UNLINK").arg(keys)).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    pub(super) async fn scan(
        &self,
        id: &BucketId,
        cursor: u64,
        pattern: Option<String>,
        count: u32,
    ) -> Result<ScanPage, KvError> {
        let prefix = Self::prefix(id);
        let pattern = format!(
            "{}{}",
            glob_escaped(&prefix),
            pattern.as_deref().unwrap_or("*")
        );
        let (cursor, keys): (u64, Vec<String>) = self
            .run(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        let keys = keys
            .into_iter()
            .filter_map(|key| key.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        Ok(ScanPage { keys, cursor })
    }

    pub(super) async fn random_key(&self, id: &BucketId) -> Result<Option<String>, KvError> {
        // A scan from a random place first (any cursor is a place in
        // Redis's table), then from the start.
        let start = RandomState::new().hash_one(id);
        for cursor in [start, 0] {
            let mut cursor = cursor;
            loop {
                let page = self.scan(id, cursor, None, SCAN_BATCH).await?;
                if let Some(key) = page.keys.into_iter().next() {
                    return Ok(Some(key));
                }
                if page.cursor == 0 {
                    break;
                }
                cursor = page.cursor;
            }
        }
        Ok(None)
    }

    pub(super) async fn rename(
        &self,
        id: &BucketId,
        from: &str,
        to: &str,
        replace: bool,
        _max: u64,
    ) -> Result<RenameOutcome, KvError> {
        let command = if replace { "RENAME" } else { "RENAMENX" };
        let renamed: Result<redis::Value, KvError> = self
            .run(
                redis::cmd(command)
                    .arg(Self::key(id, from))
                    .arg(Self::key(id, to)),
            )
            .await;
        match renamed {
            Ok(redis::Value::Int(0)) => Ok(RenameOutcome::TargetExists),
            Ok(_) => Ok(RenameOutcome::Renamed),
            Err(KvError::Backend(message)) if message.contains("no such key") => {
                Ok(RenameOutcome::NoSuchKey)
            }
            Err(err) => Err(err),
        }
    }

    pub(super) async fn copy(
        &self,
        id: &BucketId,
        from: &str,
        to: &str,
        replace: bool,
        _max: u64,
    ) -> Result<bool, KvError> {
        if from == to {
            return Ok(false);
        }
        let mut command = redis::cmd("COPY");
        command.arg(Self::key(id, from)).arg(Self::key(id, to));
        if replace {
            command.arg("REPLACE");
        }
        let copied: i64 = self.run(&command).await?;
        Ok(copied == 1)
    }

    pub(super) async fn set_many_if_none_exist(
        &self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        _max: u64,
    ) -> Result<bool, KvError> {
        if pairs.is_empty() {
            return Ok(true);
        }
        let mut command = redis::cmd("MSETNX");
        for (key, value) in &pairs {
            command.arg(Self::key(id, key)).arg(value.as_slice());
        }
        let set: i64 = self.run(&command).await?;
        Ok(set == 1)
    }
}
