//! Kafka topic names (`common_core.event_enums.topic_name`). Routing is by topic only: producers
//! disagree about `event_type` (ras-behaviour §1.4).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConsumedTopic {
    BatchEssaysRegistered,
    EssaySlotAssigned,
    BatchPhaseOutcome,
    SpellcheckResults,
    AssessmentResultPublished,
    BatchPipelineCompleted,
}

impl ConsumedTopic {
    pub const ALL: [ConsumedTopic; 6] = [
        ConsumedTopic::BatchEssaysRegistered,
        ConsumedTopic::EssaySlotAssigned,
        ConsumedTopic::BatchPhaseOutcome,
        ConsumedTopic::SpellcheckResults,
        ConsumedTopic::AssessmentResultPublished,
        ConsumedTopic::BatchPipelineCompleted,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            ConsumedTopic::BatchEssaysRegistered => "huleedu.batch.essays.registered.v1",
            ConsumedTopic::EssaySlotAssigned => "huleedu.els.essay.slot.assigned.v1",
            ConsumedTopic::BatchPhaseOutcome => "huleedu.els.batch.phase.outcome.v1",
            ConsumedTopic::SpellcheckResults => "huleedu.essay.spellcheck.results.v1",
            ConsumedTopic::AssessmentResultPublished => "huleedu.assessment.result.published.v1",
            ConsumedTopic::BatchPipelineCompleted => "huleedu.batch.pipeline.completed.v1",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for ConsumedTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PublishedTopic {
    BatchResultsReady,
    BatchAssessmentCompleted,
    TeacherNotificationRequested,
}

impl PublishedTopic {
    pub const ALL: [PublishedTopic; 3] = [
        PublishedTopic::BatchResultsReady,
        PublishedTopic::BatchAssessmentCompleted,
        PublishedTopic::TeacherNotificationRequested,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            PublishedTopic::BatchResultsReady => "huleedu.ras.batch.results.ready.v1",
            PublishedTopic::BatchAssessmentCompleted => "huleedu.ras.batch.assessment.completed.v1",
            PublishedTopic::TeacherNotificationRequested => {
                "huleedu.notification.teacher.requested.v1"
            }
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Domain events go to the events queue; notifications to the notifications queue.
    pub fn is_notification(&self) -> bool {
        matches!(self, PublishedTopic::TeacherNotificationRequested)
    }
}

impl fmt::Display for PublishedTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
