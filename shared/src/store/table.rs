//! The table definition, exactly as `template.yaml` declares it (tests, the local stack and the
//! admin tool create tables with it).

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::{StoreError, DUE_INDEX, PHONE_INDEX, TTL_ATTRIBUTE, WA_ID_INDEX};

/// Creates the table exactly as `template.yaml` declares it (tests and the local stack).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let typed = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let attr = |name: &str| typed(name, ScalarAttributeType::S);
    let index = |name: &str, hash: &str, range: Option<&str>| {
        let mut index = GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(hash, KeyType::Hash)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            );
        if let Some(range) = range {
            index = index.key_schema(key(range, KeyType::Range)?);
        }
        index.build()
    };
    let build = || -> Result<_, aws_sdk_dynamodb::error::BuildError> {
        Ok(client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("phoneE164")?)
            .attribute_definitions(attr("waId")?)
            .attribute_definitions(attr("dueShard")?)
            .attribute_definitions(typed("dueAt", ScalarAttributeType::N)?)
            .global_secondary_indexes(index(PHONE_INDEX, "phoneE164", None)?)
            .global_secondary_indexes(index(WA_ID_INDEX, "waId", None)?)
            .global_secondary_indexes(index(DUE_INDEX, "dueShard", Some("dueAt"))?)
            // The outbox: the events function reads every change (`crate::events`).
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            ))
    };
    build()
        .map_err(|e| StoreError::corrupt("CreateTable", e.to_string()))?
        .send()
        .await
        .map_err(|e| StoreError::from_sdk("CreateTable", e))?;
    // On AWS a new table is CREATING for a while, and UpdateTimeToLive needs it ACTIVE.
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(std::time::Duration::from_secs(300))
        .await
        .map_err(|e| StoreError::corrupt("DescribeTable(wait)", e.to_string()))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(|e| StoreError::corrupt("UpdateTimeToLive", e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| StoreError::from_sdk("UpdateTimeToLive", e))?;
    Ok(())
}
