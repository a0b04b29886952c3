//! The case summary, section by section: composed by the destination (when
//! the case allows `case_summary`) and read by whoever the gateway delivered
//! it to. A section the reader did not receive is marked withheld: the
//! gateway removed it (need to know) or the sender left it out; the console
//! never decides which.

use std::sync::Arc;

use askama::Template;
use axum::{
    Form,
    extract::{Path, State as Shared},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use futures::StreamExt;
use retorno_proto::v1::{self, CaseSummary, envelope_body, submit_request::Payload};

use super::{
    forms::{FormBuilder, Group},
    pages::{Frame, gateway_page, page, post_refused},
    steps::{Refused, send, sent},
    web::{Fields, Reader, Staff, State, check_post},
};
use crate::{compose, i18n::Lang};

/// The sections, in the order of the region's case file (GLOSARIO.md).
const SECTIONS: [&str; 8] = [
    "identity",
    "best_interest_plan",
    "health",
    "psychosocial",
    "legal",
    "education",
    "risks_on_return",
    "recommendations",
];

/// A section as read.
pub(crate) struct SectionView {
    pub id: &'static str,
    pub title: String,
    pub rows: Vec<(String, String)>,
    pub withheld: bool,
}

#[derive(Template)]
#[template(path = "summary.html")]
struct SummaryPage {
    frame: Frame,
    case_id: String,
    csrf: String,
    sections: Vec<SectionView>,
    received: bool,
    compose: Vec<Group>,
    can_compose: bool,
}

fn compose_form(lang: Lang, values: &Fields) -> FormBuilder<'_> {
    let mut form = FormBuilder::new(lang, values);
    form.group("identity")
        .field("identity.verification", "textarea")
        .field("identity.aliases", "text");
    form.group("best_interest_plan")
        .field("best_interest_plan.plan", "textarea")
        .field("best_interest_plan.receiving_caregiver", "text");
    form.group("health")
        .field("health.conditions", "textarea")
        .field("health.medication", "text")
        .field("health.needs_medical_escort", "checkbox");
    form.group("psychosocial")
        .field("psychosocial.assessment", "textarea")
        .field("psychosocial.assessed_by", "text");
    form.group("legal")
        .field("legal.protection_claim", "checkbox")
        .field("legal.asylum_claim", "checkbox")
        .field("legal.legal_representative", "text")
        .field("legal.guardian", "text")
        .field("legal.notes", "textarea");
    form.group("education")
        .field("education.last_grade_completed", "text")
        .field("education.notes", "textarea");
    form.group("risks_on_return")
        .select("risks_on_return.level", &["low", "medium", "high"])
        .field("risks_on_return.description", "textarea");
    form.group("recommendations")
        .field("recommendations.items", "textarea");
    form
}

/// Sections go to the origin's child protection: the readers the gateway delivers a summary to.
fn readers() -> Option<v1::Readers> {
    Some(v1::Readers {
        roles: vec![v1::Role::ChildProtection as i32],
    })
}

