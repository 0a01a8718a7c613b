//! Kafka record value → typed event, with errors that name the offending field.

use super::consumed::*;
use super::enums::ContentType;
use super::envelope::InboundEnvelope;
use super::metadata::StorageReferenceMetadata;
use super::timestamp::Timestamp;
use super::topics::ConsumedTopic;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Identifiers become DynamoDB keys; the reference stores them in `varchar(255)` columns.
pub const MAX_ID_LEN: usize = 255;

/// Why a record could not be turned into an event. All variants are permanent: retrying the
/// same bytes gives the same answer, so such records are dead-lettered.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    #[error("record value is not valid UTF-8: {0}")]
    InvalidUtf8(String),
    #[error("record value is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("schema violation at `{field}`: {message}")]
    Schema { field: String, message: String },
    #[error("constraint violation at `{field}`: {message}")]
    Constraint { field: String, message: String },
}

impl DecodeError {
    /// Stable machine-readable kind for dead letters and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::UnknownTopic(_) => "unknown_topic",
            DecodeError::InvalidUtf8(_) => "invalid_utf8",
            DecodeError::InvalidJson(_) => "invalid_json",
            DecodeError::Schema { .. } => "schema_violation",
            DecodeError::Constraint { .. } => "constraint_violation",
        }
    }

    /// The JSON path of the offending field, when there is one (e.g. `data.essay_results[0].rank`).
    pub fn field(&self) -> Option<&str> {
        match self {
            DecodeError::Schema { field, .. } | DecodeError::Constraint { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }

    fn constraint(field: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError::Constraint {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The typed payload of a consumed record, chosen by topic.
#[derive(Clone, Debug, PartialEq)]
pub enum InboundPayload {
    BatchRegistered(BatchEssaysRegistered),
    EssaySlotAssigned(EssaySlotAssignedV1),
    PhaseOutcome(ElsBatchPhaseOutcomeV1),
    SpellcheckResult(SpellcheckResultV1),
    AssessmentResult(AssessmentResultV1),
    PipelineCompleted(BatchPipelineCompletedV1),
}

impl InboundPayload {
    /// Every consumed event concerns exactly one batch: the aggregate it is applied to.
    pub fn batch_id(&self) -> &str {
        match self {
            InboundPayload::BatchRegistered(e) => &e.entity_id,
            InboundPayload::EssaySlotAssigned(e) => &e.batch_id,
            InboundPayload::PhaseOutcome(e) => &e.batch_id,
            InboundPayload::SpellcheckResult(e) => &e.batch_id,
            InboundPayload::AssessmentResult(e) => &e.batch_id,
            InboundPayload::PipelineCompleted(e) => &e.batch_id,
        }
    }

    /// The one essay a per-essay event is about (slot assignment, spellcheck result); `None`
    /// for the batch-level events.
    pub fn essay_id(&self) -> Option<&str> {
        match self {
            InboundPayload::EssaySlotAssigned(e) => Some(&e.essay_id),
            // The decoder requires `entity_id` of a spellcheck result.
            InboundPayload::SpellcheckResult(e) => Some(e.entity_id.as_deref().unwrap_or("")),
            _ => None,
        }
    }

    /// The producer's own domain time for the event, when the payload carries one.
    pub fn payload_time(&self) -> Option<Timestamp> {
        match self {
            InboundPayload::BatchRegistered(e) => e.metadata.timestamp,
            InboundPayload::EssaySlotAssigned(e) => e.timestamp,
            InboundPayload::PhaseOutcome(_) => None,
            InboundPayload::SpellcheckResult(e) => e.timestamp.or(e.system_metadata.timestamp),
            InboundPayload::AssessmentResult(e) => e.assessed_at.or(e.timestamp),
            InboundPayload::PipelineCompleted(e) => e.metadata.timestamp,
        }
    }
}

/// A decoded record: envelope fields plus the typed payload.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundEvent {
    pub topic: ConsumedTopic,
    pub event_id: Option<Uuid>,
    pub event_type: String,
    pub event_timestamp: Option<Timestamp>,
    pub source_service: String,
    pub correlation_id: Option<Uuid>,
    pub metadata: Option<Map<String, Value>>,
    pub payload: InboundPayload,
}

impl InboundEvent {
    pub fn batch_id(&self) -> &str {
        self.payload.batch_id()
    }
}

/// The identifiers of a record the decoder rejects, read leniently from its envelope (any other
/// key, `data` included, is ignored): what its dead letter and logs can still name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvelopeIds {
    /// `Some(None)` when the envelope has no `event_id` (absent or `null`, or the value is not
    /// a JSON object at all), `Some(Some(id))` when it is a UUID string (surrounding blanks
    /// allowed), `None` when it is anything else.
    pub event_id: Option<Option<Uuid>>,
    /// As sent, when it is a string.
    pub correlation_id: Option<String>,
}

impl EnvelopeIds {
    pub fn read(value: &[u8]) -> Self {
        #[derive(Default, serde::Deserialize)]
        struct Raw {
            #[serde(default)]
            event_id: Option<Value>,
            #[serde(default)]
            correlation_id: Option<Value>,
        }
        let raw: Raw = serde_json::from_slice(value).unwrap_or_default();
        EnvelopeIds {
            event_id: match raw.event_id {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(id)) => Uuid::parse_str(id.trim()).ok().map(Some),
                Some(_) => None,
            },
            correlation_id: match raw.correlation_id {
                Some(Value::String(id)) => Some(id),
                _ => None,
            },
        }
    }
}

/// Decode one record value consumed from `topic`.
pub fn decode_record(topic: &str, value: &[u8]) -> Result<InboundEvent, DecodeError> {
    let topic = ConsumedTopic::from_name(topic)
        .ok_or_else(|| DecodeError::UnknownTopic(topic.to_string()))?;
    let text = std::str::from_utf8(value).map_err(|e| DecodeError::InvalidUtf8(e.to_string()))?;
    let event = match topic {
        ConsumedTopic::BatchEssaysRegistered => {
            build(topic, parse(text)?, InboundPayload::BatchRegistered)
        }
        ConsumedTopic::EssaySlotAssigned => {
            build(topic, parse(text)?, InboundPayload::EssaySlotAssigned)
        }
        ConsumedTopic::BatchPhaseOutcome => {
            build(topic, parse(text)?, InboundPayload::PhaseOutcome)
        }
        ConsumedTopic::SpellcheckResults => {
            build(topic, parse(text)?, InboundPayload::SpellcheckResult)
        }
        ConsumedTopic::AssessmentResultPublished => {
            build(topic, parse(text)?, InboundPayload::AssessmentResult)
        }
        ConsumedTopic::BatchPipelineCompleted => {
            build(topic, parse(text)?, InboundPayload::PipelineCompleted)
        }
    };
    validate(&event.payload)?;
    Ok(event)
}

fn build<T>(
    topic: ConsumedTopic,
    env: InboundEnvelope<T>,
    wrap: fn(T) -> InboundPayload,
) -> InboundEvent {
    InboundEvent {
        topic,
        event_id: env.event_id,
        event_type: env.event_type,
        event_timestamp: env.event_timestamp,
        source_service: env.source_service,
        correlation_id: env.correlation_id,
        metadata: env.metadata,
        payload: wrap(env.data),
    }
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<InboundEnvelope<T>, DecodeError> {
    // Valid records (nearly all) are parsed once, without tracking the path; an invalid one is
    // parsed again with `serde_path_to_error`, whose path names the field in the error.
    if let Ok(envelope) = serde_json::from_str(text) {
        return Ok(envelope);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let result: Result<InboundEnvelope<T>, _> = serde_path_to_error::deserialize(&mut de);
    let envelope = result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => schema_error(&path, &inner),
            _ => DecodeError::InvalidJson(inner.to_string()),
        }
    })?;
    de.end()
        .map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
    Ok(envelope)
}

