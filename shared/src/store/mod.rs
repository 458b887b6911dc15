//! The DynamoDB store: the only module that talks to the table.
//!
//! One [`Store`] type; its methods live in a module per concern. Every conditional write goes
//! through one helper and answers a [`Write`], never a bare `bool`; every item key is built by
//! [`Key`].
//!
//! # Table
//! One table, on-demand, generic keys `pk` (S) / `sk` (S), TTL attribute `expiresAt` (N, epoch
//! seconds), and two sparse global secondary indexes used by the webhook:
//! `byPhone` (partition key `phoneE164`) and `byWaId` (partition key `waId`, the WhatsApp id
//! Meta reported at send time, which for Brazil, Mexico and Argentina may differ from the
//! number we sent to). Only session items carry those two attributes. A business-scoped user
//! id (BSUID) needs no index: its `BSUID#` item names the phone (as `phone`, not `phoneE164`).
//! A third sparse index, `byDue` (partition key `dueShard`, one of 16 shards `DUE#00` to
//! `DUE#15` chosen by the delivery's user; sort key `dueAt`, N), holds only deliveries with a
//! retry or a lease pending, for the events function's sweep. The table's stream
//! (`NEW_AND_OLD_IMAGES`) is the events function's outbox.
//!
//! # Items
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | API key (written by provisioning; layout fixed) | `KEY#<sha256 hex of the key>` | `KEY` | `userId`, `status` (`active`/`disabled`), `createdAt` (RFC 3339), `label`? |
//! | the user's one session | `USER#<userId>` | `SESSION` | `sessionId`, `userId`, `phoneE164`, `status`, `createdAt`, `expiresAt`, `activatedAt`?, `activationMessageId`?, `templateSentAt`?, `waId`?, `delivery`?, `deliveryRank`?, `writeId`, `lastInboundAt`?, `bsuid`? (the phone's BSUID, once learned), `endReason`? and `endedAt`? (set by a STOP just before it deletes the item) |
//! | a phone's opt-out (STOP / START) | `OPTOUT#<digits>` | `OPTOUT` | `optedOut` (BOOL), `updatedAt` (N, the message's time), `phones` (SS, every number of that person) |
//! | a virtual phone's opt-out of one user (in force for 60 s after its STOP) | `OPTOUT#<digits>#<userId>` | `OPTOUT` | `optedOut` (BOOL), `updatedAt` (N, the message's time), `expiresAt` (`updatedAt` + 60: the TTL only cleans up) |
//! | a user's daily send counter | `COUNT#USER#<userId>#<YYYY-MM-DD>` | `COUNT` | `sends` (N), `expiresAt` (a day after the UTC day ends) |
//! | a recipient phone's daily send counter (all users, all its WhatsApp forms) | `COUNT#PHONE#<canonical digits>#<YYYY-MM-DD>` | `COUNT` | `sends` (N), `expiresAt` |
//! | an inbound message that activated a session | `INBOUND#<wamid>` | `INBOUND` | `expiresAt` (8 days: longer than Meta's 7-day redelivery window) |
//! | a message of a user's sandbox conversation | `CONV#<userId>` | `MSG#<10-digit time>#<o random / i wamid>` | `messageId`?, `userId`, `direction`, `phone` (not `phoneE164`: no index entry), `type`, `content` (JSON), `status`?, `statusRank`?, `statusAt`?, `error`? (JSON), `bsuid`? (inbound: the sender's BSUID), `createdAt`, `expiresAt` (7 days) |
//! | who sent a sandbox message | `OUTMSG#<wamid>` | `OUTMSG` | `userId`, `expiresAt` |
//! | who sent to a phone last | `LASTSENT#<canonical digits>` | `LASTSENT` | `userId`, `sentAt`, `expiresAt` |
//! | the first answer to an `Idempotency-Key` | `IDEM#<sha256 of user and key>` | `IDEM` | `fingerprint`, `owner`, `response`? (JSON), `expiresAt` (24 h) |
//! | a user's sandbox messages of a UTC day | `COUNT#MSG#USER#<userId>#<YYYY-MM-DD>` | `COUNT` | `count`, `expiresAt` |
//! | a user's templates to virtual phones of a UTC day | `COUNT#VIRTUAL#USER#<userId>#<YYYY-MM-DD>` | `COUNT` | `sends`, `expiresAt` |
//! | a user's sandbox messages to virtual phones of a UTC day | `COUNT#MSG#VIRTUAL#USER#<userId>#<YYYY-MM-DD>` | `COUNT` | `count`, `expiresAt` |
//! | a business-scoped user id (BSUID) | `BSUID#<bsuid>` | `BSUID` | `phone`? (the WhatsApp id it was learned beside), `optedOut`? (BOOL) and `updatedAt`? (a STOP / START it sent while its phone was unknown) |
//! | an API user's outbound webhook | `WEBHOOKS#<userId>` | `WEBHOOK#<webhookId>` | `webhookId`, `name`, `url` (as given), `secret`, `previousSecret`? and `previousSecretUntil`? (N: the secret a rotation replaced, signing until then), `events` (L), `isActive` (BOOL), `customHeaders` (JSON object text, as given), `disabledResourceGroups` (L), `failureCount`, `lastFiredAt`?, `createdAt`, `updatedAt` |
//! | how many webhooks the user has | `WEBHOOKS#<userId>` | `COUNT` | `count` (N, at most `USER_WEBHOOK_LIMIT`) |
//! | how many test, redeliver and recover attempts the user started or queued in a minute | `WEBHOOKS#<userId>` | `RATE#<epoch minute>` | `count` (N, at most `USER_WEBHOOK_ATTEMPTS_PER_MINUTE`), `expiresAt` (a minute after it ends) |
//! | one delivery attempt, whole (its UTC day and the 30 after it) | `WHLOG#<userId>` | `ATTEMPT#<eventId>#<webhookId>#<6-digit attempt>` | `webhookId`, `webhookName`, `eventId`, `event`, `url`, `status` (`success`/`failed`), `statusCode`?, `requestPayload` (B, the exact bytes sent), `responseBody` (first 10 KB), `errorMessage`?, `attemptNumber`, `responseTime` (ms), `createdAt`, `expiresAt` (the end of its 30th UTC day after) |
//! | the attempt in the user's log, newest first | `WHLOG#<userId>` | `BYTIME#<10-digit time>#<eventId>#<webhookId>#<attempt>` | `event`, `status`, `createdAt`, `expiresAt` (the entry's) |
//! | the attempt in its webhook's log | `WHLOG#<userId>` | `BYHOOK#<webhookId>#<10-digit time>#<eventId>#<attempt>` | as above |
//! | the attempt in its event's log | `WHLOG#<userId>` | `BYEVENT#<eventId>#<webhookId>#<attempt>` | as above |
//! | a webhook's attempts per UTC day, in the user's log (sorts after its entries) | `WHLOG#<userId>` | `BYTIME#~<webhookId>` | `d<epoch day>` (N) per day, `expiresAt` (its newest day's) |
//! | a webhook's attempts per UTC day, in its own log | `WHLOG#<userId>` | `BYHOOK#<webhookId>#~` | as above |
//! | the delivery of one event to one webhook | `WHDLV#<userId>` | `DLV#<eventId>#<webhookId>` | `userId`, `webhookId`, `eventId`, `event`, `payload` (B, the exact bytes of every attempt), `nextAttempt`, `state` (`pending`/`delivered`/`failed`/`gone`/`cancelled`), `dueShard`? (`DUE#00` to `DUE#15`, by user: [`Key::due_shard`](crate::store::Key::due_shard)) and `dueAt`? (while a retry or a lease is pending: index `byDue`), `createdAt`, `updatedAt`, `expiresAt` (30 days past the last `dueAt`) |
//!
//! # Access patterns
//! | operation | request |
//! |---|---|
//! | authenticate an API key | `GetItem KEY#<hash>/KEY` (cached per container) |
//! | create: claim the user's slot, take the daily units, check opt-outs | one `TransactWriteItems`: `Put USER#<id>/SESSION` if `attribute_not_exists(pk)` (or, when an expired item is in the way, if `sessionId = :thatOne AND expiresAt <= :now`); `Update` of both counters `ADD sends 1` if `sends = :expected` (`attribute_not_exists` for 0; only `sends < :limit` once a guess missed twice); `ConditionCheck OPTOUT#<form>` (every WhatsApp form) if not opted out. On cancellation `ALL_OLD` gives the live session (so "different phone" needs no second read) and the counters' true counts |
//! | create: store the accepted send | `UpdateItem` if `sessionId = :id AND writeId = :mine` (`ALL_OLD` on failure) |
//! | create: refresh a pending session | `TransactWriteItems`: `ConditionCheck USER#<id>/SESSION` if `sessionId = :id AND status = pending AND expiresAt > :now`, the two counter `Update`s, the opt-out checks; after the send `UpdateItem` if the same condition |
//! | create: roll back a claim after a failed send | `TransactWriteItems`: `Delete` (or `Put` of the previous item) if `writeId = :mine AND status = pending`, and each counter's unit back (`Delete` if `sends = 1`, else `ADD sends -1` if `sends = :n`) |
//! | create: give a refresh's units back | `TransactWriteItems` of the counter give-backs alone |
//! | list | strongly consistent `GetItem USER#<id>/SESSION`, expired filtered in code |
//! | revoke | `DeleteItem USER#<id>/SESSION` if `sessionId = :id AND expiresAt > :now` |
//! | webhook: sessions of a phone (once per phone per delivery) | `Query byPhone` for each WhatsApp form of the number and `Query byWaId` (no scans) |
//! | webhook: activate, exactly once | `TransactWriteItems`: `Update USER#<id>/SESSION` if `sessionId = :id AND status = pending AND expiresAt > :now AND templateSentAt <= :messageTime`, and `Put INBOUND#<wamid>` if `attribute_not_exists(pk)` |
//! | webhook: delivery status of a tagged activation template | `UpdateItem USER#<id>/SESSION` (the tag names user and session) if `sessionId = :id AND activationMessageId = :mid AND (no deliveryRank OR deliveryRank < :rank)`; untagged statuses: no request |
//! | webhook: STOP deletes sessions (whatever the flag's outcome) | `UpdateItem SET endReason = opted_out, endedAt = :messageTime` if `sessionId = :id AND createdAt <= :messageTime`, then `DeleteItem` if `sessionId = :id AND endReason = opted_out` (the stream's `REMOVE` then says why: `events`) |
//! | webhook: STOP / START | `UpdateItem OPTOUT#<digits>` if `attribute_not_exists(pk) OR updatedAt <= :messageTime` |
//! | send: the session (and the key's record) | `GetItem USER#<id>/SESSION`, or `BatchGetItem` with `IDEM#…` (consistent) |
//! | send: reserve a unit | `UpdateItem COUNT#MSG#USER#…` if `count < :limit`, or `TransactWriteItems` with the `IDEM#` claim |
//! | send: record the accepted message | `TransactWriteItems`: upsert `CONV#`, put `OUTMSG#`, put `LASTSENT#`, answer `IDEM#` |
//! | send: give a failed send's unit back | `UpdateItem COUNT#…` `ADD -1`, `DeleteItem IDEM#…` if `owner = :me` |
//! | messages: a page | `Query CONV#<id>`, newest first, from the cursor's `sk` |
//! | webhook: record an inbound message | `PutItem CONV#…` (in the activation's transaction when it activates) |
//! | webhook: the window | `UpdateItem USER#<id>/SESSION` `lastInboundAt` if active and older |
//! | webhook: a sandbox message's status | `UpdateItem CONV#…` if `statusRank < :rank` (found by the tag) |
//! | webhook: a sender known only by its BSUID (once per BSUID per delivery) | consistent `GetItem BSUID#<bsuid>`, then the phone's lookups |
//! | webhook: learn a BSUID (only when new or changed) | from a tagged activation status: `bsuid` in the delivery `UpdateItem` (`UPDATED_OLD` gives the previous one); from a message: `UpdateItem USER#<id>/SESSION SET bsuid` if `sessionId = :id` for each live session lacking it; then `UpdateItem BSUID#<bsuid> SET phone` (`ALL_NEW`: a STOP / START it sent while unknown then applies to the phone) and `DeleteItem` of a replaced `BSUID#` if `phone = :phone` |
//! | webhooks: create (at most `USER_WEBHOOK_LIMIT` per user, under any concurrency) | `TransactWriteItems`: `Put WEBHOOKS#<id>/WEBHOOK#<wh>` if `attribute_not_exists(pk)` and `Update WEBHOOKS#<id>/COUNT` `ADD count 1` if `attribute_not_exists(count) OR count < :limit` (retried on a transaction conflict) |
//! | webhooks: list | strongly consistent `Query WEBHOOKS#<id>` with `begins_with(sk, WEBHOOK#)` |
//! | webhooks: one (test, redeliver, and update before it reads the body's fields) | strongly consistent `GetItem WEBHOOKS#<id>/WEBHOOK#<wh>` |
//! | webhooks: update | `UpdateItem` if `attribute_exists(pk)` (`ALL_NEW` answers it); with a new `secret`, `SET previousSecret = secret` (the value before the update), `previousSecretUntil` if also `secret <> :new`, else the same update without the secret |
//! | webhooks: delete | `TransactWriteItems`: `Delete` if `attribute_exists(pk)` and `Update …/COUNT` `ADD count -1` |
//! | webhooks: test, redeliver and recover, the user's rate | `UpdateItem WEBHOOKS#<id>/RATE#<minute>` `ADD count :n` if `attribute_not_exists(count) OR count <= :limit - :n` (`UPDATED_NEW` answers the count); recover wanting more than is left reads the count (`GetItem`) and takes the rest the same way, and gives back what it could not queue (`ADD count -:n`) |
//! | webhooks: recover | `Query WHLOG#<id>` `sk BETWEEN BYHOOK#<wh>#<since> AND BYHOOK#<wh>#<until>#~` oldest first, at most 5,000; `BatchGetItem WHDLV#<id>/DLV#<e>#<wh>` (keys, versions and state only) per 100 failed events; per queued event `UpdateItem` `SET nextAttempt, dueAt, dueShard, state = pending, expiresAt` if `nextAttempt = :seen AND dueAt = :seen` (or `attribute_not_exists(dueAt)`), or for an expired one the latest `ATTEMPT#` (`Query`) and `PutItem` if `attribute_not_exists(pk)` |
//! | webhooks: after an attempt | `UpdateItem` if `attribute_exists(pk)`: a success sets `lastFiredAt`, resets `failureCount`; a 410 sets `isActive = false` |
//! | webhooks: log an attempt (webhooks and events) | `TransactWriteItems`: `Put ATTEMPT#…` if `attribute_not_exists(pk)` (taken: the next attempt number), `Put` of its three index items, `Update` of its webhook's two counters `ADD d<today> 1` (and `REMOVE` of days a month old) |
//! | webhooks: a page of the log or of a webhook's | `Query WHLOG#<id>` `sk BETWEEN BYTIME#<window start> AND BYTIME#~~` (or `BYHOOK#<wh>#…`) newest first, `Limit` skip + limit + 64: the counters (summed for `total`), then the page's index items; `BatchGetItem` of the page's `ATTEMPT#` items. With `event` or `status`: every index item of the window, matched and counted in code |
//! | webhooks: a page of an event's log | `Query WHLOG#<id>` `begins_with(sk, BYEVENT#<e>#)`: all of the event's index items, counted, sorted newest first in code; `BatchGetItem` of the page's entries |
//! | webhooks: redeliver's payload | `Query WHLOG#<id>` `begins_with(sk, ATTEMPT#<e>#<w>#)` backward, `Limit 1`: the latest attempt |
//! | create, a virtual phone (`limits::Quota::Virtual`) | the same transaction with only the user's virtual counter (`COUNT#VIRTUAL#USER#…`) and `ConditionCheck OPTOUT#<digits>#<userId>` if `attribute_not_exists(pk) OR optedOut = false OR updatedAt <= :now - 60` |
//! | send, a virtual phone | the unit from `COUNT#MSG#VIRTUAL#USER#…` instead |
//! | webhook: a virtual phone's STOP / START (its addressee's only) | `UpdateItem OPTOUT#<digits>#<userId>` if `attribute_not_exists(pk) OR updatedAt <= :messageTime` (`expiresAt` 60 s after it), then that user's session marked and deleted as for any STOP |
//! | reply (`/reply`) | `GetItem USER#<id>/SESSION` (consistent); for a text or a choice `Query CONV#<id>` newest first (at most three pages) for the message it quotes; the webhook's processing of the phone's message; consistent `GetItem CONV#<id>/MSG#…` of it |
//! | phone (the stream of accepted sends to virtual phones) | nothing of its own: the webhook's processing of each status and message it plays |
//! | events: claim a delivery (once per event and webhook) | `PutItem WHDLV#<id>/DLV#<event>#<wh>` if `attribute_not_exists(pk)`, `dueAt` the lease's end |
//! | events: the webhook right before each attempt | strongly consistent `GetItem WEBHOOKS#<id>/WEBHOOK#<wh>` |
//! | events (sweep): due deliveries | `Query byDue` on each of the 16 shards, `dueShard = :shard AND dueAt <= :now`, earliest first, at most 1,000 a shard, projecting keys and versions only |
//! | events: take over a due delivery right before its attempt | `UpdateItem SET dueAt = :lease, dueShard, expiresAt` if `nextAttempt = :n AND dueAt = :seen` (`ALL_NEW`: the bytes) |
//! | events: after an attempt, a deferral or an end | `UpdateItem` (a retry: `nextAttempt`, `dueAt`, `dueShard`, `expiresAt`; the end: `state`, `REMOVE dueShard, dueAt`) if `nextAttempt = :n AND dueAt = :held` (`ALL_OLD`: the bytes, for the log of one that failed for good unattempted) |
//! | webhook: STOP / START from an unknown BSUID | `UpdateItem BSUID#<bsuid>` if `attribute_not_exists(updatedAt) OR updatedAt <= :messageTime` (`ALL_NEW`: a phone learned meanwhile gets it at once) |
//!
//! One item per user makes "one phone per user" structural: every create is a conditional
//! write on that item, never a read followed by a write.

