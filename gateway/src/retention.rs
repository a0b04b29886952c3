//! Retention: the personal data of a closed case is purged after a configured
//! period, while what proves what happened stays.
//!
//! A case is closed when it is RECEIVED or FOLLOW_UP (the period,
//! `storage.retention_received_days`, counts from the reception confirmation)
//! or WITHDRAWN (`storage.retention_withdrawn_days`, from the withdrawal).
//! Once its period has passed, every message of the case in the inbox that
//! has itself been kept at least that long loses its envelope bytes (the
//! record stays, marked with `purged_at_micros`); a follow-up report that
//! arrives late therefore gets its own full period. The `seen` record
//! (SHA-256 of the body and the receipt given), the sender's `sent` record
//! (the peer's receipt) and the case record with its timeline are kept.
//!
//! A message of a family group (a proposal, a handoff) is listed in every
//! member's timeline; it is purged only when every member listing it is due.
//! A message the case rules refused on arrival is kept as evidence and
//! purged `retention_withdrawn_days` after it arrived. On the sending side,
//! the envelope of a message the peer rejected, kept so that an operator can
//! requeue it, goes `retention_withdrawn_days` after the rejection if no one
//! has requeued it; the rejection and the message's history stay.
//!
//! Each removal appends an `envelope-purged` entry to the audit log in the
//! transaction that removes the envelope, naming the message, its case, the
//! peer and the rule, so that data removed under these rules can be told
//! from data that went missing.
//!
//! The outbox holds a message only until the peer's receipt (delivery
//! removes it), so an outbox entry of a closed case is one still waiting for
//! an unreachable peer: it is kept, so that the peer still learns of the
//! withdrawal or reception, and reported as `still queued`.
//!
//! Messages are found through what is already written in the same
//! transaction as each inbox entry: the case timeline lists every message id
//! with its sender, and `seen` maps (sender, message id) to the inbox cursor.
//! A separate index would duplicate them; scanning the inbox would mean
//! opening every envelope to learn its case.
//!
//! sled is log-structured: a purged envelope's old bytes stay in its files
//! until sled reuses that space. With `storage.keys` set they are ciphertext;
//! retiring the key they were sealed under, once `retorno-gateway rekey`
//! ([`Store::rekey`]) has sealed what is kept under a newer one, makes them
//! unreadable for good.

use std::{collections::HashMap, fmt, path::PathBuf, sync::Arc, time::Duration};

use jiff::{SignedDuration, Timestamp};
use retorno_proto::v1::{CaseState, CaseView, DeliveryState, TimelineEntry};
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    case::{self, Kind},
    config::{Config, Storage},
    country::Country,
    store::{Store, StoreError},
};

/// The retention rules, from `[storage]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Kept after a reception confirmation.
    pub after_reception: SignedDuration,
    /// Kept after a withdrawal, and after a refused message's arrival.
    pub after_withdrawal: SignedDuration,
    /// Time between two purges of a running gateway.
    pub check_interval: Duration,
}

impl From<&Storage> for Policy {
    fn from(storage: &Storage) -> Policy {
        let days = |days: u32| SignedDuration::from_hours(24 * i64::from(days));
        Policy {
            after_reception: days(storage.retention_received_days),
            after_withdrawal: days(storage.retention_withdrawn_days),
            check_interval: Duration::from_secs(storage.retention_check_interval_s),
        }
    }
}

impl Policy {
    /// The time (microseconds since the epoch) before which what is kept
    /// for the withdrawal period is due at `now`: a refused message's
    /// arrival, a rejection. `None` before the calendar allows it.
    fn withdrawal_passed(&self, now: Timestamp) -> Option<i64> {
        now.checked_sub(self.after_withdrawal)
            .ok()
            .map(|before| before.as_microsecond())
    }
}

/// Whether a purge changes anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Remove the personal data that is due.
    Purge,
    /// Only report what is due (`retorno-gateway purge --dry-run`).
    DryRun,
}

