//! Issue 10, the operator's view: Mexico's operations team follows its
//! gateway through a Guatemalan outage, looks at every attempt to deliver a
//! message, sends again a message Guatemala rejected once the cause is
//! fixed, and finds that a message Guatemala's case rules refused cannot be
//! sent again. The operator never reads a payload, and no other agency may
//! use the Operator API.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use jiff::{SignedDuration, Timestamp};
use retorno_client::{Client, ClientError, Operations, compose};
use retorno_gateway::audit::{self, Event};
use retorno_gateway::config::{Config, Webhook};
use retorno_gateway::gateway::Gateway;
use retorno_gateway::retention::{self, Mode};
use retorno_proto::v1::{
    CaseState, DeterminingAuthority, MessageDirection, MessageHistory, MessageState,
    RequeueRefusal, submit_request::Payload,
};
use retorno_tests::{
    Region, WebhookReceiver, country, engine, eventually, inbox_now, inbox_with, notice, notice_to,
    open_store, wait_for_state,
};

const OPERATOR: &str = "urn:retorno:agency:MX:operator:OPS";

async fn operator(region: &Region, code: &str) -> Operations {
    Operations::connect(&region.profile(code, "operator"))
        .await
        .unwrap()
}

fn events(history: &MessageHistory) -> Vec<&str> {
    history.events.iter().map(|e| e.event.as_str()).collect()
}

fn state(history: &MessageHistory) -> MessageState {
    history.message.as_ref().unwrap().state()
}

/// Mexico's config relaxing the best-interest gate for Guatemala, which has
/// not agreed: Guatemala stores a notice [`determined_by_migration`] and refuses it.
fn relaxed_for_guatemala(region: &Region) -> Config {
    let mut relaxed = region.config("MX");
    relaxed.case.relax_best_interest_for = vec![country("GT")];
    relaxed
}

/// A notice to Guatemala for `case_id` whose best-interest determination
/// migration made, not a child-protection authority.
fn determined_by_migration(case_id: &str) -> retorno_proto::v1::SubmitRequest {
    let mut migration = notice();
    migration.best_interest.as_mut().unwrap().authority_kind =
        DeterminingAuthority::Migration as i32;
    compose::request(case_id, Some("GT"), Payload::AdvanceNotice(migration))
}

/// Runs `retorno-gateway ops ARGS` with `code`'s operator profile, in
/// English, and returns whether it succeeded and what it printed.
async fn ops_command(region: &Region, code: &str, args: &[&str]) -> (bool, String) {
    ops_command_in(region, code, "en_US.UTF-8", args).await
}

