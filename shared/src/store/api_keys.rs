//! API-key records: written by provisioning (the admin tool, tests) in a fixed layout, read by
//! auth.

use serde::{Deserialize, Serialize};

use super::{Item, ItemKind, Key, Store, StoreError};
use crate::session::UserId;

/// An API key's stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    /// `KEY#<sha256 hex>`.
    pub pk: String,
    /// Always `KEY`.
    pub sk: String,
    /// The user the key belongs to.
    pub user_id: UserId,
    /// `active` or `disabled`.
    pub status: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// A human label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl ApiKeyRecord {
    /// An active key's record, by the SHA-256 hex of the key.
    pub fn active(
        hash_hex: &str,
        user_id: UserId,
        created_at: String,
        label: Option<String>,
    ) -> Self {
        let Key { pk, sk } = Key::api_key(hash_hex);
        Self {
            pk,
            sk,
            user_id,
            status: "active".into(),
            created_at,
            label,
        }
    }

    /// The SHA-256 hex of the key (the `pk` without its prefix).
    pub fn hash(&self) -> &str {
        ItemKind::ApiKey.id_of(&self.pk).unwrap_or(&self.pk)
    }

    /// Whether the key may be used.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

impl Store {
    /// Reads an API key record by the hash of the key.
    pub async fn api_key(&self, hash_hex: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        // Eventually consistent: a key is provisioned long before it is used.
        match self
            .get("GetItem(api key)", &Key::api_key(hash_hex), false)
            .await?
        {
            None => Ok(None),
            Some(item) => serde_dynamo::from_item(item).map(Some).map_err(|e| {
                StoreError::corrupt("GetItem(api key)", format!("undecodable key item: {e}"))
            }),
        }
    }

    /// Writes an API key record (admin tool, tests); fails if that hash already exists.
    pub async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let item: Item = serde_dynamo::to_item(record)
            .map_err(|e| StoreError::corrupt("PutItem(api key)", e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutItem(api key)", e))?;
        Ok(())
    }
}
