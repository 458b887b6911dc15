//! Configuration from the environment, read once at init.

use std::fmt;
use std::time::Duration;

use crate::limits::Quota;
use crate::phone::{PhoneE164, VirtualLine};

/// Which function is starting: each requires only the variables it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The create function (needs Meta's access token).
    Create,
    /// The send function (sandbox messages; needs Meta's access token).
    Send,
    /// The messages function (reads the conversation).
    Messages,
    /// The list function.
    List,
    /// The revoke function.
    Revoke,
    /// The webhook function (needs the app secret and the verify token).
    Webhook,
    /// The webhooks function: an API user's outbound webhooks (`/v1/webhooks/*`); its
    /// delivery settings are `outbound::DeliverySettings`.
    Webhooks,
    /// The events function: the table's stream and the retry sweep become deliveries; its
    /// delivery settings are `outbound::DeliverySettings`. Nothing beyond the table.
    Events,
    /// The phone function: the table's stream records of accepted sends to virtual phones
    /// become the phones' signed deliveries (needs the app secret that signs them).
    Phone,
    /// The reply function (`POST /v1/whatsapp/sandbox/sessions/{sessionId}/reply`): a
    /// virtual phone writes to the sandbox number (needs the app secret that signs it).
    Reply,
    /// Tools (admin, dev stack): nothing beyond the table.
    Tool,
}

/// A missing or malformed variable, named so the start-up log says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("missing required environment variable {0}")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A secret value whose `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Webhooks one user may have when `USER_WEBHOOK_LIMIT` is unset: Zernio's current limit.
pub const DEFAULT_USER_WEBHOOK_LIMIT: i64 = 50;

/// Test and redeliver attempts one user may start per minute when
/// `USER_WEBHOOK_ATTEMPTS_PER_MINUTE` is unset: plenty for someone trying their endpoint, too
/// few to hammer a third party's or map its ports.
pub const DEFAULT_USER_WEBHOOK_ATTEMPTS_PER_MINUTE: i64 = 30;

/// The Graph API version used when `META_GRAPH_API_VERSION` is unset.
pub const DEFAULT_GRAPH_API_VERSION: &str = "v26.0";

