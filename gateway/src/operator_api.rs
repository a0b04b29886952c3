//! The Operator API: the national operations team's view of its gateway,
//! served on the Agency listener to an agency certificate of role
//! `operator` of this country only.
//!
//! It shows where every message stands (ids, case ids, peer, kind, size,
//! times, states, attempts, errors), sent or received, and never what a
//! message says: it reads only the `sent` records, the inbox records'
//! bookkeeping ([`ReceivedMessage`]; an entry stored before it was kept is
//! opened for its header only), the agencies' acknowledged cursors and the
//! couriers' [`Links`], none of which holds a payload; what an operator may
//! read through the Agency API is decided by [`crate::need_to_know`]
//! ([`crate::need_to_know::Audience::Metadata`]).
//! Every call is an audit entry naming the operator.

use std::{collections::BTreeSet, sync::Arc};

use prost::Message as _;
use retorno_proto::v1::{
    self, CertificateStatus, EnvelopeBody, GatewayStatus, GatewayStatusRequest,
    ListMessagesRequest, ListMessagesResponse, MessageDirection, MessageEvent, MessageHistory,
    MessageState, MessageSummary, PeerStatus, RekeyRequest, RekeyResponse, RequeueOutcome,
    RequeueRefusal, RequeueRequest, RequeueResponse, RollbackFinding, SetDrainingRequest,
    SetDrainingResponse, ShowMessageRequest, operator_server::Operator,
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    audit::{self, Record},
    country::Country,
    identity::{Identity, Role},
    links::Links,
    need_to_know::{Reader, Visibility},
    store::{
        Finding, FindingKind, LogState, MessageFilter, NotRequeueable, ReceivedMessage, Requeued,
        SentRecord, Store, StoreError, requeueable, state_of,
    },
    tls::{Credentials, caller},
    validate,
};

/// Messages per page unless the request asks otherwise.
const DEFAULT_PAGE: usize = 50;
/// The largest page.
const MAX_PAGE: usize = 1000;

/// The Operator API of one gateway.
#[derive(Clone)]
pub struct OperatorService {
    /// This gateway's country.
    pub country: Country,
    /// The countries this gateway delivers to.
    pub peers: Arc<BTreeSet<Country>>,
    /// The message log and the outbox.
    pub store: Arc<Store>,
    /// What each courier saw of its peer.
    pub links: Arc<Links>,
    /// The certificates in use, for their expiry.
    pub tls: Credentials,
    /// The gateway's drain switch ([`crate::Gateway::set_draining`]).
    pub drain: watch::Sender<bool>,
}

/// The operator's URN, if the caller is an operator of this country.
fn operator<T>(request: &Request<T>, here: Country) -> Result<String, Status> {
    match caller(request)? {
        identity @ Identity::Agency {
            country,
            role: Role::Operator,
            ..
        } if *country == here => Ok(identity.urn()),
        other => Err(Status::permission_denied(format!(
            "{other} is not an operator of {here}: the Operator API takes a certificate urn:retorno:agency:{here}:operator:NAME"
        ))),
    }
}

fn storage(error: StoreError) -> Status {
    tracing::error!(%error, "storage failed");
    Status::unavailable(format!("{error}; nothing was changed, try again"))
}

fn timestamp(micros: i64) -> Option<pbjson_types::Timestamp> {
    (micros > 0).then(|| crate::clock::wire_micros(micros))
}

fn message_id(field: &str, text: &str) -> Result<Uuid, Status> {
    Uuid::try_parse(text).map_err(|_| {
        Status::invalid_argument(format!("{field}: {text:?} is not a message id (a UUID)"))
    })
}

/// A rejection as a line: its code and its text (which names a field or rule, never a value).
fn rejection_text(encoded: &[u8]) -> String {
    match v1::Rejection::decode(encoded) {
        Ok(rejection) => format!(
            "{}: {}",
            rejection
                .code()
                .as_str_name()
                .trim_start_matches("REJECTION_CODE_"),
            rejection.reason
        ),
        Err(_) => "unreadable rejection".into(),
    }
}

