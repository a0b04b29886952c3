//! The case: one child's return, driven only by messages, the same on both gateways.
//!
//! ```text
//! NOTIFIED -> (SUMMARY_SHARED) -> ARRIVAL_PROPOSED -> ARRIVAL_AGREED -> HANDED_OVER -> RECEIVED -> (FOLLOW_UP)
//!                                    ^        |  countered or declined
//!                                    |        v
//!                                  AWAITING_PROPOSAL
//! any state before HANDED_OVER -> WITHDRAWN
//! ```
//!
//! Time is held as the region means it, at the instant a message was
//! created (its `created_at`, from the sending gateway's [`Clock`], the same
//! on both gateways) and under the origin's published [`v1::CaseTiming`]: a
//! handoff no earlier than the margin before the agreed arrival (and flagged
//! late well after it), a reception no earlier than the handoff, a
//! follow-up at N days no earlier than N days after the reception less the
//! tolerance. A refusal for time names the rule and the earliest allowed
//! instant ([`Rule::TooEarly`]).
//!
//! [`Rules::apply`] is the one implementation of the state machine. The
//! sending gateway runs it when its agency submits (a refusal there stores
//! nothing and answers `FailedPrecondition`, `InvalidArgument` or
//! `PermissionDenied`); the receiving gateway runs it again on delivery (a
//! refusal there is recorded in the case and returned to the sender inside the
//! receipt). It runs inside the transaction that stores the message
//! ([`crate::storage::CasesTx`]), so a
//! case never moves without its message being stored, and the reverse.
//!
//! The region's safeguards live here: the best-interest gate, reception
//! windows and capacity, family groups, the role matrix and consular
//! delegations (a consulate of another country acting for the origin, only
//! if the origin lists it, and never in a case its own country returns:
//! [`delegated_may_see`]). What a reader may see of a case and its timeline
//! is decided in [`crate::need_to_know`]; a timeline entry stores what its
//! line is made from, so that each reader's line is built from what it may see.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::RwLock,
};

use prost::Message as _;
use retorno_proto::refusal::{Code, Reason};
use retorno_proto::v1::{
    self, ArrivalProposal, CaseState, CaseView, Companionship, DeliveryState, EnvelopeBody,
    ReceptionPolicy, TimelineEntry, arrival_response::Decision, envelope_body::Payload,
};

use crate::{
    clock::Clock,
    country::Country,
    identity::Role,
    need_to_know, policy,
    storage::{CasesTx, SentRecord, StoreError, TxError},
};

/// A case step run inside the transaction that stores its message:
/// `Ok(Err(refusal))` when the case rules refuse it, having written nothing.
/// It owns what it needs, because the store's writer thread runs it, and it
/// may run more than once (the engine runs a transaction again after a conflict).
pub type CaseStep =
    Box<dyn Fn(&dyn CasesTx) -> Result<Result<Applied, Refusal>, TxError> + Send + Sync>;

/// The kinds of message of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `AdvanceNotice`: opens the case.
    Notice,
    /// `CaseSummary`.
    Summary,
    /// `ArrivalProposal`.
    Proposal,
    /// `ArrivalResponse`.
    Response,
    /// `HandoffAck`.
    Handoff,
    /// `ReceptionConfirmation`.
    Reception,
    /// `FollowUpReport`.
    FollowUp,
    /// `CaseWithdrawal`.
    Withdrawal,
}

impl Kind {
    /// Every kind, in the order of a case.
    pub const ALL: [Kind; 8] = [
        Kind::Notice,
        Kind::Summary,
        Kind::Proposal,
        Kind::Response,
        Kind::Handoff,
        Kind::Reception,
        Kind::FollowUp,
        Kind::Withdrawal,
    ];

    /// The kind of a payload.
    pub fn of(payload: &Payload) -> Kind {
        match payload {
            Payload::AdvanceNotice(_) => Kind::Notice,
            Payload::CaseSummary(_) => Kind::Summary,
            Payload::ArrivalProposal(_) => Kind::Proposal,
            Payload::ArrivalResponse(_) => Kind::Response,
            Payload::HandoffAck(_) => Kind::Handoff,
            Payload::ReceptionConfirmation(_) => Kind::Reception,
            Payload::FollowUpReport(_) => Kind::FollowUp,
            Payload::CaseWithdrawal(_) => Kind::Withdrawal,
        }
    }

    /// The kind `name` names ([`Kind::name`]), if any.
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// An empty payload of this kind: what need to know decides by when the
    /// content is gone or not to be opened (whether a role sees a message
    /// depends on its kind, not its content; [`crate::need_to_know::payload`]).
    pub fn empty_payload(self) -> Payload {
        match self {
            Kind::Notice => Payload::AdvanceNotice(v1::AdvanceNotice::default()),
            Kind::Summary => Payload::CaseSummary(v1::CaseSummary::default()),
            Kind::Proposal => Payload::ArrivalProposal(v1::ArrivalProposal::default()),
            Kind::Response => Payload::ArrivalResponse(v1::ArrivalResponse::default()),
            Kind::Handoff => Payload::HandoffAck(v1::HandoffAck::default()),
            Kind::Reception => Payload::ReceptionConfirmation(v1::ReceptionConfirmation::default()),
            Kind::FollowUp => Payload::FollowUpReport(v1::FollowUpReport::default()),
            Kind::Withdrawal => Payload::CaseWithdrawal(v1::CaseWithdrawal::default()),
        }
    }

    /// The payload field's name, as agencies know it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Notice => "advance_notice",
            Kind::Summary => "case_summary",
            Kind::Proposal => "arrival_proposal",
            Kind::Response => "arrival_response",
            Kind::Handoff => "handoff_ack",
            Kind::Reception => "reception_confirmation",
            Kind::FollowUp => "follow_up_report",
            Kind::Withdrawal => "case_withdrawal",
        }
    }

    /// Which country of the case sends this kind: `Some(true)` the destination,
    /// `Some(false)` the origin, `None` either (a summary).
    fn sent_by_destination(self) -> Option<bool> {
        match self {
            Kind::Notice | Kind::Proposal | Kind::Withdrawal => Some(true),
            Kind::Response | Kind::Handoff | Kind::Reception | Kind::FollowUp => Some(false),
            Kind::Summary => None,
        }
    }
}

/// The role matrix: who may send what.
pub fn may_send(role: Role, kind: Kind) -> bool {
    match role {
        Role::DestinationAuthority => {
            matches!(
                kind,
                Kind::Notice | Kind::Summary | Kind::Proposal | Kind::Withdrawal
            )
        }
        Role::ChildProtection => matches!(
            kind,
            Kind::Response | Kind::Reception | Kind::FollowUp | Kind::Summary | Kind::Handoff
        ),
        Role::Consulate => kind == Kind::Handoff,
        // Operators run the gateway; they take no part in a case.
        Role::Operator => false,
    }
}

fn roles_for(kind: Kind) -> String {
    [
        Role::DestinationAuthority,
        Role::ChildProtection,
        Role::Consulate,
    ]
    .iter()
    .filter(|role| may_send(**role, kind))
    .map(|role| role.as_str())
    .collect::<Vec<_>>()
    .join(" or ")
}

/// The kinds a case in `state` accepts next.
pub fn allowed_next(state: CaseState) -> &'static [Kind] {
    use Kind::*;
    match state {
        CaseState::Unspecified => &[Notice],
        CaseState::Notified | CaseState::SummaryShared | CaseState::AwaitingProposal => {
            &[Summary, Proposal, Withdrawal]
        }
        CaseState::ArrivalProposed => &[Response, Proposal, Summary, Withdrawal],
        CaseState::ArrivalAgreed => &[Handoff, Summary, Withdrawal],
        CaseState::HandedOver => &[Reception, Summary],
        CaseState::Received | CaseState::FollowUp => &[FollowUp, Summary],
        CaseState::Withdrawn => &[],
    }
}

/// The state's name as agencies read it, e.g. `ARRIVAL_AGREED`.
pub fn state_name(state: CaseState) -> &'static str {
    state.as_str_name().trim_start_matches("CASE_STATE_")
}

/// Why the case rules refuse a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Which kind of rule.
    pub rule: Rule,
    /// The rule as data: its reason code and named parameters, so that each
    /// reader sees the refusal in their own language.
    pub reason: Reason,
    /// What is wrong and what would be allowed, for a caseworker.
    pub message: String,
}

/// The kinds of rule a message can break, which choose the gRPC status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A step out of order (`FailedPrecondition`).
    Order,
    /// A value the rules do not allow: the best-interest gate, reception hours,
    /// a family split, an unaccompanied child without escort (`InvalidArgument`).
    Content,
    /// A role or country that may not send this (`PermissionDenied`).
    Permission,
    /// A step earlier than the origin's case timing allows
    /// (`FailedPrecondition`): which timing rule, and the earliest instant
    /// at which the step would be accepted.
    TooEarly {
        /// The timing rule.
        timing: Timing,
        /// The earliest allowed instant.
        earliest: jiff::Timestamp,
    },
}

/// The rules of time after an agreed arrival, as `[case]` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// A handoff no earlier than `handoff_margin_hours` before the agreed arrival.
    HandoffMargin,
    /// A reception confirmation no earlier than the handoff.
    ReceptionAfterHandoff,
    /// A follow-up at N days no earlier than N days after the reception,
    /// less `follow_up_tolerance_days`.
    FollowUpPeriod,
}

impl Timing {
    /// The rule's stable name, for clients and logs.
    pub fn name(self) -> &'static str {
        match self {
            Timing::HandoffMargin => "handoff_margin_hours",
            Timing::ReceptionAfterHandoff => "reception_after_handoff",
            Timing::FollowUpPeriod => "follow_up_tolerance_days",
        }
    }
}

impl Refusal {
    /// The refusal as a receipt or timeline carries it.
    pub fn detail(&self) -> v1::RefusalDetail {
        self.reason.detail(&self.message)
    }
}

/// A remark the rules attach to a step they accept (a handoff long after the
/// agreed arrival): the English sentence of `TimelineEntry.flag`, and its
/// reason code and parameters for each reader's language (`flag_detail`).
pub struct Remark {
    /// The remark as data.
    pub reason: Reason,
    /// The English sentence.
    pub message: String,
}

fn refuse(rule: Rule, reason: Reason, message: impl Into<String>) -> Refusal {
    Refusal {
        rule,
        reason,
        message: message.into(),
    }
}

