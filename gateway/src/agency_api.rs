//! The Agency API: this country's agencies submit, subscribe, acknowledge,
//! follow their messages and read their cases.
//!
//! The agency is who its certificate says: the sender of every envelope is
//! filled in from the certificate, never from the request. Every submitted
//! message passes the case rules ([`crate::case`]) in the same transaction
//! that puts it in the outbox. Every read (inbox, case, case list, status)
//! gives the agency only what [`crate::need_to_know`] says it may see, and
//! is an audit entry: who read what, never the content.

use std::{collections::BTreeSet, sync::Arc};

use prost::Message as _;
use retorno_proto::refusal::{Code as RefusalCode, Reason};
use retorno_proto::v1::{
    self, AcknowledgeRequest, AcknowledgeResponse, CaseState, CaseView, DeliveryState, Envelope,
    EnvelopeBody, GetCaseRequest, GetReceptionPolicyRequest, InboxItem, ListCasesRequest,
    ListCasesResponse, Receipt, ReceiptBody, ReceptionPolicy, Rejection, StatusRequest,
    StatusResponse, SubmitRequest, SubmitResponse, SubscribeRequest, agency_server::Agency,
    envelope_body::Payload,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, metadata::MetadataValue};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    audit,
    case::{self, Refusal, Rule, Rules},
    country::Country,
    envelope,
    identity::{Identity, Role},
    limits::RateLimiter,
    metrics::{self, Metrics, Outcome},
    need_to_know::{self, Reader, Visibility},
    store::{Enqueued, InboxRecord, OutboxRecord, Store, StoreError},
    tls::caller,
    validate::{self, Invalid},
};

/// Inbox items read from storage at a time while a subscriber catches up.
const SUBSCRIBE_CHUNK: usize = 256;

/// The Agency API of one gateway.
#[derive(Clone)]
pub struct AgencyService {
    /// This gateway's country.
    pub country: Country,
    /// The countries this gateway can send to.
    pub peers: Arc<BTreeSet<Country>>,
    /// Outbox, inbox and cases.
    pub store: Arc<Store>,
    /// Largest accepted message.
    pub max_message_bytes: usize,
    /// Ends open subscriptions when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// The case rules every submit must pass.
    pub rules: Arc<Rules>,
    /// Submits per agency.
    pub submit_limit: Arc<RateLimiter>,
    /// Counts what became of each submit.
    pub metrics: Metrics,
    /// Disclosure control of the statistics this API gives (`[statistics]`).
    pub statistics: crate::statistics::Rule,
}

/// The agency behind a request: by admission, an agency of this gateway's
/// country or a consulate of a country this one has delegated to.
struct Caller {
    role: Role,
    name: String,
    urn: String,
    /// The consulate's own country when it acts for this country under a
    /// delegation; such a caller sees and sends only in the cases
    /// [`case::delegated_may_see`] allows.
    delegated: Option<Country>,
}

impl Caller {
    /// The caller as need to know reads it, at `here`'s gateway.
    fn reader(&self, here: Country) -> Reader {
        Reader {
            role: self.role,
            country: here,
            delegated: self.delegated,
        }
    }
}

fn agency<T>(request: &Request<T>, here: Country) -> Result<Caller, Status> {
    match caller(request)? {
        identity @ Identity::Agency {
            country,
            role,
            name,
        } => Ok(Caller {
            role: *role,
            name: name.clone(),
            urn: identity.urn(),
            delegated: (*country != here).then_some(*country),
        }),
        other => Err(Reason::new(RefusalCode::NotAnAgency).status(
            tonic::Code::PermissionDenied,
            format!("{other} is not an agency"),
        )),
    }
}

/// How a received message shows to `reader` in its inbox (the case it names
/// decides, through [`need_to_know::message`]): the inbox and the operator's
/// "who has taken it" use this one answer.
pub(crate) fn shown_to(
    store: &Store,
    reader: &Reader,
    body: &EnvelopeBody,
) -> Result<Visibility<EnvelopeBody>, StoreError> {
    let case = if reader.sees_every_case_whole() {
        None
    } else {
        store.read_case(&body.case_id)?
    };
    Ok(shown_with(case.as_ref(), reader, body))
}

