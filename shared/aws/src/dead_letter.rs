//! The ingest dead-letter queue (SQS): [`SqsDeadLetterQueue`] implements the domain's
//! [`DeadLetterSink`].
//!
//! One message per dead-lettered record. The body is the JSON of [`DeadLetter`] (topic,
//! partition, offset, Kafka timestamp, key and value as base64, error kind and message, event
//! key, time), ASCII-only (`\uXXXX` escapes) so any text SQS refuses can never reach it. The
//! message attributes `error_kind` and `topic` allow filtering without parsing the body.
//!
//! A body larger than the queue's message size limit cannot be sent as is: the value is then
//! truncated to fit and the body gets `"value_truncated": true` and `"value_base64_length"`
//! (the full length); the record itself stays readable on Kafka at its topic/partition/offset
//! for the topic's retention time. Failures are classified like the store's: throttling,
//! server errors, timeouts, connection failures and configuration errors (missing queue,
//! access denied) are transient — the record is not acknowledged — the rest is permanent.

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use ras_domain::contracts::to_python_json;
use ras_domain::ports::{DeadLetter, DeadLetterSink, PublishError};
use serde_json::{json, Value};

/// SQS's classic message size limit (body and attributes). Queues may allow up to 1 MiB; this
/// default fits every queue.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 262_144;
/// Room kept for the message attributes.
const ATTRIBUTE_ALLOWANCE: usize = 1_024;

pub const ATTR_ERROR_KIND: &str = "error_kind";
pub const ATTR_TOPIC: &str = "topic";

/// The SQS adapter of [`DeadLetterSink`]. Cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct SqsDeadLetterQueue {
    client: Client,
    queue_url: String,
    max_message_bytes: usize,
}

impl SqsDeadLetterQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsDeadLetterQueue {
            client,
            queue_url: queue_url.into(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// Use another message size limit (the queue's `MaximumMessageSize`).
    pub fn with_max_message_bytes(mut self, max_message_bytes: usize) -> Self {
        self.max_message_bytes = max_message_bytes;
        self
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

pub(crate) fn string_attribute(value: &str) -> Result<MessageAttributeValue, PublishError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| PublishError::Permanent {
            kind: "invalid_request",
            message: e.to_string(),
        })
}

fn ascii_json(value: &Value) -> Result<String, PublishError> {
    let bytes = to_python_json(value).map_err(|e| PublishError::Permanent {
        kind: "invalid_request",
        message: format!("dead letter not serialisable: {e}"),
    })?;
    String::from_utf8(bytes).map_err(|e| PublishError::Permanent {
        kind: "invalid_request",
        message: format!("dead letter not serialisable: {e}"),
    })
}

/// The message body of a dead letter: its JSON, truncating the value when the whole would not
/// fit in `max_body_bytes` (module docs).
pub fn encode_body(letter: &DeadLetter, max_body_bytes: usize) -> Result<String, PublishError> {
    let mut doc = serde_json::to_value(letter).map_err(|e| PublishError::Permanent {
        kind: "invalid_request",
        message: format!("dead letter not serialisable: {e}"),
    })?;
    let body = ascii_json(&doc)?;
    if body.len() <= max_body_bytes {
        return Ok(body);
    }
    let full_length = letter.value_base64.len();
    doc["value_base64"] = json!("");
    doc["value_truncated"] = json!(true);
    doc["value_base64_length"] = json!(full_length);
    let overhead = ascii_json(&doc)?.len();
    // base64 is ASCII, so the kept prefix costs one byte per character; keep whole quanta.
    let keep = max_body_bytes.saturating_sub(overhead) / 4 * 4;
    let prefix = letter
        .value_base64
        .get(..keep.min(full_length))
        .unwrap_or("");
    doc["value_base64"] = json!(prefix);
    ascii_json(&doc)
}

const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "RequestThrottled",
    "AWS.SimpleQueueService.RequestThrottled",
    "KmsThrottled",
    "OverLimit",
    "TooManyRequestsException",
];

/// Not the record's fault: deployment, permissions, keys. Retrying (and alarming) beats
/// acknowledging records that were never dead-lettered.
const CONFIGURATION_CODES: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidSecurity",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "KmsAccessDenied",
    "KmsDisabled",
    "KmsNotFound",
    "KmsInvalidState",
    "KmsInvalidKeyUsage",
    "KmsOptInRequired",
];

/// What classification needs to know about a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqsFailure<'a> {
    /// No response from the service (timeout, connection, unreadable response).
    pub no_response: bool,
    /// The request could not even be built.
    pub construction: bool,
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
    pub http_status: Option<u16>,
}

impl<'a> SqsFailure<'a> {
    pub fn of<E: ProvideErrorMetadata>(err: &'a SdkError<E>) -> Self {
        let (no_response, construction, http_status) = match err {
            SdkError::ConstructionFailure(_) => (false, true, None),
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => (true, false, None),
            SdkError::ResponseError(e) => (true, false, Some(e.raw().status().as_u16())),
            SdkError::ServiceError(e) => (false, false, Some(e.raw().status().as_u16())),
            _ => (true, false, None),
        };
        SqsFailure {
            no_response,
            construction,
            code: err.code(),
            message: err.message(),
            http_status,
        }
    }
}

