//! wasmserve patch: no fault-around in a memory image's mapping.
//!
//! A read fault in a file mapping makes Linux map up to 16 neighbouring
//! pages of the page cache with it ("fault-around"). For a memory image
//! that means a slot maps, and counts in its RSS, up to 16 times the pages
//! its guest really reads, and every reset's `PAGEMAP_SCAN` walks them all
//! (a Python handler reads a few hundred pages of its snapshot and had
//! ~1,700 mapped). Linux skips fault-around in a mapping registered with a
//! userfaultfd for write protection (`uffd_disable_fault_around`); nothing
//! is ever write-protected here, so the registration changes nothing else.
//! Where userfaultfd is unavailable (an old kernel, a seccomp filter), the
//! registration is skipped and the mapping behaves as before.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

/// `struct uffdio_api` from `<linux/userfaultfd.h>`.
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

/// `struct uffdio_register` from `<linux/userfaultfd.h>`.
#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

const UFFD_API: u64 = 0xaa;
const UFFD_USER_MODE_ONLY: libc::c_int = 1;
/// `_IOWR(0xaa, 0x3f, struct uffdio_api)`.
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
/// `_IOWR(0xaa, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;

/// The process's one userfaultfd, or `None` where it cannot be had.
fn userfaultfd() -> Option<&'static OwnedFd> {
    static FD: OnceLock<Option<OwnedFd>> = OnceLock::new();
    FD.get_or_init(|| {
        // User-mode faults only: allowed unprivileged since Linux 5.11.
        let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY;
        let raw = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
        if raw < 0 {
            return None;
        }
        let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let mut api = UffdioApi {
            api: UFFD_API,
            features: 0,
            ioctls: 0,
        };
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, &mut api) };
        (rc == 0).then_some(fd)
    })
    .as_ref()
}

/// Registers `len` bytes at `base` (page aligned, one whole mapping) for
/// write protection, which turns fault-around off there. Best effort: the
/// first refusal is logged once.
pub fn disable_fault_around(base: *mut u8, len: usize) {
    let Some(fd) = userfaultfd() else {
        refused("creating a userfaultfd", std::io::Error::last_os_error());
        return;
    };
    let mut register = UffdioRegister {
        start: base as u64,
        len: len as u64,
        mode: UFFDIO_REGISTER_MODE_WP,
        ioctls: 0,
    };
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_REGISTER, &mut register) };
    if rc != 0 {
        refused("registering a memory image with userfaultfd", std::io::Error::last_os_error());
    }
}

/// Says once that images keep fault-around, and why.
fn refused(what: &str, err: std::io::Error) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        log::warn!(
            "memory images keep fault-around: {what} failed ({err}); each slot maps up to 16 \
             pages of its image around every page its guest reads, so an interpreter's \
             connection holds several MiB more RSS (allow userfaultfd in the seccomp \
             profile, or use Linux 5.19 or newer)"
        );
    }
}
