//! The web console in a real browser (issue 11): Debian's Chromium, headless,
//! against a real region of gateways (real mutual TLS, real sled) and real
//! consoles started in this process on `127.0.0.1:0`, one per agency, with
//! staff accounts made through `console::accounts`. The story of the issue in
//! three browsers, then the hostile side. Without Chromium the browser tests
//! return early and say so once (see `retorno_tests::browser`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use retorno_client::console::{self, Console, ConsoleConfig, accounts};
use retorno_proto::v1::{self, CaseState};
use retorno_tests::{
    Region, agreed_arrival,
    browser::{self, Browser, ForeignPage, Screenshots, Viewport, path_of, step_css},
    eventually, wait_for_state,
};
use serde_json::json;

/// The harness itself: a phone-sized Spanish browser fills a form and sees
/// the page at exactly 360 pixels wide.
#[tokio::test]
async fn the_browser_harness_fills_a_form_at_phone_size() {
    let Some(browser) = Browser::launch(Viewport::Phone).await else {
        return;
    };
    let page = ForeignPage::serve(
        r#"<!doctype html><html><head><meta name="viewport" content="width=device-width"></head><body>
        <form><label>Nombre <input name="child.given_names"></label>
        <input type="date" name="arrival.date"><select name="mode"><option value="air">a</option><option value="land">l</option></select>
        <p id="lang"></p></form>
        <script>document.getElementById('lang').textContent = navigator.languages.join(',');</script>
        </body></html>"#
            .to_owned(),
    )
    .await;
    browser.goto(&page.url()).await;
    browser
        .fill(&[
            ("child.given_names", "María José"),
            ("arrival.date", "2026-12-04"),
            ("mode", "land"),
        ])
        .await;
    assert_eq!(browser.value("child.given_names").await, "María José");
    assert_eq!(browser.value("arrival.date").await, "2026-12-04");
    assert_eq!(browser.value("mode").await, "land");
    assert!(browser.text("#lang").await.starts_with("es"));
    let size = browser
        .script("return [window.innerWidth, window.innerHeight];", vec![])
        .await;
    assert_eq!(size, serde_json::json!([360, 740]));
    assert!(!browser.scrolls_sideways().await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.png");
    browser.screenshot(&file).await;
    let png = std::fs::read(&file).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // width, height in the IHDR chunk
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (360, 740));
    browser.close().await;
}

const PASSWORD: &str = "correct horse battery";
const GUATEMALA: &str = "America/Guatemala";
const TECUN_UMAN: &str = "GT-TECUN-UMAN";

/// An agency's console on a free loopback port, with one member of staff.
async fn console_of(region: &Region, code: &str, role: &str, login: &str, name: &str) -> Console {
    let users = region.dir().join(format!("{code}-{role}-staff.toml"));
    accounts::add(&users, login, name, PASSWORD).unwrap();
    let mut config = ConsoleConfig::new(region.profile(code, role), users);
    config.listen = "127.0.0.1:0".parse().unwrap();
    console::start(config).await.unwrap()
}

/// Logs in through the login page and waits for the inbox.
async fn log_in(browser: &Browser, console: &Console, login: &str) {
    browser.goto(&format!("{}/login", console.url())).await;
    browser
        .fill(&[("login", login), ("password", PASSWORD)])
        .await;
    browser.click("#log-in").await;
    browser
        .wait_for_url("the inbox", |url| path_of(url) == "/inbox")
        .await;
}

