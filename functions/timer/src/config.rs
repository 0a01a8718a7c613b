//! The timer's configuration, read once at start-up. Anything missing or malformed stops the
//! function before its first run, with a message naming the variable.

use crate::TimerSettings;
pub use ras_aws::config::ConfigError;
use ras_aws::config::{Env, StoreConfig};
use std::time::Duration;

/// Seconds a batch reported complete waits for missing facts (default 900, 60..=86400).
pub const GRACE_ENV: &str = "RAS_FACTS_GRACE_SECONDS";
/// Batches handled per run (default 100, 1..=1000).
pub const MAX_BATCHES_ENV: &str = "RAS_TIMER_MAX_BATCHES";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    pub store: StoreConfig,
    pub settings: TimerSettings,
}

impl TimerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`TimerConfig::from_env`] with an explicit lookup. Blank values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let defaults = TimerSettings::default();
        Ok(TimerConfig {
            store: env.store()?,
            settings: TimerSettings {
                grace_seconds: env.number(GRACE_ENV, defaults.grace_seconds, 60, 86_400)?,
                max_batches: env.number(MAX_BATCHES_ENV, defaults.max_batches as u64, 1, 1_000)?
                    as usize,
                deadline_reserve: Duration::from_secs(5),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_aws::config::{OUTBOX_TABLE_ENV, STATE_TABLE_ENV};
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn tables_are_required_and_the_grace_period_is_bounded() {
        assert_eq!(
            TimerConfig::from_lookup(lookup(&[(OUTBOX_TABLE_ENV, "o")])),
            Err(ConfigError::Missing(STATE_TABLE_ENV))
        );
        let ok =
            TimerConfig::from_lookup(lookup(&[(STATE_TABLE_ENV, "s"), (OUTBOX_TABLE_ENV, "o")]))
                .unwrap();
        assert_eq!(ok.settings.grace_seconds, 900);
        assert_eq!(ok.store.state_table, "s");
        let set = TimerConfig::from_lookup(lookup(&[
            (STATE_TABLE_ENV, "s"),
            (OUTBOX_TABLE_ENV, "o"),
            (GRACE_ENV, "300"),
        ]))
        .unwrap();
        assert_eq!(set.settings.grace_seconds, 300);
        for bad in ["0", "59", "86401", "soon", "-5"] {
            let err = TimerConfig::from_lookup(lookup(&[
                (STATE_TABLE_ENV, "s"),
                (OUTBOX_TABLE_ENV, "o"),
                (GRACE_ENV, bad),
            ]))
            .unwrap_err();
            assert!(err.to_string().contains(GRACE_ENV), "{err}");
        }
    }
}
