//! A circuit breaker around the SQS calls.
//!
//! * **Closed**: calls go through; `failure_threshold` consecutive failed calls open it.
//! * **Open**: no calls for `open_for`; the relay hands every unsent record back to Lambda at
//!   once (fail fast) instead of waiting on a service that is down.
//! * **Half-open**: after `open_for`, one probe call is let through; success closes the
//!   breaker, failure opens it for another `open_for`.
//!
//! The breaker holds state only — never messages. It lives as long as the Lambda sandbox (one
//! instance shared across invocations) and is driven by an injected [`Instant`], so tests step
//! through it without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failed calls that open the breaker (≥ 1).
    pub failure_threshold: u32,
    /// How long it stays open before a probe is allowed.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            open_for: DEFAULT_OPEN_FOR,
        }
    }
}

/// The observable state (also the `CircuitState` metric: 0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    pub fn metric_value(&self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inner {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
    },
    /// `probe_started`: when the single probe call was let through (`None`: not yet).
    HalfOpen {
        probe_started: Option<Instant>,
    },
}

/// The result of one call, as the breaker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The service answered usefully (something was sent, or only the sender was at fault).
    Success,
    /// The call failed, or the service failed every entry of it.
    Failure,
}

/// A permit to make one call ([`CircuitBreaker::try_acquire`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// The breaker is closed.
    Normal,
    /// The one probe of a half-open breaker.
    Probe,
}

