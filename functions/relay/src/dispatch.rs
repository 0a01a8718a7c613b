//! Sending a list of messages in order per ordering key, in full batches across keys.
//!
//! The rules (see `docs/relay.md`):
//!
//! * Messages are grouped by (destination, ordering key). Within a key they keep stream order;
//!   messages of one commit (same batch id and `created_at`) are ordered by their outbox
//!   `sequence`, since the stream does not order the items of one transaction.
//! * A request carries **at most one message per key**, and a key's next message is sent only
//!   after SQS acknowledged the previous one. So a failed entry can never be overtaken by a
//!   later message of its key: per-key order holds whatever fails.
//! * Requests are filled across keys (≤ 10 entries, ≤ 1 MiB) and sent one after the other.
//! * A key stops at its first failure (per-entry failure, or the whole request failing); the
//!   other keys go on.
//! * A message SQS refuses for good (checked before sending: [`invalid_reason`] — a body over
//!   the queue maximum, characters SQS does not accept —, or an entry SQS failed for the
//!   sender's fault) is **parked** when a [`MessageParking`] is given: recorded there, then
//!   counted as done, and its key goes on with its next message. If parking fails, or without
//!   parking, it is a failure like any other (its key stops, the record stays unsent).
//! * Before every request the circuit breaker is asked; when it is open, nothing more is
//!   sent, and everything unsent is handed back. Same when the invocation's deadline is near.
//!
//! Nothing is ever reported sent without an SQS acknowledgement for that entry.

use crate::batching::{pack, Packed};
use crate::breaker::{CallOutcome, CircuitBreaker, Transition};
use crate::clock::Clock;
use ras_aws::dynamo::items::sortable_time;
use ras_aws::sqs_publisher::{invalid_reason, message_size, MESSAGE_REFUSED};
use ras_domain::contracts::Timestamp;
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{
    Destination, MessageParking, MessagePublisher, ParkedMessage, PublishError, SendResult,
};
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use tracing::{error, info, warn};

/// One message to send, with what ordering and parking need of its outbox item.
#[derive(Clone, Debug, PartialEq)]
pub struct Outbound {
    pub message: OutboxMessage,
    /// The batch the message is about (the item's `batch_id`).
    pub batch_id: String,
    /// The root version the writing commit was planned on (the item's `commit_version`;
    /// `None` on items written without it).
    pub commit_version: Option<u64>,
    /// The outbox sort key (`created_at#sequence#event_id`): with the ordering key, the item.
    pub position: String,
}

impl Outbound {
    /// Which commit wrote the item: its batch, its `created_at` (every message of one plan
    /// shares the plan's timestamp) and the root version the commit was planned on (unique per
    /// commit of a batch: two commits of one batch can share a `created_at`; without it, batch
    /// and time alone name the commit).
    pub fn commit(&self) -> (&str, Timestamp, Option<u64>) {
        (&self.batch_id, self.message.created_at, self.commit_version)
    }
}

