//! The steps after the notice: the arrival (propose, counter, accept,
//! decline, with the origin's reception windows as a week view in the
//! point's time zone and the allowed slots offered when a time is refused),
//! the consul's handoff on a phone, the reception and its follow-ups, and a
//! withdrawal. Which of these forms a page shows is `CaseView.allowed_steps`:
//! the gateway's case engine decides, the console only draws.

use std::sync::Arc;

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State as Shared},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use fluent_bundle::FluentValue;
use retorno_proto::v1::{self, CaseView, PointOfEntry, ReceptionPolicy, submit_request::Payload};

use super::{
    dates,
    forms::{FormBuilder, Group},
    pages::{Frame, gateway_page, instant, page, post_refused},
    steps::{Refused, send, sent},
    web::{Fields, Reader, Staff, State, check_post},
};
use crate::{
    compose::{self, BadInput},
    i18n::Lang,
};

/// A day of the week view.
pub(crate) struct Day {
    pub label: String,
    pub date: String,
    pub open: bool,
    pub hours: String,
    pub strict_hours: String,
    /// The arrival proposed or agreed on that day, if any.
    pub arrival: String,
}

/// A slot offered after a refusal: a one-button form that proposes it.
pub(crate) struct Slot {
    /// As a `datetime-local` value: `2026-12-04T10:00`.
    pub value: String,
    /// As the selector `data-slot` has it: `2026-12-04 10:00`.
    pub data: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "arrival.html")]
struct ArrivalPage {
    frame: Frame,
    case_id: String,
    csrf: String,
    point_name: String,
    zone_name: String,
    points: Vec<(String, String, bool)>,
    week: Vec<Day>,
    previous_week: String,
    next_week: String,
    open_proposal: String,
    open_proposal_id: String,
    agreed: String,
    can_propose: bool,
    can_respond: bool,
    propose: Vec<Group>,
    counter: Vec<Group>,
    decline: Vec<Group>,
    slots: Vec<Slot>,
    /// The slots answer a counter-proposal, not a proposal.
    slot_counter: bool,
    /// The proposal's other fields, carried by each slot's form.
    carried: Vec<(String, String)>,
}

/// `?point=` and `?week=` of the arrival page.
#[derive(Default, serde::Deserialize)]
pub(crate) struct ArrivalQuery {
    #[serde(default)]
    point: String,
    #[serde(default)]
    week: String,
}

/// What the arrival page is drawn from.
struct ArrivalContext {
    case: CaseView,
    policy: ReceptionPolicy,
}

impl ArrivalContext {
    async fn load(state: &State, case_id: &str) -> Result<ArrivalContext, crate::ClientError> {
        let mut client = state.client.clone();
        let case = client.case(case_id).await?;
        let policy = client.reception_policy(&case.origin_country).await?;
        Ok(ArrivalContext { case, policy })
    }

    /// The point chosen: the one asked for, else the case's arrival's, else the first published.
    fn point(&self, asked: &str) -> Option<&PointOfEntry> {
        let case_point = self
            .case
            .open_proposal
            .as_ref()
            .or(self.case.agreed_arrival.as_ref())
            .map(|p| p.point_of_entry.as_str())
            .unwrap_or_default();
        [asked, case_point]
            .iter()
            .find_map(|code| {
                self.policy
                    .points
                    .iter()
                    .find(|p| !code.is_empty() && p.code == *code)
            })
            .or_else(|| self.policy.points.first())
    }

    fn allows(&self, kind: &str) -> bool {
        self.case.allowed_steps.iter().any(|k| k == kind)
    }
}

fn hhmm(window: Option<&v1::HourWindow>) -> String {
    window.map_or_else(String::new, |w| {
        format!(
            "{:02}:{:02}–{:02}:{:02}",
            w.start_minute / 60,
            w.start_minute % 60,
            w.end_minute / 60,
            w.end_minute % 60
        )
    })
}

/// Seven days from `first`, as the point publishes its windows.
fn week(point: &PointOfEntry, first: jiff::civil::Date, case: &CaseView, lang: Lang) -> Vec<Day> {
    let arrival = case.open_proposal.as_ref().or(case.agreed_arrival.as_ref());
    let arrival_local = arrival
        .and_then(|a| instant(a.arrival.as_ref()))
        .map(|at| dates::zoned(at, &point.time_zone));
    (0..7)
        .filter_map(|offset| first.checked_add(jiff::Span::new().days(offset)).ok())
        .map(|date| {
            let iso = u32::try_from(date.weekday().to_monday_one_offset()).unwrap_or(0);
            let arrival = arrival_local
                .as_ref()
                .filter(|local| local.date() == date)
                .map(|local| format!("{:02}:{:02}", local.hour(), local.minute()))
                .unwrap_or_default();
            Day {
                label: dates::day(date, lang),
                date: date.to_string(),
                open: point.weekdays.contains(&iso),
                hours: hhmm(point.hours.as_ref()),
                strict_hours: hhmm(point.unaccompanied_hours.as_ref()),
                arrival,
            }
        })
        .collect()
}

