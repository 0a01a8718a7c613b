//! Items of the outbox table (`docs/data-model.md`, "Outbox"): [`OutboxItem`], the stored shape
//! of one [`OutboxMessage`], keyed by its ordering key and position. Commits write it with
//! [`OutboxItem::from_message`]; the relay decodes stream `NEW_IMAGE`s with
//! [`OutboxItem::from_image`] and publishes [`OutboxItem::into_message`].
//!
//! Bodies longer than [`INLINE_BODY_LIMIT`] are stored gzip-compressed in the binary attribute
//! `body_gzip` instead of `body`: a CJ result for thousands of essays publishes an
//! assessment-completed event of ~800 KB (SQS takes up to 1 MiB), which would not fit
//! DynamoDB's 400 KB item limit as text. The (de)compression happens in
//! [`OutboxItem::to_image`] / [`OutboxItem::from_image`], the one way each direction between
//! the item and its attributes, so every reader of the table and of its stream sees the same
//! `body`.

use super::items::{sortable_time, Item, ItemError};
use ras_domain::contracts::{PublishedTopic, Timestamp};
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::Destination;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Outbox items expire 30 days after the message was created.
pub const OUTBOX_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// Partition key: the SQS `MessageGroupId`. All messages of one batch (events) or one teacher
/// (notifications) share a partition key, so the table's stream delivers them in commit order.
pub const ORDERING_KEY: &str = "ordering_key";
/// Sort key: `created_at#sequence#event_id` (see [`position`]).
pub const POSITION: &str = "position";
/// The envelope id (and the SQS `MessageDeduplicationId`); key of [`INDEX_BY_EVENT_ID`].
pub const EVENT_ID: &str = "event_id";
/// `event_id` → table key (KEYS_ONLY), for operations.
pub const INDEX_BY_EVENT_ID: &str = "by_event_id";
pub const INDEX_BY_CREATED_DAY: &str = "by_created_day";

/// The sort key of a message: its creation time (fixed width), its place among the messages of
/// its commit and its id — deterministic, so a re-commit of the same message hits the same key.
pub fn position(created_at: &str, sequence: u32, event_id: Uuid) -> String {
    format!("{created_at}#{sequence:05}#{event_id}")
}

/// Longest body stored as plain text; longer bodies are stored in `body_gzip`.
pub const INLINE_BODY_LIMIT: usize = 64 * 1024;
/// Largest body a stored item may decompress to (a transaction carries at most 4 MB, so no
/// committed message is longer): a corrupt `body_gzip` cannot make a reader allocate more. The
/// relay reports a body over SQS's 1 MiB as oversize, not as undecodable.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// One outbox item, attribute for attribute (`body` is `body` or `body_gzip`, see the module
/// docs). Convert it with [`OutboxItem::to_image`] / [`OutboxItem::from_image`] (or
/// `to_item` / `from_item`): its serde form alone leaves a compressed body out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Envelope `event_id`; the table key and SQS `MessageDeduplicationId`.
    pub event_id: Uuid,
    /// The published topic.
    pub topic: String,
    /// Envelope `event_type` (= the topic).
    pub event_type: String,
    pub destination: Destination,
    /// SQS `MessageGroupId`: batch id (events) or teacher id (notifications). Partition key.
    pub ordering_key: String,
    /// Sort key, see [`position`].
    pub position: String,
    pub correlation_id: Uuid,
    /// Envelope `event_timestamp`, fixed width (`2025-11-27T10:20:30.000000Z`).
    pub created_at: String,
    /// `YYYY-MM-DD` of `created_at` (partition key of `by_created_day`).
    pub created_day: String,
    /// Position among the messages of one commit.
    pub sequence: u32,
    pub batch_id: String,
    /// The exact envelope JSON to send. Stored as the attribute `body`, or — longer than
    /// [`INLINE_BODY_LIMIT`] — gzip-compressed as `body_gzip` (see [`OutboxItem::to_image`]).
    #[serde(default, skip_serializing_if = "stored_compressed")]
    pub body: String,
    /// TTL: `created_at` + 30 days, unix seconds.
    pub expires_at: i64,
    /// The batch root version the commit was planned on (`Plan::expected_version`). Commits
    /// of a batch are conditioned on it, so it differs between any two of them: with
    /// `batch_id` it names the commit even when two commits share a `created_at` (same
    /// microsecond, or a fixed clock). `None` on items written without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_version: Option<u64>,
}