fn message_state(state: LogState) -> MessageState {
    match state {
        LogState::Queued => MessageState::Queued,
        LogState::Delivered => MessageState::Delivered,
        LogState::Rejected => MessageState::Rejected,
        LogState::Refused => MessageState::Refused,
        LogState::Received => MessageState::Received,
    }
}

fn log_state(state: MessageState) -> Option<LogState> {
    match state {
        MessageState::Unspecified => None,
        MessageState::Queued => Some(LogState::Queued),
        MessageState::Delivered => Some(LogState::Delivered),
        MessageState::Rejected => Some(LogState::Rejected),
        MessageState::Refused => Some(LogState::Refused),
        MessageState::Received => Some(LogState::Received),
    }
}

fn refusal_code(not: NotRequeueable) -> RequeueRefusal {
    match not {
        NotRequeueable::Unknown => RequeueRefusal::Unknown,
        NotRequeueable::Queued => RequeueRefusal::Queued,
        NotRequeueable::Delivered => RequeueRefusal::Delivered,
        NotRequeueable::RefusedByCaseRules => RequeueRefusal::RefusedByCaseRules,
        NotRequeueable::EnvelopeGone => RequeueRefusal::EnvelopeGone,
        NotRequeueable::EnvelopePurged => RequeueRefusal::EnvelopePurged,
    }
}

/// One message of the log, as an operator sees it.
pub fn summary(id: Uuid, record: &SentRecord) -> MessageSummary {
    let error = if !record.rejection.is_empty() {
        rejection_text(&record.rejection)
    } else {
        record.peer_refused.clone()
    };
    MessageSummary {
        message_id: id.to_string(),
        case_ids: record.case_ids.clone(),
        peer: record.recipient.clone(),
        kind: record.kind.clone(),
        size_bytes: record.size_bytes,
        accepted_at: timestamp(record.accepted_at_micros),
        state: message_state(state_of(record)) as i32,
        answered_at: timestamp(record.answered_at_micros),
        error,
        requeued: u32::try_from(record.requeued.len()).unwrap_or(u32::MAX),
        direction: MessageDirection::Sent as i32,
        purged_at: timestamp(record.held_purged_at_micros),
        inbox_cursor: 0,
    }
}

/// One received message of the log, as an operator sees it.
pub fn received_summary(message: &ReceivedMessage) -> MessageSummary {
    MessageSummary {
        message_id: message.message_id.clone(),
        case_ids: [&message.case_id]
            .into_iter()
            .filter(|id| !id.is_empty())
            .cloned()
            .collect(),
        peer: message.sender.clone(),
        kind: message.kind.clone(),
        size_bytes: message.size_bytes,
        accepted_at: timestamp(message.received_at_micros),
        state: message_state(message.state()) as i32,
        answered_at: None,
        error: message.refused.clone(),
        requeued: 0,
        direction: MessageDirection::Received as i32,
        purged_at: timestamp(message.purged_at_micros),
        inbox_cursor: message.cursor,
    }
}

/// Why `ops requeue` cannot send a received message.
const RECEIVED_NOT_REQUEUEABLE: &str =
    "this gateway received it from a peer: only a message this gateway sent can be requeued";

fn event(at_micros: i64, event: &str, detail: String) -> MessageEvent {
    MessageEvent {
        at: timestamp(at_micros),
        event: event.to_owned(),
        detail,
    }
}

