//! The pages that take a step of a case: each builds its payload from the
//! form, submits it naming the logged-in official (`SubmitRequest.official`),
//! and on a refusal shows the form again as typed, the refusal next to the
//! field it names (`Refusal::field()`), in the reader's language.

use std::{collections::BTreeMap, sync::Arc};

use askama::Template;
use axum::{
    Form,
    extract::State as Shared,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use fluent_bundle::FluentValue;
use retorno_proto::v1::{
    self, AdvanceNotice, SubmitRequest, SubmitResponse, submit_request::Payload,
};

use super::{
    forms::{FormBuilder, Group},
    pages::{Frame, gateway_failure, page, post_refused},
    web::{Fields, Reader, Staff, State, check_post},
};
use crate::{ClientError, i18n::Lang, refusal::Refusal};

/// Why a step was not taken, ready to show.
pub(crate) struct Refused {
    /// Refusals by field path (inside the payload), for their slots.
    pub fields: BTreeMap<String, String>,
    /// A refusal of the whole step, for the top of the page.
    pub top: Option<String>,
    /// Allowed arrival times the gateway offered instead (`YYYY-MM-DD HH:MM`, local).
    pub slots: Vec<String>,
}

impl Refused {
    fn field(path: &str, text: String) -> Refused {
        Refused {
            fields: BTreeMap::from([(path.to_owned(), text)]),
            top: None,
            slots: Vec::new(),
        }
    }
}

/// Submits `request` as the logged-in official.
pub(crate) async fn send(
    state: &State,
    staff: &Staff,
    lang: Lang,
    mut request: SubmitRequest,
    payload_name: &str,
) -> Result<SubmitResponse, Refused> {
    request.official = staff.session.display_name.clone();
    let mut client = state.client.clone();
    client
        .submit(request)
        .await
        .map_err(|error| refused(&error, lang, payload_name))
}

/// A failed submit as field refusals, a top refusal and offered slots.
fn refused(error: &ClientError, lang: Lang, payload_name: &str) -> Refused {
    let text = gateway_failure(error, lang);
    let ClientError::Status(status) = error else {
        return Refused {
            fields: BTreeMap::new(),
            top: Some(text),
            slots: Vec::new(),
        };
    };
    let refusal = Refusal::from_status(status);
    let path = refusal
        .as_ref()
        .and_then(|r| r.field().map(str::to_owned))
        .or_else(|| legacy_field(status.message()));
    let mut sources = vec![status.message().to_owned()];
    if let Some(refusal) = &refusal {
        sources.extend(refusal.params.values().cloned());
    }
    let slots = slots_in(&sources);
    let inside = path.map(|p| {
        p.strip_prefix(payload_name)
            .map(|rest| rest.trim_start_matches('.').to_owned())
            .unwrap_or(p)
    });
    match inside {
        Some(path) if !path.is_empty() => Refused {
            slots,
            ..Refused::field(&path, text)
        },
        _ => Refused {
            fields: BTreeMap::new(),
            top: Some(text),
            slots,
        },
    }
}

/// The field of a refusal sent only as a sentence (`advance_notice.child: is required`),
/// from a gateway that does not send refusals as data yet.
fn legacy_field(message: &str) -> Option<String> {
    let (field, _) = message.split_once(": ")?;
    let looks_like_path = !field.is_empty()
        && field.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '[' | ']')
        });
    looks_like_path.then(|| field.to_owned())
}

/// Every `YYYY-MM-DD HH:MM` in the texts, in order, once each.
pub(crate) fn slots_in(texts: &[String]) -> Vec<String> {
    let mut slots: Vec<String> = Vec::new();
    for text in texts {
        let bytes = text.as_bytes();
        for start in 0..bytes.len().saturating_sub(15) {
            let candidate = &text.get(start..start + 16);
            let Some(candidate) = candidate else { continue };
            let shape = candidate.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                10 => b == b' ' || b == b'T',
                13 => b == b':',
                _ => b.is_ascii_digit(),
            });
            let slot = candidate.replace('T', " ");
            if shape && !slots.contains(&slot) {
                slots.push(slot);
            }
        }
    }
    slots
}

// ---- the advance notice ----

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage {
    frame: Frame,
    groups: Vec<Group>,
    csrf: String,
}

