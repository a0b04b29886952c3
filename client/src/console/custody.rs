//! The steps of custody: the consul's handoff (laid out for a phone), the
//! reception with its placement and the follow-ups due after it, and a
//! withdrawal. As everywhere, the forms shown are the case's `allowed_steps`.

use std::sync::Arc;

use askama::Template;
use axum::{
    Form,
    extract::{Path, State as Shared},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use retorno_proto::v1::{self, CaseView, submit_request::Payload};

use super::{
    dates,
    forms::{FormBuilder, Group},
    pages::{Frame, case_zone, gateway_page, instant, page, post_refused},
    steps::{Refused, send, sent},
    web::{Fields, Reader, Staff, State, check_post},
};
use crate::{compose, i18n::Lang};

/// What a custody page shows and which step it takes.
#[derive(Template)]
#[template(path = "custody.html")]
struct CustodyPage {
    frame: Frame,
    /// `phone` for the handoff.
    layout: &'static str,
    title: String,
    case_id: String,
    csrf: String,
    action: String,
    facts: Vec<(String, String)>,
    children: Vec<String>,
    follow_ups: Vec<FollowUpLine>,
    forms: Vec<StepForm>,
}

/// One form of the page, with its button.
pub(crate) struct StepForm {
    pub kind: String,
    pub groups: Vec<Group>,
    pub button: String,
    pub huge: bool,
}

/// A follow-up due after the reception.
pub(crate) struct FollowUpLine {
    pub days: u32,
    /// `done`, `overdue` or `due`.
    pub status: &'static str,
    pub label: String,
}

/// Which custody page: each names the steps it takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Handoff,
    Reception,
    Withdraw,
}

impl Which {
    fn kinds(self) -> &'static [&'static str] {
        match self {
            Which::Handoff => &["handoff_ack"],
            Which::Reception => &["reception_confirmation", "follow_up_report"],
            Which::Withdraw => &["case_withdrawal"],
        }
    }

    fn path(self) -> &'static str {
        match self {
            Which::Handoff => "handoff",
            Which::Reception => "reception",
            Which::Withdraw => "withdraw",
        }
    }
}

fn form_of<'a>(kind: &str, lang: Lang, values: &'a Fields, case: &CaseView) -> FormBuilder<'a> {
    let mut form = FormBuilder::new(lang, values);
    match kind {
        "handoff_ack" => {
            form.group("received_by")
                .field("received_by.name", "text")
                .field("received_by.institution", "text")
                .field("condition_notes", "textarea");
        }
        "reception_confirmation" => {
            form.group("reception")
                .select(
                    "placement",
                    &["with-family", "reception-centre", "foster-care"],
                )
                .field("placement_detail", "text");
        }
        "follow_up_report" => {
            // The reports the origin still expects, as its case engine lists them.
            let days = case
                .follow_ups
                .iter()
                .filter(|expected| !expected.reported)
                .map(|expected| {
                    let d = expected.days;
                    (
                        d.to_string(),
                        lang.text("follow-up-days", &[("days", d.into())]),
                    )
                })
                .collect();
            form.group("follow_up")
                .choose("days_since_return", days)
                .select(
                    "status",
                    &["stable", "at-risk", "lost-contact", "remigrated"],
                )
                .field("notes", "textarea");
        }
        _ => {
            form.group("withdrawal")
                .select(
                    "reason",
                    &[
                        "protection-granted",
                        "local-integration",
                        "best-interest-decision",
                        "other",
                    ],
                )
                .field("text", "text");
        }
    }
    form
}

/// The follow-ups at the configured days after the reception: reported,
/// overdue, or due (the next one highlighted by the page).
/// The follow-ups the origin expects, as the gateway's case engine lists them
/// (`CaseView.follow_ups`: due instant and whether reported); the console only
/// says which are past due by its own clock.
pub(crate) fn follow_ups(case: &CaseView, zone: &str, lang: Lang) -> Vec<FollowUpLine> {
    let now = jiff::Timestamp::now();
    case.follow_ups
        .iter()
        .filter_map(|expected| {
            let due = instant(expected.due.as_ref())?;
            let status = if expected.reported {
                "done"
            } else if due < now {
                "overdue"
            } else {
                "due"
            };
            let due_text = dates::date(dates::zoned(due, zone).date(), lang);
            Some(FollowUpLine {
                days: expected.days,
                label: lang.text(
                    &format!("follow-up-{status}"),
                    &[("days", expected.days.into()), ("due", due_text.into())],
                ),
                status,
            })
        })
        .collect()
}

