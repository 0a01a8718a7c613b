//! [`SqsPublisher`]: the SQS adapter of the domain's [`MessagePublisher`] port.
//!
//! One `SendMessageBatch` per call, to the FIFO queue of the message's [`Destination`]:
//!
//! * entry `Id` = the index of the message in the call (`"0"`, `"1"`, …),
//! * `MessageBody` = the outbox body, byte for byte,
//! * `MessageGroupId` = the ordering key (batch id / teacher id),
//! * `MessageDeduplicationId` = the event id,
//! * message attributes (`String`): `topic`, `event_type`, `correlation_id`, `key`.
//!
//! An HTTP 200 can carry `Failed` entries: each becomes [`SendResult::Failed`], retryable
//! unless SQS blames the sender (`SenderFault`). An entry SQS reports neither as successful
//! nor as failed is a retryable failure: nothing is assumed sent. Whole-call errors are
//! classified into [`PublishError`]: throttling, 5xx, timeouts and connection failures are
//! transient; everything else is permanent.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use ras_domain::ports::{Destination, MessagePublisher, OutgoingMessage, PublishError, SendResult};

/// `SendMessageBatch` takes at most 10 entries…
pub const MAX_BATCH_ENTRIES: usize = 10;
/// …and at most 1 MiB of payload (bodies and message attributes) per request.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// `MessageGroupId` / `MessageDeduplicationId`: 1–128 characters.
pub const MAX_ID_CHARS: usize = 128;

/// Names of the message attributes every published message carries.
pub const ATTR_TOPIC: &str = "topic";
pub const ATTR_EVENT_TYPE: &str = "event_type";
pub const ATTR_CORRELATION_ID: &str = "correlation_id";
pub const ATTR_KEY: &str = "key";
const STRING: &str = "String";

/// Environment variables carrying the queue URLs.
pub const EVENTS_QUEUE_URL_ENV: &str = "RAS_EVENTS_QUEUE_URL";
pub const NOTIFICATIONS_QUEUE_URL_ENV: &str = "RAS_NOTIFICATIONS_QUEUE_URL";

/// The queue of each destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrls {
    pub events: String,
    pub notifications: String,
}

/// A queue configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} = `{value}` is not a FIFO queue URL (http(s)://…/<name>.fifo)")]
    NotFifoUrl { name: &'static str, value: String },
}

impl QueueUrls {
    /// `RAS_EVENTS_QUEUE_URL` and `RAS_NOTIFICATIONS_QUEUE_URL`, both required.
    pub fn from_env() -> Result<Self, QueueConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`QueueUrls::from_env`] with an explicit lookup. Both must be FIFO queue URLs:
    /// `MessageGroupId` and deduplication ids exist only there.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, QueueConfigError> {
        let get = |name: &'static str| -> Result<String, QueueConfigError> {
            let value = lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or(QueueConfigError::Missing(name))?;
            let is_url = value.starts_with("https://") || value.starts_with("http://");
            if !is_url || !value.ends_with(".fifo") {
                return Err(QueueConfigError::NotFifoUrl { name, value });
            }
            Ok(value)
        };
        Ok(QueueUrls {
            events: get(EVENTS_QUEUE_URL_ENV)?,
            notifications: get(NOTIFICATIONS_QUEUE_URL_ENV)?,
        })
    }

    pub fn url(&self, destination: Destination) -> &str {
        match destination {
            Destination::Events => &self.events,
            Destination::Notifications => &self.notifications,
        }
    }
}

/// Bytes a message counts against the 1 MiB request limit: the body plus, for every
/// message attribute, its name, data type and value (SQS's own accounting).
pub fn message_size(message: &OutgoingMessage) -> usize {
    let attr = |name: &str, value: &str| name.len() + STRING.len() + value.len();
    message.body.len()
        + attr(ATTR_TOPIC, &message.topic)
        + attr(ATTR_EVENT_TYPE, &message.event_type)
        + attr(ATTR_CORRELATION_ID, &message.correlation_id)
        + attr(ATTR_KEY, &message.ordering_key)
}

