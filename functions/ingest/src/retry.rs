//! Retries with jittered exponential backoff, bounded by a number of attempts, a total time
//! budget per operation and the invocation's deadline; every attempt is limited in time and
//! none runs past the deadline minus its reserve.
//!
//! This loop is the only owner of transient AWS failures in ingest: the functions' SDK clients
//! make one HTTP attempt per call (`crate::sdk`), so nothing retries underneath it.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often and how long a transient failure is retried within one invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (≥ 1).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for every further one.
    pub base_delay: Duration,
    /// Upper bound of one backoff.
    pub max_delay: Duration,
    /// No retry is started when it could not begin within this time since the first attempt.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            budget: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the backoff before retry number `retry` (1-based): `base · 2^(retry-1)`,
    /// capped at `max_delay`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(20);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// "Equal jitter": uniformly in `[ceiling/2, ceiling]`, so concurrent retriers spread out
    /// and still always back off.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::random_range(0..=spread))
    }
}

/// Why a [`retry`] ended without a value.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure<E> {
    /// The last attempt failed with this error.
    Error(E),
    /// The last attempt did not finish within its time limit (the attempt timeout, or less
    /// when the stop instant was nearer).
    TimedOut(Duration),
    /// No attempt was started: the stop instant had passed.
    NoTimeLeft,
}

impl<E> Failure<E> {
    /// Timeouts and "no time left" are transient; errors as `is_retryable` says.
    pub fn is_retryable(&self, is_retryable: impl Fn(&E) -> bool) -> bool {
        match self {
            Failure::Error(e) => is_retryable(e),
            Failure::TimedOut(_) | Failure::NoTimeLeft => true,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => write!(f, "{e}"),
            Failure::TimedOut(limit) => write!(f, "attempt timed out after {limit:?}"),
            Failure::NoTimeLeft => {
                write!(
                    f,
                    "not attempted: the invocation deadline (minus its reserve) has passed"
                )
            }
        }
    }
}

/// The time limits of the attempts of one [`retry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// One attempt taking longer than this is cut and counts as a transient failure.
    pub attempt_timeout: Duration,
    /// No attempt runs past this instant (the invocation deadline minus its reserve): an
    /// attempt gets `min(attempt_timeout, stop_at − now)`, and none starts once it has passed.
    pub stop_at: Option<Instant>,
}

impl Limits {
    /// The time limit of an attempt starting at `now`, `None` when none may start.
    pub fn attempt_limit(&self, now: Instant) -> Option<Duration> {
        match self.stop_at {
            None => Some(self.attempt_timeout),
            Some(stop_at) => {
                let left = stop_at.saturating_duration_since(now);
                (!left.is_zero()).then(|| self.attempt_timeout.min(left))
            }
        }
    }
}

/// The result of an operation run under a [`RetryPolicy`], with the number of attempts made.
#[derive(Debug)]
pub struct Retried<T, E> {
    pub result: Result<T, Failure<E>>,
    pub attempts: u32,
}

impl<T, E> Retried<T, E> {
    /// Attempts after the first.
    pub fn retries(&self) -> u32 {
        self.attempts.saturating_sub(1)
    }
}

/// An `on_retry` for [`retry`]: a warning `message` with the retry number, the backoff and the
/// failure (within the caller's span).
pub fn warn_on_retry<E: fmt::Display>(
    message: &'static str,
) -> impl FnMut(u32, &Failure<E>, Duration) {
    move |retry, failure, delay| {
        tracing::warn!(
            retry, backoff_ms = delay.as_millis() as u64, error = %failure, "{message}"
        );
    }
}