fn finding(finding: Finding) -> RollbackFinding {
    let kind = match finding.kind() {
        Some(FindingKind::OutboxWentBack) => "outbox_went_back",
        Some(FindingKind::PeerOutboxWentBack) => "peer_outbox_went_back",
        Some(FindingKind::InboxWentBack) => "inbox_went_back",
        Some(FindingKind::PeerInboxWentBack) => "peer_inbox_went_back",
        None => "unknown",
    };
    RollbackFinding {
        description: finding
            .kind()
            .map(|kind| kind.describe(&finding.peer))
            .unwrap_or_default(),
        peer: finding.peer,
        kind: kind.to_owned(),
        count: finding.count,
        acknowledged: finding.acknowledged_at_micros != 0,
    }
}

impl OperatorService {
    /// Records what `operator` did; a read the log cannot take is not answered.
    fn audit(&self, record: Record) -> Result<(), Status> {
        self.store.audit(&[record]).map_err(storage)
    }

    /// `ShowMessage` for a message this gateway did not send: the one it
    /// received from a peer under that id, with the agencies that have
    /// acknowledged past it.
    fn show_received(&self, who: &str, id: Uuid) -> Result<Response<MessageHistory>, Status> {
        let message = self
            .store
            .received_message(self.peers.iter().copied(), id)
            .map_err(storage)?;
        let Some(message) = message else {
            return Err(Status::not_found(format!(
                "{}'s gateway has accepted no message {id}, and received none from its peers",
                self.country
            )));
        };
        self.audit(Record::operator_read(who, "message history").message(id.to_string()))?;
        let acknowledged_past = match message.state() {
            LogState::Received => self.acknowledged_past(&message)?,
            _ => Vec::new(),
        };
        Ok(Response::new(MessageHistory {
            message: Some(received_summary(&message)),
            events: Self::received_history(&message),
            requeueable: false,
            not_requeueable: RECEIVED_NOT_REQUEUEABLE.to_owned(),
            acknowledged_past,
        }))
    }

    /// The agencies whose acknowledged cursor is at or past `message` and
    /// whose inbox shows it ([`crate::agency_api::shown_with`]): a consulate
    /// that acknowledged past a case summary never saw it, and is not named.
    /// Whether a role sees a message depends on its kind and its case, not its
    /// content, so the inbox record's bookkeeping decides: nothing is opened,
    /// and a purged envelope or a retired key changes nothing. A record from
    /// before the bookkeeping whose kind is unknown names every agency past it.
    fn acknowledged_past(&self, message: &ReceivedMessage) -> Result<Vec<String>, Status> {
        let past = self
            .store
            .acknowledgements()
            .map_err(storage)?
            .into_iter()
            .filter(|(_, cursor)| *cursor >= message.cursor)
            .map(|(agency, _)| agency);
        let Some(kind) = crate::case::Kind::named(&message.kind) else {
            return Ok(past.collect());
        };
        let body = EnvelopeBody {
            case_id: message.case_id.clone(),
            payload: Some(kind.empty_payload()),
            ..EnvelopeBody::default()
        };
        let case = self.store.read_case(&message.case_id).map_err(storage)?;
        let mut shown = Vec::new();
        for urn in past {
            let reader = match urn.parse::<Identity>() {
                Ok(Identity::Agency { country, role, .. }) => Reader {
                    role,
                    country: self.country,
                    delegated: (country != self.country).then_some(country),
                },
                _ => continue,
            };
            let visibility = crate::agency_api::shown_with(case.as_ref(), &reader, &body);
            if !matches!(visibility, Visibility::Hidden) {
                shown.push(urn);
            }
        }
        Ok(shown)
    }

    fn peer_status(&self, peer: Country, now: i64) -> Result<PeerStatus, Status> {
        let link = self.links.status(peer);
        let oldest = self.store.oldest_queued(peer).map_err(storage)?;
        let (error_at, error) = link.last_error.unwrap_or_default();
        Ok(PeerStatus {
            country: peer.to_string(),
            connected: link.connected_since_micros.is_some(),
            queued: self.store.outbox_depth(peer) as u64,
            oldest_queued_seconds: oldest.map_or(0, |at| (now - at).max(0) / 1_000_000),
            last_receipt_at: link.last_receipt_micros.and_then(timestamp),
            last_error: error,
            last_error_at: timestamp(error_at),
            connected_since: link.connected_since_micros.and_then(timestamp),
        })
    }