/// What a purge did to one case. Holds no personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasePurge {
    /// The case id.
    pub case_id: String,
    /// Its (closed) state.
    pub state: CaseState,
    /// When it closed: the reception or withdrawal message's time.
    pub closed_at: Timestamp,
    /// Inbox entries whose envelope was (or, in a dry run, would be) removed.
    pub purged: usize,
    /// Messages of the case still waiting in the outbox for the peer, kept.
    pub queued: usize,
}

/// What one purge did. Holds case ids and counts only, never personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeReport {
    /// Whether anything was changed.
    pub mode: Mode,
    /// The cases with messages purged or still queued, in case-id order.
    pub cases: Vec<CasePurge>,
    /// Messages refused on arrival whose envelope was removed.
    pub refused: usize,
    /// Messages the peer rejected whose envelope, kept for a requeue, was removed.
    pub rejected: usize,
}

impl PurgeReport {
    /// Envelopes removed (or due, in a dry run) in all.
    pub fn purged(&self) -> usize {
        self.cases.iter().map(|c| c.purged).sum::<usize>() + self.refused + self.rejected
    }

    /// Logs the outcome of a periodic purge: one line per case, case ids only.
    pub fn log(&self) {
        for case in &self.cases {
            tracing::info!(case_id = %case.case_id, state = case::state_name(case.state), purged = case.purged, still_queued = case.queued, "retention: personal data of a closed case purged");
        }
        if self.purged() > 0 {
            tracing::info!(
                cases = self.cases.len(),
                messages = self.purged(),
                refused = self.refused,
                rejected = self.rejected,
                "retention: purge done"
            );
        }
    }
}

impl fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.mode {
            Mode::Purge => "purged",
            Mode::DryRun => "would purge",
        };
        writeln!(
            f,
            "{verb} the envelopes of {} message(s) of {} closed case(s), {} refused message(s) and {} rejected message(s) kept for a requeue",
            self.purged() - self.refused - self.rejected,
            self.cases.iter().filter(|c| c.purged > 0).count(),
            self.refused,
            self.rejected
        )?;
        for case in &self.cases {
            write!(
                f,
                "  {}  {}  closed {}  {} message(s)",
                case.case_id,
                case::state_name(case.state),
                case.closed_at.strftime("%Y-%m-%d"),
                case.purged
            )?;
            if case.queued > 0 {
                write!(
                    f,
                    "; {} still queued for the peer, kept until delivered",
                    case.queued
                )?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Why `retorno-gateway purge` failed. The cause is the error's source.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The database could not be opened, most often because the gateway is running.
    #[error(
        "data_dir {}: cannot open the database: {source}{}",
        dir.display(),
        if source.held_by_a_running_gateway() {
            " (a running gateway purges on its own every storage.retention_check_interval_s: stop it to purge by hand)"
        } else {
            ""
        }
    )]
    Open {
        /// The data folder.
        dir: PathBuf,
        /// What failed.
        source: StoreError,
    },
    /// The purge failed part way; what it did not finish is unchanged.
    #[error("data_dir {}: the purge failed", dir.display())]
    Purge {
        /// The data folder.
        dir: PathBuf,
        /// What failed.
        source: StoreError,
    },
}

/// When a case closed and how long its personal data is kept after that;
/// `None` while it is open.
fn closing(case: &CaseView, policy: &Policy) -> Option<(Timestamp, SignedDuration, &'static str)> {
    let (kind, period, setting) = match case.state() {
        CaseState::Received | CaseState::FollowUp => (
            Kind::Reception,
            policy.after_reception,
            "storage.retention_received_days",
        ),
        CaseState::Withdrawn => (
            Kind::Withdrawal,
            policy.after_withdrawal,
            "storage.retention_withdrawn_days",
        ),
        _ => return None,
    };
    let entry = case
        .timeline
        .iter()
        .rev()
        .find(|e| e.kind == kind.name() && e.refused.is_empty())?;
    Some((
        crate::clock::from_wire(entry.at.as_ref()?)?,
        period,
        setting,
    ))
}

/// A closed case whose period has passed, and the latest arrival a message
/// of it may have to be purged now.
struct Due {
    closed_at: Timestamp,
    kept_since_before: Timestamp,
    /// The rule, for the audit entry of each purge.
    why: String,
}

