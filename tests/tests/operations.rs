//! A country's operations team watches its gateway from outside (issue 10,
//! points 1 and 2): load balancers, peers and agencies ask `grpc.health.v1`
//! on each listener whether it serves, and Prometheus scrapes its metrics.
//! The health follows real checks: a store that stops taking writes, an
//! expired or revoked certificate and an operator's drain each turn it
//! NOT_SERVING, and clearing each turns it back. A scrape after a day of
//! notices, refusals and one outage shows exactly those counts, and nothing
//! that names a case, a message or a child.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{io::Read as _, io::Write as _, net::SocketAddr, path::PathBuf};

use retorno_certs_dev::{Holder, Lifetime, renew, revoke};
use retorno_client::tls;
use retorno_gateway::{
    Config, Gateway,
    health::{AGENCY_SERVICE, PEER_SERVICE},
};
use retorno_tests::{Proxy, Region, country, eventually, notice, notice_to, open_store};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Health checked every 50 ms and TLS files re-read as often, so that each
/// change shows at once.
fn watched(mut config: Config) -> Config {
    config.health.probe_interval_ms = 50;
    config.tls.reload_interval_ms = 50;
    config
}

/// A channel to `code`'s Agency API with one of its agencies' certificates.
async fn agency_channel(region: &Region, code: &str, role: &str) -> Channel {
    let profile = region.profile(code, role);
    let own = tls::KeyedChain::load(&profile.cert, &profile.key).unwrap();
    let config = tls::client_config(&own, tls::load_roots(&profile.ca).unwrap()).unwrap();
    tls::connect(&profile.gateway, profile.server_name(), config, None)
        .await
        .unwrap()
}

/// A channel to `to`'s Peer API with `as_country`'s gateway certificate.
async fn peer_channel(region: &Region, as_country: &str, to: &str) -> Channel {
    let own = retorno_tests::gateway_chain(region, as_country);
    let config = retorno_tests::gateway_client_config(region, &own);
    tls::connect(
        &region.peer_addr(to).to_string(),
        &retorno_certs_dev::gateway_dns_name(to),
        config,
        None,
    )
    .await
    .unwrap()
}

