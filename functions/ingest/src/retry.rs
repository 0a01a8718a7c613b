//! Retries with jittered exponential backoff, bounded by a number of attempts, a total time
//! budget per operation and the invocation's deadline.

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

/// The result of an operation run under a [`RetryPolicy`], with the number of attempts made.
#[derive(Debug)]
pub struct Retried<T, E> {
    pub result: Result<T, E>,
    pub attempts: u32,
}

impl<T, E> Retried<T, E> {
    /// Attempts after the first.
    pub fn retries(&self) -> u32 {
        self.attempts.saturating_sub(1)
    }
}

/// Run `op` until it succeeds, fails with an error `is_retryable` rejects, or the policy (or
/// `deadline`) allows no further attempt. `on_retry(retry, &error, backoff)` is called before
/// each backoff sleep.
pub async fn retry<T, E, Op, Fut>(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    mut op: Op,
    is_retryable: impl Fn(&E) -> bool,
    mut on_retry: impl FnMut(u32, &E, Duration),
) -> Retried<T, E>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let max_attempts = policy.max_attempts.max(1);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match op().await {
            Ok(value) => {
                return Retried {
                    result: Ok(value),
                    attempts,
                }
            }
            Err(error) => error,
        };
        if attempts >= max_attempts || !is_retryable(&error) {
            return Retried {
                result: Err(error),
                attempts,
            };
        }
        let delay = policy.backoff(attempts);
        let resume = Instant::now() + delay;
        let over_budget = resume.duration_since(started) > policy.budget;
        let past_deadline = deadline.is_some_and(|d| resume >= d);
        if over_budget || past_deadline {
            return Retried {
                result: Err(error),
                attempts,
            };
        }
        on_retry(attempts, &error, delay);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

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
            None,
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
            None,
            || async { Err("busy") },
            |_| true,
            |_, _, _| {},
        )
        .await;
        assert_eq!((out.result, out.attempts), (Err("busy"), 4));
        let out: Retried<(), &str> = retry(
            &policy(4),
            None,
            || async { Err("bad") },
            |_| false,
            |_, _, _| {},
        )
        .await;
        assert_eq!((out.result, out.attempts), (Err("bad"), 1));
    }

    #[tokio::test]
    async fn respects_the_budget_and_the_deadline() {
        let mut p = policy(100);
        p.base_delay = Duration::from_millis(20);
        p.max_delay = Duration::from_millis(20);
        p.budget = Duration::from_millis(50);
        let started = Instant::now();
        let out: Retried<(), &str> =
            retry(&p, None, || async { Err("busy") }, |_| true, |_, _, _| {}).await;
        assert!(out.attempts >= 2 && out.attempts <= 6, "{}", out.attempts);
        assert!(started.elapsed() < Duration::from_secs(1));

        let deadline = Instant::now() + Duration::from_millis(5);
        let out: Retried<(), &str> = retry(
            &policy(100),
            Some(deadline),
            || async { Err("busy") },
            |_| true,
            |_, _, _| {},
        )
        .await;
        assert!(out.attempts < 100);
    }
}
