//! Send caps, rates and opt-outs, the pure part: UTC days and minutes, scopes, the
//! `X-RateLimit-*` numbers, and whose quota a send uses. No I/O here; the store reserves the
//! counters, whose keys (`COUNT#USER#<userId>#<YYYY-MM-DD>`, `COUNT#PHONE#<canonical
//! digits>#<YYYY-MM-DD>`, the virtual phones' `COUNT#VIRTUAL#USER#…` and
//! `COUNT#MSG#VIRTUAL#USER#…`, a user's webhook attempts of a minute) are built by `store::Key`.

use crate::phone::PhoneE164;

/// Seconds in a UTC day (UTC has no daylight saving; leap seconds do not exist in epoch time).
pub const SECONDS_PER_DAY: i64 = 86_400;

/// The UTC day an epoch second falls in, as days since 1970-01-01 (negative before it).
pub fn utc_day(epoch_seconds: i64) -> i64 {
    epoch_seconds.div_euclid(SECONDS_PER_DAY)
}

/// The epoch seconds of the next UTC midnight after `epoch_seconds` (a midnight itself belongs
/// to the day it starts, so its reset is the following midnight): `X-RateLimit-Reset`.
pub fn next_utc_midnight(epoch_seconds: i64) -> i64 {
    (utc_day(epoch_seconds) + 1) * SECONDS_PER_DAY
}

/// Seconds in a minute.
pub const SECONDS_PER_MINUTE: i64 = 60;

/// The minute an epoch second falls in, as minutes since 1970-01-01.
pub fn minute(epoch_seconds: i64) -> i64 {
    epoch_seconds.div_euclid(SECONDS_PER_MINUTE)
}

/// The epoch seconds the next minute starts at: a per-minute rate's `X-RateLimit-Reset`.
pub fn next_minute(epoch_seconds: i64) -> i64 {
    (minute(epoch_seconds) + 1) * SECONDS_PER_MINUTE
}

/// When a counter of the day of `epoch_seconds` may be swept: a day after the day ends, so an
/// operator can still read yesterday's counts.
pub fn counter_expires_at(epoch_seconds: i64) -> i64 {
    next_utc_midnight(epoch_seconds) + SECONDS_PER_DAY
}

/// The UTC date of `epoch_seconds` as `YYYY-MM-DD`, the day part of a counter key.
pub fn utc_date(epoch_seconds: i64) -> String {
    let midnight = utc_day(epoch_seconds) * SECONDS_PER_DAY;
    match time::OffsetDateTime::from_unix_timestamp(midnight) {
        Ok(t) => {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        }
        // Outside the years `time` represents: the day number still names the day uniquely.
        Err(_) => utc_day(epoch_seconds).to_string(),
    }
}

/// The one form of a phone all its WhatsApp forms share (the smallest digits), so a cap
/// counts the phone once whichever form a user typed.
pub fn canonical_digits(phone: &PhoneE164) -> String {
    phone
        .whatsapp_forms()
        .iter()
        .map(|p| p.digits().to_owned())
        .min()
        .unwrap_or_else(|| phone.digits().to_owned())
}

/// Whose quota a send to a phone uses, and whose opt-out blocks it.
///
/// A person's phone counts against the user's daily caps and the phone's own (the
/// per-recipient cap protects a person), and any opt-out of any of its WhatsApp forms blocks
/// it. A virtual phone (`+1 NXX 555 01XX`, played by the service) is shared by every user of a
/// deployment and no person stands behind it: a send counts only against the user's own
/// virtual caps (`VIRTUAL_DAILY_SEND_LIMIT`, `VIRTUAL_DAILY_MESSAGE_LIMIT`), so virtual use
/// never takes from the real quota; and its `STOP` blocks only the user whose session it
/// answered, for [`VIRTUAL_OPT_OUT_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// A phone a person holds.
    Person,
    /// A virtual phone the service plays.
    Virtual,
}

/// How long a virtual phone's `STOP` blocks the user whose session it answered: then it lifts
/// by itself, as if the phone had written `START`, so a CI run starts clean. Enforced when a
/// create checks the opt-out (the item's TTL only cleans up).
pub const VIRTUAL_OPT_OUT_SECONDS: i64 = 60;

/// Which cap a number belongs to (`details.scope` of a 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Templates per user per UTC day (`USER_DAILY_SEND_LIMIT`).
    User,
    /// Templates per recipient phone per UTC day (`RECIPIENT_DAILY_SEND_LIMIT`).
    Recipient,
}

impl Scope {
    /// The contract's name: `user` or `recipient`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Recipient => "recipient",
        }
    }
}

/// One cap and how much of it is used today: the numbers behind the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Which cap.
    pub scope: Scope,
    /// The cap (`X-RateLimit-Limit`).
    pub limit: i64,
    /// Sends counted today, this request's included when it succeeded.
    pub used: i64,
}

impl Usage {
    /// `X-RateLimit-Remaining`: never below 0.
    pub fn remaining(&self) -> i64 {
        (self.limit - self.used).max(0)
    }

