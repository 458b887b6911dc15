//! The delivery settings from the environment: `WEBHOOK_TIMEOUT_MS`,
//! `WEBHOOK_RETRY_SCHEDULE_SECONDS`, `WEBHOOK_ALLOW_PRIVATE_TARGETS`.

use std::time::Duration;

use crate::config::ConfigError;

use super::egress::Targets;
use super::schedule::RetrySchedule;

/// The attempt's time limit when `WEBHOOK_TIMEOUT_MS` is unset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5_000);

/// How many webhooks' deliveries one invocation attempts at once when
/// `WEBHOOK_CONCURRENCY` is unset.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// How deliveries are made and retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// `WEBHOOK_TIMEOUT_MS`: one attempt, connect to the end of the response body.
    pub timeout: Duration,
    /// `WEBHOOK_RETRY_SCHEDULE_SECONDS`: the waits before each retry.
    pub schedule: RetrySchedule,
    /// `WEBHOOK_ALLOW_PRIVATE_TARGETS`: which addresses deliveries may reach.
    pub targets: Targets,
    /// `WEBHOOK_CONCURRENCY`: how many webhooks' queues an invocation runs at once.
    pub concurrency: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            schedule: RetrySchedule::default(),
            targets: Targets::PublicOnly,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

impl DeliverySettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (tests pass a map); unset or blank means the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let defaults = Self::default();

        let timeout = match get("WEBHOOK_TIMEOUT_MS") {
            None => defaults.timeout,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "WEBHOOK_TIMEOUT_MS",
                        reason: format!(
                            "expected a whole number of milliseconds above 0, got {v:?}"
                        ),
                    })
                }
            },
        };
        let schedule = match get("WEBHOOK_RETRY_SCHEDULE_SECONDS") {
            None => defaults.schedule,
            Some(v) => RetrySchedule::parse(&v).map_err(|e| ConfigError::Invalid {
                name: "WEBHOOK_RETRY_SCHEDULE_SECONDS",
                reason: e.to_string(),
            })?,
        };
        let concurrency = match get("WEBHOOK_CONCURRENCY") {
            None => defaults.concurrency,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=1_000).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "WEBHOOK_CONCURRENCY",
                        reason: format!("expected a whole number from 1 to 1000, got {v:?}"),
                    })
                }
            },
        };
        let targets = match get("WEBHOOK_ALLOW_PRIVATE_TARGETS") {
            None => defaults.targets,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => Targets::PrivateAllowed,
                "false" => Targets::PublicOnly,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "WEBHOOK_ALLOW_PRIVATE_TARGETS",
                        reason: format!("expected true or false, got {v:?}"),
                    })
                }
            },
        };
        Ok(Self {
            timeout,
            schedule,
            targets,
            concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<DeliverySettings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DeliverySettings::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn unset_variables_give_the_documented_defaults() {
        let settings = read(&[]).unwrap();
        assert_eq!(settings.timeout, Duration::from_millis(5_000));
        assert_eq!(settings.schedule.attempts(), 7);
        assert_eq!(settings.targets, Targets::PublicOnly);
        assert_eq!(settings.concurrency, 16);
        assert_eq!(read(&[("WEBHOOK_TIMEOUT_MS", " ")]).unwrap(), settings);
    }

    #[test]
    fn set_variables_are_read() {
        let settings = read(&[
            ("WEBHOOK_TIMEOUT_MS", "200"),
            ("WEBHOOK_RETRY_SCHEDULE_SECONDS", "1,2"),
            ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "TRUE"),
            ("WEBHOOK_CONCURRENCY", "3"),
        ])
        .unwrap();
        assert_eq!(settings.concurrency, 3);
        assert_eq!(settings.timeout, Duration::from_millis(200));
        assert_eq!(
            settings.schedule.waits(),
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert_eq!(settings.targets, Targets::PrivateAllowed);
        let off = read(&[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")]).unwrap();
        assert_eq!(off.targets, Targets::PublicOnly);
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (name, value) in [
            ("WEBHOOK_TIMEOUT_MS", "0"),
            ("WEBHOOK_TIMEOUT_MS", "5s"),
            ("WEBHOOK_RETRY_SCHEDULE_SECONDS", "10,,100"),
            ("WEBHOOK_RETRY_SCHEDULE_SECONDS", "10;100"),
            ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "yes"),
            ("WEBHOOK_CONCURRENCY", "0"),
            ("WEBHOOK_CONCURRENCY", "many"),
        ] {
            let err = read(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
