//! Liveness and readiness, served beside `/metrics` for load balancers and
//! Kubernetes probes:
//!
//! - `GET /healthz`: `200 ok` whenever the process answers (liveness).
//! - `GET /readyz`: `200 ready` once every listener is bound and every
//!   handler loaded; `503 not ready: starting` before, and `503 not ready:
//!   draining` once a stop signal stopped accepting (so a balancer routes
//!   new clients elsewhere while in-flight ones finish).

use std::sync::atomic::{AtomicU8, Ordering};

use hyper::StatusCode;

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// The process's readiness.
#[derive(Debug, Default)]
pub(crate) struct Health {
    state: AtomicU8,
}

impl Health {
    /// Every listener is bound and every handler loaded.
    pub(crate) fn set_ready(&self) {
        let _ = self
            .state
            .compare_exchange(STARTING, READY, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Accepting stopped: draining until exit.
    pub(crate) fn set_draining(&self) {
        self.state.store(DRAINING, Ordering::SeqCst);
    }

    /// `/readyz`'s answer.
    pub(super) fn readiness(&self) -> (StatusCode, &'static str) {
        match self.state.load(Ordering::SeqCst) {
            READY => (StatusCode::OK, "ready\n"),
            DRAINING => (StatusCode::SERVICE_UNAVAILABLE, "not ready: draining\n"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "not ready: starting\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_then_ready_then_draining_for_good() {
        let health = Health::default();
        assert_eq!(health.readiness().0, StatusCode::SERVICE_UNAVAILABLE);
        health.set_ready();
        assert_eq!(health.readiness(), (StatusCode::OK, "ready\n"));
        health.set_draining();
        health.set_ready();
        assert_eq!(health.readiness().1, "not ready: draining\n");
    }
}