fn out_of_order(case: &CaseView, kind: Kind) -> Refusal {
    let state = case.state();
    let next: Vec<&str> = allowed_next(state).iter().map(|k| k.name()).collect();
    let allowed = if next.is_empty() {
        "nothing: the case is closed".to_owned()
    } else {
        next.join(", ")
    };
    refuse(
        Rule::Order,
        Reason::new(Code::OutOfOrder)
            .with("case", &case.case_id)
            .with("state", state_name(state))
            .with("step", kind.name())
            .with("allowed", next.join(", ")),
        format!(
            "case {} is {}: {} is not allowed now; allowed next: {allowed}",
            case.case_id,
            state_name(state),
            kind.name()
        ),
    )
}

/// What a gateway's case rules need beyond the cases themselves.
pub struct Rules {
    /// This gateway's country.
    pub country: Country,
    /// Countries with which a bilateral agreement relaxes the best-interest
    /// gate: a determination by the migration authority is then accepted, and
    /// the case shows it.
    pub relaxed_best_interest: BTreeSet<Country>,
    /// This country's own reception policy (checked when it is the origin).
    pub own_policy: ReceptionPolicy,
    /// Peers' published policies (checked when this country is the destination).
    pub peer_policies: RwLock<BTreeMap<Country, ReceptionPolicy>>,
    /// Where "now" comes from: the system clock, or one a test moves.
    pub clock: Clock,
}

/// One message to apply to its case.
pub struct Step<'a> {
    /// The envelope body (message id, case id, sender, created_at).
    pub body: &'a EnvelopeBody,
    /// Its payload.
    pub payload: &'a Payload,
    /// The sending country and role, as authenticated.
    pub sender: Country,
    /// The sender's role, as authenticated (the agency's certificate at
    /// submit; the body, from an authenticated gateway, on delivery).
    pub role: Role,
    /// The receiving country.
    pub recipient: Country,
    /// When the rules are applied (the minimum notice of a proposal, from
    /// [`Rules::now`]); the steps after an agreed arrival are timed by the
    /// body's `created_at` instead, which both gateways share.
    pub now: jiff::Timestamp,
}

/// Who takes a step: an agency of a country in a role, or a consulate of
/// another country acting for it under a delegation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The country the step is taken for: the sending gateway's.
    pub country: Country,
    /// The agency's role.
    pub role: Role,
    /// The consulate's own country when it acts for `country` under a delegation.
    pub delegated: Option<Country>,
}

impl Step<'_> {
    /// Who takes this step, as authenticated and as the body states a delegation.
    fn actor(&self) -> Result<Actor, Refusal> {
        Ok(Actor {
            country: self.sender,
            role: self.role,
            delegated: delegated_consulate(self.body)?,
        })
    }

    /// When the message was created: the instant its step is timed at.
    fn sent_at(&self) -> jiff::Timestamp {
        self.body
            .created_at
            .as_ref()
            .and_then(crate::clock::from_wire)
            .unwrap_or(self.now)
    }
}

/// What applying a message did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Every case the message moved (several for a family group).
    pub cases: Vec<String>,
    /// The state of the message's own case afterwards.
    pub state: CaseState,
}

/// Where case `id` is kept in the cases tree.
pub fn case_key(id: &str) -> Vec<u8> {
    format!("case/{id}").into_bytes()
}

fn family_key(destination: &str, group: &str) -> Vec<u8> {
    format!("family/{destination}/{group}").into_bytes()
}

fn capacity_key(point: &str, date: &str) -> Vec<u8> {
    format!("capacity/{point}/{date}").into_bytes()
}

/// The members of a family group, in the `cases` tree.
#[derive(Clone, PartialEq, prost::Message)]
struct Family {
    #[prost(string, repeated, tag = "1")]
    case_ids: Vec<String>,
}

fn corrupt(what: &str, error: prost::DecodeError) -> TxError {
    TxError::Abort(StoreError::Corrupt {
        tree: "cases",
        reason: format!("{what}: {error}"),
    })
}

/// Reads a case inside a transaction.
pub fn load(tx: &dyn CasesTx, id: &str) -> Result<Option<CaseView>, TxError> {
    tx.get(&case_key(id))?
        .map(|bytes| CaseView::decode(bytes.as_ref()).map_err(|e| corrupt(id, e)))
        .transpose()
}

fn save(tx: &dyn CasesTx, case: &CaseView) -> Result<(), TxError> {
    tx.insert(&case_key(&case.case_id), case.encode_to_vec())?;
    Ok(())
}

fn family_members(
    tx: &dyn CasesTx,
    destination: &str,
    group: &str,
) -> Result<Vec<String>, TxError> {
    Ok(match tx.get(&family_key(destination, group))? {
        Some(bytes) => {
            Family::decode(bytes.as_ref())
                .map_err(|e| corrupt(group, e))?
                .case_ids
        }
        None => Vec::new(),
    })
}

/// Shows in a timeline entry of a message this gateway sent where its
/// delivery stands, from the message's `sent` record: its delivery state
/// and the peer's case refusal, if its rules refused it, in words and, from
/// the peer's receipt, as data. The stored case keeps the entry as it was
/// queued; the receipt is recorded once, in `sent`, and read from there
/// ([`crate::store::Store::case_as_shown`]).
pub fn show_delivery(entry: &mut TimelineEntry, sent: &SentRecord) {
    entry.delivery = sent.state;
    entry.peer_refused.clone_from(&sent.peer_refused);
    // The receipt was verified before it was stored; one that does not
    // decode here leaves the refusal in words only.
    entry.peer_refused_detail = v1::Receipt::decode(sent.receipt.as_slice())
        .ok()
        .and_then(|receipt| v1::ReceiptBody::decode(receipt.body.as_slice()).ok())
        .and_then(|body| body.case_refusal_detail)
        .filter(|_| !sent.peer_refused.is_empty());
}

/// Whether a timeline entry is one of a message this gateway sent, whose
/// delivery [`show_delivery`] shows.
pub fn is_sent_here(entry: &TimelineEntry) -> bool {
    entry.delivery != DeliveryState::Received as i32
}

/// The stored case key prefix, for listing.
pub const CASE_PREFIX: &[u8] = b"case/";

