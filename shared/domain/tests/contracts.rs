//! Wire-contract tests against the real HuleEdu messages.

mod common;

use common::*;
use ras_domain::contracts::*;
use serde_json::Value;

#[test]
fn every_consumed_fixture_decodes_by_topic() {
    for topic in CONSUMED {
        let bytes = fixture_bytes(&format!("{topic}.json"));
        let meta = fixture_json(&format!("{topic}.meta.json"));
        assert_eq!(meta["kafka_topic"], topic);
        let event = decode_record(topic, &bytes).unwrap_or_else(|e| panic!("{topic}: {e}"));
        assert_eq!(event.topic.name(), topic);
        assert_eq!(event.batch_id(), "5b1f4c2e-8d7a-4e3b-9c10-2f6a1d9e7b01");
        assert!(event.event_id.is_some());
    }
}

#[test]
fn consumed_fixtures_keep_their_details() {
    let reg = decode_record(
        CONSUMED[0],
        &fixture_bytes(&format!("{}.json", CONSUMED[0])),
    )
    .unwrap();
    let InboundPayload::BatchRegistered(reg) = reg.payload else {
        panic!("wrong payload")
    };
    assert_eq!(reg.user_id, "teacher-7f3c9a");
    assert_eq!(reg.essay_ids.len(), 3);
    assert_eq!(reg.course_code, CourseCode::Eng5);
    let prompt = reg.student_prompt_ref.unwrap();
    assert_eq!(
        prompt.references["student_prompt_text"]["storage_id"],
        "prompt-storage-9f2"
    );

    let slot = decode_record(
        CONSUMED[1],
        &fixture_bytes(&format!("{}.json", CONSUMED[1])),
    )
    .unwrap();
    let InboundPayload::EssaySlotAssigned(slot) = slot.payload else {
        panic!("wrong payload")
    };
    assert_eq!(slot.original_file_name, "Åsa Öberg – uppsats.docx");

    let cj = decode_record(
        CONSUMED[4],
        &fixture_bytes(&format!("{}.json", CONSUMED[4])),
    )
    .unwrap();
    assert_eq!(cj.event_type, "assessment.result.published");
    let InboundPayload::AssessmentResult(cj) = cj.payload else {
        panic!("wrong payload")
    };
    assert_eq!(cj.essay_results.len(), 3);
    assert!(cj.essay_results[2].is_anchor);
    assert_eq!(cj.assessment_metadata["comparison_count"], 3);

    let done = decode_record(
        CONSUMED[5],
        &fixture_bytes(&format!("{}.json", CONSUMED[5])),
    )
    .unwrap();
    assert_eq!(done.source_service, "batch_orchestrator_service");
    let InboundPayload::PipelineCompleted(done) = done.payload else {
        panic!("wrong payload")
    };
    assert_eq!(done.final_status, BatchStatus::CompletedWithFailures);
}

/// Each published fixture parses into our types and serialises back to the same bytes (Python
/// `json.dumps` style), hence the same JSON value with the same key order.
#[test]
fn every_published_fixture_round_trips_byte_for_byte() {
    fn check<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str) {
        let bytes = fixture_bytes(name);
        let parsed: OutboundEnvelope<T> =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = to_python_json(&parsed).unwrap();
        assert_same_json_with_order(
            std::str::from_utf8(&out).unwrap(),
            std::str::from_utf8(&bytes).unwrap(),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(bytes).unwrap(),
            "{name}"
        );
    }
    check::<BatchResultsReadyV1>("huleedu.ras.batch.results.ready.v1.json");
    check::<BatchAssessmentCompletedV1>("huleedu.ras.batch.assessment.completed.v1.json");
    check::<TeacherNotificationRequestedV1>(
        "huleedu.notification.teacher.requested.v1__batch_results_ready.json",
    );
    check::<TeacherNotificationRequestedV1>(
        "huleedu.notification.teacher.requested.v1__batch_assessment_completed.json",
    );
}