/// API-key records: the fixed layout provisioning writes, and the lookup auth does.
mod api_keys;
/// Business-scoped user ids (BSUIDs): the phone each was learned beside.
mod bsuids;
/// Daily send counters and the guards (counters, opt-out checks) a send passes in one
/// transaction.
mod counters;
/// Deliveries of events to webhooks: the claim, the lease, the due index the sweep reads.
mod deliveries;
/// The delivery log: each attempt's entry, its index items and counts, and pages of it.
mod delivery_log;
/// The stored shape of a session and its conversion to and from [`Session`].
mod item;
/// Sandbox messages: the conversation, idempotency records, the daily message counter.
mod messages;
/// Opt-out records (STOP / START).
mod opt_outs;
/// Session writes and reads: create's claim, send, refresh and rollback, revoke, list, webhook.
mod sessions;
/// The table definition (tests, the local stack, the admin tool).
mod table;
/// The DynamoDB client's connect, attempt and operation timeouts and its retries.
mod timeouts;
/// An API user's outbound webhooks, their per-user counter, and the delivery log.
mod webhooks;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, KeysAndAttributes, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use crate::limits::{self, Quota};
use crate::phone::PhoneE164;
use crate::session::{Session, UserId};

pub use api_keys::ApiKeyRecord;
pub use bsuids::BsuidRecord;
pub use counters::{Caps, Reservation};
pub use deliveries::{Claim, DeliveryItem, DeliveryStanding, DeliveryState, DueDelivery, Next};
// The item codecs, for the stream's images (`events`): one place per layout.
pub use delivery_log::{IndexedAttempt, LogPage};
pub(crate) use item::session_from_item;
#[cfg(test)]
pub(crate) use item::session_to_item;
#[cfg(test)]
pub(crate) use messages::inbound_item;
pub(crate) use messages::message_from_item;
pub use messages::{IdempotencyRecord, MessageReservation};
pub use opt_outs::OptOut;
pub use sessions::{
    Activation, Answer, DeleteIf, Reserve, ENDED_AT_ATTRIBUTE, END_REASON_ATTRIBUTE,
    INBOUND_RECORD_SECONDS,
};
pub use table::create_table;
pub use timeouts::{sdk_retries, sdk_timeouts, MAX_ATTEMPTS, OPERATION_TIMEOUT};
pub use webhooks::{AttemptUnits, Created, Removed, WebhookOutcome};

