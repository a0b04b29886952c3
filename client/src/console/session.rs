//! Logged-in sessions and the checks every form post passes.
//!
//! A session id is 256 random bits from the system's source (`ring::rand`),
//! sent only in a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`, and
//! `Secure` over TLS); sessions live in memory, so a restart logs everyone
//! out. A session idle for longer than the console's idle timeout is gone.
//!
//! Every POST carries the session's CSRF token in a hidden field (`csrf`) and
//! an `Origin` (or `Referer`) header naming the console itself; either
//! missing or different, the post is refused before it changes anything.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, header};
use ring::rand::SecureRandom;

/// The hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// A logged-in official.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The account's login.
    pub login: String,
    /// The name that travels with every message this official sends.
    pub display_name: String,
    /// The token every form of this session carries.
    pub csrf: String,
    last_seen: Instant,
}

/// The open sessions of one console.
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    idle_timeout: Duration,
}

impl Sessions {
    /// No sessions yet; each ends after `idle_timeout` without a request.
    pub fn new(idle_timeout: Duration) -> Sessions {
        Sessions {
            open: Mutex::new(HashMap::new()),
            idle_timeout,
        }
    }

    /// Opens a session for an official who just logged in; returns its id.
    pub fn open(&self, login: &str, display_name: &str, now: Instant) -> Option<String> {
        let id = random_token()?;
        let session = Session {
            login: login.to_owned(),
            display_name: display_name.to_owned(),
            csrf: random_token()?,
            last_seen: now,
        };
        let mut open = self.open.lock().ok()?;
        // Drop the idle ones now and then, so that memory does not grow with abandoned sessions.
        open.retain(|_, s| now.saturating_duration_since(s.last_seen) <= self.idle_timeout);
        open.insert(id.clone(), session);
        Some(id)
    }

    /// The session `id` at `now`, if it exists and has not been idle too
    /// long; a request through it counts as activity.
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut open = self.open.lock().ok()?;
        let session = open.get_mut(id)?;
        if now.saturating_duration_since(session.last_seen) > self.idle_timeout {
            open.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Ends a session (logout, or its account was disabled).
    pub fn close(&self, id: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(id);
        }
    }
}

/// 256 random bits as 64 hex digits; `None` if the system's source fails.
fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why a POST was refused before it changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostRefused {
    /// Neither `Origin` nor `Referer` was sent.
    NoOrigin,
    /// The post came from a page of another site.
    OtherOrigin,
    /// The form's CSRF token is missing or is not this session's.
    BadToken,
}

impl PostRefused {
    /// The message id of the refusal in `console.ftl`.
    pub fn message_id(self) -> &'static str {
        match self {
            PostRefused::NoOrigin => "post-refused-no-origin",
            PostRefused::OtherOrigin => "post-refused-other-origin",
            PostRefused::BadToken => "post-refused-token",
        }
    }
}

/// Checks that a POST comes from one of the console's own pages: its
/// `Origin` (or, without one, its `Referer`) is one of `own_origins`.
pub fn check_origin(headers: &HeaderMap, own_origins: &[String]) -> Result<(), PostRefused> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => origin.to_owned(),
        (None, Some(referer)) => origin_of(referer).ok_or(PostRefused::OtherOrigin)?,
        (None, None) => return Err(PostRefused::NoOrigin),
    };
    if own_origins
        .iter()
        .any(|own| own.eq_ignore_ascii_case(&origin))
    {
        Ok(())
    } else {
        Err(PostRefused::OtherOrigin)
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}"))
}

/// Checks a form's CSRF token against the session's, in constant time.
pub fn check_token(session: &Session, given: Option<&str>) -> Result<(), PostRefused> {
    let given = given.ok_or(PostRefused::BadToken)?;
    #[allow(deprecated)] // ring 0.17 keeps it; its replacement is not public yet.
    ring::constant_time::verify_slices_are_equal(given.as_bytes(), session.csrf.as_bytes())
        .map_err(|_| PostRefused::BadToken)
}

/// The session cookie's name: with the `__Host-` prefix over TLS, which
/// browsers accept only from a secure origin, for the whole site, without a domain.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-retorno-session"
    } else {
        "retorno-session"
    }
}