/// [`ops_command`] with `LC_ALL` set to `locale`.
async fn ops_command_in(
    region: &Region,
    code: &str,
    locale: &str,
    args: &[&str],
) -> (bool, String) {
    let profile = region.dir().join(format!("{code}-operator.toml"));
    let text = region.profile(code, "operator").to_toml().unwrap();
    std::fs::write(&profile, text).unwrap();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let locale = locale.to_owned();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-process"))
            .env("LC_ALL", locale)
            .arg("ops")
            .arg("--profile")
            .arg(&profile)
            .args(&args)
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), printed)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_shows_in_ops_status_and_every_attempt_in_ops_show() {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    let mx = region.start("MX").await;
    let mut inm = region.agency("MX", "destination-authority").await;
    let first = inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
    inm.submit(notice_to("GT", "MX-2026-0002")).await.unwrap();
    let mut ops = operator(&region, "MX").await;

    let down = eventually("ops status to show Guatemala down for a second", || async {
        let status = ops.clone().status().await.unwrap();
        let gt = status
            .peers
            .into_iter()
            .find(|p| p.country == "GT")
            .unwrap();
        (!gt.connected && gt.oldest_queued_seconds >= 1 && !gt.last_error.is_empty()).then_some(gt)
    })
    .await;
    assert_eq!(down.queued, 2);
    assert!(down.last_error_at.is_some() && down.last_receipt_at.is_none());
    let (ok, printed) = ops_command(&region, "MX", &["status"]).await;
    assert!(ok, "{printed}");
    assert!(printed.contains("GT  DOWN  queued 2, oldest "), "{printed}");
    assert!(printed.contains("gateway certificate"), "{printed}");
    let (ok, printed) =
        ops_command(&region, "MX", &["--json", "messages", "--state", "queued"]).await;
    assert!(ok, "{printed}");
    assert_eq!(
        printed.matches("\"MESSAGE_STATE_QUEUED\"").count(),
        2,
        "{printed}"
    );

    let gt = region.start("GT").await;
    let up = eventually(
        "ops status to show Guatemala back and its queue empty",
        || async {
            let status = ops.clone().status().await.unwrap();
            let gt = status
                .peers
                .into_iter()
                .find(|p| p.country == "GT")
                .unwrap();
            (gt.connected && gt.queued == 0 && gt.last_receipt_at.is_some()).then_some(gt)
        },
    )
    .await;
    assert_eq!(up.oldest_queued_seconds, 0);

    let history = ops.show(&first.message_id).await.unwrap();
    let seen = events(&history);
    let failed = seen.iter().filter(|e| **e == "connection_failed").count();
    assert!(failed >= 1, "{seen:?}");
    assert_eq!(seen[0], "accepted");
    assert_eq!(
        &seen[1..=failed],
        vec!["connection_failed"; failed].as_slice()
    );
    assert_eq!(&seen[failed + 1..], ["connected", "receipt"], "{seen:?}");
    assert!(
        history.events[1..=failed]
            .iter()
            .all(|e| !e.detail.is_empty())
    );
    assert_eq!(state(&history), MessageState::Delivered);
    assert!(!history.requeueable);
    let summary = history.message.unwrap();
    assert_eq!(
        (
            summary.peer.as_str(),
            summary.kind.as_str(),
            summary.case_ids.as_slice()
        ),
        (
            "GT",
            "advance_notice",
            ["MX-2026-0001".to_owned()].as_slice()
        )
    );
    assert!(summary.size_bytes > 0 && summary.answered_at.is_some());
    mx.shutdown().await;
    gt.shutdown().await;
}

/// A region where Guatemala rejected Mexico's notice without storing it,
/// and Mexico's operator was alerted.
struct Rejected {
    region: Region,
    mx: Gateway,
    gt: Gateway,
    mx_config: Config,
    receiver: WebhookReceiver,
    message_id: String,
    ops: Operations,
}