fn read_summary(fields: &Fields) -> CaseSummary {
    let t = |name: &str| fields.text(name);
    let lines = |name: &str| -> Vec<String> {
        fields
            .text(name)
            .split(['\n', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let filled = |section: &str| {
        fields
            .0
            .iter()
            .any(|(n, v)| n.starts_with(&format!("{section}.")) && !v.trim().is_empty())
    };
    CaseSummary {
        identity: filled("identity").then(|| v1::IdentitySection {
            readers: readers(),
            verification: t("identity.verification"),
            aliases: lines("identity.aliases"),
        }),
        best_interest_plan: filled("best_interest_plan").then(|| v1::BestInterestPlan {
            readers: readers(),
            plan: t("best_interest_plan.plan"),
            receiving_caregiver: t("best_interest_plan.receiving_caregiver"),
        }),
        health: filled("health").then(|| v1::HealthSection {
            readers: readers(),
            conditions: t("health.conditions"),
            medication: t("health.medication"),
            needs_medical_escort: fields.checked("health.needs_medical_escort"),
        }),
        psychosocial: filled("psychosocial").then(|| v1::PsychosocialSection {
            readers: readers(),
            assessment: t("psychosocial.assessment"),
            assessed_by: t("psychosocial.assessed_by"),
        }),
        legal: filled("legal").then(|| v1::LegalSection {
            readers: readers(),
            protection_claim: fields.checked("legal.protection_claim"),
            asylum_claim: fields.checked("legal.asylum_claim"),
            legal_representative: t("legal.legal_representative"),
            guardian: t("legal.guardian"),
            notes: t("legal.notes"),
        }),
        education: filled("education").then(|| v1::EducationSection {
            readers: readers(),
            last_grade_completed: t("education.last_grade_completed"),
            notes: t("education.notes"),
        }),
        risks_on_return: filled("risks_on_return").then(|| v1::ReturnRisks {
            readers: readers(),
            level: v1::RiskLevel::from_str_name(&format!(
                "RISK_LEVEL_{}",
                t("risks_on_return.level").to_ascii_uppercase()
            ))
            .map_or(0, |l| l as i32),
            description: t("risks_on_return.description"),
        }),
        recommendations: filled("recommendations").then(|| v1::Recommendations {
            readers: readers(),
            items: lines("recommendations.items"),
        }),
    }
}

/// A section's rows as `(label, value)`, `None` when the reader did not receive it.
fn section_rows(summary: &CaseSummary, id: &str, lang: Lang) -> Option<Vec<(String, String)>> {
    let label = |name: &str| lang.text(&format!("f-{id}-{name}"), &[]);
    let yes_no = |b: bool| lang.text(if b { "yes" } else { "no" }, &[]);
    let rows = match id {
        "identity" => summary.identity.as_ref().map(|s| {
            vec![
                (label("verification"), s.verification.clone()),
                (label("aliases"), s.aliases.join(", ")),
            ]
        }),
        "best_interest_plan" => summary.best_interest_plan.as_ref().map(|s| {
            vec![
                (label("plan"), s.plan.clone()),
                (label("receiving_caregiver"), s.receiving_caregiver.clone()),
            ]
        }),
        "health" => summary.health.as_ref().map(|s| {
            vec![
                (label("conditions"), s.conditions.clone()),
                (label("medication"), s.medication.clone()),
                (
                    label("needs_medical_escort"),
                    yes_no(s.needs_medical_escort),
                ),
            ]
        }),
        "psychosocial" => summary.psychosocial.as_ref().map(|s| {
            vec![
                (label("assessment"), s.assessment.clone()),
                (label("assessed_by"), s.assessed_by.clone()),
            ]
        }),
        "legal" => summary.legal.as_ref().map(|s| {
            vec![
                (label("protection_claim"), yes_no(s.protection_claim)),
                (label("asylum_claim"), yes_no(s.asylum_claim)),
                (
                    label("legal_representative"),
                    s.legal_representative.clone(),
                ),
                (label("guardian"), s.guardian.clone()),
                (label("notes"), s.notes.clone()),
            ]
        }),
        "education" => summary.education.as_ref().map(|s| {
            vec![
                (
                    label("last_grade_completed"),
                    s.last_grade_completed.clone(),
                ),
                (label("notes"), s.notes.clone()),
            ]
        }),
        "risks_on_return" => summary.risks_on_return.as_ref().map(|s| {
            vec![
                (
                    label("level"),
                    lang.text(
                        &format!(
                            "o-{}",
                            s.level()
                                .as_str_name()
                                .trim_start_matches("RISK_LEVEL_")
                                .to_ascii_lowercase()
                        ),
                        &[],
                    ),
                ),
                (label("description"), s.description.clone()),
            ]
        }),
        _ => summary
            .recommendations
            .as_ref()
            .map(|s| vec![(label("items"), s.items.join("; "))]),
    };
    rows.map(|rows| rows.into_iter().filter(|(_, v)| !v.is_empty()).collect())
}

/// The latest summary of the case that reached this agency's inbox, as the gateway gave it.
async fn received_summary(
    state: &State,
    case_id: &str,
) -> Result<Option<CaseSummary>, crate::ClientError> {
    let mut client = state.client.clone();
    let mut items = client.subscribe(Some(0), false).await?;
    let mut latest = None;
    while let Some(Ok(item)) = items.next().await {
        let Some(body) = item.body else { continue };
        if let (true, Some(envelope_body::Payload::CaseSummary(summary))) =
            (body.case_id == case_id, body.payload)
        {
            latest = Some(summary);
        }
    }
    Ok(latest)
}

#[allow(clippy::too_many_arguments)]
fn summary_page(
    status: StatusCode,
    lang: Lang,
    staff: &Staff,
    case: &v1::CaseView,
    summary: Option<&CaseSummary>,
    values: &Fields,
    refused: Option<Refused>,
) -> Response {
    let can_compose = case.allowed_steps.iter().any(|k| k == "case_summary");
    let mut form = compose_form(lang, values);
    let mut frame = Frame::new(lang, Some(staff));
    if let Some(refused) = refused {
        let mut top = form.place_errors(refused.fields);
        top.extend(refused.top);
        if top.is_empty() {
            top.push(lang.text("form-refused-see-fields", &[]));
        }
        frame = frame.with_flash(top.join(" "), false);
    } else if summary.is_none() && !can_compose {
        frame = frame.with_flash(lang.text("summary-none", &[]), false);
    }
    let sections = summary
        .map(|summary| {
            SECTIONS
                .iter()
                .map(|id| {
                    let rows = section_rows(summary, id, lang);
                    SectionView {
                        id,
                        title: lang.text(&format!("g-{id}"), &[]),
                        withheld: rows.is_none(),
                        rows: rows.unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let status = if summary.is_none() && !can_compose && status == StatusCode::OK {
        StatusCode::NOT_FOUND
    } else {
        status
    };
    page(
        status,
        &SummaryPage {
            frame,
            case_id: case.case_id.clone(),
            csrf: staff.session.csrf.clone(),
            received: summary.is_some(),
            sections,
            compose: form.groups,
            can_compose,
        },
    )
}

pub(crate) async fn summary(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    Path(case_id): Path<String>,
) -> Response {
    let mut client = state.client.clone();
    let case = match client.case(&case_id).await {
        Ok(case) => case,
        Err(error) => return gateway_page(lang, &staff, &error),
    };
    match received_summary(&state, &case_id).await {
        Ok(summary) => summary_page(
            StatusCode::OK,
            lang,
            &staff,
            &case,
            summary.as_ref(),
            &Fields::default(),
            None,
        ),
        Err(error) => gateway_page(lang, &staff, &error),
    }
}

pub(crate) async fn send_summary(
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
    let summary = read_summary(&fields);
    let request = compose::request(&case_id, None, Payload::CaseSummary(summary));
    match send(&state, &staff, lang, request, "case_summary").await {
        Ok(answer) => sent(&answer, "case_summary"),
        Err(refused) => {
            let mut client = state.client.clone();
            match client.case(&case_id).await {
                Ok(case) => summary_page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    lang,
                    &staff,
                    &case,
                    None,
                    &fields,
                    Some(refused),
                ),
                Err(error) => gateway_page(lang, &staff, &error),
            }
        }
    }
}
