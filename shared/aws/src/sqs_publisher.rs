//! [`SqsPublisher`]: the SQS adapter of the domain's [`MessagePublisher`] port.
//!
//! One `SendMessageBatch` per call, to the FIFO queue of the message's [`Destination`]:
//!
//! * entry `Id` = the index of the message in the call (`"0"`, `"1"`, …),
//! * `MessageBody` = the outbox body, byte for byte,
//! * `MessageGroupId` = [`message_group_id`] of the ordering key (batch id / teacher id): the
//!   key itself when SQS accepts it as a group id, else a deterministic valid id derived from it,
//! * `MessageDeduplicationId` = the event id (a UUID's text: always a valid id),
//! * message attributes: `topic`, `event_type`, `correlation_id` (`String`) and `key` = the raw
//!   ordering key (`String`, or `Binary` with its UTF-8 bytes when it has characters a `String`
//!   attribute may not carry, see [`key_attribute`]).
//!
//! A message SQS would refuse whatever happens ([`invalid_reason`]: a body over the queue's
//! maximum size, characters SQS does not accept, …) is failed without being sent, as
//! permanent: the relay parks it (`docs/relay.md`, "Parking").
//!
//! An HTTP 200 can carry `Failed` entries: each becomes [`SendResult::Failed`], retryable
//! unless SQS blames the sender (`SenderFault`). An entry SQS reports neither as successful
//! nor as failed is a retryable failure: nothing is assumed sent. Whole-call errors are
//! classified into [`PublishError`]: throttling, 5xx, timeouts and connection failures are
//! transient; everything else is permanent.

use crate::config::{ConfigError, Env};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{Destination, MessagePublisher, PublishError, SendResult};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// `SendMessageBatch` takes at most 10 entries…
pub const MAX_BATCH_ENTRIES: usize = 10;
/// …and at most 1 MiB of payload (bodies and message attributes) per request.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Largest message (body and attributes) the relay sends: the queues' `MaximumMessageSize`,
/// set explicitly to this value in `template.yaml`, which the local setup also reads (the attribute
/// accepts 1,024 to 1,048,576 bytes; a queue that does not set it keeps the old default of
/// 262,144 on some creation paths). All parts of a message attribute (name, type, value) count
/// towards the limit.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html>,
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html>
/// (moto 5.2.5: default and upper bound 1,048,576; it compares the body alone with it).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// `MessageGroupId` / `MessageDeduplicationId`: 1–128 characters, alphanumeric and punctuation
/// (``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``), i.e. ASCII 33–126.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html>
/// (moto 5.2.5 does not check the characters or the length; real SQS does).
pub const MAX_ID_CHARS: usize = 128;
/// Readable part of a derived group id: the key's first 95 characters, sanitised.
const GROUP_PREFIX_CHARS: usize = 95;
/// Separates the readable part of a derived group id from its hash.
const GROUP_HASH_SEPARATOR: char = '~';
/// Hex digits of the SHA-256 of the key in a derived group id (128 bits).
const GROUP_HASH_HEX: usize = 32;

/// Names of the message attributes every published message carries.
pub const ATTR_TOPIC: &str = "topic";
pub const ATTR_EVENT_TYPE: &str = "event_type";
pub const ATTR_CORRELATION_ID: &str = "correlation_id";
pub const ATTR_KEY: &str = "key";
const STRING: &str = "String";
const BINARY: &str = "Binary";

/// Environment variables carrying the queue URLs.
pub const EVENTS_QUEUE_URL_ENV: &str = "RAS_EVENTS_QUEUE_URL";
pub const NOTIFICATIONS_QUEUE_URL_ENV: &str = "RAS_NOTIFICATIONS_QUEUE_URL";

/// The queue of each destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrls {
    pub events: String,
    pub notifications: String,
}

impl QueueUrls {
    /// `RAS_EVENTS_QUEUE_URL` and `RAS_NOTIFICATIONS_QUEUE_URL`, both required.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`QueueUrls::from_env`] with an explicit lookup. Both must be FIFO queue URLs:
    /// `MessageGroupId` and deduplication ids exist only there.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_config(&Env::new(lookup))
    }

    /// The two queue URLs from `env`.
    pub fn from_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let fifo = |name: &'static str| -> Result<String, ConfigError> {
            let value = env.queue_url(name)?;
            if !value.ends_with(".fifo") {
                return Err(ConfigError::Invalid {
                    name,
                    value,
                    reason: "not a FIFO queue URL (http(s)://…/<name>.fifo)".into(),
                });
            }
            Ok(value)
        };
        Ok(QueueUrls {
            events: fifo(EVENTS_QUEUE_URL_ENV)?,
            notifications: fifo(NOTIFICATIONS_QUEUE_URL_ENV)?,
        })
    }

    pub fn url(&self, destination: Destination) -> &str {
        match destination {
            Destination::Events => &self.events,
            Destination::Notifications => &self.notifications,
        }
    }
}