/// Why a message cannot be sent at all (checked before the request; SQS would reject it,
/// possibly failing the whole request with it).
pub fn invalid_reason(message: &OutgoingMessage) -> Option<String> {
    let id_ok = |id: &str| {
        !id.is_empty()
            && id.chars().count() <= MAX_ID_CHARS
            && id.chars().all(|c| c.is_ascii_graphic())
    };
    if !id_ok(&message.ordering_key) {
        return Some(format!(
            "ordering key `{}` is not a valid MessageGroupId (1-{MAX_ID_CHARS} printable ASCII characters)",
            message.ordering_key
        ));
    }
    if !id_ok(&message.event_id) {
        return Some(format!(
            "event id `{}` is not a valid MessageDeduplicationId",
            message.event_id
        ));
    }
    if message.body.is_empty() {
        return Some("empty body".into());
    }
    for (name, value) in [
        (ATTR_TOPIC, &message.topic),
        (ATTR_EVENT_TYPE, &message.event_type),
        (ATTR_CORRELATION_ID, &message.correlation_id),
    ] {
        if value.is_empty() {
            return Some(format!("empty message attribute `{name}`"));
        }
    }
    if message_size(message) > MAX_BATCH_BYTES {
        return Some(format!(
            "message of {} bytes exceeds the SQS limit of {MAX_BATCH_BYTES} bytes",
            message_size(message)
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
    pub async fn from_env() -> Result<Self, QueueConfigError> {
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

fn entry(id: usize, message: &OutgoingMessage) -> Result<SendMessageBatchRequestEntry, String> {
    SendMessageBatchRequestEntry::builder()
        .id(id.to_string())
        .message_body(&message.body)
        .message_group_id(&message.ordering_key)
        .message_deduplication_id(&message.event_id)
        .message_attributes(ATTR_TOPIC, attribute(&message.topic)?)
        .message_attributes(ATTR_EVENT_TYPE, attribute(&message.event_type)?)
        .message_attributes(ATTR_CORRELATION_ID, attribute(&message.correlation_id)?)
        .message_attributes(ATTR_KEY, attribute(&message.ordering_key)?)
        .build()
        .map_err(|e| e.to_string())
}

impl MessagePublisher for SqsPublisher {
    async fn send_batch(
        &self,
        destination: Destination,
        messages: &[OutgoingMessage],
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

    fn message(body: &str) -> OutgoingMessage {
        OutgoingMessage {
            event_id: "6d2e0c8e-4a50-4d6f-9a0e-0f7c1d2b3a41".into(),
            topic: "huleedu.ras.batch.results.ready.v1".into(),
            event_type: "huleedu.ras.batch.results.ready.v1".into(),
            correlation_id: "0b5b1a8c-9a1e-4f7e-8f0d-2f4c2c0d9e11".into(),
            ordering_key: "batch-1".into(),
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
            Err(QueueConfigError::Missing(EVENTS_QUEUE_URL_ENV))
        );
        let standard = QueueUrls::from_lookup(|name| match name {
            EVENTS_QUEUE_URL_ENV => Some("http://h:1/123/ras-events".into()),
            _ => Some("http://h:1/123/n.fifo".into()),
        });
        assert!(matches!(standard, Err(QueueConfigError::NotFifoUrl { .. })));
    }

    #[test]
    fn size_counts_body_and_attributes() {
        let m = message("{}");
        let attrs = "topic".len() + "event_type".len() + "correlation_id".len() + "key".len();
        let values = 2 * m.topic.len() + m.correlation_id.len() + m.ordering_key.len();
        assert_eq!(message_size(&m), 2 + attrs + values + 4 * "String".len());
    }

    #[test]
    fn invalid_messages_are_named() {
        assert_eq!(invalid_reason(&message("{}")), None);
        let mut m = message("{}");
        m.ordering_key = String::new();
        assert!(invalid_reason(&m).unwrap().contains("MessageGroupId"));
        m.ordering_key = "k".repeat(129);
        assert!(invalid_reason(&m).is_some());
        let big = message(&"x".repeat(MAX_BATCH_BYTES));
        assert!(invalid_reason(&big).unwrap().contains("exceeds"));
        assert!(invalid_reason(&message("")).is_some());
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
