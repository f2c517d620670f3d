//! `wasi:random/random.get-random-bytes`, linked by hand over
//! wasmtime-wasi's: that one draws the bytes one at a time, each through a
//! trait object's `next_u32`, and a Python handler asks for 2,496 bytes at
//! the start of every instance (componentize-py reseeds `random` so that no
//! two instances share the snapshot's state): 2 % of a Python
//! connection's CPU. This one fills them in one call from the thread's
//! generator, `rand`'s ChaCha12 seeded from the OS and reseeded as it goes,
//! the generator wasmtime-wasi seeds each instance's own from.

use rand::Rng;
use wasmtime::component::Linker;

use super::state::InstanceState;

/// The interface wasmtime-wasi links, which every 0.2.x import resolves to.
const RANDOM_INTERFACE: &str = "wasi:random/random@0.2.12";

/// Replaces wasmtime-wasi's `get-random-bytes` in `linker` (which must
/// already hold WASI), with its limit on one call's length.
pub(super) fn link_random_bytes(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(RANDOM_INTERFACE)?.func_wrap(
        "get-random-bytes",
        |_store, (len,): (u64,)| -> wasmtime::Result<(Vec<u8>,)> { Ok((random_bytes(len)?,)) },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// `len` bytes from a cryptographically secure generator; more than
/// wasmtime-wasi allows in one call traps the guest, as there.
fn random_bytes(len: u64) -> wasmtime::Result<Vec<u8>> {
    let max = wasmtime_wasi::random::DEFAULT_MAX_SIZE;
    let len = usize::try_from(len)
        .ok()
        .filter(|_| len <= max)
        .ok_or_else(|| wasmtime::format_err!("requested len {len} exceeds limit {max}"))?;
    let mut bytes = vec![0; len];
    rand::rng().fill_bytes(&mut bytes);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_as_many_as_asked_and_not_all_alike() {
        let bytes = random_bytes(2496).expect("2,496 bytes");
        assert_eq!(bytes.len(), 2496);
        assert_ne!(bytes, random_bytes(2496).expect("2,496 bytes"));
        assert!(random_bytes(0).expect("no bytes").is_empty());
    }

    #[test]
    fn more_than_the_limit_is_refused() {
        let too_many = wasmtime_wasi::random::DEFAULT_MAX_SIZE + 1;
        assert!(random_bytes(too_many).is_err());
    }
}