/// The notice form, grouped as a caseworker thinks of the child's case.
fn notice_form(lang: Lang, values: &Fields) -> FormBuilder<'_> {
    let mut form = FormBuilder::new(lang, values);
    form.group("case")
        .field("recipient_country", "text")
        .field("case_id", "text");
    form.group("child")
        .field("child.given_names", "text")
        .field("child.family_names", "text")
        .field("child.birth_date", "date")
        .field("child.estimated_age_years", "number")
        .select("child.sex", &["female", "male", "unknown"])
        .field("child.nationalities", "text")
        .field("child.languages", "text")
        .select(
            "child.documents[0].kind",
            &[
                "passport",
                "birth-certificate",
                "national-id",
                "consular-id",
                "other",
            ],
        )
        .field("child.documents[0].number", "text")
        .field("child.documents[0].issuing_country", "text");
    form.group("companions")
        .select(
            "companionship",
            &["unaccompanied", "separated", "with-family"],
        )
        .field("family_group_id", "text");
    form.group("protection")
        .checks(
            "protection_concerns",
            &[
                "trafficking-victim",
                "trafficking-risk",
                "asylum-seeker",
                "refugee",
                "crime-victim-on-route",
                "child-worker",
                "disability",
                "health",
                "pregnancy",
                "indigenous-language",
            ],
        )
        .select("risk_level", &["low", "medium", "high"]);
    form.group("best_interest")
        .select(
            "best_interest.authority_kind",
            &["child-protection", "judicial", "migration"],
        )
        .field("best_interest.authority_name", "text")
        .field("best_interest.date", "date")
        .select(
            "best_interest.outcome",
            &["return", "return-with-conditions", "stay"],
        );
    form.group("consular_interview")
        .field("consular_interview.consulate", "text")
        .field("consular_interview.date", "date");
    form.group("transport")
        .select("transport.mode", &["air", "land", "sea"])
        .field("transport.point_of_entry", "text")
        .field("transport.earliest_date", "date");
    form.group("origin_contact")
        .field("origin_contact.family_located", "checkbox")
        .field("origin_contact.contact_name", "text")
        .field("origin_contact.contact_phone", "tel")
        .field("origin_contact.relationship", "text");
    form
}

fn notice_page(
    status: StatusCode,
    lang: Lang,
    staff: &Staff,
    values: &Fields,
    refused: Option<Refused>,
) -> Response {
    let mut form = notice_form(lang, values);
    let mut frame = Frame::new(lang, Some(staff));
    if let Some(refused) = refused {
        let mut top = form.place_errors(refused.fields);
        top.extend(refused.top);
        let text = if top.is_empty() {
            lang.text("form-refused-see-fields", &[])
        } else {
            top.join(" ")
        };
        frame = frame.with_flash(text, false);
    }
    let csrf = staff.session.csrf.clone();
    page(
        status,
        &NoticePage {
            frame,
            groups: form.groups,
            csrf,
        },
    )
}

pub(crate) async fn new_notice(Reader(lang): Reader, staff: Staff) -> Response {
    notice_page(StatusCode::OK, lang, &staff, &Fields::default(), None)
}

pub(crate) async fn send_notice(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    if let Err(refused) = check_post(&state, &headers, &staff, &fields) {
        return post_refused(lang, Some(&staff), refused);
    }
    let notice = match read_notice(&fields, lang) {
        Ok(notice) => notice,
        Err(refused) => {
            return notice_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                lang,
                &staff,
                &fields,
                Some(refused),
            );
        }
    };
    let request = SubmitRequest {
        case_id: fields.text("case_id"),
        recipient_country: fields.text("recipient_country").to_ascii_uppercase(),
        payload: Some(Payload::AdvanceNotice(notice)),
        ..Default::default()
    };
    match send(&state, &staff, lang, request, "advance_notice").await {
        Ok(answer) => sent(&answer, "advance_notice"),
        Err(refused) => notice_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            lang,
            &staff,
            &fields,
            Some(refused),
        ),
    }
}

/// After a step was accepted: the case, saying so.
pub(crate) fn sent(answer: &SubmitResponse, kind: &str) -> Response {
    Redirect::to(&format!("/cases/{}?sent={kind}", answer.case_id)).into_response()
}

/// A date typed as `YYYY-MM-DD`; empty is `None`.
fn date(fields: &Fields, name: &str, lang: Lang) -> Result<Option<v1::Date>, Refused> {
    let text = fields.text(name);
    if text.is_empty() {
        return Ok(None);
    }
    let parsed: Result<jiff::civil::Date, _> = text.parse();
    match parsed {
        Ok(d) => Ok(Some(v1::Date {
            year: i32::from(d.year()),
            month: i32::from(d.month()),
            day: i32::from(d.day()),
        })),
        Err(_) => Err(Refused::field(
            name,
            lang.text("form-bad-date", &[("value", FluentValue::from(text))]),
        )),
    }
}

/// An enum chosen in a select: `with-family` is `PREFIX_WITH_FAMILY`; empty is 0.
fn choice(fields: &Fields, name: &str, prefix: &str, from_name: fn(&str) -> Option<i32>) -> i32 {
    let text = fields.text(name);
    if text.is_empty() {
        return 0;
    }
    from_name(&format!(
        "{prefix}{}",
        text.to_ascii_uppercase().replace('-', "_")
    ))
    .unwrap_or(-1)
}