/// The README's notice as an officer types it, without the best-interest determination.
fn notice_fields(case_id: &str, given_names: &str) -> Vec<(String, String)> {
    [
        ("recipient_country", "GT"),
        ("case_id", case_id),
        ("child.given_names", given_names),
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
        ("risk_level", "high"),
        (
            "consular_interview.consulate",
            "Consulado General de Guatemala en Tapachula",
        ),
        ("consular_interview.date", "2026-11-18"),
        ("transport.mode", "land"),
        ("transport.point_of_entry", TECUN_UMAN),
        ("transport.earliest_date", "2026-12-03"),
        ("origin_contact.family_located", "true"),
        ("origin_contact.contact_name", "María Xol (abuela)"),
        ("origin_contact.contact_phone", "+502 5555 0100"),
        ("origin_contact.relationship", "abuela"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

/// The best-interest determination, made by Mexico's child-protection authority.
const DETERMINATION: &[(&str, &str)] = &[
    ("best_interest.authority_kind", "child-protection"),
    ("best_interest.authority_name", "PFPNNA Chiapas"),
    ("best_interest.date", "2026-11-20"),
    ("best_interest.outcome", "return"),
];

async fn fill_owned(browser: &Browser, fields: &[(String, String)]) {
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    browser.fill(&fields).await;
}

/// Waits until `code`'s gateway shows the case in `state`, as `role` reads it.
async fn state_at(
    region: &Region,
    code: &str,
    role: &str,
    case_id: &str,
    state: CaseState,
) -> v1::CaseView {
    let client = region.agency(code, role).await;
    wait_for_state(&client, case_id, state).await
}

/// Fills and sends the arrival proposal form.
async fn propose(browser: &Browser, console: &Console, case_id: &str, id: &str, at: &str) {
    browser
        .goto(&format!("{}/cases/{case_id}/arrival", console.url()))
        .await;
    browser
        .fill(&[
            ("proposal_id", id),
            ("point_of_entry", TECUN_UMAN),
            ("arrival", at),
            ("transport_mode", "land"),
            ("transport_reference", "bus INM-0452"),
            ("escort_officers[0].name", "Lucía Gómez"),
            ("escort_officers[0].institution", "INM"),
        ])
        .await;
    browser
        .click("#propose-form [data-step=\"arrival_proposal\"]")
        .await;
}

/// Waits for the case page a step redirects to after it was accepted.
async fn wait_for_case_page(browser: &Browser, case_id: &str) {
    let path = format!("/cases/{case_id}");
    browser
        .wait_for_url(&format!("the case page {path}"), |url| path_of(url) == path)
        .await;
}

/// The steps of a case's timeline as a person sees them on a console.
async fn timeline(browser: &Browser, console: &Console, case_id: &str) -> (Vec<String>, String) {
    browser
        .goto(&format!("{}/cases/{case_id}", console.url()))
        .await;
    browser.wait_for("#timeline").await;
    let mut kinds = Vec::new();
    for item in browser
        .client()
        .find_all(fantoccini::Locator::Css("#timeline li[data-kind]"))
        .await
        .unwrap()
    {
        kinds.push(item.attr("data-kind").await.unwrap().unwrap());
    }
    (kinds, browser.text("#timeline").await)
}

/// Issue 11's story in three browsers: Mexico's INM officer (desk), Guatemala's
/// SBS caseworker (desk) and Guatemala's consul (phone), each on their own
/// agency's console, against a real region of gateways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_is_handled_end_to_end_in_three_browsers_in_spanish() {
    if browser::skip() {
        return;
    }
    let screenshots = Screenshots::from_env();
    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let _gt = region.start("GT").await;
    let inm_console = console_of(
        &region,
        "MX",
        "destination-authority",
        "lgomez",
        "Lucía Gómez",
    )
    .await;
    let sbs_console = console_of(&region, "GT", "child-protection", "mxol", "Marta Xol").await;
    let consul_console = console_of(&region, "GT", "consulate", "rcux", "Rosa Cux").await;
    let inm = Browser::launch(Viewport::Desktop).await.unwrap();
    let sbs = Browser::launch(Viewport::Desktop).await.unwrap();
    let case_id = "MX-2026-0101";

    // Guatemala's caseworker has the inbox open before anything is sent.
    log_in(&sbs, &sbs_console, "mxol").await;
    sbs.script("window.retornoNotReloaded = true;", vec![])
        .await;

    // 1. The INM officer logs in, in Spanish, and sends a notice without the
    // best-interest determination: refused next to its field, in Spanish.
    log_in(&inm, &inm_console, "lgomez").await;
    assert_eq!(
        inm.script("return document.documentElement.lang;", vec![])
            .await,
        json!("es")
    );
    inm.goto(&format!("{}/notice/new", inm_console.url())).await;
    let fields = notice_fields(case_id, "Ana Lucía");
    fill_owned(&inm, &fields).await;
    inm.click_step("advance_notice").await;
    let refusal = inm.field_error("best_interest").await;
    assert!(
        refusal.contains("interés superior"),
        "the missing determination is named in Spanish next to its group: {refusal}"
    );
    assert_eq!(
        inm.value("child.documents[0].number").await,
        "RENAP-1203-4567"
    );
    inm.fill(DETERMINATION).await;
    inm.click_step("advance_notice").await;
    wait_for_case_page(&inm, case_id).await;

    // 3 (first half). The notice appears in Guatemala's open inbox, without a reload.
    let item = sbs
        .wait_for_text("#inbox li[data-message-id]", case_id)
        .await;
    assert!(!item.is_empty());
    assert_eq!(
        sbs.script("return window.retornoNotReloaded === true;", vec![])
            .await,
        json!(true),
        "the page was not reloaded"
    );
    screenshots.take(&sbs, "inbox.png").await;

    // 2. The officer proposes 21:30: refused in Spanish with three allowed slots; takes 10:00.
    let day = region.weekday_ahead(GUATEMALA);
    let inm_client = region.agency("MX", "destination-authority").await;
    eventually("Guatemala's reception policy to be known in Mexico", || {
        let mut client = inm_client.clone();
        async move {
            let policy = client.reception_policy("GT").await.ok()?;
            (!policy.points.is_empty()).then_some(())
        }
    })
    .await;
    propose(&inm, &inm_console, case_id, "P1", &format!("{day}T21:30")).await;
    inm.wait_for("[data-slot]").await;
    let night = inm.text("#refusal").await;
    assert!(
        night.contains("nocturno") || night.contains("horario de recepción"),
        "the night arrival is refused in Spanish: {night}"
    );
    let slots = browser_slots(&inm).await;
    // The three allowed slots after the refused time (the gateway also
    // offers the same day's last slot before it).
    let night_slot = format!("{day} 21:30");
    let after: Vec<&String> = slots.iter().filter(|slot| **slot > night_slot).collect();
    assert_eq!(after.len(), 3, "three allowed slots after 21:30: {slots:?}");
    assert!(!slots.contains(&night_slot));
    let ten = format!("{day} 10:00");
    if slots.contains(&ten) {
        inm.click(&format!("[data-slot=\"{ten}\"]")).await;
    } else {
        inm.fill(&[("arrival", &format!("{day}T10:00"))]).await;
        inm.click("#propose-form [data-step=\"arrival_proposal\"]")
            .await;
    }
    wait_for_case_page(&inm, case_id).await;

    // 3. The caseworker counters with 11:00, the officer proposes 11:00, the caseworker accepts.
    state_at(
        &region,
        "GT",
        "child-protection",
        case_id,
        CaseState::ArrivalProposed,
    )
    .await;
    sbs.goto(&format!("{}/cases/{case_id}/arrival", sbs_console.url()))
        .await;
    sbs.wait_for("#week").await;
    assert!(sbs.page_text().await.contains("hora de Guatemala"));
    screenshots.take(&sbs, "arrival-week.png").await;
    sbs.fill(&[
        ("counter.arrival", &format!("{day}T11:00")),
        ("counter.note", "la familia llega a las 10:30"),
    ])
    .await;
    sbs.click("#counter-form [data-step=\"arrival_response\"]")
        .await;
    wait_for_case_page(&sbs, case_id).await;
    state_at(
        &region,
        "MX",
        "destination-authority",
        case_id,
        CaseState::AwaitingProposal,
    )
    .await;
    propose(&inm, &inm_console, case_id, "P2", &format!("{day}T11:00")).await;
    wait_for_case_page(&inm, case_id).await;
    state_at(
        &region,
        "GT",
        "child-protection",
        case_id,
        CaseState::ArrivalProposed,
    )
    .await;
    sbs.goto(&format!("{}/cases/{case_id}/arrival", sbs_console.url()))
        .await;
    sbs.click("[data-decision=\"accept\"]").await;
    wait_for_case_page(&sbs, case_id).await;
    let agreed = state_at(
        &region,
        "MX",
        "destination-authority",
        case_id,
        CaseState::ArrivalAgreed,
    )
    .await;
    state_at(
        &region,
        "GT",
        "consulate",
        case_id,
        CaseState::ArrivalAgreed,
    )
    .await;
    screenshots.take(&sbs, "case.png").await;

    // 4. On the arrival day, the consul acknowledges the handoff on a phone.
    region.advance_to(agreed_arrival(&agreed));
    let consul = Browser::launch(Viewport::Phone).await.unwrap();
    log_in(&consul, &consul_console, "rcux").await;
    consul
        .goto(&format!("{}/cases/{case_id}/handoff", consul_console.url()))
        .await;
    consul.wait_for("#children").await;
    consul
        .fill(&[
            ("received_by.name", "Rosa Cux"),
            (
                "received_by.institution",
                "Consulado de Guatemala en Tapachula",
            ),
            ("condition_notes", "cansada, sana"),
        ])
        .await;
    let confirm = step_css("handoff_ack");
    assert_eq!(consul.texts(&confirm).await.len(), 1, "one confirm button");
    assert!(
        !consul.scrolls_sideways().await,
        "no sideways scrolling at 360 px"
    );
    let (left, _, width, height) = consul.bounds(&confirm).await;
    assert!(
        left >= 0.0 && left + width <= 360.0 && width >= 240.0 && height >= 44.0,
        "a large confirm button inside the phone's width: left {left}, {width} x {height}"
    );
    screenshots.take(&consul, "handoff-phone.png").await;
    consul.click(&confirm).await;
    wait_for_case_page(&consul, case_id).await;
    state_at(
        &region,
        "GT",
        "child-protection",
        case_id,
        CaseState::HandedOver,
    )
    .await;

    // The hostile side of need to know: the consul types a summary page's
    // address by hand and gets a refusal; no risk level on the case's page.
    consul
        .goto(&format!("{}/cases/{case_id}/summary", consul_console.url()))
        .await;
    let refused = consul.page_text().await;
    let refusal_shown = consul
        .script(
            "const r = document.getElementById('refusal'); \
             return !!r && !r.hidden && r.textContent.trim().length > 0;",
            vec![],
        )
        .await;
    assert!(
        refused.contains("no existe") || refusal_shown == json!(true),
        "a refusal, not a summary: {refused}"
    );
    assert!(!refused.contains("Ana Lucía"));
    consul
        .goto(&format!("{}/cases/{case_id}", consul_console.url()))
        .await;
    let case_page = consul.page_text().await.to_lowercase();
    assert!(
        !case_page.contains("riesgo") && !case_page.contains("risk"),
        "no risk level for a consulate: {case_page}"
    );

    // 5. The caseworker confirms reception; the 30-day follow-up is due, then reported.
    sbs.goto(&format!("{}/cases/{case_id}/reception", sbs_console.url()))
        .await;
    sbs.fill(&[
        ("placement", "with-family"),
        ("placement_detail", "abuela, Quetzaltenango"),
    ])
    .await;
    sbs.click_step("reception_confirmation").await;
    wait_for_case_page(&sbs, case_id).await;
    sbs.goto(&format!("{}/cases/{case_id}/reception", sbs_console.url()))
        .await;
    let due = sbs
        .wait_for_text("#follow-ups li[data-days=\"30\"]", "30")
        .await;
    assert_eq!(
        sbs.wait_for("#follow-ups li[data-days=\"30\"]")
            .await
            .attr("data-status")
            .await
            .unwrap()
            .as_deref(),
        Some("due"),
        "{due}"
    );
    region.advance_days(30);
    sbs.goto(&format!("{}/cases/{case_id}/reception", sbs_console.url()))
        .await;
    sbs.fill(&[
        ("days_since_return", "30"),
        ("status", "stable"),
        ("notes", "de vuelta en la escuela"),
    ])
    .await;
    sbs.click_step("follow_up_report").await;
    wait_for_case_page(&sbs, case_id).await;
    state_at(
        &region,
        "MX",
        "destination-authority",
        case_id,
        CaseState::FollowUp,
    )
    .await;

    // 6. Both timelines show the same steps, with the officials' names.
    let (at_mx, mx_text) = timeline(&inm, &inm_console, case_id).await;
    let (at_gt, gt_text) = timeline(&sbs, &sbs_console, case_id).await;
    assert_eq!(at_mx, at_gt, "the same steps on both sides");
    assert!(at_mx.len() >= 7, "{at_mx:?}");
    for name in ["Lucía Gómez", "Marta Xol", "Rosa Cux"] {
        assert!(
            mx_text.contains(name),
            "{name} in Mexico's timeline:\n{mx_text}"
        );
        assert!(
            gt_text.contains(name),
            "{name} in Guatemala's timeline:\n{gt_text}"
        );
    }

    inm.close().await;
    sbs.close().await;
    consul.close().await;
}

/// The `data-slot` values of the slots offered now.
async fn browser_slots(browser: &Browser) -> Vec<String> {
    let mut slots = Vec::new();
    for button in browser
        .client()
        .find_all(fantoccini::Locator::Css("[data-slot]"))
        .await
        .unwrap()
    {
        slots.push(button.attr("data-slot").await.unwrap().unwrap());
    }
    slots
}

/// Without a session every page sends the browser to the login; a notice
/// posted without the CSRF token, or from another site's page, is refused
/// and changes nothing at the gateway; a child's name that is a script is
/// shown as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_hostile_posts_change_nothing_and_a_script_is_only_text() {
    let Some(browser) = Browser::launch(Viewport::Desktop).await else {
        return;
    };
    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let _gt = region.start("GT").await;
    let console = console_of(
        &region,
        "MX",
        "destination-authority",
        "lgomez",
        "Lucía Gómez",
    )
    .await;
    let mut inm = region.agency("MX", "destination-authority").await;

    for page in ["/inbox", "/cases", "/notice/new", "/cases/MX-2026-0101"] {
        browser.goto(&format!("{}{page}", console.url())).await;
        browser
            .wait_for_url("the login page", |url| path_of(url) == "/login")
            .await;
    }

    log_in(&browser, &console, "lgomez").await;
    let mut fields = notice_fields("MX-2026-0201", "Ana Lucía");
    fields.extend(
        DETERMINATION
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );

    // Without the CSRF token.
    browser.goto(&format!("{}/notice/new", console.url())).await;
    fill_owned(&browser, &fields).await;
    browser
        .script(
            "document.querySelector('#notice-form [name=csrf]').remove();",
            vec![],
        )
        .await;
    browser.click_step("advance_notice").await;
    let refusal = browser.wait_for_text("#refusal", "No se cambió nada").await;
    assert!(refusal.contains("clave"), "{refusal}");
    assert!(
        inm.cases(None).await.unwrap().is_empty(),
        "nothing was sent"
    );

    // From another site (another port on this machine: same site, so the
    // session cookie goes along; the origin check must refuse it), with a
    // valid token copied into the hostile form.
    browser.goto(&format!("{}/notice/new", console.url())).await;
    let token = browser
        .script(
            "return document.querySelector('[name=csrf]').value;",
            vec![],
        )
        .await;
    let inputs: String = fields
        .iter()
        .chain(std::iter::once(&(
            "csrf".to_owned(),
            token.as_str().unwrap().to_owned(),
        )))
        .map(|(n, v)| format!("<input type=\"hidden\" name=\"{n}\" value=\"{v}\">"))
        .collect();
    let hostile = ForeignPage::serve(format!(
        "<!doctype html><form id=\"f\" method=\"post\" action=\"{}/notice\">{inputs}</form>\
         <script>document.getElementById('f').submit();</script>",
        console.url()
    ))
    .await;
    browser.goto(&hostile.url()).await;
    let refusal = browser.wait_for_text("#refusal", "No se cambió nada").await;
    assert!(refusal.contains("no viene de esta consola"), "{refusal}");
    assert!(
        inm.cases(None).await.unwrap().is_empty(),
        "nothing was sent"
    );

    // A child's name that is a script: refused for the missing determination,
    // the form shows it back as text, and no script ran.
    let script = "<script>alert(1)</script>";
    browser.goto(&format!("{}/notice/new", console.url())).await;
    fill_owned(&browser, &notice_fields("MX-2026-0202", script)).await;
    browser.click_step("advance_notice").await;
    browser.field_error("best_interest").await;
    assert_eq!(browser.alert().await, None, "no alert opened");
    assert_eq!(browser.value("child.given_names").await, script);
    let scripts = browser
        .script(
            "return document.querySelectorAll('script:not([src])').length;",
            vec![],
        )
        .await;
    assert_eq!(scripts, json!(0), "no script element came from the name");
    // Sent for real, it reaches the gateway as the same text.
    browser.fill(DETERMINATION).await;
    browser.click_step("advance_notice").await;
    wait_for_case_page(&browser, "MX-2026-0202").await;
    assert_eq!(browser.alert().await, None, "no alert opened");
    let sent = inm.case("MX-2026-0202").await.unwrap();
    assert_eq!(sent.case_id, "MX-2026-0202");
    browser.close().await;
}

/// Five wrong passwords lock the account: the sixth try, with the right
/// password, is refused and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_passwords_lock_the_account() {
    let Some(browser) = Browser::launch(Viewport::Desktop).await else {
        return;
    };
    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let console = console_of(
        &region,
        "MX",
        "destination-authority",
        "lgomez",
        "Lucía Gómez",
    )
    .await;
    for attempt in 1..=5 {
        browser.goto(&format!("{}/login", console.url())).await;
        browser
            .fill(&[
                ("login", "lgomez"),
                ("password", &format!("wrong password {attempt}")),
            ])
            .await;
        browser.click("#log-in").await;
        let refusal = browser.wait_for_text("#refusal", ".").await;
        if attempt < 5 {
            assert!(refusal.contains("no son correctos"), "{refusal}");
        }
    }
    browser.goto(&format!("{}/login", console.url())).await;
    browser
        .fill(&[("login", "lgomez"), ("password", PASSWORD)])
        .await;
    browser.click("#log-in").await;
    let refusal = browser.wait_for_text("#refusal", "bloqueado").await;
    assert!(refusal.contains("5 intentos"), "{refusal}");
    assert_eq!(path_of(&browser.url().await), "/login");
    browser.goto(&format!("{}/inbox", console.url())).await;
    browser
        .wait_for_url("the login page", |url| path_of(url) == "/login")
        .await;
    browser.close().await;
}

/// Listening beyond loopback without TLS: the console does not start, and says why.
#[tokio::test]
async fn a_console_on_the_network_without_tls_does_not_start() {
    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let users = region.dir().join("staff.toml");
    accounts::add(&users, "lgomez", "Lucía Gómez", PASSWORD).unwrap();
    let mut config = ConsoleConfig::new(region.profile("MX", "destination-authority"), users);
    config.listen = "0.0.0.0:0".parse().unwrap();
    match console::start(config).await {
        Err(console::ConsoleError::Listen(why)) => {
            assert!(why.contains("--tls-cert"), "{why}");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(running) => panic!("a console started on {} without TLS", running.address()),
    }
}
