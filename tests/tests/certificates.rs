//! Certificates change while gateways run (issue 4, "Trust and evidence"):
//! an agency's or a gateway's certificate is revoked, one has expired, a
//! gateway's certificate is replaced on disk while notices flow, and a
//! replacement meant for another country is refused. Nothing restarts;
//! nothing accepted is lost or doubled.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;

use retorno_certs_dev::{Holder, Lifetime, renew, revoke};
use retorno_client::{Client, Profile};
use retorno_gateway::{Config, Gateway};
use retorno_tests::{
    Proxy, Region, certificate_der, country, eventually, inbox_now, inbox_with, notice_to,
    presented_certificate,
};

/// Re-read the TLS files every 50 ms, so that tests of reloads finish fast,
/// and honour `crls`.
fn reloading(mut config: Config, crls: Vec<PathBuf>) -> Config {
    config.tls.reload_interval_ms = 50;
    config.tls.crls = crls;
    config
}

fn agency(code: &str, role: &str) -> Holder {
    Holder::Agency {
        country: code.into(),
        role: role.into(),
    }
}

fn gateway(code: &str) -> Holder {
    Holder::Gateway {
        country: code.into(),
    }
}

/// A call that must fail because the gateway refuses the client certificate.
/// With TLS 1.3 the refusal shows on the first call, not at connect.
async fn refused_call(profile: &Profile) -> String {
    match Client::connect(profile).await {
        Err(error) => error.to_string(),
        Ok(mut client) => client
            .submit(notice_to("GT", "case-refused"))
            .await
            .expect_err("a call with a refused certificate must fail")
            .to_string(),
    }
}