/// [`shown_to`] with the message's case already read (for several readers
/// of one message).
pub(crate) fn shown_with(
    case: Option<&CaseView>,
    reader: &Reader,
    body: &EnvelopeBody,
) -> Visibility<EnvelopeBody> {
    let case = case.filter(|_| !reader.sees_every_case_whole());
    need_to_know::message(reader, case, body)
}

/// A field rule's refusal: `InvalidArgument`, naming the field, as data too.
fn invalid_argument(invalid: Invalid) -> Status {
    invalid
        .reason()
        .status(tonic::Code::InvalidArgument, invalid.to_string())
}

fn storage(error: StoreError) -> Status {
    match error {
        StoreError::Refused(refusal) => refused(refusal),
        error => {
            tracing::error!(%error, "storage failed");
            Status::unavailable(format!("{error}; nothing was changed, try again"))
        }
    }
}

/// The one place a case refusal becomes a status: the code chosen by the
/// kind of rule broken, the English sentence as the message, and the reason
/// code with its parameters as a `google.rpc.ErrorInfo` detail.
fn refused(refusal: Refusal) -> Status {
    let code = match refusal.rule {
        Rule::Order | Rule::TooEarly { .. } => tonic::Code::FailedPrecondition,
        Rule::Content => tonic::Code::InvalidArgument,
        Rule::Permission => tonic::Code::PermissionDenied,
    };
    let status = refusal.reason.status(code, refusal.message);
    match refusal.rule {
        Rule::TooEarly { timing, earliest } => {
            let mut status = status;
            // The rule and the earliest allowed instant as data, for a client to show or schedule.
            let metadata = status.metadata_mut();
            metadata.insert("retorno-rule", MetadataValue::from_static(timing.name()));
            if let Ok(value) = MetadataValue::try_from(earliest.to_string()) {
                metadata.insert("retorno-earliest-allowed", value);
            }
            status
        }
        _ => status,
    }
}

/// A submit request parsed once, at the boundary, into what the gateway
/// sends: every later step reads these typed values, never the request's text.
struct Submission {
    /// The message id: the agency's (for an idempotent retry) or a new UUIDv7.
    id: Uuid,
    /// The case id: the agency's, or a new one for a notice that opens a case.
    case_id: String,
    /// The country to send to.
    recipient: Country,
    /// The checked payload, as the envelope carries it.
    payload: Payload,
    /// The official acting for the agency, as the agency names them
    /// (checked for length and control characters only: no gateway can
    /// check who they are). Empty when the agency named no one.
    official: String,
}

impl Submission {
    /// The envelope body this submission becomes, sent by `who` from `here` at `created_at`.
    fn body(&self, here: Country, who: &Caller, created_at: jiff::Timestamp) -> EnvelopeBody {
        EnvelopeBody {
            message_id: self.id.to_string(),
            case_id: self.case_id.clone(),
            sender: Some(v1::Sender {
                country: here.to_string(),
                agency: who.name.clone(),
                role: who.role.to_proto() as i32,
                delegated_consulate_country: who
                    .delegated
                    .map(|acting| acting.to_string())
                    .unwrap_or_default(),
                official: self.official.clone(),
            }),
            recipient_country: self.recipient.to_string(),
            // The case rules' clock: both gateways time the step by it.
            created_at: Some(crate::clock::wire_micros(created_at.as_microsecond())),
            payload: Some(self.payload.clone()),
        }
    }
}