impl Rules {
    /// Now, as the case rules see it.
    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// Applies one message to its case(s) inside a transaction over the
    /// `cases` tree. `Ok(Err(refusal))` means the rules refuse it and nothing
    /// was written: every check comes before the first write. An accepted
    /// step writes its case(s) and, at the origin, the capacity counter it
    /// moves (an acceptance takes places, a withdrawal of an agreed case
    /// gives one back), all in the same transaction.
    pub fn apply(
        &self,
        tx: &dyn CasesTx,
        step: &Step<'_>,
    ) -> Result<Result<Applied, Refusal>, TxError> {
        let kind = Kind::of(step.payload);
        let actor = match step.actor() {
            Ok(actor) => actor,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Err(refusal) = self.may_send_as(&actor, kind) {
            return Ok(Err(refusal));
        }
        if let Payload::AdvanceNotice(notice) = step.payload {
            return self.open(tx, step, notice);
        }
        let Some(case) = load(tx, &step.body.case_id)? else {
            return Ok(Err(refuse(
                Rule::Order,
                Reason::new(Code::NoSuchCase).with("case", &step.body.case_id),
                format!(
                    "there is no case {} here: a case starts with an advance_notice from the destination",
                    step.body.case_id
                ),
            )));
        };
        if let Err(refusal) = self.may_take(&case, &actor, step.recipient, kind, step.sent_at()) {
            return Ok(Err(refusal));
        }
        match step.payload {
            Payload::AdvanceNotice(_) => Ok(Err(refuse(
                Rule::Order,
                Reason::new(Code::CaseExists)
                    .with("case", &case.case_id)
                    .with("state", state_name(case.state())),
                "an advance notice opens a case once",
            ))),
            Payload::CaseSummary(_) => self.move_one(tx, case, step, |case| {
                if case.state() == CaseState::Notified {
                    case.state = CaseState::SummaryShared as i32;
                }
            }),
            Payload::ArrivalProposal(proposal) => self.propose(tx, case, step, proposal),
            Payload::ArrivalResponse(response) => self.respond(tx, case, step, response),
            Payload::HandoffAck(handoff) => self.hand_over(tx, case, step, handoff),
            Payload::ReceptionConfirmation(_) => self.receive(tx, case, step),
            Payload::FollowUpReport(report) => self.follow_up(tx, case, step, report),
            Payload::CaseWithdrawal(_) => self.withdraw(tx, case, step),
        }
    }

    /// Whether `country` (this one, or a peer as its known policy says)
    /// delegates to `consulate`'s consulate: this gateway's own
    /// `[[delegations]]` (the config is the source of truth for its own
    /// agencies), or a peer's as its published policy lists them; `None`
    /// while that policy is not known here.
    pub fn lists_delegation(&self, country: Country, consulate: Country) -> Option<bool> {
        let lists = |policy: &ReceptionPolicy| {
            policy
                .delegated_consulates
                .iter()
                .any(|listed| listed.parse::<Country>() == Ok(consulate))
        };
        if country == self.country {
            return Some(lists(&self.own_policy));
        }
        let policies = self.peer_policies.read().unwrap_or_else(|e| e.into_inner());
        policies.get(&country).map(lists)
    }

    /// A message sent by a consulate acting for the sending country: only a
    /// consulate, and only under a delegation that country has recorded.
    fn check_delegation(&self, actor: &Actor) -> Result<(), Refusal> {
        let Some(acting) = actor.delegated else {
            return Ok(());
        };
        let country = actor.country;
        if acting == country {
            return Err(refuse(
                Rule::Permission,
                Reason::new(Code::DelegationOwnCountry)
                    .with("field", "sender.delegated_consulate_country")
                    .with("country", acting),
                format!(
                    "sender.delegated_consulate_country: {acting} is the sender's own country; a delegation is to another country's consulate"
                ),
            ));
        }
        if actor.role != Role::Consulate {
            return Err(refuse(
                Rule::Permission,
                Reason::new(Code::DelegationNotConsulate)
                    .with("acting", acting)
                    .with("country", country)
                    .with("role", actor.role.as_str()),
                format!(
                    "a delegation lets {acting}'s consulate act for {country}; a {} agency of {acting} may not act for {country}",
                    actor.role.as_str()
                ),
            ));
        }
        match self.lists_delegation(country, acting) {
            Some(true) => Ok(()),
            Some(false) => Err(refuse(
                Rule::Permission,
                Reason::new(Code::DelegationNotListed)
                    .with("acting", acting)
                    .with("country", country),
                format!(
                    "{country}'s gateway does not list a delegation to {acting}'s consulate, so {acting}'s consulate may not act for {country}; {country} must add [[delegations]] consulate_country = \"{acting}\" (with {acting}'s agency CA) to its gateway config"
                ),
            )),
            None => Err(refuse(
                Rule::Order,
                Reason::new(Code::PolicyUnknownFinal).with("country", country),
                format!(
                    "{country}'s reception policy, which lists its delegations, is not known here: it could not be fetched from {country}'s gateway, even on this message's arrival. This message is refused for good; once {country}'s gateway answers, send the handoff again as a new message"
                ),
            )),
        }
    }

    /// Withdraws a case; an agreed arrival gives its place back at the origin.
    fn withdraw(
        &self,
        tx: &dyn CasesTx,
        case: CaseView,
        step: &Step<'_>,
    ) -> Result<Result<Applied, Refusal>, TxError> {
        if case.state() == CaseState::ArrivalAgreed {
            self.release_capacity(tx, &case)?;
        }
        self.move_one(tx, case, step, |case| {
            case.state = CaseState::Withdrawn as i32
        })
    }

    /// Records a message that the rules refused, in its case if there is one,
    /// so that the receiving side's timeline shows it.
    pub fn record_refused(
        &self,
        tx: &dyn CasesTx,
        step: &Step<'_>,
        refusal: &Refusal,
    ) -> Result<(), TxError> {
        if let Some(mut case) = load(tx, &step.body.case_id)? {
            let mut entry = timeline_entry(step, DeliveryState::Received);
            entry.refused = refusal.message.clone();
            entry.refused_detail = Some(refusal.detail());
            case.timeline.push(entry);
            save(tx, &case)?;
        }
        Ok(())
    }

    /// Opens a case with an advance notice: the best-interest gate and family group.
    fn open(
        &self,
        tx: &dyn CasesTx,
        step: &Step<'_>,
        notice: &v1::AdvanceNotice,
    ) -> Result<Result<Applied, Refusal>, TxError> {
        let id = &step.body.case_id;
        let prefix = format!("{}-", step.sender);
        if !id.starts_with(&prefix) {
            return Ok(Err(refuse(
                Rule::Content,
                Reason::new(Code::CaseIdPrefix)
                    .with("field", "case_id")
                    .with("country", step.sender)
                    .with("prefix", &prefix),
                format!(
                    "case_id: a case opened by {} must start with {prefix}, e.g. {prefix}2026-0001",
                    step.sender
                ),
            )));
        }
        if let Some(existing) = load(tx, id)? {
            return Ok(Err(refuse(
                Rule::Order,
                Reason::new(Code::CaseExists)
                    .with("case", id)
                    .with("state", state_name(existing.state())),
                format!(
                    "case {id} exists already ({}): an advance notice opens a case once",
                    state_name(existing.state())
                ),
            )));
        }
        let relaxed = match self.best_interest_gate(step, notice) {
            Ok(relaxed) => relaxed,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if !notice.family_group_id.is_empty() {
            let key = family_key(step.sender.as_str(), &notice.family_group_id);
            let mut members = family_members(tx, step.sender.as_str(), &notice.family_group_id)?;
            members.push(id.clone());
            tx.insert(&key, Family { case_ids: members }.encode_to_vec())?;
        }
        let mut case = CaseView {
            case_id: id.clone(),
            destination_country: step.sender.to_string(),
            origin_country: step.recipient.to_string(),
            state: CaseState::Notified as i32,
            family_group_id: notice.family_group_id.clone(),
            companionship: notice.companionship,
            best_interest_relaxed: relaxed,
            age_band: age_band(notice.child.as_ref(), step.sent_at()) as i32,
            sex: notice.child.as_ref().map_or(0, |child| child.sex),
            ..CaseView::default()
        };
        case.timeline
            .push(timeline_entry(step, self.delivery_for(step)));
        save(tx, &case)?;
        Ok(Ok(Applied {
            cases: vec![id.clone()],
            state: CaseState::Notified,
        }))
    }

    /// No return without a best-interest determination by a child-protection
    /// or judicial authority that found return in the child's interest.
    /// Returns whether the gate was relaxed under a bilateral agreement.
    fn best_interest_gate(
        &self,
        step: &Step<'_>,
        notice: &v1::AdvanceNotice,
    ) -> Result<bool, Refusal> {
        let determination = notice.best_interest.clone().unwrap_or_default();
        let other = if step.sender == self.country {
            step.recipient
        } else {
            step.sender
        };
        let relaxed = match determination.authority_kind() {
            v1::DeterminingAuthority::ChildProtection | v1::DeterminingAuthority::Judicial => false,
            v1::DeterminingAuthority::Migration if self.relaxed_best_interest.contains(&other) => {
                true
            }
            _ => {
                return Err(refuse(
                    Rule::Content,
                    Reason::new(Code::BestInterestAuthority)
                        .with("field", "advance_notice.best_interest.authority_kind")
                        .with("country", self.country)
                        .with("other", other),
                    format!(
                        "advance_notice.best_interest.authority_kind: the best-interest determination must be made by a child-protection or judicial authority, not by migration; no agreement between {} and {other} relaxes this",
                        self.country
                    ),
                ));
            }
        };
        match determination.outcome() {
            v1::BestInterestOutcome::Return | v1::BestInterestOutcome::ReturnWithConditions => {
                Ok(relaxed)
            }
            _ => Err(refuse(
                Rule::Content,
                Reason::new(Code::BestInterestOutcome)
                    .with("field", "advance_notice.best_interest.outcome"),
                "advance_notice.best_interest.outcome: the determination does not find return in the child's best interest, so no return can be notified",
            )),
        }
    }

    fn delivery_for(&self, step: &Step<'_>) -> DeliveryState {
        if step.sender == self.country {
            DeliveryState::Queued
        } else {
            DeliveryState::Received
        }
    }

    /// Moves only the message's own case.
    fn move_one(
        &self,
        tx: &dyn CasesTx,
        case: CaseView,
        step: &Step<'_>,
        change: impl Fn(&mut CaseView),
    ) -> Result<Result<Applied, Refusal>, TxError> {
        self.move_all(tx, vec![case], step, |case| {
            change(case);
            if case.state() == CaseState::Withdrawn {
                case.open_proposal = None;
            }
        })
    }

    /// The children a family group sends together: every member not withdrawn.
    fn travelling_together(
        &self,
        tx: &dyn CasesTx,
        case: &CaseView,
    ) -> Result<BTreeSet<String>, TxError> {
        if case.family_group_id.is_empty() {
            return Ok(BTreeSet::from([case.case_id.clone()]));
        }
        let mut together = BTreeSet::new();
        for id in family_members(tx, &case.destination_country, &case.family_group_id)? {
            if let Some(member) = load(tx, &id)?
                && member.state() != CaseState::Withdrawn
            {
                together.insert(id);
            }
        }
        Ok(together)
    }

    /// Checks that `listed` is exactly the group travelling together.
    fn whole_group(
        &self,
        tx: &dyn CasesTx,
        case: &CaseView,
        listed: &[String],
        field: &str,
    ) -> Result<Result<Vec<CaseView>, Refusal>, TxError> {
        let together = self.travelling_together(tx, case)?;
        let listed: BTreeSet<String> = if listed.is_empty() {
            BTreeSet::from([case.case_id.clone()])
        } else {
            listed.iter().cloned().collect()
        };
        if listed != together {
            let missing: Vec<&str> = together.difference(&listed).map(String::as_str).collect();
            let extra: Vec<&str> = listed.difference(&together).map(String::as_str).collect();
            let members = together.iter().cloned().collect::<Vec<_>>().join(", ");
            let reason = Reason::new(Code::FamilySplit)
                .with("field", field)
                .with("group", &case.family_group_id)
                .with("members", &members)
                .with("missing", missing.join(", "))
                .with("extra", extra.join(", "));
            let mut problem = format!(
                "{field}: families travel together: family group {} is {} (withdrawn children excepted)",
                case.family_group_id, members
            );
            if !missing.is_empty() {
                problem.push_str(&format!("; missing {}", missing.join(", ")));
            }
            if !extra.is_empty() {
                problem.push_str(&format!("; not of this group {}", extra.join(", ")));
            }
            return Ok(Err(refuse(Rule::Content, reason, problem)));
        }
        let mut members = Vec::new();
        for id in &listed {
            match load(tx, id)? {
                Some(member) => members.push(member),
                None => {
                    return Ok(Err(refuse(
                        Rule::Order,
                        Reason::new(Code::NoSuchCase)
                            .with("field", field)
                            .with("case", id),
                        format!("{field}: there is no case {id} here"),
                    )));
                }
            }
        }
        Ok(Ok(members))
    }

    fn propose(
        &self,
        tx: &dyn CasesTx,
        case: CaseView,
        step: &Step<'_>,
        proposal: &ArrivalProposal,
    ) -> Result<Result<Applied, Refusal>, TxError> {
        let members =
            match self.whole_group(tx, &case, &proposal.case_ids, "arrival_proposal.case_ids")? {
                Ok(members) => members,
                Err(refusal) => return Ok(Err(refusal)),
            };
        if let Some(member) = members
            .iter()
            .find(|m| !allowed_next(m.state()).contains(&Kind::Proposal))
        {
            return Ok(Err(out_of_order(member, Kind::Proposal)));
        }
        if let Err(refusal) = check_escort(&members, proposal) {
            return Ok(Err(refusal));
        }
        let companionships: Vec<Companionship> =
            members.iter().map(CaseView::companionship).collect();
        if let Err(refusal) = self.check_window(
            &case,
            proposal_arrival(proposal),
            &proposal.point_of_entry,
            &proposal.time_zone,
            &companionships,
            step,
        ) {
            return Ok(Err(refusal));
        }
        let mut stored = proposal.clone();
        stored.case_ids = members.iter().map(|m| m.case_id.clone()).collect();
        self.move_all(tx, members, step, |member| {
            member.state = CaseState::ArrivalProposed as i32;
            member.open_proposal = Some(stored.clone());
        })
    }

    fn respond(
        &self,
        tx: &dyn CasesTx,
        case: CaseView,
        step: &Step<'_>,
        response: &v1::ArrivalResponse,
    ) -> Result<Result<Applied, Refusal>, TxError> {
        let Some(open) = case.open_proposal.clone() else {
            return Ok(Err(refuse(
                Rule::Order,
                Reason::new(Code::NoOpenProposal).with("case", &case.case_id),
                format!(
                    "case {} has no open proposal: it was countered or declined; wait for the destination's new arrival_proposal",
                    case.case_id
                ),
            )));
        };
        if response.proposal_id != open.proposal_id {
            return Ok(Err(refuse(
                Rule::Order,
                Reason::new(Code::ProposalIdMismatch)
                    .with("field", "arrival_response.proposal_id")
                    .with("case", &case.case_id)
                    .with("open", &open.proposal_id)
                    .with("given", &response.proposal_id),
                format!(
                    "arrival_response.proposal_id: the open proposal of case {} is {:?}, not {:?}",
                    case.case_id, open.proposal_id, response.proposal_id
                ),
            )));
        }
        let members = match self.whole_group(tx, &case, &open.case_ids, "arrival_response")? {
            Ok(members) => members,
            Err(refusal) => return Ok(Err(refusal)),
        };
        match &response.decision {
            Some(Decision::Accept(_)) => {
                if let Err(refusal) = self.reserve_capacity(tx, &case, &open, members.len())? {
                    return Ok(Err(refusal));
                }
                self.move_all(tx, members, step, |member| {
                    member.state = CaseState::ArrivalAgreed as i32;
                    member.agreed_arrival = Some(open.clone());
                    member.open_proposal = None;
                })
            }
            Some(Decision::Counter(counter)) => {
                let companionships: Vec<Companionship> =
                    members.iter().map(CaseView::companionship).collect();
                let arrival = counter.arrival.as_ref().and_then(crate::clock::from_wire);
                if let Err(refusal) = self.check_window(
                    &case,
                    arrival,
                    &open.point_of_entry,
                    &counter.time_zone,
                    &companionships,
                    step,
                ) {
                    return Ok(Err(refusal));
                }
                self.move_all(tx, members, step, await_proposal)
            }
            Some(Decision::Decline(_)) | None => self.move_all(tx, members, step, await_proposal),
        }
    }

    fn hand_over(
        &self,
        tx: &dyn CasesTx,
        case: CaseView,
        step: &Step<'_>,
        handoff: &v1::HandoffAck,
    ) -> Result<Result<Applied, Refusal>, TxError> {
        let members =
            match self.whole_group(tx, &case, &handoff.case_ids, "handoff_ack.case_ids")? {
                Ok(members) => members,
                Err(refusal) => return Ok(Err(refusal)),
            };
        if let Some(member) = members
            .iter()
            .find(|m| m.state() != CaseState::ArrivalAgreed)
        {
            return Ok(Err(out_of_order(member, Kind::Handoff)));
        }
        let remark = match self.check_handoff_time(&case, step.sender, step.sent_at()) {
            Ok(remark) => remark,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let at = step.body.created_at;
        self.move_all_flagged(tx, members, step, remark.as_ref(), |member| {
            member.state = CaseState::HandedOver as i32;
            member.handed_over_at = at;
        })
    }

    /// The origin's case timing: both gateways apply the origin's.
    fn origin_timing(&self, case: &CaseView, sender: Country) -> Result<v1::CaseTiming, Refusal> {
        self.origin_policy(case, sender)
            .map(|policy| policy::timing(&policy))
    }

    /// A handoff is acknowledged no earlier than the margin before the agreed
    /// arrival. Much later than the arrival it is still accepted (the child
    /// is in custody; refusing the record would not undo that) and the
    /// returned remark says how late, for both timelines.
    fn check_handoff_time(
        &self,
        case: &CaseView,
        sender: Country,
        at: jiff::Timestamp,
    ) -> Result<Option<Remark>, Refusal> {
        let Some((arrival, time_zone)) = agreed_arrival(case) else {
            return Ok(None);
        };
        let timing = self.origin_timing(case, sender)?;
        let margin = hours(timing.handoff_margin_hours);
        let earliest = arrival.checked_sub(margin).unwrap_or(arrival);
        if at < earliest {
            return Err(too_early(
                Timing::HandoffMargin,
                earliest,
                &time_zone,
                format!(
                    "handoff_ack: case {} is agreed to arrive at {}; {} acknowledges a handoff no earlier than {} hours before the agreed arrival ([case] handoff_margin_hours)",
                    case.case_id,
                    local(arrival, &time_zone),
                    case.origin_country,
                    timing.handoff_margin_hours
                ),
            ));
        }
        let late_after = hours(timing.handoff_late_after_hours);
        let late = at.duration_since(arrival);
        if late > late_after {
            return Ok(Some(Remark {
                reason: Reason::new(Code::HandoffLate)
                    .with("hours", late.as_hours())
                    .with("arrival", crate::clock::rfc3339_in(arrival, &time_zone))
                    .with("time_zone", &time_zone)
                    .with("country", &case.origin_country)
                    .with("late_after", timing.handoff_late_after_hours),
                message: format!(
                    "late: acknowledged {} hours after the agreed arrival at {} (over {}'s handoff_late_after_hours of {})",
                    late.as_hours(),
                    local(arrival, &time_zone),
                    case.origin_country,
                    timing.handoff_late_after_hours
                ),
            }));
        }
        Ok(None)
    }

    /// Confirms a reception ([`check_reception_time`] has passed in [`Rules::may_take`]).
    fn receive(
        &self,
        tx: &dyn CasesTx,
        case: CaseView,
        step: &Step<'_>,
    ) -> Result<Result<Applied, Refusal>, TxError> {
        let at = step.body.created_at;
        self.move_one(tx, case, step, |member| {
            member.state = CaseState::Received as i32;
            member.received_at = at;
        })
    }

    /// Whether `actor` may take a step of `kind` on `case` at `at`: the role
    /// matrix, a delegation, the case's parties and sides, the state machine
    /// and, for a handoff and a reception, the time rules. Every step passes
    /// here in [`Rules::apply`], and [`Rules::allowed_steps`] asks it of every
    /// kind, so that the steps a reader is offered and the steps refused
    /// cannot disagree. What depends on the message itself (a proposal's
    /// window and family, an answer's proposal id, a follow-up's days) is
    /// checked by `apply` alone.
    pub fn may_take(
        &self,
        case: &CaseView,
        actor: &Actor,
        recipient: Country,
        kind: Kind,
        at: jiff::Timestamp,
    ) -> Result<(), Refusal> {
        self.may_send_as(actor, kind)?;
        check_parties(case, actor.country, recipient, kind)?;
        if let Some(acting) = actor.delegated {
            delegated_may_see(case, actor.country, acting)?;
        }
        if !allowed_next(case.state()).contains(&kind) {
            return Err(out_of_order(case, kind));
        }
        match kind {
            Kind::Handoff => self
                .check_handoff_time(case, actor.country, at)
                .map(|_late| ()),
            Kind::Reception => check_reception_time(case, at),
            _ => Ok(()),
        }
    }

    /// The role matrix and, for a consulate acting for another country, the delegation.
    fn may_send_as(&self, actor: &Actor, kind: Kind) -> Result<(), Refusal> {
        if !may_send(actor.role, kind) {
            return Err(refuse(
                Rule::Permission,
                Reason::new(Code::RoleMayNotSend)
                    .with("role", actor.role.as_str())
                    .with("step", kind.name())
                    .with("roles", roles_for(kind)),
                format!(
                    "a {} agency may not send {}; it is sent by a {} agency",
                    actor.role.as_str(),
                    kind.name(),
                    roles_for(kind)
                ),
            ));
        }
        self.check_delegation(actor)
    }

    /// The steps `actor` may take on `case` now, as payload kind names
    /// (`arrival_response`): every kind asked of [`Rules::may_take`] at
    /// [`Rules::now`], so a step refused only for being too early now is not
    /// listed. A follow-up is listed once one the origin expects is due
    /// within its tolerance, or once every expected one is reported.
    pub fn allowed_steps(&self, case: &CaseView, actor: &Actor) -> Vec<String> {
        let now = self.now();
        let other = if case.destination_country == actor.country.as_str() {
            &case.origin_country
        } else {
            &case.destination_country
        };
        let Ok(recipient) = other.parse::<Country>() else {
            return Vec::new();
        };
        Kind::ALL
            .iter()
            .filter(|kind| self.may_take(case, actor, recipient, **kind, now).is_ok())
            .filter(|kind| **kind != Kind::FollowUp || self.follow_up_open(case, now))
            .map(|kind| kind.name().to_owned())
            .collect()
    }

    /// The follow-ups the origin expects of a received case: for each of its
    /// `follow_up_days`, the due instant, the earliest a report is accepted
    /// (the rule [`Rules::follow_up`] applies) and whether one was reported.
    /// Empty before the reception or while the origin's policy is unknown.
    pub fn follow_ups(&self, case: &CaseView) -> Vec<v1::FollowUpDue> {
        let Some(received) = case.received_at.as_ref().and_then(crate::clock::from_wire) else {
            return Vec::new();
        };
        let Ok(timing) = self.origin_timing(case, self.country) else {
            return Vec::new();
        };
        let reported = reported_follow_ups(case);
        let wire = |at: jiff::Timestamp| crate::clock::wire(at);
        policy::follow_up_days(&timing)
            .into_iter()
            .map(|days| v1::FollowUpDue {
                days,
                due: Some(wire(
                    received
                        .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days)))
                        .unwrap_or(received),
                )),
                earliest: Some(wire(follow_up_earliest(received, days, &timing))),
                reported: reported.contains(&days),
            })
            .collect()
    }

