//! The DynamoDB stream side: Lambda stream records → outbox messages, and the partial batch
//! response (`{"batchItemFailures": [{"itemIdentifier": "<SequenceNumber>"}]}`).
//!
//! Only `INSERT` records carry work (the event source filter admits only those; anything
//! else that arrives is ignored). Their `NewImage` is an outbox item
//! ([`ras_aws::dynamo::OutboxItem`], decoded with `serde_dynamo`), whose message
//! ([`ras_domain::plan::OutboxMessage`]) is what the relay publishes. A record that cannot be
//! decoded or routed is *poison*: it is never reported as done (see `docs/relay.md`).

use crate::dispatch::Outbound;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use ras_aws::dynamo::OutboxItem;
use std::cmp::Ordering;

/// One stream record of the event, classified.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamEntry {
    /// Index in the event's `Records`.
    pub position: usize,
    /// `dynamodb.SequenceNumber`: what a batch item failure names.
    pub sequence_number: Option<String>,
    pub kind: EntryKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EntryKind {
    /// An outbox item to publish.
    Outbox(Box<Outbound>),
    /// Not an insert (`MODIFY`, `REMOVE`): nothing to publish.
    Ignored { event_name: String },
    /// An insert that cannot be published: undecodable image or unknown topic.
    Poison {
        event_id: Option<String>,
        reason: String,
    },
}

/// Classify every record of a stream event, in stream order.
pub fn decode_event(event: Event) -> Vec<StreamEntry> {
    event
        .records
        .into_iter()
        .enumerate()
        .map(|(position, record)| decode_record(position, record))
        .collect()
}

/// Classify one record (consumed: the image's strings move into the message, no copies).
pub fn decode_record(position: usize, record: EventRecord) -> StreamEntry {
    let change = record.change;
    let sequence_number = change.sequence_number.filter(|s| !s.is_empty());
    let kind = if record.event_name != "INSERT" {
        EntryKind::Ignored {
            event_name: record.event_name,
        }
    } else if change.new_image.inner().is_empty() {
        EntryKind::Poison {
            event_id: None,
            reason: "INSERT record without NewImage (stream view type must include NEW_IMAGE)"
                .into(),
        }
    } else {
        let event_id = image_event_id(&change.new_image);
        match OutboxItem::from_image(change.new_image) {
            Ok(item) => {
                let event_id = item.event_id;
                match outbound_from_item(item) {
                    Ok(outbound) => EntryKind::Outbox(Box::new(outbound)),
                    Err(reason) => EntryKind::Poison {
                        event_id: Some(event_id.to_string()),
                        reason,
                    },
                }
            }
            Err(e) => EntryKind::Poison {
                event_id,
                reason: e.to_string(),
            },
        }
    };
    StreamEntry {
        position,
        sequence_number,
        kind,
    }
}

fn image_event_id(image: &serde_dynamo::Item) -> Option<String> {
    match image.inner().get("event_id") {
        Some(serde_dynamo::AttributeValue::S(id)) => Some(id.clone()),
        _ => None,
    }
}

/// The message of an outbox item, and what ordering and parking need of the item. Routing is
/// by **topic** ([`ras_domain::plan::OutboxMessage::destination`]); the stored `destination`
/// is only cross-checked.
pub fn outbound_from_item(mut item: OutboxItem) -> Result<Outbound, String> {
    let stored_destination = item.destination;
    let batch_id = std::mem::take(&mut item.batch_id);
    let position = std::mem::take(&mut item.position);
    let commit_version = item.commit_version;
    let message = item.into_message().map_err(|e| e.to_string())?;
    if message.destination() != stored_destination {
        tracing::warn!(event_id = %message.event_id, topic = message.topic.name(), stored = stored_destination.as_str(),
            routed = message.destination().as_str(), "stored destination disagrees with the topic; routing by topic");
    }
    Ok(Outbound {
        message,
        batch_id,
        commit_version,
        position,
    })
}

/// Compare two stream sequence numbers (decimal strings of up to 40 digits) numerically;
/// `None` when either is not a decimal number.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Option<Ordering> {
    let digits = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| {
            let t = s.trim_start_matches('0');
            (t.len(), t.to_string())
        })
    };
    Some(digits(a)?.cmp(&digits(b)?))
}

/// The checkpoint to report for a set of unsent records, given as (position in the event,
/// sequence number): the lowest sequence number among them (Lambda retries that record and
/// everything after it). `Err(position)` names an unsent record without a sequence number:
/// then only failing the whole batch is safe.
pub fn lowest_unsent<'a>(
    unsent: impl IntoIterator<Item = (usize, Option<&'a str>)>,
) -> Result<Option<String>, usize> {
    let mut lowest: Option<(usize, &str)> = None;
    for (position, seq) in unsent {
        let Some(seq) = seq else {
            return Err(position);
        };
        lowest = match lowest {
            None => Some((position, seq)),
            Some((current_position, current)) => {
                let earlier = match compare_sequence_numbers(seq, current) {
                    Some(order) => order == Ordering::Less,
                    // Not numbers: records of one batch come in shard order.
                    None => position < current_position,
                };
                Some(if earlier {
                    (position, seq)
                } else {
                    (current_position, current)
                })
            }
        };
    }
    Ok(lowest.map(|(_, seq)| seq.to_string()))
}

