//! HuleEdu enums as they appear on the wire (`common_core.status_enums`, `domain_enums`,
//! `websocket_enums`, `pipeline_models`). Unknown values are rejected, as pydantic does.
//!
//! With the feature `openapi`, the enums the query API documents derive utoipa's `ToSchema`
//! (a string enum of their wire values); the descriptions are the API document's.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `$wire` is a `tt`, not a `literal`: a `literal` fragment reaches derive macros wrapped in an
/// invisible group, which utoipa's `ToSchema` (feature `openapi`) does not read as the
/// variant's `serde(rename)`, documenting the Rust names instead of the wire values.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Batch lifecycle (`common_core.status_enums.BatchStatus`, 12 values).
    #[cfg_attr(
        feature = "openapi",
        derive(utoipa::ToSchema),
        schema(description = "Internal `BatchStatus` values (the list route's `status` filter).")
    )]
    BatchStatus {
        AwaitingContentValidation => "awaiting_content_validation",
        ContentIngestionFailed => "content_ingestion_failed",
        AwaitingPipelineConfiguration => "awaiting_pipeline_configuration",
        ReadyForPipelineExecution => "ready_for_pipeline_execution",
        ProcessingPipelines => "processing_pipelines",
        AwaitingStudentValidation => "awaiting_student_validation",
        StudentValidationCompleted => "student_validation_completed",
        ValidationTimeoutProcessed => "validation_timeout_processed",
        CompletedSuccessfully => "completed_successfully",
        CompletedWithFailures => "completed_with_failures",
        FailedCritically => "failed_critically",
        Cancelled => "cancelled",
    }
);

impl BatchStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            BatchStatus::CompletedSuccessfully
                | BatchStatus::CompletedWithFailures
                | BatchStatus::FailedCritically
                | BatchStatus::Cancelled
                | BatchStatus::ContentIngestionFailed
        )
    }

    /// The status reported to API clients (reference §8.4).
    pub fn client(&self) -> BatchClientStatus {
        match self {
            BatchStatus::AwaitingContentValidation | BatchStatus::AwaitingPipelineConfiguration => {
                BatchClientStatus::PendingContent
            }
            BatchStatus::ReadyForPipelineExecution => BatchClientStatus::Ready,
            BatchStatus::ProcessingPipelines
            | BatchStatus::AwaitingStudentValidation
            | BatchStatus::ValidationTimeoutProcessed
            | BatchStatus::StudentValidationCompleted => BatchClientStatus::Processing,
            BatchStatus::CompletedSuccessfully => BatchClientStatus::CompletedSuccessfully,
            BatchStatus::CompletedWithFailures => BatchClientStatus::CompletedWithFailures,
            BatchStatus::ContentIngestionFailed | BatchStatus::FailedCritically => {
                BatchClientStatus::Failed
            }
            BatchStatus::Cancelled => BatchClientStatus::Cancelled,
        }
    }

    /// [`BatchStatus::client`] as its wire text.
    pub fn client_status(&self) -> &'static str {
        self.client().as_str()
    }
}

wire_enum!(
    /// `BatchClientStatus`: the coarse status API clients see (reference §8.4).
    #[cfg_attr(
        feature = "openapi",
        derive(utoipa::ToSchema),
        schema(description = "`BatchClientStatus`: what `overall_status` reports.")
    )]
    BatchClientStatus {
        PendingContent => "pending_content",
        Ready => "ready",
        Processing => "processing",
        CompletedSuccessfully => "completed_successfully",
        CompletedWithFailures => "completed_with_failures",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

wire_enum!(
    /// Fine-grained essay status (`common_core.status_enums.EssayStatus`).
    EssayStatus {
        Uploaded => "uploaded",
        TextExtracted => "text_extracted",
        ContentIngesting => "content_ingester",
        ContentIngestionFailed => "content_ingestion_failed",
        ReadyForProcessing => "ready_for_processing",
        AwaitingSpellcheck => "awaiting_spellcheck",
        SpellcheckingInProgress => "spellchecking_in_progress",
        SpellcheckedSuccess => "spellchecked_success",
        SpellcheckFailed => "spellcheck_failed",
        AwaitingNlp => "awaiting_nlp",
        NlpInProgress => "nlp_processing_in_progress",
        NlpSuccess => "nlp_success",
        NlpFailed => "nlp_failed",
        AwaitingAiFeedback => "awaiting_ai_feedback",
        AiFeedbackInProgress => "ai_feedback_processing_in_progress",
        AiFeedbackSuccess => "ai_feedback_success",
        AiFeedbackFailed => "ai_feedback_failed",
        AwaitingEditorRevision => "awaiting_editor_revision",
        EditorRevisionInProgress => "editor_revision_processing_in_progress",
        EditorRevisionSuccess => "editor_revision_success",
        EditorRevisionFailed => "editor_revision_failed",
        AwaitingGrammarCheck => "awaiting_grammar_check",
        GrammarCheckInProgress => "grammar_check_processing_in_progress",
        GrammarCheckSuccess => "grammar_check_success",
        GrammarCheckFailed => "grammar_check_failed",
        AwaitingCjAssessment => "awaiting_cj_assessment",
        CjAssessmentInProgress => "cj_assessment_processing_in_progress",
        CjAssessmentSuccess => "cj_assessment_success",
        CjAssessmentFailed => "cj_assessment_failed",
        AllProcessingCompleted => "all_processing_completed",
        EssayCriticalFailure => "essay_critical_failure",
    }
);

wire_enum!(
    /// `ProcessingStage`: per-essay phase status as stored and served.
    #[cfg_attr(
        feature = "openapi",
        derive(utoipa::ToSchema),
        schema(description = "Per-essay phase status.")
    )]
    ProcessingStage {
        Pending => "pending",
        Initialized => "initialized",
        Processing => "processing",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl ProcessingStage {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ProcessingStage::Completed | ProcessingStage::Failed | ProcessingStage::Cancelled
        )
    }
}

