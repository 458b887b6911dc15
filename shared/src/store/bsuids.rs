//! Business-scoped user id items: `BSUID#<bsuid>` names the phone the webhook learned it
//! beside, so a message that carries only the BSUID finds the phone's sessions, and keeps a
//! STOP or START it sent before anyone knew its phone.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{conditional, n, s, Item, Key, Store, StoreError, Write};
use crate::bsuid::Bsuid;
use crate::session::Session;

/// What the table knows of a BSUID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BsuidRecord {
    /// The phone (WhatsApp id digits) it was learned beside, if it was.
    pub phone: Option<String>,
    /// A STOP (`true`) or START (`false`) it sent, and that message's time: set only while
    /// its phone was unknown, handed to the phone's opt-out once it is learned.
    pub opt_out: Option<(bool, i64)>,
}

impl BsuidRecord {
    fn from_item(item: &Item) -> Self {
        let phone = item
            .get("phone")
            .and_then(|v| v.as_s().ok())
            .filter(|p| !p.is_empty())
            .cloned();
        let opted_out = item.get("optedOut").and_then(|v| v.as_bool().ok()).copied();
        let updated_at = item
            .get("updatedAt")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok());
        Self {
            phone,
            opt_out: opted_out.zip(updated_at),
        }
    }
}

impl Store {
    /// What the table knows of `bsuid` (one consistent `GetItem`), if anything.
    pub async fn bsuid_record(&self, bsuid: &Bsuid) -> Result<Option<BsuidRecord>, StoreError> {
        let item = self
            .get("GetItem(bsuid)", &Key::bsuid(bsuid.as_str()), true)
            .await?;
        Ok(item.as_ref().map(BsuidRecord::from_item))
    }

    /// Records that `bsuid` is `phone`'s (replacing any phone it named before) and answers the
    /// record as it is now, with the STOP or START it sent while unknown, if any.
    pub async fn learn_bsuid(&self, bsuid: &Bsuid, phone: &str) -> Result<BsuidRecord, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::bsuid(bsuid.as_str()).item()))
            .update_expression("SET phone = :p")
            .expression_attribute_values(":p", s(phone))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("UpdateItem(learn bsuid)", e))?;
        Ok(out
            .attributes
            .as_ref()
            .map(BsuidRecord::from_item)
            .unwrap_or_default())
    }

    /// Forgets `bsuid`, replaced by another for `phone`; only while it still names `phone`.
    pub async fn forget_bsuid(&self, bsuid: &Bsuid, phone: &str) -> Result<Write, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Key::bsuid(bsuid.as_str()).item()))
            .condition_expression("phone = :p")
            .expression_attribute_values(":p", s(phone))
            .send()
            .await
            .map(|_| ());
        conditional("DeleteItem(bsuid)", result)
    }

    /// A STOP (`true`) or START (`false`) from a BSUID whose phone is unknown, unless a later
    /// message already decided it. `Written` carries the record as it is now: its phone, if
    /// it was learned meanwhile.
    pub async fn set_bsuid_opt_out(
        &self,
        bsuid: &Bsuid,
        opted_out: bool,
        message_time: i64,
    ) -> Result<Write<BsuidRecord>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::bsuid(bsuid.as_str()).item()))
            .update_expression("SET optedOut = :o, updatedAt = :t")
            .condition_expression("attribute_not_exists(updatedAt) OR updatedAt <= :t")
            .expression_attribute_values(":o", AttributeValue::Bool(opted_out))
            .expression_attribute_values(":t", n(message_time))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map(|out| {
                out.attributes
                    .as_ref()
                    .map(BsuidRecord::from_item)
                    .unwrap_or_default()
            });
        conditional("UpdateItem(bsuid opt-out)", result)
    }

    /// Keeps `bsuid` on `session`, the phone's item the webhook reads anyway, so the next
    /// message carrying it costs no write; only while the item is still that session.
    pub async fn keep_bsuid_on_session(
        &self,
        session: &Session,
        bsuid: &Bsuid,
    ) -> Result<Write, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::session(&session.user_id).item()))
            .update_expression("SET bsuid = :b")
            .condition_expression("sessionId = :id")
            .expression_attribute_values(":b", s(bsuid.as_str()))
            .expression_attribute_values(":id", s(session.id.as_str()))
            .send()
            .await
            .map(|_| ());
        conditional("UpdateItem(session bsuid)", result)
    }
}
