//! A timeline's words that both the gateway and the client need: the name
//! of a message's kind, the conversions between a payload and a timeline's
//! facts, and what a timeline says of a step whose content its reader may
//! not see, decided here once: the gateway writes it as the entry's `summary` (without
//! `facts`), and a client recognises it to show the step's kind in its
//! reader's language instead (an entry stored before `facts` existed keeps a
//! fuller sentence, which the client shows as it is).

use crate::v1::{envelope_body, timeline_facts};

/// The line of a message whose content the reader may not see: only its
/// kind (`follow_up_report` reads `follow-up report`).
pub fn unseen_line(kind: &str) -> String {
    match kind {
        "case_summary" => "case summary shared".into(),
        "reception_confirmation" => "reception confirmed".into(),
        "follow_up_report" => "follow-up report".into(),
        other => other.replace('_', " "),
    }
}

/// The name of a payload's kind, as timelines, message logs and metrics name
/// it (`arrival_proposal`): the oneof field's name.
pub fn kind_name(payload: &envelope_body::Payload) -> &'static str {
    use envelope_body::Payload as P;
    match payload {
        P::AdvanceNotice(_) => "advance_notice",
        P::CaseSummary(_) => "case_summary",
        P::ArrivalProposal(_) => "arrival_proposal",
        P::ArrivalResponse(_) => "arrival_response",
        P::HandoffAck(_) => "handoff_ack",
        P::ReceptionConfirmation(_) => "reception_confirmation",
        P::FollowUpReport(_) => "follow_up_report",
        P::CaseWithdrawal(_) => "case_withdrawal",
    }
}

/// A message's payload as a timeline's facts hold it (the same messages, cut
/// down by whoever builds the facts).
impl From<envelope_body::Payload> for timeline_facts::Payload {
    fn from(payload: envelope_body::Payload) -> Self {
        use envelope_body::Payload as P;
        match payload {
            P::AdvanceNotice(p) => Self::AdvanceNotice(p),
            P::CaseSummary(p) => Self::CaseSummary(p),
            P::ArrivalProposal(p) => Self::ArrivalProposal(p),
            P::ArrivalResponse(p) => Self::ArrivalResponse(p),
            P::HandoffAck(p) => Self::HandoffAck(p),
            P::ReceptionConfirmation(p) => Self::ReceptionConfirmation(p),
            P::FollowUpReport(p) => Self::FollowUpReport(p),
            P::CaseWithdrawal(p) => Self::CaseWithdrawal(p),
        }
    }
}

/// A timeline's facts as a payload, to be judged by the same rules as a message.
impl From<timeline_facts::Payload> for envelope_body::Payload {
    fn from(fact: timeline_facts::Payload) -> Self {
        use timeline_facts::Payload as F;
        match fact {
            F::AdvanceNotice(p) => Self::AdvanceNotice(p),
            F::CaseSummary(p) => Self::CaseSummary(p),
            F::ArrivalProposal(p) => Self::ArrivalProposal(p),
            F::ArrivalResponse(p) => Self::ArrivalResponse(p),
            F::HandoffAck(p) => Self::HandoffAck(p),
            F::ReceptionConfirmation(p) => Self::ReceptionConfirmation(p),
            F::FollowUpReport(p) => Self::FollowUpReport(p),
            F::CaseWithdrawal(p) => Self::CaseWithdrawal(p),
        }
    }
}
