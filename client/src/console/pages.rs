//! The pages: each handler asks the gateway, renders a template from
//! `client/templates/`, and for a form, checks the post and submits.

use std::{convert::Infallible, sync::Arc, time::Instant};

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State as Shared},
    http::{HeaderMap, StatusCode, header},
    response::{
        Html, IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use fluent_bundle::FluentValue;
use futures::{Stream, StreamExt};
use retorno_proto::v1::{CaseState, CaseView, InboxItem, envelope_body};

use super::{
    accounts::{self, LoginRefused},
    dates,
    session::{self, PostRefused},
    web::{Fields, Reader, Staff, State, check_post},
};
use crate::{ClientError, i18n::Lang, refusal, words::Times};

/// Translations for a template: `{{ frame.tr.t("inbox-title") }}`.
#[derive(Clone, Copy)]
pub(crate) struct Tr(pub Lang);

impl Tr {
    /// The message `id`.
    pub fn t(&self, id: &str) -> String {
        self.0.text(id, &[])
    }
}

/// A language in the switch.
pub(crate) struct LangLink {
    pub tag: &'static str,
    pub name: &'static str,
    pub current: bool,
}

/// The logged-in official, as the page frame shows them.
pub(crate) struct StaffView {
    pub name: String,
    /// The agency the console acts as: `MX · INM`.
    pub agency: String,
    pub csrf: String,
}

/// A message at the top of the page (`#refusal`): a refusal, or that something was sent.
pub(crate) struct Flash {
    pub text: String,
    pub ok: bool,
}

/// What every page's frame (base.html) needs.
pub(crate) struct Frame {
    pub lang: &'static str,
    pub tr: Tr,
    pub langs: Vec<LangLink>,
    pub staff: Option<StaffView>,
    pub flash: Option<Flash>,
}

impl Frame {
    pub(crate) fn new(lang: Lang, staff: Option<&Staff>) -> Frame {
        Frame {
            lang: lang.tag(),
            tr: Tr(lang),
            langs: Lang::ALL
                .iter()
                .map(|l| LangLink {
                    tag: l.tag(),
                    name: l.name(),
                    current: *l == lang,
                })
                .collect(),
            staff: staff.map(|s| StaffView {
                name: s.session.display_name.clone(),
                agency: s.agency.clone(),
                csrf: s.session.csrf.clone(),
            }),
            flash: None,
        }
    }

    pub(crate) fn with_flash(mut self, text: String, ok: bool) -> Frame {
        self.flash = Some(Flash { text, ok });
        self
    }
}

/// Renders a template as a page, or a plain error if a template fails (it should not: they are checked at compile time).
pub(crate) fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be rendered",
        )
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    frame: Frame,
    title: String,
    back: Option<(String, String)>,
}

/// A page of a title and the frame's flash.
pub(crate) fn message_page(frame: Frame, title: String) -> impl Template {
    MessagePage {
        frame,
        title,
        back: None,
    }
}

/// A page that says one thing (a refusal, a missing page) with a way back.
fn message(
    status: StatusCode,
    lang: Lang,
    staff: Option<&Staff>,
    title: String,
    text: String,
    ok: bool,
) -> Response {
    let back = staff.map(|_| ("/inbox".to_owned(), lang.text("nav-inbox", &[])));
    page(
        status,
        &MessagePage {
            frame: Frame::new(lang, staff).with_flash(text, ok),
            title,
            back,
        },
    )
}

/// A POST refused by the CSRF or origin check: nothing was changed.
pub(crate) fn post_refused(lang: Lang, staff: Option<&Staff>, refused: PostRefused) -> Response {
    message(
        StatusCode::FORBIDDEN,
        lang,
        staff,
        lang.text("post-refused-title", &[]),
        lang.text(refused.message_id(), &[]),
        false,
    )
}

/// A call to the gateway that failed, in the reader's language.
pub(crate) fn gateway_failure(error: &ClientError, lang: Lang) -> String {
    match error {
        ClientError::Status(status) => refusal::render_status(status, lang),
        other => lang.text(
            "gateway-unreachable",
            &[("reason", FluentValue::from(other.render(lang)))],
        ),
    }
}