async fn status(channel: &Channel, service: &str) -> ServingStatus {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    HealthClient::new(channel.clone())
        .check(request)
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// Waits until every service of both listeners of MX says `expected`.
async fn mx_health_becomes(region: &Region, expected: ServingStatus, why: &str) {
    let peer = peer_channel(region, "GT", "MX").await;
    let what = format!("MX's Peer API health to be {expected:?} ({why})");
    eventually(&what, || async {
        let all = [status(&peer, "").await, status(&peer, PEER_SERVICE).await];
        all.iter().all(|s| *s == expected).then_some(())
    })
    .await;
    mx_agency_health_becomes(region, expected, why).await;
}

/// Waits until both services of MX's Agency API say `expected` (the
/// Peer API's are asked in [`mx_health_becomes`] where a peer can connect).
async fn mx_agency_health_becomes(region: &Region, expected: ServingStatus, why: &str) {
    let agency = agency_channel(region, "MX", "child-protection").await;
    let what = format!("MX's Agency API health to be {expected:?} ({why})");
    eventually(&what, || async {
        let all = [
            status(&agency, "").await,
            status(&agency, AGENCY_SERVICE).await,
        ];
        all.iter().all(|s| *s == expected).then_some(())
    })
    .await;
}

#[tokio::test]
async fn health_is_serving_on_a_healthy_pair_and_not_while_drained_or_the_store_fails() {
    let region = Region::new(&["MX", "GT"]);
    let gt = region.start_with(watched(region.config("GT"))).await;
    let mx = region.start_with(watched(region.config("MX"))).await;
    mx_health_becomes(&region, ServingStatus::Serving, "a healthy pair").await;

    // Drained: load balancers take MX out, and what it holds still goes out.
    mx.set_draining(true);
    mx_health_becomes(&region, ServingStatus::NotServing, "drained").await;
    let mut inm = region.agency("MX", "destination-authority").await;
    inm.submit(notice_to("GT", "MX-2026-0700")).await.unwrap();
    eventually("the queued notice to go out during the drain", || async {
        (mx.outbox_depth(country("GT")) == 0).then_some(())
    })
    .await;
    mx.set_draining(false);
    mx_health_becomes(&region, ServingStatus::Serving, "the drain ended").await;

    // The store stops taking a write and a flush, then takes them again.
    mx.danger_fail_store_probes(true);
    mx_health_becomes(&region, ServingStatus::NotServing, "the store probe fails").await;
    mx.danger_fail_store_probes(false);
    mx_health_becomes(&region, ServingStatus::Serving, "the store probe passes").await;
    mx.shutdown().await;
    gt.shutdown().await;
}

#[tokio::test]
async fn an_expired_or_revoked_certificate_is_not_serving_until_it_is_renewed() {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    let pki = region.pki();
    // The regional CA's list exists from the start (it revokes GT's certificate).
    let gt_gateway = Holder::Gateway {
        country: "GT".into(),
    };
    revoke(pki, &gt_gateway).unwrap();
    let mut config = watched(region.config("MX"));
    config.tls.crls = vec![pki.root_crl()];
    let mx = region.start_with(config).await;
    mx_agency_health_becomes(&region, ServingStatus::Serving, "a valid certificate").await;
    let mx_gateway = Holder::Gateway {
        country: "MX".into(),
    };

    // A year and a month later, as the gateway's clock reads it, its
    // certificate (valid for a year) has expired.
    region.advance_days(400);
    mx_agency_health_becomes(
        &region,
        ServingStatus::NotServing,
        "the certificate expired",
    )
    .await;
    let long = Lifetime {
        not_before_days_ago: 0,
        valid_days: 800,
    };
    renew(pki, &mx_gateway, long).unwrap();
    mx_agency_health_becomes(&region, ServingStatus::Serving, "the certificate renewed").await;

    // The regional CA revokes it; a renewed one (a new serial) is fine.
    revoke(pki, &mx_gateway).unwrap();
    mx_agency_health_becomes(
        &region,
        ServingStatus::NotServing,
        "the certificate revoked",
    )
    .await;
    renew(pki, &mx_gateway, long).unwrap();
    mx_agency_health_becomes(&region, ServingStatus::Serving, "a new certificate").await;
    mx.shutdown().await;
}

/// Waits until MX has delivered everything it holds for GT.
async fn mx_outbox_empty(mx: &Gateway) {
    eventually("MX's outbox for GT to empty", || async {
        (mx.outbox_depth(country("GT")) == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_gateway_that_went_back_in_time_is_not_serving_until_an_operator_acknowledges_it() {
    let region = Region::new(&["MX", "GT"]);
    let gt = region.start("GT").await;
    let mx = region.start_with(watched(region.config("MX"))).await;
    let mut inm = region.agency("MX", "destination-authority").await;
    inm.submit(notice_to("GT", "MX-2026-1100")).await.unwrap();
    mx_outbox_empty(&mx).await;
    mx.shutdown().await;
    let config = region.config("MX");
    drop(open_store(&config).await);
    let backup = region.dir().join("mx-backup");
    retorno_tests::copy_dir(&config.data_dir, &backup).unwrap();

    // After the backup MX delivers one more; then it is restored from the backup.
    let mx = region.restart_with(watched(region.config("MX"))).await;
    let mut inm = region.agency_when_up("MX", "destination-authority").await;
    inm.submit(notice_to("GT", "MX-2026-1101")).await.unwrap();
    mx_outbox_empty(&mx).await;
    mx.shutdown().await;
    drop(open_store(&config).await);
    std::fs::remove_dir_all(&config.data_dir).unwrap();
    retorno_tests::copy_dir(&backup, &config.data_dir).unwrap();
    let mx = region.restart_with(watched(region.config("MX"))).await;
    mx_health_becomes(&region, ServingStatus::NotServing, "MX went back in time").await;
    let finding = "retorno_went_back_findings{peer=\"GT\",kind=\"outbox_went_back\"}";
    assert_eq!(
        sample(&scrape(&mx).await, finding),
        1.0,
        "the finding is counted"
    );
    let seen = "retorno_went_back_findings{peer=\"MX\",kind=\"peer_outbox_went_back\"}";
    assert_eq!(sample(&scrape(&gt).await, seen), 1.0, "and GT's too");

    // The operator reads the findings and acknowledges them (`rollback --acknowledge`).
    mx.shutdown().await;
    let store = open_store(&config).await;
    assert_eq!(store.acknowledge_findings().unwrap(), 1);
    drop(store);
    let mx = region.restart_with(watched(region.config("MX"))).await;
    mx_health_becomes(&region, ServingStatus::Serving, "the loss acknowledged").await;
    assert_eq!(
        sample(&scrape(&mx).await, finding),
        0.0,
        "no longer standing"
    );
    mx.shutdown().await;
    gt.shutdown().await;
}

#[tokio::test]
async fn a_stuck_courier_is_not_serving_and_a_peer_that_is_down_is_not_its_fault() {
    let region = Region::new(&["MX", "GT"]);
    // MX reaches GT through a proxy that can go silent: the courier's stream
    // then hangs (neither side's keepalive notices within the test) while
    // GT, reached on a new connection, answers its health check.
    let mut gt_config = region.config("GT");
    gt_config.limits.keepalive_interval_ms = 600_000;
    gt_config.limits.keepalive_timeout_ms = 600_000;
    let gt = region.start_with(gt_config).await;
    let proxy = Proxy::start(region.peer_addr("GT")).await;
    let mut config = watched(region.config("MX"));
    config.peers.get_mut(&country("GT")).unwrap().address = proxy.address().to_string();
    config.delivery.keepalive_interval_ms = 600_000;
    config.delivery.keepalive_timeout_ms = 600_000;
    config.health.stuck_after_s = 1;
    let mx = region.start_with(config).await;
    mx_health_becomes(&region, ServingStatus::Serving, "nothing queued").await;
    eventually("MX's courier to open its stream", || async {
        (proxy.connections() >= 1).then_some(())
    })
    .await;
    proxy.silence();
    let mut inm = region.agency("MX", "destination-authority").await;
    inm.submit(notice_to("GT", "MX-2026-1200")).await.unwrap();
    mx_health_becomes(&region, ServingStatus::NotServing, "a stuck courier").await;

    // The silent connection is cut: the courier delivers on a new one and MX serves again.
    proxy.cut();
    mx_outbox_empty(&mx).await;
    mx_health_becomes(&region, ServingStatus::Serving, "the courier delivered").await;

    // GT goes down: the notice queued for it grows old, and MX still serves.
    gt.shutdown().await;
    inm.submit(notice_to("GT", "MX-2026-1201")).await.unwrap();
    eventually(
        "the queued notice to wait 3 s, well past health.stuck_after_s",
        || async {
            let text = scrape(&mx).await;
            (sample(&text, &gauge("retorno_outbox_oldest_age_seconds", "GT")) >= 3.0).then_some(())
        },
    )
    .await;
    mx_health_becomes(&region, ServingStatus::Serving, "GT is down, not stuck").await;
    mx.shutdown().await;
}

/// `GET path` on the metrics listener over plain HTTP, as a load balancer's
/// HTTP check asks it: the status code and the body.
async fn plain_get(gateway: &Gateway, path: &str) -> (u16, String) {
    let address: SocketAddr = gateway.metrics_addr().expect("metrics are on");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    plain_request(address, request).await
}

/// Sends `request` to `address` and reads the answer to its end: the status
/// code and the body.
async fn plain_request(address: SocketAddr, request: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(address).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        let code = answer[9..12].parse().unwrap();
        let (_, body) = answer.split_once("\r\n\r\n").unwrap();
        (code, body.to_owned())
    })
    .await
    .unwrap()
}

/// The Agency API's gRPC health and `GET /health` at one moment: asked
/// again until gRPC says the same just before and just after the plain answer.
async fn both_healths(mx: &Gateway, agency: &Channel) -> (ServingStatus, (u16, String)) {
    loop {
        let before = status(agency, "").await;
        let plain = plain_get(mx, "/health").await;
        if status(agency, "").await == before {
            return (before, plain);
        }
    }
}

/// Waits until `GET /health` answers `code` and `body`, then checks that
/// gRPC health says the same.
async fn plain_health_becomes(mx: &Gateway, agency: &Channel, code: u16, body: &str, why: &str) {
    let expected = (code, body.to_owned());
    let what = format!("GET /health to answer {code} {body:?} ({why})");
    eventually(&what, || async {
        (plain_get(mx, "/health").await == expected).then_some(())
    })
    .await;
    let grpc = match code {
        200 => ServingStatus::Serving,
        _ => ServingStatus::NotServing,
    };
    assert_eq!(
        both_healths(mx, agency).await,
        (grpc, expected),
        "gRPC health and GET /health agree ({why})"
    );
}

#[tokio::test]
async fn a_load_balancer_reads_the_same_health_in_plain_http_on_the_metrics_listener() {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    let mx = region.start_with(watched(region.config("MX"))).await;
    let agency = agency_channel(&region, "MX", "child-protection").await;
    plain_health_becomes(&mx, &agency, 200, "SERVING\n", "a healthy gateway").await;

    // The store stops taking a write and a flush: 503, naming the check only.
    mx.danger_fail_store_probes(true);
    plain_health_becomes(&mx, &agency, 503, "NOT_SERVING: store\n", "the probe fails").await;
    mx.set_draining(true);
    let both = "NOT_SERVING: draining, store\n";
    plain_health_becomes(&mx, &agency, 503, both, "drained too").await;
    mx.set_draining(false);
    mx.danger_fail_store_probes(false);
    plain_health_becomes(&mx, &agency, 200, "SERVING\n", "the probe passes").await;

    // HAProxy's `option httpchk GET /health` sends exactly this (HTTP/1.0, no Host).
    let address = mx.metrics_addr().unwrap();
    let haproxy = plain_request(address, "GET /health HTTP/1.0\r\n\r\n".into()).await;
    assert_eq!(haproxy, (200, "SERVING\n".to_owned()));

    // Any other path or method is still not found; /metrics still scrapes.
    assert_eq!(plain_get(&mx, "/healthz").await.0, 404);
    assert_eq!(plain_get(&mx, "/").await.0, 404);
    assert!(scrape(&mx).await.contains("retorno_health_serving 1"));
    mx.shutdown().await;
}

/// A database that stops completing commits (PostgreSQL with a synchronous
/// standby required and none connected, as Patroni's
/// `synchronous_mode_strict` leaves it when the standby is lost) blocks
/// every write without an error. The health probe's write blocks too, so
/// the gateway says NOT_SERVING, naming the store, once
/// `health.probe_timeout_ms` has passed, and SERVING again once commits
/// complete; a notice submitted meanwhile is answered "accepted" only then,
/// and arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_that_stops_completing_commits_is_not_serving_until_it_completes_them() {
    let Some(engine) = retorno_tests::engine::private_postgres() else {
        return;
    };
    let retorno_tests::engine::Engine::Postgres(cluster) = engine else {
        unreachable!("a PostgreSQL engine");
    };
    retorno_tests::engine::on(engine, async {
        let region = Region::new(&["MX", "GT"]);
        let gt = region.start_with(watched(region.config("GT"))).await;
        let mut config = watched(region.config("MX"));
        config.health.probe_timeout_ms = 500;
        let mx = region.start_with(config).await;
        let agency = agency_channel(&region, "MX", "child-protection").await;
        plain_health_becomes(&mx, &agency, 200, "SERVING\n", "a healthy pair").await;

        cluster.require_standby("lost_standby");
        // Whatever happens below, commits complete again at the end, so that
        // a failing test fails instead of waiting with the runtime for them.
        let _restore = Restore(cluster);
        let what = "commits wait for a standby that is not there";
        plain_health_becomes(&mx, &agency, 503, "NOT_SERVING: store\n", what).await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let submitted = tokio::spawn(async move {
            let answer = inm.submit(notice_to("GT", "MX-2026-0910")).await;
            (inm, answer)
        });
        // Still not serving a while later: the blocked probe is waited on,
        // not forgotten.
        let later = tokio::time::Instant::now() + std::time::Duration::from_millis(700);
        tokio::time::sleep_until(later).await;
        assert_eq!(
            both_healths(&mx, &agency).await,
            (
                ServingStatus::NotServing,
                (503, "NOT_SERVING: store\n".to_owned())
            ),
            "still not serving while commits wait"
        );
        assert!(
            !submitted.is_finished(),
            "no \"accepted\" while commits wait"
        );

        cluster.require_standby("");
        plain_health_becomes(&mx, &agency, 200, "SERVING\n", "commits complete again").await;
        let (_, answer) = submitted.await.unwrap();
        assert!(
            !answer.unwrap().duplicate,
            "accepted once commits completed"
        );
        let mut sbs = region.agency("GT", "child-protection").await;
        let arrived = retorno_tests::inbox_with(&mut sbs, 0, 1).await;
        assert_eq!(
            arrived.len(),
            1,
            "the notice accepted during the stall arrives once"
        );
        assert_eq!(arrived[0].body.as_ref().unwrap().case_id, "MX-2026-0910");
        mx.shutdown().await;
        gt.shutdown().await;
    })
    .await;
}

/// Lets the cluster's commits complete again when dropped.
struct Restore(&'static retorno_tests::postgres::Cluster);

impl Drop for Restore {
    fn drop(&mut self) {
        self.0.require_standby("");
    }
}

/// `GET /metrics` over plain HTTP, as Prometheus scrapes it.
async fn scrape(gateway: &Gateway) -> String {
    let address: SocketAddr = gateway.metrics_addr().expect("metrics are on");
    tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(address).unwrap();
        write!(
            tcp,
            "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        answer
    })
    .await
    .unwrap()
}

/// The value of one sample, 0 if it is absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

fn messages(peer: &str, outcome: &str) -> String {
    format!(
        "retorno_messages_total{{peer=\"{peer}\",kind=\"advance_notice\",outcome=\"{outcome}\"}}"
    )
}

fn gauge(name: &str, peer: &str) -> String {
    format!("{name}{{peer=\"{peer}\"}}")
}

#[tokio::test]
async fn a_scrape_counts_notices_refusals_and_an_outage_exactly_and_names_no_one() {
    const NOTICES: usize = 3;
    const REFUSALS: usize = 2;
    const DURING_OUTAGE: usize = 2;
    let region = Region::new(&["MX", "GT"]);
    let gt = region.start("GT").await;
    let mx = region.start("MX").await;
    let mut inm = region.agency("MX", "destination-authority").await;
    let mut consulate = region.agency("MX", "consulate").await;
    let mut ids = Vec::new();
    let mut case_ids = Vec::new();
    for i in 0..NOTICES {
        let case_id = format!("MX-2026-08{i:02}");
        let accepted = inm.submit(notice_to("GT", &case_id)).await.unwrap();
        ids.push(accepted.message_id);
        case_ids.push(case_id);
    }
    // A consulate may not open a case: refused at submit, nothing queued.
    for i in 0..REFUSALS {
        let case_id = format!("MX-2026-09{i:02}");
        consulate
            .submit(notice_to("GT", &case_id))
            .await
            .unwrap_err();
        case_ids.push(case_id);
    }
    // Counted once the receipts are stored: wait for the count, not the queue.
    let before = eventually("MX's notices to be delivered and counted", || async {
        let text = scrape(&mx).await;
        (sample(&text, &messages("GT", "delivered")) == NOTICES as f64).then_some(text)
    })
    .await;
    assert_eq!(mx.outbox_depth(country("GT")), 0);
    assert_eq!(sample(&before, &messages("GT", "accepted")), NOTICES as f64);
    assert_eq!(
        sample(&before, &messages("GT", "refused_at_submit")),
        REFUSALS as f64
    );
    assert_eq!(
        sample(&before, &messages("GT", "delivered")),
        NOTICES as f64
    );
    assert_eq!(sample(&before, &gauge("retorno_peer_connected", "GT")), 1.0);
    let received = scrape(&gt).await;
    assert_eq!(
        sample(&received, &messages("MX", "received")),
        NOTICES as f64
    );
    assert_eq!(sample(&received, &messages("MX", "duplicate")), 0.0);

    // Guatemala goes down; what MX accepts meanwhile waits in its outbox.
    let gt_config = region.config("GT");
    gt.shutdown().await;
    for i in 0..DURING_OUTAGE {
        let case_id = format!("MX-2026-10{i:02}");
        let accepted = inm.submit(notice_to("GT", &case_id)).await.unwrap();
        ids.push(accepted.message_id);
        case_ids.push(case_id);
    }
    let during = eventually("MX to see GT down with its queue", || async {
        let text = scrape(&mx).await;
        let down = sample(&text, &gauge("retorno_peer_connected", "GT")) == 0.0
            && sample(&text, &gauge("retorno_peer_reconnect_attempts_total", "GT")) >= 1.0;
        down.then_some(text)
    })
    .await;
    assert_eq!(
        sample(&during, &gauge("retorno_outbox_depth", "GT")),
        DURING_OUTAGE as f64
    );
    assert!(sample(&during, &gauge("retorno_outbox_oldest_age_seconds", "GT")) >= 0.0);

    let gt = region.restart_with(gt_config).await;
    // A scrape reads the queue before it encodes the counters, so one taken
    // while the last batch is answered may show either from just before.
    let after = eventually("MX's queue for GT to drain, all counted", || async {
        let text = scrape(&mx).await;
        let drained = sample(&text, &gauge("retorno_outbox_depth", "GT")) == 0.0;
        let counted =
            sample(&text, &messages("GT", "delivered")) == (NOTICES + DURING_OUTAGE) as f64;
        (drained && counted).then_some(text)
    })
    .await;
    assert_eq!(
        sample(&after, &gauge("retorno_outbox_oldest_age_seconds", "GT")),
        0.0
    );
    assert_eq!(
        sample(&after, &messages("GT", "accepted")),
        (NOTICES + DURING_OUTAGE) as f64
    );
    assert_eq!(sample(&after, &messages("GT", "rejected_by_peer")), 0.0);
    assert_eq!(sample(&after, &gauge("retorno_peer_connected", "GT")), 1.0);
    assert!(sample(&after, "retorno_audit_height") > 0.0);
    assert!(sample(&after, "retorno_store_size_bytes") > 0.0);
    assert!(
        sample(
            &after,
            "retorno_certificate_expiry_seconds{role=\"gateway\",subject=\"CN=retorno gateway MX\"}"
        ) > 300.0 * 86_400.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            &gauge("retorno_peer_certificate_expiry_seconds", "GT")
        ) > 300.0 * 86_400.0,
        "{after}"
    );
    // The restarted GT counts from its start: the notices of the outage.
    let received = scrape(&gt).await;
    assert_eq!(
        sample(&received, &messages("MX", "received")),
        DURING_OUTAGE as f64
    );

    // No id, no case, nothing of the child in any scrape.
    let child = notice();
    let child = child.child.unwrap();
    let mut forbidden: Vec<String> = ids.iter().chain(&case_ids).cloned().collect();
    forbidden.extend([child.given_names.clone(), child.family_names.clone()]);
    forbidden.extend(child.documents.iter().map(|d| d.number.clone()));
    for text in [&before, &during, &after, &received] {
        for needle in forbidden.iter().filter(|n| !n.is_empty()) {
            assert!(!text.contains(needle.as_str()), "{needle} is in a scrape");
        }
    }
    mx.shutdown().await;
    gt.shutdown().await;
}

#[tokio::test]
async fn the_metrics_listener_refuses_to_leave_loopback_unless_told() {
    let region = Region::new(&["MX", "GT"]);
    let mut config = region.config("MX");
    config.metrics.listen = "0.0.0.0:0".parse().unwrap();
    let error = config
        .check(&PathBuf::from("gateway.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("metrics.listen") && error.contains("danger_listen_beyond_loopback"),
        "{error}"
    );
    config.metrics.danger_listen_beyond_loopback = true;
    config.check(&PathBuf::from("gateway.toml")).unwrap();
}

/// Runs `gateway-process` with `args` until it logs "gateway started" (or
/// ends), kills it, and returns its log lines up to then.
fn started_log(args: &[&std::ffi::OsStr]) -> Vec<String> {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-process"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let started = line.contains("gateway started");
        lines.push(line);
        if started {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

/// Runs `gateway-process` with `args` (and `env`) to its end: whether it
/// succeeded, and what it wrote to stdout and stderr.
async fn program(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-process"));
    command.args(args).envs(env.iter().copied());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (
        output.status.success(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[tokio::test]
async fn migrate_refuses_a_running_gateway_and_a_url_that_is_not_postgres_and_never_prints_a_password()
 {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    let mx = region.start("MX").await;
    let file = region.write_config("MX");
    let file = file.to_str().unwrap();
    let url = "postgres://retorno:s3cret@127.0.0.1:1/retorno_mx";
    let (ok, out, err) = program(&["migrate", "--config", file, "--to", url], &[]).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("the gateway is running (it holds its database): stop it, back up"),
        "{err}"
    );

    // The URL may come from the environment; a MySQL one is refused, naming the flag.
    let mysql = [("RETORNO_MIGRATE_TO", "mysql://root:s3cret@127.0.0.1/mx")];
    let (ok, out2, err2) = program(&["migrate", "--config", file], &mysql).await;
    assert!(!ok, "{out2}");
    assert!(
        err2.contains("--to: mysql://root:***@127.0.0.1/mx is not a PostgreSQL URL"),
        "{err2}"
    );
    for text in [&out, &err, &out2, &err2] {
        assert!(!text.contains("s3cret"), "{text}");
    }
    mx.shutdown().await;
}

#[tokio::test]
async fn a_log_shipper_reads_one_json_object_per_line_with_the_same_fields() {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("MX");
    let mut config = region.config("MX");
    config.log.format = retorno_gateway::config::LogFormat::Json;
    let file = region.dir().join("MX-json.toml");
    std::fs::write(&file, config.to_toml().unwrap()).unwrap();

    let from_config = tokio::task::spawn_blocking({
        let file = file.clone();
        move || started_log(&["run".as_ref(), "--config".as_ref(), file.as_os_str()])
    })
    .await
    .unwrap();
    let started: serde_json::Value =
        serde_json::from_str(from_config.last().expect("a log line")).unwrap();
    assert_eq!(started["message"], "gateway started", "{started}");
    assert_eq!(started["country"], "MX", "{started}");
    assert_eq!(started["level"], "INFO", "{started}");
    assert!(started["peer_addr"].is_string(), "{started}");
    for line in &from_config {
        serde_json::from_str::<serde_json::Value>(line).expect("every line is JSON");
    }

    // The flag overrides the file: text for a person at a terminal.
    let text = tokio::task::spawn_blocking(move || {
        let args = ["--log-format".as_ref(), "text".as_ref(), "run".as_ref()];
        let config = ["--config".as_ref(), file.as_os_str()];
        started_log(&[&args[..], &config[..]].concat())
    })
    .await
    .unwrap();
    let last = text.last().expect("a log line");
    assert!(
        serde_json::from_str::<serde_json::Value>(last).is_err()
            && last.contains("gateway started"),
        "{last}"
    );
}

#[tokio::test]
async fn grpcurl_can_list_and_describe_the_agency_api_by_reflection() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    let mx = region.start("MX").await;
    let channel = agency_channel(&region, "MX", "child-protection").await;
    let asks = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("retorno.v1.Agency".into()),
    ];
    let requests = asks.map(|ask| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(ask),
    });
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(listed)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no list of services");
    };
    let names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    for expected in [AGENCY_SERVICE, "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no descriptor of retorno.v1.Agency");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    mx.shutdown().await;
}
