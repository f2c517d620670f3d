//! Every key-value operation of the file backend: the same operation on
//! its buckets, with owned arguments for the blocking pool (see
//! [`FileKv::run`]).

use super::FileKv;
use crate::shared::keyvalue::keyspace::{
    Expiry, ExpiryCondition, RenameOutcome, ScanPage, WriteCondition, WriteExpiry, WriteOutcome,
};
use crate::shared::keyvalue::{BucketId, Found, KvError, Swapped};

impl FileKv {
    pub(in crate::shared::keyvalue) async fn get(
        &self,
        id: &BucketId,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.to_owned();
        self.run(id, move |buckets, id| buckets.get(id, &key)).await
    }

    pub(in crate::shared::keyvalue) async fn exists(
        &self,
        id: &BucketId,
        key: &str,
    ) -> Result<bool, KvError> {
        let key = key.to_owned();
        self.run(id, move |buckets, id| buckets.exists(id, &key))
            .await
    }

    pub(in crate::shared::keyvalue) async fn get_many(
        &self,
        id: &BucketId,
        keys: Vec<String>,
    ) -> Result<Found, KvError> {
        self.run(id, move |buckets, id| buckets.get_many(id, keys))
            .await
    }

    pub(in crate::shared::keyvalue) async fn set_many(
        &self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        max: u64,
    ) -> Result<(), KvError> {
        self.run(id, move |buckets, id| buckets.set_many(id, pairs, max))
            .await
    }

    pub(in crate::shared::keyvalue) async fn delete_many(
        &self,
        id: &BucketId,
        keys: Vec<String>,
    ) -> Result<(), KvError> {
        self.run(id, move |buckets, id| buckets.delete_many(id, keys))
            .await
    }

    pub(in crate::shared::keyvalue) async fn list_keys(
        &self,
        id: &BucketId,
        cursor: u64,
        page: usize,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        self.run(id, move |buckets, id| buckets.list_keys(id, cursor, page))
            .await
    }

    pub(in crate::shared::keyvalue) async fn increment(
        &self,
        id: &BucketId,
        key: &str,
        delta: i64,
        max: u64,
    ) -> Result<i64, KvError> {
        let key = key.to_owned();
        self.run(id, move |buckets, id| {
            buckets.increment(id, &key, delta, max)
        })
        .await
    }

    pub(in crate::shared::keyvalue) async fn increment_many(
        &self,
        id: &BucketId,
        deltas: Vec<(String, i64)>,
        max: u64,
    ) -> Result<Vec<Result<i64, KvError>>, KvError> {
        self.run(id, move |buckets, id| {
            buckets.increment_many(id, deltas, max)
        })
        .await
    }

    pub(in crate::shared::keyvalue) async fn swap(
        &self,
        id: &BucketId,
        key: &str,
        seen: Option<Vec<u8>>,
        value: Vec<u8>,
        max: u64,
    ) -> Result<Swapped, KvError> {
        let key = key.to_owned();
        self.run(id, move |buckets, id| {
            buckets.swap(id, &key, seen, value, max)
        })
        .await
    }

    pub(in crate::shared::keyvalue) async fn expiry(
        &self,
        id: &BucketId,
        key: &str,
    ) -> Result<Expiry, KvError> {
        let key = key.to_owned();
        self.run(id, move |buckets, id| buckets.expiry(id, &key))
            .await
    }

    pub(in crate::shared::keyvalue) async fn set_expiry(
        &self,
        id: &BucketId,
        key: &str,
        deadline: Option<u64>,
        condition: ExpiryCondition,
    ) -> Result<bool, KvError> {
        let key = key.to_owned();
        self.run(id, move |buckets, id| {
            buckets.set_expiry(id, &key, deadline, condition)
        })
        .await
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the contract's `write` takes these"
    )]
    pub(in crate::shared::keyvalue) async fn write(
        &self,
        id: &BucketId,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
        expiry: WriteExpiry,
        want_previous: bool,
        max: u64,
    ) -> Result<WriteOutcome, KvError> {
        let key = key.to_owned();
        self.run(id, move |buckets, id| {
            buckets.write(id, &key, value, condition, expiry, want_previous, max)
        })
        .await
    }

    pub(in crate::shared::keyvalue) async fn get_and_expire(
        &self,
        id: &BucketId,
        key: &str,
        deadline: Option<u64>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.to_owned();
        self.run(id, move |buckets, id| {
            buckets.get_and_expire(id, &key, deadline)
        })
        .await
    }

    pub(in crate::shared::keyvalue) async fn take(
        &self,
        id: &BucketId,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.to_owned();
        self.run(id, move |buckets, id| buckets.take(id, &key))
            .await
    }

    pub(in crate::shared::keyvalue) async fn count(&self, id: &BucketId) -> Result<u64, KvError> {
        self.run(id, move |buckets, id| buckets.count(id)).await
    }

    pub(in crate::shared::keyvalue) async fn clear(&self, id: &BucketId) -> Result<(), KvError> {
        self.run(id, move |buckets, id| buckets.clear(id)).await
    }

    pub(in crate::shared::keyvalue) async fn scan(
        &self,
        id: &BucketId,
        cursor: u64,
        pattern: Option<String>,
        count: u32,
    ) -> Result<ScanPage, KvError> {
        self.run(id, move |buckets, id| {
            buckets.scan(id, cursor, pattern, count)
        })
        .await
    }

    pub(in crate::shared::keyvalue) async fn random_key(
        &self,
        id: &BucketId,
    ) -> Result<Option<String>, KvError> {
        self.run(id, move |buckets, id| buckets.random_key(id))
            .await
    }

    pub(in crate::shared::keyvalue) async fn rename(
        &self,
        id: &BucketId,
        from: &str,
        to: &str,
        replace: bool,
        max: u64,
    ) -> Result<RenameOutcome, KvError> {
        let from = from.to_owned();
        let to = to.to_owned();
        self.run(id, move |buckets, id| {
            buckets.rename(id, &from, &to, replace, max)
        })
        .await
    }

    pub(in crate::shared::keyvalue) async fn copy(
        &self,
        id: &BucketId,
        from: &str,
        to: &str,
        replace: bool,
        max: u64,
    ) -> Result<bool, KvError> {
        let from = from.to_owned();
        let to = to.to_owned();
        self.run(id, move |buckets, id| {
            buckets.copy(id, &from, &to, replace, max)
        })
        .await
    }

    pub(in crate::shared::keyvalue) async fn set_many_if_none_exist(
        &self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        max: u64,
    ) -> Result<bool, KvError> {
        self.run(id, move |buckets, id| {
            buckets.set_many_if_none_exist(id, pairs, max)
        })
        .await
    }
}