fn facts(case: &CaseView, zone: &str, lang: Lang) -> Vec<(String, String)> {
    let mut facts = vec![(
        lang.text("case-state", &[]),
        crate::words::state(case.state(), lang),
    )];
    if let Some(agreed) = &case.agreed_arrival {
        if let Some(at) = instant(agreed.arrival.as_ref()) {
            facts.push((
                lang.text("arrival-agreed", &[]),
                dates::weekday_date_time(at, &agreed.time_zone, lang),
            ));
        }
        facts.push((
            lang.text("f-point_of_entry", &[]),
            agreed.point_of_entry.clone(),
        ));
    }
    if let Some(at) = instant(case.handed_over_at.as_ref()) {
        facts.push((
            lang.text("state-handed-over", &[]),
            dates::date_time(at, zone, lang),
        ));
    }
    if let Some(at) = instant(case.received_at.as_ref()) {
        facts.push((
            lang.text("state-received", &[]),
            dates::date_time(at, zone, lang),
        ));
    }
    facts
}

#[allow(clippy::too_many_arguments)]
fn custody_page(
    status: StatusCode,
    which: Which,
    state: &State,
    lang: Lang,
    staff: &Staff,
    case: &CaseView,
    values: &Fields,
    refused: Option<(Refused, String)>,
) -> Response {
    let zone = case_zone(case, &state.home_zone);
    let mut frame = Frame::new(lang, Some(staff));
    let mut refused = refused;
    let forms = which
        .kinds()
        .iter()
        .filter(|kind| case.allowed_steps.iter().any(|k| k == *kind))
        .map(|kind| {
            let mut form = form_of(kind, lang, values, case);
            if let Some((refusal, _)) = refused.take_if(|(_, k)| k == kind) {
                let mut top = form.place_errors(refusal.fields);
                top.extend(refusal.top);
                if top.is_empty() {
                    top.push(lang.text("form-refused-see-fields", &[]));
                }
                frame.flash = Some(super::pages::Flash {
                    text: top.join(" "),
                    ok: false,
                });
            }
            StepForm {
                kind: (*kind).to_owned(),
                groups: form.groups,
                button: lang.text(&format!("step-{kind}"), &[]),
                huge: which == Which::Handoff,
            }
        })
        .collect();
    if let Some((refusal, _)) = refused {
        // The step is no longer offered (the case moved on): say why at the top.
        let text = refusal
            .top
            .into_iter()
            .chain(refusal.fields.into_values())
            .collect::<Vec<_>>()
            .join(" ");
        frame.flash = Some(super::pages::Flash { text, ok: false });
    }
    let children = case
        .agreed_arrival
        .as_ref()
        .map(|a| a.case_ids.clone())
        .filter(|ids| !ids.is_empty())
        .unwrap_or_else(|| vec![case.case_id.clone()]);
    let template = CustodyPage {
        frame,
        layout: if which == Which::Handoff { "phone" } else { "" },
        title: lang.text(&format!("{}-title", which.path()), &[]),
        case_id: case.case_id.clone(),
        csrf: staff.session.csrf.clone(),
        action: format!("/cases/{}/{}", case.case_id, which.path()),
        facts: facts(case, &zone, lang),
        children,
        follow_ups: if which == Which::Reception {
            follow_ups(case, &zone, lang)
        } else {
            Vec::new()
        },
        forms,
    };
    page(status, &template)
}

async fn show(
    which: Which,
    state: Arc<State>,
    lang: Lang,
    staff: Staff,
    case_id: String,
) -> Response {
    let mut client = state.client.clone();
    match client.case(&case_id).await {
        Ok(case) => custody_page(
            StatusCode::OK,
            which,
            &state,
            lang,
            &staff,
            &case,
            &Fields::default(),
            None,
        ),
        Err(error) => gateway_page(lang, &staff, &error),
    }
}