/// A raw DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The TTL attribute of every item that expires.
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// The index on the session's normalized phone.
pub const PHONE_INDEX: &str = "byPhone";
/// The index on the WhatsApp id Meta reported for the phone.
pub const WA_ID_INDEX: &str = "byWaId";
/// The sparse index of due deliveries (`dueShard`, `dueAt`), which the retry sweep reads.
pub const DUE_INDEX: &str = "byDue";
/// How many partitions of [`DUE_INDEX`] ("shards") the due deliveries are spread over, by
/// user ([`Key::due_shard`]): the sweep reads each, so one user's backlog fills only its own.
/// It may grow, never shrink: a shard left out of [`Key::due_shards`] would strand its items.
pub const DUE_SHARDS: u8 = 16;
/// What every `dueShard` starts with (`DUE#00` to `DUE#15`): the events function's
/// `dynamodb:LeadingKeys` on the index.
pub const DUE_SHARD_PREFIX: &str = "DUE#";

/// The kinds of item in the table: each names its `pk` prefix and its `sk`.
/// A new kind of item gets a variant here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// An API key: `KEY#<sha256 hex of the key>` / `KEY`.
    ApiKey,
    /// The user's one session: `USER#<userId>` / `SESSION`.
    Session,
    /// A phone's opt-out: `OPTOUT#<digits>` / `OPTOUT`.
    OptOut,
    /// A daily send counter: `COUNT#USER#<userId>#<YYYY-MM-DD>` or
    /// `COUNT#PHONE#<canonical digits>#<YYYY-MM-DD>` / `COUNT`.
    Counter,
    /// An inbound message that activated a session: `INBOUND#<wamid>` / `INBOUND`, so a
    /// redelivery of it never activates anything again.
    Inbound,
    /// A message of a user's sandbox conversation: `CONV#<userId>` / `MSG#<time>#<suffix>`
    /// (the `sk` varies: [`Key::message`] builds it).
    Message,
    /// Which user sent a sandbox message, by Meta's id: `OUTMSG#<wamid>` / `OUTMSG`, so a
    /// reply quoting it (`context.id`) is recorded for that user.
    OutboundRef,
    /// The first answer to an `Idempotency-Key`: `IDEM#<sha256 of user and key>` / `IDEM`.
    Idempotency,
    /// The user who last sent a sandbox message to a phone: `LASTSENT#<canonical digits>` /
    /// `LASTSENT`, so the webhook can tell which of two active users a plain reply is for.
    LastSender,
    /// Sandbox messages a user sent in a UTC day: `COUNT#MSG#USER#<userId>#<YYYY-MM-DD>` /
    /// `COUNT` (the activation counters are `COUNT#USER#…` and `COUNT#PHONE#…`).
    MessageCounter,
    /// Activation templates a user sent to virtual phones in a UTC day:
    /// `COUNT#VIRTUAL#USER#<userId>#<YYYY-MM-DD>` / `COUNT`, apart from the real quota.
    VirtualCounter,
    /// Sandbox messages a user sent to virtual phones in a UTC day:
    /// `COUNT#MSG#VIRTUAL#USER#<userId>#<YYYY-MM-DD>` / `COUNT`.
    VirtualMessageCounter,
    /// A business-scoped user id (BSUID): `BSUID#<bsuid>` / `BSUID`, the phone it was learned
    /// beside, and a STOP or START it sent before it was learned.
    Bsuid,
    /// An API user's outbound webhook: `WEBHOOKS#<userId>` / `WEBHOOK#<webhookId>` (the `sk`
    /// varies: [`Key::webhook`] builds it).
    Webhook,
    /// How many webhooks a user has: `WEBHOOKS#<userId>` / `COUNT`, in the webhooks'
    /// partition, written in the same transaction as each create and delete.
    WebhookCounter,
    /// How many attempts a user started with test and redeliver in a minute:
    /// `WEBHOOKS#<userId>` / `RATE#<minute>` ([`Key::webhook_attempts`]).
    WebhookAttempts,
    /// One delivery attempt of a user's webhooks, its index items and their counts:
    /// `WHLOG#<userId>` / `ATTEMPT#…`, `BYTIME#…`, `BYHOOK#…`, `BYEVENT#…` ([`Key::log`]; the
    /// `sk`s are the delivery log's).
    WebhookLog,
    /// The delivery of one event to one webhook: `WHDLV#<userId>` /
    /// `DLV#<eventId>#<webhookId>` ([`Key::delivery`]).
    Delivery,
}