/// Everything the functions read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `SANDBOX_DISPLAY_NUMBER`, normalized to `+` and digits.
    pub sandbox_display_number: String,
    /// `SANDBOX_PHONE_NUMBER_ID`: Meta's id of the sandbox number.
    pub phone_number_id: String,
    /// `SANDBOX_TEMPLATE_NAME`.
    pub template_name: String,
    /// `SANDBOX_TEMPLATE_LANGUAGE`.
    pub template_language: String,
    /// `META_GRAPH_BASE_URL`, without a trailing slash.
    pub graph_base_url: String,
    /// `META_GRAPH_API_VERSION`.
    pub graph_api_version: String,
    /// `META_ACCESS_TOKEN` (required by create).
    pub access_token: Option<Secret>,
    /// `META_APP_SECRET` (required by the webhook).
    pub app_secret: Option<Secret>,
    /// `META_WEBHOOK_VERIFY_TOKEN` (required by the webhook).
    pub verify_token: Option<Secret>,
    /// `PENDING_TTL_SECONDS`.
    pub pending_ttl_seconds: i64,
    /// `ACTIVE_TTL_SECONDS`.
    pub active_ttl_seconds: i64,
    /// `AUTH_CACHE_SECONDS`: how long a container trusts an API-key lookup.
    pub auth_cache_seconds: i64,
    /// `AUTH_NEGATIVE_CACHE_SECONDS`: how long a container remembers that an API-key hash is
    /// unknown (or disabled), so a repeated bad key costs no read; a key provisioned meanwhile
    /// works after at most this long.
    pub auth_negative_cache_seconds: i64,
    /// `USER_DAILY_SEND_LIMIT`: activation templates per user per UTC day.
    pub user_daily_send_limit: i64,
    /// `RECIPIENT_DAILY_SEND_LIMIT`: activation templates per recipient phone per UTC day,
    /// across all users.
    pub recipient_daily_send_limit: i64,
    /// `USER_DAILY_MESSAGE_LIMIT`: sandbox messages per user per UTC day.
    pub user_daily_message_limit: i64,
    /// `CUSTOMER_SERVICE_WINDOW_SECONDS`: free-form messages are allowed this long after the
    /// phone's last message.
    pub customer_service_window_seconds: i64,
    /// `USER_WEBHOOK_LIMIT`: outbound webhooks one user may have (Zernio's limit, 50).
    pub user_webhook_limit: i64,
    /// `USER_WEBHOOK_ATTEMPTS_PER_MINUTE`: attempts one user may start with `POST
    /// /v1/webhooks/test` and `/logs/redeliver` together in a minute.
    pub user_webhook_attempts_per_minute: i64,
    /// `META_CONNECT_TIMEOUT_MS`.
    pub graph_connect_timeout: Duration,
    /// `META_TIMEOUT_MS`: the whole send, connect included.
    pub graph_timeout: Duration,
    /// `VIRTUAL_PHONES`: whether the service plays the virtual phones (`+1 NXX 555 01XX`)
    /// instead of sending to them through Meta.
    pub virtual_phones: bool,
    /// `VIRTUAL_DAILY_SEND_LIMIT`: activation templates per user per UTC day to virtual phones
    /// (their own counter: virtual use never takes from `USER_DAILY_SEND_LIMIT`).
    pub virtual_daily_send_limit: i64,
    /// `VIRTUAL_DAILY_MESSAGE_LIMIT`: sandbox messages per user per UTC day to virtual phones.
    pub virtual_daily_message_limit: i64,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env(role: Role) -> Result<Self, ConfigError> {
        Self::from_lookup(role, |name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (tests pass a map).
    pub fn from_lookup(
        role: Role,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let number = |name, default| parsed(&get, name, default, NUMBER);
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let needs_sandbox = !matches!(role, Role::Tool | Role::Events);
        let secret_for =
            |name: &'static str, needed: bool| -> Result<Option<Secret>, ConfigError> {
                match get(name) {
                    Some(v) => Ok(Some(Secret::new(v))),
                    None if needed => Err(ConfigError::Missing(name)),
                    None => Ok(None),
                }
            };

        let display = if needs_sandbox {
            required("SANDBOX_DISPLAY_NUMBER")?
        } else {
            get("SANDBOX_DISPLAY_NUMBER").unwrap_or_default()
        };
        let display_digits: String = display.chars().filter(char::is_ascii_digit).collect();
        if needs_sandbox && display_digits.is_empty() {
            return Err(ConfigError::Invalid {
                name: "SANDBOX_DISPLAY_NUMBER",
                reason: "expected a phone number such as +12029087457".into(),
            });
        }

        Ok(Self {
            table_name: required("TABLE_NAME")?,
            sandbox_display_number: format!("+{display_digits}"),
            phone_number_id: if needs_sandbox {
                required("SANDBOX_PHONE_NUMBER_ID")?
            } else {
                get("SANDBOX_PHONE_NUMBER_ID").unwrap_or_default()
            },
            template_name: get("SANDBOX_TEMPLATE_NAME").unwrap_or_else(|| "sandbox_start".into()),
            template_language: get("SANDBOX_TEMPLATE_LANGUAGE").unwrap_or_else(|| "en_US".into()),
            graph_base_url: get("META_GRAPH_BASE_URL")
                .unwrap_or_else(|| "https://graph.facebook.com".into())
                .trim_end_matches('/')
                .to_owned(),
            graph_api_version: get("META_GRAPH_API_VERSION")
                .unwrap_or_else(|| DEFAULT_GRAPH_API_VERSION.into()),
            access_token: secret_for(
                "META_ACCESS_TOKEN",
                matches!(role, Role::Create | Role::Send),
            )?,
            app_secret: secret_for(
                "META_APP_SECRET",
                matches!(role, Role::Webhook | Role::Phone | Role::Reply),
            )?,
            verify_token: secret_for("META_WEBHOOK_VERIFY_TOKEN", role == Role::Webhook)?,
            pending_ttl_seconds: number("PENDING_TTL_SECONDS", 86_400)?,
            active_ttl_seconds: number("ACTIVE_TTL_SECONDS", 604_800)?,
            auth_cache_seconds: number("AUTH_CACHE_SECONDS", 60)?,
            auth_negative_cache_seconds: number("AUTH_NEGATIVE_CACHE_SECONDS", 5)?,
            user_daily_send_limit: number("USER_DAILY_SEND_LIMIT", 10)?,
            recipient_daily_send_limit: number("RECIPIENT_DAILY_SEND_LIMIT", 3)?,
            user_daily_message_limit: number("USER_DAILY_MESSAGE_LIMIT", 50)?,
            customer_service_window_seconds: number("CUSTOMER_SERVICE_WINDOW_SECONDS", 86_400)?,
            user_webhook_limit: number("USER_WEBHOOK_LIMIT", DEFAULT_USER_WEBHOOK_LIMIT)?,
            user_webhook_attempts_per_minute: number(
                "USER_WEBHOOK_ATTEMPTS_PER_MINUTE",
                DEFAULT_USER_WEBHOOK_ATTEMPTS_PER_MINUTE,
            )?,
            graph_connect_timeout: Duration::from_millis(
                number("META_CONNECT_TIMEOUT_MS", 2_000)? as u64
            ),
            graph_timeout: Duration::from_millis(number("META_TIMEOUT_MS", 5_000)? as u64),
            virtual_phones: parsed(&get, "VIRTUAL_PHONES", true, FLAG)?,
            virtual_daily_send_limit: number("VIRTUAL_DAILY_SEND_LIMIT", 1_000)?,
            virtual_daily_message_limit: number("VIRTUAL_DAILY_MESSAGE_LIMIT", 1_000)?,
        })
    }

    /// The line of `phone` if it is a virtual phone the service plays: in the virtual range
    /// and `VIRTUAL_PHONES` on. `None` for every other number (with `VIRTUAL_PHONES=false`,
    /// the range is ordinary numbers).
    pub fn virtual_line(&self, phone: &PhoneE164) -> Option<VirtualLine> {
        self.virtual_phones.then(|| phone.virtual_line()).flatten()
    }

    /// The sandbox display number's digits, without the `+` (Meta's `display_phone_number`).
    pub fn display_digits(&self) -> &str {
        self.sandbox_display_number.trim_start_matches('+')
    }

    /// Whose quota a send to `phone` uses ([`Quota`]).
    pub fn quota(&self, phone: &PhoneE164) -> Quota {
        match self.virtual_line(phone) {
            Some(_) => Quota::Virtual,
            None => Quota::Person,
        }
    }

    /// The daily sandbox-message cap of a user under `quota`.
    pub fn daily_message_limit(&self, quota: Quota) -> i64 {
        match quota {
            Quota::Person => self.user_daily_message_limit,
            Quota::Virtual => self.virtual_daily_message_limit,
        }
    }
}