    fn certificates(&self) -> Vec<CertificateStatus> {
        self.tls
            .certificates()
            .into_iter()
            .map(|info| CertificateStatus {
                role: info.role.as_str().to_owned(),
                days_left: info.days_left_now(),
                not_after: timestamp(info.not_after_unix.saturating_mul(1_000_000)),
                subject: info.subject,
            })
            .collect()
    }

    /// What the courier saw of the peer between `from` and `until`: each
    /// connection attempt and interruption while the message waited.
    fn attempts(&self, peer: Option<Country>, from: i64, until: i64) -> Vec<MessageEvent> {
        let Some(peer) = peer else {
            return Vec::new();
        };
        self.links
            .events(peer, from, until)
            .into_iter()
            .map(|e| event(e.at_micros, e.kind.name(), e.detail))
            .collect()
    }

    /// A message's history: accepted, each attempt, each rejection and
    /// requeue, and the peer's final answer.
    fn history(&self, record: &SentRecord) -> Vec<MessageEvent> {
        let peer = record.recipient.parse::<Country>().ok();
        let mut events = vec![event(record.accepted_at_micros, "accepted", String::new())];
        let mut from = record.accepted_at_micros;
        for requeue in &record.requeued {
            events.extend(self.attempts(peer, from, requeue.rejected_at_micros));
            let rejected = rejection_text(&requeue.rejection);
            events.push(event(requeue.rejected_at_micros, "rejected", rejected));
            let by = format!("by {}, new sequence {}", requeue.operator, requeue.sequence);
            events.push(event(requeue.at_micros, "requeued", by));
            from = requeue.at_micros;
        }
        let until = match record.answered_at_micros {
            0 => crate::clock::system_micros(),
            answered => answered,
        };
        events.extend(self.attempts(peer, from, until));
        let answered = record.answered_at_micros;
        match state_of(record) {
            // Received is never a sent record's state.
            LogState::Queued | LogState::Received => {}
            LogState::Delivered => events.push(event(answered, "receipt", String::new())),
            LogState::Refused => {
                events.push(event(
                    answered,
                    "refused_by_peer",
                    record.peer_refused.clone(),
                ));
            }
            LogState::Rejected => {
                events.push(event(
                    answered,
                    "rejected",
                    rejection_text(&record.rejection),
                ));
                if record.held_purged_at_micros != 0 {
                    events.push(event(
                        record.held_purged_at_micros,
                        "envelope_purged",
                        "by retention, storage.retention_withdrawn_days after the rejection".into(),
                    ));
                }
            }
        }
        events
    }

    /// A received message's history: stored, refused by the case rules,
    /// its envelope removed by retention.
    fn received_history(message: &ReceivedMessage) -> Vec<MessageEvent> {
        let at = message.received_at_micros;
        let stored = format!("from {}, inbox cursor {}", message.sender, message.cursor);
        let mut events = vec![event(at, "received", stored)];
        if !message.refused.is_empty() {
            let refused = format!(
                "{}; kept as evidence, not given to agencies",
                message.refused
            );
            events.push(event(at, "refused_by_case_rules", refused));
        }
        if message.purged_at_micros != 0 {
            events.push(event(
                message.purged_at_micros,
                "envelope_purged",
                "by retention".into(),
            ));
        }
        events
    }