impl ItemKind {
    /// What every `pk` of this kind starts with.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "KEY#",
            Self::Session => "USER#",
            Self::OptOut => "OPTOUT#",
            Self::Counter => "COUNT#",
            Self::Inbound => "INBOUND#",
            Self::Message => "CONV#",
            Self::OutboundRef => "OUTMSG#",
            Self::Idempotency => "IDEM#",
            Self::LastSender => "LASTSENT#",
            Self::MessageCounter => "COUNT#MSG#USER#",
            Self::VirtualCounter => "COUNT#VIRTUAL#USER#",
            Self::VirtualMessageCounter => "COUNT#MSG#VIRTUAL#USER#",
            Self::Bsuid => "BSUID#",
            Self::Webhook | Self::WebhookCounter | Self::WebhookAttempts => "WEBHOOKS#",
            Self::WebhookLog => "WHLOG#",
            Self::Delivery => "WHDLV#",
        }
    }

    /// The `sk` of every item of this kind.
    pub const fn sort_key(self) -> &'static str {
        match self {
            Self::ApiKey => "KEY",
            Self::Session => "SESSION",
            Self::OptOut => "OPTOUT",
            Self::Counter => "COUNT",
            Self::Inbound => "INBOUND",
            // The prefix of every conversation `sk`.
            Self::Message => MESSAGE_SK_PREFIX,
            Self::OutboundRef => "OUTMSG",
            Self::Idempotency => "IDEM",
            Self::LastSender => "LASTSENT",
            Self::MessageCounter | Self::VirtualCounter | Self::VirtualMessageCounter => "COUNT",
            Self::Bsuid => "BSUID",
            // The prefix of every webhook `sk`.
            Self::Webhook => "WEBHOOK#",
            Self::WebhookCounter => "COUNT",
            // The prefix of every attempt-rate `sk`.
            Self::WebhookAttempts => "RATE#",
            // The log's `sk`s vary (`delivery_log` builds them): the entry's prefix.
            Self::WebhookLog => "ATTEMPT#",
            // The prefix of every delivery `sk`.
            Self::Delivery => "DLV#",
        }
    }

    /// Whether a `pk` belongs to an item of this kind.
    pub fn owns(self, pk: &str) -> bool {
        pk.starts_with(self.prefix())
    }

    /// The id a `pk` of this kind carries (`KEY#ab12…` → `ab12…`), if it is of this kind.
    pub fn id_of(self, pk: &str) -> Option<&str> {
        pk.strip_prefix(self.prefix())
    }
}

