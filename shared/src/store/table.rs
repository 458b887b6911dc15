//! The table definition, exactly as `template.yaml` declares it (tests, the local stack and the
//! admin tool create tables with it).

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::{StoreError, PHONE_INDEX, TTL_ATTRIBUTE, WA_ID_INDEX};

/// Creates the table exactly as `template.yaml` declares it (tests and the local stack).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let index = |name: &str, attribute: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(attribute, KeyType::Hash)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
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
            .global_secondary_indexes(index(PHONE_INDEX, "phoneE164")?)
            .global_secondary_indexes(index(WA_ID_INDEX, "waId")?))
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