/// serde reports a missing field at its parent; name the field itself.
fn schema_error(path: &str, inner: &serde_json::Error) -> DecodeError {
    let message = strip_position(&inner.to_string());
    let field = match message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        Some(name) if path == "." || path.is_empty() => name.to_string(),
        Some(name) => format!("{path}.{name}"),
        None if path == "." => String::new(),
        None => path.to_string(),
    };
    DecodeError::Schema { field, message }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_string(),
        None => message.to_string(),
    }
}

fn require_id(field: &str, value: &str) -> Result<(), DecodeError> {
    if value.trim().is_empty() {
        return Err(DecodeError::constraint(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(DecodeError::constraint(
            field,
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    Ok(())
}

fn require_unit_interval(field: &str, value: f64) -> Result<(), DecodeError> {
    if !(0.0..=1.0).contains(&value) {
        return Err(DecodeError::constraint(
            field,
            format!("{value} is outside 0.0..=1.0"),
        ));
    }
    Ok(())
}

/// `^([A-F][+-]?|U)$`
pub fn is_valid_letter_grade(grade: &str) -> bool {
    matches!(
        grade.as_bytes(),
        [b'U'] | [b'A'..=b'F'] | [b'A'..=b'F', b'+' | b'-']
    )
}

fn validate_storage_refs(field: &str, refs: &StorageReferenceMetadata) -> Result<(), DecodeError> {
    for (key, value) in &refs.references {
        let entry_field = format!("{field}.references.{key}");
        if ContentType::parse(key).is_none() {
            return Err(DecodeError::Schema {
                field: entry_field,
                message: format!("unknown ContentType `{key}`"),
            });
        }
        let Some(object) = value.as_object() else {
            return Err(DecodeError::Schema {
                field: entry_field,
                message: "expected an object".into(),
            });
        };
        if let Some((name, _)) = object.iter().find(|(_, v)| !v.is_string()) {
            return Err(DecodeError::Schema {
                field: format!("{entry_field}.{name}"),
                message: "expected a string".into(),
            });
        }
    }
    Ok(())
}

/// Constraints of the pydantic models that serde's types do not carry, plus RAS's own
/// requirements (non-empty identifiers, ras-behaviour §3.4).
pub fn validate(payload: &InboundPayload) -> Result<(), DecodeError> {
    match payload {
        InboundPayload::BatchRegistered(e) => {
            require_id("data.entity_id", &e.entity_id)?;
            require_id("data.user_id", &e.user_id)?;
            if e.expected_essay_count < 0 {
                return Err(DecodeError::constraint(
                    "data.expected_essay_count",
                    "must not be negative",
                ));
            }
            for (i, id) in e.essay_ids.iter().enumerate() {
                require_id(&format!("data.essay_ids[{i}]"), id)?;
            }
            if let Some(refs) = &e.student_prompt_ref {
                validate_storage_refs("data.student_prompt_ref", refs)?;
            }
        }
        InboundPayload::EssaySlotAssigned(e) => {
            require_id("data.batch_id", &e.batch_id)?;
            require_id("data.essay_id", &e.essay_id)?;
        }
        InboundPayload::PhaseOutcome(e) => {
            require_id("data.batch_id", &e.batch_id)?;
            for (i, essay) in e.processed_essays.iter().enumerate() {
                require_id(
                    &format!("data.processed_essays[{i}].essay_id"),
                    &essay.essay_id,
                )?;
            }
            for (i, id) in e.failed_essay_ids.iter().enumerate() {
                require_id(&format!("data.failed_essay_ids[{i}]"), id)?;
            }
        }
        InboundPayload::SpellcheckResult(e) => {
            require_id("data.entity_id", e.entity_id.as_deref().unwrap_or(""))?;
            require_id("data.batch_id", &e.batch_id)?;
        }
        InboundPayload::AssessmentResult(e) => {
            require_id("data.batch_id", &e.batch_id)?;
            require_id("data.cj_assessment_job_id", &e.cj_assessment_job_id)?;
            if let Some(assignment) = &e.assignment_id {
                if assignment.chars().count() > 100 {
                    return Err(DecodeError::constraint(
                        "data.assignment_id",
                        "longer than 100 characters",
                    ));
                }
            }
            for (i, r) in e.essay_results.iter().enumerate() {
                let at = |name: &str| format!("data.essay_results[{i}].{name}");
                require_id(&at("essay_id"), &r.essay_id)?;
                require_unit_interval(&at("normalized_score"), r.normalized_score)?;
                require_unit_interval(&at("confidence_score"), r.confidence_score)?;
                if !is_valid_letter_grade(&r.letter_grade) {
                    return Err(DecodeError::constraint(
                        at("letter_grade"),
                        format!("`{}` does not match ^([A-F][+-]?|U)$", r.letter_grade),
                    ));
                }
                if r.rank <= 0 {
                    return Err(DecodeError::constraint(
                        at("rank"),
                        format!("{} is not greater than 0", r.rank),
                    ));
                }
            }
        }
        InboundPayload::PipelineCompleted(e) => {
            require_id("data.batch_id", &e.batch_id)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_grade_pattern() {
        for ok in ["A", "A+", "A-", "F", "F+", "U", "C-"] {
            assert!(is_valid_letter_grade(ok), "{ok}");
        }
        for bad in ["", "G", "U+", "a", "A++", "AB", "9", " A"] {
            assert!(!is_valid_letter_grade(bad), "{bad}");
        }
    }

    #[test]
    fn envelope_ids_are_read_leniently() {
        let ids = EnvelopeIds::read(
            br#"{"event_id": " AAAAAAAA-0000-4000-8000-000000000001", "correlation_id": "c-1",
            "data": {"batch_id": 7}}"#,
        );
        assert_eq!(
            ids.event_id,
            Some(Some(Uuid::from_u128(
                0xaaaaaaaa_0000_4000_8000_000000000001
            )))
        );
        assert_eq!(ids.correlation_id.as_deref(), Some("c-1"));
        for no_id in [&br#"{"event_id": null}"#[..], b"{}", b"\xff not json"] {
            assert_eq!(EnvelopeIds::read(no_id).event_id, Some(None));
        }
        for unreadable in [&br#"{"event_id": 42}"#[..], br#"{"event_id": "x"}"#] {
            assert_eq!(EnvelopeIds::read(unreadable).event_id, None);
        }
        assert_eq!(
            EnvelopeIds::read(br#"{"correlation_id": 1}"#).correlation_id,
            None
        );
    }

    #[test]
    fn invalid_utf8_and_json_are_classified() {
        let err = decode_record("huleedu.batch.essays.registered.v1", &[0xff, 0xfe]).unwrap_err();
        assert_eq!(err.kind(), "invalid_utf8");
        let err =
            decode_record("huleedu.batch.essays.registered.v1", b"invalid json {{{").unwrap_err();
        assert_eq!(err.kind(), "invalid_json");
        let err = decode_record("huleedu.unknown.topic.v1", b"{}").unwrap_err();
        assert_eq!(
            err,
            DecodeError::UnknownTopic("huleedu.unknown.topic.v1".into())
        );
    }
}