/// An item's primary key. The one place item keys are spelled: the store, the tests and the
/// admin tool all build keys here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The partition key.
    pub pk: String,
    /// The sort key.
    pub sk: String,
}

impl Key {
    /// The key of the item of `kind` for `id`.
    pub fn new(kind: ItemKind, id: &str) -> Self {
        Self {
            pk: format!("{}{id}", kind.prefix()),
            sk: kind.sort_key().to_owned(),
        }
    }

    /// An API key's item, by the SHA-256 hex of the key.
    pub fn api_key(hash_hex: &str) -> Self {
        Self::new(ItemKind::ApiKey, hash_hex)
    }

    /// The user's session item.
    pub fn session(user_id: &UserId) -> Self {
        Self::new(ItemKind::Session, user_id.as_str())
    }

    /// A phone's opt-out item, by its digits.
    pub fn opt_out(digits: &str) -> Self {
        Self::new(ItemKind::OptOut, digits)
    }

    /// A virtual phone's opt-out of one user (`OPTOUT#<digits>#<userId>`): the digits end at
    /// the first `#`, so it never meets a phone's own opt-out.
    pub fn user_opt_out(digits: &str, user: &UserId) -> Self {
        Self::new(ItemKind::OptOut, &format!("{digits}#{}", user.as_str()))
    }

    /// A user's send counter for the UTC day of `epoch_seconds`.
    pub fn user_counter(user_id: &UserId, epoch_seconds: i64) -> Self {
        Self::new(
            ItemKind::Counter,
            &format!("USER#{user_id}#{}", limits::utc_date(epoch_seconds)),
        )
    }

    /// A user's send counter of `quota` for the UTC day of `epoch_seconds`: the user's
    /// counter, or their separate one for virtual phones.
    pub fn user_counter_of(quota: Quota, user_id: &UserId, epoch_seconds: i64) -> Self {
        match quota {
            Quota::Person => Self::user_counter(user_id, epoch_seconds),
            Quota::Virtual => Self::new(
                ItemKind::VirtualCounter,
                &format!("{user_id}#{}", limits::utc_date(epoch_seconds)),
            ),
        }
    }

    /// A recipient phone's send counter for the UTC day of `epoch_seconds`, keyed by the
    /// phone's canonical WhatsApp form so every form of one number shares it.
    pub fn recipient_counter(phone: &PhoneE164, epoch_seconds: i64) -> Self {
        Self::new(
            ItemKind::Counter,
            &format!(
                "PHONE#{}#{}",
                limits::canonical_digits(phone),
                limits::utc_date(epoch_seconds)
            ),
        )
    }

    /// The record of an inbound message, by Meta's message id.
    pub fn inbound(message_id: &str) -> Self {
        Self::new(ItemKind::Inbound, message_id)
    }

    /// A message of `user`'s conversation, sent at `created_at`, unique by `suffix`.
    pub fn message(user: &UserId, created_at: i64, suffix: &str) -> Self {
        Self {
            pk: Self::conversation(user),
            sk: message_sort_key(created_at, suffix),
        }
    }

    /// The partition of `user`'s conversation.
    pub fn conversation(user: &UserId) -> String {
        format!("{}{}", ItemKind::Message.prefix(), user.as_str())
    }

    /// Who sent the sandbox message Meta calls `message_id`.
    pub fn outbound_ref(message_id: &str) -> Self {
        Self::new(ItemKind::OutboundRef, message_id)
    }

    /// Who last sent a sandbox message to the phone with these canonical digits.
    pub fn last_sender(canonical_digits: &str) -> Self {
        Self::new(ItemKind::LastSender, canonical_digits)
    }

    /// The record of an `Idempotency-Key`, by [`crate::api::send::request::idempotency_id`].
    pub fn idempotency(id: &str) -> Self {
        Self::new(ItemKind::Idempotency, id)
    }

    /// `user`'s sandbox-message counter for the UTC day of `epoch_seconds`.
    pub fn message_counter(user: &UserId, epoch_seconds: i64) -> Self {
        Self::message_counter_of(Quota::Person, user, epoch_seconds)
    }

    /// `user`'s sandbox-message counter of `quota` for the UTC day of `epoch_seconds`.
    pub fn message_counter_of(quota: Quota, user: &UserId, epoch_seconds: i64) -> Self {
        let id = format!(
            "{}#{}",
            user.as_str(),
            crate::limits::utc_date(epoch_seconds)
        );
        let kind = match quota {
            Quota::Person => ItemKind::MessageCounter,
            Quota::Virtual => ItemKind::VirtualMessageCounter,
        };
        Self::new(kind, &id)
    }

    /// A business-scoped user id's item: the phone it belongs to, an opt-out it sent unknown.
    pub fn bsuid(bsuid: &str) -> Self {
        Self::new(ItemKind::Bsuid, bsuid)
    }

    /// `user`'s webhook `id`.
    pub fn webhook(user: &UserId, id: &str) -> Self {
        Self {
            pk: Self::webhooks(user),
            sk: format!("{}{id}", ItemKind::Webhook.sort_key()),
        }
    }

    /// The partition of `user`'s webhooks (and of their counter).
    pub fn webhooks(user: &UserId) -> String {
        format!("{}{}", ItemKind::Webhook.prefix(), user.as_str())
    }

    /// How many webhooks `user` has.
    pub fn webhook_counter(user: &UserId) -> Self {
        Self {
            pk: Self::webhooks(user),
            sk: ItemKind::WebhookCounter.sort_key().to_owned(),
        }
    }

    /// How many attempts `user` started with test and redeliver in the minute of
    /// `epoch_seconds`.
    pub fn webhook_attempts(user: &UserId, epoch_seconds: i64) -> Self {
        Self {
            pk: Self::webhooks(user),
            sk: format!(
                "{}{}",
                ItemKind::WebhookAttempts.sort_key(),
                limits::minute(epoch_seconds)
            ),
        }
    }