/// A valid `MessageGroupId` / `MessageDeduplicationId`: 1–128 characters, each ASCII 33–126
/// ([`MAX_ID_CHARS`]).
pub fn is_valid_sqs_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_CHARS && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The `MessageGroupId` of an ordering key: deterministic, always valid, distinct per key.
///
/// * A key SQS accepts as a group id is used unchanged (what HuleEdu consumers have always
///   seen for ordinary batch and teacher ids).
/// * Any other key (longer than 128 characters, empty, or with characters outside ASCII
///   33–126, e.g. `lärare-Åsa`) becomes `<readable>~<hash>`: its first 95 characters with every
///   character outside ASCII 33–126 replaced by `_`, then `~` and 32 hex digits of the SHA-256
///   of the whole key (≤ 128 characters in all). Same key → same group id, so per-key order
///   holds; two keys share a group only on a 128-bit hash collision.
///
/// Consumers read the raw key from the body or the `key` attribute, never from the group id.
/// (A valid key of the same shape as a derived id, e.g. a batch id that is literally
/// `l_rare-_sa~<those 32 digits>`, would share its group: it needs a SHA-256 preimage.)
pub fn message_group_id(key: &str) -> Cow<'_, str> {
    if is_valid_sqs_id(key) {
        return Cow::Borrowed(key);
    }
    let readable: String = key
        .chars()
        .take(GROUP_PREFIX_CHARS)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    let digest = Sha256::digest(key.as_bytes());
    let hash = hex::encode(digest);
    let mut id = String::with_capacity(readable.len() + 1 + GROUP_HASH_HEX);
    id.push_str(&readable);
    id.push(GROUP_HASH_SEPARATOR);
    id.push_str(hash.get(..GROUP_HASH_HEX).unwrap_or(&hash));
    Cow::Owned(id)
}

/// A character SQS accepts in a message body or a `String` attribute value: `#x9 | #xA | #xD |
/// #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`; a message with any other character is
/// rejected (`InvalidMessageContents`).
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>
pub fn is_sqs_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// The first character of `text` SQS would refuse, with its byte offset.
pub fn first_invalid_char(text: &str) -> Option<(usize, char)> {
    text.char_indices().find(|(_, c)| !is_sqs_char(*c))
}

/// The `key` attribute: the raw ordering key as a `String` when SQS accepts its characters
/// there (any Unicode text in the allowed set, e.g. `lärare-Åsa`), else as `Binary` holding its
/// UTF-8 bytes (an id with a control character still reaches consumers exactly).
pub fn key_attribute(key: &str) -> Result<MessageAttributeValue, String> {
    if first_invalid_char(key).is_none() {
        return attribute(key);
    }
    MessageAttributeValue::builder()
        .data_type(BINARY)
        .binary_value(Blob::new(key.as_bytes()))
        .build()
        .map_err(|e| e.to_string())
}

/// Bytes a message counts against the 1 MiB request limit: the body plus, for every
/// message attribute, its name, data type and value (SQS's own accounting).
pub fn message_size(message: &OutboxMessage) -> usize {
    let attr = |name: &str, value_len: usize| name.len() + STRING.len() + value_len;
    message.body.len()
        + attr(ATTR_TOPIC, message.topic.name().len())
        + attr(ATTR_EVENT_TYPE, message.event_type().len())
        + attr(ATTR_CORRELATION_ID, uuid::fmt::Hyphenated::LENGTH)
        + attr(ATTR_KEY, message.ordering_key.len())
}

/// Why a message cannot be sent at all (checked before the request: SQS would refuse it
/// whatever happens, possibly failing the whole request with it). The ordering key is never a
/// reason: [`message_group_id`] makes a valid group id of any key. The event id (the
/// deduplication id), the topic and the correlation id are valid by their types: a UUID's text
/// and a topic name are ASCII 33–126.
pub fn invalid_reason(message: &OutboxMessage) -> Option<String> {
    if message.ordering_key.is_empty() {
        return Some("empty ordering key (the `key` attribute must not be empty)".into());
    }
    if message.body.is_empty() {
        return Some("empty body".into());
    }
    if let Some((at, c)) = first_invalid_char(&message.body) {
        return Some(format!(
            "body contains a character SQS does not accept (U+{:04X} at byte {at})",
            u32::from(c)
        ));
    }
    let size = message_size(message);
    if size > MAX_MESSAGE_BYTES {
        return Some(format!(
            "message of {size} bytes (body and attributes) exceeds the queue maximum of {MAX_MESSAGE_BYTES} bytes"
        ));
    }
    None
}