    /// Whether one more send would go past the cap.
    pub fn is_exhausted(&self) -> bool {
        self.used >= self.limit
    }
}

/// The cap a 200's headers describe: the one with fewer sends left; on a tie the smaller cap,
/// then the user's (the caller's own budget is the one they can act on).
pub fn tighter(user: Usage, recipient: Usage) -> Usage {
    let key = |u: &Usage| (u.remaining(), u.limit);
    if key(&recipient) < key(&user) {
        recipient
    } else {
        user
    }
}

/// The tightest of `usages` ([`tighter`] pairwise); `None` for none.
pub fn tightest(usages: impl IntoIterator<Item = Usage>) -> Option<Usage> {
    usages.into_iter().reduce(tighter)
}

/// The three `X-RateLimit-*` headers for a daily cap's `usage`, the reset being the next UTC
/// midnight.
pub fn rate_limit_headers(usage: Usage, now: i64) -> [(&'static str, String); 3] {
    rate_limit_headers_until(usage, next_utc_midnight(now))
}

/// The three `X-RateLimit-*` headers for `usage` of a cap that resets at `reset` (epoch
/// seconds).
pub fn rate_limit_headers_until(usage: Usage, reset: i64) -> [(&'static str, String); 3] {
    [
        ("X-RateLimit-Limit", usage.limit.to_string()),
        ("X-RateLimit-Remaining", usage.remaining().to_string()),
        ("X-RateLimit-Reset", reset.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24T00:00:00Z.
    const MIDNIGHT: i64 = 1_795_478_400;

    #[test]
    fn day_boundary() {
        assert_eq!(utc_day(MIDNIGHT - 1) + 1, utc_day(MIDNIGHT));
        assert_eq!(utc_day(MIDNIGHT), utc_day(MIDNIGHT + SECONDS_PER_DAY - 1));
        assert_eq!(utc_date(MIDNIGHT - 1), "2026-11-23");
        assert_eq!(utc_date(MIDNIGHT), "2026-11-24");
        assert_eq!(utc_date(MIDNIGHT + SECONDS_PER_DAY - 1), "2026-11-24");
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_day(-1), -1, "before 1970 still rounds down");
    }

    #[test]
    fn reset_is_the_next_utc_midnight() {
        assert_eq!(next_utc_midnight(MIDNIGHT - 1), MIDNIGHT);
        assert_eq!(next_utc_midnight(MIDNIGHT), MIDNIGHT + SECONDS_PER_DAY);
        assert_eq!(
            next_utc_midnight(MIDNIGHT + 51_322),
            MIDNIGHT + SECONDS_PER_DAY
        );
        assert_eq!(counter_expires_at(MIDNIGHT), MIDNIGHT + 2 * SECONDS_PER_DAY);
    }

    #[test]
    fn a_minutes_reset_is_the_next_minute() {
        assert_eq!(next_minute(MIDNIGHT), MIDNIGHT + 60);
        assert_eq!(next_minute(MIDNIGHT + 59), MIDNIGHT + 60);
        assert_eq!(minute(MIDNIGHT + 60), minute(MIDNIGHT) + 1);
    }

    #[test]
    fn both_forms_share_one_canonical_form() {
        let with_nine = PhoneE164::from_stored("5511987654321").unwrap();
        let without = PhoneE164::from_stored("551187654321").unwrap();
        assert_eq!(canonical_digits(&with_nine), "551187654321");
        assert_eq!(canonical_digits(&without), "551187654321");
    }

    #[test]
    fn tighter_scope_for_the_headers() {
        let user = |used| Usage {
            scope: Scope::User,
            limit: 10,
            used,
        };
        let recipient = |used| Usage {
            scope: Scope::Recipient,
            limit: 3,
            used,
        };
        assert_eq!(tighter(user(1), recipient(1)).scope, Scope::Recipient);
        assert_eq!(tighter(user(9), recipient(1)).scope, Scope::User);
        // Tie on remaining (2 each): the smaller cap.
        assert_eq!(tighter(user(8), recipient(1)).scope, Scope::Recipient);
        let same = Usage {
            scope: Scope::Recipient,
            limit: 10,
            used: 8,
        };
        assert_eq!(tighter(user(8), same).scope, Scope::User);
        assert_eq!(recipient(5).remaining(), 0);
        assert!(recipient(3).is_exhausted() && !recipient(2).is_exhausted());
        assert_eq!(Scope::Recipient.as_str(), "recipient");
    }

    #[test]
    fn headers() {
        let h = rate_limit_headers(
            Usage {
                scope: Scope::Recipient,
                limit: 3,
                used: 3,
            },
            MIDNIGHT + 10,
        );
        assert_eq!(h[0], ("X-RateLimit-Limit", "3".to_owned()));
        assert_eq!(h[1], ("X-RateLimit-Remaining", "0".to_owned()));
        assert_eq!(
            h[2],
            (
                "X-RateLimit-Reset",
                (MIDNIGHT + SECONDS_PER_DAY).to_string()
            )
        );
    }
}