    /// An item of `user`'s delivery log (an entry, an index item or a counter), by its `sk`,
    /// which the delivery log builds.
    pub fn log(user: &UserId, sk: String) -> Self {
        Self {
            pk: Self::webhook_logs(user),
            sk,
        }
    }

    /// The partition of `user`'s delivery log.
    pub fn webhook_logs(user: &UserId) -> String {
        format!("{}{}", ItemKind::WebhookLog.prefix(), user.as_str())
    }

    /// `{pk, sk}` as the SDK's `set_key` takes it.
    pub fn item(&self) -> Item {
        HashMap::from([
            ("pk".to_owned(), s(&self.pk)),
            ("sk".to_owned(), s(&self.sk)),
        ])
    }
}

/// The `sk` prefix of every conversation item.
pub const MESSAGE_SK_PREFIX: &str = "MSG#";

/// `MSG#<zero-padded epoch seconds>#<suffix>`: sorts by time as text.
pub fn message_sort_key(created_at: i64, suffix: &str) -> String {
    format!("{MESSAGE_SK_PREFIX}{created_at:010}#{suffix}")
}

/// Whether `sk` has the shape [`message_sort_key`] writes (ten digits, a suffix), as a page
/// cursor must.
pub fn is_message_sort_key(sk: &str) -> bool {
    message_sort_key_parts(sk).is_some_and(|(time, suffix)| {
        time.len() == 10 && time.bytes().all(|b| b.is_ascii_digit()) && !suffix.is_empty()
    })
}

/// A stored conversation `sk` → (time, suffix).
fn split_message_sort_key(sk: &str) -> Option<(i64, String)> {
    let (time, suffix) = message_sort_key_parts(sk)?;
    Some((time.parse().ok()?, suffix.to_owned()))
}

/// The time and suffix of a conversation `sk`, as written, unchecked.
fn message_sort_key_parts(sk: &str) -> Option<(&str, &str)> {
    sk.strip_prefix(MESSAGE_SK_PREFIX)?.split_once('#')
}

/// What a conditional write did.
#[derive(Debug)]
#[must_use]
pub enum Write<T = ()> {
    /// The condition held and the write happened.
    Written(T),
    /// The condition did not hold and nothing changed.
    ConditionFailed {
        /// The session as it stood, for writes that ask DynamoDB for it (`ALL_OLD`); `None`
        /// for the others, or when there was no item.
        current: Option<Box<Session>>,
    },
}

impl<T> Write<T> {
    /// Whether the write happened (for log fields).
    pub fn written(&self) -> bool {
        matches!(self, Self::Written(_))
    }
}

/// DynamoDB could not be reached, throttled us past retries, or answered with an error.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {operation} failed: {detail}")]
pub struct StoreError {
    operation: &'static str,
    detail: String,
}

impl StoreError {
    fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match &err {
            SdkError::ServiceError(e) => Self::service(operation, e.err()),
            other => Self {
                operation,
                detail: other.to_string(),
            },
        }
    }

    /// DynamoDB's answer: its error code and message.
    fn service(operation: &'static str, err: &impl ProvideErrorMetadata) -> Self {
        Self {
            operation,
            detail: format!(
                "{}: {}",
                err.code().unwrap_or("unknown"),
                err.message().unwrap_or("")
            ),
        }
    }

    /// A transaction DynamoDB cancelled for a reason other than our conditions.
    fn cancelled(operation: &'static str, code: String) -> Self {
        Self {
            operation,
            detail: format!("transaction cancelled: {code}"),
        }
    }

    /// The request's time budget ran out before this operation could start.
    fn out_of_time(operation: &'static str) -> Self {
        Self {
            operation,
            detail: "no time left in the request's budget".into(),
        }
    }

    /// An item or request we could not encode or decode.
    fn corrupt(operation: &'static str, detail: impl Into<String>) -> Self {
        Self {
            operation,
            detail: detail.into(),
        }
    }
}

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    /// The daily counters' last seen counts (per container, shared by clones).
    counts: Arc<counters::CounterCache>,
}

impl Store {
    /// A store on `table` through `client` (built once per container).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            counts: Arc::default(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The items of `keys` that exist, strongly consistent, in any order: one `BatchGetItem`
    /// per 100 keys, and one more for what DynamoDB left unprocessed (throttling, or more than
    /// 16 MB), a few times at most.
    async fn batch_get(
        &self,
        operation: &'static str,
        keys: &[Key],
    ) -> Result<Vec<Item>, StoreError> {
        self.batch_get_projected(operation, keys, &[]).await
    }

