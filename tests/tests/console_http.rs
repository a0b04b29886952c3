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
use retorno_proto::v1::{CaseState, envelope_body::Payload};
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

/// A console for `code`'s agency in `role`, with one account.
async fn console_for(
    region: &Region,
    code: &str,
    role: &str,
    login: &str,
    name: &str,
) -> (console::Console, Browser) {
    let users = region.dir().join(format!("users-{code}-{role}.toml"));
    accounts::add(&users, login, name, "correct horse battery").unwrap();
    let mut config = ConsoleConfig::new(region.profile(code, role), users);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = console::start(config).await.unwrap();
    let mut browser = Browser {
        address: running.address(),
        origin: running.url(),
        cookie: None,
    };
    let login = browser
        .post(
            "/login",
            &[("login", login), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    (running, browser)
}

/// Every `data-slot` value of a page.
fn slots(page: &str) -> Vec<String> {
    page.match_indices("data-slot=\"")
        .map(|(at, marker)| {
            let start = at + marker.len();
            page[start..start + page[start..].find('"').unwrap()].to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_walks_through_three_consoles_from_notice_to_reception() {
    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let _gt = region.start("GT").await;
    let (inm_console, mut inm) = console_for(
        &region,
        "MX",
        "destination-authority",
        "aperez",
        "Ana Pérez",
    )
    .await;
    let (sbs_console, mut sbs) =
        console_for(&region, "GT", "child-protection", "rcux", "Rosa Cux").await;
    let (consul_console, mut consul) =
        console_for(&region, "GT", "consulate", "jlopez", "José López").await;

    // Guatemala's caseworker follows the live inbox before the notice is sent.
    let events_stream = tokio::net::TcpStream::connect(sbs.address).await.unwrap();
    let (mut events_sender, events_connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(events_stream))
            .await
            .unwrap();
    tokio::spawn(events_connection);
    let events_request = Request::get("/inbox/events?after=0")
        .header(header::HOST, sbs.address.to_string())
        .header(header::COOKIE, sbs.cookie.clone().unwrap())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let events = events_sender.send_request(events_request).await.unwrap();
    assert_eq!(events.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut events = events.into_body();

    let form = inm.get("/notice/new").await;
    let token = csrf(&form.body);
    let mut fields = notice_without_determination();
    fields.extend([
        ("best_interest.authority_kind", "child-protection"),
        ("best_interest.authority_name", "PFPNNA"),
        ("best_interest.date", "2026-11-20"),
        ("best_interest.outcome", "return"),
        ("csrf", &token),
    ]);
    let sent = inm.post("/notice", &fields).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let location = sent.headers[header::LOCATION].to_str().unwrap().to_owned();
    let case_id = location
        .strip_prefix("/cases/")
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();

    // The notice arrives in the caseworker's open inbox as a ready <li>.
    let item = tokio::time::timeout(retorno_tests::DEADLINE, async {
        loop {
            let frame = events.frame().await.unwrap().unwrap();
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let data = String::from_utf8(data.to_vec()).unwrap();
            if data.contains("data-message-id=") {
                break data;
            }
        }
    })
    .await
    .expect("the notice arrives in the live inbox");

    assert!(
        item.contains(&case_id) && item.contains("data-ack"),
        "{item}"
    );

    // A night arrival is refused with the allowed slots; the officer takes one.
    let inm_token = token.clone();
    let day = retorno_tests::weekday_ahead("America/Guatemala");
    let night = format!("{day}T21:30");
    let arrival_path = format!("/cases/{case_id}/arrival");
    let proposal = [
        ("csrf", inm_token.as_str()),
        ("decision", "propose"),
        ("proposal_id", "P1"),
        ("point_of_entry", "GT-TECUN-UMAN"),
        ("arrival", night.as_str()),
        ("transport_mode", "land"),
        ("transport_reference", "bus INM-0452"),
        ("escort_officers[0].name", "Lucía Gómez"),
        ("escort_officers[0].institution", "INM"),
    ];
    let refused = eventually(
        "the origin's reception policy to be known in Mexico",
        || {
            let mut browser = Browser {
                cookie: inm.cookie.clone(),
                origin: inm.origin.clone(),
                address: inm.address,
            };
            let arrival_path = arrival_path.clone();
            async move {
                let answer = browser.post(&arrival_path, &proposal).await;
                (!answer.body.contains("not known here yet")).then_some(answer)
            }
        },
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let offered = slots(&refused.body);
    assert!(!offered.is_empty(), "slots are offered: {}", refused.body);
    assert!(
        !offered.contains(&format!("{day} 21:30")),
        "the refused time is not offered"
    );
    assert!(
        refused.body.contains("value=\"bus INM-0452\""),
        "the typed values stay"
    );
    let slot = offered[0].replace(' ', "T");
    let mut take = proposal.to_vec();
    take[4] = ("arrival", slot.as_str());
    let proposed = inm.post(&arrival_path, &take).await;
    assert_eq!(proposed.status, StatusCode::SEE_OTHER, "{}", proposed.body);

    // Guatemala's caseworker accepts from the arrival page, which shows the week of the point.
    let sbs_case = wait_for_state_via(
        &region,
        "GT",
        "child-protection",
        &case_id,
        CaseState::ArrivalProposed,
    )
    .await;
    assert!(sbs_case.open_proposal.is_some());
    let page = sbs.get(&arrival_path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("id=\"week\"") && page.body.contains("hora de Guatemala"),
        "{}",
        page.body
    );
    let sbs_token = csrf(&page.body);
    let accepted = sbs
        .post(
            &arrival_path,
            &[("csrf", &sbs_token), ("decision", "accept")],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    let agreed = wait_for_state_via(
        &region,
        "GT",
        "consulate",
        &case_id,
        CaseState::ArrivalAgreed,
    )
    .await;
    region.advance_to(retorno_tests::agreed_arrival(&agreed));

    // The consul acknowledges the handoff on the phone page.
    let handoff_path = format!("/cases/{case_id}/handoff");
    let handoff = consul.get(&handoff_path).await;
    assert!(
        handoff.body.contains("<body class=\"phone\">"),
        "{}",
        handoff.body
    );
    let consul_token = csrf(&handoff.body);
    let acknowledged = consul
        .post(
            &handoff_path,
            &[
                ("csrf", &consul_token),
                ("step", "handoff_ack"),
                ("received_by.name", "José López"),
                ("received_by.institution", "Consulado de Guatemala"),
                ("condition_notes", "cansada, sana"),
            ],
        )
        .await;
    assert_eq!(
        acknowledged.status,
        StatusCode::SEE_OTHER,
        "{}",
        acknowledged.body
    );

    // The caseworker confirms reception; the follow-up at 30 days is due.
    wait_for_state_via(
        &region,
        "GT",
        "child-protection",
        &case_id,
        CaseState::HandedOver,
    )
    .await;
    let reception_path = format!("/cases/{case_id}/reception");
    let confirmed = sbs
        .post(
            &reception_path,
            &[
                ("csrf", &sbs_token),
                ("step", "reception_confirmation"),
                ("placement", "with-family"),
                ("placement_detail", "abuela, Quetzaltenango"),
            ],
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.body
    );
    let reception = sbs.get(&reception_path).await;
    assert!(
        reception
            .body
            .contains("data-days=\"30\" data-status=\"due\""),
        "{}",
        reception.body
    );

    // Mexico's timeline shows every step.
    let mexico = wait_for_state_via(
        &region,
        "MX",
        "destination-authority",
        &case_id,
        CaseState::Received,
    )
    .await;
    let timeline = inm.get(&format!("/cases/{case_id}")).await;
    for step in &mexico.timeline {
        assert!(
            timeline
                .body
                .contains(&format!("data-kind=\"{}\"", step.kind)),
            "{}",
            timeline.body
        );
    }
    for running in [inm_console, sbs_console, consul_console] {
        running.stop().await;
    }
}

async fn wait_for_state_via(
    region: &Region,
    code: &str,
    role: &str,
    case_id: &str,
    state: CaseState,
) -> retorno_proto::v1::CaseView {
    let client = region.agency(code, role).await;
    retorno_tests::wait_for_state(&client, case_id, state).await
}
