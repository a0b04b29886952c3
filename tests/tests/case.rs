//! The story of issue 3: Mexico returns a Guatemalan child. Mexico's
//! migration institute (INM) notifies and shares the case summary; a night
//! arrival is refused; Guatemala's child-protection agency (SBS) counters
//! 10:00 with 11:00; the arrival is agreed; Guatemala's consulate takes
//! custody on the arrival day (not before); SBS confirms reception and
//! follows up 30 days later (not before). Both gateways end with the same
//! state and timeline. Then each safeguard is tried on its own. The
//! region's clock moves forward where the story waits for a day.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use jiff::tz::TimeZone;
use retorno_client::{Client, ClientError, compose, i18n::Lang, refusal::Refusal};
use retorno_proto::v1::{
    self, CaseState, CaseSummary, CaseView, DeterminingAuthority, Readers, Role, SubmitResponse,
    envelope_body::Payload as Body, submit_request::Payload,
};
use retorno_tests::{
    Region, agreed_arrival, deliver, eventually, inbox_now, inbox_with, notice_to, peer_client,
    sealer, weekday_ahead,
};
use tonic::Code;

const GUATEMALA: &str = "America/Guatemala";
const TECUN_UMAN: &str = "GT-TECUN-UMAN";

async fn submit(
    client: &mut Client,
    case: &str,
    payload: Payload,
) -> Result<SubmitResponse, tonic::Status> {
    match client.submit(compose::request(case, None, payload)).await {
        Ok(answer) => Ok(answer),
        Err(ClientError::Status(status)) => Err(status),
        Err(other) => panic!("transport failure: {other}"),
    }
}

fn proposal(id: &str, cases: &[&str], at: &str) -> Payload {
    let proposal = compose::Proposal {
        id,
        cases: cases.iter().map(|c| (*c).to_owned()).collect(),
        point: TECUN_UMAN,
        at,
        time_zone: GUATEMALA,
        mode: "land",
        reference: "bus INM-0452",
        escorts: &["Lucía Gómez/INM".to_owned()],
    };
    compose::proposal(&proposal).unwrap()
}

/// Submits a proposal once the destination knows the origin's reception policy.
async fn propose(
    client: &mut Client,
    case: &str,
    payload: Payload,
) -> Result<SubmitResponse, tonic::Status> {
    eventually("the origin's reception policy to be known", || {
        let (mut client, payload) = (client.clone(), payload.clone());
        async move {
            match submit(&mut client, case, payload).await {
                Err(status) if status.message().contains("not known here yet") => None,
                other => Some(other),
            }
        }
    })
    .await
}

async fn wait_for_state(client: &Client, case: &str, state: CaseState) -> CaseView {
    eventually(&format!("case {case} to be {state:?}"), || {
        let mut client = client.clone();
        async move {
            let view = client.case(case).await.ok()?;
            (view.state() == state).then_some(view)
        }
    })
    .await
}

/// A refusal for time: `FailedPrecondition`, naming the rule in its text
/// and, as data, in its metadata with the earliest allowed instant.
fn assert_too_early(status: &tonic::Status, rule: &str, earliest: jiff::Timestamp) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains(rule), "{}", status.message());
    assert!(
        status.message().contains(&earliest.to_string()),
        "{}",
        status.message()
    );
    let metadata = status.metadata();
    assert_eq!(metadata.get("retorno-rule").unwrap(), rule);
    let named: jiff::Timestamp = metadata
        .get("retorno-earliest-allowed")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(named, earliest);
}

/// When a case's reception was confirmed.
fn received_at(case: &CaseView) -> jiff::Timestamp {
    let at = case.received_at.unwrap();
    jiff::Timestamp::new(at.seconds, at.nanos).unwrap()
}

fn summary() -> CaseSummary {
    let readers = |roles: &[Role]| {
        Some(Readers {
            roles: roles.iter().map(|r| *r as i32).collect(),
        })
    };
    CaseSummary {
        best_interest_plan: Some(v1::BestInterestPlan {
            readers: readers(&[Role::ChildProtection, Role::Consulate]),
            plan: "Return to grandmother in Quetzaltenango".into(),
            receiving_caregiver: "grandmother".into(),
        }),
        psychosocial: Some(v1::PsychosocialSection {
            readers: readers(&[Role::ChildProtection]),
            assessment: "Anxiety after the journey; needs follow-up".into(),
            assessed_by: "DIF psychologist".into(),
        }),
        ..CaseSummary::default()
    }
}

