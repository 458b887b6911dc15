//! Session items: create's claim, send record, refresh and rollback; list's read; revoke's
//! delete; the webhook's lookups by phone, activation, delivery reports and STOP deletes.

use std::time::Instant;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use super::counters::{Caps, Guarded, Reservation, Undo};
use super::item::{session_from_item, session_to_item, DeliveryItem};
use super::{
    conditional, n, s, transact, Item, Key, Reason, Store, StoreError, Transact, Write,
    PHONE_INDEX, TTL_ATTRIBUTE, WA_ID_INDEX,
};
use crate::bsuid::Bsuid;
use crate::limits::Usage;
use crate::message::ConversationMessage;
use crate::phone::PhoneE164;
use crate::session::{Delivery, EndReason, Session, SessionId, SessionStatus, UserId};

/// How long the id of an inbound message that activated a session is kept: longer than
/// Meta's redelivery window (up to 7 days).
pub const INBOUND_RECORD_SECONDS: i64 = 8 * 86_400;

/// What a STOP marks a session with just before deleting it, so the stream's `REMOVE` record
/// (whose old image is all it carries) tells an opt-out from a revoke (`events`).
pub const END_REASON_ATTRIBUTE: &str = "endReason";
/// When the marked end happened: the STOP message's time (epoch seconds).
pub const ENDED_AT_ATTRIBUTE: &str = "endedAt";

/// The inbound message a reply is: its id (for exactly-once) and its time (Meta's whole
/// seconds).
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// Meta's id of the inbound message, when it has one.
    pub message_id: Option<&'a str>,
    /// When the owner sent it (epoch seconds).
    pub sent_at: i64,
}

/// What an activation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Activation {
    /// The session is now active.
    Activated,
    /// This inbound message was seen before: nothing changed.
    Replayed,
    /// The session was not pending and live, or its latest template is newer than the reply.
    NotAnswerable,
}

/// The session is the same one, pending and live.
const PENDING_AND_LIVE: &str = "sessionId = :id AND #status = :pending AND expiresAt > :now";
/// The row is still the pending one this request wrote.
const STILL_MINE: &str = "writeId = :w AND #status = :pending";
/// A claim tries blind, then replacing the expired item it saw, then once more if that moved.
const MAX_CLAIM_ATTEMPTS: usize = 3;

/// The text of a `String` attribute of a raw item.
fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// What a send's reservation (create's claim, or a refresh's) found.
#[derive(Debug)]
pub enum Reserve {
    /// Written: the units are held; for a claim, the expired item it replaced, if any.
    Reserved {
        /// The units this send holds.
        reservation: Reservation,
        /// The expired item the claim replaced (a rollback puts it back).
        previous: Option<Item>,
    },
    /// The session slot is not what the request needs: the live session holding it (`None`
    /// when a refreshed session is gone). Nothing was reserved.
    SessionDiffers {
        /// The session there now.
        current: Option<Box<Session>>,
    },
    /// A WhatsApp form of the phone opted out.
    OptedOut,
    /// A daily cap is reached: the one that refused.
    Capped(Usage),
}

/// When [`Store::delete_session`] may delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteIf {
    /// Revoke: only a live session (an expired one is already gone for the caller).
    Live {
        /// The request's time.
        now: i64,
    },
    /// STOP: only a session that existed when the message was sent, so a replayed STOP never
    /// deletes a session created after it.
    CreatedBy {
        /// The STOP message's time.
        message_time: i64,
    },
}

