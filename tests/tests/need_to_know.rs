//! Need to know, as a table (issue 9, point 1). Mexico returns two children
//! from notice to follow-up, one to Guatemala and one to Honduras (whose
//! gateway delegates to Guatemala's consulate), and withdraws a third case
//! because the child was granted protection. Every sensitive field carries a
//! marker string. Then each reader (Mexico's destination authority,
//! Guatemala's destination authority, child protection and consulate, and
//! Guatemala's consulate acting for Honduras) reads through every read path
//! (subscribe, get_case, list_cases, get_status), and the test asserts that
//! exactly the markers the table gives for that reader and path appear in
//! the responses: none it may not read, each it may read that the path carries.
//! Both countries' operators then read the Operator API's paths (message
//! logs sent and received, each message's history): no marker at all.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use retorno_client::{Client, ClientError, compose};
use retorno_proto::v1::{self, CaseState, CaseView, submit_request::Payload};
use retorno_tests::{
    Region, agreed_arrival, eventually, inbox_now, notice_to, submit_case_message, wait_for_state,
};

/// A sensitive value and the ways it can show in a response: the string
/// itself, an enum's name in the proto3 JSON mapping, or its words in a
/// timeline line. Matched in lower case.
struct Marker {
    name: &'static str,
    needles: &'static [&'static str],
}

const fn marker(name: &'static str, needles: &'static [&'static str]) -> Marker {
    Marker { name, needles }
}

// Identity and travel: every reader that is sent them may read them.
const NAME: Marker = marker("child's name", &["mk-child-name"]);
const DOCUMENT: Marker = marker("identity document", &["mk-document"]);
const INTERVIEW: Marker = marker("consular interview", &["mk-consular-interview"]);
const ESCORT: Marker = marker("escort officer", &["mk-escort"]);
const TRANSPORT: Marker = marker("transport reference", &["mk-bus"]);
// The notice's protection details.
const CONCERN: Marker = marker("protection concern", &["trafficking_victim"]);
const RISK: Marker = marker("risk level", &["risk_level_high", "risk high"]);
const BEST_INTEREST: Marker = marker("best-interest details", &["mk-best-interest"]);
const CONTACT: Marker = marker("family contact's name", &["mk-contact-name"]);
const PHONE: Marker = marker("family contact's phone", &["mk-phone"]);
// The case summary.
const PLAN: Marker = marker("summary: best-interest plan", &["mk-summary-plan"]);
const PSYCHOSOCIAL: Marker = marker("summary: psychosocial", &["mk-summary-psychosocial"]);
// The origin's answers and reports.
const DECLINE_REASON: Marker = marker(
    "decline reason",
    &["decline_reason_risk_on_return", "risk on return"],
);
const DECLINE_TEXT: Marker = marker("decline text", &["mk-decline-text"]);
const COUNTER_NOTE: Marker = marker("counter note", &["mk-counter-note"]);
const OFFICER: Marker = marker("officer taking custody", &["mk-officer"]);
const HANDOFF_NOTES: Marker = marker("handoff condition notes", &["mk-handoff-notes"]);
const PLACEMENT: Marker = marker("placement", &["placement_foster_care", "foster care"]);
const PLACEMENT_DETAIL: Marker = marker("placement detail", &["mk-placement-detail"]);
const FOLLOW_UP: Marker = marker(
    "follow-up status",
    &["follow_up_status_at_risk", "follow-up at 30 days: at risk"],
);
const FOLLOW_UP_NOTES: Marker = marker("follow-up notes", &["mk-follow-up-notes"]);
const WITHDRAWAL: Marker = marker(
    "withdrawal reason",
    &["withdrawal_reason_protection_granted", "protection granted"],
);
const WITHDRAWAL_TEXT: Marker = marker("withdrawal text", &["mk-withdrawal-text"]);

const ALL: &[&Marker] = &[
    &NAME,
    &DOCUMENT,
    &INTERVIEW,
    &ESCORT,
    &TRANSPORT,
    &CONCERN,
    &RISK,
    &BEST_INTEREST,
    &CONTACT,
    &PHONE,
    &PLAN,
    &PSYCHOSOCIAL,
    &DECLINE_REASON,
    &DECLINE_TEXT,
    &COUNTER_NOTE,
    &OFFICER,
    &HANDOFF_NOTES,
    &PLACEMENT,
    &PLACEMENT_DETAIL,
    &FOLLOW_UP,
    &FOLLOW_UP_NOTES,
    &WITHDRAWAL,
    &WITHDRAWAL_TEXT,
];

/// The read paths of the Agency API.
#[derive(Clone, Copy, Debug)]
enum Path {
    Subscribe,
    GetCase,
    ListCases,
    GetStatus,
}

/// What one reader must find on each path, in the order of [`Path`].
struct Row {
    reader: &'static str,
    subscribe: &'static [&'static Marker],
    get_case: &'static [&'static Marker],
    list_cases: &'static [&'static Marker],
    get_status: &'static [&'static Marker],
}