fn describe_proposal(proposal: Option<&v1::ArrivalProposal>, lang: Lang) -> String {
    proposal
        .and_then(|p| {
            instant(p.arrival.as_ref()).map(|at| {
                format!(
                    "{} · {} · {}",
                    p.proposal_id,
                    dates::weekday_date_time(at, &p.time_zone, lang),
                    p.point_of_entry
                )
            })
        })
        .unwrap_or_default()
}

fn propose_form<'a>(lang: Lang, values: &'a Fields, points: &[PointOfEntry]) -> FormBuilder<'a> {
    let mut form = FormBuilder::new(lang, values);
    let choices = points
        .iter()
        .map(|p| (p.code.clone(), format!("{} ({})", p.name, p.code)))
        .collect();
    form.group("proposal")
        .field("proposal_id", "text")
        .choose("point_of_entry", choices)
        .field("arrival", "datetime-local")
        .select("transport_mode", &["air", "land", "sea"])
        .field("transport_reference", "text")
        .field("escort_officers[0].name", "text")
        .field("escort_officers[0].institution", "text");
    form
}

fn counter_form(lang: Lang, values: &Fields) -> FormBuilder<'_> {
    let mut form = FormBuilder::new(lang, values);
    form.group("counter")
        .field("counter.arrival", "datetime-local")
        .field("counter.note", "text");
    form
}

fn decline_form(lang: Lang, values: &Fields) -> FormBuilder<'_> {
    let mut form = FormBuilder::new(lang, values);
    form.group("decline")
        .select(
            "decline.reason",
            &[
                "outside-reception-hours",
                "notice-too-short",
                "no-capacity",
                "family-not-located",
                "risk-on-return",
                "other",
            ],
        )
        .field("decline.text", "text");
    form
}

#[allow(clippy::too_many_arguments)]
fn arrival_page(
    status: StatusCode,
    lang: Lang,
    staff: &Staff,
    context: &ArrivalContext,
    query: &ArrivalQuery,
    values: &Fields,
    refused: Option<(Refused, &str)>,
) -> Response {
    let Some(point) = context.point(if query.point.is_empty() {
        values.get("point_of_entry").unwrap_or_default()
    } else {
        &query.point
    }) else {
        let frame =
            Frame::new(lang, Some(staff)).with_flash(lang.text("arrival-no-points", &[]), false);
        return page(
            StatusCode::OK,
            &super::pages::message_page(frame, lang.text("arrival-title", &[])),
        );
    };
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(
            jiff::tz::TimeZone::get(&point.time_zone).unwrap_or(jiff::tz::TimeZone::UTC),
        )
        .date();
    let first = query.week.parse().unwrap_or(today);
    let shift = |days: i64| {
        first
            .checked_add(jiff::Span::new().days(days))
            .map(|d| d.to_string())
            .unwrap_or_default()
    };
    let mut propose = propose_form(lang, values, &context.policy.points);
    let mut counter = counter_form(lang, values);
    let mut decline = decline_form(lang, values);
    let mut frame = Frame::new(lang, Some(staff));
    let mut slots = Vec::new();
    if let Some((refused, decision)) = refused {
        let form = match decision {
            "counter" => &mut counter,
            "decline" => &mut decline,
            _ => &mut propose,
        };
        let mut top = form.place_errors(refused.fields);
        top.extend(refused.top);
        if top.is_empty() {
            top.push(lang.text("form-refused-see-fields", &[]));
        }
        frame = frame.with_flash(top.join(" "), false);
        let typed = values
            .text(if decision == "counter" {
                "counter.arrival"
            } else {
                "arrival"
            })
            .replace('T', " ");
        slots = refused
            .slots
            .into_iter()
            .filter(|slot| *slot != typed)
            .map(|slot| Slot {
                label: compose::local_instant(&slot, &point.time_zone)
                    .ok()
                    .and_then(|at| instant(Some(&at)))
                    .map(|at| dates::weekday_date_time(at, &point.time_zone, lang))
                    .unwrap_or_else(|| slot.clone()),
                value: slot.replace(' ', "T"),
                data: slot,
            })
            .collect();
    }
    let carried = values
        .0
        .iter()
        .filter(|(name, _)| name != "csrf" && name != "arrival" && name != "counter.arrival")
        .cloned()
        .collect();
    let template = ArrivalPage {
        frame,
        case_id: context.case.case_id.clone(),
        csrf: staff.session.csrf.clone(),
        point_name: format!("{} ({})", point.name, point.code),
        zone_name: dates::zone_name(&point.time_zone, lang),
        points: context
            .policy
            .points
            .iter()
            .map(|p| (p.code.clone(), p.name.clone(), p.code == point.code))
            .collect(),
        week: week(point, first, &context.case, lang),
        previous_week: shift(-7),
        next_week: shift(7),
        open_proposal: describe_proposal(context.case.open_proposal.as_ref(), lang),
        open_proposal_id: context
            .case
            .open_proposal
            .as_ref()
            .map(|p| p.proposal_id.clone())
            .unwrap_or_default(),
        agreed: describe_proposal(context.case.agreed_arrival.as_ref(), lang),
        can_propose: context.allows("arrival_proposal"),
        can_respond: context.allows("arrival_response") && context.case.open_proposal.is_some(),
        propose: propose.groups,
        counter: counter.groups,
        decline: decline.groups,
        slots,
        slot_counter: values.get("decision") == Some("counter"),
        carried,
    };
    page(status, &template)
}

