//! The admin tool's key operations, as a library so the end-to-end tests exercise them against
//! DynamoDB Local and the real authenticator.

pub mod keys;
