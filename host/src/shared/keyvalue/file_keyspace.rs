//! The `keyspace` operations on the `file:PATH` backend: not built yet.
//! Each answers the guest with an error that says so (issue 32), so a
//! handler that needs them fails plainly rather than wrongly; the memory
//! and Redis backends have them.

use super::keyspace::{
    Expiry, ExpiryCondition, RenameOutcome, ScanPage, WriteCondition, WriteExpiry, WriteOutcome,
};
use super::{BucketId, FileKv, KvError};

fn unsupported<T>(operation: &str) -> Result<T, KvError> {
    Err(KvError::Backend(format!(
        "keyspace.{operation} is not available with --state file:PATH yet; use memory or redis://"
    )))
}

impl FileKv {
    pub(super) async fn expiry(&self, _id: &BucketId, _key: &str) -> Result<Expiry, KvError> {
        unsupported("get-expiry")
    }

    pub(super) async fn set_expiry(
        &self,
        _id: &BucketId,
        _key: &str,
        _deadline: Option<u64>,
        _condition: ExpiryCondition,
    ) -> Result<bool, KvError> {
        unsupported("set-expiry")
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the contract's `write` takes these"
    )]
    pub(super) async fn write(
        &self,
        _id: &BucketId,
        _key: &str,
        _value: Vec<u8>,
        _condition: WriteCondition,
        _expiry: WriteExpiry,
        _want_previous: bool,
        _max: u64,
    ) -> Result<WriteOutcome, KvError> {
        unsupported("write")
    }

    pub(super) async fn get_and_expire(
        &self,
        _id: &BucketId,
        _key: &str,
        _deadline: Option<u64>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        unsupported("get-and-expire")
    }

    pub(super) async fn take(
        &self,
        _id: &BucketId,
        _key: &str,
    ) -> Result<Option<Vec<u8>>, KvError> {
        unsupported("take")
    }

    pub(super) async fn count(&self, _id: &BucketId) -> Result<u64, KvError> {
        unsupported("count")
    }

    pub(super) async fn clear(&self, _id: &BucketId) -> Result<(), KvError> {
        unsupported("clear")
    }

    pub(super) async fn scan(
        &self,
        _id: &BucketId,
        _cursor: u64,
        _pattern: Option<String>,
        _count: u32,
    ) -> Result<ScanPage, KvError> {
        unsupported("scan")
    }

    pub(super) async fn random_key(&self, _id: &BucketId) -> Result<Option<String>, KvError> {
        unsupported("random-key")
    }

    pub(super) async fn rename(
        &self,
        _id: &BucketId,
        _from: &str,
        _to: &str,
        _replace: bool,
        _max: u64,
    ) -> Result<RenameOutcome, KvError> {
        unsupported("rename")
    }

    pub(super) async fn copy(
        &self,
        _id: &BucketId,
        _from: &str,
        _to: &str,
        _replace: bool,
        _max: u64,
    ) -> Result<bool, KvError> {
        unsupported("copy")
    }

    pub(super) async fn set_many_if_none_exist(
        &self,
        _id: &BucketId,
        _pairs: Vec<(String, Vec<u8>)>,
        _max: u64,
    ) -> Result<bool, KvError> {
        unsupported("set-many-if-none-exist")
    }
}