wire_enum!(
    /// Pipeline phases, in the order HuleEdu pipelines run them.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    PhaseName {
        Spellcheck => "spellcheck",
        AiFeedback => "ai_feedback",
        CjAssessment => "cj_assessment",
        Nlp => "nlp",
        StudentMatching => "student_matching",
    }
);

wire_enum!(
    CourseCode {
        Eng5 => "ENG5",
        Eng6 => "ENG6",
        Eng7 => "ENG7",
        Sv1 => "SV1",
        Sv2 => "SV2",
        Sv3 => "SV3",
    }
);

wire_enum!(
    /// Keys of `StorageReferenceMetadata.references`.
    ContentType {
        OriginalEssay => "original_essay",
        CorrectedText => "corrected_text",
        ProcessingLog => "processing_log",
        NlpMetricsJson => "nlp_metrics_json",
        StudentFacingAiFeedbackText => "student_facing_ai_feedback_text",
        AiEditorRevisionText => "ai_editor_revision_text",
        AiDetailedAnalysisJson => "ai_detailed_analysis_json",
        GrammarAnalysisJson => "grammar_analysis_json",
        CjResultsJson => "cj_results_json",
        RawUploadBlob => "raw_upload_blob",
        ExtractedPlaintext => "extracted_plaintext",
        StudentPromptText => "student_prompt_text",
    }
);

wire_enum!(
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    ConfidenceLabel {
        High => "HIGH",
        Mid => "MID",
        Low => "LOW",
    }
);

wire_enum!(
    WebSocketEventCategory {
        BatchProgress => "batch_progress",
        ProcessingResults => "processing_results",
        FileOperations => "file_operations",
        ClassManagement => "class_management",
        StudentWorkflow => "student_workflow",
        SystemAlerts => "system_alerts",
    }
);

wire_enum!(
    NotificationPriority {
        Critical => "critical",
        Immediate => "immediate",
        High => "high",
        Standard => "standard",
        Low => "low",
    }
);

/// `ProcessingUpdate.status`: pydantic's smart union tries `EssayStatus` first, then `BatchStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, expecting = "an EssayStatus or BatchStatus value")]
pub enum UpdateStatus {
    Essay(EssayStatus),
    Batch(BatchStatus),
}

impl UpdateStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            UpdateStatus::Essay(s) => s.as_str(),
            UpdateStatus::Batch(s) => s.as_str(),
        }
    }

    /// Spellcheck result → per-essay stage (SPEC §3.11): `*_success` and `completed_successfully`
    /// complete, failure statuses fail, everything else (in progress, awaiting) stays pending.
    pub fn spellcheck_stage(&self) -> ProcessingStage {
        let text = self.as_str();
        if text.ends_with("_success")
            || text == "completed_successfully"
            || text == "all_processing_completed"
        {
            ProcessingStage::Completed
        } else if text.ends_with("_failed")
            || text == "failed_critically"
            || text == "essay_critical_failure"
        {
            ProcessingStage::Failed
        } else if text == "cancelled" {
            ProcessingStage::Cancelled
        } else {
            ProcessingStage::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_status_mapping_matches_reference_table() {
        use BatchStatus::*;
        let expected = [
            (AwaitingContentValidation, "pending_content"),
            (AwaitingPipelineConfiguration, "pending_content"),
            (ReadyForPipelineExecution, "ready"),
            (ProcessingPipelines, "processing"),
            (AwaitingStudentValidation, "processing"),
            (ValidationTimeoutProcessed, "processing"),
            (StudentValidationCompleted, "processing"),
            (CompletedSuccessfully, "completed_successfully"),
            (CompletedWithFailures, "completed_with_failures"),
            (ContentIngestionFailed, "failed"),
            (FailedCritically, "failed"),
            (Cancelled, "cancelled"),
        ];
        assert_eq!(expected.len(), BatchStatus::ALL.len());
        for (status, client) in expected {
            assert_eq!(status.client_status(), client, "{status}");
        }
    }

    #[test]
    fn spellcheck_status_mapping_fixes_in_progress_as_failed() {
        let stage = |s: &str| {
            serde_json::from_str::<UpdateStatus>(&format!("\"{s}\""))
                .unwrap()
                .spellcheck_stage()
        };
        assert_eq!(stage("spellchecked_success"), ProcessingStage::Completed);
        assert_eq!(stage("completed_successfully"), ProcessingStage::Completed);
        assert_eq!(stage("spellcheck_failed"), ProcessingStage::Failed);
        assert_eq!(stage("failed_critically"), ProcessingStage::Failed);
        assert_eq!(stage("essay_critical_failure"), ProcessingStage::Failed);
        // The reference marks these failed (§11.2 item 11); they are still in flight.
        assert_eq!(stage("spellchecking_in_progress"), ProcessingStage::Pending);
        assert_eq!(stage("awaiting_spellcheck"), ProcessingStage::Pending);
        assert_eq!(stage("processing_pipelines"), ProcessingStage::Pending);
    }

    #[test]
    fn update_status_prefers_essay_status_and_rejects_unknown() {
        let s: UpdateStatus = serde_json::from_str("\"content_ingestion_failed\"").unwrap();
        assert_eq!(s, UpdateStatus::Essay(EssayStatus::ContentIngestionFailed));
        let s: UpdateStatus = serde_json::from_str("\"cancelled\"").unwrap();
        assert_eq!(s, UpdateStatus::Batch(BatchStatus::Cancelled));
        assert!(serde_json::from_str::<UpdateStatus>("\"nonsense\"").is_err());
    }
}
