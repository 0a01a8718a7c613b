//! Helpers for the Lambda Runtime API shared by the function binaries.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Smallest `Lambda-Runtime-Deadline-Ms` taken as a wall-clock time (2001-09-09). Lambda sends
/// milliseconds since the epoch; local emulators may send 0 or a relative timeout instead
/// (`cargo lambda watch` sends `600000`), which would otherwise read as a deadline long past
/// and make every invocation hand its work back at once.
const MIN_WALL_CLOCK_DEADLINE_MS: u64 = 1_000_000_000_000;

/// The invocation deadline as an `Instant`, or `None` when the runtime gave no usable
/// wall-clock deadline.
pub fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms < MIN_WALL_CLOCK_DEADLINE_MS {
        return None;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    Some(Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

/// [`deadline_instant`] of the deadline `lambda_runtime` hands over (`Context::deadline()`).
pub fn deadline_of(deadline: SystemTime) -> Option<Instant> {
    let ms = deadline.duration_since(UNIX_EPOCH).ok()?.as_millis();
    deadline_instant(u64::try_from(ms).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[test]
    fn a_wall_clock_deadline_becomes_an_instant() {
        let d = deadline_instant(now_ms() + 30_000).unwrap();
        let left = d.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30));
        // A deadline already past is "now", not "none".
        let past = deadline_instant(now_ms() - 5_000).unwrap();
        assert!(past <= Instant::now());
    }

    #[test]
    fn zero_or_relative_values_are_no_deadline() {
        assert_eq!(deadline_instant(0), None);
        assert_eq!(deadline_instant(600_000), None);
    }
}