/// The arrival agreed is travel: every reader of a case sees it.
const TRAVEL: &[&Marker] = &[&ESCORT, &TRANSPORT];

/// A consulate and the origin's destination authority: identity and travel.
const IDENTITY_AND_TRAVEL: Row = Row {
    reader: "",
    subscribe: &[&NAME, &DOCUMENT, &INTERVIEW, &ESCORT, &TRANSPORT],
    get_case: TRAVEL,
    list_cases: TRAVEL,
    get_status: &[],
};

const TABLE: &[Row] = &[
    // It wrote the notice and the summary; it is sent the answers and reports.
    Row {
        reader: "MX destination authority",
        subscribe: &[
            &DECLINE_REASON,
            &DECLINE_TEXT,
            &COUNTER_NOTE,
            &OFFICER,
            &HANDOFF_NOTES,
            &PLACEMENT,
            &PLACEMENT_DETAIL,
            &FOLLOW_UP,
            &FOLLOW_UP_NOTES,
        ],
        // The notice's concerns are kept as categories for statistics.
        get_case: &[
            &CONCERN,
            &RISK,
            &DECLINE_REASON,
            &PLACEMENT,
            &FOLLOW_UP,
            &WITHDRAWAL,
            &ESCORT,
            &TRANSPORT,
        ],
        list_cases: TRAVEL,
        get_status: &[],
    },
    Row {
        reader: "GT child protection",
        subscribe: &[
            &NAME,
            &DOCUMENT,
            &INTERVIEW,
            &ESCORT,
            &TRANSPORT,
            &CONCERN,
            &RISK,
            &BEST_INTEREST,
            &CONTACT,
            &PHONE,
            &PLAN,
            &PSYCHOSOCIAL,
            &WITHDRAWAL,
            &WITHDRAWAL_TEXT,
        ],
        // The notice's concerns are kept as categories for statistics.
        get_case: &[
            &CONCERN,
            &RISK,
            &DECLINE_REASON,
            &PLACEMENT,
            &FOLLOW_UP,
            &WITHDRAWAL,
            &ESCORT,
            &TRANSPORT,
        ],
        list_cases: TRAVEL,
        get_status: &[],
    },
    Row {
        reader: "GT destination authority",
        ..IDENTITY_AND_TRAVEL
    },
    Row {
        reader: "GT consulate",
        ..IDENTITY_AND_TRAVEL
    },
    Row {
        reader: "GT consulate acting for HN",
        ..IDENTITY_AND_TRAVEL
    },
];

impl Row {
    fn expected(&self, path: Path) -> BTreeSet<&'static str> {
        let markers = match path {
            Path::Subscribe => self.subscribe,
            Path::GetCase => self.get_case,
            Path::ListCases => self.list_cases,
            Path::GetStatus => self.get_status,
        };
        markers.iter().map(|m| m.name).collect()
    }
}

/// The markers found in a response: in its proto3 JSON (enum names, decoded
/// bodies) and in its encoded bytes (strings, and the signed envelope bytes).
fn markers_in(json: String, encoded: Vec<u8>) -> BTreeSet<&'static str> {
    let text = format!("{json}\n{}", String::from_utf8_lossy(&encoded)).to_lowercase();
    ALL.iter()
        .filter(|m| m.needles.iter().any(|needle| text.contains(needle)))
        .map(|m| m.name)
        .collect()
}

fn found<M: prost::Message>(message: &M, json: String) -> BTreeSet<&'static str> {
    markers_in(json, message.encode_to_vec())
}

/// A refused read is a response too: its message must not leak either.
fn found_in_error(error: ClientError) -> BTreeSet<&'static str> {
    match error {
        ClientError::Status(status) => markers_in(status.message().to_owned(), Vec::new()),
        other => panic!("transport failure: {other}"),
    }
}