/// Publishes to the events and notifications FIFO queues. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqsPublisher {
    client: Client,
    queues: QueueUrls,
}

impl SqsPublisher {
    pub fn new(client: Client, queues: QueueUrls) -> Self {
        SqsPublisher { client, queues }
    }

    /// Client from the environment (region, credentials, `AWS_ENDPOINT_URL`) and the queue
    /// URLs of `RAS_EVENTS_QUEUE_URL` / `RAS_NOTIFICATIONS_QUEUE_URL`.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let queues = QueueUrls::from_env()?;
        let sdk = crate::config::load_sdk_config().await;
        Ok(SqsPublisher::new(Client::new(&sdk), queues))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn queues(&self) -> &QueueUrls {
        &self.queues
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, String> {
    MessageAttributeValue::builder()
        .data_type(STRING)
        .string_value(value)
        .build()
        .map_err(|e| e.to_string())
}

fn entry(id: usize, message: &OutboxMessage) -> Result<SendMessageBatchRequestEntry, String> {
    SendMessageBatchRequestEntry::builder()
        .id(id.to_string())
        .message_body(&message.body)
        .message_group_id(message_group_id(&message.ordering_key))
        .message_deduplication_id(message.event_id.to_string())
        .message_attributes(ATTR_TOPIC, attribute(message.topic.name())?)
        .message_attributes(ATTR_EVENT_TYPE, attribute(message.event_type())?)
        .message_attributes(
            ATTR_CORRELATION_ID,
            attribute(&message.correlation_id.to_string())?,
        )
        .message_attributes(ATTR_KEY, key_attribute(&message.ordering_key)?)
        .build()
        .map_err(|e| e.to_string())
}

impl MessagePublisher for SqsPublisher {
    async fn send_batch(
        &self,
        destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        if messages.len() > MAX_BATCH_ENTRIES {
            return Err(PublishError::Permanent {
                kind: "too_many_entries",
                message: format!(
                    "{} messages in one call; SendMessageBatch takes at most {MAX_BATCH_ENTRIES}",
                    messages.len()
                ),
            });
        }
        let mut results: Vec<Option<SendResult>> = vec![None; messages.len()];
        let mut entries = Vec::with_capacity(messages.len());
        let mut total = 0;
        for (i, message) in messages.iter().enumerate() {
            match invalid_reason(message).map_or_else(|| entry(i, message), Err) {
                Ok(e) => {
                    total += message_size(message);
                    entries.push(e);
                }
                Err(reason) => {
                    tracing::warn!(event_id = %message.event_id, %reason, "message cannot be sent to SQS");
                    results[i] = Some(SendResult::Failed {
                        retryable: false,
                        code: "InvalidMessage".into(),
                        message: reason,
                    });
                }
            }
        }
        if !entries.is_empty() {
            if total > MAX_BATCH_BYTES {
                return Err(PublishError::Permanent {
                    kind: "batch_too_large",
                    message: format!("{total} bytes in one call; the limit is {MAX_BATCH_BYTES}"),
                });
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(self.queues.url(destination))
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify_sdk_error(&e))?;
            for ok in out.successful() {
                if let Some(slot) =
                    index_of(ok.id(), messages.len()).and_then(|i| results.get_mut(i))
                {
                    *slot = Some(SendResult::Sent);
                }
            }
            for failed in out.failed() {
                if let Some(slot) =
                    index_of(failed.id(), messages.len()).and_then(|i| results.get_mut(i))
                {
                    *slot = Some(SendResult::Failed {
                        retryable: !failed.sender_fault(),
                        code: failed.code().to_string(),
                        message: failed.message().unwrap_or_default().to_string(),
                    });
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| SendResult::Failed {
                    retryable: true,
                    code: "NoResult".into(),
                    message: "SQS reported this entry neither as successful nor as failed".into(),
                })
            })
            .collect())
    }
}

fn index_of(id: &str, len: usize) -> Option<usize> {
    id.parse::<usize>().ok().filter(|i| *i < len)
}

/// What classification needs to know about a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqsErrorFacts<'a> {
    /// The service answered (with `code` / `http_status`); otherwise the request failed on
    /// the way (timeout, connection, unreadable response: transient) or could not be built
    /// (`constructed == false`: permanent).
    pub service: bool,
    pub constructed: bool,
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
    pub http_status: Option<u16>,
}