fn due(case: &CaseView, policy: &Policy, now: Timestamp) -> Option<Due> {
    let (closed_at, period, setting) = closing(case, policy)?;
    let kept_since_before = now.checked_sub(period).ok()?;
    (closed_at <= kept_since_before).then(|| Due {
        closed_at,
        kept_since_before,
        why: format!(
            "retention: the case closed as {} at {closed_at}, and {setting} passed",
            case::state_name(case.state())
        ),
    })
}

/// The rule for a message the case rules refused on arrival.
const REFUSED_ON_ARRIVAL: &str =
    "retention: refused on arrival by the case rules, and storage.retention_withdrawn_days passed";

/// The rule for a rejected message's envelope kept for a requeue.
const REJECTED_NOT_REQUEUED: &str = "retention: rejected by the peer and not requeued, and storage.retention_withdrawn_days passed since the rejection";

/// Which messages shared by several cases of a family group may go: only
/// those every listing case is due for.
fn shared_messages(
    cases: impl Iterator<Item = Result<CaseView, StoreError>>,
    policy: &Policy,
    now: Timestamp,
) -> Result<HashMap<String, bool>, StoreError> {
    let mut may_go: HashMap<String, bool> = HashMap::new();
    for case in cases {
        let case = case?;
        if case.family_group_id.is_empty() {
            continue;
        }
        let is_due = due(&case, policy, now).is_some();
        for entry in &case.timeline {
            *may_go.entry(entry.message_id.clone()).or_insert(true) &= is_due;
        }
    }
    Ok(may_go)
}

/// Purges (or, in a dry run, counts) the personal data that is due at `now`.
/// `now` is a parameter so that tests need not wait a year. Flushes before
/// returning.
pub async fn purge(
    store: &Store,
    policy: &Policy,
    now: Timestamp,
    mode: Mode,
) -> Result<PurgeReport, StoreError> {
    flushed(store, purge_unflushed(store, policy, now, mode)?).await
}

/// `report` once what its purge changed is durable.
async fn flushed(store: &Store, report: PurgeReport) -> Result<PurgeReport, StoreError> {
    if report.mode == Mode::Purge && report.purged() > 0 {
        store.commit().await?;
    }
    Ok(report)
}

/// [`purge`] but for the flush; blocking (it reads every case), so a running
/// gateway calls it on a blocking thread. Cases are read one at a time, in
/// two passes (family groups first), so that memory does not grow with
/// their number.
fn purge_unflushed(
    store: &Store,
    policy: &Policy,
    now: Timestamp,
    mode: Mode,
) -> Result<PurgeReport, StoreError> {
    let shared = shared_messages(store.cases(), policy, now)?;
    let mut report = PurgeReport {
        mode,
        cases: Vec::new(),
        refused: 0,
        rejected: 0,
    };
    for case in store.cases() {
        let case = &case?;
        let Some(due) = due(case, policy, now) else {
            continue;
        };
        let mut done = CasePurge {
            case_id: case.case_id.clone(),
            state: case.state(),
            closed_at: due.closed_at,
            purged: 0,
            queued: 0,
        };
        for entry in &case.timeline {
            if shared.get(&entry.message_id) == Some(&false) {
                continue;
            }
            match purge_message(store, entry, &due, now, mode)? {
                Outcome::Purged => done.purged += 1,
                Outcome::Queued => done.queued += 1,
                Outcome::Nothing => {}
            }
        }
        if done.purged > 0 || done.queued > 0 {
            report.cases.push(done);
        }
    }
    report.refused = purge_refused(store, policy, now, mode)?;
    report.rejected = purge_rejected(store, policy, now, mode)?;
    Ok(report)
}

enum Outcome {
    Purged,
    Queued,
    Nothing,
}