/// Transient: throttling, 5xx, no response, configuration; permanent: other 4xx, bad requests.
pub fn classify(operation: &str, failure: &SqsFailure<'_>) -> PublishError {
    let code = failure.code.unwrap_or("");
    let describe = || {
        let status = failure
            .http_status
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        format!(
            "{operation}: {code}{status}: {}",
            failure.message.unwrap_or("no response")
        )
    };
    if failure.construction {
        return PublishError::Permanent {
            kind: "invalid_request",
            message: describe(),
        };
    }
    if failure.no_response
        || THROTTLING_CODES.contains(&code)
        || CONFIGURATION_CODES.contains(&code)
    {
        return PublishError::Transient(describe());
    }
    match failure.http_status {
        Some(status) if status < 500 => PublishError::Permanent {
            kind: "invalid_request",
            message: describe(),
        },
        _ => PublishError::Transient(describe()),
    }
}

/// Classify any SQS SDK error.
pub fn classify_sqs_error<E>(operation: &str, err: &SdkError<E>) -> PublishError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let error = classify(operation, &SqsFailure::of(err));
    tracing::debug!(operation, error = %aws_sdk_sqs::error::DisplayErrorContext(err), "SQS request failed");
    error
}

impl DeadLetterSink for SqsDeadLetterQueue {
    async fn send(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        let max_body = self.max_message_bytes.saturating_sub(ATTRIBUTE_ALLOWANCE);
        let body = encode_body(letter, max_body)?;
        let attributes = [
            (ATTR_ERROR_KIND, string_attribute(&letter.error_kind)?),
            (ATTR_TOPIC, string_attribute(&letter.topic)?),
        ];
        send_one(&self.client, &self.queue_url, body, attributes).await
    }
}

/// One `SendMessage` with its string attributes, failures classified by [`classify`]: how
/// the dead-letter queue and the relay's parking queue (`crate::parking`) send.
pub(crate) async fn send_one<const N: usize>(
    client: &Client,
    queue_url: &str,
    body: String,
    attributes: [(&str, MessageAttributeValue); N],
) -> Result<(), PublishError> {
    let mut request = client
        .send_message()
        .queue_url(queue_url)
        .message_body(body);
    for (name, value) in attributes {
        request = request.message_attributes(name, value);
    }
    request
        .send()
        .await
        .map_err(|e| classify_sqs_error("SendMessage", &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_domain::contracts::Timestamp;

    fn letter(value_base64: &str) -> DeadLetter {
        DeadLetter {
            topic: "huleedu.els.essay.slot.assigned.v1".into(),
            partition: 2,
            offset: 41,
            timestamp: Timestamp::parse("2025-11-27T10:00:00Z"),
            key_base64: Some("a2V5".into()),
            value_base64: value_base64.into(),
            error_kind: "schema_violation".into(),
            error_message: "schema violation at `data.essay_id`: \u{00c5}sa \u{fffe}".into(),
            event_key: Some("event:aaaaaaaa-0000-4000-8000-000000000001".into()),
            dead_lettered_at: Timestamp::parse("2025-11-27T11:00:00Z")
                .unwrap_or_else(Timestamp::now),
        }
    }

    #[test]
    fn body_is_the_ascii_json_of_the_dead_letter() {
        let l = letter("eyJhIjogMX0=");
        let body = encode_body(&l, DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        assert!(body.is_ascii(), "{body}");
        assert!(body.contains("\\u00c5sa \\ufffe"), "{body}");
        let back: DeadLetter = serde_json::from_str(&body).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn oversized_values_are_truncated_to_fit() {
        let value = "QUJD".repeat(100_000); // 400,000 characters
        let l = letter(&value);
        let body = encode_body(&l, 10_000).unwrap();
        assert!(body.len() <= 10_000, "{}", body.len());
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["value_truncated"], true);
        assert_eq!(doc["value_base64_length"], 400_000);
        let kept = doc["value_base64"].as_str().unwrap();
        assert!(kept.len() > 9_000 && kept.len() / 4 * 4 == kept.len() && value.starts_with(kept));
        assert_eq!(doc["offset"], 41);
        let back: DeadLetter = serde_json::from_value(doc).unwrap();
        assert_eq!(back.error_kind, "schema_violation");
    }

    fn failure(code: &'static str, status: u16) -> SqsFailure<'static> {
        SqsFailure {
            no_response: false,
            construction: false,
            code: Some(code),
            message: Some("m"),
            http_status: Some(status),
        }
    }

    #[test]
    fn classification() {
        for f in [
            failure("RequestThrottled", 400),
            failure("AWS.SimpleQueueService.NonExistentQueue", 400),
            failure("QueueDoesNotExist", 400),
            failure("AccessDenied", 403),
            failure("KmsThrottled", 400),
            failure("InternalError", 500),
            failure("ServiceUnavailable", 503),
            SqsFailure {
                no_response: true,
                construction: false,
                code: None,
                message: None,
                http_status: None,
            },
        ] {
            assert!(classify("SendMessage", &f).is_retryable(), "{f:?}");
        }
        for f in [
            failure("InvalidMessageContents", 400),
            failure("InvalidParameterValue", 400),
            SqsFailure {
                no_response: false,
                construction: true,
                code: None,
                message: None,
                http_status: None,
            },
        ] {
            assert!(!classify("SendMessage", &f).is_retryable(), "{f:?}");
        }
    }
}