    /// [`Self::batch_get`], each item with only `attributes` (all of them when empty).
    async fn batch_get_projected(
        &self,
        operation: &'static str,
        keys: &[Key],
        attributes: &[&str],
    ) -> Result<Vec<Item>, StoreError> {
        const KEYS_PER_REQUEST: usize = 100;
        const ROUNDS: usize = 6;
        let names: HashMap<String, String> = attributes
            .iter()
            .enumerate()
            .map(|(i, attribute)| (format!("#p{i}"), (*attribute).to_owned()))
            .collect();
        let projection = (0..attributes.len())
            .map(|i| format!("#p{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_REQUEST) {
            let mut wanted = KeysAndAttributes::builder()
                .consistent_read(true)
                .set_keys(Some(chunk.iter().map(Key::item).collect()))
                .set_projection_expression((!attributes.is_empty()).then(|| projection.clone()))
                .set_expression_attribute_names((!attributes.is_empty()).then(|| names.clone()))
                .build()
                .map_err(|e| StoreError::corrupt(operation, e.to_string()))?;
            for round in 1..=ROUNDS {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted.clone())
                    .send()
                    .await
                    .map_err(|e| StoreError::from_sdk(operation, e))?;
                if let Some(mut items) = out.responses {
                    found.extend(items.remove(&self.table).unwrap_or_default());
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() && round < ROUNDS => wanted = rest,
                    Some(rest) if !rest.keys().is_empty() => {
                        return Err(StoreError::corrupt(operation, "keys left unprocessed"))
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// An `UpdateItem` of the item at `key`, its expressions to add.
    fn update(&self, key: &Key) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
    }

    /// One item by its key; `consistent` for reads that must see the latest write.
    async fn get(
        &self,
        operation: &'static str,
        key: &Key,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .consistent_read(consistent)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| StoreError::from_sdk(operation, e))
    }

    /// `update`, the transaction item, sent on its own as one `UpdateItem` (the same key,
    /// expressions and condition), for a write that needs no transaction around it this time.
    fn update_item_of(&self, update: Update) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .set_return_values_on_condition_check_failure(
                update.return_values_on_condition_check_failure,
            )
    }
}

/// The error of a write that may carry a condition: tells a failed condition apart and hands
/// over the item DynamoDB returned with it.
trait ConditionalError: ProvideErrorMetadata + std::error::Error + Sized + 'static {
    /// `Ok(item)` if the condition failed (the item only with `ALL_OLD`), else the error back.
    fn condition_failed(self) -> Result<Option<Item>, Self>;
}

impl ConditionalError for PutItemError {
    fn condition_failed(self) -> Result<Option<Item>, Self> {
        match self {
            Self::ConditionalCheckFailedException(c) => Ok(c.item),
            other => Err(other),
        }
    }
}

impl ConditionalError for UpdateItemError {
    fn condition_failed(self) -> Result<Option<Item>, Self> {
        match self {
            Self::ConditionalCheckFailedException(c) => Ok(c.item),
            other => Err(other),
        }
    }
}

impl ConditionalError for DeleteItemError {
    fn condition_failed(self) -> Result<Option<Item>, Self> {
        match self {
            Self::ConditionalCheckFailedException(c) => Ok(c.item),
            other => Err(other),
        }
    }
}

/// Runs `query` page after page (the SDK's paginator) and hands each item to `visit`, until
/// `visit` breaks or the pages end: how the store's multi-page reads page.
async fn query_items(
    operation: &'static str,
    query: QueryFluentBuilder,
    mut visit: impl FnMut(Item) -> Result<ControlFlow<()>, StoreError>,
) -> Result<(), StoreError> {
    let mut items = query.into_paginator().items().send();
    while let Some(item) = items.next().await {
        let item = item.map_err(|e| StoreError::from_sdk(operation, e))?;
        if visit(item)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// The one place a conditional write's result is decoded: the output, a failed condition
/// (with the current session when DynamoDB returned it), or a [`StoreError`].
fn conditional<T, E, R>(
    operation: &'static str,
    result: Result<T, SdkError<E, R>>,
) -> Result<Write<T>, StoreError>
where
    E: ConditionalError,
    R: std::fmt::Debug,
{
    match result {
        Ok(out) => Ok(Write::Written(out)),
        Err(SdkError::ServiceError(service)) => match service.into_err().condition_failed() {
            Ok(item) => Ok(Write::ConditionFailed {
                current: item
                    .filter(|i| !i.is_empty())
                    .map(|i| item::session_from_item(operation, i).map(Box::new))
                    .transpose()?,
            }),
            Err(other) => Err(StoreError::service(operation, &other)),
        },
        Err(other) => Err(StoreError::from_sdk(operation, other)),
    }
}

/// How one item of a cancelled `TransactWriteItems` fared.
#[derive(Debug)]
pub(crate) enum Reason {
    /// Its condition held (DynamoDB's `None`).
    Passed,
    /// Its condition failed; the item as it stood, when the item asked for `ALL_OLD`.
    ConditionFailed(Option<Item>),
    /// A concurrent transaction touched the same item at the same moment: worth a retry.
    Conflict,
    /// Anything else (throttling, validation): a storage failure.
    Other(String),
}

/// What one `TransactWriteItems` did.
#[derive(Debug)]
pub(crate) enum Transact {
    /// Every item was written.
    Done,
    /// Nothing was written: one reason per item, in request order.
    Cancelled(Vec<Reason>),
}

impl Transact {
    /// Whether it was cancelled because it met another transaction (worth a retry).
    pub(crate) fn conflicted(&self) -> bool {
        matches!(self, Self::Cancelled(r) if r.iter().any(|r| matches!(r, Reason::Conflict)))
    }

    /// For callers that do not retry: a conflict or any other non-condition reason becomes a
    /// [`StoreError`]; what remains is done, or cancelled by conditions only.
    pub(crate) fn settled(self, operation: &'static str) -> Result<Self, StoreError> {
        if let Self::Cancelled(reasons) = &self {
            for r in reasons {
                match r {
                    Reason::Conflict => {
                        return Err(StoreError::cancelled(
                            operation,
                            "TransactionConflict".into(),
                        ))
                    }
                    Reason::Other(code) => {
                        return Err(StoreError::cancelled(operation, code.clone()))
                    }
                    Reason::Passed | Reason::ConditionFailed(_) => {}
                }
            }
        }
        Ok(self)
    }
}

/// The one place a `TransactWriteItems` result is decoded, as [`conditional`] is for single
/// writes: written, or cancelled with each item's reason.
async fn transact(
    store: &Store,
    operation: &'static str,
    items: Vec<TransactWriteItem>,
) -> Result<Transact, StoreError> {
    let result = store
        .client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    match result {
        Ok(_) => Ok(Transact::Done),
        Err(SdkError::ServiceError(service)) => match service.into_err() {
            TransactWriteItemsError::TransactionCanceledException(e) => Ok(Transact::Cancelled(
                e.cancellation_reasons().iter().map(reason).collect(),
            )),
            other => Err(StoreError::service(operation, &other)),
        },
        Err(other) => Err(StoreError::from_sdk(operation, other)),
    }
}

/// How a transaction that only met another one is tried again: at most `attempts` tries, the
/// n-th wait `step_ms * n` plus up to `jitter_ms` at random.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub attempts: u32,
    pub step_ms: u64,
    pub jitter_ms: u8,
}

/// [`transact`], tried again as `backoff` says while it only conflicted with another
/// transaction (concurrent writers of one item); each try is one request.
async fn transact_retrying(
    store: &Store,
    operation: &'static str,
    items: Vec<TransactWriteItem>,
    backoff: Backoff,
) -> Result<Transact, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match transact(store, operation, items.clone()).await? {
            outcome if outcome.conflicted() && attempt < backoff.attempts => {
                let mut jitter = [0u8; 1];
                let _ = crate::ids::fill_random(&mut jitter);
                let millis = backoff.step_ms * u64::from(attempt)
                    + u64::from(jitter[0] % backoff.jitter_ms.max(1));
                tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            }
            outcome => return outcome.settled(operation),
        }
    }
}