/// Purges one message of a due case if this gateway received it and has
/// kept it long enough; reports it if it is still in the outbox.
fn purge_message(
    store: &Store,
    entry: &TimelineEntry,
    due: &Due,
    now: Timestamp,
    mode: Mode,
) -> Result<Outcome, StoreError> {
    let Ok(id) = Uuid::try_parse(&entry.message_id) else {
        return Ok(Outcome::Nothing);
    };
    let sender = entry
        .sender
        .as_ref()
        .and_then(|s| s.country.parse::<Country>().ok());
    if let Some(sender) = sender
        && let Some(seen) = store.seen(sender, id)?
    {
        let cursor = seen.cursor;
        let Some(stored) = store.inbox_entry(cursor)? else {
            return Ok(Outcome::Nothing);
        };
        if !stored.holds_envelope
            || stored.received_at_micros > due.kept_since_before.as_microsecond()
        {
            return Ok(Outcome::Nothing);
        }
        if mode == Mode::Purge
            && !store.purge_inbox_entry(cursor, now.as_microsecond(), &due.why)?
        {
            return Ok(Outcome::Nothing);
        }
        return Ok(Outcome::Purged);
    }
    let queued = store
        .sent_status(id)?
        .is_some_and(|sent| sent.state == DeliveryState::Queued as i32);
    Ok(if queued {
        Outcome::Queued
    } else {
        Outcome::Nothing
    })
}

/// Purges messages the case rules refused on arrival, once they have been
/// kept for the withdrawal period; returns how many.
fn purge_refused(
    store: &Store,
    policy: &Policy,
    now: Timestamp,
    mode: Mode,
) -> Result<usize, StoreError> {
    let Some(before) = policy.withdrawal_passed(now) else {
        return Ok(0);
    };
    let (refused, swept) = store.refused_inbox_before(before)?;
    if mode == Mode::DryRun {
        return Ok(refused.len());
    }
    let mut purged = 0;
    for entry in &refused {
        if store.purge_inbox_entry(entry.cursor, now.as_microsecond(), REFUSED_ON_ARRIVAL)? {
            purged += 1;
        }
    }
    if let Some(swept) = swept {
        store.mark_refused_swept(swept)?;
    }
    Ok(purged)
}

/// Removes the envelopes kept for a requeue of messages the peer rejected,
/// once the withdrawal period has passed since the rejection; returns how
/// many. The first purge of a database from before the index of kept
/// envelopes reads every message once and indexes them.
fn purge_rejected(
    store: &Store,
    policy: &Policy,
    now: Timestamp,
    mode: Mode,
) -> Result<usize, StoreError> {
    let Some(before) = policy.withdrawal_passed(now) else {
        return Ok(0);
    };
    let (held, read_whole) = store.held_envelopes()?;
    let (due, kept): (Vec<_>, Vec<_>) = held
        .into_iter()
        .partition(|envelope| envelope.rejected_at_micros < before);
    if mode == Mode::DryRun {
        return Ok(due.len());
    }
    let mut purged = 0;
    for envelope in &due {
        if store.purge_held_envelope(
            envelope.id,
            before,
            now.as_microsecond(),
            REJECTED_NOT_REQUEUED,
        )? {
            purged += 1;
        }
    }
    if read_whole {
        store.index_held(&kept)?;
    }
    Ok(purged)
}

/// How long a running gateway waits after start before its first purge, so
/// that reading every case does not compete with delivering a backlog.
const FIRST_PURGE_AFTER: Duration = Duration::from_secs(60);

/// The purge task of a running gateway: a minute after start (or after
/// `check_interval` if that is shorter), then every `check_interval`, until
/// shutdown. Each purge runs on a blocking thread. A failed purge is logged
/// and tried again at the next check; nothing it did not finish was changed.
pub async fn run(
    store: Arc<Store>,
    policy: Policy,
    metrics: crate::metrics::Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut wait = FIRST_PURGE_AFTER.min(policy.check_interval);
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = policy.check_interval;
        let purging = store.clone();
        let purged = tokio::task::spawn_blocking(move || {
            purge_unflushed(&purging, &policy, Timestamp::now(), Mode::Purge)
        })
        .await
        .unwrap_or(Err(StoreError::Closed));
        let done = match purged {
            Ok(report) => flushed(&store, report).await,
            Err(error) => Err(error),
        };
        match done {
            Ok(report) => {
                metrics.purged(report.purged());
                report.log();
            }
            Err(error) => {
                tracing::error!(%error, "retention: purge failed; trying again at the next check")
            }
        }
    }
}

