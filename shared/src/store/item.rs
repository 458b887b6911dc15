//! The codec: how a [`Session`] is stored, and back.

use serde::{Deserialize, Serialize};

use super::{Item, Key, StoreError};
use crate::phone::PhoneE164;
use crate::session::{
    Delivery, DeliveryError, DeliveryStatus, Session, SessionId, SessionStatus, UserId,
};

/// The stored shape of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionItem {
    pk: String,
    sk: String,
    session_id: String,
    user_id: UserId,
    phone_e164: String,
    status: String,
    created_at: i64,
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activation_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template_sent_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wa_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery: Option<DeliveryItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery_rank: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    write_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_inbound_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bsuid: Option<String>,
}

/// The stored shape of a delivery report (the `delivery` map of a session item).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeliveryItem {
    status: String,
    updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_details: Option<String>,
}

impl DeliveryItem {
    pub(super) fn from_delivery(d: &Delivery) -> Self {
        Self {
            status: d.status.as_str().to_owned(),
            updated_at: d.updated_at,
            error_code: d.error.as_ref().map(|e| e.code),
            error_title: d.error.as_ref().and_then(|e| e.title.clone()),
            error_message: d.error.as_ref().and_then(|e| e.message.clone()),
            error_details: d.error.as_ref().and_then(|e| e.details.clone()),
        }
    }

    fn into_delivery(self) -> Option<Delivery> {
        Some(Delivery {
            status: DeliveryStatus::parse(&self.status)?,
            updated_at: self.updated_at,
            error: self.error_code.map(|code| DeliveryError {
                code,
                title: self.error_title,
                message: self.error_message,
                details: self.error_details,
            }),
        })
    }
}

impl SessionItem {
    fn from_session(session: &Session, write_id: &str) -> Self {
        let Key { pk, sk } = Key::session(&session.user_id);
        Self {
            pk,
            sk,
            session_id: session.id.as_str().to_owned(),
            user_id: session.user_id.clone(),
            phone_e164: session.phone.digits().to_owned(),
            status: session.status.as_str().to_owned(),
            created_at: session.created_at,
            expires_at: session.expires_at,
            activated_at: session.activated_at,
            activation_message_id: session.activation_message_id.clone(),
            template_sent_at: session.template_sent_at,
            wa_id: session.wa_id.clone(),
            delivery: session.delivery.as_ref().map(DeliveryItem::from_delivery),
            delivery_rank: session.delivery.as_ref().map(|d| d.status.rank()),
            write_id: Some(write_id.to_owned()),
            last_inbound_at: session.last_inbound_at,
            bsuid: session.bsuid.clone(),
        }
    }

    fn into_session(self) -> Option<Session> {
        let delivery = match self.delivery {
            None => None,
            Some(d) => Some(d.into_delivery()?),
        };
        Some(Session {
            id: SessionId::parse(&self.session_id)?,
            user_id: self.user_id,
            phone: PhoneE164::from_stored(&self.phone_e164)?,
            status: SessionStatus::parse(&self.status)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            activated_at: self.activated_at,
            activation_message_id: self.activation_message_id,
            template_sent_at: self.template_sent_at,
            wa_id: self.wa_id,
            delivery,
            last_inbound_at: self.last_inbound_at,
            bsuid: self.bsuid,
        })
    }
}

/// Decodes a stored session item.
pub(crate) fn session_from_item(
    operation: &'static str,
    item: Item,
) -> Result<Session, StoreError> {
    let raw: SessionItem = serde_dynamo::from_item(item)
        .map_err(|e| StoreError::corrupt(operation, format!("undecodable session item: {e}")))?;
    raw.into_session()
        .ok_or_else(|| StoreError::corrupt(operation, "session item with invalid fields"))
}

/// Encodes a session for a `PutItem`.
pub(crate) fn session_to_item(
    operation: &'static str,
    session: &Session,
    write_id: &str,
) -> Result<Item, StoreError> {
    serde_dynamo::to_item(SessionItem::from_session(session, write_id))
        .map_err(|e| StoreError::corrupt(operation, e.to_string()))
}