fn reason(r: &CancellationReason) -> Reason {
    match r.code() {
        None | Some("None") => Reason::Passed,
        Some("ConditionalCheckFailed") => {
            Reason::ConditionFailed(r.item().filter(|i| !i.is_empty()).cloned())
        }
        Some("TransactionConflict") => Reason::Conflict,
        Some(other) => Reason::Other(other.to_owned()),
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_layout() {
        let key = |k: Key| (k.pk, k.sk);
        assert_eq!(
            key(Key::api_key("ab12")),
            ("KEY#ab12".to_owned(), "KEY".to_owned())
        );
        assert_eq!(
            key(Key::session(&UserId::new("u1"))),
            ("USER#u1".to_owned(), "SESSION".to_owned())
        );
        assert_eq!(
            key(Key::opt_out("34688246216")),
            ("OPTOUT#34688246216".to_owned(), "OPTOUT".to_owned())
        );
        assert_eq!(
            key(Key::inbound("wamid.X")),
            ("INBOUND#wamid.X".to_owned(), "INBOUND".to_owned())
        );
        let u1 = UserId::new("u1");
        assert_eq!(
            key(Key::message(&u1, 1_795_529_722, "oAb")),
            ("CONV#u1".to_owned(), "MSG#1795529722#oAb".to_owned())
        );
        assert_eq!(
            key(Key::message_counter(&u1, 1_795_529_722)),
            (
                "COUNT#MSG#USER#u1#2026-11-24".to_owned(),
                "COUNT".to_owned()
            )
        );
        assert_eq!(
            key(Key::outbound_ref("wamid.X")),
            ("OUTMSG#wamid.X".to_owned(), "OUTMSG".to_owned())
        );
        assert_eq!(
            key(Key::last_sender("34688246216")),
            ("LASTSENT#34688246216".to_owned(), "LASTSENT".to_owned())
        );
        assert_eq!(
            key(Key::idempotency("ab")),
            ("IDEM#ab".to_owned(), "IDEM".to_owned())
        );
        assert_eq!(
            key(Key::webhook(&u1, "wh_A")),
            ("WEBHOOKS#u1".to_owned(), "WEBHOOK#wh_A".to_owned())
        );
        assert_eq!(
            key(Key::webhook_counter(&u1)),
            ("WEBHOOKS#u1".to_owned(), "COUNT".to_owned())
        );
        assert_eq!(
            key(Key::webhook_attempts(&u1, 1_795_529_722)),
            ("WEBHOOKS#u1".to_owned(), "RATE#29925495".to_owned())
        );
        assert_eq!(
            key(Key::log(&u1, "ATTEMPT#evt_E#wh_A#000003".into())),
            (
                "WHLOG#u1".to_owned(),
                "ATTEMPT#evt_E#wh_A#000003".to_owned()
            )
        );
        assert_eq!(
            key(Key::bsuid("US.13491208655302741918")),
            (
                "BSUID#US.13491208655302741918".to_owned(),
                "BSUID".to_owned()
            )
        );
    }

    #[test]
    fn due_shards_are_sixteen_and_a_users_is_fixed_by_its_id_for_good() {
        let shards: Vec<String> = Key::due_shards().collect();
        assert_eq!(shards.len(), usize::from(DUE_SHARDS));
        assert_eq!(
            (shards[0].as_str(), shards[15].as_str()),
            ("DUE#00", "DUE#15")
        );
        // The first byte of SHA-256("u1") is 0xbb: 187 % 16 = 11. Items keep their shard, so
        // this never changes (a change would strand every due delivery).
        assert_eq!(Key::due_shard(&UserId::new("u1")), "DUE#11");
        assert_eq!(Key::due_shard(&UserId::new("hostile")), "DUE#15");
        for user in ["u1", "u2", "dev-user", "hostile"] {
            let shard = Key::due_shard(&UserId::new(user));
            assert!(shards.contains(&shard), "{shard}");
            assert!(shard.starts_with(DUE_SHARD_PREFIX));
        }
    }

    #[test]
    fn counter_keys_have_the_documented_layout() {
        // 2026-11-24T01:00:00Z.
        let t = 1_795_478_400 + 3_600;
        let key = |k: Key| (k.pk, k.sk);
        assert_eq!(
            key(Key::user_counter(&UserId::new("u1"), t)),
            ("COUNT#USER#u1#2026-11-24".to_owned(), "COUNT".to_owned())
        );
        let spain = PhoneE164::from_stored("34688246216").unwrap();
        assert_eq!(
            key(Key::recipient_counter(&spain, t)),
            (
                "COUNT#PHONE#34688246216#2026-11-24".to_owned(),
                "COUNT".to_owned()
            )
        );
        // Both forms of a Brazilian mobile share one counter.
        let with_nine = PhoneE164::from_stored("5511987654321").unwrap();
        let without = PhoneE164::from_stored("551187654321").unwrap();
        assert_eq!(
            Key::recipient_counter(&with_nine, t),
            Key::recipient_counter(&without, t)
        );
        assert_ne!(
            Key::recipient_counter(&spain, 1_795_478_400 - 1),
            Key::recipient_counter(&spain, 1_795_478_400),
            "a new UTC day is a new counter"
        );
        assert!(ItemKind::Counter.owns(&Key::user_counter(&UserId::new("u"), t).pk));

        // A virtual phone's quota has its own counters, which a real one never shares.
        let u1 = UserId::new("u1");
        assert_eq!(
            key(Key::user_counter_of(Quota::Virtual, &u1, t)),
            (
                "COUNT#VIRTUAL#USER#u1#2026-11-24".to_owned(),
                "COUNT".to_owned()
            )
        );
        assert_eq!(
            Key::user_counter_of(Quota::Person, &u1, t),
            Key::user_counter(&u1, t)
        );
        assert_eq!(
            key(Key::message_counter_of(Quota::Virtual, &u1, t)),
            (
                "COUNT#MSG#VIRTUAL#USER#u1#2026-11-24".to_owned(),
                "COUNT".to_owned()
            )
        );
        assert_eq!(
            key(Key::user_opt_out("12015550180", &u1)),
            ("OPTOUT#12015550180#u1".to_owned(), "OPTOUT".to_owned())
        );
        assert!(ItemKind::Counter.owns(&Key::user_counter_of(Quota::Virtual, &u1, t).pk));
    }

    #[test]
    fn message_sort_keys_sort_by_time_and_parse_back() {
        let sk = message_sort_key(1_795_529_722, "oAbC");
        assert_eq!(sk, "MSG#1795529722#oAbC");
        assert!(message_sort_key(999_999_999, "z") < message_sort_key(1_000_000_000, "a"));
        assert!(is_message_sort_key(&sk));
        assert_eq!(
            split_message_sort_key(&sk),
            Some((1_795_529_722, "oAbC".to_owned()))
        );
        for bad in [
            "",
            "SESSION",
            "MSG#12#x",
            "MSG#1795529722#",
            "MSG#179552972x#o",
        ] {
            assert!(!is_message_sort_key(bad), "{bad}");
        }
        assert_eq!(ItemKind::Message.sort_key(), MESSAGE_SK_PREFIX);
    }

    #[test]
    fn a_pk_names_its_kind_and_id() {
        let pk = Key::api_key("ab12").pk;
        assert!(ItemKind::ApiKey.owns(&pk));
        assert!(!ItemKind::Session.owns(&pk));
        assert_eq!(ItemKind::ApiKey.id_of(&pk), Some("ab12"));
        assert_eq!(ItemKind::OptOut.id_of(&pk), None);
    }
}
