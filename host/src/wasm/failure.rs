//! How a request can end badly: the cause (a label in logs and metrics) and
//! the one-line message.

/// Why a request ended badly: the label in logs and in the failure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FailureCause {
    /// The instance could not be created (for example no pool slot left).
    Instantiate,
    /// The guest trapped: a panic, `unreachable`, an out-of-bounds access...
    Trap,
    /// The guest tried to grow its memory past `--max-memory`.
    OutOfMemory,
    /// The guest used more CPU than `--max-cpu`.
    CpuBudget,
    /// The guest recursed past the wasm stack limit.
    StackOverflow,
    /// The client sent nothing for `--idle-timeout` and the handler gave up.
    IdleTimeout,
    /// The request lasted longer than `--max-lifetime`.
    MaxLifetime,
    /// The guest returned an error from `handle`.
    GuestError,
    /// The guest returned an error after its client closed or reset the
    /// connection (end of stream read, or a write refused): not a
    /// failure of the handler — not counted with the others, not logged
    /// as an error, access-logged `client_closed`. Not in [`Self::ALL`].
    ClientClosed,
}

impl FailureCause {
    /// Every cause, in a fixed order (for counters).
    pub(crate) const ALL: [FailureCause; 8] = [
        FailureCause::Instantiate,
        FailureCause::Trap,
        FailureCause::OutOfMemory,
        FailureCause::CpuBudget,
        FailureCause::StackOverflow,
        FailureCause::IdleTimeout,
        FailureCause::MaxLifetime,
        FailureCause::GuestError,
    ];

    /// The cause's name in logs and metrics, e.g. `out_of_memory`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailureCause::Instantiate => "instantiate",
            FailureCause::Trap => "trap",
            FailureCause::OutOfMemory => "out_of_memory",
            FailureCause::CpuBudget => "cpu_budget",
            FailureCause::StackOverflow => "stack_overflow",
            FailureCause::IdleTimeout => "idle_timeout",
            FailureCause::MaxLifetime => "max_lifetime",
            FailureCause::GuestError => "guest_error",
            FailureCause::ClientClosed => "client_closed",
        }
    }
}

impl std::fmt::Display for FailureCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one request ended badly. The connection is closed either way; other
/// requests are not affected.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HandleError {
    /// The kind of failure.
    pub(crate) cause: FailureCause,
    /// What happened, on one line.
    pub(crate) message: String,
}

impl HandleError {
    pub(super) fn new(cause: FailureCause, message: impl Into<String>) -> Self {
        Self {
            cause,
            message: message.into(),
        }
    }
}
