//! Guest text on its way into the host's log: escaped, cut to a length and
//! rate-limited, so a guest can neither forge log lines (newlines, terminal
//! escapes) nor flood the log.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// Lines a request may log at once, before the rate applies.
pub(crate) const LOG_BURST: u32 = 100;
/// Lines per second a request may log after its burst.
pub(crate) const LOG_LINES_PER_SECOND: u32 = 10;

/// `text` made safe for a one-line log entry: every control character
/// (newline, escape, bell, ...) written as an escape (`\n`, `\u{1b}`), and
/// cut after `max_chars` characters with a note of what was left out.
pub(crate) fn sanitize(text: &str, max_chars: usize) -> String {
    let mut clean = String::with_capacity(text.len().min(max_chars));
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            let rest = text.chars().count() - count;
            let _ = write!(clean, "… ({rest} more characters)");
            break;
        }
        match c {
            c if c.is_control() => clean.extend(c.escape_default()),
            c => clean.push(c),
        }
    }
    clean
}

/// Logs, once, that `dropped` lines of guest output were refused by a
/// request's [`LogBudget`] (nothing when none were).
pub(crate) fn report_dropped(dropped: u64) {
    if dropped > 0 {
        tracing::warn!(
            target: "wasmserve::guest",
            dropped,
            "guest output lines dropped: over the log rate limit"
        );
    }
}

/// A token bucket of log lines, one per request (shared by its stdout and
/// stderr), that counts what it refused.
#[derive(Debug)]
pub(crate) struct LogBudget {
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    /// Lines that may be logged now.
    tokens: f64,
    /// When `tokens` was last topped up.
    refilled: Instant,
    /// Lines refused and not reported yet.
    dropped: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self {
            state: Mutex::new(BudgetState {
                tokens: f64::from(LOG_BURST),
                refilled: Instant::now(),
                dropped: 0,
            }),
        }
    }
}

impl LogBudget {
    /// Takes one line's worth of budget. `Ok(dropped)`: log it, after
    /// reporting `dropped` lines refused since the last report (if any);
    /// `Err(())`: drop it (it is counted).
    pub(crate) fn take(&self) -> Result<u64, ()> {
        let Ok(mut state) = self.state.lock() else {
            return Err(());
        };
        let now = Instant::now();
        let earned =
            now.duration_since(state.refilled).as_secs_f64() * f64::from(LOG_LINES_PER_SECOND);
        state.tokens = (state.tokens + earned).min(f64::from(LOG_BURST));
        state.refilled = now;
        if state.tokens < 1.0 {
            state.dropped += 1;
            return Err(());
        }
        state.tokens -= 1.0;
        Ok(std::mem::take(&mut state.dropped))
    }

    /// The lines refused and not reported yet; they count as reported now.
    pub(crate) fn take_dropped(&self) -> u64 {
        self.state
            .lock()
            .map(|mut state| std::mem::take(&mut state.dropped))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        assert_eq!(
            sanitize("a\nINFO forged\u{1b}[31m\u{7}", 100),
            "a\\nINFO forged\\u{1b}[31m\\u{7}"
        );
        assert_eq!(sanitize("héllo wörld", 5), "héllo… (6 more characters)");
        assert_eq!(sanitize("fine", 10), "fine");
    }

    #[test]
    fn the_budget_refuses_past_the_burst_and_counts() {
        let budget = LogBudget::default();
        for _ in 0..LOG_BURST {
            assert_eq!(budget.take(), Ok(0));
        }
        assert_eq!(budget.take(), Err(()));
        assert_eq!(budget.take(), Err(()));
        assert_eq!(budget.take_dropped(), 2);
        assert_eq!(budget.take_dropped(), 0);
    }
}