/// A transition worth logging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Opened { consecutive_failures: u32 },
    HalfOpened,
    Closed,
    Reopened,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        let settings = BreakerSettings {
            failure_threshold: settings.failure_threshold.max(1),
            ..settings
        };
        CircuitBreaker {
            settings,
            inner: Mutex::new(Inner::Closed {
                consecutive_failures: 0,
            }),
        }
    }

    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is a plain value: a panic elsewhere cannot leave it half-written.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state at `now` (an open breaker whose time is up reads as half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now < until => BreakerState::Open,
            Inner::Open { .. } | Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// May a call be made now? `None`: fail fast. A half-open breaker lets exactly one probe
    /// through; a probe that never reported back (its invocation was cut off) is replaced
    /// after `open_for`.
    pub fn try_acquire(&self, now: Instant) -> (Option<Permit>, Option<Transition>) {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => (Some(Permit::Normal), None),
            Inner::Open { until } if now < until => (None, None),
            Inner::Open { .. } => {
                *inner = Inner::HalfOpen {
                    probe_started: Some(now),
                };
                (Some(Permit::Probe), Some(Transition::HalfOpened))
            }
            Inner::HalfOpen {
                probe_started: Some(started),
            } if now.saturating_duration_since(started) < self.settings.open_for => (None, None),
            Inner::HalfOpen { .. } => {
                *inner = Inner::HalfOpen {
                    probe_started: Some(now),
                };
                (Some(Permit::Probe), None)
            }
        }
    }

    /// Report the outcome of a call made under `permit`.
    pub fn record(&self, permit: Permit, outcome: CallOutcome, now: Instant) -> Option<Transition> {
        let mut inner = self.lock();
        match (*inner, permit, outcome) {
            (Inner::Closed { .. }, _, CallOutcome::Success) => {
                *inner = Inner::Closed {
                    consecutive_failures: 0,
                };
                None
            }
            (
                Inner::Closed {
                    consecutive_failures,
                },
                _,
                CallOutcome::Failure,
            ) => {
                let failures = consecutive_failures.saturating_add(1);
                if failures >= self.settings.failure_threshold {
                    *inner = Inner::Open {
                        until: now + self.settings.open_for,
                    };
                    Some(Transition::Opened {
                        consecutive_failures: failures,
                    })
                } else {
                    *inner = Inner::Closed {
                        consecutive_failures: failures,
                    };
                    None
                }
            }
            (Inner::HalfOpen { .. }, Permit::Probe, CallOutcome::Success) => {
                *inner = Inner::Closed {
                    consecutive_failures: 0,
                };
                Some(Transition::Closed)
            }
            (Inner::HalfOpen { .. }, Permit::Probe, CallOutcome::Failure) => {
                *inner = Inner::Open {
                    until: now + self.settings.open_for,
                };
                Some(Transition::Reopened)
            }
            // A late report of a call made before the breaker changed state: the state
            // already reflects newer information.
            _ => None,
        }
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker::new(BreakerSettings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> (CircuitBreaker, Instant) {
        (CircuitBreaker::default(), Instant::now())
    }

    fn fail(b: &CircuitBreaker, now: Instant) -> Option<Transition> {
        let (permit, _) = b.try_acquire(now);
        b.record(permit.expect("permit"), CallOutcome::Failure, now)
    }

    #[test]
    fn opens_after_five_consecutive_failures() {
        let (b, t0) = breaker();
        for _ in 0..4 {
            assert_eq!(fail(&b, t0), None);
            assert_eq!(b.state(t0), BreakerState::Closed);
        }
        assert_eq!(
            fail(&b, t0),
            Some(Transition::Opened {
                consecutive_failures: 5
            })
        );
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(b.try_acquire(t0 + Duration::from_secs(29)), (None, None));
    }

    #[test]
    fn a_success_resets_the_count() {
        let (b, t0) = breaker();
        for _ in 0..4 {
            fail(&b, t0);
        }
        let (p, _) = b.try_acquire(t0);
        assert_eq!(b.record(p.unwrap(), CallOutcome::Success, t0), None);
        for _ in 0..4 {
            assert_eq!(fail(&b, t0), None);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
    }

    #[test]
    fn half_opens_after_the_open_period_and_closes_on_a_good_probe() {
        let (b, t0) = breaker();
        for _ in 0..5 {
            fail(&b, t0);
        }
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        let (p, tr) = b.try_acquire(t1);
        assert_eq!((p, tr), (Some(Permit::Probe), Some(Transition::HalfOpened)));
        // Only one probe at a time.
        assert_eq!(b.try_acquire(t1), (None, None));
        assert_eq!(
            b.record(Permit::Probe, CallOutcome::Success, t1),
            Some(Transition::Closed)
        );
        assert_eq!(b.state(t1), BreakerState::Closed);
        assert_eq!(b.try_acquire(t1).0, Some(Permit::Normal));
    }

    #[test]
    fn a_failed_probe_reopens_for_another_period() {
        let (b, t0) = breaker();
        for _ in 0..5 {
            fail(&b, t0);
        }
        let t1 = t0 + Duration::from_secs(31);
        let (p, _) = b.try_acquire(t1);
        assert_eq!(
            b.record(p.unwrap(), CallOutcome::Failure, t1),
            Some(Transition::Reopened)
        );
        assert_eq!(b.state(t1 + Duration::from_secs(29)), BreakerState::Open);
        assert_eq!(b.try_acquire(t1 + Duration::from_secs(29)).0, None);
        assert_eq!(
            b.try_acquire(t1 + Duration::from_secs(30)).0,
            Some(Permit::Probe)
        );
    }

    #[test]
    fn a_lost_probe_is_replaced_after_the_open_period() {
        let (b, t0) = breaker();
        for _ in 0..5 {
            fail(&b, t0);
        }
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(b.try_acquire(t1).0, Some(Permit::Probe));
        assert_eq!(b.try_acquire(t1 + Duration::from_secs(10)).0, None);
        assert_eq!(
            b.try_acquire(t1 + Duration::from_secs(30)).0,
            Some(Permit::Probe)
        );
    }

    #[test]
    fn threshold_of_one_and_stale_reports() {
        let b = CircuitBreaker::new(BreakerSettings {
            failure_threshold: 0,
            open_for: Duration::from_secs(1),
        });
        let t0 = Instant::now();
        assert!(matches!(fail(&b, t0), Some(Transition::Opened { .. })));
        // A normal-permit report arriving while open changes nothing.
        assert_eq!(b.record(Permit::Normal, CallOutcome::Success, t0), None);
        assert_eq!(b.state(t0), BreakerState::Open);
    }
}
