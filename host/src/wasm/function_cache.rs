//! Cranelift's per-function cache, kept on disk.
//!
//! wasmtime's own cache (the `compiled` folder) keys a whole component: a
//! handler that changed by one byte is compiled again from scratch. Most of
//! a Python or JavaScript handler is the same from one handler to the next,
//! though — the interpreter (CPython, SpiderMonkey) and its libraries are
//! byte for byte what every other handler of that toolchain carries. With
//! this store Cranelift keeps each function it compiles under a hash of the
//! function's code and of the compiler's settings, and the next handler
//! that contains the same function takes it from here instead of compiling
//! it again: a second Python handler compiles in a fraction of the first's
//! time.
//!
//! One file per function, under a folder named after the hash's first byte,
//! written to a temporary name and renamed into place, so servers sharing
//! a cache folder never read a half-written entry. A file that cannot be
//! read is a miss; one that cannot be written is skipped. Cranelift checks
//! an entry's version and contents before using it and compiles the
//! function afresh when they do not fit.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::CacheStore;

/// The folder of the compile cache this store uses.
const FOLDER: &str = "functions";

/// Functions looked up in, and found in, any store of the process: the log
/// line after a slow compile says how much the store saved.
static LOOKUPS: AtomicU64 = AtomicU64::new(0);
static HITS: AtomicU64 = AtomicU64::new(0);

/// How many functions the process has looked up in its function cache, and
/// found there, so far (a compile's share is the difference).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FunctionCacheCounts {
    pub(crate) lookups: u64,
    pub(crate) hits: u64,
}

impl FunctionCacheCounts {
    /// The counts now.
    pub(crate) fn now() -> Self {
        Self {
            lookups: LOOKUPS.load(Ordering::Relaxed),
            hits: HITS.load(Ordering::Relaxed),
        }
    }

    /// What was counted since `earlier`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            lookups: self.lookups.saturating_sub(earlier.lookups),
            hits: self.hits.saturating_sub(earlier.hits),
        }
    }
}

/// Compiled functions on disk, one file each (see the module's text).
#[derive(Debug)]
pub(crate) struct FunctionCache {
    dir: PathBuf,
    /// Makes the temporary names of one process's concurrent writes unique.
    writes: AtomicU64,
}

impl FunctionCache {
    /// A store in `cache_dir`'s `functions` folder, created when first
    /// written.
    pub(crate) fn new(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.join(FOLDER),
            writes: AtomicU64::new(0),
        }
    }

    /// Where the entry for `key` lives: `functions/ab/ab12…`.
    fn path_of(&self, key: &[u8]) -> PathBuf {
        let mut name = String::with_capacity(key.len() * 2);
        for byte in key {
            // Writing to a String cannot fail.
            let _ = write!(name, "{byte:02x}");
        }
        let shard = name.get(..2).unwrap_or("00").to_owned();
        self.dir.join(shard).join(name)
    }

    fn write(&self, path: &Path, value: &[u8]) -> std::io::Result<()> {
        let Some(folder) = path.parent() else {
            return Ok(());
        };
        std::fs::create_dir_all(folder)?;
        let temporary = folder.join(format!(
            ".{}-{}.tmp",
            std::process::id(),
            self.writes.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&temporary, value)?;
        std::fs::rename(&temporary, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
    }
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        LOOKUPS.fetch_add(1, Ordering::Relaxed);
        let found = std::fs::read(self.path_of(key)).ok().map(Cow::Owned);
        if found.is_some() {
            HITS.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Cranelift inserts only what its `get` just missed, so there is no
    /// second look here; a server that wrote the same entry meanwhile wrote
    /// the same bytes, and the rename replaces them whole.
    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        self.write(&self.path_of(key), &value).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_written_is_read_back_and_a_missing_one_is_a_miss() {
        let dir = std::env::temp_dir().join(format!("wasmserve-fncache-{}", std::process::id()));
        let cache = FunctionCache::new(&dir);
        assert!(cache.get(&[0xab, 0x01]).is_none());
        assert!(cache.insert(&[0xab, 0x01], b"code".to_vec()));
        assert_eq!(cache.get(&[0xab, 0x01]).as_deref(), Some(&b"code"[..]));
        assert!(dir.join("functions/ab/ab01").is_file());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