impl Store {
    /// An `UpdateItem` on the user's session item.
    fn update_session(&self, user_id: &UserId) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::session(user_id).item()))
    }

    /// An `UpdateItem` on `session` that holds only while it is the same, pending and live.
    fn update_pending(&self, session: &Session, now: i64) -> UpdateItemFluentBuilder {
        self.update_session(&session.user_id)
            .condition_expression(PENDING_AND_LIVE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":id", s(session.id.as_str()))
            .expression_attribute_values(":pending", s(SessionStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(now))
    }

    /// A `DeleteItem` of the user's session item.
    fn delete_session_item(&self, user_id: &UserId) -> DeleteItemFluentBuilder {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Key::session(user_id).item()))
    }

    /// The user's session if it is live at `now` (one strongly consistent read).
    pub async fn live_session(
        &self,
        user_id: &UserId,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        match self
            .get("GetItem(session)", &Key::session(user_id), true)
            .await?
        {
            None => Ok(None),
            Some(item) => {
                let session = session_from_item("GetItem(session)", item)?;
                Ok(session.is_live(now).then_some(session))
            }
        }
    }

    /// Claims the user's one session slot for `session` unless a live session holds it, in one
    /// `TransactWriteItems` with a unit of each daily counter and the opt-out check of every
    /// form of the phone. `Reserved { previous }` carries the expired item the claim replaced,
    /// if any, so a rollback puts it back exactly; `SessionDiffers` carries the live session.
    /// No new attempt starts after `deadline`.
    pub async fn claim(
        &self,
        session: &Session,
        write_id: &str,
        now: i64,
        caps: Caps,
        deadline: Instant,
    ) -> Result<Reserve, StoreError> {
        const OPERATION: &str = "TransactWriteItems(claim)";
        let item = session_to_item(OPERATION, session, write_id)?;
        // First blind (the common case: no item); when an expired item is in the way, once
        // more replacing exactly that item, so its copy is what a rollback restores.
        let mut previous: Option<Item> = None;
        for _ in 0..MAX_CLAIM_ATTEMPTS {
            let replaced = previous.as_ref().and_then(|p| text(p, "sessionId"));
            let head = || {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                let put = match replaced {
                    None => put.condition_expression("attribute_not_exists(pk)"),
                    Some(id) => put
                        .condition_expression("sessionId = :prev AND expiresAt <= :now")
                        .expression_attribute_values(":prev", s(id))
                        .expression_attribute_values(":now", n(now)),
                };
                Ok(TransactWriteItem::builder().put(put.build()?).build())
            };
            let guarded = self
                .guarded(OPERATION, &head, session, caps, now, deadline)
                .await?;
            match guarded {
                Guarded::Reserved(reservation) => {
                    return Ok(Reserve::Reserved {
                        reservation,
                        previous,
                    })
                }
                Guarded::HeadFailed(Some(current)) => {
                    let existing = session_from_item(OPERATION, current.clone())?;
                    if existing.is_live(now) {
                        return Ok(Reserve::SessionDiffers {
                            current: Some(Box::new(existing)),
                        });
                    }
                    previous = Some(current);
                }
                // The item went away meanwhile: claim blind again.
                Guarded::HeadFailed(None) => previous = None,
                Guarded::OptedOut => return Ok(Reserve::OptedOut),
                Guarded::Capped(usage) => return Ok(Reserve::Capped(usage)),
            }
        }
        Err(StoreError::cancelled(
            OPERATION,
            "the slot kept changing".into(),
        ))
    }

    /// Before a template is sent again for the live pending `session`: a unit of each daily
    /// counter and the opt-out checks, in one transaction with a check that the session is
    /// still this one, pending and live (`SessionDiffers` carries what it is now).
    pub async fn reserve_refresh(
        &self,
        session: &Session,
        now: i64,
        caps: Caps,
        deadline: Instant,
    ) -> Result<Reserve, StoreError> {
        const OPERATION: &str = "TransactWriteItems(refresh)";
        let head = || {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(Key::session(&session.user_id).item()))
                .condition_expression(PENDING_AND_LIVE)
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":id", s(session.id.as_str()))
                .expression_attribute_values(":pending", s(SessionStatus::Pending.as_str()))
                .expression_attribute_values(":now", n(now))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()?;
            Ok(TransactWriteItem::builder().condition_check(check).build())
        };
        let guarded = self
            .guarded(OPERATION, &head, session, caps, now, deadline)
            .await?;
        Ok(match guarded {
            Guarded::Reserved(reservation) => Reserve::Reserved {
                reservation,
                previous: None,
            },
            Guarded::HeadFailed(current) => Reserve::SessionDiffers {
                current: current
                    .map(|item| session_from_item(OPERATION, item).map(Box::new))
                    .transpose()?,
            },
            Guarded::OptedOut => Reserve::OptedOut,
            Guarded::Capped(usage) => Reserve::Capped(usage),
        })
    }

    /// Stores the message id and WhatsApp id of the send Meta accepted for a new session.
    /// Conditioned on the write it records (`writeId`): a newer refresh, a revoke or a new
    /// session fails it, and `ConditionFailed { current }` says what the row is now.
    pub async fn record_send(
        &self,
        session: &Session,
        write_id: &str,
        message_id: &str,
        wa_id: Option<&str>,
    ) -> Result<Write, StoreError> {
        let mut req = self
            .update_session(&session.user_id)
            .condition_expression("sessionId = :id AND writeId = :w")
            .expression_attribute_values(":id", s(session.id.as_str()))
            .expression_attribute_values(":w", s(write_id))
            .expression_attribute_values(":mid", s(message_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        req = match wa_id {
            Some(w) => req
                .update_expression("SET activationMessageId = :mid, waId = :wa")
                .expression_attribute_values(":wa", s(w)),
            None => req.update_expression("SET activationMessageId = :mid"),
        };
        let result = req.send().await.map(|_| ());
        conditional("UpdateItem(record send)", result)
    }

    /// After a template was sent again for a live pending session: new expiry, new message id,
    /// delivery report reset. Conditioned on the session still being the same, pending and live;
    /// when it is not, `ConditionFailed { current }` carries its state now.
    /// The new `write_id` makes a concurrent claimer's rollback skip this row: a template was
    /// accepted for it, so it must stay.
    pub async fn refresh_pending(
        &self,
        session: &Session,
        message_id: &str,
        wa_id: Option<&str>,
        write_id: &str,
        now: i64,
    ) -> Result<Write, StoreError> {
        let mut set =
            String::from(
            "SET expiresAt = :exp, activationMessageId = :mid, writeId = :w, templateSentAt = :sent",
        );
        let mut req = self
            .update_pending(session, now)
            .expression_attribute_values(":exp", n(session.expires_at))
            .expression_attribute_values(":mid", s(message_id))
            .expression_attribute_values(":w", s(write_id))
            .expression_attribute_values(":sent", n(session.template_sent_at.unwrap_or(now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(w) = wa_id {
            set.push_str(", waId = :wa");
            req = req.expression_attribute_values(":wa", s(w));
        }
        set.push_str(" REMOVE delivery, deliveryRank");
        let result = req.update_expression(set).send().await.map(|_| ());
        conditional("UpdateItem(refresh)", result)
    }

    /// Rolls back a claim whose send failed, and gives its units back, in one transaction:
    /// deletes the new row, or puts back the expired item it replaced, only while the row is
    /// still the pending one this request wrote (`writeId`). When it is not (the owner
    /// activated it, or a newer request took it), nothing changes and `ConditionFailed
    /// { current }` says what the row is now; the units are still held then.
    pub async fn roll_back_claim(
        &self,
        user_id: &UserId,
        write_id: &str,
        previous: Option<Item>,
        reservation: &mut Reservation,
        deadline: Instant,
    ) -> Result<Write, StoreError> {
        const OPERATION: &str = "TransactWriteItems(rollback)";
        let head = || {
            // The SDK's `Delete` and `Put` builders have these methods but no trait in common.
            macro_rules! if_still_mine {
                ($builder:expr) => {
                    $builder
                        .condition_expression(STILL_MINE)
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_values(":w", s(write_id))
                        .expression_attribute_values(":pending", s(SessionStatus::Pending.as_str()))
                        .return_values_on_condition_check_failure(
                            ReturnValuesOnConditionCheckFailure::AllOld,
                        )
                        .build()?
                };
            }
            let item = match &previous {
                None => {
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(Key::session(user_id).item()));
                    TransactWriteItem::builder()
                        .delete(if_still_mine!(delete))
                        .build()
                }
                Some(item) => {
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item.clone()));
                    TransactWriteItem::builder()
                        .put(if_still_mine!(put))
                        .build()
                }
            };
            Ok(item)
        };
        match self
            .give_back(OPERATION, Some(&head), reservation, deadline)
            .await?
        {
            Undo::Done => Ok(Write::Written(())),
            Undo::HeadFailed(current) => Ok(Write::ConditionFailed {
                current: current
                    .map(|item| session_from_item(OPERATION, item).map(Box::new))
                    .transpose()?,
            }),
        }
    }

    /// Gives the units of a send Meta did not accept back, without touching the session.
    pub async fn give_back_units(
        &self,
        reservation: &mut Reservation,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        self.give_back("TransactWriteItems(give back)", None, reservation, deadline)
            .await
            .map(|_| ())
    }

    /// Deletes the user's session `id` if `rule` allows it; otherwise the condition fails.
    ///
    /// A revoke is one `DeleteItem`. A STOP first marks the session (`endReason = opted_out`,
    /// `endedAt` = the STOP's time) and then deletes only the marked item: the stream's
    /// `REMOVE` record carries nothing but the old image, so the mark is how `events` tells an
    /// opt-out from a revoke (an unmarked removal is a revoke).
    pub async fn delete_session(
        &self,
        user_id: &UserId,
        id: &SessionId,
        rule: DeleteIf,
    ) -> Result<Write, StoreError> {
        match rule {
            DeleteIf::Live { now } => {
                let result = self
                    .delete_session_item(user_id)
                    .condition_expression("sessionId = :id AND expiresAt > :t")
                    .expression_attribute_values(":id", s(id.as_str()))
                    .expression_attribute_values(":t", n(now))
                    .send()
                    .await
                    .map(|_| ());
                conditional("DeleteItem(session)", result)
            }
            DeleteIf::CreatedBy { message_time } => {
                self.delete_opted_out(user_id, id, message_time).await
            }
        }
    }

    /// STOP's delete: mark, then delete the marked item (see [`Store::delete_session`]).
    async fn delete_opted_out(
        &self,
        user_id: &UserId,
        id: &SessionId,
        message_time: i64,
    ) -> Result<Write, StoreError> {
        let marked = self
            .update_session(user_id)
            .update_expression("SET #reason = :r, #at = :t")
            .condition_expression("sessionId = :id AND createdAt <= :t")
            .expression_attribute_names("#reason", END_REASON_ATTRIBUTE)
            .expression_attribute_names("#at", ENDED_AT_ATTRIBUTE)
            .expression_attribute_values(":id", s(id.as_str()))
            .expression_attribute_values(":t", n(message_time))
            .expression_attribute_values(":r", s(EndReason::OptedOut.as_str()))
            .send()
            .await
            .map(|_| ());
        if let Write::ConditionFailed { current } = conditional("UpdateItem(opt-out)", marked)? {
            return Ok(Write::ConditionFailed { current });
        }
        let deleted = self
            .delete_session_item(user_id)
            .condition_expression("sessionId = :id AND #reason = :r")
            .expression_attribute_names("#reason", END_REASON_ATTRIBUTE)
            .expression_attribute_values(":id", s(id.as_str()))
            .expression_attribute_values(":r", s(EndReason::OptedOut.as_str()))
            .send()
            .await
            .map(|_| ());
        // A failed condition: the marked session went meanwhile (a revoke, or a claim replacing
        // it once expired). It is gone either way.
        let _ = conditional("DeleteItem(opt-out)", deleted)?;
        Ok(Write::Written(()))
    }

    /// Every session of the person behind `digits` (Meta's `from` or `recipient_id`): by
    /// session phone under each WhatsApp form of the number (Brazil's ninth digit, Mexico's
    /// `1`, Argentina's `9`), and by the WhatsApp id Meta reported at send time. Index queries
    /// only, no scan; one session per user.
    pub async fn sessions_for_phone(&self, digits: &str) -> Result<Vec<Session>, StoreError> {
        let forms: Vec<String> = match PhoneE164::from_stored(digits) {
            Some(phone) => phone
                .whatsapp_forms()
                .iter()
                .map(|f| f.digits().to_owned())
                .collect(),
            None => vec![digits.to_owned()],
        };
        let lookups = forms
            .iter()
            .map(|form| (PHONE_INDEX, "phoneE164", form.as_str()))
            .chain([(WA_ID_INDEX, "waId", digits)]);
        let mut sessions: Vec<Session> = Vec::new();
        for (index, attribute, value) in lookups {
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(index)
                    .key_condition_expression("#k = :v")
                    .expression_attribute_names("#k", attribute)
                    .expression_attribute_values(":v", s(value))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| StoreError::from_sdk("Query(phone)", e))?;
                for item in out.items.unwrap_or_default() {
                    let session = session_from_item("Query(phone)", item)?;
                    if !sessions.iter().any(|s| s.user_id == session.user_id) {
                        sessions.push(session);
                    }
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(sessions)
    }

    /// Turns a pending, live session active because of `answer`, exactly once: the activation
    /// and the record of the inbound message id are one transaction, so a redelivered reply
    /// (Meta retries for up to 7 days) finds its id recorded and changes nothing, and a reply
    /// older than the session's latest template (whole seconds) never activates it.
    pub async fn activate(
        &self,
        session: &Session,
        answer: &Answer<'_>,
        now: i64,
        active_ttl: i64,
    ) -> Result<Activation, StoreError> {
        self.activate_recording(session, answer, now, active_ttl, None)
            .await
    }

    /// [`Store::activate`], recording the reply in the user's conversation in the same
    /// transaction (nothing is recorded when the reply activates nothing). The reply opens
    /// the session's customer-service window.
    pub async fn activate_recording(
        &self,
        session: &Session,
        answer: &Answer<'_>,
        now: i64,
        active_ttl: i64,
        record: Option<&ConversationMessage>,
    ) -> Result<Activation, StoreError> {
        const OPERATION: &str = "TransactWriteItems(activate)";
        let build = |e: BuildError| StoreError::corrupt(OPERATION, e.to_string());
        let activate = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Key::session(&session.user_id).item()))
            .update_expression(
                "SET #status = :active, activatedAt = :now, expiresAt = :exp, \
                 lastInboundAt = :sent",
            )
            .condition_expression(
                "sessionId = :id AND #status = :pending AND expiresAt > :now \
                 AND (attribute_not_exists(templateSentAt) OR templateSentAt <= :sent)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":id", s(session.id.as_str()))
            .expression_attribute_values(":pending", s(SessionStatus::Pending.as_str()))
            .expression_attribute_values(":active", s(SessionStatus::Active.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(now + active_ttl))
            .expression_attribute_values(":sent", n(answer.sent_at))
            .build()
            .map_err(build)?;
        let mut items = vec![TransactWriteItem::builder().update(activate).build()];
        if let Some(message_id) = answer.message_id {
            let mut record = Key::inbound(message_id).item();
            record.insert(TTL_ATTRIBUTE.to_owned(), n(now + INBOUND_RECORD_SECONDS));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(record))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if let Some(message) = record {
            let put = self.inbound_put(message)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        // A conflict or another failure is transient: the delivery answers 503 and Meta retries.
        Ok(
            match transact(self, OPERATION, items).await?.settled(OPERATION)? {
                Transact::Done => Activation::Activated,
                Transact::Cancelled(reasons) => match reasons.get(1) {
                    Some(Reason::ConditionFailed(_)) => Activation::Replayed,
                    _ => Activation::NotAnswerable,
                },
            },
        )
    }

    /// Records a delivery report on `user_id`'s session `session_id` while its latest
    /// activation message is `message_id`, only moving forward (a late `delivered` never
    /// overwrites `read`), with the phone's BSUID when the status carries it. The webhook
    /// knows the session from the template's tag, so this is one `UpdateItem` and no lookup;
    /// `Written` carries the BSUID the session had before, so a new one is learned only once.
    pub async fn record_delivery(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        message_id: &str,
        delivery: &Delivery,
        bsuid: Option<&Bsuid>,
    ) -> Result<Write<Option<String>>, StoreError> {
        const OPERATION: &str = "UpdateItem(delivery)";
        let delivery_value =
            serde_dynamo::to_attribute_value(DeliveryItem::from_delivery(delivery))
                .map_err(|e| StoreError::corrupt(OPERATION, e.to_string()))?;
        let req = match bsuid {
            Some(b) => self
                .update_session(user_id)
                .update_expression("SET delivery = :d, deliveryRank = :r, bsuid = :b")
                .expression_attribute_values(":b", s(b.as_str()))
                .return_values(ReturnValue::UpdatedOld),
            None => self
                .update_session(user_id)
                .update_expression("SET delivery = :d, deliveryRank = :r"),
        };
        let result = req
            .condition_expression(
                "sessionId = :id AND activationMessageId = :mid \
                 AND (attribute_not_exists(deliveryRank) OR deliveryRank < :r)",
            )
            .expression_attribute_values(":d", delivery_value)
            .expression_attribute_values(":r", n(delivery.status.rank()))
            .expression_attribute_values(":id", s(session_id.as_str()))
            .expression_attribute_values(":mid", s(message_id))
            .send()
            .await
            .map(|out| {
                out.attributes
                    .and_then(|old| old.get("bsuid").and_then(|v| v.as_s().ok()).cloned())
            });
        conditional(OPERATION, result)
    }
}