    /// Whether a follow-up is worth offering now: one the origin expects is
    /// unreported and within its tolerance, or every one is reported (a
    /// further report is still accepted).
    fn follow_up_open(&self, case: &CaseView, now: jiff::Timestamp) -> bool {
        let expected = self.follow_ups(case);
        let open = |due: &v1::FollowUpDue| {
            !due.reported
                && due
                    .earliest
                    .as_ref()
                    .and_then(crate::clock::from_wire)
                    .is_some_and(|earliest| earliest <= now)
        };
        expected.iter().all(|due| due.reported) || expected.iter().any(open)
    }

    /// A follow-up at N days comes no earlier than N days after the
    /// reception, less the origin's tolerance.
    fn follow_up(
        &self,
        tx: &dyn CasesTx,
        case: CaseView,
        step: &Step<'_>,
        report: &v1::FollowUpReport,
    ) -> Result<Result<Applied, Refusal>, TxError> {
        let received = case.received_at.as_ref().and_then(crate::clock::from_wire);
        if let Some(received) = received {
            let timing = match self.origin_timing(&case, step.sender) {
                Ok(timing) => timing,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let earliest = follow_up_earliest(received, report.days_since_return, &timing);
            if step.sent_at() < earliest {
                let time_zone = agreed_arrival(&case).map(|(_, tz)| tz).unwrap_or_default();
                return Ok(Err(too_early(
                    Timing::FollowUpPeriod,
                    earliest,
                    &time_zone,
                    format!(
                        "follow_up_report.days_since_return: case {} was received at {}; a follow-up at {} days is reported no earlier than {} days after the reception, less {}'s tolerance of {} days ([case] follow_up_tolerance_days)",
                        case.case_id,
                        local(received, &time_zone),
                        report.days_since_return,
                        report.days_since_return,
                        case.origin_country,
                        timing.follow_up_tolerance_days
                    ),
                )));
            }
        }
        self.move_one(tx, case, step, |member| {
            member.state = CaseState::FollowUp as i32
        })
    }

    /// Applies the same change to every member and records the message in each timeline.
    fn move_all(
        &self,
        tx: &dyn CasesTx,
        members: Vec<CaseView>,
        step: &Step<'_>,
        change: impl Fn(&mut CaseView),
    ) -> Result<Result<Applied, Refusal>, TxError> {
        self.move_all_flagged(tx, members, step, None, change)
    }

    /// [`Rules::move_all`], with a remark of the rules on each timeline entry.
    fn move_all_flagged(
        &self,
        tx: &dyn CasesTx,
        members: Vec<CaseView>,
        step: &Step<'_>,
        remark: Option<&Remark>,
        change: impl Fn(&mut CaseView),
    ) -> Result<Result<Applied, Refusal>, TxError> {
        let mut cases = Vec::new();
        let mut state = CaseState::Unspecified;
        for mut member in members {
            change(&mut member);
            let mut entry = timeline_entry(step, self.delivery_for(step));
            if let Some(remark) = remark {
                entry.flag.clone_from(&remark.message);
                entry.flag_detail = Some(remark.reason.detail(&remark.message));
            }
            member.timeline.push(entry);
            if member.case_id == step.body.case_id {
                state = member.state();
            }
            save(tx, &member)?;
            cases.push(member.case_id);
        }
        Ok(Ok(Applied { cases, state }))
    }

    /// The reception policy of the case's origin: this gateway's own, or the
    /// peer's as published. Without it, a submit may be tried again later; a
    /// message that arrived is refused for good (its dedupe record stays).
    fn origin_policy(&self, case: &CaseView, sender: Country) -> Result<ReceptionPolicy, Refusal> {
        if case.origin_country == self.country.as_str() {
            return Ok(self.own_policy.clone());
        }
        let origin: Country = case.origin_country.parse().map_err(|_| {
            refuse(
                Rule::Content,
                Reason::new(Code::CaseOriginInvalid),
                "the case's origin is not a country",
            )
        })?;
        let policies = self.peer_policies.read().unwrap_or_else(|e| e.into_inner());
        policies.get(&origin).cloned().ok_or_else(|| {
            let unknown = format!(
                "{origin}'s reception policy is not known here yet ({origin}'s gateway has not been reachable since this gateway started)"
            );
            let (code, what_to_do) = if sender == self.country {
                (Code::PolicyUnknown, "try again once it is")
            } else {
                (
                    Code::PolicyUnknownFinal,
                    "this message is refused for good; once it is known, send it again as a new message",
                )
            };
            refuse(
                Rule::Order,
                Reason::new(code).with("country", origin),
                format!("{unknown}: {what_to_do}"),
            )
        })
    }

    fn check_window(
        &self,
        case: &CaseView,
        arrival: Option<jiff::Timestamp>,
        point_code: &str,
        time_zone: &str,
        companionships: &[Companionship],
        step: &Step<'_>,
    ) -> Result<(), Refusal> {
        let policy = self.origin_policy(case, step.sender)?;
        let point = policy::point(&policy, point_code).ok_or_else(|| {
            let known: Vec<&str> = policy.points.iter().map(|p| p.code.as_str()).collect();
            refuse(
                Rule::Content,
                Reason::new(Code::UnknownPointOfEntry)
                    .with("field", "point_of_entry")
                    .with("point", point_code)
                    .with("country", &case.origin_country)
                    .with("known", known.join(", ")),
                format!(
                    "point_of_entry: {point_code:?} is not a point of entry of {} (known: {})",
                    case.origin_country,
                    known.join(", ")
                ),
            )
        })?;
        let arrival = arrival.ok_or_else(|| {
            refuse(
                Rule::Content,
                Reason::new(Code::FieldRequired).with("field", "arrival"),
                "arrival: a valid instant is required",
            )
        })?;
        policy::check_arrival(point, arrival, time_zone, companionships, step.now)
            .map_err(|outside| refuse(Rule::Content, outside.refusal.clone(), outside.to_string()))
    }

    /// The origin counts the children agreed per point and local day.
    fn reserve_capacity(
        &self,
        tx: &dyn CasesTx,
        case: &CaseView,
        proposal: &ArrivalProposal,
        children: usize,
    ) -> Result<Result<(), Refusal>, TxError> {
        if case.origin_country != self.country.as_str() {
            return Ok(Ok(()));
        }
        let Some(point) = policy::point(&self.own_policy, &proposal.point_of_entry) else {
            return Ok(Err(refuse(
                Rule::Content,
                Reason::new(Code::UnknownPointOfEntry)
                    .with("field", "point_of_entry")
                    .with("point", &proposal.point_of_entry)
                    .with("country", self.country),
                format!(
                    "point_of_entry {} is not in this country's policy",
                    proposal.point_of_entry
                ),
            )));
        };
        let Some(arrival) = proposal_arrival(proposal) else {
            return Ok(Err(refuse(
                Rule::Content,
                Reason::new(Code::FieldRequired).with("field", "arrival"),
                "arrival: a valid instant is required",
            )));
        };
        let date = policy::local_date(point, arrival);
        let key = capacity_key(&point.code, &date);
        let taken = places_taken(tx, &key)?;
        let wanted = taken + children as u64;
        if wanted > u64::from(point.capacity_per_day) {
            return Ok(Err(refuse(
                Rule::Content,
                Reason::new(Code::CapacityFull)
                    .with("point", &point.code)
                    .with("date", &date)
                    .with("capacity", point.capacity_per_day)
                    .with("taken", taken),
                format!(
                    "{} can receive {} children on {date}; {taken} are agreed already",
                    point.code, point.capacity_per_day
                ),
            )));
        }
        tx.insert(&key, wanted.to_be_bytes().to_vec())?;
        Ok(Ok(()))
    }

    /// The origin gives back the place of one withdrawn child on the agreed
    /// point and local day, never going below zero. A point no longer in the
    /// policy has no counter to give back to.
    fn release_capacity(&self, tx: &dyn CasesTx, case: &CaseView) -> Result<(), TxError> {
        if case.origin_country != self.country.as_str() {
            return Ok(());
        }
        let Some(agreed) = &case.agreed_arrival else {
            return Ok(());
        };
        let (Some(point), Some(arrival)) = (
            policy::point(&self.own_policy, &agreed.point_of_entry),
            proposal_arrival(agreed),
        ) else {
            return Ok(());
        };
        let key = capacity_key(&point.code, &policy::local_date(point, arrival));
        let left = places_taken(tx, &key)?.saturating_sub(1);
        tx.insert(&key, left.to_be_bytes().to_vec())?;
        Ok(())
    }
}

/// The earliest instant a follow-up at `days` is accepted: `days` after the
/// reception, less the origin's tolerance. [`Rules::follow_up`] refuses an
/// earlier report; [`Rules::follow_ups`] shows the instant in advance.
fn follow_up_earliest(
    received: jiff::Timestamp,
    days: u32,
    timing: &v1::CaseTiming,
) -> jiff::Timestamp {
    let days = i64::from(days) - i64::from(timing.follow_up_tolerance_days);
    received
        .checked_add(jiff::SignedDuration::from_hours(24 * days.max(0)))
        .unwrap_or(received)
}

/// The follow-up days that applied reports in the timeline give.
fn reported_follow_ups(case: &CaseView) -> BTreeSet<u32> {
    case.timeline
        .iter()
        .filter(|entry| entry.refused.is_empty())
        .filter_map(|entry| match entry.facts.as_ref()?.payload.as_ref()? {
            v1::timeline_facts::Payload::FollowUpReport(report) => Some(report.days_since_return),
            _ => None,
        })
        .collect()
}

/// A reception is confirmed no earlier than the handoff it follows.
fn check_reception_time(case: &CaseView, at: jiff::Timestamp) -> Result<(), Refusal> {
    let handed = case
        .handed_over_at
        .as_ref()
        .and_then(crate::clock::from_wire);
    if let Some(handed) = handed
        && at < handed
    {
        let time_zone = agreed_arrival(case).map(|(_, tz)| tz).unwrap_or_default();
        return Err(too_early(
            Timing::ReceptionAfterHandoff,
            handed,
            &time_zone,
            format!(
                "reception_confirmation: case {} was handed over at {}; a reception is confirmed no earlier than the handoff",
                case.case_id,
                local(handed, &time_zone)
            ),
        ));
    }
    Ok(())
}

/// The places agreed so far under a capacity key.
fn places_taken(tx: &dyn CasesTx, key: &[u8]) -> Result<u64, TxError> {
    Ok(tx.get(key)?.map_or(0u64, |b| {
        u64::from_be_bytes(b.as_slice().try_into().unwrap_or([0; 8]))
    }))
}

/// The consulate's country when a message is sent by a consulate acting for
/// the sending country under a delegation. A code that is not a country is
/// refused rather than read as no delegation, so that it cannot pass as the
/// sending country's own consulate.
pub fn delegated_consulate(body: &EnvelopeBody) -> Result<Option<Country>, Refusal> {
    let code = body
        .sender
        .as_ref()
        .map_or("", |sender| sender.delegated_consulate_country.as_str());
    if code.is_empty() {
        return Ok(None);
    }
    code.parse().map(Some).map_err(|bad| {
        refuse(
            Rule::Content,
            Reason::new(Code::FieldNotCountry)
                .with("field", "sender.delegated_consulate_country")
                .with("value", code),
            format!("sender.delegated_consulate_country: {bad}"),
        )
    })
}

/// Whether `delegated`'s consulate, acting for `origin` under `origin`'s
/// delegation, may see or act in `case`: only in a case of which `origin` is
/// the origin (it receives children for `origin`, it does not send them), and
/// never in one of which `delegated` is itself the destination (the returning
/// state would then confirm custody on the receiving state's behalf). Every
/// read and every step by a delegated consulate passes here.
pub fn delegated_may_see(
    case: &CaseView,
    origin: Country,
    delegated: Country,
) -> Result<(), Refusal> {
    if case.origin_country != origin.as_str() {
        return Err(refuse(
            Rule::Permission,
            Reason::new(Code::DelegatedNotOrigin)
                .with("acting", delegated)
                .with("country", origin)
                .with("case", &case.case_id)
                .with("case_origin", &case.origin_country),
            format!(
                "{delegated}'s consulate acts for {origin} only in cases of which {origin} is the origin; case {} returns a child to {}",
                case.case_id, case.origin_country
            ),
        ));
    }
    if case.destination_country == delegated.as_str() {
        return Err(refuse(
            Rule::Permission,
            Reason::new(Code::DelegatedIsDestination)
                .with("acting", delegated)
                .with("country", origin)
                .with("case", &case.case_id),
            format!(
                "{delegated} is the destination of case {}; its consulate cannot take custody for {origin}, nor read the case on {origin}'s behalf",
                case.case_id
            ),
        ));
    }
    Ok(())
}

fn proposal_arrival(proposal: &ArrivalProposal) -> Option<jiff::Timestamp> {
    proposal.arrival.as_ref().and_then(crate::clock::from_wire)
}

/// A countered or declined proposal is closed: the case awaits a new one.
fn await_proposal(member: &mut CaseView) {
    member.state = CaseState::AwaitingProposal as i32;
    member.open_proposal = None;
}

/// An unaccompanied or separated child travels with at least one named
/// escort officer: no one else is responsible for the child on the way.
fn check_escort(members: &[CaseView], proposal: &ArrivalProposal) -> Result<(), Refusal> {
    let alone = members.iter().find(|m| {
        matches!(
            m.companionship(),
            Companionship::Unaccompanied | Companionship::Separated
        )
    });
    let named = proposal
        .escort_officers
        .iter()
        .any(|officer| !officer.name.trim().is_empty());
    match alone {
        Some(child) if !named => Err(refuse(
            Rule::Content,
            Reason::new(Code::EscortRequired)
                .with("field", "arrival_proposal.escort_officers")
                .with("case", &child.case_id)
                .with(
                    "companionship",
                    need_to_know::words(child.companionship().as_str_name(), "COMPANIONSHIP_"),
                ),
            format!(
                "arrival_proposal.escort_officers: case {} is of a child travelling {}: the proposal must name at least one escort officer (name/institution)",
                child.case_id,
                need_to_know::words(child.companionship().as_str_name(), "COMPANIONSHIP_")
            ),
        )),
        _ => Ok(()),
    }
}

/// The agreed arrival instant of a case and its point's time zone.
fn agreed_arrival(case: &CaseView) -> Option<(jiff::Timestamp, String)> {
    let agreed = case.agreed_arrival.as_ref()?;
    Some((proposal_arrival(agreed)?, agreed.time_zone.clone()))
}

fn hours(count: u32) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(i64::from(count))
}

