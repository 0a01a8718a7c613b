//! The relay's parking queue (`ras-relay-parked`, a standard SQS queue): [`SqsParking`]
//! implements the domain's [`MessageParking`].
//!
//! One message per parked outbox message: the ASCII JSON (`\uXXXX` escapes, so no id or error
//! text can carry a character SQS refuses) of [`ParkedMessage`] — outbox keys, event id,
//! destination, topic, batch, error code and reason — and the message attributes `code` and
//! `destination` for filtering. The outbox body is not copied: the item stays in the outbox
//! table, where `ras-ops republish --parked` reads it.
//!
//! Failures are classified like the ingest dead letters' (`crate::dead_letter::classify`); any
//! failure leaves the message unparked, and the relay then keeps its stream record unsent.

use crate::dead_letter::{send_one, string_attribute};
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use ras_domain::contracts::to_python_json;
use ras_domain::ports::{MessageParking, ParkedMessage, PublishError};

/// Environment variable of the parking queue URL (relay, `ras-ops republish --parked`).
pub const PARKED_QUEUE_URL_ENV: &str = "RAS_RELAY_PARKED_QUEUE_URL";
pub const ATTR_CODE: &str = "code";
pub const ATTR_DESTINATION: &str = "destination";
/// The reason is cut to this many characters (it may quote SQS's message).
pub const MAX_REASON_CHARS: usize = 2_000;

/// The SQS adapter of [`MessageParking`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqsParking {
    client: Client,
    queue_url: String,
}

impl SqsParking {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsParking {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

/// The message body of a parked message: ASCII-only JSON, the reason cut to
/// [`MAX_REASON_CHARS`].
pub fn encode_parked(parked: &ParkedMessage) -> Result<String, PublishError> {
    let mut record = parked.clone();
    if record.reason.chars().count() > MAX_REASON_CHARS {
        record.reason = record.reason.chars().take(MAX_REASON_CHARS).collect();
    }
    let bytes = to_python_json(&record).map_err(|e| PublishError::Permanent {
        kind: "invalid_request",
        message: format!("parked message not serialisable: {e}"),
    })?;
    String::from_utf8(bytes).map_err(|e| PublishError::Permanent {
        kind: "invalid_request",
        message: format!("parked message not serialisable: {e}"),
    })
}

/// An attribute value made of ASCII letters, digits and `._-:` only (what codes and
/// destination names are); anything else is replaced by `_`, and an empty value by `-`.
fn tag(value: &str) -> Result<MessageAttributeValue, PublishError> {
    let mut text: String = value
        .chars()
        .take(256)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if text.is_empty() {
        text.push('-');
    }
    string_attribute(&text)
}

impl MessageParking for SqsParking {
    async fn park(&self, parked: &ParkedMessage) -> Result<(), PublishError> {
        let body = encode_parked(parked)?;
        let attributes = [
            (ATTR_CODE, tag(&parked.code)?),
            (ATTR_DESTINATION, tag(parked.destination.as_str())?),
        ];
        send_one(&self.client, &self.queue_url, body, attributes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_domain::contracts::Timestamp;
    use ras_domain::ports::Destination;

    fn parked(key: &str, reason: &str) -> ParkedMessage {
        ParkedMessage {
            event_id: "6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41".into(),
            ordering_key: key.into(),
            position: format!("2025-11-27T10:00:00.000000Z#00000#{key}"),
            destination: Destination::Events,
            topic: "huleedu.ras.batch.results.ready.v1".into(),
            batch_id: key.into(),
            created_at: "2025-11-27T10:00:00.000000Z".into(),
            code: "MessageTooLarge".into(),
            reason: reason.into(),
            body_bytes: 2_000_000,
            parked_at: Timestamp::parse("2025-11-27T10:00:01Z").unwrap_or_else(Timestamp::now),
        }
    }

    #[test]
    fn the_body_is_ascii_json_that_reads_back() {
        let p = parked("lärare-Åsa\u{1}\u{FFFF}", "too large");
        let body = encode_parked(&p).unwrap();
        assert!(body.is_ascii(), "{body}");
        let back: ParkedMessage = serde_json::from_str(&body).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn a_long_reason_is_cut() {
        let p = parked("b", &"ä".repeat(5_000));
        let back: ParkedMessage = serde_json::from_str(&encode_parked(&p).unwrap()).unwrap();
        assert_eq!(back.reason.chars().count(), MAX_REASON_CHARS);
    }

    #[test]
    fn tags_are_plain_ascii() {
        let t = tag("Kms.Access Denied/ä").unwrap();
        assert_eq!(t.string_value(), Some("Kms.Access_Denied__"));
        assert_eq!(tag("").unwrap().string_value(), Some("-"));
    }
}