pub(crate) async fn handoff(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    Path(case_id): Path<String>,
) -> Response {
    show(Which::Handoff, state, lang, staff, case_id).await
}

pub(crate) async fn reception(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    Path(case_id): Path<String>,
) -> Response {
    show(Which::Reception, state, lang, staff, case_id).await
}

pub(crate) async fn withdraw(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    Path(case_id): Path<String>,
) -> Response {
    show(Which::Withdraw, state, lang, staff, case_id).await
}

/// The payload a custody form describes.
fn payload(kind: &str, case: &CaseView, fields: &Fields, lang: Lang) -> Result<Payload, Refused> {
    let bad = |field: &str, value: String| Refused {
        fields: std::collections::BTreeMap::from([(
            field.to_owned(),
            lang.text("form-bad-value", &[("value", value.into())]),
        )]),
        top: None,
        slots: Vec::new(),
    };
    match kind {
        "handoff_ack" => {
            let agreed = case.agreed_arrival.clone().unwrap_or_default();
            Ok(Payload::HandoffAck(v1::HandoffAck {
                handed_over_at: Some(compose::now()),
                point_of_entry: agreed.point_of_entry,
                received_by: Some(v1::Officer {
                    name: fields.text("received_by.name"),
                    institution: fields.text("received_by.institution"),
                }),
                case_ids: agreed.case_ids,
                condition_notes: fields.text("condition_notes"),
            }))
        }
        "reception_confirmation" => {
            compose::reception(&fields.text("placement"), &fields.text("placement_detail"))
                .map_err(|_| bad("placement", fields.text("placement")))
        }
        "follow_up_report" => {
            let days = fields.text("days_since_return");
            let n = days
                .parse()
                .map_err(|_| bad("days_since_return", days.clone()))?;
            compose::follow_up(n, &fields.text("status"), &fields.text("notes"))
                .map_err(|_| bad("status", fields.text("status")))
        }
        _ => compose::withdrawal(&fields.text("reason"), &fields.text("text"))
            .map_err(|_| bad("reason", fields.text("reason"))),
    }
}

async fn take(
    which: Which,
    state: Arc<State>,
    lang: Lang,
    staff: Staff,
    headers: HeaderMap,
    case_id: String,
    fields: Vec<(String, String)>,
) -> Response {
    let fields = Fields(fields);
    if let Err(refused) = check_post(&state, &headers, &staff, &fields) {
        return post_refused(lang, Some(&staff), refused);
    }
    let mut client = state.client.clone();
    let case = match client.case(&case_id).await {
        Ok(case) => case,
        Err(error) => return gateway_page(lang, &staff, &error),
    };
    let kind = fields.text("step");
    let Some(kind) = which.kinds().iter().find(|k| **k == kind) else {
        let refused = Refused {
            fields: Default::default(),
            top: Some(lang.text("form-bad-value", &[("value", kind.clone().into())])),
            slots: Vec::new(),
        };
        return custody_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            which,
            &state,
            lang,
            &staff,
            &case,
            &fields,
            Some((refused, kind)),
        );
    };
    let result = match payload(kind, &case, &fields, lang) {
        Ok(payload) => {
            send(
                &state,
                &staff,
                lang,
                compose::request(&case_id, None, payload),
                kind,
            )
            .await
        }
        Err(refused) => Err(refused),
    };
    match result {
        Ok(answer) => sent(&answer, kind),
        Err(refused) => custody_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            which,
            &state,
            lang,
            &staff,
            &case,
            &fields,
            Some((refused, (*kind).to_owned())),
        ),
    }
}

pub(crate) async fn acknowledge_handoff(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    take(Which::Handoff, state, lang, staff, headers, case_id, fields).await
}

pub(crate) async fn confirm_reception(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    take(
        Which::Reception,
        state,
        lang,
        staff,
        headers,
        case_id,
        fields,
    )
    .await
}

pub(crate) async fn withdraw_case(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    take(
        Which::Withdraw,
        state,
        lang,
        staff,
        headers,
        case_id,
        fields,
    )
    .await
}
