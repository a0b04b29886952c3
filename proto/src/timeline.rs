//! What a case timeline says of a step whose content its reader may not see,
//! decided here once: the gateway writes it as the entry's `summary` (without
//! `facts`), and a client recognises it to show the step's kind in its
//! reader's language instead (an entry stored before `facts` existed keeps a
//! fuller sentence, which the client shows as it is).

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
