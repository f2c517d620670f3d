//! `wasi:keyvalue@0.2.0-draft2` for guests: `store`, `atomics` and `batch`
//! over the service's buckets (`crate::shared`). Buckets and CAS tickets
//! are host handles, counted against the instance's [`super::state::MAX_HANDLES`].

use wasmtime::component::Resource;

use super::bindings::current::keyvalue::{atomics, batch, store};
use super::state::InstanceState;
use crate::shared::{Bucket, KvError};

/// A `cas` resource: the key and the value it held when the ticket was
/// made; `swap` succeeds only if it still holds that value.
#[derive(Debug)]
pub struct CasTicket {
    bucket: Bucket,
    key: String,
    seen: Option<Vec<u8>>,
}

impl From<KvError> for store::Error {
    fn from(err: KvError) -> Self {
        match err {
            KvError::NoSuchBucket(_) => Self::NoSuchStore,
            other => Self::Other(other.to_string()),
        }
    }
}

type KvResult<T> = wasmtime::Result<Result<T, store::Error>>;

impl InstanceState {
    pub(super) fn bucket(&self, this: &Resource<Bucket>) -> wasmtime::Result<Bucket> {
        Ok(self.table.get(this)?.clone())
    }
}

impl store::Host for InstanceState {
    async fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        match self.env.share.store.open(&identifier) {
            Ok(bucket) => Ok(Ok(self.table.push(bucket)?)),
            Err(err) => Ok(Err(err.into())),
        }
    }
}

impl store::HostBucket for InstanceState {
    async fn get(&mut self, this: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        let bucket = self.bucket(&this)?;
        Ok(bucket.get(&key).await.map_err(Into::into))
    }

    async fn set(&mut self, this: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        let bucket = self.bucket(&this)?;
        Ok(bucket.set(&key, value).await.map_err(Into::into))
    }

    async fn delete(&mut self, this: Resource<Bucket>, key: String) -> KvResult<()> {
        let bucket = self.bucket(&this)?;
        Ok(bucket.delete(&key).await.map_err(Into::into))
    }

    async fn exists(&mut self, this: Resource<Bucket>, key: String) -> KvResult<bool> {
        let bucket = self.bucket(&this)?;
        Ok(bucket.exists(&key).await.map_err(Into::into))
    }

    async fn list_keys(
        &mut self,
        this: Resource<Bucket>,
        cursor: Option<String>,
    ) -> KvResult<store::KeyResponse> {
        let bucket = self.bucket(&this)?;
        // Cursors are the decimal text of a position in the bucket.
        let Ok(cursor) = cursor.map(|text| text.parse::<u64>()).transpose() else {
            return Ok(Err(store::Error::Other(
                "not a cursor this host returned".to_owned(),
            )));
        };
        Ok(bucket
            .list_keys(cursor)
            .await
            .map(|(keys, cursor)| store::KeyResponse {
                keys,
                cursor: cursor.map(|next| next.to_string()),
            })
            .map_err(Into::into))
    }

    async fn drop(&mut self, this: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::Host for InstanceState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> KvResult<i64> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.increment(&key, delta).await.map_err(Into::into))
    }

    async fn swap(
        &mut self,
        cas: Resource<CasTicket>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let ticket = self.table.delete(cas)?;
        match ticket
            .bucket
            .swap(&ticket.key, ticket.seen.clone(), value)
            .await
        {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                // Another writer won: a fresh ticket, holding what is there
                // now, so the guest can retry.
                let seen = ticket.bucket.get(&ticket.key).await;
                match seen {
                    Ok(seen) => {
                        let fresh = self.table.push(CasTicket { seen, ..ticket })?;
                        Ok(Err(atomics::CasError::CasFailed(fresh)))
                    }
                    Err(err) => Ok(Err(atomics::CasError::StoreError(err.into()))),
                }
            }
            Err(err) => Ok(Err(atomics::CasError::StoreError(err.into()))),
        }
    }
}

impl atomics::HostCas for InstanceState {
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> KvResult<Resource<CasTicket>> {
        let bucket = self.bucket(&bucket)?;
        match bucket.get(&key).await {
            Ok(seen) => Ok(Ok(self.table.push(CasTicket { bucket, key, seen })?)),
            Err(err) => Ok(Err(err.into())),
        }
    }

    async fn current(&mut self, this: Resource<CasTicket>) -> KvResult<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&this)?.seen.clone()))
    }

    async fn drop(&mut self, this: Resource<CasTicket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl batch::Host for InstanceState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<Option<(String, Vec<u8>)>>> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.get_many(keys).await.map_err(Into::into))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.set_many(key_values).await.map_err(Into::into))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.delete_many(keys).await.map_err(Into::into))
    }
}