pub(crate) fn gateway_page(lang: Lang, staff: &Staff, error: &ClientError) -> Response {
    let status = match error {
        ClientError::Status(s) if s.code() == tonic::Code::PermissionDenied => {
            StatusCode::FORBIDDEN
        }
        ClientError::Status(s) if s.code() == tonic::Code::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_GATEWAY,
    };
    message(
        status,
        lang,
        Some(staff),
        lang.text("gateway-refused-title", &[]),
        gateway_failure(error, lang),
        false,
    )
}

/// Any path the console does not have.
pub(crate) async fn not_found(Reader(lang): Reader) -> Response {
    message(
        StatusCode::NOT_FOUND,
        lang,
        None,
        lang.text("not-found-title", &[]),
        lang.text("not-found", &[]),
        false,
    )
}

// ---- login, logout ----

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    frame: Frame,
    login: String,
}

pub(crate) async fn login_page(Reader(lang): Reader) -> Response {
    let frame = Frame::new(lang, None);
    page(
        StatusCode::OK,
        &LoginPage {
            frame,
            login: String::new(),
        },
    )
}

pub(crate) async fn log_in(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    // No session yet, so no token: the origin check and SameSite=Strict stand for it.
    if let Err(refused) = session::check_origin(&headers, &state.origins) {
        return post_refused(lang, None, refused);
    }
    let fields = Fields(fields);
    let login = fields.text("login");
    let password = fields.get("password").unwrap_or_default().to_owned();
    let outcome = check_login(&state, &login, &password).await;
    let refusal = match outcome {
        Ok(account) => {
            let Some(id) =
                state
                    .sessions
                    .open(&account.login, &account.display_name, Instant::now())
            else {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    lang,
                    None,
                    lang.text("login-title", &[]),
                    lang.text("login-failed-random", &[]),
                    false,
                );
            };
            return (
                [(
                    header::SET_COOKIE,
                    session::session_cookie(&id, state.secure),
                )],
                Redirect::to("/inbox"),
            )
                .into_response();
        }
        Err(Some(LoginRefused::Locked { .. })) => lang.text(
            "login-locked",
            &[
                ("attempts", FluentValue::from(accounts::MAX_FAILED_LOGINS)),
                ("minutes", FluentValue::from(accounts::LOCK_SECONDS / 60)),
            ],
        ),
        Err(Some(_)) => lang.text("login-wrong", &[]),
        Err(None) => lang.text("login-failed-file", &[]),
    };
    let frame = Frame::new(lang, None).with_flash(refusal, false);
    page(StatusCode::UNAUTHORIZED, &LoginPage { frame, login })
}

/// Checks a login against the staff file (argon2 off the async threads),
/// counting failures of unknown logins here so that they lock alike.
/// `Err(None)`: the staff file cannot be used.
async fn check_login(
    state: &Arc<State>,
    login: &str,
    password: &str,
) -> Result<accounts::Account, Option<LoginRefused>> {
    let now = jiff::Timestamp::now().as_second();
    let shared = Arc::clone(state);
    let (login, password) = (login.to_owned(), password.to_owned());
    let result = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = shared.accounts_lock.lock();
        let outcome = accounts::log_in(&shared.users, &login, &password, now);
        match outcome {
            Ok(Err(LoginRefused::UnknownLogin)) => Ok(Err(unknown_login(&shared, &login, now))),
            other => other,
        }
    })
    .await;
    match result {
        Ok(Ok(Ok(account))) => Ok(account),
        Ok(Ok(Err(refused))) => Err(Some(refused)),
        _ => Err(None),
    }
}

/// Counts a failed login of an unknown login exactly as the file counts a real one's.
fn unknown_login(state: &State, login: &str, now: i64) -> LoginRefused {
    let Ok(mut unknown) = state.unknown_logins.lock() else {
        return LoginRefused::Wrong;
    };
    if unknown.len() > 10_000 {
        unknown.retain(|_, (_, until)| *until > now);
    }
    let (count, until) = unknown.entry(login.to_owned()).or_insert((0, 0));
    if now < *until {
        return LoginRefused::Locked { until: *until };
    }
    *count += 1;
    if *count >= accounts::MAX_FAILED_LOGINS {
        *count = 0;
        *until = now + accounts::LOCK_SECONDS;
        return LoginRefused::Locked { until: *until };
    }
    LoginRefused::Wrong
}

