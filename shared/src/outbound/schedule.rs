//! When a failed delivery is tried again (pure arithmetic): the retry schedule and the
//! receiver's `Retry-After`.
//!
//! The schedule is a list of waits: attempt 1 goes at once, attempt `n + 1` after the `n`th
//! wait, so a schedule of six waits makes seven attempts. A `Retry-After` may lengthen a wait,
//! never shorten it, and never beyond the schedule's following wait (the last wait is never
//! lengthened): the receiver can ask for time, but the number of attempts stays fixed and the
//! whole delivery still ends within a known bound.

use std::time::Duration;

/// The waits of `WEBHOOK_RETRY_SCHEDULE_SECONDS` when it is unset: Zernio's.
pub const DEFAULT_SCHEDULE_SECONDS: [u64; 6] = [10, 100, 1_000, 10_000, 86_400, 86_400];

/// The waits before each retry, parsed from a comma-separated list of seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// A schedule that is not a comma-separated list of whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected comma-separated whole seconds such as 10,100,1000; {0:?} is not one")]
pub struct ScheduleError(pub String);

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Attempt again after this wait.
    RetryAfter(Duration),
    /// That was the last attempt: the delivery has failed for good.
    GiveUp,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(
            DEFAULT_SCHEDULE_SECONDS
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
        )
    }
}

impl RetrySchedule {
    /// Parses `10,100,1000`; spaces around a number are allowed, an empty item is not. An
    /// empty string is a schedule without retries (one attempt).
    pub fn parse(s: &str) -> Result<Self, ScheduleError> {
        if s.trim().is_empty() {
            return Ok(Self(Vec::new()));
        }
        s.split(',')
            .map(|item| {
                item.trim()
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| ScheduleError(item.to_owned()))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The waits, in order.
    pub fn waits(&self) -> &[Duration] {
        &self.0
    }

    /// How many attempts a delivery gets: the first, and one after each wait.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len()).map_or(u32::MAX, |n| n.saturating_add(1))
    }

    /// What follows the failure of attempt `number` (1-based), given the receiver's
    /// `Retry-After`: the schedule's wait, lengthened by `retry_after` up to the following wait.
    pub fn after_failure(&self, number: u32, retry_after: Option<Duration>) -> NextStep {
        let index = number.max(1) as usize - 1;
        let Some(&wait) = self.0.get(index) else {
            return NextStep::GiveUp;
        };
        let cap = self.0.get(index + 1).copied().unwrap_or(wait).max(wait);
        let wait = retry_after.map_or(wait, |asked| asked.clamp(wait, cap));
        NextStep::RetryAfter(wait)
    }
}

/// The wait a `Retry-After` header asks for: whole seconds, or an HTTP date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`) read against `now` (epoch seconds); a date already past
/// asks for no wait. Anything else is ignored.
pub fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, format).ok()?;
    let delay = at.assume_utc().unix_timestamp().saturating_sub(now);
    Some(Duration::from_secs(u64::try_from(delay).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_default_schedule_makes_seven_attempts_with_zernios_waits() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 7);
        let waits: Vec<NextStep> = (1..=7).map(|n| schedule.after_failure(n, None)).collect();
        assert_eq!(
            waits,
            [
                NextStep::RetryAfter(secs(10)),
                NextStep::RetryAfter(secs(100)),
                NextStep::RetryAfter(secs(1_000)),
                NextStep::RetryAfter(secs(10_000)),
                NextStep::RetryAfter(secs(86_400)),
                NextStep::RetryAfter(secs(86_400)),
                NextStep::GiveUp,
            ]
        );
        let total: Duration = schedule.waits().iter().sum();
        assert_eq!(total, secs(183_910), "about 51 hours, as Zernio documents");
    }

    #[test]
    fn after_the_last_attempt_the_delivery_has_failed_for_good_even_if_asked_to_wait() {
        let schedule = RetrySchedule::parse("5,6").unwrap();
        assert_eq!(schedule.attempts(), 3);
        assert_eq!(schedule.after_failure(3, Some(secs(1))), NextStep::GiveUp);
        assert_eq!(schedule.after_failure(4, None), NextStep::GiveUp);
        let once = RetrySchedule::parse("").unwrap();
        assert_eq!(once.attempts(), 1);
        assert_eq!(once.after_failure(1, None), NextStep::GiveUp);
    }

    #[test]
    fn retry_after_lengthens_a_wait_up_to_the_following_wait_and_never_shortens_it() {
        let schedule = RetrySchedule::default();
        // Longer than the step: honoured.
        assert_eq!(
            schedule.after_failure(1, Some(secs(60))),
            NextStep::RetryAfter(secs(60))
        );
        // Shorter than the step: the schedule's wait.
        assert_eq!(
            schedule.after_failure(2, Some(secs(1))),
            NextStep::RetryAfter(secs(100))
        );
        // Longer than the following wait: capped there.
        assert_eq!(
            schedule.after_failure(1, Some(secs(1_000_000))),
            NextStep::RetryAfter(secs(100))
        );
        // The last wait has no following wait: it is not lengthened.
        assert_eq!(
            schedule.after_failure(6, Some(secs(1_000_000))),
            NextStep::RetryAfter(secs(86_400))
        );
    }

    #[test]
    fn a_malformed_schedule_names_the_bad_item() {
        assert_eq!(
            RetrySchedule::parse(" 1, 2 ,3").unwrap().waits(),
            [secs(1), secs(2), secs(3)]
        );
        assert_eq!(
            RetrySchedule::parse("10,,100"),
            Err(ScheduleError(String::new()))
        );
        assert_eq!(
            RetrySchedule::parse("10,-1"),
            Err(ScheduleError("-1".into()))
        );
        assert_eq!(
            RetrySchedule::parse("10,1m"),
            Err(ScheduleError("1m".into()))
        );
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        // 1994-11-06T08:49:37Z
        let at = 784_111_777;
        assert_eq!(parse_retry_after("120", at), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", at), Some(secs(0)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", at),
            Some(secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", at),
            Some(secs(0)),
            "a date already past asks for no wait"
        );
        assert_eq!(parse_retry_after("-5", at), None);
        assert_eq!(parse_retry_after("soon", at), None);
    }
}