    /// The list's filter, and whether it lists received messages.
    fn filter(&self, request: &ListMessagesRequest) -> Result<(MessageFilter, bool), Status> {
        let received = match MessageDirection::try_from(request.direction) {
            Ok(MessageDirection::Unspecified | MessageDirection::Sent) => false,
            Ok(MessageDirection::Received) => true,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "direction: {} is not a message direction (SENT or RECEIVED)",
                    request.direction
                )));
            }
        };
        let peer = match request.peer.as_str() {
            "" => None,
            code => Some(
                validate::country("peer", code)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?,
            ),
        };
        let state = MessageState::try_from(request.state).map_err(|_| {
            Status::invalid_argument(format!("state: {} is not a message state", request.state))
        })?;
        let state = log_state(state);
        if let Some(state) = state
            && !state.applies_to(received)
        {
            let name = message_state(state).as_str_name();
            return Err(Status::invalid_argument(if received {
                format!(
                    "state: {name} is a state of sent messages; a received message is RECEIVED or REFUSED"
                )
            } else {
                format!(
                    "state: {name} is a state of received messages: ask for direction RECEIVED (ops messages --received)"
                )
            }));
        }
        let (mut before, mut before_cursor) = (None, None);
        match request.page_token.as_str() {
            "" => {}
            token if received => {
                before_cursor = Some(token.parse::<u64>().map_err(|_| {
                    Status::invalid_argument(format!(
                        "page_token: {token:?} is not an inbox cursor: give the next_page_token of the previous page of received messages"
                    ))
                })?);
            }
            token => before = Some(message_id("page_token", token)?),
        }
        let since_micros = match &request.since {
            None => 0,
            Some(since) => crate::clock::checked_micros(since)
                .ok_or_else(|| Status::invalid_argument("since: out of range"))?,
        };
        let limit = match request.page_size {
            0 => DEFAULT_PAGE,
            size => usize::try_from(size).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        };
        let filter = MessageFilter {
            peer,
            state,
            since_micros,
            case_id: (!request.case_id.is_empty()).then(|| request.case_id.clone()),
            before,
            before_cursor,
            limit,
        };
        Ok((filter, received))
    }
}

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn get_gateway_status(
        &self,
        request: Request<GatewayStatusRequest>,
    ) -> Result<Response<GatewayStatus>, Status> {
        let who = operator(&request, self.country)?;
        self.audit(Record::operator_read(&who, "gateway status"))?;
        let now = crate::clock::system_micros();
        let peers = self
            .peers
            .iter()
            .map(|peer| self.peer_status(*peer, now))
            .collect::<Result<Vec<_>, _>>()?;
        let findings = self.store.findings().map_err(storage)?;
        Ok(Response::new(GatewayStatus {
            country: self.country.to_string(),
            peers,
            certificates: self.certificates(),
            store_bytes: self.store.size_on_disk().map_err(storage)?,
            draining: *self.drain.borrow(),
            findings: findings.into_iter().map(finding).collect(),
            now: timestamp(now),
        }))
    }

    async fn list_messages(
        &self,
        request: Request<ListMessagesRequest>,
    ) -> Result<Response<ListMessagesResponse>, Status> {
        let who = operator(&request, self.country)?;
        let (filter, received) = self.filter(request.get_ref())?;
        if received {
            self.audit(Record::operator_read(&who, "received message log"))?;
            let (page, more) = self.store.received_messages(&filter).map_err(storage)?;
            let next_page_token = match (more, page.last()) {
                (true, Some(last)) => last.cursor.to_string(),
                _ => String::new(),
            };
            return Ok(Response::new(ListMessagesResponse {
                messages: page.iter().map(received_summary).collect(),
                next_page_token,
            }));
        }
        self.audit(Record::operator_read(&who, "message log"))?;
        let (page, more) = self.store.messages(&filter).map_err(storage)?;
        let next_page_token = match (more, page.last()) {
            (true, Some((last, _))) => last.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(ListMessagesResponse {
            messages: page
                .iter()
                .map(|(id, record)| summary(*id, record))
                .collect(),
            next_page_token,
        }))
    }

    async fn show_message(
        &self,
        request: Request<ShowMessageRequest>,
    ) -> Result<Response<MessageHistory>, Status> {
        let who = operator(&request, self.country)?;
        let id = message_id("message_id", &request.get_ref().message_id)?;
        let record = self.store.sent_status(id).map_err(storage)?;
        let Some(record) = record else {
            return self.show_received(&who, id);
        };
        self.audit(Record::operator_read(&who, "message history").message(id.to_string()))?;
        let not = requeueable(Some(&record)).err();
        Ok(Response::new(MessageHistory {
            message: Some(summary(id, &record)),
            events: self.history(&record),
            requeueable: not.is_none(),
            not_requeueable: not.map(|n| n.reason().to_owned()).unwrap_or_default(),
            acknowledged_past: Vec::new(),
        }))
    }

    async fn requeue(
        &self,
        request: Request<RequeueRequest>,
    ) -> Result<Response<RequeueResponse>, Status> {
        let who = operator(&request, self.country)?;
        let ids = request
            .get_ref()
            .message_ids
            .iter()
            .enumerate()
            .map(|(i, text)| message_id(&format!("message_ids[{i}]"), text))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Err(Status::invalid_argument("message_ids: give at least one"));
        }
        let mut outcomes = Vec::with_capacity(ids.len());
        for id in ids {
            let outcome = match self.store.requeue(id, &who).await.map_err(storage)? {
                Requeued::Now(sequence) => RequeueOutcome {
                    message_id: id.to_string(),
                    requeued: true,
                    sequence,
                    ..RequeueOutcome::default()
                },
                Requeued::Not(not) => RequeueOutcome {
                    message_id: id.to_string(),
                    refusal: refusal_code(not) as i32,
                    reason: not.reason().to_owned(),
                    ..RequeueOutcome::default()
                },
            };
            tracing::info!(message_id = %id, requeued = outcome.requeued, operator = %who, "requeue");
            outcomes.push(outcome);
        }
        Ok(Response::new(RequeueResponse { outcomes }))
    }

    async fn set_draining(
        &self,
        request: Request<SetDrainingRequest>,
    ) -> Result<Response<SetDrainingResponse>, Status> {
        let who = operator(&request, self.country)?;
        let on = request.get_ref().draining;
        self.audit(audit::Record::drain(&who, on))?;
        self.drain.send_replace(on);
        tracing::warn!(operator = %who, draining = on, "drain state set by an operator");
        Ok(Response::new(SetDrainingResponse { draining: on }))
    }

    async fn rekey(
        &self,
        request: Request<RekeyRequest>,
    ) -> Result<Response<RekeyResponse>, Status> {
        let who = operator(&request, self.country)?;
        let dry_run = request.get_ref().dry_run;
        if dry_run {
            self.audit(Record::operator_read(&who, "rekey dry run"))?;
        }
        let store = Arc::clone(&self.store);
        let party = who.clone();
        let done = tokio::task::spawn_blocking(move || store.rekey_unflushed(dry_run, &party))
            .await
            .map_err(|_| Status::internal("the rekey stopped unexpectedly; run it again"))?;
        let done = match done {
            Ok(done) => done,
            Err(error @ StoreError::Settings { .. }) => {
                return Err(Status::failed_precondition(error.to_string()));
            }
            Err(error @ StoreError::Fenced { .. }) => {
                return Err(Status::failed_precondition(format!(
                    "{error}: run ops rekey against the lease holder"
                )));
            }
            Err(error) => {
                tracing::error!(%error, "rekey failed");
                return Err(Status::unavailable(format!(
                    "{error}; the envelopes it sealed again before it stopped stay so, and the others as they were: run it again"
                )));
            }
        };
        if !dry_run && let Err(error) = self.store.commit().await {
            tracing::error!(%error, "rekey: flush failed");
            return Err(Status::unavailable(format!(
                "{error}; the envelopes were sealed again but may not be durable yet: run it again"
            )));
        }
        tracing::info!(operator = %who, dry_run, resealed = done.resealed, "rekey");
        Ok(Response::new(self.store.rekey_report(&done, dry_run)))
    }
}