pub(crate) async fn arrival(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    Path(case_id): Path<String>,
    Query(query): Query<ArrivalQuery>,
) -> Response {
    match ArrivalContext::load(&state, &case_id).await {
        Ok(context) => arrival_page(
            StatusCode::OK,
            lang,
            &staff,
            &context,
            &query,
            &Fields::default(),
            None,
        ),
        Err(error) => gateway_page(lang, &staff, &error),
    }
}

/// A value the form could not turn into a payload, next to its input.
fn bad_input(error: BadInput, field: &str, lang: Lang, value: &str) -> Refused {
    let id = if error.flag == "--at" {
        "form-bad-time"
    } else {
        "form-bad-value"
    };
    Refused {
        fields: std::collections::BTreeMap::from([(
            field.to_owned(),
            lang.text(id, &[("value", FluentValue::from(value.to_owned()))]),
        )]),
        top: None,
        slots: Vec::new(),
    }
}

fn arrival_payload(
    context: &ArrivalContext,
    fields: &Fields,
    lang: Lang,
) -> Result<Payload, Refused> {
    let open = context.case.open_proposal.clone().unwrap_or_default();
    match fields.text("decision").as_str() {
        "accept" => Ok(compose::accept(&open.proposal_id)),
        "counter" => {
            let at = fields.text("counter.arrival");
            compose::counter(
                &open.proposal_id,
                &at,
                &open.time_zone,
                &fields.text("counter.note"),
            )
            .map_err(|e| bad_input(e, "counter.arrival", lang, &at))
        }
        "decline" => compose::decline(
            &open.proposal_id,
            &fields.text("decline.reason"),
            &fields.text("decline.text"),
        )
        .map_err(|e| bad_input(e, "decline.reason", lang, &fields.text("decline.reason"))),
        _ => {
            let code = fields.text("point_of_entry");
            let point = context.point(&code).cloned().unwrap_or_default();
            let at = fields.text("arrival");
            let id = match fields.text("proposal_id") {
                id if id.is_empty() => format!("P{}", context.case.timeline.len() + 1),
                id => id,
            };
            let (name, institution) = (
                fields.text("escort_officers[0].name"),
                fields.text("escort_officers[0].institution"),
            );
            let escorts = if name.is_empty() {
                Vec::new()
            } else {
                vec![format!("{name}/{institution}")]
            };
            let mode = match fields.text("transport_mode") {
                m if m.is_empty() => "land".to_owned(),
                m => m,
            };
            compose::proposal(&compose::Proposal {
                id: &id,
                cases: Vec::new(),
                point: &point.code,
                at: &at,
                time_zone: &point.time_zone,
                mode: &mode,
                reference: &fields.text("transport_reference"),
                escorts: &escorts,
            })
            .map_err(|e| {
                let field = if e.flag == "--escort" {
                    "escort_officers[0].institution"
                } else {
                    "arrival"
                };
                bad_input(e, field, lang, &at)
            })
        }
    }
}

pub(crate) async fn answer_arrival(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    if let Err(refused) = check_post(&state, &headers, &staff, &fields) {
        return post_refused(lang, Some(&staff), refused);
    }
    let context = match ArrivalContext::load(&state, &case_id).await {
        Ok(context) => context,
        Err(error) => return gateway_page(lang, &staff, &error),
    };
    let decision = fields.text("decision");
    let query = ArrivalQuery::default();
    let payload = match arrival_payload(&context, &fields, lang) {
        Ok(payload) => payload,
        Err(refused) => {
            return arrival_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                lang,
                &staff,
                &context,
                &query,
                &fields,
                Some((refused, &decision)),
            );
        }
    };
    let (kind, payload_name) = match payload {
        Payload::ArrivalProposal(_) => ("arrival_proposal", "arrival_proposal"),
        _ => ("arrival_response", "arrival_response"),
    };
    let request = compose::request(&case_id, None, payload);
    match send(&state, &staff, lang, request, payload_name).await {
        Ok(answer) => sent(&answer, kind),
        Err(refused) => arrival_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            lang,
            &staff,
            &context,
            &query,
            &fields,
            Some((refused, &decision)),
        ),
    }
}