impl AgencyService {
    /// Checks a submit request once and parses it into a [`Submission`].
    fn submission(&self, request: &SubmitRequest) -> Result<Submission, Status> {
        let size = request.encoded_len();
        if size > self.max_message_bytes {
            return Err(crate::limits::too_large(Some(size), self.max_message_bytes));
        }
        let id = if request.message_id.is_empty() {
            Uuid::now_v7()
        } else {
            validate::message_id("message_id", &request.message_id).map_err(invalid_argument)?
        };
        let recipient = self.recipient(request)?;
        if !self.peers.contains(&recipient) {
            let known: Vec<&str> = self.peers.iter().map(Country::as_str).collect();
            let reason = Reason::new(RefusalCode::NotAPeer)
                .with("field", "recipient_country")
                .with("country", recipient)
                .with("peers", known.join(", "));
            return Err(reason.status(
                tonic::Code::InvalidArgument,
                format!(
                    "recipient_country: {recipient} is not a peer of {}'s gateway (peers: {})",
                    self.country,
                    known.join(", ")
                ),
            ));
        }
        let payload =
            validate::submitted_payload(request.payload.as_ref()).map_err(invalid_argument)?;
        let case_id = match (&payload, request.case_id.is_empty()) {
            // A new case gets an id that says which country opened it.
            (Payload::AdvanceNotice(_), true) => format!("{}-{}", self.country, Uuid::now_v7()),
            _ => request.case_id.clone(),
        };
        validate::case_id(&case_id).map_err(invalid_argument)?;
        validate::official("official", &request.official).map_err(invalid_argument)?;
        Ok(Submission {
            id,
            case_id,
            recipient,
            payload,
            official: request.official.clone(),
        })
    }

    /// The country to send to: as given, or, for a message of an existing
    /// case, the case's other country.
    fn recipient(&self, request: &SubmitRequest) -> Result<Country, Status> {
        if !request.recipient_country.is_empty() {
            return validate::country("recipient_country", &request.recipient_country)
                .map_err(invalid_argument);
        }
        let case = match &request.case_id {
            id if id.is_empty() => None,
            id => self.store.read_case(id).map_err(storage)?,
        };
        let Some(case) = case else {
            return Err(Reason::new(RefusalCode::FieldRequired)
                .with("field", "recipient_country")
                .status(
                    tonic::Code::InvalidArgument,
                    "recipient_country: is required (or give the case_id of a case this gateway knows)",
                ));
        };
        let other = if case.destination_country == self.country.as_str() {
            &case.origin_country
        } else {
            &case.destination_country
        };
        validate::country("recipient_country", other).map_err(invalid_argument)
    }

    /// Passes the case rules, stores the envelope in the outbox, and answers
    /// once both are durable.
    async fn accept(
        &self,
        who: &Caller,
        request: &SubmitRequest,
        submission: Submission,
    ) -> Result<Response<SubmitResponse>, Status> {
        let now = self.rules.now();
        let body = submission.body(self.country, who, now);
        let Submission {
            id,
            recipient,
            payload,
            official,
            ..
        } = submission;
        let sealed = envelope::seal(&body);
        let record = OutboxRecord {
            envelope: sealed.envelope,
            body_sha256: sealed.body_sha256,
            message_id: body.message_id.clone(),
            kind: case::Kind::of(&payload).name().to_owned(),
        };
        // A retry must match the first submit, not the body (whose created_at differs).
        let request_sha256 = envelope::digest(&request.encode_to_vec());
        let (rules, stepped, sender, role) =
            (self.rules.clone(), body.clone(), self.country, who.role);
        let case_step: case::CaseStep = Box::new(move |cases| {
            let step = case::Step {
                body: &stepped,
                payload: &payload,
                sender,
                role,
                recipient,
                now,
            };
            rules.apply(cases, &step)
        });
        let outcome = self
            .store
            .enqueue_by(
                &who.urn,
                &official,
                recipient,
                id,
                request_sha256,
                record,
                case_step,
            )
            .await
            .map_err(|error| {
                if let StoreError::Refused(refusal) = &error {
                    tracing::info!(rule = ?refusal.rule, "refused by the case rules");
                    let reason = format!("case rules ({:?}): {}", refusal.rule, refusal.message);
                    self.audit_refusal(who, &body.message_id, &body.case_id, &reason);
                }
                storage(error)
            })?;
        let answer = |duplicate: bool, case_state: CaseState| {
            Response::new(SubmitResponse {
                message_id: body.message_id.clone(),
                duplicate,
                case_id: body.case_id.clone(),
                case_state: case_state as i32,
            })
        };
        match outcome {
            Enqueued::New(_, applied) => {
                tracing::info!(state = case::state_name(applied.state), "accepted");
                Ok(answer(false, applied.state))
            }
            Enqueued::Duplicate => {
                let state = self
                    .store
                    .read_case(&body.case_id)
                    .map_err(storage)?
                    .map_or(CaseState::Unspecified, |case| case.state());
                Ok(answer(true, state))
            }
            Enqueued::Conflict => {
                let reason = "message_id was accepted before with different content";
                self.audit_refusal(who, &body.message_id, &body.case_id, reason);
                Err(Reason::new(RefusalCode::MessageIdConflict)
                    .with("field", "message_id")
                    .with("message_id", &body.message_id)
                    .status(
                        tonic::Code::AlreadyExists,
                        format!(
                            "message_id {} was accepted before with different content; leave message_id empty or use a new UUIDv7",
                            body.message_id
                        ),
                    ))
            }
        }
    }