/// The partial batch response naming `checkpoint` (none: the whole batch succeeded).
pub fn response(checkpoint: Option<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence_number) = checkpoint {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_domain::ports::Destination;
    use serde_json::json;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(compare_sequence_numbers("9", "10"), Some(Ordering::Less));
        assert_eq!(
            compare_sequence_numbers("000120", "119"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_sequence_numbers(
                "4421584500000000017450439091",
                "4421584500000000017450439092"
            ),
            Some(Ordering::Less)
        );
        assert_eq!(compare_sequence_numbers("x1", "2"), None);
    }

    #[test]
    fn lowest_unsent_is_the_checkpoint() {
        let entries = [(0, Some("300")), (1, Some("1000")), (2, Some("200"))];
        assert_eq!(lowest_unsent(entries), Ok(Some("200".into())));
        assert_eq!(lowest_unsent([]), Ok(None));
        let odd = [(0, Some("b")), (1, Some("a"))];
        assert_eq!(lowest_unsent(odd), Ok(Some("b".into())));
        let missing = [(0, Some("1")), (1, None)];
        assert_eq!(lowest_unsent(missing), Err(1));
    }

    #[test]
    fn response_shape() {
        assert_eq!(
            serde_json::to_value(response(Some("42".into()))).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "42"}]})
        );
        assert_eq!(
            serde_json::to_value(response(None)).unwrap(),
            json!({"batchItemFailures": []})
        );
    }

    fn image(topic: &str) -> serde_json::Value {
        json!({
            "event_id": {"S": "6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41"},
            "topic": {"S": topic},
            "event_type": {"S": topic},
            "destination": {"S": "notifications"},
            "ordering_key": {"S": "teacher-1"},
            "position": {"S": "2025-11-27T10:20:30.000000Z#00001#6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41"},
            "correlation_id": {"S": "0b5b1a8c-9a1e-4f7e-8f0d-2f4c2c0d9e11"},
            "created_at": {"S": "2025-11-27T10:20:30.000000Z"},
            "created_day": {"S": "2025-11-27"},
            "sequence": {"N": "1"},
            "batch_id": {"S": "b-1"},
            "body": {"S": "{\"event_id\": \"x\"}"},
            "expires_at": {"N": "1766830830"}
        })
    }

    fn event(records: Vec<(&str, &str, serde_json::Value)>) -> Event {
        let records: Vec<_> = records
            .into_iter()
            .map(|(name, seq, new_image)| {
                let key = |name: &str| new_image.get(name).cloned().unwrap_or(json!({"S": "?"}));
                let keys = json!({"ordering_key": key("ordering_key"), "position": key("position")});
                json!({
                    "eventID": format!("e{seq}"), "eventName": name, "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ras-outbox/stream/2025",
                    "dynamodb": {"ApproximateCreationDateTime": 1764238830, "Keys": keys,
                                 "NewImage": new_image, "SequenceNumber": seq, "SizeBytes": 100,
                                 "StreamViewType": "NEW_IMAGE"}
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    #[test]
    fn decodes_inserts_and_classifies_the_rest() {
        let notification = "huleedu.notification.teacher.requested.v1";
        let ev = event(vec![
            ("INSERT", "100", image(notification)),
            ("MODIFY", "101", image(notification)),
            ("INSERT", "102", image("huleedu.unknown.v1")),
            (
                "INSERT",
                "103",
                json!({"event_id": {"S": "e-9"}, "topic": {"N": "1"}}),
            ),
        ]);
        let entries = decode_event(ev);
        let EntryKind::Outbox(out) = &entries[0].kind else {
            panic!("{:?}", entries[0])
        };
        assert_eq!(out.message.destination(), Destination::Notifications);
        assert_eq!(out.message.ordering_key, "teacher-1");
        assert_eq!(out.message.body, "{\"event_id\": \"x\"}");
        assert_eq!(out.message.sequence, 1);
        assert_eq!(entries[0].sequence_number.as_deref(), Some("100"));
        assert!(
            matches!(&entries[1].kind, EntryKind::Ignored { event_name } if event_name == "MODIFY")
        );
        assert!(
            matches!(&entries[2].kind, EntryKind::Poison { reason, .. } if reason.contains("unknown topic"))
        );
        assert!(
            matches!(&entries[3].kind, EntryKind::Poison { event_id: Some(id), .. } if id == "e-9")
        );
    }
}