/// The `Set-Cookie` value that opens a session.
pub fn session_cookie(id: &str, secure: bool) -> String {
    let secure_attribute = if secure { "; Secure" } else { "" };
    format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/{secure_attribute}",
        cookie_name(secure)
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn expired_cookie(secure: bool) -> String {
    let secure_attribute = if secure { "; Secure" } else { "" };
    format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure_attribute}",
        cookie_name(secure)
    )
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_session_ends_after_the_idle_timeout_and_activity_keeps_it() {
        let sessions = Sessions::new(Duration::from_secs(30 * 60));
        let start = Instant::now();
        let id = sessions.open("aperez", "Ana Pérez", start).unwrap();
        assert_eq!(id.len(), 64, "256 bits in hex");
        let minutes = |m: u64| start + Duration::from_secs(m * 60);
        assert!(sessions.get(&id, minutes(29)).is_some());
        assert!(
            sessions.get(&id, minutes(58)).is_some(),
            "activity at 29 min keeps it"
        );
        assert!(
            sessions.get(&id, minutes(89)).is_none(),
            "31 min idle ends it"
        );
        assert!(
            sessions.get(&id, minutes(90)).is_none(),
            "and it stays ended"
        );
    }

    #[test]
    fn logout_ends_a_session_and_ids_and_tokens_are_not_reused() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let now = Instant::now();
        let one = sessions.open("aperez", "Ana Pérez", now).unwrap();
        let two = sessions.open("aperez", "Ana Pérez", now).unwrap();
        assert_ne!(one, two);
        let (a, b) = (
            sessions.get(&one, now).unwrap(),
            sessions.get(&two, now).unwrap(),
        );
        assert_ne!(a.csrf, b.csrf);
        sessions.close(&one);
        assert!(sessions.get(&one, now).is_none());
        assert!(sessions.get(&two, now).is_some());
    }

    #[test]
    fn a_post_needs_the_sessions_token() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let now = Instant::now();
        let id = sessions.open("aperez", "Ana Pérez", now).unwrap();
        let session = sessions.get(&id, now).unwrap();
        assert_eq!(check_token(&session, Some(&session.csrf.clone())), Ok(()));
        assert_eq!(check_token(&session, None), Err(PostRefused::BadToken));
        assert_eq!(check_token(&session, Some("")), Err(PostRefused::BadToken));
        let other = sessions.open("rcux", "Rosa Cux", now).unwrap();
        let other = sessions.get(&other, now).unwrap();
        assert_eq!(
            check_token(&session, Some(&other.csrf)),
            Err(PostRefused::BadToken),
            "another session's token does not do"
        );
    }

    #[test]
    fn a_post_must_come_from_the_consoles_own_origin() {
        let own = vec!["http://127.0.0.1:8080".to_owned()];
        let with = |name, value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static(value));
            headers
        };
        assert_eq!(
            check_origin(&with(header::ORIGIN, "http://127.0.0.1:8080"), &own),
            Ok(())
        );
        assert_eq!(
            check_origin(&with(header::ORIGIN, "https://evil.example"), &own),
            Err(PostRefused::OtherOrigin)
        );
        assert_eq!(
            check_origin(&with(header::ORIGIN, "null"), &own),
            Err(PostRefused::OtherOrigin)
        );
        assert_eq!(
            check_origin(&with(header::ORIGIN, "http://127.0.0.1:8081"), &own),
            Err(PostRefused::OtherOrigin),
            "another port is another origin"
        );
        assert_eq!(
            check_origin(
                &with(header::REFERER, "http://127.0.0.1:8080/cases?x=1"),
                &own
            ),
            Ok(())
        );
        assert_eq!(
            check_origin(
                &with(header::REFERER, "http://127.0.0.1:8080.evil.example/"),
                &own
            ),
            Err(PostRefused::OtherOrigin)
        );
        assert_eq!(
            check_origin(&HeaderMap::new(), &own),
            Err(PostRefused::NoOrigin)
        );
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_tls() {
        let plain = session_cookie("abc", false);
        assert_eq!(
            plain,
            "retorno-session=abc; HttpOnly; SameSite=Strict; Path=/"
        );
        let tls = session_cookie("abc", true);
        assert!(tls.starts_with("__Host-retorno-session=abc;") && tls.ends_with("; Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("lang=es; retorno-session=abc"),
        );
        assert_eq!(cookie(&headers, "retorno-session"), Some("abc"));
        assert_eq!(cookie(&headers, "lang"), Some("es"));
        assert_eq!(cookie(&headers, "other"), None);
    }
}
