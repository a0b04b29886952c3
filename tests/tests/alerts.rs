//! Issue 10, alerts: Mexico's gateway posts what its operators must act
//! on to a webhook: a certificate about to expire (once per threshold), a
//! peer down for longer than allowed and, when it returns, that it is
//! resolved. A receiver that is down delays the alerts and loses none,
//! across a restart of the gateway.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use retorno_certs_dev::{Holder, Lifetime, renew};
use retorno_gateway::{
    Config,
    config::{AlertSettings, Webhook},
};
use retorno_tests::{Region, WebhookReceiver, eventually, notice_to, open_database};

/// Mexico's config with alerts to `url`, checked every 20 ms, a peer
/// unreachable for a second being an alert.
fn alerting(region: &Region, url: &str) -> Config {
    let mut config = region.config("MX");
    config.alerts = AlertSettings {
        peer_unreachable_after_s: 1,
        check_interval_ms: 20,
        retry_initial_ms: 20,
        retry_max_ms: 200,
        webhooks: vec![Webhook {
            url: url.to_owned(),
            bearer_token: Some("s3cret".into()),
            ca: None,
            client_cert: None,
            client_key: None,
        }],
        ..AlertSettings::default()
    };
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_five_days_from_expiry_raises_one_alert_per_threshold() {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    let five_days_left = Lifetime {
        not_before_days_ago: 360,
        valid_days: 365,
    };
    let mx = Holder::Gateway {
        country: "MX".into(),
    };
    renew(region.pki(), &mx, five_days_left).unwrap();
    let receiver = WebhookReceiver::start().await;
    let mx = region.start_with(alerting(&region, &receiver.url())).await;

    let expiring = eventually("an alert for each threshold", || async {
        let events = receiver.of("certificate_expiring", "firing");
        (events.len() >= 2).then_some(events)
    })
    .await;
    let mut thresholds: Vec<u64> = expiring
        .iter()
        .map(|e| e["labels"]["within_days"].as_u64().unwrap())
        .collect();
    thresholds.sort_unstable();
    assert_eq!(thresholds, [7, 30]);
    for event in &expiring {
        assert_eq!(event["gateway"], "MX");
        assert_eq!(
            event["labels"]["certificate"],
            "gateway certificate CN=retorno gateway MX"
        );
        assert!(
            event["summary"]
                .as_str()
                .unwrap()
                .contains("expires in 4 days")
                || event["summary"]
                    .as_str()
                    .unwrap()
                    .contains("expires in 5 days"),
            "{event}"
        );
        assert_eq!(event["repeat"], false);
    }
    // Guatemala is down: its alert comes a second later, hundreds of checks
    // after the certificate's, which fired once per threshold all the same.
    eventually("Guatemala's outage to be reported", || async {
        (!receiver.of("peer_unreachable", "firing").is_empty()).then_some(())
    })
    .await;
    assert_eq!(receiver.of("certificate_expiring", "firing").len(), 2);
    assert!(receiver.of("certificate_expired", "firing").is_empty());
    mx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_down_and_its_queue_are_reported_within_the_configured_time_and_resolved_when_it_returns()
 {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    let receiver = WebhookReceiver::start().await;
    let started = std::time::Instant::now();
    let mut config = alerting(&region, &receiver.url());
    config.alerts.queue_age_s = 1;
    let mx = region.start_with(config).await;
    let mut inm = region.agency("MX", "destination-authority").await;
    inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
    let down = eventually("peer_unreachable for Guatemala", || async {
        receiver.of("peer_unreachable", "firing").pop()
    })
    .await;
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(1) && waited < std::time::Duration::from_secs(5),
        "reported after {waited:?}"
    );
    assert_eq!(down["labels"]["peer"], "GT");
    assert_eq!(down["key"], "peer_unreachable/GT");

    let gt = region.start("GT").await;
    let resolved = eventually("Guatemala's outage to be resolved", || async {
        receiver.of("peer_unreachable", "resolved").pop()
    })
    .await;
    assert_eq!(resolved["key"], "peer_unreachable/GT");
    assert_eq!(resolved["since"], down["since"]);
    assert_eq!(receiver.of("peer_unreachable", "firing").len(), 1);
    // The notice waited longer than queue_age_s: reported, and resolved once delivered.
    let stuck = eventually("the stuck queue to be resolved", || async {
        receiver.of("queue_stuck", "resolved").pop()
    })
    .await;
    assert_eq!(stuck["labels"]["peer"], "GT");
    assert_eq!(receiver.of("queue_stuck", "firing").len(), 1);
    mx.shutdown().await;
    gt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_is_down_delays_alerts_and_loses_none_across_a_restart() {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    // The receiver's address, with nothing listening on it.
    let address = WebhookReceiver::start().await.address();
    let config = alerting(&region, &format!("http://{address}/alerts"));
    let mx = region.start_with(config.clone()).await;
    eventually("the outage's alert to wait for the receiver", || async {
        (mx.alerts().waiting(0).unwrap() >= 1).then_some(())
    })
    .await;
    mx.shutdown().await;

    let mx = region.restart_with(config).await;
    let receiver = WebhookReceiver::start_on(address).await;
    let down = eventually("the alert kept across the restart to arrive", || async {
        receiver.of("peer_unreachable", "firing").pop()
    })
    .await;
    assert_eq!(down["key"], "peer_unreachable/GT");
    let gt = region.start("GT").await;
    eventually("the outage to be resolved", || async {
        receiver.of("peer_unreachable", "resolved").pop()
    })
    .await;
    // Fired once before the restart, never again after it, then resolved.
    assert_eq!(receiver.of("peer_unreachable", "firing").len(), 1);
    // The receiver has the event before the gateway has its answer and
    // takes the event off its queue.
    eventually("the alert queue to be empty", || async {
        (mx.alerts().waiting(0).unwrap() == 0).then_some(())
    })
    .await;
    mx.shutdown().await;
    gt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_audit_verification_is_posted_when_the_gateway_runs() {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    let receiver = WebhookReceiver::start().await;
    let config = alerting(&region, &receiver.url());
    let mx = region.start_with(config.clone()).await;
    let mut inm = region.agency("MX", "destination-authority").await;
    inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
    mx.shutdown().await;

    // Someone edits the first audit entry of the stopped gateway.
    let db = open_database(&config).await;
    let log = db.open_tree("audit").unwrap();
    let mut entry = log.get(1u64.to_be_bytes()).unwrap().unwrap().to_vec();
    let last = entry.len() - 1;
    entry[last] ^= 1;
    log.insert(1u64.to_be_bytes(), entry).unwrap();
    db.flush().unwrap();
    drop((log, db));
    let report = eventually("the database to be free for audit verify", || async {
        retorno_gateway::audit::verify_stopped(&config).await.ok()
    })
    .await;
    assert!(!report.intact());

    let mx = region.restart_with(config).await;
    let failed = eventually("the failed verification to be posted", || async {
        receiver.of("audit_verification_failed", "firing").pop()
    })
    .await;
    assert_eq!(failed["key"], "audit_verification_failed");
    mx.shutdown().await;
}