/// `retorno-gateway purge`: one purge of a stopped gateway's database.
pub async fn purge_once(config: &Config, mode: Mode) -> Result<PurgeReport, RetentionError> {
    let dir = config.data_dir.clone();
    let store = crate::storage::open(&dir, &config.storage, config.country).map_err(|source| {
        RetentionError::Open {
            dir: dir.clone(),
            source,
        }
    })?;
    let policy = Policy::from(&config.storage);
    purge(&store, &policy, Timestamp::now(), mode)
        .await
        .map_err(|source| RetentionError::Purge { dir, source })
}

#[cfg(test)]
mod tests {
    use retorno_proto::v1::Sender;

    use super::*;

    const DAY: i64 = 86_400;

    fn entry(id: &str, kind: Kind, day: i64) -> TimelineEntry {
        TimelineEntry {
            message_id: id.into(),
            kind: kind.name().into(),
            sender: Some(Sender {
                country: "MX".into(),
                ..Sender::default()
            }),
            at: Some(pbjson_types::Timestamp {
                seconds: day * DAY,
                nanos: 0,
            }),
            ..TimelineEntry::default()
        }
    }

    fn case(id: &str, state: CaseState, group: &str, timeline: Vec<TimelineEntry>) -> CaseView {
        CaseView {
            case_id: id.into(),
            state: state as i32,
            family_group_id: group.into(),
            timeline,
            ..CaseView::default()
        }
    }

    fn policy() -> Policy {
        Policy::from(&Storage::default())
    }

    fn day(n: i64) -> Timestamp {
        Timestamp::from_second(n * DAY).unwrap()
    }

    #[test]
    fn a_case_is_due_a_period_after_its_reception_or_withdrawal() {
        let withdrawn = case(
            "MX-1",
            CaseState::Withdrawn,
            "",
            vec![
                entry("n", Kind::Notice, 0),
                entry("w", Kind::Withdrawal, 10),
            ],
        );
        assert!(due(&withdrawn, &policy(), day(99)).is_none(), "89 days");
        assert_eq!(
            due(&withdrawn, &policy(), day(100)).unwrap().closed_at,
            day(10)
        );

        let received = case(
            "MX-2",
            CaseState::FollowUp,
            "",
            vec![
                entry("n", Kind::Notice, 0),
                entry("r", Kind::Reception, 20),
                entry("f", Kind::FollowUp, 50),
            ],
        );
        assert!(due(&received, &policy(), day(384)).is_none());
        assert_eq!(
            due(&received, &policy(), day(385)).unwrap().closed_at,
            day(20)
        );

        let open = case(
            "MX-3",
            CaseState::HandedOver,
            "",
            vec![entry("n", Kind::Notice, 0)],
        );
        assert!(due(&open, &policy(), day(10_000)).is_none());

        let mut refused = entry("w", Kind::Withdrawal, 10);
        refused.refused = "not allowed".into();
        let never_closed = case("MX-4", CaseState::Withdrawn, "", vec![refused]);
        assert!(due(&never_closed, &policy(), day(10_000)).is_none());
    }

    #[test]
    fn a_message_a_family_shares_goes_only_when_every_member_is_due() {
        let cases = [
            case(
                "MX-1",
                CaseState::Withdrawn,
                "F1",
                vec![
                    entry("own", Kind::Notice, 0),
                    entry("shared", Kind::Proposal, 5),
                    entry("w1", Kind::Withdrawal, 10),
                ],
            ),
            case(
                "MX-2",
                CaseState::ArrivalProposed,
                "F1",
                vec![
                    entry("sibling", Kind::Notice, 0),
                    entry("shared", Kind::Proposal, 5),
                ],
            ),
        ];
        let may_go = shared_messages(cases.into_iter().map(Ok), &policy(), day(200)).unwrap();
        assert_eq!(may_go.get("shared"), Some(&false));
        assert_eq!(may_go.get("own"), Some(&true));
        assert_eq!(may_go.get("sibling"), Some(&false));
    }
}