/// The outbox rows in the `.meta.json` files hold the same envelopes pretty-printed: our types
/// reproduce them too (value + key order), `topic` key aside.
#[test]
fn published_outbox_rows_reproduce() {
    for name in [
        "huleedu.ras.batch.results.ready.v1",
        "huleedu.ras.batch.assessment.completed.v1",
        "huleedu.notification.teacher.requested.v1__batch_results_ready",
        "huleedu.notification.teacher.requested.v1__batch_assessment_completed",
    ] {
        let meta = fixture_json(&format!("{name}.meta.json"));
        let mut row = meta["outbox_row"]["event_data"].clone();
        row.as_object_mut().unwrap().remove("topic");
        let text = serde_json::to_string(&row).unwrap();
        let reserialised = if name.contains("notification") {
            serde_json::to_string(
                &serde_json::from_str::<OutboundEnvelope<TeacherNotificationRequestedV1>>(&text)
                    .unwrap(),
            )
        } else if name.contains("results.ready") {
            serde_json::to_string(
                &serde_json::from_str::<OutboundEnvelope<BatchResultsReadyV1>>(&text).unwrap(),
            )
        } else {
            serde_json::to_string(
                &serde_json::from_str::<OutboundEnvelope<BatchAssessmentCompletedV1>>(&text)
                    .unwrap(),
            )
        }
        .unwrap();
        assert_same_json_with_order(&reserialised, &text);
        assert_eq!(
            meta["kafka_key"],
            row["data"]
                .get("teacher_id")
                .unwrap_or(&row["data"]["batch_id"])
                .clone()
        );
    }
}

fn consumed_value(topic: &str) -> Value {
    fixture_json(&format!("{topic}.json"))
}

fn decode_value(topic: &str, value: &Value) -> Result<InboundEvent, DecodeError> {
    decode_record(topic, serde_json::to_string(value).unwrap().as_bytes())
}

/// Lenient like pydantic: unknown keys, missing optional envelope fields, odd UUID and
/// datetime spellings, ints for floats.
#[test]
fn parsing_is_lenient_where_the_reference_is() {
    let topic = "huleedu.essay.spellcheck.results.v1";
    let mut v = consumed_value(topic);
    let env = v.as_object_mut().unwrap();
    env.remove("event_id");
    env.remove("correlation_id");
    env.remove("metadata");
    env.remove("event_timestamp");
    env.insert("unknown_envelope_key".into(), Value::from(1));
    v["data"]["unknown_data_key"] = Value::from("x");
    v["data"]["correction_metrics"]["correction_density"] = Value::from(2);
    v["data"]["timestamp"] = Value::from("2025-11-27T12:02:00+02:00");
    v["data"]["system_metadata"]["timestamp"] = Value::from("2025-11-27T10:02:00");
    let event = decode_value(topic, &v).unwrap();
    assert_eq!(event.event_id, None);
    assert_eq!(event.correlation_id, None);
    let InboundPayload::SpellcheckResult(data) = event.payload else {
        panic!()
    };
    assert_eq!(data.correction_metrics.correction_density, 2.0);
    assert_eq!(data.timestamp, Timestamp::parse("2025-11-27T10:02:00Z"));

    let topic = "huleedu.batch.pipeline.completed.v1";
    let mut v = consumed_value(topic);
    v["correlation_id"] = Value::from("11111111111141118111111111111111");
    v["data"]["correlation_id"] =
        Value::from("11111111-1111-4111-8111-111111111111".to_uppercase());
    let event = decode_value(topic, &v).unwrap();
    assert_eq!(
        event.correlation_id.unwrap().to_string(),
        "11111111-1111-4111-8111-111111111111"
    );
}

