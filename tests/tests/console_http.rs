//! The web console wired end to end without a browser: Mexico's destination
//! authority runs a console on its own profile, an officer logs in, sends an
//! advance notice through the form, and Guatemala's gateway receives it. The
//! hostile side that needs no browser is here too: no session, no CSRF token,
//! another origin. (The browser tests drive the pages themselves.)

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use retorno_client::console::{self, ConsoleConfig, accounts};
use retorno_proto::v1::envelope_body::Payload;
use retorno_tests::{Region, eventually, inbox_now};

/// A browser reduced to what the test needs: one cookie jar entry and an origin.
struct Browser {
    address: SocketAddr,
    origin: String,
    cookie: Option<String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Browser {
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        origin: Option<&str>,
    ) -> Answer {
        let stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.address.to_string())
            .header(header::ACCEPT_LANGUAGE, "es-MX,es;q=0.9");
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie.as_str());
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let body = match form {
            Some(fields) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                encode(fields)
            }
            None => String::new(),
        };
        let answer = sender
            .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        if let Some(set) = headers.get(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            if pair.starts_with("retorno-session=") {
                self.cookie = Some(pair);
            }
        }
        Answer {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send("GET", path, None, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let origin = self.origin.clone();
        self.send("POST", path, Some(form), Some(&origin)).await
    }
}

fn encode(fields: &[(&str, &str)]) -> String {
    let part = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(n, v)| format!("{}={}", part(n), part(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The hidden CSRF token of a page's forms.
fn csrf(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[start..start + 64].to_owned()
}

/// The text of the element whose id is `id`.
fn element_text(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let open_end = at + page[at..].find('>').unwrap() + 1;
    let close = open_end + page[open_end..].find('<').unwrap();
    page[open_end..close].trim().to_owned()
}

/// The README's example notice as a caseworker types it, without the best-interest determination.
fn notice_without_determination() -> Vec<(&'static str, &'static str)> {
    vec![
        ("recipient_country", "GT"),
        ("child.given_names", "Ana Lucía"),
        ("child.family_names", "Pérez Xol"),
        ("child.birth_date", "2012-02-29"),
        ("child.sex", "female"),
        ("child.nationalities", "GT"),
        ("child.languages", "es, quc"),
        ("child.documents[0].kind", "birth-certificate"),
        ("child.documents[0].number", "RENAP-1203-4567"),
        ("child.documents[0].issuing_country", "GT"),
        ("companionship", "unaccompanied"),
        ("protection_concerns", "indigenous-language"),
        ("protection_concerns", "crime-victim-on-route"),
        ("risk_level", "medium"),
        (
            "consular_interview.consulate",
            "Consulado General de Guatemala en Tapachula",
        ),
        ("consular_interview.date", "2026-11-18"),
        ("transport.mode", "land"),
        ("transport.point_of_entry", "GT-TECUN-UMAN"),
        ("transport.earliest_date", "2026-12-03"),
        ("origin_contact.family_located", "true"),
        ("origin_contact.contact_name", "María Xol (abuela)"),
        ("origin_contact.contact_phone", "+502 5555 0100"),
        ("origin_contact.relationship", "abuela"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_sends_a_notice_through_the_console_and_guatemala_receives_it() {
    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let _gt = region.start("GT").await;
    let users = region.dir().join("console-users.toml");
    accounts::add(&users, "aperez", "Ana Pérez", "correct horse battery").unwrap();
    let mut config = ConsoleConfig::new(region.profile("MX", "destination-authority"), users);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = console::start(config).await.unwrap();
    let mut browser = Browser {
        address: running.address(),
        origin: running.url(),
        cookie: None,
    };

    // Without a session every page sends the browser to the login.
    let inbox = browser.get("/inbox").await;
    assert_eq!(inbox.status, StatusCode::SEE_OTHER);
    assert_eq!(inbox.headers[header::LOCATION], "/login");

    let wrong = browser
        .post(
            "/login",
            &[("login", "aperez"), ("password", "not the password")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        element_text(&wrong.body, "refusal").contains("no son correctos"),
        "{}",
        wrong.body
    );
    let login = browser
        .post(
            "/login",
            &[("login", "aperez"), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let cookie = login.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let form = browser.get("/notice/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<html lang=\"es\">"));
    assert_eq!(
        form.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("default-src 'self'")
    );
    assert_eq!(form.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(form.headers[header::CACHE_CONTROL], "no-store");
    let token = csrf(&form.body);

    // Posts without the token, or from another site, are refused and change nothing.
    let mut fields = notice_without_determination();
    fields.extend([
        ("best_interest.authority_kind", "child-protection"),
        (
            "best_interest.authority_name",
            "Procuraduría Federal de Protección de Niñas, Niños y Adolescentes",
        ),
        ("best_interest.date", "2026-11-20"),
        ("best_interest.outcome", "return"),
    ]);
    let no_token = browser.post("/notice", &fields).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(element_text(&no_token.body, "refusal").contains("No se cambió nada"));
    let mut with_token = fields.clone();
    with_token.push(("csrf", &token));
    let elsewhere = browser
        .send(
            "POST",
            "/notice",
            Some(&with_token),
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let mut inm = region.agency("MX", "destination-authority").await;
    assert!(
        inm.cases(None).await.unwrap().is_empty(),
        "a refused post sent nothing"
    );

    // Without a best-interest determination the gateway refuses, next to its group, and the form keeps what was typed.
    let mut without = notice_without_determination();
    without.push(("csrf", &token));
    let refused = browser.post("/notice", &without).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        element_text(&refused.body, "error-best_interest").contains("best_interest"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("value=\"RENAP-1203-4567\""),
        "the typed values stay"
    );

    let sent = browser.post("/notice", &with_token).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let location = sent.headers[header::LOCATION].to_str().unwrap().to_owned();
    let case_id = location
        .strip_prefix("/cases/")
        .and_then(|rest| rest.strip_suffix("?sent=advance_notice"))
        .unwrap()
        .to_owned();
    let case = browser.get(&location).await;
    assert_eq!(case.status, StatusCode::OK);
    assert!(
        element_text(&case.body, "refusal").contains("enviado"),
        "{}",
        case.body
    );
    assert!(
        case.body.contains("data-kind=\"advance_notice\""),
        "the timeline has the notice"
    );

    let sbs = region.agency("GT", "child-protection").await;
    let received = eventually("Guatemala to receive the console's notice", || {
        let (mut sbs, case_id) = (sbs.clone(), case_id.clone());
        async move {
            inbox_now(&mut sbs, 0)
                .await
                .into_iter()
                .find(|item| item.body.as_ref().is_some_and(|b| b.case_id == case_id))
        }
    })
    .await;
    let body = received.body.unwrap();
    let Some(Payload::AdvanceNotice(notice)) = body.payload else {
        panic!("not a notice: {body:?}");
    };
    let child = notice.child.unwrap();
    assert_eq!(
        (child.given_names.as_str(), child.family_names.as_str()),
        ("Ana Lucía", "Pérez Xol")
    );
    assert_eq!(notice.protection_concerns.len(), 2);
    assert_eq!(
        notice.best_interest.unwrap().authority_name,
        "Procuraduría Federal de Protección de Niñas, Niños y Adolescentes"
    );

    // The case list counts it; logout ends the session.
    let cases = browser.get("/cases").await;
    assert!(cases.body.contains(&format!("data-case-id=\"{case_id}\"")));
    let logout = browser.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/cases").await.status, StatusCode::SEE_OTHER);
    running.stop().await;
}