/// Everything one reader is given on one path.
async fn read(
    client: &mut Client,
    path: Path,
    cases: &[&str],
    messages: &[String],
) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    match path {
        Path::Subscribe => {
            for item in inbox_now(client, 0).await {
                seen.extend(found(&item, serde_json::to_string(&item).unwrap()));
            }
        }
        Path::GetCase => {
            for case in cases {
                seen.extend(match client.case(case).await {
                    Ok(view) => found(&view, serde_json::to_string(&view).unwrap()),
                    Err(error) => found_in_error(error),
                });
            }
        }
        Path::ListCases => {
            for view in client.cases(None).await.unwrap() {
                seen.extend(found(&view, serde_json::to_string(&view).unwrap()));
            }
        }
        Path::GetStatus => {
            for id in messages {
                seen.extend(match client.status(id).await {
                    Ok(status) => found(&status, serde_json::to_string(&status).unwrap()),
                    Err(error) => found_in_error(error),
                });
            }
        }
    }
    seen
}

/// The README's notice with a marker in every field that need to know decides on.
fn marked_notice(origin: &str, case: &str, point: &str) -> v1::SubmitRequest {
    let mut request = notice_to(origin, case);
    let Some(Payload::AdvanceNotice(notice)) = &mut request.payload else {
        unreachable!()
    };
    let child = notice.child.as_mut().unwrap();
    child.given_names = "mk-child-name".into();
    child.nationalities = vec![origin.into()];
    child.documents[0].number = "mk-document".into();
    child.documents[0].issuing_country = origin.into();
    notice.protection_concerns = vec![v1::ProtectionConcern::TraffickingVictim as i32];
    notice.risk_level = v1::RiskLevel::High as i32;
    notice.best_interest.as_mut().unwrap().authority_name = "mk-best-interest".into();
    notice.consular_interview.as_mut().unwrap().consulate = "mk-consular-interview".into();
    notice.transport.as_mut().unwrap().point_of_entry = point.into();
    let contact = notice.origin_contact.as_mut().unwrap();
    contact.contact_name = "mk-contact-name".into();
    contact.contact_phone = "mk-phone".into();
    request
}

fn marked_summary() -> Payload {
    let child_protection = Some(v1::Readers {
        roles: vec![v1::Role::ChildProtection as i32],
    });
    Payload::CaseSummary(v1::CaseSummary {
        best_interest_plan: Some(v1::BestInterestPlan {
            readers: child_protection.clone(),
            plan: "mk-summary-plan".into(),
            receiving_caregiver: "grandmother".into(),
        }),
        psychosocial: Some(v1::PsychosocialSection {
            readers: child_protection,
            assessment: "mk-summary-psychosocial".into(),
            assessed_by: "DIF psychologist".into(),
        }),
        ..v1::CaseSummary::default()
    })
}

/// Who takes part in one return.
struct Parties {
    migration: Client,
    protection: Client,
    consulate: Client,
}

/// Waits until `client`'s gateway shows `case` with no open proposal, or with `open`.
async fn wait_for_open_proposal(client: &Client, case: &str, open: Option<&str>) {
    eventually(
        &format!("case {case} to have open proposal {open:?}"),
        || {
            let mut client = client.clone();
            async move {
                let view = client.case(case).await.ok()?;
                let id = view.open_proposal.map(|p| p.proposal_id);
                (id.as_deref() == open).then_some(())
            }
        },
    )
    .await;
}