    /// A submit from its caller's admission to its answer; [`Agency::submit`] counts what it became.
    async fn submit_counted(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let who = agency(&request, self.country)?;
        self.submit_limit
            .take(&who.urn, std::time::Instant::now())
            .map_err(|retry_ms| {
                Reason::new(RefusalCode::RateLimited)
                    .with("retry_ms", retry_ms)
                    .status(
                        tonic::Code::ResourceExhausted,
                        format!(
                            "{} is over its submit rate (limits.agency_submits_per_second); retry in {retry_ms} ms",
                            who.urn
                        ),
                    )
            })?;
        let submission = self
            .submission(request.get_ref())
            .inspect_err(|status| self.audit_invalid(&who, request.get_ref(), status))?;
        let span = tracing::info_span!("submit", message_id = %submission.id, case_id = %submission.case_id, peer = %submission.recipient);
        self.accept(&who, request.get_ref(), submission)
            .instrument(span)
            .await
    }

    /// Records a refused submit in the audit log. The refusal is answered
    /// even if that fails: it changed nothing that the log would then miss.
    /// A country's published reception policy as this gateway holds it;
    /// not personal data, so any agency of this gateway may read it.
    fn reception_policy(&self, country: Country) -> Result<ReceptionPolicy, Status> {
        if country == self.country {
            return Ok(self.rules.own_policy.clone());
        }
        if !self.peers.contains(&country) {
            let known: Vec<&str> = self.peers.iter().map(Country::as_str).collect();
            return Err(Reason::new(RefusalCode::NotAPeer)
                .with("field", "country")
                .with("country", country)
                .with("peers", known.join(", "))
                .status(
                    tonic::Code::NotFound,
                    format!(
                        "country: {country} is not a peer of {}'s gateway",
                        self.country
                    ),
                ));
        }
        let policies = self
            .rules
            .peer_policies
            .read()
            .unwrap_or_else(|e| e.into_inner());
        policies.get(&country).cloned().ok_or_else(|| {
            Reason::new(RefusalCode::PolicyUnknown)
                .with("country", country)
                .status(
                    tonic::Code::Unavailable,
                    format!(
                        "{country}'s reception policy is not known here yet ({country}'s gateway has not been reachable since this gateway started); try again once it is"
                    ),
                )
        })
    }

    fn audit_refusal(&self, who: &Caller, message_id: &str, case_id: &str, reason: &str) {
        let record = audit::Record::submit_refused(&who.urn)
            .message(message_id)
            .cases(&[case_id])
            .detail(reason);
        if let Err(error) = self.store.audit(&[record]) {
            tracing::error!(%error, "the audit log could not record a refused submit");
        }
    }