/// An instant in a point's local time, with UTC for an unknown zone.
fn local(at: jiff::Timestamp, time_zone: &str) -> String {
    need_to_know::local_time(Some(&crate::clock::wire(at)), time_zone)
}

/// A refusal for time: the rule, the earliest allowed instant, and why.
fn too_early(timing: Timing, earliest: jiff::Timestamp, time_zone: &str, why: String) -> Refusal {
    refuse(
        Rule::TooEarly { timing, earliest },
        Reason::new(Code::TooEarly)
            .with("rule", timing.name())
            .with("earliest", crate::clock::rfc3339_in(earliest, time_zone))
            .with("time_zone", time_zone),
        format!(
            "{why}; too early now: the earliest allowed is {} ({earliest})",
            local(earliest, time_zone)
        ),
    )
}

/// The timeline entry of a message: the same on both gateways but for
/// delivery. It stores what its line is made from, not the line: each reader's
/// line is rendered from what it may see ([`need_to_know::case`]).
/// The child's age band at `at` (the notice), from its birth date or its
/// estimated age: the band is what the case keeps for statistics, so that
/// the birth date need not be kept outside the notice itself.
pub fn age_band(child: Option<&v1::Child>, at: jiff::Timestamp) -> v1::AgeBand {
    let years = match child.and_then(|child| child.age.as_ref()) {
        Some(v1::child::Age::EstimatedAgeYears(years)) => Some(i64::from(*years)),
        Some(v1::child::Age::BirthDate(born)) => years_at(born, at),
        None => None,
    };
    match years {
        Some(0..=4) => v1::AgeBand::UnderFive,
        Some(5..=11) => v1::AgeBand::FiveToEleven,
        Some(12..=17) => v1::AgeBand::TwelveToSeventeen,
        Some(18..) => v1::AgeBand::Adult,
        _ => v1::AgeBand::Unspecified,
    }
}