/// A whole return with a marker in each step: notice, summary, a declined
/// proposal, a countered one, an agreed one, handoff, reception and follow-up.
/// Returns the ids of the messages sent.
async fn walk(region: &Region, parties: &Parties, origin: &str, case: &str) -> Vec<String> {
    let point = &retorno_gateway::policy::dev_points(retorno_tests::country(origin))[0];
    let Parties {
        migration,
        protection,
        consulate,
    } = parties;
    let mut sent = Vec::new();
    let notice = marked_notice(origin, case, &point.code);
    sent.push(migration.clone().submit(notice).await.unwrap().message_id);
    let step = |client: &Client, payload: Payload| {
        let client = client.clone();
        async move {
            submit_case_message(&client, case, payload)
                .await
                .unwrap()
                .message_id
        }
    };
    sent.push(step(migration, marked_summary()).await);
    wait_for_state(protection, case, CaseState::SummaryShared).await;
    let day = region.weekday_ahead(&point.time_zone);
    let proposal = |id: &'static str, at: String| {
        compose::proposal(&compose::Proposal {
            id,
            cases: Vec::new(),
            point: &point.code,
            at: &at,
            time_zone: &point.time_zone,
            mode: "land",
            reference: "mk-bus",
            escorts: &["mk-escort/INM".to_owned()],
        })
        .unwrap()
    };
    sent.push(step(migration, proposal("P1", format!("{day} 10:00"))).await);
    wait_for_open_proposal(protection, case, Some("P1")).await;
    let decline = compose::decline("P1", "risk-on-return", "mk-decline-text").unwrap();
    sent.push(step(protection, decline).await);
    wait_for_open_proposal(migration, case, None).await;
    sent.push(step(migration, proposal("P2", format!("{day} 10:00"))).await);
    wait_for_open_proposal(protection, case, Some("P2")).await;
    let eleven = format!("{day} 11:00");
    let counter = compose::counter("P2", &eleven, &point.time_zone, "mk-counter-note").unwrap();
    sent.push(step(protection, counter).await);
    wait_for_open_proposal(migration, case, None).await;
    sent.push(step(migration, proposal("P3", eleven)).await);
    wait_for_open_proposal(protection, case, Some("P3")).await;
    sent.push(step(protection, compose::accept("P3")).await);
    let agreed = wait_for_state(migration, case, CaseState::ArrivalAgreed).await;
    region.advance_to(agreed_arrival(&agreed));
    let handoff = compose::handoff(
        &point.code,
        "mk-officer/Consulado",
        vec![],
        "mk-handoff-notes",
    )
    .unwrap();
    sent.push(step(consulate, handoff).await);
    let reception = compose::reception("foster-care", "mk-placement-detail").unwrap();
    sent.push(step(protection, reception).await);
    region.advance_days(30);
    let follow_up = compose::follow_up(30, "at-risk", "mk-follow-up-notes").unwrap();
    sent.push(step(protection, follow_up).await);
    wait_for_state(migration, case, CaseState::FollowUp).await;
    sent
}

/// The lines of a case's timeline as a reader reads them.
async fn lines(client: &mut Client, case: &str) -> Vec<(String, String)> {
    let view: CaseView = client.case(case).await.unwrap();
    view.timeline
        .into_iter()
        .map(|entry| (entry.message_id, entry.summary))
        .collect()
}

