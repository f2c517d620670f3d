//! Gives the heap a burst of requests freed back to the operating system.
//!
//! Every request allocates and frees a store, an instance's books and its
//! buffers. glibc's allocator keeps freed memory inside its arenas for
//! reuse: after 2,000 connections closed it held 33 MiB it no longer used.
//! Once a second, one thread asks glibc how much free memory its arenas
//! hold (`mallinfo2`); when that grew by more than [`TRIM_AFTER_FREED`]
//! since the last trim, it calls `malloc_trim(0)`, which returns every free
//! page of every arena (from the middle of the heap too) with `madvise`.
//! A server at rest is not trimmed again and again: the free bytes a trim
//! leaves (now without pages behind them) are the new mark, and the mark
//! follows the free bytes down as new requests reuse them.
//!
//! (The binary used to link jemalloc, whose background thread did the
//! same; its C build was the longest step of a first build. Measured with
//! 1,000 connections and `--keep-resident 0`: RSS 1.21-1.23x its idle start
//! 3 s after they closed, as with jemalloc; 1.65x without the trimmer.)

use std::time::Duration;

/// How often the trimmer looks.
const INTERVAL: Duration = Duration::from_secs(1);
/// How much more free memory the arenas must hold than after the last trim
/// before the trimmer trims again: small enough that the tail of a burst
/// freed just after a trim is trimmed at the next look, large enough that a
/// server under steady load (whose free memory only wobbles) is not.
const TRIM_AFTER_FREED: usize = 1 << 20;

/// Starts the trimmer thread, for the life of the process. Without glibc
/// (or if the thread cannot start) nothing is trimmed and the server runs
/// as before.
pub(crate) fn start() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::thread::Builder::new()
            .name("wasmserve-trim".to_owned())
            .spawn(trim_forever);
        if let Err(err) = started {
            tracing::warn!(
                "cannot start the heap trimmer thread ({err}); freed memory stays with the allocator"
            );
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_forever() {
    let mut mark = free_in_arenas();
    loop {
        std::thread::sleep(INTERVAL);
        let free = free_in_arenas();
        if free > mark.saturating_add(TRIM_AFTER_FREED) {
            // SAFETY: malloc_trim only takes glibc's arena locks and
            // releases free pages; it is safe to call from any thread.
            #[expect(unsafe_code, reason = "glibc's malloc_trim is a C function")]
            unsafe {
                libc::malloc_trim(0)
            };
            mark = free_in_arenas();
        } else {
            mark = mark.min(free);
        }
    }
}

/// Bytes glibc's arenas hold free (`fordblks`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_in_arenas() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    #[expect(unsafe_code, reason = "glibc's mallinfo2 is a C function")]
    let info = unsafe { libc::mallinfo2() };
    info.fordblks
}