pub(crate) async fn log_out(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(refused) = check_post(&state, &headers, &staff, &Fields(fields)) {
        return post_refused(lang, Some(&staff), refused);
    }
    state.sessions.close(&staff.session_id);
    (
        [(header::SET_COOKIE, session::expired_cookie(state.secure))],
        Redirect::to("/login"),
    )
        .into_response()
}

// ---- inbox ----

/// One inbox item as the page lists it.
pub(crate) struct InboxLine {
    pub cursor: u64,
    pub message_id: String,
    pub case_id: String,
    pub kind: String,
    pub what: String,
    pub sender: String,
    pub received: String,
    pub redacted: bool,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    frame: Frame,
    lines: Vec<InboxLine>,
    last_cursor: u64,
    csrf: String,
}

#[derive(Template)]
#[template(path = "inbox_line.html")]
struct InboxLineFragment<'a> {
    tr: Tr,
    line: &'a InboxLine,
    csrf: &'a str,
}

/// A sender as a line of a page: `MX INM (Ana Pérez)`.
pub(crate) fn sender_line(sender: Option<&retorno_proto::v1::Sender>, lang: Lang) -> String {
    let Some(sender) = sender else {
        return String::new();
    };
    let mut line = format!("{} {}", sender.country, sender.agency);
    if !sender.delegated_consulate_country.is_empty() {
        line.push_str(&format!(" ({})", sender.delegated_consulate_country));
    }
    if !sender.official.is_empty() {
        line.push_str(&format!(
            " — {}",
            lang.text(
                "named-by-agency",
                &[("official", FluentValue::from(sender.official.as_str()))]
            )
        ));
    }
    line
}

pub(crate) use crate::words::instant;

fn inbox_line(item: &InboxItem, lang: Lang, zone: &str) -> InboxLine {
    let body = item.body.clone().unwrap_or_default();
    let kind = crate::words::kind_of(body.payload.as_ref());
    InboxLine {
        cursor: item.cursor,
        message_id: body.message_id.clone(),
        case_id: body.case_id.clone(),
        kind: kind.to_owned(),
        what: match &body.payload {
            // The caseworker needs to know who: the child's name, as the gateway let this agency see it.
            Some(envelope_body::Payload::AdvanceNotice(notice)) => {
                let child = notice.child.clone().unwrap_or_default();
                format!(
                    "{}: {} {}",
                    lang.text("kind-advance_notice", &[]),
                    child.given_names,
                    child.family_names
                )
            }
            _ => crate::words::kind(kind, lang),
        },
        sender: sender_line(body.sender.as_ref(), lang),
        received: instant(item.received_at.as_ref())
            .map(|at| dates::date_time(at, zone, lang))
            .unwrap_or_default(),
        redacted: item.redacted,
    }
}

pub(crate) async fn inbox(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
) -> Response {
    let mut client = state.client.clone();
    let mut stream = match client.subscribe(None, false).await {
        Ok(stream) => stream,
        Err(error) => return gateway_page(lang, &staff, &error),
    };
    let zone = state.home_zone.clone();
    let mut lines = Vec::new();
    let mut last_cursor = 0;
    while let Some(Ok(item)) = stream.next().await {
        last_cursor = last_cursor.max(item.cursor);
        lines.push(inbox_line(&item, lang, &zone));
    }
    let csrf = staff.session.csrf.clone();
    let frame = Frame::new(lang, Some(&staff));
    page(
        StatusCode::OK,
        &InboxPage {
            frame,
            lines,
            last_cursor,
            csrf,
        },
    )
}

/// `?sent=<kind>` after a step was accepted.
#[derive(serde::Deserialize)]
pub(crate) struct Sent {
    sent: Option<String>,
}

#[derive(serde::Deserialize)]
pub(crate) struct After {
    after: Option<u64>,
}