/// What both gateways must agree on: everything but the local delivery state.
fn shared_timeline(view: &CaseView) -> Vec<(String, String, String, String)> {
    view.timeline
        .iter()
        .map(|e| {
            let sender = e.sender.clone().unwrap_or_default();
            (
                e.message_id.clone(),
                e.kind.clone(),
                format!("{} {}", sender.country, sender.agency),
                e.summary.clone(),
            )
        })
        .collect()
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_child_returns_from_mexico_to_guatemala_from_notice_to_follow_up() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut sbs = region.agency("GT", "child-protection").await;
        let mut consulate = region.agency("GT", "consulate").await;
        let case = "MX-2026-0001";
        let day = weekday_ahead(GUATEMALA);

        let notified = inm.submit(notice_to("GT", case)).await.unwrap();
        assert_eq!(notified.case_state(), CaseState::Notified);
        let shared = submit(&mut inm, case, Payload::CaseSummary(summary()))
            .await
            .unwrap();
        assert_eq!(shared.case_state(), CaseState::SummaryShared);
        wait_for_state(&sbs, case, CaseState::SummaryShared).await;

        // 21:30 in Guatemala: a night arrival for an unaccompanied child.
        let night = propose(&mut inm, case, proposal("P1", &[], &format!("{day} 21:30")))
            .await
            .unwrap_err();
        assert_eq!(night.code(), Code::InvalidArgument);
        assert!(
            night.message().contains("evening or night arrival"),
            "{}",
            night.message()
        );
        assert!(
            night.message().contains(&format!(
                "nearest allowed arrivals: before it {day} 15:45 America/Guatemala"
            )),
            "the same day's last slot is offered as well as the next days': {}",
            night.message()
        );
        // The same refusal as data: its code, the point's zone, and the slots as
        // RFC 3339 times a reader formats, rendered in Spanish from the codes.
        let data = Refusal::from_status(&night).expect("the refusal travels as data");
        assert_eq!(data.code, "outside-reception-hours");
        assert_eq!(data.params["time_zone"], GUATEMALA);
        assert_eq!(data.params["night"], "yes");
        assert_eq!(data.params["before"], format!("{day}T15:45:00-06:00"));
        assert_eq!(data.params["slots"].split(", ").count(), 3, "{data:?}");
        let spanish = data.render(Lang::Es);
        assert!(
            spanish.contains("arribo vespertino o nocturno, fuera del horario de recepción"),
            "{spanish}"
        );

        let proposed = propose(&mut inm, case, proposal("P2", &[], &format!("{day} 10:00")))
            .await
            .unwrap();
        assert_eq!(proposed.case_state(), CaseState::ArrivalProposed);
        wait_for_state(&sbs, case, CaseState::ArrivalProposed).await;
        let counter = compose::counter(
            "P2",
            &format!("{day} 11:00"),
            GUATEMALA,
            "the family arrives at 10:30",
        )
        .unwrap();
        let countered = submit(&mut sbs, case, counter).await.unwrap();
        assert_eq!(countered.case_state(), CaseState::AwaitingProposal);
        let at_mx = wait_for_state(&inm, case, CaseState::AwaitingProposal).await;
        assert!(at_mx.open_proposal.is_none());
        propose(&mut inm, case, proposal("P3", &[], &format!("{day} 11:00")))
            .await
            .unwrap();
        eventually("GT to see P3", || {
            let mut sbs = sbs.clone();
            async move { (sbs.case(case).await.ok()?.open_proposal?.proposal_id == "P3").then_some(()) }
        })
        .await;
        let agreed = submit(&mut sbs, case, compose::accept("P3")).await.unwrap();
        assert_eq!(agreed.case_state(), CaseState::ArrivalAgreed);
        let agreed = wait_for_state(&inm, case, CaseState::ArrivalAgreed).await;
        let arrival = agreed_arrival(&agreed);
        // Each reader is offered the steps its role may take now, by the case
        // engine's own rules: the consul's handoff only once its time has come.
        assert_eq!(agreed.allowed_steps, ["case_summary", "case_withdrawal"]);
        assert!(consulate.case(case).await.unwrap().allowed_steps.is_empty());

        // Days before the child can have arrived, the handoff is refused with
        // its rule and the earliest time it is allowed: 12 hours before 11:00.
        let handoff = compose::handoff(
            TECUN_UMAN,
            "Rosa Cux/Consulado de Guatemala",
            vec![],
            "tired, healthy",
        )
        .unwrap();
        let early = submit(&mut consulate, case, handoff.clone())
            .await
            .unwrap_err();
        let earliest = arrival - jiff::SignedDuration::from_hours(12);
        assert_too_early(&early, "handoff_margin_hours", earliest);
        assert!(
            early
                .message()
                .contains("; too early now: the earliest allowed is "),
            "{}",
            early.message()
        );
        assert!(
            early.message().contains("23:00 America/Guatemala"),
            "the earliest time is told in the point's time: {}",
            early.message()
        );

        region.advance_to(arrival);
        assert_eq!(
            consulate.case(case).await.unwrap().allowed_steps,
            ["handoff_ack"]
        );
        assert_eq!(
            submit(&mut consulate, case, handoff)
                .await
                .unwrap()
                .case_state(),
            CaseState::HandedOver
        );
        let handed = wait_for_state(&inm, case, CaseState::HandedOver).await;
        assert!(handed.timeline.last().unwrap().flag.is_empty(), "on time");
        let received = compose::reception("with-family", "grandmother, Quetzaltenango").unwrap();
        assert_eq!(
            submit(&mut sbs, case, received).await.unwrap().case_state(),
            CaseState::Received
        );
        let at_gt = sbs.case(case).await.unwrap();
        let reception = received_at(&at_gt);
        // The follow-ups Guatemala expects, with the earliest each is accepted.
        let due: Vec<(u32, bool)> = at_gt
            .follow_ups
            .iter()
            .map(|f| (f.days, f.reported))
            .collect();
        assert_eq!(due, [(30, false), (90, false), (180, false)]);
        assert_eq!(
            at_gt.allowed_steps,
            ["case_summary"],
            "no follow-up due yet"
        );

        // The 30-day follow-up on the day of the reception: refused until 27
        // days after it (the default tolerance is 3 days).
        let follow_up = compose::follow_up(30, "stable", "back at school").unwrap();
        let early = submit(&mut sbs, case, follow_up.clone()).await.unwrap_err();
        let earliest = reception + jiff::SignedDuration::from_hours(27 * 24);
        assert_too_early(&early, "follow_up_tolerance_days", earliest);
        region.advance_days(30);
        assert_eq!(
            submit(&mut sbs, case, follow_up)
                .await
                .unwrap()
                .case_state(),
            CaseState::FollowUp
        );

        let at_mx = wait_for_state(&inm, case, CaseState::FollowUp).await;
        let at_gt = sbs.case(case).await.unwrap();
        let due: Vec<(u32, bool)> = at_gt
            .follow_ups
            .iter()
            .map(|f| (f.days, f.reported))
            .collect();
        assert_eq!(due, [(30, true), (90, false), (180, false)]);
        assert_eq!(
            at_mx.follow_ups, at_gt.follow_ups,
            "both gateways expect the origin's follow-ups"
        );
        assert_eq!(
            shared_timeline(&at_mx),
            shared_timeline(&at_gt),
            "both gateways tell the same story"
        );
        let kinds: Vec<&str> = at_gt.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "advance_notice",
                "case_summary",
                "arrival_proposal",
                "arrival_response",
                "arrival_proposal",
                "arrival_response",
                "handoff_ack",
                "reception_confirmation",
                "follow_up_report"
            ]
        );
        assert_eq!(at_mx.agreed_arrival.unwrap().proposal_id, "P3");

        // Need to know: the consulate saw the notice without its sensitive parts, never the summary.
        let seen = inbox_now(&mut consulate, 0).await;
        assert!(seen.iter().all(|item| !matches!(
            item.body.as_ref().unwrap().payload,
            Some(Body::CaseSummary(_))
        )));
        let notice_seen = seen
            .iter()
            .find(|item| {
                matches!(
                    item.body.as_ref().unwrap().payload,
                    Some(Body::AdvanceNotice(_))
                )
            })
            .unwrap();
        assert!(notice_seen.redacted && notice_seen.envelope.is_none());
        let Some(Body::AdvanceNotice(redacted)) = &notice_seen.body.as_ref().unwrap().payload else {
            unreachable!()
        };
        assert!(redacted.best_interest.is_none() && redacted.protection_concerns.is_empty());
        assert_eq!(redacted.child.as_ref().unwrap().given_names, "Ana Lucía");
        let sbs_seen = inbox_now(&mut sbs, 0).await;
        assert!(sbs_seen.iter().any(|item| matches!(
            item.body.as_ref().unwrap().payload,
            Some(Body::CaseSummary(_))
        )));

        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn no_return_without_a_best_interest_determination_by_child_protection() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let mut inm = region.agency("MX", "destination-authority").await;

        let mut by_migration = notice_to("GT", "MX-2026-0101");
        if let Some(Payload::AdvanceNotice(n)) = &mut by_migration.payload {
            n.best_interest.as_mut().unwrap().authority_kind = DeterminingAuthority::Migration as i32;
        }
        let refused = match inm.submit(by_migration).await {
            Err(ClientError::Status(status)) => status,
            other => panic!("a migration determination was not refused: {other:?}"),
        };
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused
                .message()
                .contains("child-protection or judicial authority, not by migration"),
            "{}",
            refused.message()
        );

        let mut stays = notice_to("GT", "MX-2026-0102");
        if let Some(Payload::AdvanceNotice(n)) = &mut stays.payload {
            n.best_interest.as_mut().unwrap().outcome = v1::BestInterestOutcome::Stay as i32;
        }
        let error = inm.submit(stays).await.unwrap_err().to_string();
        assert!(
            error.contains("does not find return in the child's best interest"),
            "{error}"
        );
        assert_eq!(
            mx.outbox_depth(retorno_tests::country("GT")),
            0,
            "nothing queued"
        );
        mx.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_bilateral_relaxation_shows_in_the_case_and_one_sided_relaxation_is_refused_by_the_origin() {
        let region = Region::new(&["MX", "GT"]);
        // Mexico relaxes the gate for Guatemala; Guatemala has not agreed.
        let mut mx_config = region.config("MX");
        mx_config.case.relax_best_interest_for = vec![retorno_tests::country("GT")];
        let mx = region.start_with(mx_config).await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;

        let mut by_migration = notice_to("GT", "MX-2026-0201");
        if let Some(Payload::AdvanceNotice(n)) = &mut by_migration.payload {
            n.best_interest.as_mut().unwrap().authority_kind = DeterminingAuthority::Migration as i32;
        }
        let accepted = inm.submit(by_migration).await.unwrap();
        let at_mx = inm.case("MX-2026-0201").await.unwrap();
        assert!(
            at_mx.best_interest_relaxed,
            "the relaxation shows in the case"
        );

        // Guatemala stores it as refused and says why, in its receipt.
        let status = eventually("GT's receipt", || {
            let (mut inm, id) = (inm.clone(), accepted.message_id.clone());
            async move { inm.status(&id).await.ok()?.receipt_body }
        })
        .await;
        assert!(
            status.case_refusal.contains("not by migration"),
            "{}",
            status.case_refusal
        );
        let timeline = inm.case("MX-2026-0201").await.unwrap().timeline;
        assert!(timeline[0].peer_refused.contains("not by migration"));
        // As data too, from the peer's receipt, for a reader of any language.
        let detail = status.case_refusal_detail.expect("the refusal as data");
        assert_eq!(detail.code, "best-interest-authority");
        assert_eq!(
            detail.params["field"],
            "advance_notice.best_interest.authority_kind"
        );
        assert_eq!(timeline[0].peer_refused_detail, Some(detail));
        let mut sbs = region.agency("GT", "child-protection").await;
        assert!(
            inbox_now(&mut sbs, 0).await.is_empty(),
            "a refused message is not given to agencies"
        );
        let unknown = sbs.case("MX-2026-0201").await.unwrap_err().to_string();
        assert!(unknown.contains("NotFound"), "GT opened no case: {unknown}");
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn roles_may_only_send_their_own_kinds() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut gt_migration = region.agency("GT", "destination-authority").await;
        let mut mx_consulate = region.agency("MX", "consulate").await;
        let case = "MX-2026-0301";
        inm.submit(notice_to("GT", case)).await.unwrap();
        wait_for_state(&gt_migration, case, CaseState::Notified).await;

        let denied = submit(&mut gt_migration, case, compose::accept("P1"))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert!(
            denied
                .message()
                .contains("destination-authority agency may not send arrival_response"),
            "{}",
            denied.message()
        );
        let denied = submit(
            &mut inm,
            case,
            compose::reception("with-family", "").unwrap(),
        )
        .await
        .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        let denied = submit(
            &mut mx_consulate,
            case,
            compose::withdrawal("protection-granted", "").unwrap(),
        )
        .await
        .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        // A summary from Guatemala's child protection is its own section: allowed.
        let mut sbs = region.agency("GT", "child-protection").await;
        submit(&mut sbs, case, Payload::CaseSummary(summary()))
            .await
            .unwrap();
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn steps_out_of_order_are_refused_at_submit_and_on_arrival() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut sbs = region.agency("GT", "child-protection").await;
        let case = "MX-2026-0401";
        let day = weekday_ahead(GUATEMALA);
        inm.submit(notice_to("GT", case)).await.unwrap();
        wait_for_state(&sbs, case, CaseState::Notified).await;

        // A handoff before an agreed arrival.
        let handoff = compose::handoff(TECUN_UMAN, "Rosa Cux/SBS", vec![], "").unwrap();
        let early = submit(&mut sbs, case, handoff.clone()).await.unwrap_err();
        assert_eq!(early.code(), Code::FailedPrecondition);
        assert!(
            early.message().contains("is NOTIFIED"),
            "{}",
            early.message()
        );
        assert!(
            early
                .message()
                .contains("allowed next: case_summary, arrival_proposal, case_withdrawal"),
            "{}",
            early.message()
        );

        // An arrival agreed twice.
        propose(&mut inm, case, proposal("P1", &[], &format!("{day} 10:00")))
            .await
            .unwrap();
        wait_for_state(&sbs, case, CaseState::ArrivalProposed).await;
        submit(&mut sbs, case, compose::accept("P1")).await.unwrap();
        let twice = submit(&mut sbs, case, compose::accept("P1"))
            .await
            .unwrap_err();
        assert_eq!(twice.code(), Code::FailedPrecondition);
        assert!(
            twice.message().contains("is ARRIVAL_AGREED"),
            "{}",
            twice.message()
        );
        let data = Refusal::from_status(&twice).unwrap();
        assert_eq!(
            (data.code.as_str(), data.params["state"].as_str()),
            ("out-of-order", "ARRIVAL_AGREED")
        );

        // Anything after a withdrawal.
        wait_for_state(&inm, case, CaseState::ArrivalAgreed).await;
        submit(
            &mut inm,
            case,
            compose::withdrawal("protection-granted", "").unwrap(),
        )
        .await
        .unwrap();
        let after = submit(&mut inm, case, Payload::CaseSummary(summary()))
            .await
            .unwrap_err();
        assert_eq!(after.code(), Code::FailedPrecondition);
        assert!(
            after.message().contains("nothing: the case is closed"),
            "{}",
            after.message()
        );
        wait_for_state(&sbs, case, CaseState::Withdrawn).await;

        // On arrival: Mexico's gateway certificate delivers a handoff-less
        // proposal for the withdrawn case; Guatemala stores it as refused and says why.
        let body = v1::EnvelopeBody {
            message_id: uuid::Uuid::now_v7().to_string(),
            case_id: case.to_owned(),
            sender: Some(v1::Sender {
                country: "MX".into(),
                agency: "INM".into(),
                role: Role::DestinationAuthority as i32,
                delegated_consulate_country: String::new(),
                ..Default::default()
            }),
            recipient_country: "GT".into(),
            created_at: Some(compose::now()),
            payload: match proposal("P9", &[], &format!("{day} 10:00")) {
                Payload::ArrivalProposal(p) => Some(Body::ArrivalProposal(p)),
                _ => unreachable!(),
            },
        };
        let mut raw = peer_client(&region, "MX", "GT").await;
        let envelope = v1::Envelope {
            body: prost::Message::encode_to_vec(&body),
            seal: None,
        };
        let answer = deliver(&mut raw, &sealer(&region, "MX"), vec![vec![envelope]])
            .await
            .unwrap();
        let Some(v1::delivery_result::Result::Receipt(receipt)) = &answer[0].results[0].result else {
            panic!("expected a transport receipt");
        };
        let receipt: v1::ReceiptBody = prost::Message::decode(receipt.body.as_slice()).unwrap();
        assert!(
            receipt.case_refusal.contains("is WITHDRAWN"),
            "{}",
            receipt.case_refusal
        );
        let detail = receipt.case_refusal_detail.expect("the refusal as data");
        assert_eq!(
            (detail.code.as_str(), detail.params["state"].as_str()),
            ("out-of-order", "WITHDRAWN")
        );
        let at_gt = sbs.case(case).await.unwrap();
        assert_eq!(
            at_gt.state(),
            CaseState::Withdrawn,
            "the refused step changed nothing"
        );
        let refused = at_gt.timeline.last().unwrap();
        assert!(refused.refused.contains("is WITHDRAWN"));
        assert_eq!(
            refused.refused_detail.as_ref().unwrap().code,
            "out-of-order"
        );
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_family_travels_together_or_not_at_all() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut sbs = region.agency("GT", "child-protection").await;
        let day = weekday_ahead(GUATEMALA);
        for case in ["MX-FAM-1", "MX-FAM-2", "MX-FAM-3"] {
            let mut request = notice_to("GT", case);
            if let Some(Payload::AdvanceNotice(n)) = &mut request.payload {
                n.family_group_id = "FAM-PEREZ".into();
                n.companionship = v1::Companionship::WithFamily as i32;
            }
            inm.submit(request).await.unwrap();
        }

        let part = propose(
            &mut inm,
            "MX-FAM-1",
            proposal("P1", &["MX-FAM-1", "MX-FAM-2"], &format!("{day} 10:00")),
        )
        .await
        .unwrap_err();
        assert_eq!(part.code(), Code::InvalidArgument);
        assert!(
            part.message().contains("families travel together"),
            "{}",
            part.message()
        );
        assert!(
            part.message().contains("missing MX-FAM-3"),
            "{}",
            part.message()
        );

        // One child stays: the other two travel together.
        submit(
            &mut inm,
            "MX-FAM-3",
            compose::withdrawal("protection-granted", "").unwrap(),
        )
        .await
        .unwrap();
        let together = propose(
            &mut inm,
            "MX-FAM-1",
            proposal("P2", &["MX-FAM-1", "MX-FAM-2"], &format!("{day} 17:00")),
        )
        .await
        .unwrap();
        assert_eq!(
            together.case_state(),
            CaseState::ArrivalProposed,
            "17:00 is within family hours"
        );
        wait_for_state(&sbs, "MX-FAM-2", CaseState::ArrivalProposed).await;
        submit(&mut sbs, "MX-FAM-1", compose::accept("P2"))
            .await
            .unwrap();
        let agreed = sbs.case("MX-FAM-2").await.unwrap();
        assert_eq!(agreed.state(), CaseState::ArrivalAgreed, "agreed for both");
        region.advance_to(agreed_arrival(&agreed));

        let alone = compose::handoff(TECUN_UMAN, "Rosa Cux/SBS", vec!["MX-FAM-1".into()], "").unwrap();
        let split = submit(&mut sbs, "MX-FAM-1", alone).await.unwrap_err();
        assert!(
            split.message().contains("missing MX-FAM-2"),
            "{}",
            split.message()
        );
        let both = compose::handoff(
            TECUN_UMAN,
            "Rosa Cux/SBS",
            vec!["MX-FAM-1".into(), "MX-FAM-2".into()],
            "",
        )
        .unwrap();
        submit(&mut sbs, "MX-FAM-1", both).await.unwrap();
        wait_for_state(&inm, "MX-FAM-2", CaseState::HandedOver).await;
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn reception_hours_follow_daylight_saving_time() {
        // The United States receives its own children at San Ysidro, every day,
        // 08:00 to 18:00 Pacific time. On the second Sunday of March clocks move
        // from 08:00 UTC-8 to UTC-7 at 02:00 local time.
        let region = Region::new(&["MX", "US"]);
        let mut us_config = region.config("US");
        us_config.reception.points[0].weekdays = vec![1, 2, 3, 4, 5, 6, 7];
        let mx = region.start("MX").await;
        let us = region.start_with(us_config).await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let year = jiff::Timestamp::now()
            .to_zoned_datetime(TimeZone::UTC)
            .year()
            + 1;
        let mut sunday = jiff::civil::date(year, 3, 8);
        while sunday.weekday() != jiff::civil::Weekday::Sunday {
            sunday = sunday.tomorrow().unwrap();
        }
        let saturday = sunday.yesterday().unwrap();
        let mut request = notice_to("US", "MX-2026-0501");
        if let Some(Payload::AdvanceNotice(n)) = &mut request.payload {
            n.companionship = v1::Companionship::WithFamily as i32;
            n.transport.as_mut().unwrap().point_of_entry = "US-SAN-YSIDRO".into();
        }
        inm.submit(request).await.unwrap();

        let at_utc = |date: jiff::civil::Date, hour: i8, minute: i8| {
            let instant = date
                .at(hour, minute, 0, 0)
                .to_zoned_datetime(TimeZone::UTC)
                .unwrap()
                .timestamp();
            v1::ArrivalProposal {
                proposal_id: format!("P-{date}-{hour}{minute}"),
                case_ids: vec![],
                point_of_entry: "US-SAN-YSIDRO".into(),
                arrival: Some(pbjson_types::Timestamp {
                    seconds: instant.as_second(),
                    nanos: 0,
                }),
                time_zone: "America/Los_Angeles".into(),
                transport_mode: v1::TransportMode::Air as i32,
                transport_reference: "AM 0642".into(),
                escort_officers: vec![],
            }
        };
        // 15:30 UTC is 07:30 on Saturday (UTC-8): before opening.
        let before = propose(
            &mut inm,
            "MX-2026-0501",
            Payload::ArrivalProposal(at_utc(saturday, 15, 30)),
        )
        .await
        .unwrap_err();
        assert!(before.message().contains("07:30"), "{}", before.message());
        // The same 15:30 UTC is 08:30 on Sunday (UTC-7): open.
        propose(
            &mut inm,
            "MX-2026-0501",
            Payload::ArrivalProposal(at_utc(sunday, 15, 30)),
        )
        .await
        .unwrap();
        // And the origin agrees when it checks again.
        let mut us_cp = region.agency("US", "child-protection").await;
        let view = wait_for_state(&us_cp, "MX-2026-0501", CaseState::ArrivalProposed).await;
        assert!(view.timeline.iter().all(|e| e.refused.is_empty()));
        submit(
            &mut us_cp,
            "MX-2026-0501",
            compose::accept(&format!("P-{sunday}-1530")),
        )
        .await
        .unwrap();
        mx.shutdown().await;
        us.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_consulate_never_receives_a_case_summary() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let case = "MX-2026-0601";
        inm.submit(notice_to("GT", case)).await.unwrap();
        submit(&mut inm, case, Payload::CaseSummary(summary()))
            .await
            .unwrap();
        let mut sbs = region.agency("GT", "child-protection").await;
        let items = inbox_with(&mut sbs, 0, 2).await;
        assert!(matches!(
            items[1].body.as_ref().unwrap().payload,
            Some(Body::CaseSummary(_))
        ));

        let mut consulate = region.agency("GT", "consulate").await;
        let seen = inbox_now(&mut consulate, 0).await;
        assert_eq!(seen.len(), 1, "the notice only");
        let text = format!("{seen:?}");
        assert!(
            !text.contains("Anxiety") && !text.contains("psychologist"),
            "no psychosocial details"
        );
        let mut gt_migration = region.agency("GT", "destination-authority").await;
        assert!(!format!("{:?}", inbox_now(&mut gt_migration, 0).await).contains("Anxiety"));
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

const CORINTO: &str = "HN-CORINTO";

/// Mexico's INM notifies Honduras of a Honduran child's return and agrees an
/// arrival at Corinto with Honduras's child protection (DINAF); returns both
/// agencies' clients once Mexico shows ARRIVAL_AGREED and Honduras holds
/// Mexico's receipt for its acceptance (so that Honduras's view of the case
/// no longer changes on its own).
async fn agree_a_return_to_honduras(region: &Region, case: &str) -> (Client, Client) {
    let (inm, dinaf, _) = agree_a_return(region, "MX", "HN", case).await;
    (inm, dinaf)
}

/// `destination`'s migration authority notifies `origin` of the return of
/// one of its children and agrees an arrival at `origin`'s point of entry
/// with `origin`'s child protection; returns both agencies' clients and the
/// message id of the acceptance once `destination` shows ARRIVAL_AGREED and
/// `origin` holds its receipt for the acceptance (so that `origin`'s view of
/// the case no longer changes on its own), with the region's time moved to
/// the agreed arrival.
async fn agree_a_return(
    region: &Region,
    destination: &str,
    origin: &str,
    case: &str,
) -> (Client, Client, String) {
    let point = &retorno_gateway::policy::dev_points(retorno_tests::country(origin))[0];
    let mut migration = region.agency(destination, "destination-authority").await;
    let mut protection = region.agency(origin, "child-protection").await;
    let mut request = notice_to(origin, case);
    if let Some(Payload::AdvanceNotice(n)) = &mut request.payload {
        n.child.as_mut().unwrap().nationalities = vec![origin.into()];
        n.transport.as_mut().unwrap().point_of_entry = point.code.clone();
    }
    migration.submit(request).await.unwrap();
    let at = format!("{} 10:00", region.weekday_ahead(&point.time_zone));
    let arrival = compose::Proposal {
        id: "P1",
        cases: Vec::new(),
        point: &point.code,
        at: &at,
        time_zone: &point.time_zone,
        mode: "land",
        reference: "bus INM-0452",
        escorts: &["Lucía Gómez/INM".to_owned()],
    };
    propose(&mut migration, case, compose::proposal(&arrival).unwrap())
        .await
        .unwrap();
    wait_for_state(&protection, case, CaseState::ArrivalProposed).await;
    let accepted = submit(&mut protection, case, compose::accept("P1"))
        .await
        .unwrap();
    let agreed = wait_for_state(&migration, case, CaseState::ArrivalAgreed).await;
    // The day of the arrival: the handoff is now on time.
    region.advance_to(agreed_arrival(&agreed));
    eventually(
        &format!("{origin} to hold {destination}'s receipt for its acceptance"),
        || {
            let mut protection = protection.clone();
            async move {
                let view = protection.case(case).await.ok()?;
                view.timeline
                    .iter()
                    .all(|entry| entry.delivery() != v1::DeliveryState::Queued)
                    .then_some(())
            }
        },
    )
    .await;
    (migration, protection, accepted.message_id)
}

fn handoff_at_corinto() -> Payload {
    compose::handoff(
        CORINTO,
        "Rosa Cux/Consulado General de Guatemala en Tapachula",
        vec![],
        "tired, healthy",
    )
    .unwrap()
}

/// `profile`'s agency tries to read `case` and to acknowledge its handoff;
/// both calls must fail (with TLS 1.3 a refused certificate shows on the
/// first call, not at connect).
async fn refused_at_the_agency_api(profile: &retorno_client::Profile, case: &str) {
    let Ok(client) = Client::connect(profile).await else {
        return;
    };
    let read = client.clone().case(case).await;
    assert!(read.is_err(), "the case was read: {read:?}");
    let sent = submit_or_error(client, case, handoff_at_corinto()).await;
    assert!(sent.is_err(), "the handoff was accepted: {sent:?}");
}

async fn submit_or_error(
    mut client: Client,
    case: &str,
    payload: Payload,
) -> Result<SubmitResponse, ClientError> {
    client.submit(compose::request(case, None, payload)).await
}

/// The sender of the last entry of a case's timeline.
fn last_sender(view: &CaseView) -> v1::Sender {
    view.timeline.last().unwrap().sender.clone().unwrap()
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn guatemalas_consulate_acting_for_honduras_takes_custody_under_hondurass_delegation() {
        let region = Region::new(&["MX", "HN", "GT"]);
        let mx = region.start("MX").await;
        let mut hn_config = region.config("HN");
        hn_config.delegations = vec![region.delegation("GT")];
        let hn = region.start_with(hn_config).await;
        let case = "MX-2026-0701";
        let (inm, dinaf) = agree_a_return_to_honduras(&region, case).await;

        // Guatemala's consulate connects to Honduras's gateway with its own certificate.
        let mut minex = Client::connect(&region.profile_at("HN", "GT", "consulate"))
            .await
            .unwrap();
        let seen = inbox_now(&mut minex, 0).await;
        assert!(
            seen.iter().any(|item| item.redacted
                && matches!(
                    item.body.as_ref().unwrap().payload,
                    Some(Body::AdvanceNotice(_))
                )),
            "it sees the notice as a consulate does: {seen:?}"
        );
        // It may do what a consulate may, no more.
        let confirm = compose::reception("with-family", "mother, Choluteca").unwrap();
        let denied = submit(&mut minex, case, confirm).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);

        let handed = submit(&mut minex, case, handoff_at_corinto())
            .await
            .unwrap();
        assert_eq!(handed.case_state(), CaseState::HandedOver);
        let at_mx = wait_for_state(&inm, case, CaseState::HandedOver).await;
        let at_hn = wait_for_state(&dinaf, case, CaseState::HandedOver).await;
        for view in [&at_mx, &at_hn] {
            let sender = last_sender(view);
            assert_eq!(
                (
                    sender.country.as_str(),
                    sender.agency.as_str(),
                    sender.role(),
                    sender.delegated_consulate_country.as_str()
                ),
                ("HN", "MINEX", Role::Consulate, "GT"),
                "the timeline shows GT's consulate acting for HN"
            );
            assert!(view.timeline.iter().all(|e| e.refused.is_empty()));
        }
        assert_eq!(shared_timeline(&at_mx), shared_timeline(&at_hn));
        assert!(at_mx.timeline.last().unwrap().peer_refused.is_empty());
        mx.shutdown().await;
        hn.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn without_a_delegation_guatemalas_consulate_is_refused_by_hondurass_agency_api() {
        let region = Region::new(&["MX", "HN", "GT"]);
        let mx = region.start("MX").await;
        let hn = region.start("HN").await;
        let case = "MX-2026-0702";
        let (inm, dinaf) = agree_a_return_to_honduras(&region, case).await;
        let before = dinaf.clone().case(case).await.unwrap();

        refused_at_the_agency_api(&region.profile_at("HN", "GT", "consulate"), case).await;

        let after = dinaf.clone().case(case).await.unwrap();
        assert_eq!(after, before, "nothing stored at HN");
        assert_eq!(hn.outbox_depth(retorno_tests::country("MX")), 0);
        assert_eq!(
            inm.clone().case(case).await.unwrap().state(),
            CaseState::ArrivalAgreed
        );
        mx.shutdown().await;
        hn.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_delegation_admits_guatemalas_consulate_only_not_its_other_agencies() {
        let region = Region::new(&["MX", "HN", "GT"]);
        let mx = region.start("MX").await;
        let mut hn_config = region.config("HN");
        hn_config.delegations = vec![region.delegation("GT")];
        let hn = region.start_with(hn_config).await;
        let case = "MX-2026-0703";
        let (_inm, dinaf) = agree_a_return_to_honduras(&region, case).await;
        let before = dinaf.clone().case(case).await.unwrap();

        for role in ["child-protection", "destination-authority"] {
            refused_at_the_agency_api(&region.profile_at("HN", "GT", role), case).await;
        }

        assert_eq!(dinaf.clone().case(case).await.unwrap(), before);
        // The consulate itself is let in: the refusals above were for the role.
        let mut minex = Client::connect(&region.profile_at("HN", "GT", "consulate"))
            .await
            .unwrap();
        assert_eq!(
            minex.case(case).await.unwrap().state(),
            CaseState::ArrivalAgreed
        );
        mx.shutdown().await;
        hn.shutdown().await;
    }
}

/// Honduras's gateway certificate delivers to `recipient` a handoff of
/// `case` whose sender claims Guatemala's consulate acting for Honduras, as
/// a gateway that skipped its own checks would; returns the case refusal in
/// `recipient`'s receipt.
async fn handoff_by_guatemalas_consulate_delivered_by_honduras(
    region: &Region,
    recipient: &str,
    case: &str,
) -> String {
    let handoff = match handoff_at_corinto() {
        Payload::HandoffAck(h) => Body::HandoffAck(h),
        _ => unreachable!(),
    };
    let body = v1::EnvelopeBody {
        message_id: uuid::Uuid::now_v7().to_string(),
        case_id: case.to_owned(),
        sender: Some(v1::Sender {
            country: "HN".into(),
            agency: "MINEX".into(),
            role: Role::Consulate as i32,
            delegated_consulate_country: "GT".into(),
            ..Default::default()
        }),
        recipient_country: recipient.into(),
        created_at: Some(region.created_at()),
        payload: Some(handoff),
    };
    let envelope = v1::Envelope {
        body: prost::Message::encode_to_vec(&body),
        seal: None,
    };
    let mut raw = peer_client(region, "HN", recipient).await;
    let answer = deliver(&mut raw, &sealer(region, "HN"), vec![vec![envelope]])
        .await
        .unwrap();
    let Some(v1::delivery_result::Result::Receipt(receipt)) = &answer[0].results[0].result else {
        panic!("expected a transport receipt");
    };
    let receipt: v1::ReceiptBody = prost::Message::decode(receipt.body.as_slice()).unwrap();
    receipt.case_refusal
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_delegation_honduras_never_published_is_refused_by_mexico_on_arrival() {
        let region = Region::new(&["MX", "HN", "GT"]);
        let mx = region.start("MX").await;
        let hn = region.start("HN").await;
        let case = "MX-2026-0704";
        let (inm, _dinaf) = agree_a_return_to_honduras(&region, case).await;

        // Honduras lists no delegation.
        let refusal = handoff_by_guatemalas_consulate_delivered_by_honduras(&region, "MX", case).await;
        assert!(
            refusal.contains("HN's gateway does not list a delegation to GT's consulate")
                && refusal.contains("[[delegations]] consulate_country = \"GT\""),
            "{refusal}"
        );
        let at_mx = inm.clone().case(case).await.unwrap();
        assert_eq!(
            at_mx.state(),
            CaseState::ArrivalAgreed,
            "the refused step changed nothing"
        );
        let last = at_mx.timeline.last().unwrap();
        assert!(last.refused.contains("does not list a delegation"));
        assert_eq!(
            last.sender.as_ref().unwrap().delegated_consulate_country,
            "GT"
        );
        mx.shutdown().await;
        hn.shutdown().await;
    }
}

/// What a delegated consulate is told of a case it may not read, the same
/// as of one that does not exist (`need_to_know::a_delegated_consulate_cannot_probe_which_case_ids_exist`).
const NOT_SHOWN: &str =
    "it reads only cases held here of which HN is the origin and GT is not the destination";

/// Whether an inbox holds any item of `case`.
fn holds_case(items: &[v1::InboxItem], case: &str) -> bool {
    items
        .iter()
        .any(|item| item.body.as_ref().is_some_and(|body| body.case_id == case))
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn guatemalas_consulate_cannot_take_custody_for_honduras_of_a_child_guatemala_returns() {
        let region = Region::new(&["HN", "GT"]);
        let gt = region.start("GT").await;
        let mut hn_config = region.config("HN");
        hn_config.delegations = vec![region.delegation("GT")];
        let hn = region.start_with(hn_config).await;
        // Guatemala returns a Honduran child: Guatemala is the destination.
        let case = "GT-2026-0706";
        let (migracion, dinaf, accepted) = agree_a_return(&region, "GT", "HN", case).await;
        let before = dinaf.clone().case(case).await.unwrap();
        let expected =
            format!("GT is the destination of case {case}; its consulate cannot take custody for HN");

        // Through Honduras's gateway, Guatemala's consulate may not take custody...
        let mut minex = Client::connect(&region.profile_at("HN", "GT", "consulate"))
            .await
            .unwrap();
        let denied = submit(&mut minex, case, handoff_at_corinto())
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
        assert!(denied.message().contains(&expected), "{denied:?}");
        assert_eq!(
            dinaf.clone().case(case).await.unwrap(),
            before,
            "nothing stored at HN"
        );
        assert_eq!(hn.outbox_depth(retorno_tests::country("GT")), 0);

        // ...nor read the case on Honduras's behalf.
        let Err(ClientError::Status(read)) = minex.case(case).await else {
            panic!("the case was read");
        };
        assert_eq!(read.code(), Code::PermissionDenied);
        assert!(read.message().contains(NOT_SHOWN), "{read:?}");
        let listed = minex.cases(None).await.unwrap();
        assert!(listed.iter().all(|c| c.case_id != case), "{listed:?}");
        let Err(ClientError::Status(status)) = minex.status(&accepted).await else {
            panic!("the status of Honduras's acceptance was read");
        };
        assert_eq!(status.code(), Code::PermissionDenied);
        let seen = inbox_now(&mut minex, 0).await;
        assert!(!holds_case(&seen, case), "{seen:?}");

        // Guatemala's gateway refuses such a handoff on arrival too, and the case stays put.
        let refusal = handoff_by_guatemalas_consulate_delivered_by_honduras(&region, "GT", case).await;
        assert!(refusal.contains(&expected), "{refusal}");
        let at_gt = migracion.clone().case(case).await.unwrap();
        assert_eq!(at_gt.state(), CaseState::ArrivalAgreed);
        assert!(at_gt.timeline.last().unwrap().refused.contains(&expected));
        gt.shutdown().await;
        hn.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn guatemalas_consulate_acting_for_honduras_sees_nothing_of_a_return_honduras_makes() {
        let region = Region::new(&["MX", "HN", "GT"]);
        let mx = region.start("MX").await;
        let mut hn_config = region.config("HN");
        hn_config.delegations = vec![region.delegation("GT")];
        let hn = region.start_with(hn_config).await;
        // Mexico returns a child to Honduras (Honduras is the origin)...
        let to_honduras = "MX-2026-0707";
        agree_a_return(&region, "MX", "HN", to_honduras).await;
        // ...and Honduras returns a child to Mexico (Honduras is the destination).
        let to_mexico = "HN-2026-0708";
        let (mut hn_migration, _dif, _) = agree_a_return(&region, "HN", "MX", to_mexico).await;
        let sent_by_honduras = hn_migration
            .case(to_mexico)
            .await
            .unwrap()
            .timeline
            .iter()
            .find(|entry| entry.sender.as_ref().is_some_and(|s| s.country == "HN"))
            .unwrap()
            .message_id
            .clone();

        let mut minex = Client::connect(&region.profile_at("HN", "GT", "consulate"))
            .await
            .unwrap();
        let Err(ClientError::Status(read)) = minex.case(to_mexico).await else {
            panic!("the case was read");
        };
        assert_eq!(read.code(), Code::PermissionDenied);
        assert!(read.message().contains(NOT_SHOWN), "{read:?}");
        let listed: Vec<String> = minex
            .cases(None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.case_id)
            .collect();
        assert_eq!(listed, vec![to_honduras.to_owned()]);
        let Err(ClientError::Status(status)) = minex.status(&sent_by_honduras).await else {
            panic!("the status of Honduras's notice was read");
        };
        assert_eq!(status.code(), Code::PermissionDenied);
        let seen = inbox_now(&mut minex, 0).await;
        assert!(holds_case(&seen, to_honduras), "{seen:?}");
        assert!(!holds_case(&seen, to_mexico), "{seen:?}");
        mx.shutdown().await;
        hn.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_delegation_honduras_adds_with_a_restart_is_honoured_by_mexico_before_its_next_policy_refresh() {
        let region = Region::new(&["MX", "HN", "GT"]);
        let mx = region.start("MX").await;
        let hn = region.start("HN").await;
        let case = "MX-2026-0705";
        // Mexico knows Honduras's policy, without a delegation, by the time the
        // arrival is agreed; its next periodic fetch is ten minutes away.
        let (inm, dinaf) = agree_a_return_to_honduras(&region, case).await;
        let before = inm.clone().case(case).await.unwrap().timeline.len();

        // Honduras's operator adds the delegation to Guatemala's consulate and restarts.
        hn.shutdown().await;
        region.take_offline("HN");
        let mut hn_config = region.config("HN");
        hn_config.delegations = vec![region.delegation("GT")];
        let hn = region.restart_with(hn_config).await;

        let mut minex = Client::connect(&region.profile_at("HN", "GT", "consulate"))
            .await
            .unwrap();
        let handed = submit(&mut minex, case, handoff_at_corinto())
            .await
            .unwrap();
        assert_eq!(handed.case_state(), CaseState::HandedOver);

        // Mexico fetches Honduras's policy when the handoff arrives, and accepts it.
        let at_mx = eventually("the handoff to reach Mexico", || {
            let mut inm = inm.clone();
            async move {
                let view = inm.case(case).await.ok()?;
                (view.timeline.len() > before).then_some(view)
            }
        })
        .await;
        let last = at_mx.timeline.last().unwrap();
        assert!(
            last.refused.is_empty(),
            "Mexico refused the handoff: {}",
            last.refused
        );
        assert_eq!(at_mx.state(), CaseState::HandedOver);
        assert_eq!(last_sender(&at_mx).delegated_consulate_country, "GT");
        let at_hn = wait_for_state(&dinaf, case, CaseState::HandedOver).await;
        assert_eq!(shared_timeline(&at_mx), shared_timeline(&at_hn));
        mx.shutdown().await;
        hn.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn withdrawing_an_agreed_case_gives_its_place_back_at_the_point_of_entry() {
        // Tecún Umán receives one child a day.
        let region = Region::new(&["MX", "GT"]);
        let mut gt_config = region.config("GT");
        gt_config.reception.points[0].capacity_per_day = 1;
        let mx = region.start("MX").await;
        let gt = region.start_with(gt_config).await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut sbs = region.agency("GT", "child-protection").await;
        let day = weekday_ahead(GUATEMALA);
        let cases = ["MX-CAP-1", "MX-CAP-2", "MX-CAP-3"];
        for (i, case) in cases.iter().enumerate() {
            inm.submit(notice_to("GT", case)).await.unwrap();
            let id = format!("P{i}");
            propose(
                &mut inm,
                case,
                proposal(&id, &[], &format!("{day} 1{i}:00")),
            )
            .await
            .unwrap();
            wait_for_state(&sbs, case, CaseState::ArrivalProposed).await;
        }
        let full = |status: &tonic::Status| {
            status.code() == Code::InvalidArgument
                && status.message().contains("can receive 1 children on")
        };

        submit(&mut sbs, "MX-CAP-1", compose::accept("P0"))
            .await
            .unwrap();
        let refused = submit(&mut sbs, "MX-CAP-2", compose::accept("P1"))
            .await
            .unwrap_err();
        assert!(full(&refused), "{}", refused.message());

        // A case withdrawn before its arrival was agreed held no place.
        submit(
            &mut inm,
            "MX-CAP-3",
            compose::withdrawal("protection-granted", "").unwrap(),
        )
        .await
        .unwrap();
        wait_for_state(&sbs, "MX-CAP-3", CaseState::Withdrawn).await;
        let refused = submit(&mut sbs, "MX-CAP-2", compose::accept("P1"))
            .await
            .unwrap_err();
        assert!(full(&refused), "{}", refused.message());

        // The agreed child stays in Mexico: the day has a place again.
        wait_for_state(&inm, "MX-CAP-1", CaseState::ArrivalAgreed).await;
        submit(
            &mut inm,
            "MX-CAP-1",
            compose::withdrawal("protection-granted", "").unwrap(),
        )
        .await
        .unwrap();
        wait_for_state(&sbs, "MX-CAP-1", CaseState::Withdrawn).await;
        let agreed = submit(&mut sbs, "MX-CAP-2", compose::accept("P1"))
            .await
            .unwrap();
        assert_eq!(agreed.case_state(), CaseState::ArrivalAgreed);
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

/// A certificate naming `country`'s agency in `role`, issued by the agency CA
/// of `issuer` in `region`: what an agency CA trusted for another country
/// could mint.
fn minted_by(
    region: &Region,
    issuer: &str,
    country: &str,
    role: &str,
) -> (tempfile::TempDir, retorno_client::Profile) {
    let dir = tempfile::tempdir().unwrap();
    let forged = retorno_certs_dev::generate(&retorno_certs_dev::Options {
        out: dir.path().to_owned(),
        countries: vec![country.to_owned()],
        force: false,
    })
    .unwrap();
    std::fs::copy(region.pki().agency_ca(issuer), forged.agency_ca(country)).unwrap();
    std::fs::copy(
        region.pki().agency_ca_key(issuer),
        forged.agency_ca_key(country),
    )
    .unwrap();
    let holder = retorno_certs_dev::Holder::Agency {
        country: country.to_owned(),
        role: role.to_owned(),
    };
    retorno_certs_dev::renew(&forged, &holder, retorno_certs_dev::Lifetime::default()).unwrap();
    let mut profile = region.profile("HN", role);
    profile.cert = forged.agency_cert(country, role);
    profile.key = forged.agency_key(country, role);
    (dir, profile)
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_delegated_countrys_agency_ca_certifies_only_that_countrys_consulate() {
        let region = Region::new(&["MX", "HN", "GT"]);
        let mx = region.start("MX").await;
        let mut hn_config = region.config("HN");
        hn_config.delegations = vec![region.delegation("GT")];
        let hn = region.start_with(hn_config).await;
        let case = "MX-2026-0705";
        let (_inm, dinaf) = agree_a_return_to_honduras(&region, case).await;
        let before = dinaf.clone().case(case).await.unwrap();

        // Guatemala's agency CA minting a Honduran child-protection certificate,
        // and Honduras's minting a Guatemalan consulate's: both refused.
        let (_gt_ca, hn_by_gt) = minted_by(&region, "GT", "HN", "child-protection");
        refused_at_the_agency_api(&hn_by_gt, case).await;
        let (_hn_ca, gt_by_hn) = minted_by(&region, "HN", "GT", "consulate");
        refused_at_the_agency_api(&gt_by_hn, case).await;

        assert_eq!(dinaf.clone().case(case).await.unwrap(), before);
        assert!(hn.tls().stats().refused_agency_certificates >= 2);
        mx.shutdown().await;
        hn.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    /// Issue 9: a handoff much later than the agreed arrival is still recorded
    /// (the child is in custody) and both gateways flag it late.
    #[tokio::test]
    async fn a_late_handoff_is_accepted_and_flagged_late_on_both_gateways() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let case = "MX-2026-0801";
        let (inm, mut sbs, _) = agree_a_return(&region, "MX", "GT", case).await;
        // Three days after the arrival: over the default 48 hours.
        region.advance_days(3);
        let handoff = compose::handoff(TECUN_UMAN, "Rosa Cux/SBS", vec![], "").unwrap();
        let handed = submit(&mut sbs, case, handoff).await.unwrap();
        assert_eq!(handed.case_state(), CaseState::HandedOver);
        let at_mx = wait_for_state(&inm, case, CaseState::HandedOver).await;
        let at_gt = sbs.case(case).await.unwrap();
        for view in [&at_mx, &at_gt] {
            let entry = view.timeline.last().unwrap();
            let flag = &entry.flag;
            assert!(
                flag.starts_with("late: acknowledged 72 hours after the agreed arrival")
                    && flag.contains("handoff_late_after_hours of 48"),
                "{flag}"
            );
            // The same remark as data, so that a Spanish reader reads it in Spanish.
            let detail = entry.flag_detail.as_ref().expect("the remark as data");
            assert_eq!(detail.code, "handoff-late");
            for (name, value) in [
                ("hours", "72"),
                ("late_after", "48"),
                ("country", "GT"),
                ("time_zone", "America/Guatemala"),
            ] {
                assert_eq!(detail.params.get(name).map(String::as_str), Some(value), "{name}");
            }
            // The agreed arrival, at the point's wall clock, with its weekday.
            let agreed = view.agreed_arrival.as_ref().unwrap().arrival.as_ref().unwrap();
            let arrival = jiff::Timestamp::new(agreed.seconds, 0)
                .unwrap()
                .to_zoned_datetime(jiff::tz::TimeZone::get(GUATEMALA).unwrap());
            let weekday = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
                [usize::try_from(arrival.weekday().to_monday_zero_offset()).unwrap()];
            let spanish = retorno_client::words::reason(flag, Some(detail), Lang::Es);
            assert_eq!(
                spanish,
                format!(
                    "Entrega tardía: se acusó 72 horas después del arribo acordado (el {weekday} {} {:02}:{:02}, hora de Guatemala), más de las 48 horas que admite GT (handoff_late_after_hours).",
                    arrival.date(),
                    arrival.hour(),
                    arrival.minute()
                )
            );
        }
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    /// Issue 9: a proposal for an unaccompanied child with no escort was accepted.
    #[tokio::test]
    async fn an_unaccompanied_childs_proposal_names_an_escort_officer() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let sbs = region.agency("GT", "child-protection").await;
        let case = "MX-2026-0802";
        let day = weekday_ahead(GUATEMALA);
        inm.submit(notice_to("GT", case)).await.unwrap();
        let alone = compose::Proposal {
            id: "P1",
            cases: Vec::new(),
            point: TECUN_UMAN,
            at: &format!("{day} 10:00"),
            time_zone: GUATEMALA,
            mode: "land",
            reference: "bus INM-0452",
            escorts: &[],
        };
        let refused = propose(&mut inm, case, compose::proposal(&alone).unwrap())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused.message().starts_with(
                "arrival_proposal.escort_officers: case MX-2026-0802 is of a child travelling unaccompanied"
            ),
            "{}",
            refused.message()
        );
        assert_eq!(
            inm.case(case).await.unwrap().state(),
            CaseState::Notified,
            "nothing changed"
        );
        let escorted = propose(&mut inm, case, proposal("P1", &[], &format!("{day} 10:00")))
            .await
            .unwrap();
        assert_eq!(escorted.case_state(), CaseState::ArrivalProposed);
        wait_for_state(&sbs, case, CaseState::ArrivalProposed).await;
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    /// Issue 9: after a decline the case read ARRIVAL_PROPOSED with no proposal open.
    #[tokio::test]
    async fn a_declined_proposal_leaves_the_case_awaiting_a_new_one_on_both_gateways() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut sbs = region.agency("GT", "child-protection").await;
        let case = "MX-2026-0803";
        let day = weekday_ahead(GUATEMALA);
        inm.submit(notice_to("GT", case)).await.unwrap();
        propose(&mut inm, case, proposal("P1", &[], &format!("{day} 10:00")))
            .await
            .unwrap();
        wait_for_state(&sbs, case, CaseState::ArrivalProposed).await;
        let decline = compose::decline("P1", "no-capacity", "").unwrap();
        let declined = submit(&mut sbs, case, decline).await.unwrap();
        assert_eq!(declined.case_state(), CaseState::AwaitingProposal);
        let at_mx = wait_for_state(&inm, case, CaseState::AwaitingProposal).await;
        assert!(at_mx.open_proposal.is_none());
        let again = submit(&mut sbs, case, compose::accept("P1"))
            .await
            .unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition);
        assert!(
            again.message().contains(
                "is AWAITING_PROPOSAL: arrival_response is not allowed now; allowed next: case_summary, arrival_proposal, case_withdrawal"
            ),
            "{}",
            again.message()
        );
        let next = propose(&mut inm, case, proposal("P2", &[], &format!("{day} 11:00")))
            .await
            .unwrap();
        assert_eq!(next.case_state(), CaseState::ArrivalProposed);
        wait_for_state(&sbs, case, CaseState::ArrivalProposed).await;
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

/// Guatemala's gateway certificate delivers to Mexico a step of `case`
/// created at `created_at`, as a gateway that skipped its own checks would;
/// returns Mexico's case refusal from its receipt.
async fn delivered_by_guatemala(
    region: &Region,
    case: &str,
    created_at: jiff::Timestamp,
    payload: Body,
) -> String {
    let body = v1::EnvelopeBody {
        message_id: uuid::Uuid::now_v7().to_string(),
        case_id: case.to_owned(),
        sender: Some(v1::Sender {
            country: "GT".into(),
            agency: "SBS".into(),
            role: Role::ChildProtection as i32,
            delegated_consulate_country: String::new(),
            ..Default::default()
        }),
        recipient_country: "MX".into(),
        created_at: Some(pbjson_types::Timestamp {
            seconds: created_at.as_second(),
            nanos: 0,
        }),
        payload: Some(payload),
    };
    let envelope = v1::Envelope {
        body: prost::Message::encode_to_vec(&body),
        seal: None,
    };
    let mut raw = peer_client(region, "GT", "MX").await;
    let answer = deliver(&mut raw, &sealer(region, "GT"), vec![vec![envelope]])
        .await
        .unwrap();
    let Some(v1::delivery_result::Result::Receipt(receipt)) = &answer[0].results[0].result else {
        panic!("expected a transport receipt");
    };
    let receipt: v1::ReceiptBody = prost::Message::decode(receipt.body.as_slice()).unwrap();
    receipt.case_refusal
}

retorno_tests::on_both_engines! {
    /// The destination applies the origin's timing too: an early handoff, and a
    /// reception before the handoff, that reach Mexico anyway are refused in
    /// the receipt and change nothing.
    #[tokio::test]
    async fn the_order_of_time_is_enforced_again_on_arrival() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let case = "MX-2026-0804";
        let (inm, mut sbs, _) = agree_a_return(&region, "MX", "GT", case).await;
        let arrival = agreed_arrival(&inm.clone().case(case).await.unwrap());

        let handoff = match compose::handoff(TECUN_UMAN, "Rosa Cux/SBS", vec![], "").unwrap() {
            Payload::HandoffAck(h) => h,
            _ => unreachable!(),
        };
        let thirteen_hours_early = arrival - jiff::SignedDuration::from_hours(13);
        let refusal = delivered_by_guatemala(
            &region,
            case,
            thirteen_hours_early,
            Body::HandoffAck(handoff.clone()),
        )
        .await;
        assert!(
            refusal.contains("handoff_margin_hours")
                && refusal.contains(&(arrival - jiff::SignedDuration::from_hours(12)).to_string()),
            "{refusal}"
        );
        let at_mx = inm.clone().case(case).await.unwrap();
        assert_eq!(at_mx.state(), CaseState::ArrivalAgreed);
        assert_eq!(at_mx.timeline.last().unwrap().refused, refusal);

        submit(&mut sbs, case, Payload::HandoffAck(handoff))
            .await
            .unwrap();
        let handed = wait_for_state(&inm, case, CaseState::HandedOver).await;
        let handed_at = handed.handed_over_at.unwrap();
        let before_handoff = jiff::Timestamp::from_second(handed_at.seconds - 60).unwrap();
        let reception = match compose::reception("with-family", "").unwrap() {
            Payload::ReceptionConfirmation(r) => r,
            _ => unreachable!(),
        };
        let refusal = delivered_by_guatemala(
            &region,
            case,
            before_handoff,
            Body::ReceptionConfirmation(reception),
        )
        .await;
        assert!(
            refusal.contains("a reception is confirmed no earlier than the handoff"),
            "{refusal}"
        );
        assert_eq!(
            inm.clone().case(case).await.unwrap().state(),
            CaseState::HandedOver
        );
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    /// Issue 11: the official acting for an agency, as the agency names them
    /// (the console's logged-in staff member), travels with the message: both
    /// countries' timelines and audit logs show the name. A name no timeline
    /// could show on one line is refused, naming the field, and nothing is sent.
    #[tokio::test]
    async fn the_official_named_by_the_agency_shows_in_both_timelines_and_audit_logs() {
        use retorno_gateway::audit::{self, Event};

        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let sbs = region.agency("GT", "child-protection").await;
        let case = "MX-2026-0311";

        for (name, code) in [
            ("Ana\nPérez", "field-control-characters"),
            (&*"A".repeat(121), "field-too-long"),
        ] {
            let refused = inm
                .submit(v1::SubmitRequest {
                    official: name.to_owned(),
                    ..notice_to("GT", case)
                })
                .await
                .unwrap_err();
            let ClientError::Status(status) = refused else {
                panic!("transport failure: {refused}");
            };
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(
                status.message().starts_with("official: "),
                "{}",
                status.message()
            );
            let data = Refusal::from_status(&status).unwrap();
            assert_eq!((data.code.as_str(), data.field()), (code, Some("official")));
        }
        assert!(
            inm.case(case).await.is_err(),
            "a refused official's name opened no case"
        );

        let accepted = inm
            .submit(v1::SubmitRequest {
                official: "Ana Pérez".to_owned(),
                ..notice_to("GT", case)
            })
            .await
            .unwrap();
        let named = |view: &CaseView| {
            view.timeline[0]
                .sender
                .as_ref()
                .map(|sender| sender.official.clone())
        };
        let at_gt = wait_for_state(&sbs, case, CaseState::Notified).await;
        assert_eq!(named(&at_gt).as_deref(), Some("Ana Pérez"));
        assert_eq!(
            named(&inm.case(case).await.unwrap()).as_deref(),
            Some("Ana Pérez")
        );
        // MX's gateway has GT's receipt by now: GT stored the message before its case moved.
        eventually("GT's receipt", || {
            let (mut inm, id) = (inm.clone(), accepted.message_id.clone());
            async move { inm.status(&id).await.ok()?.receipt_body }
        })
        .await;
        mx.shutdown().await;
        gt.shutdown().await;

        for (country, event) in [("MX", Event::SubmitAccepted), ("GT", Event::Delivered)] {
            let store = retorno_tests::open_store(&region.config(country)).await;
            let entries = audit::entries(&store).unwrap();
            let entry = entries
                .iter()
                .find(|e| e.event == event as i32 && e.message_id == accepted.message_id)
                .unwrap_or_else(|| panic!("{country}'s audit log records the message"));
            assert_eq!(entry.official, "Ana Pérez", "{country}");
            assert!(
                entry
                    .describe()
                    .contains("official \"Ana Pérez\" (as named by the agency)"),
                "{}",
                entry.describe()
            );
        }
    }
}