/// Run `op` until it succeeds, fails with an error `is_retryable` rejects, or the policy (or
/// `limits.stop_at`) allows no further attempt. Each attempt is limited to
/// [`Limits::attempt_limit`]: it never runs past `stop_at`. `on_retry(retry, &failure,
/// backoff)` is called before each backoff sleep.
pub async fn retry<T, E, Op, Fut>(
    policy: &RetryPolicy,
    limits: Limits,
    mut op: Op,
    is_retryable: impl Fn(&E) -> bool,
    mut on_retry: impl FnMut(u32, &Failure<E>, Duration),
) -> Retried<T, E>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let max_attempts = policy.max_attempts.max(1);
    let mut attempts = 0;
    loop {
        let Some(limit) = limits.attempt_limit(Instant::now()) else {
            // Only reachable before the first attempt: later ones are checked before sleeping.
            return Retried {
                result: Err(Failure::NoTimeLeft),
                attempts,
            };
        };
        attempts += 1;
        let failure = match tokio::time::timeout(limit, op()).await {
            Ok(Ok(value)) => {
                return Retried {
                    result: Ok(value),
                    attempts,
                }
            }
            Ok(Err(error)) => Failure::Error(error),
            Err(_) => Failure::TimedOut(limit),
        };
        if attempts >= max_attempts || !failure.is_retryable(&is_retryable) {
            return Retried {
                result: Err(failure),
                attempts,
            };
        }
        let delay = policy.backoff(attempts);
        let resume = Instant::now() + delay;
        let over_budget = resume.duration_since(started) > policy.budget;
        let past_stop = limits.stop_at.is_some_and(|stop| resume >= stop);
        if over_budget || past_stop {
            return Retried {
                result: Err(failure),
                attempts,
            };
        }
        on_retry(attempts, &failure, delay);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const UNLIMITED: Limits = Limits {
        attempt_timeout: Duration::from_secs(60),
        stop_at: None,
    };

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            budget: Duration::from_secs(5),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_millis(50));
        assert_eq!(p.ceiling(2), Duration::from_millis(100));
        assert_eq!(p.ceiling(4), Duration::from_millis(400));
        assert_eq!(p.ceiling(10), Duration::from_secs(2));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(2));
        for retry in 1..8 {
            for _ in 0..50 {
                let d = p.backoff(retry);
                assert!(d >= p.ceiling(retry) / 2 && d <= p.ceiling(retry), "{d:?}");
            }
        }
    }

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let calls = Cell::new(0);
        let mut seen = Vec::new();
        let out = retry(
            &policy(5),
            UNLIMITED,
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err("busy")
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| true,
            |retry, _, _| seen.push(retry),
        )
        .await;
        assert_eq!(out.result, Ok(3));
        assert_eq!(out.attempts, 3);
        assert_eq!(out.retries(), 2);
        assert_eq!(seen, [1, 2]);
    }

    #[tokio::test]
    async fn stops_after_max_attempts_and_on_permanent_errors() {
        let out: Retried<(), &str> = retry(
            &policy(4),
            UNLIMITED,
            || async { Err("busy") },
            |_| true,
            |_, _, _| {},
        )
        .await;
        assert_eq!((out.result, out.attempts), (Err(Failure::Error("busy")), 4));
        let out: Retried<(), &str> = retry(
            &policy(4),
            UNLIMITED,
            || async { Err("bad") },
            |_| false,
            |_, _, _| {},
        )
        .await;
        assert_eq!((out.result, out.attempts), (Err(Failure::Error("bad")), 1));
    }

    #[tokio::test]
    async fn respects_the_budget_and_the_deadline() {
        let mut p = policy(100);
        p.base_delay = Duration::from_millis(20);
        p.max_delay = Duration::from_millis(20);
        p.budget = Duration::from_millis(50);
        let started = Instant::now();
        let out: Retried<(), &str> = retry(
            &p,
            UNLIMITED,
            || async { Err("busy") },
            |_| true,
            |_, _, _| {},
        )
        .await;
        assert!(out.attempts >= 2 && out.attempts <= 6, "{}", out.attempts);
        assert!(started.elapsed() < Duration::from_secs(1));

        let deadline = Instant::now() + Duration::from_millis(5);
        let out: Retried<(), &str> = retry(
            &policy(100),
            Limits {
                stop_at: Some(deadline),
                ..UNLIMITED
            },
            || async { Err("busy") },
            |_| true,
            |_, _, _| {},
        )
        .await;
        assert!(out.attempts < 100);
    }

    #[tokio::test]
    async fn an_attempt_is_cut_at_its_timeout_and_at_the_stop_instant() {
        // The attempt timeout cuts a hanging attempt; it is retried.
        let calls = Cell::new(0);
        let limits = Limits {
            attempt_timeout: Duration::from_millis(20),
            stop_at: None,
        };
        let out: Retried<(), &str> = retry(
            &policy(2),
            limits,
            || {
                calls.set(calls.get() + 1);
                std::future::pending()
            },
            |_| false,
            |_, _, _| {},
        )
        .await;
        assert_eq!(
            out.result,
            Err(Failure::TimedOut(Duration::from_millis(20)))
        );
        assert_eq!((out.attempts, calls.get()), (2, 2));

        // Nearer than the attempt timeout, the stop instant limits the attempt; no retry after.
        let started = Instant::now();
        let stop_at = started + Duration::from_millis(50);
        let limits = Limits {
            attempt_timeout: Duration::from_secs(10),
            stop_at: Some(stop_at),
        };
        let out: Retried<(), &str> = retry(
            &policy(5),
            limits,
            std::future::pending,
            |_| true,
            |_, _, _| {},
        )
        .await;
        let ended = Instant::now();
        assert!(
            matches!(out.result, Err(Failure::TimedOut(limit)) if limit <= Duration::from_millis(50))
        );
        assert_eq!(out.attempts, 1);
        assert!(
            ended >= stop_at && ended < stop_at + Duration::from_millis(200),
            "{:?}",
            ended - started
        );
    }

    #[tokio::test]
    async fn no_attempt_starts_once_the_stop_instant_has_passed() {
        let calls = Cell::new(0);
        let limits = Limits {
            attempt_timeout: Duration::from_secs(10),
            stop_at: Some(Instant::now()),
        };
        let out: Retried<(), &str> = retry(
            &policy(5),
            limits,
            || {
                calls.set(calls.get() + 1);
                async { Ok(()) }
            },
            |_| true,
            |_, _, _| {},
        )
        .await;
        assert_eq!(
            (out.result, out.attempts, calls.get()),
            (Err(Failure::NoTimeLeft), 0, 0)
        );
    }

    #[test]
    fn the_attempt_limit_is_the_timeout_or_the_time_left() {
        let now = Instant::now();
        let limits = Limits {
            attempt_timeout: Duration::from_secs(10),
            stop_at: Some(now + Duration::from_millis(3_100)),
        };
        assert_eq!(
            limits.attempt_limit(now),
            Some(Duration::from_millis(3_100))
        );
        assert_eq!(limits.attempt_limit(now + Duration::from_secs(4)), None);
        let far = Limits {
            stop_at: Some(now + Duration::from_secs(60)),
            ..limits
        };
        assert_eq!(far.attempt_limit(now), Some(Duration::from_secs(10)));
        assert_eq!(UNLIMITED.attempt_limit(now), Some(Duration::from_secs(60)));
    }
}
