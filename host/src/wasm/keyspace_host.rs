//! `wasmserve:handler/keyspace` (contract 0.2.3, `increment-many` 0.2.4)
//! for guests: expiry, conditional writes, count, clear, scan and
//! multi-key steps on a bucket
//! the guest opened through `wasi:keyvalue/store`. Converts the contract's
//! types to the shared layer's and back.

use wasmtime::component::Resource;

use super::bindings::current::keyspace;
use super::bindings::current::keyvalue::store;
use super::state::InstanceState;
use crate::shared::Bucket;
use crate::shared::keyvalue::{
    Expiry, ExpiryCondition, RenameOutcome, WriteCondition, WriteExpiry,
};

type KvResult<T> = wasmtime::Result<Result<T, store::Error>>;

impl From<keyspace::ExpiryCondition> for ExpiryCondition {
    fn from(flags: keyspace::ExpiryCondition) -> Self {
        Self {
            if_none: flags.contains(keyspace::ExpiryCondition::IF_NONE),
            if_some: flags.contains(keyspace::ExpiryCondition::IF_SOME),
            if_later: flags.contains(keyspace::ExpiryCondition::IF_LATER),
            if_earlier: flags.contains(keyspace::ExpiryCondition::IF_EARLIER),
        }
    }
}

impl From<keyspace::WriteCondition> for WriteCondition {
    fn from(condition: keyspace::WriteCondition) -> Self {
        match condition {
            keyspace::WriteCondition::Always => Self::Always,
            keyspace::WriteCondition::IfAbsent => Self::IfAbsent,
            keyspace::WriteCondition::IfPresent => Self::IfPresent,
            keyspace::WriteCondition::IfEqual(bytes) => Self::IfEqual(bytes),
        }
    }
}

impl From<keyspace::WriteExpiry> for WriteExpiry {
    fn from(expiry: keyspace::WriteExpiry) -> Self {
        match expiry {
            keyspace::WriteExpiry::Clear => Self::Clear,
            keyspace::WriteExpiry::Keep => Self::Keep,
            keyspace::WriteExpiry::At(at) => Self::At(at),
        }
    }
}

impl keyspace::Host for InstanceState {
    async fn get_expiry(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> KvResult<keyspace::Expiry> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket
            .expiry(&key)
            .await
            .map(|expiry| match expiry {
                Expiry::Absent => keyspace::Expiry::Absent,
                Expiry::Persistent => keyspace::Expiry::Persistent,
                Expiry::At(at) => keyspace::Expiry::At(at),
            })
            .map_err(Into::into))
    }

    async fn set_expiry(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        deadline: Option<u64>,
        condition: keyspace::ExpiryCondition,
    ) -> KvResult<bool> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket
            .set_expiry(&key, deadline, condition.into())
            .await
            .map_err(Into::into))
    }

    async fn write(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
        condition: keyspace::WriteCondition,
        expiry: keyspace::WriteExpiry,
        want_previous: bool,
    ) -> KvResult<keyspace::WriteOutcome> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket
            .write(&key, value, condition.into(), expiry.into(), want_previous)
            .await
            .map(|outcome| keyspace::WriteOutcome {
                written: outcome.written,
                previous: outcome.previous,
            })
            .map_err(Into::into))
    }

    async fn get_and_expire(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        deadline: Option<u64>,
    ) -> KvResult<Option<Vec<u8>>> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket
            .get_and_expire(&key, deadline)
            .await
            .map_err(Into::into))
    }

    async fn take(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.take(&key).await.map_err(Into::into))
    }

    async fn count(&mut self, bucket: Resource<Bucket>) -> KvResult<u64> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.count().await.map_err(Into::into))
    }

    async fn clear(&mut self, bucket: Resource<Bucket>) -> KvResult<()> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.clear().await.map_err(Into::into))
    }

    async fn scan(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: u64,
        pattern: Option<String>,
        count: u32,
    ) -> KvResult<keyspace::ScanPage> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket
            .scan(cursor, pattern, count)
            .await
            .map(|page| keyspace::ScanPage {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(Into::into))
    }

    async fn random_key(&mut self, bucket: Resource<Bucket>) -> KvResult<Option<String>> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.random_key().await.map_err(Into::into))
    }

    async fn rename(
        &mut self,
        bucket: Resource<Bucket>,
        from: String,
        to: String,
        replace: bool,
    ) -> KvResult<keyspace::RenameOutcome> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket
            .rename(&from, &to, replace)
            .await
            .map(|outcome| match outcome {
                RenameOutcome::Renamed => keyspace::RenameOutcome::Renamed,
                RenameOutcome::NoSuchKey => keyspace::RenameOutcome::NoSuchKey,
                RenameOutcome::TargetExists => keyspace::RenameOutcome::TargetExists,
            })
            .map_err(Into::into))
    }

    async fn copy(
        &mut self,
        bucket: Resource<Bucket>,
        from: String,
        to: String,
        replace: bool,
    ) -> KvResult<bool> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.copy(&from, &to, replace).await.map_err(Into::into))
    }

    async fn set_many_if_none_exist(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<bool> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket
            .set_many_if_none_exist(key_values)
            .await
            .map_err(Into::into))
    }

    async fn increment_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_deltas: Vec<(String, i64)>,
    ) -> KvResult<Vec<Result<i64, store::Error>>> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket
            .increment_many(key_deltas)
            .await
            .map(|outcomes| {
                outcomes
                    .into_iter()
                    .map(|outcome| outcome.map_err(Into::into))
                    .collect()
            })
            .map_err(Into::into))
    }
}
