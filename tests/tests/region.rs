//! The story of issue 2: Mexico's migration institute announces the return of
//! a Guatemalan child; Guatemala's child-protection agency receives the notice
//! exactly once, in order, whatever happens to the network or to Guatemala's
//! gateway in between.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use prost::Message as _;
use retorno_proto::v1::{self, DeliveryState, EnvelopeBody, delivery_result};
use retorno_tests::{
    Region, country, deliver, envelope, eventually, inbox_now, inbox_with, notice, notice_to,
    peer_client, sealer,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_notice_crosses_from_mexico_to_guatemala_with_every_field_intact() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut sbs = region.agency("GT", "child-protection").await;

        let accepted = inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
        assert!(!accepted.duplicate);

        let items = inbox_with(&mut sbs, 0, 1).await;
        let body = items[0].body.clone().unwrap();
        assert_eq!(body.message_id, accepted.message_id);
        assert_eq!(body.case_id, "MX-2026-0001");
        assert_eq!(body.recipient_country, "GT");
        let sender = body.sender.clone().unwrap();
        assert_eq!(
            (
                sender.country.as_str(),
                sender.agency.as_str(),
                sender.role()
            ),
            ("MX", "INM", v1::Role::DestinationAuthority),
            "the sender comes from INM's certificate"
        );
        assert_eq!(
            body.payload,
            Some(v1::envelope_body::Payload::AdvanceNotice(notice()))
        );
        // The decoded body is a convenience; the bytes are what was sealed.
        let sealed = EnvelopeBody::decode(items[0].envelope.as_ref().unwrap().body.as_slice()).unwrap();
        assert_eq!(sealed, body);

        let status = eventually("MX to record GT's receipt", || {
            let mut inm = inm.clone();
            let id = accepted.message_id.clone();
            async move {
                let status = inm.status(&id).await.unwrap();
                (status.state() == DeliveryState::Delivered).then_some(status)
            }
        })
        .await;
        let receipt = status.receipt_body.unwrap();
        assert_eq!(receipt.receiving_country, "GT");
        assert_eq!(receipt.message_id, accepted.message_id);
        let delivered_body = &items[0].envelope.as_ref().unwrap().body;
        assert_eq!(
            hex(&receipt.body_sha256),
            hex(&retorno_gateway::envelope::digest(delivered_body))
        );
        assert_eq!(mx.outbox_depth(country("GT")), 0);

        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_hundred_notices_wait_while_guatemala_is_down_then_arrive_once_each_in_order() {
        let region = Region::new(&["MX", "GT"]);
        region.take_offline("GT");
        let mx = region.start("MX").await;
        let mut inm = region.agency("MX", "destination-authority").await;

        let mut sent = Vec::new();
        for i in 0..100 {
            let answer = inm
                .submit(notice_to("GT", &format!("MX-2026-{i:04}")))
                .await
                .unwrap();
            sent.push(answer.message_id);
        }
        assert_eq!(
            mx.outbox_depth(country("GT")),
            100,
            "all wait in the outbox"
        );
        let status = inm.status(&sent[0]).await.unwrap();
        assert_eq!(status.state(), DeliveryState::Queued);

        let gt = region.start("GT").await;
        let mut sbs = region.agency("GT", "child-protection").await;
        let received: Vec<String> = inbox_with(&mut sbs, 0, 100)
            .await
            .into_iter()
            .map(|item| item.body.unwrap().message_id)
            .collect();
        assert_eq!(received, sent, "every notice, in the order accepted");

        eventually("MX's outbox to drain", || async {
            (mx.outbox_depth(country("GT")) == 0).then_some(())
        })
        .await;
        assert_eq!(inbox_now(&mut sbs, 0).await.len(), 100, "and none twice");

        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn an_agency_resumes_after_its_last_acknowledgement() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        for i in 0..3 {
            inm.submit(notice_to("GT", &format!("MX-case-{i}")))
                .await
                .unwrap();
        }
        let mut sbs = region.agency("GT", "child-protection").await;
        let first = inbox_with(&mut sbs, 0, 3).await;
        assert_eq!(
            sbs.acknowledge(first[1].cursor).await.unwrap(),
            first[1].cursor
        );

        // A new connection with no cursor resumes after the acknowledgement.
        let mut again = region.agency("GT", "child-protection").await;
        let mut stream = again.subscribe(None, false).await.unwrap();
        let next = stream.message().await.unwrap().unwrap();
        assert_eq!(next.cursor, first[2].cursor);
        assert!(stream.message().await.unwrap().is_none());

        // Acknowledging beyond the inbox is refused, and nothing moves backwards.
        let error = sbs
            .acknowledge(first[2].cursor + 10)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("cursor"), "{error}");
        assert_eq!(
            sbs.acknowledge(first[0].cursor).await.unwrap(),
            first[1].cursor
        );

        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn the_same_envelope_delivered_twice_is_stored_once_with_the_same_receipt() {
        let region = Region::new(&["MX", "GT"]);
        let gt = region.start("GT").await;
        let sealed = envelope("MX", "GT", "MX-2026-0007");

        // Twice in one batch, then again on a new connection (a receipt lost in flight).
        let mut mx = peer_client(&region, "MX", "GT").await;
        let first = deliver(
            &mut mx,
            &sealer(&region, "MX"),
            vec![vec![sealed.clone(), sealed.clone()]],
        )
        .await
        .unwrap();
        let mut mx_again = peer_client(&region, "MX", "GT").await;
        let second = deliver(
            &mut mx_again,
            &sealer(&region, "MX"),
            vec![vec![sealed.clone()]],
        )
        .await
        .unwrap();

        let receipts: Vec<_> = first[0]
            .results
            .iter()
            .chain(&second[0].results)
            .map(|result| match &result.result {
                Some(delivery_result::Result::Receipt(receipt)) => receipt.clone(),
                other => panic!("expected a receipt, got {other:?}"),
            })
            .collect();
        assert_eq!(receipts.len(), 3);
        assert!(
            receipts.iter().all(|r| *r == receipts[0]),
            "the original receipt every time"
        );

        let mut sbs = region.agency("GT", "child-protection").await;
        assert_eq!(inbox_now(&mut sbs, 0).await.len(), 1, "stored once");

        // The same id with another body is a forgery, not a duplicate.
        let mut forged_body = EnvelopeBody::decode(sealed.body.as_slice()).unwrap();
        forged_body.case_id = "MX-2026-9999".into();
        let forged = v1::Envelope {
            body: forged_body.encode_to_vec(),
            seal: None,
        };
        let answer = deliver(&mut mx_again, &sealer(&region, "MX"), vec![vec![forged]])
            .await
            .unwrap();
        match &answer[0].results[0].result {
            Some(delivery_result::Result::Rejection(rejection)) => {
                assert!(
                    rejection.reason.contains("different body"),
                    "{}",
                    rejection.reason
                )
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert_eq!(inbox_now(&mut sbs, 0).await.len(), 1);

        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    /// Two gateways pointed at one database by mistake would share one
    /// lease, one audit chain and one outbox: the second country's gateway
    /// is refused at start, naming both countries, and the first one's
    /// database is left as it was.
    #[tokio::test]
    async fn a_gateway_pointed_at_another_countrys_database_is_refused_and_changes_nothing() {
        use retorno_gateway::{
            Gateway, config::Listen, gateway::StartError, retention::Mode, storage::StoreError,
        };
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let accepted = inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
        drop(inm);
        mx.shutdown().await;

        let mexico = region.config("MX");
        let mut wrong = region.config("GT");
        wrong.data_dir = mexico.data_dir.clone();
        wrong.storage = mexico.storage.clone();
        wrong.listen = Listen {
            peer: retorno_tests::free_address(),
            agency: retorno_tests::free_address(),
        };
        wrong.metrics.listen = retorno_tests::free_address();
        // Until the stopped gateway has let go of its database, the refusal is another.
        let refused = eventually("GT's gateway refused on MX's database", || {
            let wrong = wrong.clone();
            async move {
                match Gateway::start(wrong).await {
                    Ok(_) => panic!("GT's gateway started on MX's database"),
                    Err(refused @ StartError::Store { source: StoreError::OtherCountry { .. }, .. }) => {
                        Some(refused.to_string())
                    }
                    Err(StartError::Store { .. }) => None,
                    Err(other) => panic!("{other}"),
                }
            }
        })
        .await;
        assert!(
            refused.contains("belongs to the gateway of MX, not of GT: nothing was written"),
            "{refused}"
        );
        // The commands on a stopped gateway refuse it the same way: a purge
        // with GT's retention rules, an audit verification against GT's
        // seals, and a statistics report signed as GT. Each waits until the
        // store refused before it has let go of sled's lock.
        let year = retorno_gateway::statistics::Period::new(
            "2026-01".parse().unwrap(),
            "2026-12".parse().unwrap(),
        )
        .unwrap();
        let out = region.dir().join("report");
        for command in ["purge", "audit verify", "stats report"] {
            let refusal = eventually(&format!("{command} refused on MX's database"), || async {
                let refusal = match command {
                    "purge" => retorno_gateway::retention::purge_once(&wrong, Mode::Purge)
                        .await
                        .unwrap_err()
                        .to_string(),
                    "audit verify" => retorno_gateway::audit::verify_stopped(&wrong)
                        .await
                        .unwrap_err()
                        .to_string(),
                    _ => retorno_gateway::statistics::write_report(&wrong, year, &out)
                        .await
                        .unwrap_err()
                        .to_string(),
                };
                (!refusal.contains("could not acquire lock")).then_some(refusal)
            })
            .await;
            assert!(
                refusal.contains("belongs to the gateway of MX, not of GT"),
                "{command}: {refusal}"
            );
        }

        // Mexico's own gateway opens it again at once (on PostgreSQL the
        // refused node and commands gave the lease back), its notice still there.
        let mx = region.restart_with(region.config("MX")).await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let status = inm.status(&accepted.message_id).await.unwrap();
        assert_eq!(status.message_id, accepted.message_id);
        mx.shutdown().await;
    }
}