/// The live inbox: every new item as an `<li>` (the same fragment the page
/// lists), for the page's script to insert; ends when the session does.
pub(crate) async fn inbox_events(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    Query(after): Query<After>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Response> {
    let mut client = state.client.clone();
    let zone = state.home_zone.clone();
    let stream = client
        .subscribe(after.after, true)
        .await
        .map_err(|error| gateway_page(lang, &staff, &error))?;
    let csrf = staff.session.csrf.clone();
    let session_id = staff.session_id.clone();
    let events = stream
        .take_while(move |_| {
            let alive = state.sessions.get(&session_id, Instant::now()).is_some();
            async move { alive }
        })
        .filter_map(move |item| {
            let rendered = item.ok().and_then(|item| {
                let line = inbox_line(&item, lang, &zone);
                InboxLineFragment {
                    tr: Tr(lang),
                    line: &line,
                    csrf: &csrf,
                }
                .render()
                .ok()
                .map(|html| {
                    Event::default()
                        .id(item.cursor.to_string())
                        .data(html.replace('\n', ""))
                })
            });
            async move { rendered.map(Ok) }
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

pub(crate) async fn acknowledge(
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
    let Ok(cursor) = fields.text("cursor").parse::<u64>() else {
        return message(
            StatusCode::BAD_REQUEST,
            lang,
            Some(&staff),
            lang.text("inbox-title", &[]),
            lang.text("ack-bad-cursor", &[]),
            false,
        );
    };
    let mut client = state.client.clone();
    match client.acknowledge(cursor).await {
        Ok(_) => Redirect::to("/inbox").into_response(),
        Err(error) => gateway_page(lang, &staff, &error),
    }
}

// ---- cases ----

/// A case as a row of the list.
pub(crate) struct CaseRow {
    pub case_id: String,
    pub state: String,
    pub state_code: String,
    pub countries: String,
    pub companionship: String,
    pub arrival: String,
    pub point: String,
    /// The next follow-up due after reception, if received.
    pub follow_up: String,
}

#[derive(Template)]
#[template(path = "cases.html")]
struct CasesPage {
    frame: Frame,
    rows: Vec<CaseRow>,
    counts: Vec<(String, String, usize)>,
    filter: CaseFilter,
    states: Vec<(String, String)>,
}

/// The filters of the case list, as the query string carries them.
#[derive(Default, serde::Deserialize)]
pub(crate) struct CaseFilter {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub point: String,
    #[serde(default)]
    pub arrival: String,
    #[serde(default)]
    pub unaccompanied: String,
    #[serde(default)]
    pub country: String,
}

/// A state's short name: `arrival-agreed`.
pub(crate) fn state_code(state: CaseState) -> String {
    crate::words::code(state.as_str_name(), "CASE_STATE_")
}

/// The arrival a case is about: the agreed one, else the open proposal.
fn arrival_of(case: &CaseView) -> Option<&retorno_proto::v1::ArrivalProposal> {
    case.agreed_arrival.as_ref().or(case.open_proposal.as_ref())
}

impl CaseFilter {
    fn keeps(&self, case: &CaseView) -> bool {
        let arrival = arrival_of(case);
        let local_day = arrival.and_then(|a| {
            instant(a.arrival.as_ref()).map(|at| dates::zoned(at, &a.time_zone).date().to_string())
        });
        (self.state.is_empty() || state_code(case.state()) == self.state)
            && (self.point.is_empty()
                || arrival
                    .is_some_and(|a| a.point_of_entry.eq_ignore_ascii_case(self.point.trim())))
            && (self.arrival.is_empty() || local_day.as_deref() == Some(self.arrival.trim()))
            && (self.unaccompanied.is_empty()
                || case.companionship() == retorno_proto::v1::Companionship::Unaccompanied)
            && (self.country.is_empty()
                || [&case.origin_country, &case.destination_country]
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(self.country.trim())))
    }
}

fn case_row(case: &CaseView, lang: Lang) -> CaseRow {
    let arrival = arrival_of(case);
    CaseRow {
        case_id: case.case_id.clone(),
        state: crate::words::state(case.state(), lang),
        state_code: state_code(case.state()),
        countries: format!("{} → {}", case.destination_country, case.origin_country),
        companionship: crate::words::companionship(case.companionship(), lang),
        arrival: arrival
            .and_then(|a| {
                instant(a.arrival.as_ref()).map(|at| dates::date_time(at, &a.time_zone, lang))
            })
            .unwrap_or_default(),
        point: arrival
            .map(|a| a.point_of_entry.clone())
            .unwrap_or_default(),
        follow_up: String::new(),
    }
}

/// The first follow-up not yet past its due day, from the reception (the
/// list has no timeline to tell which were reported; the reception page does).
/// The next follow-up not yet reported, labelled as the reception page
/// labels it ([`super::custody::follow_ups`]).
fn next_follow_up(case: &CaseView, zone: &str, lang: Lang) -> String {
    super::custody::follow_ups(case, zone, lang)
        .into_iter()
        .find(|line| line.status != "done")
        .map(|line| line.label)
        .unwrap_or_default()
}

pub(crate) async fn cases(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    Query(filter): Query<CaseFilter>,
) -> Response {
    let mut client = state.client.clone();
    let all = match client.cases(None).await {
        Ok(all) => all,
        Err(error) => return gateway_page(lang, &staff, &error),
    };
    let mut counts: Vec<(String, String, usize)> = Vec::new();
    for case in &all {
        let code = state_code(case.state());
        match counts.iter_mut().find(|(c, _, _)| *c == code) {
            Some(entry) => entry.2 += 1,
            None => counts.push((code, crate::words::state(case.state(), lang), 1)),
        }
    }
    let rows = all
        .iter()
        .filter(|c| filter.keeps(c))
        .map(|c| CaseRow {
            follow_up: next_follow_up(c, &case_zone(c, &state.home_zone), lang),
            ..case_row(c, lang)
        })
        .collect();
    let states = ALL_STATES
        .iter()
        .map(|s| (state_code(*s), crate::words::state(*s, lang)))
        .collect();
    let frame = Frame::new(lang, Some(&staff));
    page(
        StatusCode::OK,
        &CasesPage {
            frame,
            rows,
            counts,
            filter,
            states,
        },
    )
}

const ALL_STATES: [CaseState; 9] = [
    CaseState::Notified,
    CaseState::SummaryShared,
    CaseState::ArrivalProposed,
    CaseState::AwaitingProposal,
    CaseState::ArrivalAgreed,
    CaseState::HandedOver,
    CaseState::Received,
    CaseState::FollowUp,
    CaseState::Withdrawn,
];

// ---- a case ----

/// One step of the timeline.
pub(crate) struct TimelineLine {
    pub kind: String,
    pub what: String,
    pub at: String,
    pub sender: String,
    pub summary: String,
    pub refused: String,
    pub flag: String,
}

/// A step this role may take now, as a button to its form.
pub(crate) struct StepLink {
    pub kind: String,
    pub label: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    frame: Frame,
    row: CaseRow,
    timeline: Vec<TimelineLine>,
    steps: Vec<StepLink>,
}

/// Where the form of a step is.
pub(crate) fn step_href(case_id: &str, kind: &str) -> String {
    let page = match kind {
        "arrival_proposal" | "arrival_response" => "arrival",
        "handoff_ack" => "handoff",
        "reception_confirmation" | "follow_up_report" => "reception",
        "case_summary" => "summary",
        "case_withdrawal" => "withdraw",
        _ => "",
    };
    format!("/cases/{case_id}/{page}")
}

/// The zone a case's times read in: its arrival's point, else the console's own.
pub(crate) fn case_zone(case: &CaseView, home: &str) -> String {
    arrival_of(case)
        .map(|a| a.time_zone.clone())
        .filter(|z| !z.is_empty())
        .unwrap_or_else(|| home.to_owned())
}

/// The case page's timeline: each step in `lang`, at its time in `zone`,
/// with the rules' remark and any refusal rendered from their codes.
fn timeline_lines(view: &CaseView, zone: &str, lang: Lang) -> Vec<TimelineLine> {
    view.timeline
        .iter()
        .map(|entry| TimelineLine {
            kind: entry.kind.clone(),
            what: crate::words::kind(&entry.kind, lang),
            at: instant(entry.at.as_ref())
                .map(|at| dates::date_time(at, zone, lang))
                .unwrap_or_default(),
            sender: sender_line(entry.sender.as_ref(), lang),
            // A step the reader may not see reads as its kind, which `what` shows already.
            summary: Some(crate::words::timeline_line(entry, lang, Times::Full))
                .filter(|line| *line != crate::words::kind(&entry.kind, lang))
                .unwrap_or_default(),
            refused: crate::words::reason(&entry.refused, entry.refused_detail.as_ref(), lang),
            flag: crate::words::reason(&entry.flag, entry.flag_detail.as_ref(), lang),
        })
        .collect()
}

pub(crate) async fn case(
    Shared(state): Shared<Arc<State>>,
    Reader(lang): Reader,
    staff: Staff,
    Path(case_id): Path<String>,
    Query(sent): Query<Sent>,
) -> Response {
    let mut client = state.client.clone();
    let view = match client.case(&case_id).await {
        Ok(view) => view,
        Err(error) => return gateway_page(lang, &staff, &error),
    };
    let home = state.home_zone.clone();
    let zone = case_zone(&view, &home);
    let timeline = timeline_lines(&view, &zone, lang);
    let steps = view
        .allowed_steps
        .iter()
        .map(|kind| StepLink {
            kind: kind.clone(),
            label: lang.text(&format!("step-{kind}"), &[]),
            href: step_href(&view.case_id, kind),
        })
        .collect();
    let mut frame = Frame::new(lang, Some(&staff));
    if let Some(kind) = sent.sent.filter(|k| Lang::En.has(&format!("kind-{k}"))) {
        let what = lang.text(&format!("kind-{kind}"), &[]);
        frame = frame.with_flash(
            lang.text("step-sent", &[("what", FluentValue::from(what))]),
            true,
        );
    }
    page(
        StatusCode::OK,
        &CasePage {
            frame,
            row: case_row(&view, lang),
            timeline,
            steps,
        },
    )
}

#[cfg(test)]
mod tests {
    use retorno_proto::{
        refusal::{Code, Reason},
        v1::TimelineEntry,
    };

    use super::*;

    #[test]
    fn a_timeline_shows_remarks_and_refusals_in_the_readers_language() {
        let late = "late: acknowledged 72 hours after the agreed arrival";
        let early = "too early now";
        let view = CaseView {
            timeline: vec![
                TimelineEntry {
                    kind: "handoff_ack".into(),
                    summary: "handed over".into(),
                    flag: late.into(),
                    flag_detail: Some(
                        Reason::new(Code::HandoffLate)
                            .with("hours", 72)
                            .with("arrival", "2026-12-04T11:00:00-06:00")
                            .with("time_zone", "America/Guatemala")
                            .with("country", "GT")
                            .with("late_after", 48)
                            .detail(late),
                    ),
                    ..Default::default()
                },
                TimelineEntry {
                    kind: "follow_up_report".into(),
                    summary: retorno_proto::timeline::unseen_line("follow_up_report"),
                    refused: early.into(),
                    refused_detail: Some(
                        Reason::new(Code::TooEarly)
                            .with("rule", "follow_up_tolerance_days")
                            .with("earliest", "2027-01-01T08:00:00-06:00")
                            .with("time_zone", "America/Guatemala")
                            .detail(early),
                    ),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let lines = timeline_lines(&view, "America/Guatemala", Lang::Es);
        assert_eq!(
            lines[0].flag,
            "Entrega tardía: se acusó 72 horas después del arribo acordado (el viernes 2026-12-04 11:00, hora de Guatemala), más de las 48 horas que admite GT (handoff_late_after_hours)."
        );
        assert_eq!(
            lines[1].refused,
            "Demasiado pronto: lo más temprano permitido es el viernes 2027-01-01 08:00 (hora de Guatemala), según follow_up_tolerance_days."
        );
        // The hidden step is named once, by its kind.
        assert_eq!(lines[1].what, "Informe de seguimiento");
        assert_eq!(lines[1].summary, "");
        let english = timeline_lines(&view, "America/Guatemala", Lang::En);
        assert_eq!(
            (english[0].flag.as_str(), english[1].refused.as_str()),
            (late, early)
        );
    }
}