/// Waits until `gateway` has installed `count` reloads of its TLS material.
async fn installed(gateway: &Gateway, count: u64) {
    eventually("the new TLS material to be installed", || async {
        (gateway.tls().stats().installed >= count).then_some(())
    })
    .await;
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_revoked_agency_certificate_is_refused_while_its_sibling_is_accepted() {
        let region = Region::new(&["MX", "GT"]);
        region.take_offline("GT");
        let pki = region.pki();
        // Mexico's consulate certificate is revoked before the gateway starts.
        revoke(pki, &agency("MX", "consulate")).unwrap();
        let mx = region
            .start_with(reloading(region.config("MX"), vec![pki.agency_crl("MX")]))
            .await;

        refused_call(&region.profile("MX", "consulate")).await;
        assert!(mx.tls().stats().refused_agency_certificates >= 1);
        let mut inm = region.agency("MX", "destination-authority").await;
        inm.submit(notice_to("GT", "MX-2026-0100")).await.unwrap();
        assert_eq!(mx.outbox_depth(country("GT")), 1);

        // INM's certificate is revoked while the gateway runs.
        revoke(pki, &agency("MX", "destination-authority")).unwrap();
        installed(&mx, 1).await;
        refused_call(&region.profile("MX", "destination-authority")).await;
        assert_eq!(mx.outbox_depth(country("GT")), 1, "nothing new accepted");
        refused_call(&region.profile("MX", "consulate")).await;

        // Their sibling, Mexico's child-protection agency, is still welcome.
        let mut dif = region.agency("MX", "child-protection").await;
        assert!(inbox_now(&mut dif, 0).await.is_empty());
        mx.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_revoked_gateway_certificate_cannot_deliver_until_it_is_renewed() {
        let region = Region::new(&["MX", "GT"]);
        let pki = region.pki();
        revoke(pki, &gateway("MX")).unwrap();
        let crls = vec![pki.root_crl()];
        let gt = region
            .start_with(reloading(region.config("GT"), crls.clone()))
            .await;
        let mx = region
            .start_with(reloading(region.config("MX"), crls))
            .await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut sent = Vec::new();
        for i in 0..3 {
            let accepted = inm
                .submit(notice_to("GT", &format!("MX-2026-02{i:02}")))
                .await
                .unwrap();
            sent.push(accepted.message_id);
        }

        eventually("GT to refuse MX's revoked certificate twice", || async {
            (gt.tls().stats().refused_peer_certificates >= 2).then_some(())
        })
        .await;
        assert_eq!(mx.outbox_depth(country("GT")), 3, "everything stays queued");
        let mut sbs = region.agency("GT", "child-protection").await;
        assert!(inbox_now(&mut sbs, 0).await.is_empty(), "nothing stored");

        // A renewed certificate (new key, new serial) is picked up by MX's
        // courier at its next reconnect, without a restart.
        renew(pki, &gateway("MX"), Lifetime::default()).unwrap();
        installed(&mx, 1).await;
        let received: Vec<String> = inbox_with(&mut sbs, 0, 3)
            .await
            .into_iter()
            .map(|item| item.body.unwrap().message_id)
            .collect();
        assert_eq!(received, sent);
        eventually("MX's outbox to drain", || async {
            (mx.outbox_depth(country("GT")) == 0).then_some(())
        })
        .await;
        assert_eq!(inbox_now(&mut sbs, 0).await.len(), 3, "none twice");
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn an_expired_agency_certificate_is_refused() {
        let region = Region::new(&["MX", "GT"]);
        region.take_offline("GT");
        let yesterday = Lifetime {
            not_before_days_ago: 10,
            valid_days: 9,
        };
        renew(
            region.pki(),
            &agency("MX", "destination-authority"),
            yesterday,
        )
        .unwrap();
        let mx = region.start("MX").await;

        refused_call(&region.profile("MX", "destination-authority")).await;
        assert!(mx.tls().stats().refused_agency_certificates >= 1);
        assert_eq!(mx.outbox_depth(country("GT")), 0);
        let mut dif = region.agency("MX", "child-protection").await;
        assert!(inbox_now(&mut dif, 0).await.is_empty());
        mx.shutdown().await;

        // A gateway whose own certificate has expired does not start, and says why.
        renew(region.pki(), &gateway("GT"), yesterday).unwrap();
        let mut config = region.config("GT");
        config.listen.peer = "127.0.0.1:0".parse().unwrap();
        config.listen.agency = "127.0.0.1:0".parse().unwrap();
        let error = Gateway::start(config)
            .await
            .err()
            .expect("GT must not start");
        let error = error.to_string();
        assert!(
            error.contains("gateway.pem") && error.contains("expired"),
            "{error}"
        );
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn the_receiving_gateways_certificate_is_replaced_while_notices_flow_and_none_is_lost_or_doubled() {
        let region = Region::new(&["MX", "GT"]);
        let gt = region
            .start_with(reloading(region.config("GT"), Vec::new()))
            .await;
        let proxy = Proxy::start(region.peer_addr("GT")).await;
        let mut config = region.config("MX");
        config.peers.get_mut(&country("GT")).unwrap().address = proxy.address().to_string();
        let mx = region.start_with(config).await;
        let old = certificate_der(&region.pki().gateway_cert("GT"));
        assert!(presented_certificate(&region, "MX", "GT").await == old);

        let inm = region.agency("MX", "destination-authority").await;
        let submitting = tokio::spawn(async move {
            let mut inm = inm;
            let mut sent = Vec::new();
            for i in 0..200 {
                let accepted = inm
                    .submit(notice_to("GT", &format!("MX-2026-{i:04}")))
                    .await
                    .unwrap();
                sent.push(accepted.message_id);
            }
            sent
        });
        let mut sbs = region.agency("GT", "child-protection").await;
        inbox_with(&mut sbs, 0, 20).await;

        // Guatemala's operator installs a new key and certificate mid-stream.
        renew(region.pki(), &gateway("GT"), Lifetime::default()).unwrap();
        installed(&gt, 1).await;
        let new = certificate_der(&region.pki().gateway_cert("GT"));
        assert!(new != old);
        assert!(
            presented_certificate(&region, "MX", "GT").await == new,
            "new handshakes get the new certificate"
        );
        // MX's open connection drops; it reconnects and meets the new certificate.
        let before = proxy.connections();
        proxy.cut();

        let mut sent = submitting.await.unwrap();
        // Notices accepted after the cut can only travel on a new connection.
        let mut inm = region.agency("MX", "destination-authority").await;
        for i in 200..220 {
            let accepted = inm
                .submit(notice_to("GT", &format!("MX-2026-{i:04}")))
                .await
                .unwrap();
            sent.push(accepted.message_id);
        }
        let mut sbs = region.agency("GT", "child-protection").await;
        let received: Vec<String> = inbox_with(&mut sbs, 0, 220)
            .await
            .into_iter()
            .map(|item| item.body.unwrap().message_id)
            .collect();
        assert_eq!(received, sent, "every notice, once, in order");
        eventually("MX's outbox to drain", || async {
            (mx.outbox_depth(country("GT")) == 0).then_some(())
        })
        .await;
        assert!(proxy.connections() > before, "MX reconnected after the cut");
        assert_eq!(inbox_now(&mut sbs, 0).await.len(), 220, "and none twice");
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_replacement_certificate_for_another_country_is_not_installed() {
        let region = Region::new(&["MX", "GT", "HN"]);
        let gt = region
            .start_with(reloading(region.config("GT"), Vec::new()))
            .await;
        let pki = region.pki();
        let old = certificate_der(&pki.gateway_cert("GT"));

        // Honduras's certificate and key land in Guatemala's files.
        std::fs::copy(pki.gateway_key("HN"), pki.gateway_key("GT")).unwrap();
        std::fs::copy(pki.gateway_cert("HN"), pki.gateway_cert("GT")).unwrap();
        let refusal = eventually("GT to refuse Honduras's certificate", || async {
            gt.tls()
                .last_refusal()
                .filter(|reason| reason.contains("urn:retorno:gateway:HN"))
        })
        .await;
        assert!(refusal.contains("gateway.pem"), "{refusal}");
        assert_eq!(gt.tls().stats().installed, 0);
        assert!(
            presented_certificate(&region, "MX", "GT").await == old,
            "the old certificate stays in use"
        );

        // Mexico, which checks that GT's certificate names GT, still delivers.
        let mx = region.start("MX").await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let accepted = inm.submit(notice_to("GT", "MX-2026-0300")).await.unwrap();
        let mut sbs = region.agency("GT", "child-protection").await;
        let items = inbox_with(&mut sbs, 0, 1).await;
        assert_eq!(
            items[0].body.as_ref().unwrap().message_id,
            accepted.message_id
        );
        mx.shutdown().await;
        gt.shutdown().await;
    }
}