/// Removing each required field gives a schema error naming that field.
#[test]
fn missing_required_fields_are_named() {
    let required: &[(&str, &[&str])] =
        &[("event_type", &[]), ("source_service", &[]), ("data", &[])];
    for (field, _) in required {
        let mut v = consumed_value(CONSUMED[0]);
        v.as_object_mut().unwrap().remove(*field);
        let err = decode_value(CONSUMED[0], &v).unwrap_err();
        assert_eq!(err.kind(), "schema_violation", "{field}: {err}");
        assert_eq!(err.field(), Some(*field), "{err}");
    }
    let per_topic: &[(&str, &[&str])] = &[
        (
            CONSUMED[0],
            &[
                "entity_id",
                "expected_essay_count",
                "essay_ids",
                "metadata",
                "course_code",
                "user_id",
            ],
        ),
        (
            CONSUMED[1],
            &[
                "batch_id",
                "essay_id",
                "file_upload_id",
                "text_storage_id",
                "original_file_name",
            ],
        ),
        (
            CONSUMED[2],
            &[
                "batch_id",
                "phase_name",
                "phase_status",
                "processed_essays",
                "failed_essay_ids",
            ],
        ),
        (
            CONSUMED[3],
            &[
                "event_name",
                "status",
                "system_metadata",
                "batch_id",
                "correlation_id",
                "corrections_made",
                "correction_metrics",
                "original_text_storage_id",
                "processing_duration_ms",
            ],
        ),
        (
            CONSUMED[4],
            &[
                "batch_id",
                "cj_assessment_job_id",
                "assessment_method",
                "model_used",
                "model_provider",
                "essay_results",
            ],
        ),
        (
            CONSUMED[5],
            &[
                "batch_id",
                "completed_phases",
                "final_status",
                "processing_duration_seconds",
                "successful_essay_count",
                "failed_essay_count",
                "correlation_id",
                "metadata",
            ],
        ),
    ];
    for (topic, fields) in per_topic {
        for field in *fields {
            let mut v = consumed_value(topic);
            v["data"].as_object_mut().unwrap().remove(*field);
            let err = decode_value(topic, &v).unwrap_err();
            assert_eq!(err.kind(), "schema_violation", "{topic} {field}: {err}");
            assert_eq!(
                err.field(),
                Some(format!("data.{field}").as_str()),
                "{topic}: {err}"
            );
        }
    }
    // Nested required fields.
    let mut v = consumed_value(CONSUMED[4]);
    v["data"]["essay_results"][1]
        .as_object_mut()
        .unwrap()
        .remove("bt_score");
    let err = decode_value(CONSUMED[4], &v).unwrap_err();
    assert_eq!(err.field(), Some("data.essay_results[1].bt_score"));
    let mut v = consumed_value(CONSUMED[3]);
    v["data"]["correction_metrics"]
        .as_object_mut()
        .unwrap()
        .remove("word_count");
    let err = decode_value(CONSUMED[3], &v).unwrap_err();
    assert_eq!(err.field(), Some("data.correction_metrics.word_count"));
    let mut v = consumed_value(CONSUMED[0]);
    v["data"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("entity_type");
    let err = decode_value(CONSUMED[0], &v).unwrap_err();
    assert_eq!(err.field(), Some("data.metadata.entity_type"));
}

fn expect_error(topic: &str, mutate: impl Fn(&mut Value), kind: &str, field: &str) {
    let mut v = consumed_value(topic);
    mutate(&mut v);
    let err = decode_value(topic, &v).unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    assert_eq!(err.field(), Some(field), "{err}");
}

#[test]
fn constraint_violations_are_named() {
    let cj = CONSUMED[4];
    expect_error(
        cj,
        |v| v["data"]["essay_results"][0]["letter_grade"] = "G".into(),
        "constraint_violation",
        "data.essay_results[0].letter_grade",
    );
    expect_error(
        cj,
        |v| v["data"]["essay_results"][1]["letter_grade"] = "U+".into(),
        "constraint_violation",
        "data.essay_results[1].letter_grade",
    );
    expect_error(
        cj,
        |v| v["data"]["essay_results"][0]["normalized_score"] = 1.01.into(),
        "constraint_violation",
        "data.essay_results[0].normalized_score",
    );
    expect_error(
        cj,
        |v| v["data"]["essay_results"][0]["normalized_score"] = (-0.1).into(),
        "constraint_violation",
        "data.essay_results[0].normalized_score",
    );
    expect_error(
        cj,
        |v| v["data"]["essay_results"][2]["confidence_score"] = 2.into(),
        "constraint_violation",
        "data.essay_results[2].confidence_score",
    );
    expect_error(
        cj,
        |v| v["data"]["essay_results"][0]["rank"] = 0.into(),
        "constraint_violation",
        "data.essay_results[0].rank",
    );
    expect_error(
        cj,
        |v| v["data"]["essay_results"][0]["rank"] = (-3).into(),
        "constraint_violation",
        "data.essay_results[0].rank",
    );
    expect_error(
        cj,
        |v| v["data"]["assignment_id"] = "x".repeat(101).into(),
        "constraint_violation",
        "data.assignment_id",
    );
    expect_error(
        CONSUMED[3],
        |v| v["data"]["entity_id"] = "".into(),
        "constraint_violation",
        "data.entity_id",
    );
    expect_error(
        CONSUMED[3],
        |v| v["data"]["batch_id"] = "".into(),
        "constraint_violation",
        "data.batch_id",
    );
    expect_error(
        CONSUMED[1],
        |v| v["data"]["essay_id"] = "e".repeat(300).into(),
        "constraint_violation",
        "data.essay_id",
    );
}

#[test]
fn unknown_enum_values_and_content_types_are_named() {
    expect_error(
        CONSUMED[2],
        |v| v["data"]["phase_name"] = "grammar".into(),
        "schema_violation",
        "data.phase_name",
    );
    expect_error(
        CONSUMED[2],
        |v| v["data"]["phase_status"] = "done".into(),
        "schema_violation",
        "data.phase_status",
    );
    expect_error(
        CONSUMED[0],
        |v| v["data"]["course_code"] = "ENG9".into(),
        "schema_violation",
        "data.course_code",
    );
    expect_error(
        CONSUMED[3],
        |v| v["data"]["status"] = "spellchecked_maybe".into(),
        "schema_violation",
        "data.status",
    );
    expect_error(
        CONSUMED[4],
        |v| v["data"]["essay_results"][0]["confidence_label"] = "VERY_HIGH".into(),
        "schema_violation",
        "data.essay_results[0].confidence_label",
    );
    expect_error(
        CONSUMED[5],
        |v| v["data"]["final_status"] = "finished".into(),
        "schema_violation",
        "data.final_status",
    );
    expect_error(
        CONSUMED[0],
        |v| {
            v["data"]["student_prompt_ref"]["references"]["teacher_notes"] =
                serde_json::json!({"storage_id": "x", "path": ""})
        },
        "schema_violation",
        "data.student_prompt_ref.references.teacher_notes",
    );
}

#[test]
fn wrong_types_and_bad_values_are_named() {
    expect_error(
        CONSUMED[0],
        |v| v["data"]["expected_essay_count"] = "three".into(),
        "schema_violation",
        "data.expected_essay_count",
    );
    expect_error(
        CONSUMED[0],
        |v| v["data"]["essay_ids"] = "e1".into(),
        "schema_violation",
        "data.essay_ids",
    );
    expect_error(
        CONSUMED[5],
        |v| v["data"]["correlation_id"] = "not-a-uuid".into(),
        "schema_violation",
        "data.correlation_id",
    );
    expect_error(
        CONSUMED[3],
        |v| v["data"]["timestamp"] = "yesterday".into(),
        "schema_violation",
        "data.timestamp",
    );
    expect_error(
        CONSUMED[3],
        |v| v["event_id"] = "zzz".into(),
        "schema_violation",
        "event_id",
    );
    expect_error(
        CONSUMED[0],
        |v| v["metadata"] = "x".into(),
        "schema_violation",
        "metadata",
    );
}