impl OutboxItem {
    pub fn from_message(message: &OutboxMessage, batch_id: &str) -> Self {
        let created_at = sortable_time(message.created_at);
        OutboxItem {
            event_id: message.event_id,
            topic: message.topic.name().to_string(),
            event_type: message.event_type().to_string(),
            destination: message.destination(),
            ordering_key: message.ordering_key.clone(),
            position: position(&created_at, message.sequence, message.event_id),
            correlation_id: message.correlation_id,
            created_day: created_at[..10].to_string(),
            created_at,
            sequence: message.sequence,
            batch_id: batch_id.to_string(),
            body: message.body.clone(),
            expires_at: message.created_at.unix_micros().div_euclid(1_000_000) + OUTBOX_TTL_SECONDS,
            commit_version: None,
        }
    }

    /// The item as written by a commit planned on root version `version`.
    pub fn in_commit(mut self, version: Option<u64>) -> Self {
        self.commit_version = version;
        self
    }

    pub fn published_topic(&self) -> Result<PublishedTopic, ItemError> {
        PublishedTopic::from_name(&self.topic).ok_or_else(|| ItemError::Decode {
            what: "outbox",
            message: format!("unknown topic `{}`: no queue to route it to", self.topic),
        })
    }

    pub fn created_timestamp(&self) -> Result<Timestamp, ItemError> {
        Timestamp::parse(&self.created_at).ok_or_else(|| ItemError::Decode {
            what: "outbox",
            message: format!("invalid created_at `{}`", self.created_at),
        })
    }

    /// The message back (what the relay publishes): the inverse of
    /// [`OutboxItem::from_message`]. Consumes the item, so the body is not copied.
    pub fn into_message(self) -> Result<OutboxMessage, ItemError> {
        Ok(OutboxMessage {
            topic: self.published_topic()?,
            created_at: self.created_timestamp()?,
            event_id: self.event_id,
            ordering_key: self.ordering_key,
            correlation_id: self.correlation_id,
            sequence: self.sequence,
            body: self.body,
        })
    }

    pub fn to_item(&self) -> Result<Item, ItemError> {
        self.to_image()
    }

    /// The item's attributes, as an SDK item or a `serde_dynamo` image: every field under its
    /// name, the body as `body` or, compressed, as `body_gzip`.
    pub fn to_image<I: From<serde_dynamo::Item>>(&self) -> Result<I, ItemError> {
        let mut image: serde_dynamo::Item =
            serde_dynamo::to_item(self).map_err(|e| ItemError::Encode {
                what: "outbox",
                message: e.to_string(),
            })?;
        if stored_compressed(&self.body) {
            image.insert(
                BODY_GZIP.to_string(),
                serde_dynamo::AttributeValue::B(gzip(&self.body)),
            );
        }
        Ok(image.into())
    }

    pub fn from_item(item: Item) -> Result<Self, ItemError> {
        Self::from_image(item)
    }

    /// Decode any attribute map `serde_dynamo` understands: an SDK item, or the `NewImage` of
    /// a DynamoDB stream record (Lambda event or Streams API). Exactly one of `body` and
    /// `body_gzip` must be present; a compressed body is inflated to at most
    /// [`MAX_BODY_BYTES`].
    pub fn from_image<I: Into<serde_dynamo::Item>>(image: I) -> Result<Self, ItemError> {
        let decode = |message: String| ItemError::Decode {
            what: "outbox",
            message,
        };
        let mut image: serde_dynamo::Item = image.into();
        let compressed = image.remove(BODY_GZIP);
        let inline = image.contains_key(BODY);
        let mut item: OutboxItem =
            serde_dynamo::from_item(image).map_err(|e| decode(e.to_string()))?;
        match (inline, compressed) {
            (true, None) => {}
            (false, Some(serde_dynamo::AttributeValue::B(bytes))) => {
                item.body = gunzip(&bytes, MAX_BODY_BYTES).map_err(decode)?;
            }
            (false, Some(_)) => return Err(decode("`body_gzip` is not binary".into())),
            (true, Some(_)) => {
                return Err(decode("both `body` and `body_gzip` are present".into()))
            }
            (false, None) => return Err(decode("missing field `body` (or `body_gzip`)".into())),
        }
        Ok(item)
    }
}