#[tokio::test]
async fn each_reader_reads_on_every_path_exactly_what_need_to_know_gives_it() {
    let region = Region::new(&["MX", "GT", "HN"]);
    let mx = region.start("MX").await;
    let gt = region.start("GT").await;
    let mut hn_config = region.config("HN");
    hn_config.delegations = vec![region.delegation("GT")];
    let hn = region.start_with(hn_config).await;
    let acting_for_honduras = Client::connect(&region.profile_at("HN", "GT", "consulate"))
        .await
        .unwrap();
    let inm = region.agency("MX", "destination-authority").await;
    let to_guatemala = Parties {
        migration: inm.clone(),
        protection: region.agency("GT", "child-protection").await,
        consulate: region.agency("GT", "consulate").await,
    };
    let to_honduras = Parties {
        migration: inm.clone(),
        protection: region.agency("HN", "child-protection").await,
        consulate: acting_for_honduras.clone(),
    };
    let (gt_case, hn_case, withdrawn) = ("MX-2026-0901", "MX-2026-0902", "MX-2026-0903");
    let mut sent = walk(&region, &to_guatemala, "GT", gt_case).await;
    sent.extend(walk(&region, &to_honduras, "HN", hn_case).await);
    // A child granted protection stays: the reason is the asylum the child's own state must not learn.
    let notice = marked_notice("GT", withdrawn, "GT-TECUN-UMAN");
    sent.push(inm.clone().submit(notice).await.unwrap().message_id);
    let withdrawal = compose::withdrawal("protection-granted", "mk-withdrawal-text").unwrap();
    let answer = submit_case_message(&inm, withdrawn, withdrawal).await;
    sent.push(answer.unwrap().message_id);
    wait_for_state(&to_guatemala.protection, withdrawn, CaseState::Withdrawn).await;

    let readers = [
        inm.clone(),
        to_guatemala.protection.clone(),
        region.agency("GT", "destination-authority").await,
        to_guatemala.consulate.clone(),
        acting_for_honduras,
    ];
    let cases = [gt_case, hn_case, withdrawn];
    let mut wrong = Vec::new();
    for (row, client) in TABLE.iter().zip(readers) {
        for path in [
            Path::Subscribe,
            Path::GetCase,
            Path::ListCases,
            Path::GetStatus,
        ] {
            let seen = read(&mut client.clone(), path, &cases, &sent).await;
            let expected = row.expected(path);
            if seen != expected {
                let leaked: Vec<_> = seen.difference(&expected).collect();
                let missing: Vec<_> = expected.difference(&seen).collect();
                wrong.push(format!(
                    "{} on {path:?}: leaked {leaked:?}, missing {missing:?}",
                    row.reader
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "need to know broken:\n{}",
        wrong.join("\n")
    );

    // An operator sees metadata only: on the Operator API's paths (the
    // message log sent and received, each message's history) no marker
    // shows, on either side.
    for code in ["MX", "GT"] {
        let mut ops = retorno_client::Operations::connect(&region.profile(code, "operator"))
            .await
            .unwrap();
        let (mut seen, mut listed, mut shown) = (BTreeSet::new(), 0, 0);
        for direction in [v1::MessageDirection::Sent, v1::MessageDirection::Received] {
            let request = v1::ListMessagesRequest {
                direction: direction as i32,
                page_size: 1000,
                ..Default::default()
            };
            let log = ops.messages(request).await.unwrap();
            listed += log.messages.len();
            seen.extend(found(&log, serde_json::to_string(&log).unwrap()));
        }
        for id in &sent {
            if let Ok(history) = ops.show(id).await {
                shown += 1;
                seen.extend(found(&history, serde_json::to_string(&history).unwrap()));
            }
        }
        assert!(listed > 0 && shown > 0, "{code}'s operator read nothing");
        assert!(seen.is_empty(), "{code}'s operator read {seen:?}");
    }

    // Both gateways build the same lines for the same audience.
    let mut mx_protection = region.agency("MX", "child-protection").await;
    let mut gt_protection = to_guatemala.protection.clone();
    assert_eq!(
        lines(&mut mx_protection, gt_case).await,
        lines(&mut gt_protection, gt_case).await
    );
    let mut mx_consulate = region.agency("MX", "consulate").await;
    let mut gt_consulate = to_guatemala.consulate.clone();
    let consulate_lines = lines(&mut gt_consulate, gt_case).await;
    assert_eq!(lines(&mut mx_consulate, gt_case).await, consulate_lines);
    let summaries: Vec<&str> = consulate_lines.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(summaries[0], "notice: unaccompanied");
    assert!(summaries.contains(&"reception confirmed"), "{summaries:?}");
    assert!(summaries.contains(&"follow-up report"), "{summaries:?}");

    mx.shutdown().await;
    gt.shutdown().await;
    hn.shutdown().await;
}

/// A consulate acting under a delegation cannot tell a case that does not
/// exist from one it may not read: both get the same answer.
#[tokio::test]
async fn a_delegated_consulate_cannot_probe_which_case_ids_exist() {
    let region = Region::new(&["MX", "GT", "HN"]);
    let mx = region.start("MX").await;
    let mut hn_config = region.config("HN");
    hn_config.delegations = vec![region.delegation("GT")];
    let hn = region.start_with(hn_config).await;
    let hn_migration = region.agency("HN", "destination-authority").await;
    // Honduras returns a child to Mexico: not a case GT's consulate acts in for Honduras.
    let sent = hn_migration
        .clone()
        .submit(notice_to("MX", "HN-2026-0001"))
        .await
        .unwrap()
        .message_id;
    let mut minex = Client::connect(&region.profile_at("HN", "GT", "consulate"))
        .await
        .unwrap();
    let answer = |result: Result<v1::CaseView, ClientError>| match result {
        Err(ClientError::Status(status)) => (status.code(), status.message().replace('"', "")),
        other => panic!("the case was read: {other:?}"),
    };
    let (code, existing) = answer(minex.case("HN-2026-0001").await);
    let (missing_code, missing) = answer(minex.case("HN-2026-0002").await);
    assert_eq!(code, tonic::Code::PermissionDenied);
    assert_eq!(
        (code, existing.replace("0001", "N")),
        (missing_code, missing.replace("0002", "N"))
    );
    assert!(
        existing.contains("of which HN is the origin and GT is not the destination"),
        "{existing}"
    );
    let status = |result: Result<v1::StatusResponse, ClientError>| match result {
        Err(ClientError::Status(status)) => (status.code(), status.message().to_owned()),
        other => panic!("the status was read: {other:?}"),
    };
    let unknown = uuid::Uuid::now_v7().to_string();
    let (code, existing) = status(minex.status(&sent).await);
    let (missing_code, missing) = status(minex.status(&unknown).await);
    assert_eq!(
        (code, existing.replace(&sent, "ID")),
        (missing_code, missing.replace(&unknown, "ID"))
    );
    mx.shutdown().await;
    hn.shutdown().await;
}