    /// Records a submit that validation refused: the field it names, and
    /// the request's ids only where they are well-formed ids.
    fn audit_invalid(&self, who: &Caller, request: &SubmitRequest, status: &Status) {
        if status.code() != tonic::Code::InvalidArgument {
            return;
        }
        let id = validate::message_id("message_id", &request.message_id)
            .map(|id| id.to_string())
            .unwrap_or_default();
        let case_id = match validate::case_id(&request.case_id) {
            Ok(()) => request.case_id.as_str(),
            Err(_) => "",
        };
        self.audit_refusal(who, &id, case_id, &audit::status_reason(status));
    }

    /// The inbox item at `cursor` as `reader` may see it, if at all.
    fn inbox_item(
        &self,
        reader: &Reader,
        cursor: u64,
        record: &InboxRecord,
    ) -> Result<Option<InboxItem>, Status> {
        // Refused messages are kept as evidence only; purged ones have no content left.
        if !record.refused.is_empty() || record.purged_at_micros != 0 {
            return Ok(None);
        }
        let corrupt = |e: prost::DecodeError| {
            Status::internal(format!("inbox item {cursor} is corrupt: {e}"))
        };
        let envelope = Envelope::decode(record.envelope.as_slice()).map_err(corrupt)?;
        let body = EnvelopeBody::decode(envelope.body.as_slice()).map_err(corrupt)?;
        let visibility = shown_to(&self.store, reader, &body).map_err(storage)?;
        Ok(inbox_item(cursor, record, envelope, body, visibility))
    }

    /// `case_id` as `who` may read it. A consulate acting under a delegation
    /// gets the same answer for a case that does not exist as for one it may
    /// not read, so that it cannot learn which case ids exist.
    fn readable_case(&self, who: &Caller, case_id: &str) -> Result<CaseView, Status> {
        let reader = who.reader(self.country);
        let case = self.store.case_as_shown(case_id).map_err(storage)?;
        match (
            case.map(|case| need_to_know::case_for(&reader, case, &self.rules)),
            who.delegated,
        ) {
            (Some(Ok(case)), _) => Ok(case),
            (_, Some(acting)) => Err(self.not_shown(acting, &format!("case {case_id:?}"))),
            (None, None) => Err(Reason::new(RefusalCode::CaseUnknown)
                .with("case", case_id)
                .status(
                    tonic::Code::NotFound,
                    format!("{}'s gateway knows no case {case_id:?}", self.country),
                )),
            (Some(Err(refusal)), None) => Err(refused(refusal)),
        }
    }

    /// The one answer a delegated consulate gets for what it may not see,
    /// whether or not it exists.
    fn not_shown(&self, acting: Country, what: &str) -> Status {
        let here = self.country;
        Reason::new(RefusalCode::NotShownToDelegate)
            .with("acting", acting)
            .with("country", here)
            .status(
                tonic::Code::PermissionDenied,
                format!(
                    "{here}'s gateway shows {acting}'s consulate, acting for {here}, no {what}: under {here}'s delegation it reads only cases held here of which {here} is the origin and {acting} is not the destination"
                ),
            )
    }

    /// Streams inbox items after `after` until the subscriber leaves or, with
    /// `stop_at_end`, until it has caught up. Items the role may not see are
    /// skipped; their cursors still count.
    async fn stream_inbox(
        self,
        who: Caller,
        mut after: u64,
        stop_at_end: bool,
        items: mpsc::Sender<Result<InboxItem, Status>>,
    ) {
        let mut watermark = self.store.inbox_watermark();
        let mut shutdown = self.shutdown.clone();
        loop {
            watermark.borrow_and_update();
            let chunk = match self.store.inbox_after(after, SUBSCRIBE_CHUNK) {
                Ok(chunk) => chunk,
                Err(error) => {
                    let _ = items.send(Err(storage(error))).await;
                    return;
                }
            };
            let caught_up = chunk.len() < SUBSCRIBE_CHUNK;
            let reader = who.reader(self.country);
            for (cursor, record) in chunk {
                after = cursor;
                let item = self.inbox_item(&reader, cursor, &record);
                let Some(item) = item.transpose() else {
                    continue;
                };
                if items.send(item).await.is_err() {
                    return;
                }
            }
            if !caught_up {
                continue;
            }
            if stop_at_end {
                return;
            }
            tokio::select! {
                changed = watermark.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
                () = items.closed() => return,
            }
        }
    }
}