/// Attribute of a body stored as text.
const BODY: &str = "body";
/// Attribute of a body stored gzip-compressed (binary).
const BODY_GZIP: &str = "body_gzip";

/// Whether a body is stored compressed (`body_gzip`) rather than as text (`body`).
fn stored_compressed(body: &str) -> bool {
    body.len() > INLINE_BODY_LIMIT
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 4),
        flate2::Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(text.as_bytes());
    encoder.finish().unwrap_or_default()
}

fn gunzip(compressed: &[u8], limit: usize) -> Result<String, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("`body_gzip` is not valid gzip: {e}"))?;
    if out.len() > limit {
        return Err(format!(
            "`body_gzip` decompresses to more than {limit} bytes"
        ));
    }
    String::from_utf8(out).map_err(|_| "`body_gzip` is not UTF-8 text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::items::{get_s, n, s};
    use aws_sdk_dynamodb::types::AttributeValue;

    fn message(topic: PublishedTopic, created: &str) -> OutboxMessage {
        OutboxMessage {
            event_id: Uuid::from_u128(42),
            topic,
            ordering_key: "teacher-1".into(),
            correlation_id: Uuid::from_u128(43),
            created_at: Timestamp::parse(created).unwrap(),
            sequence: 1,
            body: r#"{"event_id": "x", "data": {"name": "\u00c5sa"}}"#.into(),
        }
    }

    #[test]
    fn outbox_item_has_the_documented_attributes_and_round_trips() {
        let msg = message(
            PublishedTopic::TeacherNotificationRequested,
            "2025-11-27T10:20:30Z",
        );
        let outbox = OutboxItem::from_message(&msg, "b-1");
        let item = outbox.to_item().unwrap();
        let expected: Item = [
            ("event_id", s(Uuid::from_u128(42).to_string())),
            ("topic", s("huleedu.notification.teacher.requested.v1")),
            ("event_type", s("huleedu.notification.teacher.requested.v1")),
            ("destination", s("notifications")),
            ("ordering_key", s("teacher-1")),
            (
                "position",
                s(format!(
                    "2025-11-27T10:20:30.000000Z#00001#{}",
                    Uuid::from_u128(42)
                )),
            ),
            ("correlation_id", s(Uuid::from_u128(43).to_string())),
            ("created_at", s("2025-11-27T10:20:30.000000Z")),
            ("created_day", s("2025-11-27")),
            ("sequence", n(1)),
            ("batch_id", s("b-1")),
            ("body", s(msg.body.clone())),
            ("expires_at", n(1_764_238_830 + OUTBOX_TTL_SECONDS)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(item, expected);
        let decoded = OutboxItem::from_item(item).unwrap();
        assert_eq!(decoded, outbox);
        assert_eq!(decoded.into_message().unwrap(), msg);
    }

    #[test]
    fn the_commit_version_is_stored_when_known() {
        let msg = message(PublishedTopic::BatchResultsReady, "2025-11-27T10:20:30Z");
        let outbox = OutboxItem::from_message(&msg, "b-1").in_commit(Some(7));
        let item = outbox.to_item().unwrap();
        assert_eq!(item.get("commit_version"), Some(&n(7)));
        assert_eq!(OutboxItem::from_item(item).unwrap(), outbox);
        let without = OutboxItem::from_message(&msg, "b-1").in_commit(None);
        assert!(!without.to_item().unwrap().contains_key("commit_version"));
    }

    #[test]
    fn events_go_to_the_events_queue() {
        let msg = message(
            PublishedTopic::BatchResultsReady,
            "2025-11-27T23:59:59.999999Z",
        );
        let outbox = OutboxItem::from_message(&msg, "b-1");
        assert_eq!(outbox.destination, Destination::Events);
        assert_eq!(outbox.created_at, "2025-11-27T23:59:59.999999Z");
        assert_eq!(outbox.created_day, "2025-11-27");
        let item = outbox.to_item().unwrap();
        assert_eq!(get_s(&item, "destination"), Some("events"));
        assert_eq!(
            OutboxItem::from_item(item).unwrap().into_message().unwrap(),
            msg
        );
    }

    #[test]
    fn decodes_a_stream_image() {
        let msg = message(
            PublishedTopic::BatchAssessmentCompleted,
            "2025-11-27T10:20:30.5Z",
        );
        let outbox = OutboxItem::from_message(&msg, "b-1");
        // A stream image is the same attribute map, as `serde_dynamo::Item`.
        let image: serde_dynamo::Item = outbox.to_item().unwrap().into();
        assert_eq!(OutboxItem::from_image(image).unwrap(), outbox);
        let mut broken = outbox.to_item().unwrap();
        broken.insert(
            "topic".into(),
            AttributeValue::S("huleedu.unknown.v1".into()),
        );
        assert!(OutboxItem::from_item(broken)
            .unwrap()
            .into_message()
            .is_err());
    }

    #[test]
    fn long_bodies_are_stored_compressed_and_read_back() {
        let mut msg = message(
            PublishedTopic::BatchAssessmentCompleted,
            "2025-11-27T10:20:30Z",
        );
        let essays: Vec<String> = (0..8_000)
            .map(|i| format!(r#"{{"essay_id": "{}", "rank": {i}}}"#, Uuid::new_v4()))
            .collect();
        msg.body = format!(r#"{{"rankings_summary": [{}]}}"#, essays.join(", "));
        assert!(msg.body.len() > 400 * 1024);
        let outbox = OutboxItem::from_message(&msg, "b-1");
        let item = outbox.to_item().unwrap();
        assert!(!item.contains_key("body"));
        let Some(AttributeValue::B(blob)) = item.get("body_gzip") else {
            panic!("no binary body_gzip: {item:?}");
        };
        assert!(
            blob.as_ref().len() < 300 * 1024,
            "{} bytes",
            blob.as_ref().len()
        );
        let decoded = OutboxItem::from_item(item).unwrap();
        assert_eq!(decoded, outbox);
        assert_eq!(decoded.into_message().unwrap().body, msg.body);
    }

    #[test]
    fn bodies_up_to_the_inline_limit_stay_text() {
        let mut msg = message(PublishedTopic::BatchResultsReady, "2025-11-27T10:20:30Z");
        msg.body = "x".repeat(INLINE_BODY_LIMIT);
        let item = OutboxItem::from_message(&msg, "b-1").to_item().unwrap();
        assert_eq!(get_s(&item, "body").map(str::len), Some(INLINE_BODY_LIMIT));
        assert!(!item.contains_key("body_gzip"));
    }

    #[test]
    fn a_corrupt_or_missing_body_is_a_decode_error() {
        let msg = message(PublishedTopic::BatchResultsReady, "2025-11-27T10:20:30Z");
        let good = OutboxItem::from_message(&msg, "b-1").to_item().unwrap();

        let mut corrupt = good.clone();
        corrupt.remove("body");
        corrupt.insert(
            "body_gzip".into(),
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
                b"not gzip".to_vec(),
            )),
        );
        let err = OutboxItem::from_item(corrupt).unwrap_err().to_string();
        assert!(err.contains("body_gzip"), "{err}");

        let mut both = good.clone();
        both.insert(
            "body_gzip".into(),
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(gzip("{}"))),
        );
        assert!(OutboxItem::from_item(both).is_err());

        let mut none = good;
        none.remove("body");
        let err = OutboxItem::from_item(none).unwrap_err().to_string();
        assert!(err.contains("body"), "{err}");
    }

    #[test]
    fn decompression_is_bounded() {
        let bomb = gzip(&" ".repeat(MAX_BODY_BYTES + 1));
        assert!(gunzip(&bomb, MAX_BODY_BYTES).is_err());
        assert_eq!(gunzip(&gzip("é"), MAX_BODY_BYTES).unwrap(), "é");
    }
}