/// Whole years from `born` to the UTC date of `at`; `None` for an invalid date.
fn years_at(born: &v1::Date, at: jiff::Timestamp) -> Option<i64> {
    let born = jiff::civil::Date::new(
        i16::try_from(born.year).ok()?,
        i8::try_from(born.month).ok()?,
        i8::try_from(born.day).ok()?,
    )
    .ok()?;
    let today = at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let before_birthday = (today.month(), today.day()) < (born.month(), born.day());
    Some(i64::from(today.year() - born.year()) - i64::from(before_birthday))
}

fn timeline_entry(step: &Step<'_>, delivery: DeliveryState) -> TimelineEntry {
    TimelineEntry {
        message_id: step.body.message_id.clone(),
        kind: Kind::of(step.payload).name().to_owned(),
        sender: step.body.sender.clone(),
        at: step.body.created_at,
        summary: String::new(),
        refused: String::new(),
        delivery: delivery as i32,
        peer_refused: String::new(),
        flag: String::new(),
        facts: Some(need_to_know::facts(step.payload)),
        refused_detail: None,
        peer_refused_detail: None,
        flag_detail: None,
    }
}

/// Checks that the sender and recipient are the case's two countries, each in its part.
fn check_parties(
    case: &CaseView,
    sender: Country,
    recipient: Country,
    kind: Kind,
) -> Result<(), Refusal> {
    let (destination, origin) = (
        case.destination_country.as_str(),
        case.origin_country.as_str(),
    );
    let parties = [sender.as_str(), recipient.as_str()];
    if !(parties.contains(&destination) && parties.contains(&origin)) {
        return Err(refuse(
            Rule::Permission,
            Reason::new(Code::NotAParty)
                .with("case", &case.case_id)
                .with("country", sender)
                .with("destination", destination)
                .with("origin", origin),
            format!(
                "case {} is between {destination} and {origin}; {} may not write to it",
                case.case_id, sender
            ),
        ));
    }
    match kind.sent_by_destination() {
        Some(true) if sender.as_str() != destination => Err(refuse(
            Rule::Permission,
            Reason::new(Code::WrongSide)
                .with("step", kind.name())
                .with("side", "destination")
                .with("country", destination)
                .with("case", &case.case_id),
            format!(
                "{} is sent by the destination ({destination}) of case {}",
                kind.name(),
                case.case_id
            ),
        )),
        Some(false) if sender.as_str() != origin => Err(refuse(
            Rule::Permission,
            Reason::new(Code::WrongSide)
                .with("step", kind.name())
                .with("side", "origin")
                .with("country", origin)
                .with("case", &case.case_id),
            format!(
                "{} is sent by the origin ({origin}) of case {}",
                kind.name(),
                case.case_id
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delegated_consulate_sees_only_cases_its_delegating_country_receives_from_others() {
        let case = |id: &str, destination: &str, origin: &str| CaseView {
            case_id: id.into(),
            destination_country: destination.into(),
            origin_country: origin.into(),
            ..CaseView::default()
        };
        let (hn, gt): (Country, Country) = ("HN".parse().unwrap(), "GT".parse().unwrap());
        assert_eq!(delegated_may_see(&case("MX-1", "MX", "HN"), hn, gt), Ok(()));
        let not_origin = delegated_may_see(&case("HN-1", "HN", "MX"), hn, gt).unwrap_err();
        assert_eq!(not_origin.rule, Rule::Permission);
        assert!(
            not_origin
                .message
                .contains("GT's consulate acts for HN only in cases of which HN is the origin"),
            "{}",
            not_origin.message
        );
        let own_return = delegated_may_see(&case("GT-1", "GT", "HN"), hn, gt).unwrap_err();
        assert_eq!(own_return.rule, Rule::Permission);
        assert!(
            own_return.message.starts_with(
                "GT is the destination of case GT-1; its consulate cannot take custody for HN"
            ),
            "{}",
            own_return.message
        );
    }

    /// Without the origin's policy, a submit may be tried again; a message
    /// that arrived cannot (its dedupe record is permanent), and says so.
    #[test]
    fn an_unknown_origin_policy_refuses_an_arrival_for_good_and_a_submit_for_now() {
        let mx: Country = "MX".parse().unwrap();
        let gt: Country = "GT".parse().unwrap();
        let rules = Rules {
            country: mx,
            relaxed_best_interest: BTreeSet::new(),
            own_policy: ReceptionPolicy::default(),
            peer_policies: RwLock::new(BTreeMap::new()),
            clock: Clock::system(),
        };
        let case = CaseView {
            case_id: "MX-1".into(),
            destination_country: "MX".into(),
            origin_country: "GT".into(),
            ..CaseView::default()
        };
        let body = EnvelopeBody::default();
        let payload = Payload::CaseSummary(v1::CaseSummary::default());
        let step = |sender: Country, role: Role| Step {
            body: &body,
            payload: &payload,
            sender,
            role,
            recipient: if sender == mx { gt } else { mx },
            now: jiff::Timestamp::now(),
        };
        let submit = rules
            .origin_policy(&case, step(mx, Role::DestinationAuthority).sender)
            .unwrap_err();
        assert!(
            submit.message.ends_with("try again once it is"),
            "{}",
            submit.message
        );
        let arrival = rules
            .origin_policy(&case, step(gt, Role::ChildProtection).sender)
            .unwrap_err();
        assert!(
            arrival.message.contains("refused for good")
                && arrival.message.contains("send it again as a new message"),
            "{}",
            arrival.message
        );
    }

    #[test]
    fn the_role_matrix_matches_the_region() {
        use Kind::*;
        for kind in [Notice, Summary, Proposal, Withdrawal] {
            assert!(may_send(Role::DestinationAuthority, kind), "{kind:?}");
        }
        for kind in [Response, Reception, FollowUp, Summary, Handoff] {
            assert!(may_send(Role::ChildProtection, kind), "{kind:?}");
        }
        assert!(may_send(Role::Consulate, Handoff));
        for kind in [
            Notice, Summary, Proposal, Response, Reception, FollowUp, Withdrawal,
        ] {
            assert!(!may_send(Role::Consulate, kind), "{kind:?}");
        }
        assert!(!may_send(Role::DestinationAuthority, Response));
        assert!(!may_send(Role::ChildProtection, Notice));
    }

    #[test]
    fn nothing_follows_a_withdrawal_and_handoff_needs_an_agreement() {
        assert!(allowed_next(CaseState::Withdrawn).is_empty());
        assert!(!allowed_next(CaseState::ArrivalProposed).contains(&Kind::Handoff));
        assert!(allowed_next(CaseState::ArrivalAgreed).contains(&Kind::Handoff));
        assert!(
            !allowed_next(CaseState::ArrivalAgreed).contains(&Kind::Response),
            "agreed twice"
        );
        assert!(!allowed_next(CaseState::HandedOver).contains(&Kind::Withdrawal));
    }
}

#[cfg(test)]
mod allowed_steps {
    //! The steps offered to each reader, state by state: what
    //! [`Rules::may_take`] lets each role of each country do now.

    use super::*;

    fn rules(now: &str) -> Rules {
        let gt: Country = "GT".parse().unwrap();
        let gt_policy = policy::published(gt, &policy::dev_points(gt)).unwrap();
        let clock = Clock::adjustable();
        clock.advance_to(now.parse().unwrap()).unwrap();
        Rules {
            country: "MX".parse().unwrap(),
            relaxed_best_interest: BTreeSet::new(),
            own_policy: ReceptionPolicy::default(),
            peer_policies: RwLock::new(BTreeMap::from([(gt, gt_policy)])),
            clock,
        }
    }

    fn wire(at: &str) -> Option<pbjson_types::Timestamp> {
        let at: jiff::Timestamp = at.parse().unwrap();
        Some(pbjson_types::Timestamp {
            seconds: at.as_second(),
            nanos: 0,
        })
    }

    /// A case from MX to GT in `state`, agreed to arrive on 2027-01-12 at
    /// 10:00 in Guatemala, handed over then, received an hour later.
    fn case(state: CaseState) -> CaseView {
        let agreed = ArrivalProposal {
            proposal_id: "P1".into(),
            point_of_entry: "GT-TECUN-UMAN".into(),
            arrival: wire("2027-01-12T16:00:00Z"),
            time_zone: "America/Guatemala".into(),
            ..Default::default()
        };
        let later = |s: CaseState| state as i32 >= s as i32 && state != CaseState::Withdrawn;
        CaseView {
            case_id: "MX-1".into(),
            destination_country: "MX".into(),
            origin_country: "GT".into(),
            state: state as i32,
            open_proposal: (state == CaseState::ArrivalProposed).then(|| agreed.clone()),
            agreed_arrival: later(CaseState::ArrivalAgreed).then_some(agreed),
            handed_over_at: later(CaseState::HandedOver)
                .then(|| wire("2027-01-12T16:00:00Z"))
                .flatten(),
            received_at: later(CaseState::Received)
                .then(|| wire("2027-01-12T17:00:00Z"))
                .flatten(),
            ..CaseView::default()
        }
    }

    fn actor(country: &str, role: Role) -> Actor {
        Actor {
            country: country.parse().unwrap(),
            role,
            delegated: None,
        }
    }

    #[test]
    fn each_reader_is_offered_only_what_the_case_allows_its_role_now() {
        use CaseState::*;
        // 40 days after the reception: the handoff margin and the 30-day follow-up have come.
        let rules = rules("2027-02-21T17:00:00Z");
        let inm = actor("MX", Role::DestinationAuthority);
        let sbs = actor("GT", Role::ChildProtection);
        let consul = actor("GT", Role::Consulate);
        let dif = actor("MX", Role::ChildProtection);
        type Steps = &'static [&'static str];
        let table: &[(CaseState, Steps, Steps, Steps)] = &[
            // (state, INM of MX, SBS of GT, GT's consulate)
            (
                Notified,
                &["case_summary", "arrival_proposal", "case_withdrawal"],
                &["case_summary"],
                &[],
            ),
            (
                SummaryShared,
                &["case_summary", "arrival_proposal", "case_withdrawal"],
                &["case_summary"],
                &[],
            ),
            (
                ArrivalProposed,
                &["case_summary", "arrival_proposal", "case_withdrawal"],
                &["case_summary", "arrival_response"],
                &[],
            ),
            (
                AwaitingProposal,
                &["case_summary", "arrival_proposal", "case_withdrawal"],
                &["case_summary"],
                &[],
            ),
            (
                ArrivalAgreed,
                &["case_summary", "case_withdrawal"],
                &["case_summary", "handoff_ack"],
                &["handoff_ack"],
            ),
            (
                HandedOver,
                &["case_summary"],
                &["case_summary", "reception_confirmation"],
                &[],
            ),
            (
                Received,
                &["case_summary"],
                &["case_summary", "follow_up_report"],
                &[],
            ),
            (
                FollowUp,
                &["case_summary"],
                &["case_summary", "follow_up_report"],
                &[],
            ),
            (Withdrawn, &[], &[], &[]),
        ];
        for (state, by_inm, by_sbs, by_consul) in table {
            let case = case(*state);
            let steps = |who: &Actor| rules.allowed_steps(&case, who);
            assert_eq!(steps(&inm), *by_inm, "INM in {state:?}");
            assert_eq!(steps(&sbs), *by_sbs, "SBS in {state:?}");
            assert_eq!(steps(&consul), *by_consul, "the consul in {state:?}");
            // MX's child protection sends the origin's steps, and MX is not the origin.
            let by_dif: Vec<String> = steps(&dif);
            assert!(
                by_dif.iter().all(|step| step == "case_summary"),
                "DIF in {state:?}: {by_dif:?}"
            );
        }
    }

    #[test]
    fn a_step_that_is_only_too_early_now_is_not_offered() {
        let consul = actor("GT", Role::Consulate);
        let sbs = actor("GT", Role::ChildProtection);
        // A day before the agreed arrival: more than the 12-hour margin.
        let early = rules("2027-01-11T16:00:00Z");
        let agreed = case(CaseState::ArrivalAgreed);
        assert!(early.allowed_steps(&agreed, &consul).is_empty());
        let refusal = early
            .may_take(
                &agreed,
                &consul,
                "MX".parse().unwrap(),
                Kind::Handoff,
                early.now(),
            )
            .unwrap_err();
        assert_eq!(refusal.reason.code, Code::TooEarly);
        // Ten days after the reception: no follow-up is due within its tolerance yet.
        let soon = rules("2027-01-22T17:00:00Z");
        assert_eq!(
            soon.allowed_steps(&case(CaseState::Received), &sbs),
            ["case_summary"]
        );
        let follow_ups = soon.follow_ups(&case(CaseState::Received));
        let days: Vec<u32> = follow_ups.iter().map(|due| due.days).collect();
        assert_eq!(days, [30, 90, 180]);
        assert_eq!(
            follow_ups[0].earliest,
            wire("2027-02-08T17:00:00Z"),
            "30 days less the 3-day tolerance"
        );
        assert_eq!(follow_ups[0].due, wire("2027-02-11T17:00:00Z"));
        assert!(follow_ups.iter().all(|due| !due.reported));
    }
}

#[cfg(test)]
mod properties {
    //! The state machine against its own specification: any sequence of
    //! steps, sent by any role at any time, moves a case only along the
    //! documented edges, in the order time allows, and the receiving side
    //! reaches the same state with the same timeline remarks.

    use proptest::prelude::*;
    use retorno_proto::v1::{ArrivalResponse, arrival_response};

    use super::*;
    use crate::config::{
        DEFAULT_FOLLOW_UP_TOLERANCE_DAYS, DEFAULT_HANDOFF_LATE_AFTER_HOURS,
        DEFAULT_HANDOFF_MARGIN_HOURS,
    };
    use crate::storage::MemoryCases;

    const CASE: &str = "MX-2026-0001";

    fn rules(country: &str) -> Rules {
        let gt: Country = "GT".parse().unwrap();
        let gt_policy = policy::published(gt, &policy::dev_points(gt)).unwrap();
        Rules {
            country: country.parse().unwrap(),
            relaxed_best_interest: BTreeSet::new(),
            own_policy: gt_policy.clone(),
            peer_policies: RwLock::new(BTreeMap::from([(gt, gt_policy)])),
            clock: Clock::system(),
        }
    }

    /// A weekday 10:00 in Guatemala, well after `now()`.
    fn arrival_at() -> jiff::Timestamp {
        "2027-01-12T16:00:00Z".parse().unwrap()
    }

    fn arrival() -> pbjson_types::Timestamp {
        wire(arrival_at())
    }

    fn wire(at: jiff::Timestamp) -> pbjson_types::Timestamp {
        pbjson_types::Timestamp {
            seconds: at.as_second(),
            nanos: 0,
        }
    }

    fn now() -> jiff::Timestamp {
        "2027-01-01T00:00:00Z".parse().unwrap()
    }

    fn hours(n: i64) -> jiff::SignedDuration {
        jiff::SignedDuration::from_hours(n)
    }

    /// What the model remembers of the case between steps.
    #[derive(Clone, Copy, Debug, Default)]
    struct Model {
        state: Option<CaseState>,
        handed_over_at: Option<jiff::Timestamp>,
        received_at: Option<jiff::Timestamp>,
    }

    /// One step: its kind and the variant that picks escort, decision and time.
    #[derive(Clone, Copy, Debug)]
    struct Try {
        kind: Kind,
        variant: u8,
    }

    impl Try {
        fn escorted(self) -> bool {
            !self.variant.is_multiple_of(4)
        }

        fn decision(self) -> u8 {
            self.variant % 3
        }

        /// The handoff's hours from the agreed arrival: too early, at the
        /// margin, just before, just after, late.
        fn handoff_offset(self) -> i64 {
            let margin = i64::from(DEFAULT_HANDOFF_MARGIN_HOURS);
            let late = i64::from(DEFAULT_HANDOFF_LATE_AFTER_HOURS);
            [-margin - 1, -margin, -1, 1, late + 1][usize::from(self.variant % 5)]
        }

        /// The reception's hours from the handoff: before, at, after.
        fn reception_offset(self) -> i64 {
            [-1, 0, 2][usize::from(self.variant % 3)]
        }

        fn follow_up_days(self) -> u32 {
            [7, 30][usize::from(self.variant % 2)]
        }

        /// The follow-up's hours from N days after the reception less the tolerance.
        fn follow_up_offset(self) -> i64 {
            [-1, 0, 72][usize::from((self.variant / 2) % 3)]
        }

        /// When the message is created, relative to what the model knows.
        fn sent_at(self, model: &Model) -> jiff::Timestamp {
            match self.kind {
                Kind::Handoff => arrival_at() + hours(self.handoff_offset()),
                Kind::Reception => {
                    model.handed_over_at.unwrap_or(arrival_at()) + hours(self.reception_offset())
                }
                Kind::FollowUp => {
                    let days = i64::from(self.follow_up_days())
                        - i64::from(DEFAULT_FOLLOW_UP_TOLERANCE_DAYS);
                    model.received_at.unwrap_or(arrival_at())
                        + hours(24 * days + self.follow_up_offset())
                }
                _ => now(),
            }
        }

        fn payload(self, unaccompanied: bool) -> Payload {
            let notice = v1::AdvanceNotice {
                companionship: if unaccompanied {
                    v1::Companionship::Unaccompanied
                } else {
                    v1::Companionship::WithFamily
                } as i32,
                best_interest: Some(v1::BestInterestDetermination {
                    authority_kind: v1::DeterminingAuthority::ChildProtection as i32,
                    outcome: v1::BestInterestOutcome::Return as i32,
                    ..Default::default()
                }),
                ..Default::default()
            };
            let escorts = if self.escorted() {
                vec![v1::Officer {
                    name: "Lucía Gómez".into(),
                    institution: "INM".into(),
                }]
            } else {
                Vec::new()
            };
            let decision = match self.decision() {
                0 => arrival_response::Decision::Accept(arrival_response::Accept {}),
                1 => arrival_response::Decision::Counter(arrival_response::Counter {
                    arrival: Some(arrival()),
                    time_zone: "America/Guatemala".into(),
                    note: String::new(),
                }),
                _ => arrival_response::Decision::Decline(arrival_response::Decline {
                    reason: v1::DeclineReason::NoCapacity as i32,
                    text: String::new(),
                }),
            };
            match self.kind {
                Kind::Notice => Payload::AdvanceNotice(notice),
                Kind::Summary => Payload::CaseSummary(v1::CaseSummary::default()),
                Kind::Proposal => Payload::ArrivalProposal(ArrivalProposal {
                    proposal_id: "P1".into(),
                    point_of_entry: "GT-TECUN-UMAN".into(),
                    arrival: Some(arrival()),
                    time_zone: "America/Guatemala".into(),
                    escort_officers: escorts,
                    ..Default::default()
                }),
                Kind::Response => Payload::ArrivalResponse(ArrivalResponse {
                    proposal_id: "P1".into(),
                    decision: Some(decision),
                }),
                Kind::Handoff => Payload::HandoffAck(v1::HandoffAck::default()),
                Kind::Reception => {
                    Payload::ReceptionConfirmation(v1::ReceptionConfirmation::default())
                }
                Kind::FollowUp => Payload::FollowUpReport(v1::FollowUpReport {
                    days_since_return: self.follow_up_days(),
                    ..Default::default()
                }),
                Kind::Withdrawal => Payload::CaseWithdrawal(v1::CaseWithdrawal::default()),
            }
        }
    }

    /// The documented edges: the state a step leads to from the model's, if any.
    fn expected(model: &Model, step: Try, unaccompanied: bool) -> Option<CaseState> {
        use CaseState::*;
        let Some(state) = model.state else {
            return (step.kind == Kind::Notice).then_some(Notified);
        };
        let at = step.sent_at(model);
        match (state, step.kind) {
            (Notified, Kind::Summary) => Some(SummaryShared),
            (
                SummaryShared | ArrivalProposed | AwaitingProposal | ArrivalAgreed | HandedOver
                | Received | FollowUp,
                Kind::Summary,
            ) => Some(state),
            (Notified | SummaryShared | ArrivalProposed | AwaitingProposal, Kind::Proposal) => {
                (step.escorted() || !unaccompanied).then_some(ArrivalProposed)
            }
            (ArrivalProposed, Kind::Response) if step.decision() == 0 => Some(ArrivalAgreed),
            (ArrivalProposed, Kind::Response) => Some(AwaitingProposal),
            (ArrivalAgreed, Kind::Handoff) => (step.handoff_offset()
                >= -i64::from(DEFAULT_HANDOFF_MARGIN_HOURS))
            .then_some(HandedOver),
            (HandedOver, Kind::Reception) => (Some(at) >= model.handed_over_at).then_some(Received),
            (Received | FollowUp, Kind::FollowUp) => {
                (step.follow_up_offset() >= 0).then_some(FollowUp)
            }
            (
                Notified | SummaryShared | ArrivalProposed | AwaitingProposal | ArrivalAgreed,
                Kind::Withdrawal,
            ) => Some(Withdrawn),
            _ => None,
        }
    }

    /// Whether the step's timeline entry must be flagged late.
    fn late(step: Try) -> bool {
        step.kind == Kind::Handoff
            && step.handoff_offset() > i64::from(DEFAULT_HANDOFF_LATE_AFTER_HOURS)
    }

    /// Applies a step on one gateway's tree; returns the state and the
    /// flag of the case's last timeline entry.
    fn apply_on(
        tree: &MemoryCases,
        rules: &Rules,
        step: Try,
        role: Role,
        model: &Model,
        unaccompanied: bool,
    ) -> Result<(CaseState, String), Refusal> {
        let payload = step.payload(unaccompanied);
        let (sender, recipient) = match step.kind.sent_by_destination() {
            Some(false) => ("GT", "MX"),
            _ => ("MX", "GT"),
        };
        let body = EnvelopeBody {
            message_id: format!("{:?}", step.kind),
            case_id: CASE.into(),
            created_at: Some(wire(step.sent_at(model))),
            ..Default::default()
        };
        let step = Step {
            body: &body,
            payload: &payload,
            sender: sender.parse().unwrap(),
            role,
            recipient: recipient.parse().unwrap(),
            now: now(),
        };
        let applied = rules.apply(tree, &step).unwrap()?;
        let case = tree
            .get(&case_key(CASE))
            .unwrap()
            .map(|bytes| CaseView::decode(bytes.as_ref()).unwrap())
            .unwrap();
        let flag = case
            .timeline
            .last()
            .map(|e| e.flag.clone())
            .unwrap_or_default();
        Ok((applied.state, flag))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn any_sequence_moves_only_along_the_documented_edges(
            unaccompanied in any::<bool>(),
            steps in prop::collection::vec((any::<u8>(), any::<u8>(), any::<bool>(), any::<u8>()), 1..32),
        ) {
            let sender_side = MemoryCases::default();
            let receiver_side = MemoryCases::default();
            let (mx, gt) = (rules("MX"), rules("GT"));
            let all = [Kind::Notice, Kind::Summary, Kind::Proposal, Kind::Response, Kind::Handoff, Kind::Reception, Kind::FollowUp, Kind::Withdrawal];
            let roles = [Role::DestinationAuthority, Role::ChildProtection, Role::Consulate];
            let mut model = Model::default();
            for (pick, role_pick, stray, variant) in steps {
                // Mostly follow the model (so that deep states are reached), sometimes stray.
                let next: Vec<Kind> = all.iter().copied().filter(|k| {
                    (0..60u8).any(|variant| expected(&model, Try { kind: *k, variant }, unaccompanied).is_some())
                }).collect();
                let kind = if stray || next.is_empty() { all[usize::from(pick) % all.len()] } else { next[usize::from(pick) % next.len()] };
                let step = Try { kind, variant };
                let allowed: Vec<Role> = roles.iter().copied().filter(|r| may_send(*r, kind)).collect();
                let role = if stray && role_pick % 2 == 0 { roles[usize::from(role_pick) % roles.len()] } else { allowed[usize::from(role_pick) % allowed.len()] };
                let outcome = apply_on(&sender_side, &mx, step, role, &model, unaccompanied);
                let want = if may_send(role, kind) { expected(&model, step, unaccompanied) } else { None };
                match (&outcome, want) {
                    (Ok((got, flag)), Some(want)) => {
                        prop_assert_eq!(*got, want, "{:?} by {:?} from {:?}", step, role, model);
                        prop_assert_eq!(!flag.is_empty(), late(step), "late flag of {:?}: {:?}", step, flag);
                    }
                    (Err(_), None) => {}
                    (got, want) => prop_assert!(false, "{:?} by {:?} from {:?}: engine {:?}, spec {:?}", step, role, model, got, want),
                }
                // The other gateway, fed what the first accepted, agrees.
                if let Ok((got, flag)) = outcome {
                    let there = apply_on(&receiver_side, &gt, step, role, &model, unaccompanied);
                    prop_assert_eq!(there, Ok((got, flag)), "the receiving side disagrees on {:?}", step);
                    let at = step.sent_at(&model);
                    match kind {
                        Kind::Handoff => model.handed_over_at = Some(at),
                        Kind::Reception => model.received_at = Some(at),
                        _ => {}
                    }
                    model.state = Some(got);
                }
            }
        }
    }
}