/// What happened to one message.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// SQS acknowledged it.
    Sent,
    /// It was in a request and SQS failed it, or the whole request failed.
    Failed {
        retryable: bool,
        code: String,
        message: String,
    },
    /// SQS refuses it for good; it was recorded in the parking queue (and counts as done).
    Parked { code: String, reason: String },
    /// Not attempted.
    Held(HoldReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldReason {
    /// An earlier message of the same key was not sent.
    KeyStopped,
    /// The circuit breaker is open.
    BreakerOpen,
    /// Too close to the invocation's deadline to start another request.
    Deadline,
}

impl Delivery {
    pub fn is_sent(&self) -> bool {
        matches!(self, Delivery::Sent)
    }

    /// Done with: sent, or parked.
    pub fn is_acknowledged(&self) -> bool {
        matches!(self, Delivery::Sent | Delivery::Parked { .. })
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DispatchReport {
    /// One per input message, same order.
    pub deliveries: Vec<Delivery>,
    /// `SendMessageBatch` requests made.
    pub requests: u32,
    /// Messages that could not be parked (they stay unsent).
    pub parking_failures: u32,
    /// The breaker refused a request (everything left was handed back).
    pub breaker_rejected: bool,
    pub transitions: Vec<Transition>,
}

/// The order in which the messages of each key must be sent: per key (in order of first
/// appearance), the indexes of its messages in send order.
pub fn key_order(items: &[Outbound]) -> Vec<Vec<usize>> {
    let mut key_index: HashMap<(Destination, &str), usize> = HashMap::new();
    let mut keys: Vec<Vec<usize>> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = (
            item.message.destination(),
            item.message.ordering_key.as_str(),
        );
        let slot = *key_index.entry(k).or_insert_with(|| {
            keys.push(Vec::new());
            keys.len() - 1
        });
        keys[slot].push(i);
    }
    for members in &mut keys {
        if members.len() < 2 {
            continue;
        }
        // A commit sits where its first record appeared; inside it, `sequence` decides.
        let mut anchor: HashMap<(&str, Timestamp, Option<u64>), usize> = HashMap::new();
        for &i in members.iter() {
            anchor.entry(items[i].commit()).or_insert(i);
        }
        members.sort_by_key(|&i| (anchor[&items[i].commit()], items[i].message.sequence, i));
    }
    keys
}

/// Send `items` (in stream order) through `publisher`, parking what SQS refuses for good in
/// `parking` (none: such messages stay failures); see the module docs for the rules.
/// (`items` are borrowed mutably only to lend each message to its request without a copy;
/// they are the same when this returns.)
pub async fn dispatch<P, K, C>(
    publisher: &P,
    parking: Option<&K>,
    breaker: &CircuitBreaker,
    clock: &C,
    items: &mut [Outbound],
    deadline: Option<Instant>,
) -> DispatchReport
where
    P: MessagePublisher,
    K: MessageParking,
    C: Clock,
{
    struct Key {
        members: Vec<usize>,
        next: usize,
        stopped: bool,
    }
    let mut keys: Vec<Key> = key_order(&*items)
        .into_iter()
        .map(|members| Key {
            members,
            next: 0,
            stopped: false,
        })
        .collect();
    let mut deliveries: Vec<Option<Delivery>> = vec![None; items.len()];
    let mut report = DispatchReport::default();
    let mut hold_rest: Option<HoldReason> = None;
    // Messages of a request SQS refused as a whole for their content: each goes alone next.
    let mut solo: HashSet<usize> = HashSet::new();

    loop {
        // The next message of every key that may send, in stream order.
        let mut heads: Vec<(usize, usize)> = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| !k.stopped && k.next < k.members.len())
            .map(|(ki, k)| (k.members[k.next], ki))
            .collect();
        if heads.is_empty() {
            break;
        }
        heads.sort_unstable();
        let destination = items[heads[0].0].message.destination();
        heads.retain(|&(i, _)| items[i].message.destination() == destination);
        // Messages SQS would refuse whatever happens never take a place in a request.
        let key_by_head: Vec<(usize, usize)> = heads.clone();
        let key_of = |i: usize| key_by_head.iter().find(|h| h.0 == i).map(|h| h.1);
        let mut refused: Vec<(usize, &'static str, String)> = Vec::new();
        heads.retain(|&(i, _)| match invalid_reason(&items[i].message) {
            Some(reason) => {
                refused.push((i, "InvalidMessage", reason));
                false
            }
            None => true,
        });
        let packed = match heads.iter().find(|(i, _)| solo.contains(i)) {
            Some(&(i, _)) => Packed {
                taken: vec![i],
                oversize: Vec::new(),
                bytes: message_size(&items[i].message),
            },
            None => pack(heads.iter().map(|&(i, _)| (i, &items[i].message))),
        };
        for &i in &packed.oversize {
            refused.push((
                i,
                "MessageTooLarge",
                "message larger than the 1 MiB request limit".into(),
            ));
        }
        for (i, code, reason) in refused {
            warn!(event_id = %items[i].message.event_id, key = %items[i].message.ordering_key.escape_debug(),
                %code, %reason, "message cannot be sent to SQS");
            let delivery = settle_refused(
                parking,
                clock,
                deadline,
                &items[i],
                code,
                reason,
                &mut report,
            )
            .await;
            if let Some(ki) = key_of(i) {
                if delivery.is_acknowledged() {
                    keys[ki].next += 1;
                } else {
                    keys[ki].stopped = true;
                }
            }
            deliveries[i] = Some(delivery);
        }
        if packed.taken.is_empty() {
            continue;
        }
        let now = clock.instant();
        if deadline.is_some_and(|d| now >= d) {
            hold_rest = Some(HoldReason::Deadline);
            break;
        }
        let (permit, transition) = breaker.try_acquire(now);
        note(&mut report, transition);
        let Some(permit) = permit else {
            report.breaker_rejected = true;
            hold_rest = Some(HoldReason::BreakerOpen);
            break;
        };
        // Lend the messages to the request (no copies of the bodies), give them back after.
        let messages: Vec<OutboxMessage> = packed
            .taken
            .iter()
            .map(|&i| {
                let stand_in = placeholder(&items[i].message);
                std::mem::replace(&mut items[i].message, stand_in)
            })
            .collect();
        report.requests += 1;
        let sent = publisher.send_batch(destination, &messages).await;
        let entries = messages.len();
        for (&i, message) in packed.taken.iter().zip(messages) {
            items[i].message = message;
        }
        let whole_call_failed = sent.is_err();
        // SQS refused the request for the content of its messages (not its own health).
        let refused_request = matches!(
            &sent,
            Err(PublishError::Permanent { kind, .. }) if *kind == MESSAGE_REFUSED
        );
        let results: Vec<SendResult> = match sent {
            Ok(mut results) => {
                // One result per message is the port's contract; a missing one is unsent.
                results.resize(
                    entries,
                    SendResult::Failed {
                        retryable: true,
                        code: "NoResult".into(),
                        message: "the publisher returned no result for this message".into(),
                    },
                );
                results
            }
            Err(e) => {
                warn!(destination = destination.as_str(), entries, error = %e, "SendMessageBatch failed as a whole");
                let (retryable, code) = match &e {
                    PublishError::Transient(_) => (true, "Transient"),
                    PublishError::Permanent { kind, .. } => (false, *kind),
                };
                vec![
                    SendResult::Failed {
                        retryable,
                        code: code.to_string(),
                        message: e.to_string(),
                    };
                    entries
                ]
            }
        };
        let any_sent = results.iter().any(|r| matches!(r, SendResult::Sent));
        let any_retryable = results.iter().any(|r| {
            matches!(
                r,
                SendResult::Failed {
                    retryable: true,
                    ..
                }
            )
        });
        // For the breaker a request failed when it failed as a whole (whatever the cause: a
        // missing queue or denied access makes SQS as unusable as an outage), or when SQS
        // failed every entry on its side. Entries failed for the sender's fault only say
        // nothing about SQS's health.
        let outcome = if (whole_call_failed && !refused_request) || (!any_sent && any_retryable) {
            CallOutcome::Failure
        } else {
            CallOutcome::Success
        };
        note(
            &mut report,
            breaker.record(permit, outcome, clock.instant()),
        );
        if refused_request && entries > 1 {
            // Which message SQS refuses is not said: send each alone, then park that one.
            warn!(
                destination = destination.as_str(),
                entries,
                "SQS refused a request for a message's content: sending its messages one by one"
            );
            solo.extend(packed.taken.iter().copied());
            continue;
        }
        for (&i, result) in packed.taken.iter().zip(results) {
            let Some(ki) = key_of(i) else { continue };
            match result {
                SendResult::Sent => {
                    deliveries[i] = Some(Delivery::Sent);
                    keys[ki].next += 1;
                }
                SendResult::Failed {
                    retryable: false,
                    code,
                    message,
                } if !whole_call_failed || refused_request => {
                    // SQS refused this entry (or the request of this entry alone) for the
                    // sender's fault: it will never be accepted.
                    warn!(event_id = %items[i].message.event_id, key = %items[i].message.ordering_key.escape_debug(),
                        destination = destination.as_str(), %code, %message, "SQS refused the message for good");
                    let delivery = settle_refused(
                        parking,
                        clock,
                        deadline,
                        &items[i],
                        &code,
                        message,
                        &mut report,
                    )
                    .await;
                    if delivery.is_acknowledged() {
                        keys[ki].next += 1;
                    } else {
                        keys[ki].stopped = true;
                    }
                    deliveries[i] = Some(delivery);
                }
                SendResult::Failed {
                    retryable,
                    code,
                    message,
                } => {
                    warn!(event_id = %items[i].message.event_id, key = %items[i].message.ordering_key.escape_debug(),
                        destination = destination.as_str(), retryable, %code, %message, "message not sent; its key stops here");
                    deliveries[i] = Some(Delivery::Failed {
                        retryable,
                        code,
                        message,
                    });
                    keys[ki].stopped = true;
                }
            }
        }
    }

    report.deliveries = deliveries
        .into_iter()
        .map(|d| d.unwrap_or(Delivery::Held(hold_rest.unwrap_or(HoldReason::KeyStopped))))
        .collect();
    // Messages behind a failed one of their key are held for that reason, whatever else.
    for key in &keys {
        if key.stopped {
            for &i in &key.members[key.next..] {
                if report.deliveries[i] == Delivery::Held(HoldReason::BreakerOpen)
                    || report.deliveries[i] == Delivery::Held(HoldReason::Deadline)
                {
                    report.deliveries[i] = Delivery::Held(HoldReason::KeyStopped);
                }
            }
        }
    }
    report
}

/// A message SQS refuses for good: park it (when parking is given and the deadline allows),
/// else leave it failed.
async fn settle_refused<K: MessageParking, C: Clock>(
    parking: Option<&K>,
    clock: &C,
    deadline: Option<Instant>,
    item: &Outbound,
    code: &str,
    reason: String,
    report: &mut DispatchReport,
) -> Delivery {
    let failed = |message: String| Delivery::Failed {
        retryable: false,
        code: code.to_string(),
        message,
    };
    let Some(parking) = parking else {
        return failed(reason);
    };
    if deadline.is_some_and(|d| clock.instant() >= d) {
        report.parking_failures += 1;
        return failed(format!(
            "{reason}; not parked: the invocation deadline is near"
        ));
    }
    let parked = parked_message(item, code, &reason, clock.wall());
    match parking.park(&parked).await {
        Ok(()) => {
            warn!(event_id = %parked.event_id, key = %parked.ordering_key.escape_debug(), destination = parked.destination.as_str(),
                %code, %reason, "message parked (ras-relay-parked); its stream record is acknowledged");
            Delivery::Parked {
                code: code.to_string(),
                reason,
            }
        }
        Err(e) => {
            report.parking_failures += 1;
            error!(event_id = %parked.event_id, %code, error = %e, "parking failed: the record stays unsent");
            failed(format!("{reason}; parking failed: {e}"))
        }
    }
}

/// The parking record of a message SQS refuses.
pub fn parked_message(item: &Outbound, code: &str, reason: &str, now: Timestamp) -> ParkedMessage {
    ParkedMessage {
        event_id: item.message.event_id.to_string(),
        ordering_key: item.message.ordering_key.clone(),
        position: item.position.clone(),
        destination: item.message.destination(),
        topic: item.message.topic.name().to_string(),
        batch_id: item.batch_id.clone(),
        created_at: sortable_time(item.message.created_at),
        code: code.to_string(),
        reason: reason.to_string(),
        body_bytes: item.message.body.len(),
        parked_at: now,
    }
}

/// What stands in for a message while it is lent to a request: its fixed-size fields, no
/// text (nothing allocated).
fn placeholder(message: &OutboxMessage) -> OutboxMessage {
    OutboxMessage {
        event_id: message.event_id,
        topic: message.topic,
        ordering_key: String::new(),
        correlation_id: message.correlation_id,
        created_at: message.created_at,
        sequence: message.sequence,
        body: String::new(),
    }
}

fn note(report: &mut DispatchReport, transition: Option<Transition>) {
    let Some(t) = transition else { return };
    match t {
        Transition::Opened {
            consecutive_failures,
        } => {
            warn!(
                consecutive_failures,
                "circuit breaker opened: failing fast, unsent records go back to Lambda"
            )
        }
        Transition::HalfOpened => info!("circuit breaker half-open: sending a probe request"),
        Transition::Closed => info!("circuit breaker closed: the probe request succeeded"),
        Transition::Reopened => warn!("circuit breaker re-opened: the probe request failed"),
    }
    report.transitions.push(t);
}