const THROTTLING_CODES: &[&str] = &[
    "RequestThrottled",
    "AWS.SimpleQueueService.RequestThrottled",
    "ThrottlingException",
    "Throttling",
    "KmsThrottled",
    "KMS.ThrottlingException",
    "OverLimit",
];

const SERVER_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "AWS.SimpleQueueService.ServiceUnavailable",
    "KmsDisabled",
    "KmsUnavailable",
    "KMS.DisabledException",
];

/// The kind of a whole-request error that blames the content of the messages (SQS refuses a
/// message for good, e.g. a body longer than the queue's `MaximumMessageSize` — moto fails
/// the whole `SendMessageBatch` for that — or characters it does not accept). The relay then
/// sends each of the request's messages alone, and parks the one refused alone.
pub const MESSAGE_REFUSED: &str = "message_refused";

/// Codes of [`MESSAGE_REFUSED`] errors.
const MESSAGE_REFUSAL_CODES: &[&str] = &[
    "InvalidParameterValue",
    "InvalidMessageContents",
    "AWS.SimpleQueueService.InvalidMessageContents",
    "InvalidAttributeValue",
    "BatchRequestTooLong",
    "AWS.SimpleQueueService.BatchRequestTooLong",
];

const QUEUE_MISSING_CODES: &[&str] = &[
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];

/// Classify a failed request (pure: unit-tested without a server).
pub fn classify(facts: &SqsErrorFacts<'_>) -> PublishError {
    let code = facts.code.unwrap_or("");
    let describe = || {
        let status = facts
            .http_status
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        format!(
            "SendMessageBatch: {code}{status}: {}",
            facts.message.unwrap_or("")
        )
    };
    if !facts.constructed {
        return PublishError::Permanent {
            kind: "invalid_request",
            message: describe(),
        };
    }
    if !facts.service {
        return PublishError::Transient(describe());
    }
    if THROTTLING_CODES.contains(&code) || SERVER_CODES.contains(&code) {
        return PublishError::Transient(describe());
    }
    if MESSAGE_REFUSAL_CODES.contains(&code) {
        return PublishError::Permanent {
            kind: MESSAGE_REFUSED,
            message: describe(),
        };
    }
    if QUEUE_MISSING_CODES.contains(&code) {
        return PublishError::Permanent {
            kind: "queue_not_found",
            message: describe(),
        };
    }
    match facts.http_status {
        Some(status) if status >= 500 || status == 429 => PublishError::Transient(describe()),
        Some(status) if status == 401 || status == 403 => PublishError::Permanent {
            kind: "access_denied",
            message: describe(),
        },
        Some(_) => PublishError::Permanent {
            kind: "invalid_request",
            message: describe(),
        },
        None => PublishError::Transient(describe()),
    }
}

