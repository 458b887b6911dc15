//! Opt-out items: a phone's STOP / START state, decided by the latest message; and a virtual
//! phone's, which is one user's and lifts by itself ([`crate::limits::Quota`]).

use aws_sdk_dynamodb::types::AttributeValue;

use super::{conditional, n, Key, Store, StoreError, Write, TTL_ATTRIBUTE};
use crate::limits::VIRTUAL_OPT_OUT_SECONDS;
use crate::session::UserId;

/// A phone's opt-out record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    /// Whether templates to this phone are blocked.
    pub opted_out: bool,
    /// The time of the message that set it.
    pub updated_at: i64,
    /// Every number recorded for this person when they opted out (sender and session phones).
    pub phones: Vec<String>,
}

impl Store {
    /// Sets or lifts the opt-out of `digits`, unless a later message already decided it (then
    /// the condition fails).
    pub async fn set_opt_out(
        &self,
        digits: &str,
        opted_out: bool,
        message_time: i64,
        phones: &[String],
    ) -> Result<Write, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::opt_out(digits).item()))
            .condition_expression("attribute_not_exists(pk) OR updatedAt <= :t")
            .expression_attribute_values(":o", AttributeValue::Bool(opted_out))
            .expression_attribute_values(":t", n(message_time));
        req = if phones.is_empty() {
            req.update_expression("SET optedOut = :o, updatedAt = :t")
        } else {
            req.update_expression("SET optedOut = :o, updatedAt = :t ADD phones :p")
                .expression_attribute_values(":p", AttributeValue::Ss(phones.to_vec()))
        };
        conditional("UpdateItem(opt-out)", req.send().await.map(|_| ()))
    }

    /// Sets or lifts `user`'s opt-out of the virtual phone `digits`, unless a later message
    /// already decided it. A `STOP` is in force for [`VIRTUAL_OPT_OUT_SECONDS`] from its time
    /// (create's check says so); the item's TTL then only cleans up.
    pub async fn set_user_opt_out(
        &self,
        digits: &str,
        user: &UserId,
        opted_out: bool,
        message_time: i64,
    ) -> Result<Write, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::user_opt_out(digits, user).item()))
            .condition_expression("attribute_not_exists(pk) OR updatedAt <= :t")
            .update_expression("SET optedOut = :o, updatedAt = :t, #ttl = :exp")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":o", AttributeValue::Bool(opted_out))
            .expression_attribute_values(":t", n(message_time))
            .expression_attribute_values(":exp", n(message_time + VIRTUAL_OPT_OUT_SECONDS))
            .send()
            .await
            .map(|_| ());
        conditional("UpdateItem(user opt-out)", result)
    }

    /// The opt-out record of `digits`, if any.
    pub async fn opt_out(&self, digits: &str) -> Result<Option<OptOut>, StoreError> {
        let item = self
            .get("GetItem(opt-out)", &Key::opt_out(digits), true)
            .await?;
        Ok(item.map(|item| OptOut {
            opted_out: matches!(item.get("optedOut"), Some(AttributeValue::Bool(true))),
            updated_at: item
                .get("updatedAt")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            phones: item
                .get("phones")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default(),
        }))
    }
}