/// The variable `name` read by `parse` (after trimming), or `default` when it is unset;
/// `expected` says what a value that does not parse should have been.
fn parsed<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    (expected, parse): (&str, fn(&str) -> Option<T>),
) -> Result<T, ConfigError> {
    let Some(v) = get(name) else {
        return Ok(default);
    };
    parse(v.trim()).ok_or_else(|| ConfigError::Invalid {
        name,
        reason: format!("expected {expected}, got {v:?}"),
    })
}

/// `true` or `false`, in any case.
const FLAG: (&str, fn(&str) -> Option<bool>) =
    ("true or false", |v| match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    });

/// A whole number, 0 or more.
const NUMBER: (&str, fn(&str) -> Option<i64>) = ("a whole number of at least 0", |v| {
    v.parse::<i64>().ok().filter(|n| *n >= 0)
});

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("TABLE_NAME", "t"),
        ("SANDBOX_DISPLAY_NUMBER", "12029087457"),
        ("SANDBOX_PHONE_NUMBER_ID", "1098"),
    ];

    #[test]
    fn the_events_function_needs_only_the_table() {
        assert!(Config::from_lookup(Role::Events, lookup(&BASE[..1])).is_ok());
        let err = Config::from_lookup(Role::Events, lookup(&[])).unwrap_err();
        assert!(err.to_string().contains("TABLE_NAME"), "{err}");
        // The API functions still need the sandbox number.
        assert!(Config::from_lookup(Role::List, lookup(&BASE[..1])).is_err());
    }

    #[test]
    fn missing_required_variable_is_named() {
        let err = Config::from_lookup(Role::List, lookup(&BASE[1..])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required environment variable TABLE_NAME"
        );
        let err = Config::from_lookup(Role::Create, lookup(BASE)).unwrap_err();
        assert!(err.to_string().contains("META_ACCESS_TOKEN"));
        let err = Config::from_lookup(Role::Send, lookup(BASE)).unwrap_err();
        assert!(err.to_string().contains("META_ACCESS_TOKEN"));
        assert!(Config::from_lookup(Role::Messages, lookup(BASE)).is_ok());
        let err = Config::from_lookup(Role::Webhook, lookup(BASE)).unwrap_err();
        assert!(err.to_string().contains("META_APP_SECRET"));
        // The phone and reply functions sign the virtual phones' deliveries.
        for role in [Role::Phone, Role::Reply] {
            let err = Config::from_lookup(role, lookup(BASE)).unwrap_err();
            assert!(err.to_string().contains("META_APP_SECRET"), "{role:?}");
            let signed = [BASE, &[("META_APP_SECRET", "s")]].concat();
            assert!(
                Config::from_lookup(role, lookup(&signed)).is_ok(),
                "{role:?}"
            );
        }
    }

    /// A whole-number variable: its name, its field, its default, and a value to set (which may
    /// carry spaces).
    type Number = (&'static str, fn(&Config) -> i64, i64, &'static str);

    /// Every whole-number variable, a row a line.
    #[rustfmt::skip]
    fn numbers() -> [Number; 14] {
        [
            ("PENDING_TTL_SECONDS", |c| c.pending_ttl_seconds, 86_400, "600"),
            ("ACTIVE_TTL_SECONDS", |c| c.active_ttl_seconds, 604_800, "6000"),
            ("AUTH_CACHE_SECONDS", |c| c.auth_cache_seconds, 60, "30"),
            ("AUTH_NEGATIVE_CACHE_SECONDS", |c| c.auth_negative_cache_seconds, 5, "2"),
            ("USER_DAILY_SEND_LIMIT", |c| c.user_daily_send_limit, 10, "7"),
            ("RECIPIENT_DAILY_SEND_LIMIT", |c| c.recipient_daily_send_limit, 3, " 2 "),
            ("USER_DAILY_MESSAGE_LIMIT", |c| c.user_daily_message_limit, 50, "40"),
            ("CUSTOMER_SERVICE_WINDOW_SECONDS", |c| c.customer_service_window_seconds, 86_400, "3600"),
            ("USER_WEBHOOK_LIMIT", |c| c.user_webhook_limit, 50, "12"),
            ("USER_WEBHOOK_ATTEMPTS_PER_MINUTE", |c| c.user_webhook_attempts_per_minute, 30, "5"),
            ("META_CONNECT_TIMEOUT_MS", |c| c.graph_connect_timeout.as_millis() as i64, 2_000, "700"),
            ("META_TIMEOUT_MS", |c| c.graph_timeout.as_millis() as i64, 5_000, "900"),
            ("VIRTUAL_DAILY_SEND_LIMIT", |c| c.virtual_daily_send_limit, 1_000, "7"),
            ("VIRTUAL_DAILY_MESSAGE_LIMIT", |c| c.virtual_daily_message_limit, 1_000, "9"),
        ]
    }

    #[test]
    fn defaults_and_display_number() {
        let c = Config::from_lookup(Role::List, lookup(BASE)).unwrap();
        assert_eq!(c.sandbox_display_number, "+12029087457");
        assert_eq!(c.template_name, "sandbox_start");
        assert_eq!(c.template_language, "en_US");
        for (name, field, default, _) in numbers() {
            assert_eq!(field(&c), default, "{name}");
        }
        assert_eq!(c.graph_base_url, "https://graph.facebook.com");
        assert!(c.virtual_phones);
    }

    #[test]
    fn virtual_phones_are_on_by_default_and_their_limits_are_read_and_checked() {
        let virtual_phone = PhoneE164::parse("+1 201 555 0150").unwrap();
        let person = PhoneE164::parse("+34 688 246 216").unwrap();
        let on = Config::from_lookup(Role::List, lookup(BASE)).unwrap();
        assert_eq!(
            on.virtual_line(&virtual_phone).map(VirtualLine::number),
            Some(50)
        );
        assert_eq!(on.virtual_line(&person), None);

        let vars = [
            BASE,
            &[
                ("VIRTUAL_PHONES", " FALSE "),
                ("VIRTUAL_DAILY_SEND_LIMIT", "7"),
                ("VIRTUAL_DAILY_MESSAGE_LIMIT", "9"),
            ],
        ]
        .concat();
        let off = Config::from_lookup(Role::List, lookup(&vars)).unwrap();
        assert!(!off.virtual_phones);
        assert_eq!(off.virtual_line(&virtual_phone), None, "ordinary numbers");
        assert_eq!(off.virtual_daily_send_limit, 7);
        assert_eq!(off.virtual_daily_message_limit, 9);

        for (name, bad) in [
            ("VIRTUAL_PHONES", "yes"),
            ("VIRTUAL_DAILY_SEND_LIMIT", "-1"),
            ("VIRTUAL_DAILY_MESSAGE_LIMIT", "many"),
        ] {
            let vars = [BASE, &[(name, bad)]].concat();
            let err = Config::from_lookup(Role::List, lookup(&vars)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn limits_and_negative_cache_are_read_and_checked() {
        let set: Vec<(&str, &str)> = numbers()
            .into_iter()
            .map(|(name, _, _, value)| (name, value))
            .collect();
        let vars = [BASE, &set].concat();
        let c = Config::from_lookup(Role::List, lookup(&vars)).unwrap();
        for (name, field, _, value) in numbers() {
            assert_eq!(field(&c).to_string(), value.trim(), "{name}");
        }

        for (name, ..) in numbers() {
            let bad = [BASE, &[(name, "-1")]].concat();
            let err = Config::from_lookup(Role::List, lookup(&bad)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = Secret::new("EAAG-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }
}