/// Classify an SDK error of any SQS operation.
pub fn classify_sdk_error<E>(err: &SdkError<E>) -> PublishError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (service, constructed, http_status) = match err {
        SdkError::ConstructionFailure(_) => (false, false, None),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => (false, true, None),
        SdkError::ResponseError(e) => (false, true, Some(e.raw().status().as_u16())),
        SdkError::ServiceError(e) => (true, true, Some(e.raw().status().as_u16())),
        _ => (false, true, None),
    };
    let facts = SqsErrorFacts {
        service,
        constructed,
        code: err.code(),
        message: err.message(),
        http_status,
    };
    let error = classify(&facts);
    tracing::debug!(error = %DisplayErrorContext(err), "SQS request failed");
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    use ras_domain::contracts::{PublishedTopic, Timestamp};
    use uuid::Uuid;

    fn message(body: &str) -> OutboxMessage {
        OutboxMessage {
            event_id: Uuid::parse_str("6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41").unwrap(),
            topic: PublishedTopic::BatchResultsReady,
            ordering_key: "batch-1".into(),
            correlation_id: Uuid::parse_str("0b5b1a8c-9a1e-4f7e-8f0d-2f4c2c0d9e11").unwrap(),
            created_at: Timestamp::parse("2025-11-27T10:20:30Z").unwrap(),
            sequence: 0,
            body: body.into(),
        }
    }

    #[test]
    fn queue_urls_are_required_and_fifo() {
        let ok = QueueUrls::from_lookup(|name| match name {
            EVENTS_QUEUE_URL_ENV => Some("http://h:1/123/ras-events.fifo".into()),
            NOTIFICATIONS_QUEUE_URL_ENV => Some(" https://sqs/1/n.fifo ".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            ok.url(Destination::Events),
            "http://h:1/123/ras-events.fifo"
        );
        assert_eq!(ok.url(Destination::Notifications), "https://sqs/1/n.fifo");
        assert_eq!(
            QueueUrls::from_lookup(|_| None),
            Err(ConfigError::Missing(EVENTS_QUEUE_URL_ENV))
        );
        let standard = QueueUrls::from_lookup(|name| match name {
            EVENTS_QUEUE_URL_ENV => Some("http://h:1/123/ras-events".into()),
            _ => Some("http://h:1/123/n.fifo".into()),
        });
        assert!(matches!(
            standard,
            Err(ConfigError::Invalid {
                name: EVENTS_QUEUE_URL_ENV,
                ..
            })
        ));
    }

    #[test]
    fn size_counts_body_and_attributes() {
        let m = message("{}");
        let attrs = "topic".len() + "event_type".len() + "correlation_id".len() + "key".len();
        let values = 2 * "huleedu.ras.batch.results.ready.v1".len()
            + "0b5b1a8c-9a1e-4f7e-8f0d-2f4c2c0d9e11".len()
            + m.ordering_key.len();
        assert_eq!(message_size(&m), 2 + attrs + values + 4 * "String".len());
    }

    #[test]
    fn invalid_messages_are_named() {
        assert_eq!(invalid_reason(&message("{}")), None);
        let mut m = message("{}");
        m.ordering_key = String::new();
        assert!(invalid_reason(&m).unwrap().contains("ordering key"));
        // Any non-empty key can be sent: the group id is derived from it.
        for key in [
            "k".repeat(129),
            "lärare-Åsa".into(),
            "a b".into(),
            "\u{1}x".into(),
        ] {
            m.ordering_key = key;
            assert_eq!(invalid_reason(&m), None, "{:?}", m.ordering_key);
        }
        let big = message(&"x".repeat(MAX_MESSAGE_BYTES));
        assert!(invalid_reason(&big).unwrap().contains("exceeds"));
        assert!(invalid_reason(&message("")).is_some());
        let bad_char = message("{\"a\": \"\u{FFFF}\"}");
        assert!(invalid_reason(&bad_char).unwrap().contains("U+FFFF"));
        let control = message("{\"a\": \"\u{1}\"}");
        assert!(invalid_reason(&control).unwrap().contains("U+0001"));
        // Every event id is a valid MessageDeduplicationId: a UUID's text.
        for id in [Uuid::nil(), Uuid::max(), Uuid::new_v4()] {
            assert!(is_valid_sqs_id(&id.to_string()), "{id}");
        }
    }

    #[test]
    fn the_size_limit_counts_the_attributes() {
        let overhead = message_size(&message(""));
        assert_eq!(
            invalid_reason(&message(&"x".repeat(MAX_MESSAGE_BYTES - overhead))),
            None
        );
        assert!(invalid_reason(&message(&"x".repeat(MAX_MESSAGE_BYTES - overhead + 1))).is_some());
    }

    #[test]
    fn valid_group_ids_are_kept_unchanged() {
        for key in [
            "batch-1",
            "teacher_42",
            "6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41",
            "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        ] {
            assert!(matches!(message_group_id(key), Cow::Borrowed(k) if k == key));
        }
        let max = "k".repeat(MAX_ID_CHARS);
        assert_eq!(message_group_id(&max), max.as_str());
    }

    #[test]
    fn other_keys_get_a_readable_prefix_and_a_hash() {
        let id = message_group_id("lärare-Åsa");
        assert!(id.starts_with("l_rare-_sa~"), "{id}");
        assert_eq!(id.len(), "l_rare-_sa~".len() + 32);
        assert!(is_valid_sqs_id(&id));
        // 150 and 255 characters: a 95-character prefix, the separator, the hash.
        for n in [129, 150, 200, 255] {
            let key = "t".repeat(n);
            let id = message_group_id(&key);
            assert_eq!(id.len(), 95 + 1 + 32, "{n}");
            assert!(id.starts_with(&"t".repeat(95)));
            assert!(is_valid_sqs_id(&id));
        }
        // Keys that differ only beyond the prefix, or only in characters that sanitise alike.
        assert_ne!(
            message_group_id(&format!("{}a", "t".repeat(150))),
            message_group_id(&format!("{}b", "t".repeat(150)))
        );
        assert_ne!(
            message_group_id("lärare-Åsa"),
            message_group_id("lärare-Äsa")
        );
        assert_ne!(message_group_id("a b"), message_group_id("a\tb"));
        assert!(is_valid_sqs_id(&message_group_id("")));
        // Known value: SHA-256("lärare-Åsa"), first 128 bits; fixed forever (the wire format).
        let digest = hex::encode(Sha256::digest("lärare-Åsa".as_bytes()));
        assert_eq!(id.as_ref(), format!("l_rare-_sa~{}", &digest[..32]));
    }

    #[test]
    fn the_key_attribute_carries_the_raw_key() {
        let plain = key_attribute("lärare-Åsa").unwrap();
        assert_eq!(plain.data_type(), "String");
        assert_eq!(plain.string_value(), Some("lärare-Åsa"));
        let control = key_attribute("t\u{1}x").unwrap();
        assert_eq!(control.data_type(), "Binary");
        assert_eq!(
            control.binary_value().map(|b| b.as_ref().to_vec()),
            Some(b"t\x01x".to_vec())
        );
        assert_eq!(control.string_value(), None);
    }

    proptest::proptest! {
        #[test]
        fn any_key_maps_to_a_valid_stable_group_id(key in "\\PC{0,300}|[ -~]{0,200}|.{0,10}") {
            let id = message_group_id(&key);
            proptest::prop_assert!(is_valid_sqs_id(&id), "{:?} -> {:?}", key, id);
            proptest::prop_assert_eq!(message_group_id(&key), id.clone());
            if is_valid_sqs_id(&key) {
                proptest::prop_assert_eq!(id.as_ref(), key.as_str());
            }
            // The raw key is always sendable as the `key` attribute.
            proptest::prop_assert!(key.is_empty() || key_attribute(&key).is_ok());
        }

        #[test]
        fn distinct_keys_get_distinct_group_ids(a in "\\PC{1,200}", b in "\\PC{1,200}") {
            proptest::prop_assume!(a != b);
            proptest::prop_assert_ne!(message_group_id(&a), message_group_id(&b));
        }

        #[test]
        fn keys_alike_but_for_one_character_get_distinct_group_ids(
            prefix in "[a-z]{120,160}", x in proptest::char::any(), y in proptest::char::any()
        ) {
            proptest::prop_assume!(x != y);
            let (a, b) = (format!("{prefix}{x}"), format!("{prefix}{y}"));
            proptest::prop_assert_ne!(message_group_id(&a), message_group_id(&b));
        }
    }

    fn facts(code: &str, status: u16) -> SqsErrorFacts<'_> {
        SqsErrorFacts {
            service: true,
            constructed: true,
            code: Some(code),
            message: Some("m"),
            http_status: Some(status),
        }
    }

    #[test]
    fn classification() {
        assert!(classify(&facts("RequestThrottled", 400)).is_retryable());
        assert!(classify(&facts("InternalError", 500)).is_retryable());
        assert!(classify(&facts("Whatever", 503)).is_retryable());
        assert!(matches!(
            classify(&facts("AWS.SimpleQueueService.NonExistentQueue", 400)),
            PublishError::Permanent {
                kind: "queue_not_found",
                ..
            }
        ));
        assert!(matches!(
            classify(&facts("AccessDenied", 403)),
            PublishError::Permanent {
                kind: "access_denied",
                ..
            }
        ));
        assert!(matches!(
            classify(&facts("BatchRequestTooLong", 400)),
            PublishError::Permanent {
                kind: MESSAGE_REFUSED,
                ..
            }
        ));
        assert!(matches!(
            classify(&facts("InvalidParameterValue", 400)),
            PublishError::Permanent {
                kind: MESSAGE_REFUSED,
                ..
            }
        ));
        assert!(matches!(
            classify(&facts("KmsAccessDenied", 400)),
            PublishError::Permanent {
                kind: "invalid_request",
                ..
            }
        ));
        let timeout = SqsErrorFacts {
            service: false,
            constructed: true,
            code: None,
            message: None,
            http_status: None,
        };
        assert!(classify(&timeout).is_retryable());
        let construction = SqsErrorFacts {
            constructed: false,
            ..timeout
        };
        assert!(!classify(&construction).is_retryable());
    }
}