/// A list typed with commas: `GT, MX`.
fn list(fields: &Fields, name: &str) -> Vec<String> {
    fields
        .text(name)
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

macro_rules! enum_of {
    ($ty:ty) => {
        |name: &str| <$ty>::from_str_name(name).map(|v| v as i32)
    };
}

/// The notice the form describes. Only what a form cannot carry is checked
/// here (a date or number that does not parse); the rules are the gateway's.
fn read_notice(fields: &Fields, lang: Lang) -> Result<AdvanceNotice, Refused> {
    let age = match (
        date(fields, "child.birth_date", lang)?,
        fields.text("child.estimated_age_years"),
    ) {
        (Some(birth), _) => Some(v1::child::Age::BirthDate(birth)),
        (None, years) if years.is_empty() => None,
        (None, years) => Some(v1::child::Age::EstimatedAgeYears(years.parse().map_err(
            |_| {
                Refused::field(
                    "child.estimated_age_years",
                    lang.text(
                        "form-bad-number",
                        &[("value", FluentValue::from(years.clone()))],
                    ),
                )
            },
        )?)),
    };
    let document_number = fields.text("child.documents[0].number");
    let documents = if document_number.is_empty() {
        Vec::new()
    } else {
        vec![v1::IdentityDocument {
            kind: choice(
                fields,
                "child.documents[0].kind",
                "DOCUMENT_KIND_",
                enum_of!(v1::DocumentKind),
            ),
            number: document_number,
            issuing_country: fields
                .text("child.documents[0].issuing_country")
                .to_ascii_uppercase(),
        }]
    };
    let child = v1::Child {
        given_names: fields.text("child.given_names"),
        family_names: fields.text("child.family_names"),
        age,
        sex: choice(fields, "child.sex", "SEX_", enum_of!(v1::Sex)),
        nationalities: list(fields, "child.nationalities")
            .into_iter()
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        documents,
        languages: list(fields, "child.languages"),
    };
    let best_interest = {
        let determination = v1::BestInterestDetermination {
            authority_kind: choice(
                fields,
                "best_interest.authority_kind",
                "DETERMINING_AUTHORITY_",
                enum_of!(v1::DeterminingAuthority),
            ),
            authority_name: fields.text("best_interest.authority_name"),
            date: date(fields, "best_interest.date", lang)?,
            outcome: choice(
                fields,
                "best_interest.outcome",
                "BEST_INTEREST_OUTCOME_",
                enum_of!(v1::BestInterestOutcome),
            ),
        };
        // Nothing typed: no determination at all (the gateway says it is required).
        (determination != v1::BestInterestDetermination::default()).then_some(determination)
    };
    let consular_interview = {
        let consulate = fields.text("consular_interview.consulate");
        let date = date(fields, "consular_interview.date", lang)?;
        (!consulate.is_empty() || date.is_some())
            .then_some(v1::ConsularInterview { consulate, date })
    };
    let protection_concerns = fields
        .all("protection_concerns")
        .into_iter()
        .map(|value| {
            v1::ProtectionConcern::from_str_name(&format!(
                "PROTECTION_CONCERN_{}",
                value.to_ascii_uppercase().replace('-', "_")
            ))
            .map_or(-1, |v| v as i32)
        })
        .collect();
    Ok(AdvanceNotice {
        child: Some(child),
        companionship: choice(
            fields,
            "companionship",
            "COMPANIONSHIP_",
            enum_of!(v1::Companionship),
        ),
        protection_concerns,
        risk_level: choice(fields, "risk_level", "RISK_LEVEL_", enum_of!(v1::RiskLevel)),
        family_group_id: fields.text("family_group_id"),
        best_interest,
        consular_interview,
        transport: Some(v1::PlannedTransport {
            mode: choice(
                fields,
                "transport.mode",
                "TRANSPORT_MODE_",
                enum_of!(v1::TransportMode),
            ),
            point_of_entry: fields.text("transport.point_of_entry"),
            earliest_date: date(fields, "transport.earliest_date", lang)?,
        }),
        origin_contact: Some(v1::OriginContact {
            family_located: fields.checked("origin_contact.family_located"),
            contact_name: fields.text("origin_contact.contact_name"),
            contact_phone: fields.text("origin_contact.contact_phone"),
            relationship: fields.text("origin_contact.relationship"),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_slots_are_read_from_the_refusal() {
        let message = "arrival 2026-12-04 21:30 America/Guatemala (Friday) is an evening or night arrival outside the reception hours; nearest allowed arrivals: before it 2026-12-04 15:45 America/Guatemala (Friday); after it 2026-12-05 08:00 America/Guatemala (Saturday), 2026-12-07 08:00 America/Guatemala (Monday)".to_owned();
        assert_eq!(
            slots_in(&[message]),
            [
                "2026-12-04 21:30",
                "2026-12-04 15:45",
                "2026-12-05 08:00",
                "2026-12-07 08:00"
            ]
        );
    }

    #[test]
    fn a_refusal_sent_only_as_a_sentence_still_names_its_field() {
        assert_eq!(
            legacy_field("advance_notice.best_interest: is required").as_deref(),
            Some("advance_notice.best_interest")
        );
        assert_eq!(legacy_field("the gateway is busy: try again"), None);
    }
}
