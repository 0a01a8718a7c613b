//! Time, injectable: a monotonic instant for the circuit breaker and deadlines, and the wall
//! clock for the outbox-write → publish latency.

use ras_domain::contracts::Timestamp;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub trait Clock: Send + Sync {
    fn instant(&self) -> Instant;
    fn wall(&self) -> Timestamp;
}

/// The real clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn instant(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to (tests of the breaker across invocations).
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    wall_base: Timestamp,
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock {
            base: Instant::now(),
            wall_base: Timestamp::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        *offset += by;
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn instant(&self) -> Instant {
        self.base + self.offset()
    }

    fn wall(&self) -> Timestamp {
        let micros = i64::try_from(self.offset().as_micros()).unwrap_or(i64::MAX / 2);
        Timestamp::from_unix_micros(self.wall_base.unix_micros().saturating_add(micros))
            .unwrap_or(self.wall_base)
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn instant(&self) -> Instant {
        (**self).instant()
    }

    fn wall(&self) -> Timestamp {
        (**self).wall()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn instant(&self) -> Instant {
        (**self).instant()
    }

    fn wall(&self) -> Timestamp {
        (**self).wall()
    }
}