async fn rejected_by_guatemala() -> Rejected {
    let region = Region::new(&["MX", "GT"]);
    // Guatemala's gateway takes smaller messages than Mexico's: it rejects
    // the notice without storing it (a transport-level rejection).
    let mut small = region.config("GT");
    small.limits.max_message_bytes = 1024;
    let receiver = WebhookReceiver::start().await;
    let mut mx_config = region.config("MX");
    mx_config.alerts.check_interval_ms = 20;
    mx_config.alerts.webhooks = vec![Webhook {
        url: receiver.url(),
        bearer_token: None,
        ca: None,
        client_cert: None,
        client_key: None,
    }];
    let mx = region.start_with(mx_config.clone()).await;
    let gt = region.start_with(small).await;
    let mut inm = region.agency("MX", "destination-authority").await;
    let mut long = notice();
    let child = long.child.as_mut().unwrap();
    let document = child.documents[0].clone();
    child.documents = vec![document; 40];
    let request = compose::request("MX-2026-0001", Some("GT"), Payload::AdvanceNotice(long));
    let sent = inm.submit(request).await.unwrap();
    let ops = operator(&region, "MX").await;
    let rejected = eventually("Guatemala to reject the notice", || async {
        let history = ops.clone().show(&sent.message_id).await.unwrap();
        (state(&history) == MessageState::Rejected).then_some(history)
    })
    .await;
    let error = &rejected.message.as_ref().unwrap().error;
    assert!(error.starts_with("TOO_LARGE: "), "{error}");
    assert!(rejected.requeueable, "{rejected:?}");
    let alert = eventually("the rejection's alert", || async {
        receiver.of("message_rejected", "firing").pop()
    })
    .await;
    assert_eq!(alert["labels"]["message_id"], sent.message_id.as_str());
    assert!(
        alert["summary"].as_str().unwrap().contains("TOO_LARGE"),
        "{alert}"
    );
    Rejected {
        region,
        mx,
        gt,
        mx_config,
        receiver,
        message_id: sent.message_id,
        ops,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_message_is_requeued_after_the_fix_and_delivered_once() {
    let Rejected {
        region,
        mx,
        gt,
        receiver,
        message_id,
        mut ops,
        ..
    } = rejected_by_guatemala().await;

    // Guatemala's operator raises the limit; Mexico's requeues.
    gt.shutdown().await;
    let gt = region.restart_with(region.config("GT")).await;
    let (ok, printed) = ops_command(&region, "MX", &["requeue", &message_id]).await;
    assert!(ok, "{printed}");
    assert!(
        printed.contains(&format!("requeued {message_id} (new sequence 2)")),
        "{printed}"
    );

    let delivered = eventually("the requeued notice to be delivered", || async {
        let history = ops.clone().show(&message_id).await.unwrap();
        (state(&history) == MessageState::Delivered).then_some(history)
    })
    .await;
    let seen = events(&delivered);
    let rejected_at = seen.iter().position(|e| *e == "rejected").unwrap();
    assert_eq!(seen[rejected_at + 1], "requeued", "{seen:?}");
    assert_eq!(seen.last(), Some(&"receipt"), "{seen:?}");
    assert!(delivered.events[rejected_at + 1].detail.contains(OPERATOR));
    assert_eq!(delivered.message.as_ref().unwrap().requeued, 1);
    eventually("the rejection's alert to be resolved", || async {
        receiver.of("message_rejected", "resolved").pop()
    })
    .await;
    let mut sbs = region.agency("GT", "child-protection").await;
    let items = inbox_now(&mut sbs, 0).await;
    let copies = items
        .iter()
        .filter(|item| item.body.as_ref().unwrap().message_id == message_id)
        .count();
    assert_eq!(copies, 1, "delivered once");
    wait_for_state(&sbs, "MX-2026-0001", CaseState::Notified).await;

    let again = ops.requeue(vec![message_id.clone()]).await.unwrap();
    assert_eq!(again.outcomes[0].refusal(), RequeueRefusal::Delivered);
    mx.shutdown().await;
    gt.shutdown().await;

    let store = open_store(&region.config("MX")).await;
    let entries = audit::entries(&store).unwrap();
    let requeued: Vec<_> = entries
        .iter()
        .filter(|e| e.event == Event::Requeued as i32)
        .collect();
    assert_eq!(requeued.len(), 1);
    assert_eq!(
        (requeued[0].party.as_str(), requeued[0].message_id.as_str()),
        (OPERATOR, message_id.as_str())
    );
}

retorno_tests::on_both_engines! {
    #[tokio::test(flavor = "multi_thread")]
    async fn a_rejected_envelope_no_one_requeues_goes_with_retention_and_its_alert_resolves() {
        let Rejected {
            region,
            mx,
            gt,
            mx_config,
            receiver,
            message_id,
            ..
        } = rejected_by_guatemala().await;
        mx.shutdown().await;
        gt.shutdown().await;
        let (data, storage) = (&mx_config.data_dir, &mx_config.storage);
        // The region keeps envelopes in the clear, so the child's name shows
        // where Mexico keeps the rejected notice for a requeue.
        let name = "Pérez Xol".as_bytes();
        assert!(engine::database_contains(data, storage, name).await);

        // 89 days after the rejection it is kept; 91 days after, it goes.
        let store = open_store(&mx_config).await;
        let policy = retention::Policy::from(storage);
        let days = |n: i64| Timestamp::now().checked_add(SignedDuration::from_hours(n * 24)).unwrap();
        let early = retention::purge(&store, &policy, days(89), Mode::Purge).await.unwrap();
        assert_eq!(early.rejected, 0);
        let report = retention::purge(&store, &policy, days(91), Mode::Purge).await.unwrap();
        assert_eq!((report.rejected, report.purged()), (1, 1), "{report}");
        let purged: Vec<_> = audit::entries(&store)
            .unwrap()
            .into_iter()
            .filter(|e| e.event == Event::EnvelopePurged as i32)
            .map(|e| (e.message_id, e.party, e.case_ids, e.detail))
            .collect();
        assert_eq!(
            purged,
            [(
                message_id.clone(),
                "GT".to_owned(),
                vec!["MX-2026-0001".to_owned()],
                "retention: rejected by the peer and not requeued, and storage.retention_withdrawn_days passed since the rejection".to_owned()
            )]
        );
        drop(store);
        assert!(!engine::database_contains(data, storage, name).await);

        // The operator sees why it can no longer be sent, and the alert that
        // asked for a requeue is resolved.
        let _mx = region.restart_with(mx_config.clone()).await;
        let mut ops = operator(&region, "MX").await;
        let history = ops.show(&message_id).await.unwrap();
        assert_eq!(state(&history), MessageState::Rejected);
        assert!(!history.requeueable);
        assert!(history.not_requeueable.contains("retention"), "{history:?}");
        let seen = events(&history);
        assert_eq!(&seen[seen.len() - 2..], ["rejected", "envelope_purged"], "{seen:?}");
        let answer = ops.requeue(vec![message_id.clone()]).await.unwrap();
        assert_eq!(answer.outcomes[0].refusal(), RequeueRefusal::EnvelopePurged);
        eventually("the rejection's alert to be resolved", || async {
            receiver.of("message_rejected", "resolved").pop()
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_refused_by_the_peers_case_rules_cannot_be_requeued() {
    let region = Region::new(&["MX", "GT"]);
    let mx = region.start_with(relaxed_for_guatemala(&region)).await;
    let gt = region.start("GT").await;
    let mut inm = region.agency("MX", "destination-authority").await;
    let sent = inm
        .submit(determined_by_migration("MX-2026-0002"))
        .await
        .unwrap();
    let mut ops = operator(&region, "MX").await;
    let refused = eventually("Guatemala to refuse the notice", || async {
        let history = ops.clone().show(&sent.message_id).await.unwrap();
        (state(&history) == MessageState::Refused).then_some(history)
    })
    .await;
    assert!(!refused.requeueable);
    assert!(
        refused.not_requeueable.contains("send a new message"),
        "{refused:?}"
    );
    assert_eq!(events(&refused).last(), Some(&"refused_by_peer"));

    let answer = ops.requeue(vec![sent.message_id.clone()]).await.unwrap();
    let outcome = &answer.outcomes[0];
    assert!(!outcome.requeued);
    assert_eq!(outcome.refusal(), RequeueRefusal::RefusedByCaseRules);
    let (ok, printed) = ops_command(&region, "MX", &["requeue", &sent.message_id]).await;
    assert!(!ok, "{printed}");
    assert!(printed.contains("send a new message instead"), "{printed}");
    assert_eq!(
        mx.outbox_depth(country("GT")),
        0,
        "nothing was queued again"
    );
    let refused_log = ops
        .messages(retorno_proto::v1::ListMessagesRequest {
            state: MessageState::Refused as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(refused_log.messages.len(), 1);
    mx.shutdown().await;
    gt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_an_operator_uses_the_operator_api_and_it_reads_no_payload() {
    let region = Region::new(&["MX", "GT"]);
    let mx = region.start("MX").await;
    let gt = region.start("GT").await;
    let mut inm = region.agency("MX", "destination-authority").await;
    let sent = inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
    let mut sbs = region.agency("GT", "child-protection").await;
    assert_eq!(inbox_with(&mut sbs, 0, 1).await.len(), 1);

    // Any other role of the country is refused by the Operator API.
    for role in ["destination-authority", "child-protection", "consulate"] {
        let mut other = Operations::connect(&region.profile("MX", role))
            .await
            .unwrap();
        match other.status().await {
            Err(ClientError::Status(status)) => {
                assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
                assert!(
                    status.message().contains("is not an operator of MX"),
                    "{status:?}"
                );
            }
            other => panic!("{role} used the Operator API: {other:?}"),
        }
    }

    // Guatemala's operator, through the Agency API: no inbox item, a case
    // without its child, a timeline without what its messages say.
    let mut gt_ops = Client::connect(&region.profile("GT", "operator"))
        .await
        .unwrap();
    assert!(inbox_now(&mut gt_ops, 0).await.is_empty());
    let case = gt_ops.case("MX-2026-0001").await.unwrap();
    assert_eq!(case.state(), CaseState::Notified);
    assert!(case.family_group_id.is_empty() && case.companionship == 0);
    assert!(case.timeline.iter().all(|line| line.facts.is_none()));
    assert_eq!(case.timeline[0].summary, "advance notice");
    let listed = gt_ops.cases(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].family_group_id.is_empty() && listed[0].companionship == 0);
    let refused = gt_ops
        .submit(notice_to("MX", "GT-2026-0001"))
        .await
        .unwrap_err();
    assert!(matches!(refused, ClientError::Status(s) if s.code() == tonic::Code::PermissionDenied));

    // Mexico's operator: the message log, whole, names no one.
    let mut ops = operator(&region, "MX").await;
    let mut mx_ops = Client::connect(&region.profile("MX", "operator"))
        .await
        .unwrap();
    let status = mx_ops.status(&sent.message_id).await.unwrap();
    assert_eq!(status.case_id, "MX-2026-0001");
    let log = ops.messages(Default::default()).await.unwrap();
    assert_eq!(log.messages[0].message_id, sent.message_id);
    let history = ops.show(&sent.message_id).await.unwrap();
    let everything = format!(
        "{}{}{}{}",
        serde_json::to_string(&log).unwrap(),
        serde_json::to_string(&history).unwrap(),
        serde_json::to_string(&gt_ops.case("MX-2026-0001").await.unwrap()).unwrap(),
        serde_json::to_string(&status).unwrap()
    );
    for personal in [
        "Ana",
        "Lucía",
        "Pérez",
        "Xol",
        "unaccompanied",
        "UNACCOMPANIED",
    ] {
        assert!(!everything.contains(personal), "{personal} in {everything}");
    }
    mx.shutdown().await;
    gt.shutdown().await;
}

retorno_tests::on_both_engines! {
    #[tokio::test(flavor = "multi_thread")]
    async fn the_receiving_operator_finds_each_message_and_which_agencies_took_it() {
        let region = Region::new(&["MX", "GT"]);
        // Guatemala stores the second notice and refuses it.
        let mx = region.start_with(relaxed_for_guatemala(&region)).await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let given = inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
        let refused = inm
            .submit(determined_by_migration("MX-2026-0002"))
            .await
            .unwrap();
        eventually("Mexico's outbox to be delivered", || async {
            (mx.outbox_depth(country("GT")) == 0).then_some(())
        })
        .await;

        // Guatemala's operator finds both by id, with where they stand.
        let mut ops = operator(&region, "GT").await;
        let history = ops.show(&given.message_id).await.unwrap();
        let summary = history.message.clone().unwrap();
        assert_eq!(
            (
                summary.direction(),
                summary.state(),
                summary.peer.as_str(),
                summary.kind.as_str(),
                summary.case_ids.as_slice()
            ),
            (
                MessageDirection::Received,
                MessageState::Received,
                "MX",
                "advance_notice",
                ["MX-2026-0001".to_owned()].as_slice()
            )
        );
        assert!(summary.size_bytes > 0 && summary.accepted_at.is_some());
        let cursor = summary.inbox_cursor;
        assert!(cursor > 0);
        assert_eq!(events(&history), ["received"]);
        assert!(history.acknowledged_past.is_empty(), "{history:?}");
        assert!(!history.requeueable);
        assert!(
            history.not_requeueable.contains("received it from a peer"),
            "{history:?}"
        );
        let refused_history = ops.show(&refused.message_id).await.unwrap();
        assert_eq!(state(&refused_history), MessageState::Refused);
        assert_eq!(
            events(&refused_history),
            ["received", "refused_by_case_rules"]
        );
        assert!(
            refused_history
                .message
                .as_ref()
                .unwrap()
                .error
                .contains("best_interest"),
            "{refused_history:?}"
        );

        // The received log: newest first, by page, by state and by peer.
        let received = |state: MessageState, peer: &str, page_size: u32, page_token: String| {
            retorno_proto::v1::ListMessagesRequest {
                direction: MessageDirection::Received as i32,
                state: state as i32,
                peer: peer.to_owned(),
                page_size,
                page_token,
                ..Default::default()
            }
        };
        let ids = |answer: &retorno_proto::v1::ListMessagesResponse| -> Vec<String> {
            answer
                .messages
                .iter()
                .map(|m| m.message_id.clone())
                .collect()
        };
        let all = ops
            .messages(received(MessageState::Unspecified, "", 0, String::new()))
            .await
            .unwrap();
        assert_eq!(
            ids(&all),
            [refused.message_id.clone(), given.message_id.clone()]
        );
        let first = ops
            .messages(received(MessageState::Unspecified, "", 1, String::new()))
            .await
            .unwrap();
        assert_eq!(ids(&first), std::slice::from_ref(&refused.message_id));
        let second = ops
            .messages(received(
                MessageState::Unspecified,
                "",
                1,
                first.next_page_token.clone(),
            ))
            .await
            .unwrap();
        assert_eq!(ids(&second), std::slice::from_ref(&given.message_id));
        assert!(second.next_page_token.is_empty());
        let only_refused = ops
            .messages(received(MessageState::Refused, "", 0, String::new()))
            .await
            .unwrap();
        assert_eq!(ids(&only_refused), std::slice::from_ref(&refused.message_id));
        let from_gt = ops
            .messages(received(MessageState::Unspecified, "GT", 0, String::new()))
            .await
            .unwrap();
        assert!(from_gt.messages.is_empty());
        let sent = ops.messages(Default::default()).await.unwrap();
        assert!(sent.messages.is_empty(), "Guatemala sent nothing: {sent:?}");

        // A state that the direction cannot have, and a page token that is not
        // a cursor, are refused naming the field.
        for (request, says) in [
            (
                retorno_proto::v1::ListMessagesRequest {
                    state: MessageState::Received as i32,
                    ..Default::default()
                },
                "direction RECEIVED",
            ),
            (
                received(MessageState::Queued, "", 0, String::new()),
                "state: MESSAGE_STATE_QUEUED is a state of sent messages",
            ),
            (
                received(MessageState::Unspecified, "", 0, "abc".into()),
                "page_token: \"abc\" is not an inbox cursor",
            ),
        ] {
            match ops.messages(request).await {
                Err(ClientError::Status(status)) => {
                    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
                    assert!(status.message().contains(says), "{status:?}");
                }
                other => panic!("not refused: {other:?}"),
            }
        }

        // Once Guatemala's child protection has taken its inbox and
        // acknowledged it, the operator sees who has.
        let mut sbs = region.agency("GT", "child-protection").await;
        let items = inbox_with(&mut sbs, 0, 1).await;
        sbs.acknowledge(items.last().unwrap().cursor).await.unwrap();
        let history = ops.show(&given.message_id).await.unwrap();
        assert_eq!(
            history.acknowledged_past,
            ["urn:retorno:agency:GT:child-protection:SBS"]
        );

        // An agency is named only for what its inbox shows: Guatemala's
        // consulate acknowledges past a case summary it never sees (summaries
        // go to child protection) and past the notice it does see.
        let summary = retorno_proto::v1::CaseSummary {
            best_interest_plan: Some(retorno_proto::v1::BestInterestPlan {
                readers: Some(retorno_proto::v1::Readers {
                    roles: vec![retorno_proto::v1::Role::ChildProtection as i32],
                }),
                plan: "Return to grandmother".into(),
                receiving_caregiver: "grandmother".into(),
            }),
            ..Default::default()
        };
        let shared = retorno_tests::submit_case_message(
            &inm,
            "MX-2026-0001",
            Payload::CaseSummary(summary),
        )
        .await
        .unwrap();
        let with_summary = inbox_with(&mut sbs, 0, 2).await;
        let head = with_summary.last().unwrap().cursor;
        let mut consulate = region.agency("GT", "consulate").await;
        consulate.acknowledge(head).await.unwrap();
        sbs.acknowledge(head).await.unwrap();
        let summary_history = ops.show(&shared.message_id).await.unwrap();
        assert_eq!(
            summary_history.acknowledged_past,
            ["urn:retorno:agency:GT:child-protection:SBS"],
            "the consulate never saw the summary"
        );
        let notice_history = ops.show(&given.message_id).await.unwrap();
        assert_eq!(
            notice_history.acknowledged_past,
            [
                "urn:retorno:agency:GT:child-protection:SBS",
                "urn:retorno:agency:GT:consulate:MINEX"
            ]
        );

        // The program says the same, and refuses the same mistake.
        let (ok, printed) = ops_command(&region, "GT", &["messages", "--received"]).await;
        assert!(ok, "{printed}");
        assert!(
            printed.contains(&format!("{}  ", given.message_id)),
            "{printed}"
        );
        assert!(
            printed.contains("from MX") && printed.contains(&format!("inbox cursor {cursor}")),
            "{printed}"
        );
        let (ok, printed) = ops_command(&region, "GT", &["show", &given.message_id]).await;
        assert!(ok, "{printed}");
        assert!(
            printed.contains("acknowledged past it by: urn:retorno:agency:GT:child-protection:SBS"),
            "{printed}"
        );
        let (ok, printed) = ops_command(&region, "GT", &["messages", "--state", "received"]).await;
        assert!(
            !ok && printed.contains("ops messages --received"),
            "{printed}"
        );
        // In Spanish, as LANG says.
        let (ok, printed) =
            ops_command_in(&region, "GT", "es_GT.UTF-8", &["show", &given.message_id]).await;
        assert!(ok, "{printed}");
        for said in [
            "de MX".to_owned(),
            "recibido".to_owned(),
            format!("cursor de la bandeja de entrada {cursor}"),
            "lectura confirmada hasta este mensaje por: urn:retorno:agency:GT:child-protection:SBS"
                .to_owned(),
            "no se puede reenviar".to_owned(),
        ] {
            assert!(printed.contains(&said), "{said:?} not in {printed}");
        }

        // Nothing the operator read names the child.
        let everything = format!(
            "{}{}{}",
            serde_json::to_string(&all).unwrap(),
            serde_json::to_string(&history).unwrap(),
            serde_json::to_string(&refused_history).unwrap()
        );
        for personal in ["Ana", "Lucía", "Pérez", "Xol"] {
            assert!(!everything.contains(personal), "{personal} in {everything}");
        }
        mx.shutdown().await;
        gt.shutdown().await;

        // Each read is in Guatemala's audit log, naming the operator.
        let store = open_store(&region.config("GT")).await;
        let reads: Vec<(String, String)> = audit::entries(&store)
            .unwrap()
            .into_iter()
            .filter(|e| e.event == Event::OperatorRead as i32)
            .map(|e| (e.party, e.detail))
            .collect();
        assert!(
            reads.contains(&(
                "urn:retorno:agency:GT:operator:OPS".to_owned(),
                "received message log".to_owned()
            )),
            "{reads:?}"
        );
    }
}
