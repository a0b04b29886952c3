//! The console's routes, the state they share, and what every response
//! passes through: the reader's language, the security headers, and (for
//! pages behind the login) the session.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    Router,
    extract::{FromRequestParts, Request},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};

use super::{
    Agency, ConsoleConfig, arrival, custody, pages,
    session::{self, PostRefused, Session, Sessions},
    steps, summary,
};
use crate::{Client, i18n::Lang};

/// What every request of one console shares.
pub(crate) struct State {
    /// The agency's connection to its gateway (cloned per request: one channel).
    pub client: Client,
    /// The staff file.
    pub users: PathBuf,
    /// Logins read and rewrite the staff file: one at a time.
    pub accounts_lock: Mutex<()>,
    /// Failed logins of logins that do not exist (count, locked until), so
    /// that they lock like real ones and the lock tells nothing.
    pub unknown_logins: Mutex<HashMap<String, (u32, i64)>>,
    pub sessions: Sessions,
    /// Served over TLS (the cookie is then `Secure`).
    pub secure: bool,
    /// The origins a form post may come from.
    pub origins: Vec<String>,
    /// The agency the console acts as, if its certificate names one.
    pub agency: Option<Agency>,
    /// The time zone of times not tied to an arrival (the inbox).
    pub home_zone: String,
}

impl State {
    pub fn new(
        client: Client,
        config: &ConsoleConfig,
        secure: bool,
        origins: Vec<String>,
        agency: Option<Agency>,
        home_zone: String,
    ) -> State {
        State {
            client,
            users: config.users.clone(),
            accounts_lock: Mutex::new(()),
            unknown_logins: Mutex::new(HashMap::new()),
            sessions: Sessions::new(config.idle_timeout),
            secure,
            origins,
            agency,
            home_zone,
        }
    }
}

/// Every route of the console.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/login", get(pages::login_page).post(pages::log_in))
        .route("/logout", post(pages::log_out))
        .route("/inbox", get(pages::inbox))
        .route("/inbox/ack", post(pages::acknowledge))
        .route("/inbox/events", get(pages::inbox_events))
        .route("/cases", get(pages::cases))
        .route("/cases/{case_id}", get(pages::case))
        .route(
            "/cases/{case_id}/arrival",
            get(arrival::arrival).post(arrival::answer_arrival),
        )
        .route(
            "/cases/{case_id}/handoff",
            get(custody::handoff).post(custody::acknowledge_handoff),
        )
        .route(
            "/cases/{case_id}/reception",
            get(custody::reception).post(custody::confirm_reception),
        )
        .route(
            "/cases/{case_id}/withdraw",
            get(custody::withdraw).post(custody::withdraw_case),
        )
        .route(
            "/cases/{case_id}/summary",
            get(summary::summary).post(summary::send_summary),
        )
        .route("/notice/new", get(steps::new_notice))
        .route("/notice", post(steps::send_notice))
        .route("/static/console.css", get(stylesheet))
        .route("/static/console.js", get(script))
        .fallback(pages::not_found)
        .layer(middleware::from_fn(frame))
        .with_state(state)
}

/// The reader's language, for every handler.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for Reader {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, StatusCode> {
        Ok(parts
            .extensions
            .get::<Reader>()
            .copied()
            .unwrap_or(Reader(Lang::Es)))
    }
}

/// The language a request asks for: `?lang=` (the switch), then the `lang`
/// cookie, then `Accept-Language`, then Spanish, the region's working language.
fn language(parts: &Parts) -> (Lang, bool) {
    let switched = parts.uri.query().and_then(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("lang="))
            .find_map(Lang::from_tag)
    });
    if let Some(lang) = switched {
        return (lang, true);
    }
    let chosen = session::cookie(&parts.headers, "lang")
        .and_then(Lang::from_tag)
        .or_else(|| {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        });
    (chosen.unwrap_or(Lang::Es), false)
}

/// Language and security headers around every response.
async fn frame(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let (lang, switched) = language(&parts);
    parts.extensions.insert(Reader(lang));
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        // `same-origin`, not `no-referrer`: under `no-referrer` browsers send
        // `Origin: null` with a form post, and the origin check would have
        // nothing to check. Other sites still get no referrer at all.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if switched {
        let cookie = format!(
            "lang={}; SameSite=Strict; Path=/; Max-Age=31536000",
            lang.tag()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A logged-in official, for every page behind the login. Without a
/// session (or with one idle too long, or of a disabled account) the
/// browser is sent to the login page.
pub(crate) struct Staff {
    pub session_id: String,
    pub session: Session,
    /// The agency the console acts as, for the page header: `MX · INM`.
    pub agency: String,
}

impl FromRequestParts<Arc<State>> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<State>) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let id = session::cookie(&parts.headers, session::cookie_name(state.secure))
            .ok_or_else(to_login)?
            .to_owned();
        let session = state
            .sessions
            .get(&id, Instant::now())
            .ok_or_else(to_login)?;
        let users = state.users.clone();
        let login = session.login.clone();
        let active = tokio::task::spawn_blocking(move || super::accounts::active(&users, &login))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if !active {
            state.sessions.close(&id);
            return Err(to_login());
        }
        let agency = state
            .agency
            .as_ref()
            .map(|a| format!("{} · {}", a.country, a.name))
            .unwrap_or_default();
        Ok(Staff {
            session_id: id,
            session,
            agency,
        })
    }
}

/// The fields of a posted form, in order (a field may repeat: checkboxes).
#[derive(Debug, Default, Clone)]
pub(crate) struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed; empty if absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).map(str::trim).unwrap_or_default().to_owned()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether the checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// The checks every POST of a logged-in official passes before it changes anything.
pub(crate) fn check_post(
    state: &State,
    headers: &HeaderMap,
    staff: &Staff,
    fields: &Fields,
) -> Result<(), PostRefused> {
    session::check_origin(headers, &state.origins)?;
    session::check_token(&staff.session, fields.get(session::CSRF_FIELD))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/console.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/console.js"),
    )
}
