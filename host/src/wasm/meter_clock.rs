//! The clock a [`super::limits::CpuMeter`] times polls with: two reads per
//! poll of every request, so its cost shows (`clock_gettime` was 2 % of a
//! 64-connection echo's CPU).
//!
//! Where the CPU has an invariant time-stamp counter, `quanta` reads it
//! directly (a few nanoseconds) and scales it to nanoseconds; elsewhere it
//! reads the monotonic clock itself. quanta calibrates the counter against
//! the monotonic clock once, spinning for a few milliseconds (200 at most),
//! so that runs on a thread of its own at start-up ([`calibrate`]); a meter
//! made before it has finished uses std's clock for its whole life.

use std::sync::{Once, OnceLock};
use std::time::Instant;

/// The calibrated counter, once [`calibrate`]'s thread has made it.
static COUNTER: OnceLock<quanta::Clock> = OnceLock::new();

/// Calibrates the counter on a thread of its own (once per process).
pub(crate) fn calibrate() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("wasmserve-clock".to_owned())
            .spawn(|| {
                let _ = COUNTER.set(quanta::Clock::new());
            });
        if let Err(err) = spawned {
            tracing::debug!("CPU meters keep std's clock: {err}");
        }
    });
}

/// Nanoseconds since the meter's start, on the fastest clock ready when
/// the meter was made.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MeterClock {
    Counter {
        clock: &'static quanta::Clock,
        origin: u64,
    },
    Std(Instant),
}

impl MeterClock {
    /// A clock whose zero is now.
    pub(crate) fn start() -> Self {
        match COUNTER.get() {
            Some(clock) => Self::Counter {
                clock,
                origin: clock.raw(),
            },
            None => Self::Std(Instant::now()),
        }
    }

    /// Nanoseconds since [`MeterClock::start`].
    pub(crate) fn nanos(&self) -> u64 {
        match self {
            Self::Counter { clock, origin } => clock.delta_as_nanos(*origin, clock.raw()),
            Self::Std(origin) => u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn both_clocks_count_nanoseconds() {
        calibrate();
        let deadline = Instant::now() + Duration::from_secs(5);
        while COUNTER.get().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let clocks: [fn() -> MeterClock; 2] =
            [|| MeterClock::Std(Instant::now()), MeterClock::start];
        for start in clocks {
            let wall = Instant::now();
            let clock = start();
            std::thread::sleep(Duration::from_millis(50));
            let counted = Duration::from_nanos(clock.nanos());
            let elapsed = wall.elapsed();
            assert!(
                counted >= Duration::from_millis(45),
                "{clock:?}: {counted:?}"
            );
            assert!(
                counted <= elapsed + Duration::from_millis(5),
                "{clock:?}: {counted:?}"
            );
        }
    }
}
