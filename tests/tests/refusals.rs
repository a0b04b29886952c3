//! What a gateway refuses, and that a refusal changes nothing: certificates
//! from outside the region, a gateway speaking for another country, an agency
//! calling another country's gateway, and bad, oversized or misaddressed
//! messages.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use retorno_client::{Client, Profile};
use retorno_proto::v1::{RejectionCode, delivery_result, submit_request::Payload};
use retorno_tests::{
    Region, country, deliver, deliver_batches, envelope, inbox_now, notice_to, peer_client,
    seal_batches, sealer,
};
use tonic::Code;

/// A certificate chain from a PKI that no gateway of the region trusts.
fn rogue_profile(region: &Region, rogue: &Region, as_country: &str, role: &str) -> Profile {
    let mut profile = region.profile(as_country, role);
    profile.cert = rogue.pki().agency_cert(as_country, role);
    profile.key = rogue.pki().agency_key(as_country, role);
    profile
}

async fn refused_call(profile: &Profile) -> String {
    // With TLS 1.3 a refused client certificate shows on the first call, not at connect.
    match Client::connect(profile).await {
        Err(error) => error.to_string(),
        Ok(mut client) => client
            .submit(notice_to("GT", "MX-case-rogue"))
            .await
            .expect_err("a call with an untrusted certificate must fail")
            .to_string(),
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn certificates_from_an_unknown_ca_are_refused_and_store_nothing() {
        let region = Region::new(&["MX", "GT"]);
        let rogue = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;

        // An agency certificate that looks like INM's but comes from another CA.
        refused_call(&rogue_profile(
            &region,
            &rogue,
            "MX",
            "destination-authority",
        ))
        .await;
        assert_eq!(mx.outbox_depth(country("GT")), 0);

        // A gateway certificate for MX from another root, on GT's Peer API.
        let own = retorno_client::tls::KeyedChain::load(
            &rogue.pki().gateway_cert("MX"),
            &rogue.pki().gateway_key("MX"),
        )
        .unwrap();
        let roots = retorno_client::tls::load_roots(&region.pki().root_ca()).unwrap();
        let config = retorno_client::tls::client_config(&own, roots).unwrap();
        let delivered = async {
            let channel = retorno_client::tls::connect(
                &region.peer_addr("GT").to_string(),
                "gateway.gt.retorno.test",
                config,
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
            let mut client = retorno_proto::v1::peer_exchange_client::PeerExchangeClient::new(channel);
            deliver(
                &mut client,
                &sealer(&rogue, "MX"),
                vec![vec![envelope("MX", "GT", "MX-case-rogue")]],
            )
            .await
            .map_err(|e| e.to_string())
        }
        .await;
        assert!(
            delivered.is_err(),
            "GT accepted a gateway outside the region: {delivered:?}"
        );

        let mut sbs = region.agency("GT", "child-protection").await;
        assert!(inbox_now(&mut sbs, 0).await.is_empty(), "nothing stored");
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn honduras_cannot_deliver_a_message_that_claims_to_come_from_mexico() {
        let region = Region::new(&["MX", "GT", "HN"]);
        let gt = region.start("GT").await;
        let mut hn = peer_client(&region, "HN", "GT").await;

        let answer = deliver(
            &mut hn,
            &sealer(&region, "HN"),
            vec![vec![envelope("MX", "GT", "MX-case-forged")]],
        )
        .await
        .unwrap();
        match &answer[0].results[0].result {
            Some(delivery_result::Result::Rejection(rejection)) => {
                assert_eq!(rejection.code(), RejectionCode::ForgedSender);
                assert!(rejection.reason.contains("HN"), "{}", rejection.reason);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        // And an envelope for another country is refused too.
        let answer = deliver(
            &mut hn,
            &sealer(&region, "HN"),
            vec![vec![envelope("HN", "MX", "MX-case-lost")]],
        )
        .await
        .unwrap();
        match &answer[0].results[0].result {
            Some(delivery_result::Result::Rejection(rejection)) => {
                assert_eq!(rejection.code(), RejectionCode::WrongRecipient)
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        let mut sbs = region.agency("GT", "child-protection").await;
        assert!(inbox_now(&mut sbs, 0).await.is_empty(), "nothing stored");
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn guatemalas_agency_cannot_use_mexicos_agency_api() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let mut profile = region.profile("GT", "child-protection");
        profile.gateway = region.profile("MX", "destination-authority").gateway;
        profile.tls_name = Some("gateway.mx.retorno.test".into());
        refused_call(&profile).await;
        assert_eq!(mx.outbox_depth(country("GT")), 0);
        mx.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn bad_messages_get_invalid_argument_naming_the_problem_and_store_nothing() {
        let region = Region::new(&["MX", "GT"]);
        let mx = region.start("MX").await;
        let gt = region.start("GT").await;
        let mut inm = region.agency("MX", "destination-authority").await;

        let refusal = |result: Result<_, retorno_client::ClientError>| match result {
            Err(retorno_client::ClientError::Status(status)) => status,
            other => panic!("expected a refusal, got {other:?}"),
        };

        let mut no_child = notice_to("GT", "MX-case-1");
        if let Some(Payload::AdvanceNotice(notice)) = &mut no_child.payload {
            notice.child = None;
        }
        let status = refusal(inm.submit(no_child).await);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("advance_notice.child"),
            "{}",
            status.message()
        );

        let mut no_determination = notice_to("GT", "MX-case-2");
        if let Some(Payload::AdvanceNotice(notice)) = &mut no_determination.payload {
            notice.best_interest = None;
        }
        let status = refusal(inm.submit(no_determination).await);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("advance_notice.best_interest"),
            "{}",
            status.message()
        );

        let mut oversized = notice_to("GT", "MX-case-3");
        if let Some(Payload::AdvanceNotice(notice)) = &mut oversized.payload {
            notice.child.as_mut().unwrap().family_names = "x".repeat(1024 * 1024 + 1);
        }
        let status = refusal(inm.submit(oversized).await);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("limit of 1048576 bytes"),
            "{}",
            status.message()
        );

        let status = refusal(inm.submit(notice_to("ZZ", "MX-case-4")).await);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status
                .message()
                .starts_with("recipient_country: ZZ is not a peer"),
            "{}",
            status.message()
        );

        let status = refusal(inm.submit(notice_to("GT", "case with spaces")).await);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().starts_with("case_id"),
            "{}",
            status.message()
        );

        let mut consulate = region.agency("MX", "consulate").await;
        let status = refusal(consulate.submit(notice_to("GT", "MX-case-5")).await);
        assert_eq!(status.code(), Code::PermissionDenied);

        assert_eq!(mx.outbox_depth(country("GT")), 0, "nothing queued");
        let mut sbs = region.agency("GT", "child-protection").await;
        assert!(inbox_now(&mut sbs, 0).await.is_empty(), "nothing delivered");
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_retried_submit_with_the_same_id_is_stored_once() {
        let region = Region::new(&["MX", "GT"]);
        region.take_offline("GT");
        let mx = region.start("MX").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut request = notice_to("GT", "MX-case-retry");
        request.message_id = uuid::Uuid::now_v7().to_string();
        let first = inm.submit(request.clone()).await.unwrap();
        let again = inm.submit(request.clone()).await.unwrap();
        assert!(!first.duplicate && again.duplicate);
        assert_eq!(first.message_id, again.message_id);
        assert_eq!(mx.outbox_depth(country("GT")), 1);

        request.case_id = "MX-case-other".into();
        let error = inm.submit(request).await.unwrap_err().to_string();
        assert!(error.contains("AlreadyExists"), "{error}");
        assert_eq!(mx.outbox_depth(country("GT")), 1);
        mx.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn an_agency_over_its_submit_rate_is_slowed_down_and_nothing_extra_is_stored() {
        let region = Region::new(&["MX", "GT"]);
        region.take_offline("GT");
        let mut config = region.config("MX");
        config.limits.agency_submits_per_second = 1;
        config.limits.agency_submit_burst = 2;
        let mx = region.start_with(config).await;
        let mut inm = region.agency("MX", "destination-authority").await;
        inm.submit(notice_to("GT", "MX-rate-1")).await.unwrap();
        inm.submit(notice_to("GT", "MX-rate-2")).await.unwrap();
        let error = inm
            .submit(notice_to("GT", "MX-rate-3"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("ResourceExhausted") && error.contains("retry in"),
            "{error}"
        );
        // Another agency of the same country has its own allowance.
        let mut consulate_cp = region.agency("MX", "child-protection").await;
        let other = consulate_cp
            .submit(notice_to("GT", "MX-rate-4"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            other.contains("PermissionDenied"),
            "limited by role, not by INM's rate: {other}"
        );
        assert_eq!(mx.outbox_depth(country("GT")), 2);
        mx.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    /// Issue 9, point 7: a peer at its limit that opens one more stream is not
    /// refused (its new connection is the best evidence an old one is dead): the
    /// oldest idle stream is ended with `ABORTED` naming the limit, and the
    /// others deliver. (A stream busy with a batch is never replaced; see the
    /// unit tests of `limits`.)
    #[tokio::test]
    async fn a_peers_stream_over_the_limit_replaces_its_oldest_idle_one() {
        let region = Region::new(&["MX", "GT"]);
        let mut config = region.config("GT");
        config.limits.streams_per_peer = 2;
        let gt = region.start_with(config).await;
        let mx = sealer(&region, "MX");
        let mut streams = Vec::new();
        for _ in 0..3 {
            let mut client = peer_client(&region, "MX", "GT").await;
            let (sender, outgoing) = tokio::sync::mpsc::channel::<retorno_proto::v1::DeliveryBatch>(1);
            let answers = client
                .deliver(tokio_stream::wrappers::ReceiverStream::new(outgoing))
                .await
                .unwrap()
                .into_inner();
            streams.push((client, sender, answers));
        }
        let (_, _, first) = &mut streams[0];
        let ended = first.message().await.unwrap_err();
        assert_eq!(ended.code(), Code::Aborted, "{ended:?}");
        assert!(
            ended.message().contains("limits.streams_per_peer"),
            "{}",
            ended.message()
        );
        for (case, (_, sender, answers)) in streams.iter_mut().skip(1).enumerate() {
            let batch = seal_batches(
                &mx,
                vec![vec![envelope("MX", "GT", &format!("MX-2026-090{case}"))]],
            );
            sender
                .send(batch.into_iter().next().unwrap())
                .await
                .unwrap();
            let answer = answers.message().await.unwrap().unwrap();
            assert!(answer.results[0].result.is_some());
        }
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn envelopes_with_a_bad_missing_or_foreign_seal_are_refused_and_store_nothing() {
        use prost::Message as _;
        let region = Region::new(&["MX", "GT", "HN"]);
        let gt = region.start("GT").await;
        let mut mx = peer_client(&region, "MX", "GT").await;
        let mx_seal = sealer(&region, "MX");
        let reason =
            |results: &retorno_proto::v1::DeliveryResults, i: usize| match &results.results[i].result {
                Some(delivery_result::Result::Rejection(rejection)) => {
                    (rejection.code(), rejection.reason.clone())
                }
                other => panic!("expected a rejection, got {other:?}"),
            };

        // A body altered after sealing; its sibling in the same batch is intact.
        let mut batches = seal_batches(
            &mx_seal,
            vec![vec![
                envelope("MX", "GT", "MX-2026-0701"),
                envelope("MX", "GT", "MX-2026-0702"),
            ]],
        );
        let mut body =
            retorno_proto::v1::EnvelopeBody::decode(batches[0].envelopes[0].body.as_slice()).unwrap();
        body.case_id = "MX-2026-0799".into();
        batches[0].envelopes[0].body = body.encode_to_vec();
        let answer = deliver_batches(&mut mx, batches).await.unwrap();
        let (code, why) = reason(&answer[0], 0);
        assert_eq!(code, RejectionCode::Invalid);
        assert!(why.starts_with("seal:"), "{why}");
        assert!(matches!(
            answer[0].results[1].result,
            Some(delivery_result::Result::Receipt(_))
        ));

        // No seal on the envelope; no seal certificate on the batch.
        let mut unsealed = seal_batches(&mx_seal, vec![vec![envelope("MX", "GT", "MX-2026-0703")]]);
        unsealed[0].envelopes[0].seal = None;
        let answer = deliver_batches(&mut mx, unsealed).await.unwrap();
        assert!(
            reason(&answer[0], 0).1.contains("missing: the seal"),
            "{:?}",
            reason(&answer[0], 0)
        );
        let mut anonymous = seal_batches(&mx_seal, vec![vec![envelope("MX", "GT", "MX-2026-0704")]]);
        anonymous[0].signer_certificate.clear();
        let answer = deliver_batches(&mut mx, anonymous).await.unwrap();
        assert!(
            reason(&answer[0], 0).1.contains("no seal certificate"),
            "{:?}",
            reason(&answer[0], 0)
        );

        // Sealed with Mexico's key but delivered by Honduras.
        let mut hn = peer_client(&region, "HN", "GT").await;
        let stolen = seal_batches(&mx_seal, vec![vec![envelope("HN", "GT", "HN-2026-0705")]]);
        let answer = deliver_batches(&mut hn, stolen).await.unwrap();
        let (code, why) = reason(&answer[0], 0);
        assert_eq!(code, RejectionCode::ForgedSender);
        assert!(why.contains("sealed by urn:retorno:gateway:MX"), "{why}");

        let mut sbs = region.agency("GT", "child-protection").await;
        let stored = inbox_now(&mut sbs, 0).await;
        assert_eq!(stored.len(), 1, "only the intact sibling was stored");
        assert_eq!(stored[0].body.as_ref().unwrap().case_id, "MX-2026-0702");
        gt.shutdown().await;
    }
}