/// The inbox item of a message, as need to know lets its reader see it.
fn inbox_item(
    cursor: u64,
    record: &InboxRecord,
    envelope: Envelope,
    body: EnvelopeBody,
    visibility: Visibility<EnvelopeBody>,
) -> Option<InboxItem> {
    let received_at = Some(crate::clock::wire_micros(record.received_at_micros));
    match visibility {
        Visibility::Full => Some(InboxItem {
            cursor,
            envelope: Some(envelope),
            body: Some(body),
            received_at,
            redacted: false,
        }),
        Visibility::Redacted(body) => Some(InboxItem {
            cursor,
            envelope: None,
            body: Some(*body),
            received_at,
            redacted: true,
        }),
        Visibility::Hidden => None,
    }
}

fn decode_optional<M: prost::Message + Default>(bytes: &[u8]) -> Result<Option<M>, Status> {
    if bytes.is_empty() {
        return Ok(None);
    }
    M::decode(bytes)
        .map(Some)
        .map_err(|e| Status::internal(format!("stored record is corrupt: {e}")))
}

#[tonic::async_trait]
impl Agency for AgencyService {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let started = std::time::Instant::now();
        let peer =
            validate::country("recipient_country", &request.get_ref().recipient_country).ok();
        let kind = metrics::submit_kind(request.get_ref().payload.as_ref());
        let answer = self.submit_counted(request).await;
        match &answer {
            Ok(response) if !response.get_ref().duplicate => {
                self.metrics.message(peer, kind, Outcome::Accepted);
                self.metrics.submit_latency(started.elapsed());
            }
            Ok(_) => {}
            // A storage failure is not a refusal: the agency retries it.
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Internal
                ) => {}
            Err(_) => self.metrics.message(peer, kind, Outcome::RefusedAtSubmit),
        }
        answer
    }

    type SubscribeStream = ReceiverStream<Result<InboxItem, Status>>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let who = agency(&request, self.country)?;
        let after = match request.get_ref().after_cursor {
            Some(cursor) => cursor,
            None => self.store.acknowledged(&who.urn).map_err(storage)?,
        };
        // No read goes unrecorded: if the log cannot take it, the inbox is not given.
        let read = audit::Record::inbox_read(&who.urn, after);
        self.store.audit(&[read]).map_err(storage)?;
        let (sender, receiver) = mpsc::channel(SUBSCRIBE_CHUNK);
        let stop_at_end = request.get_ref().stop_at_end;
        tokio::spawn(self.clone().stream_inbox(who, after, stop_at_end, sender));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn acknowledge(
        &self,
        request: Request<AcknowledgeRequest>,
    ) -> Result<Response<AcknowledgeResponse>, Status> {
        let who = agency(&request, self.country)?;
        let cursor = request.get_ref().cursor;
        let head = self.store.inbox_head();
        if cursor > head {
            return Err(Reason::new(RefusalCode::CursorBeyond)
                .with("field", "cursor")
                .with("cursor", cursor)
                .with("head", head)
                .status(
                    tonic::Code::InvalidArgument,
                    format!("cursor: {cursor} is beyond the last inbox item ({head})"),
                ));
        }
        let cursor = self
            .store
            .acknowledge(&who.urn, cursor)
            .await
            .map_err(storage)?;
        Ok(Response::new(AcknowledgeResponse { cursor }))
    }

    async fn get_status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let who = agency(&request, self.country)?;
        let text = &request.get_ref().message_id;
        let id = Uuid::try_parse(text).map_err(|_| {
            Reason::new(RefusalCode::FieldNotUuid)
                .with("field", "message_id")
                .status(
                    tonic::Code::InvalidArgument,
                    format!("message_id: {text:?} is not a UUID"),
                )
        })?;
        let record = self.store.sent_status(id).map_err(storage)?;
        let case_id = record
            .as_ref()
            .and_then(|record| record.case_ids.first().cloned())
            .unwrap_or_default();
        let record = match (record, who.delegated) {
            // A delegated consulate follows only messages of cases it may read,
            // and learns nothing of the others, not even whether they exist.
            (record, Some(acting)) => record
                .filter(|_| self.readable_case(&who, &case_id).is_ok())
                .ok_or_else(|| self.not_shown(acting, &format!("message {id}")))?,
            (Some(record), None) => record,
            (None, None) => {
                return Err(Reason::new(RefusalCode::MessageUnknown)
                    .with("message_id", id)
                    .status(
                        tonic::Code::NotFound,
                        format!("{}'s gateway has accepted no message {id}", self.country),
                    ));
            }
        };
        let read = audit::Record::status_read(&who.urn, &id.to_string());
        self.store.audit(&[read]).map_err(storage)?;
        let receipt: Option<Receipt> = decode_optional(&record.receipt)?;
        let receipt_body = match &receipt {
            Some(receipt) => decode_optional::<ReceiptBody>(&receipt.body)?,
            None => None,
        };
        Ok(Response::new(StatusResponse {
            message_id: id.to_string(),
            state: DeliveryState::try_from(record.state).unwrap_or(DeliveryState::Unspecified)
                as i32,
            recipient_country: record.recipient,
            accepted_at: Some(crate::clock::wire_micros(record.accepted_at_micros)),
            receipt,
            receipt_body,
            rejection: decode_optional::<Rejection>(&record.rejection)?,
            case_id,
        }))
    }

    async fn get_case(
        &self,
        request: Request<GetCaseRequest>,
    ) -> Result<Response<CaseView>, Status> {
        let who = agency(&request, self.country)?;
        let id = &request.get_ref().case_id;
        let case = self.readable_case(&who, id)?;
        // No read goes unrecorded: if the log cannot take it, the case is not given.
        let read = audit::Record::case_read(&who.urn, id);
        self.store.audit(&[read]).map_err(storage)?;
        Ok(Response::new(case))
    }

    async fn list_cases(
        &self,
        request: Request<ListCasesRequest>,
    ) -> Result<Response<ListCasesResponse>, Status> {
        let who = agency(&request, self.country)?;
        let wanted = request.get_ref().state();
        let reader = who.reader(self.country);
        let mut cases: Vec<CaseView> = Vec::new();
        for case in self.store.cases() {
            let case = case.map_err(storage)?;
            if wanted != CaseState::Unspecified && case.state() != wanted {
                continue;
            }
            cases.extend(need_to_know::listed(&reader, case, &self.rules));
        }
        let listed = audit::Record::cases_listed(&who.urn, case::state_name(wanted), cases.len());
        self.store.audit(&[listed]).map_err(storage)?;
        Ok(Response::new(ListCasesResponse { cases }))
    }

    async fn get_reception_policy(
        &self,
        request: Request<GetReceptionPolicyRequest>,
    ) -> Result<Response<ReceptionPolicy>, Status> {
        agency(&request, self.country)?;
        let country =
            validate::country("country", &request.get_ref().country).map_err(invalid_argument)?;
        self.reception_policy(country).map(Response::new)
    }

    async fn get_statistics(
        &self,
        request: Request<v1::StatisticsRequest>,
    ) -> Result<Response<v1::StatisticsResponse>, Status> {
        let who = agency(&request, self.country)?;
        need_to_know::may_read_statistics(&who.reader(self.country)).map_err(refused)?;
        let period = crate::statistics::requested_period(request.get_ref())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (store, country, rule) = (self.store.clone(), self.country, self.statistics);
        let now = self.rules.now();
        let answer = tokio::task::spawn_blocking(move || {
            crate::statistics::answer(&store, country, period, rule, now)
        })
        .await
        .map_err(|e| Status::internal(format!("statistics failed: {e}")))?;
        Ok(Response::new(answer.map_err(storage)?))
    }
}
