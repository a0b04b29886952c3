//! Issue 9, points 4 to 8: the transport holds against hostile and broken
//! clients and against partitions. Undecodable and oversized requests get
//! `INVALID_ARGUMENT` naming the problem; a certificate holder cannot keep
//! idle connections open, nor more than its share; a quiet follower keeps
//! its stream; a peer whose connection went silent is never locked out; and
//! a client that leaves before the handshake is no incident in the logs.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use prost::Message as _;
use retorno_client::{Client, ClientError};
use retorno_proto::v1::{DeliveryBatch, submit_request::Payload};
use retorno_tests::{
    DEADLINE, Proxy, Region, agency_channel, agency_client_config, eventually, inbox_with,
    notice_to, raw_server_streaming, raw_streaming, raw_unary, tls_connection,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

/// Bytes that are not a protobuf message of the method's type, each in its way.
fn undecodable() -> Vec<(&'static str, Vec<u8>)> {
    let whole = notice_to("GT", "").encode_to_vec();
    vec![
        ("random bytes", vec![0xff; 12]),
        ("a truncated message", whole[..whole.len() / 2].to_vec()),
        // Field 1 of each request is a string, an optional integer or a
        // message: sent with the other wire type.
        ("a wrong wire type", vec![0x0d, 0x01, 0x02, 0x03, 0x04]),
    ]
}

fn assert_invalid(what: &str, answer: Result<impl std::fmt::Debug, tonic::Status>, message: &str) {
    let status = answer.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert!(
        status
            .message()
            .contains(&format!("does not decode as retorno.v1.{message}")),
        "{what}: {}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_requests_get_invalid_argument_naming_the_problem_on_both_apis() {
    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let agency = agency_channel(&region, "MX", "destination-authority").await;
    let own = retorno_tests::gateway_chain(&region, "GT");
    let peer = retorno_client::tls::connect(
        &region.peer_addr("MX").to_string(),
        &retorno_certs_dev::gateway_dns_name("MX"),
        retorno_tests::gateway_client_config(&region, &own),
        None,
    )
    .await
    .unwrap();

    for (what, bytes) in undecodable() {
        let submit = raw_unary(agency.clone(), "/retorno.v1.Agency/Submit", bytes.clone()).await;
        assert_invalid(&format!("Submit of {what}"), submit, "SubmitRequest");
        let subscribe = raw_server_streaming(
            agency.clone(),
            "/retorno.v1.Agency/Subscribe",
            bytes.clone(),
        )
        .await;
        assert_invalid(
            &format!("Subscribe of {what}"),
            subscribe,
            "SubscribeRequest",
        );
        let deliver = raw_streaming(
            peer.clone(),
            "/retorno.v1.PeerExchange/Deliver",
            vec![bytes.clone()],
        )
        .await;
        assert_invalid(&format!("Deliver of {what}"), deliver, "DeliveryBatch");
    }
    let wrong = raw_unary(agency, "/retorno.v1.Agency/Submit", vec![0x0d, 1, 2, 3, 4]).await;
    assert!(
        wrong.unwrap_err().message().contains("invalid wire type"),
        "prost's description of the problem is kept"
    );
    let empty = DeliveryBatch::default().encode_to_vec();
    let fine = raw_streaming(peer, "/retorno.v1.PeerExchange/Deliver", vec![empty]).await;
    assert!(fine.is_ok(), "a batch that decodes is answered: {fine:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_oversized_submit_gets_the_gateways_refusal_naming_the_setting() {
    let region = Region::new(&["MX", "GT"]);
    let mut config = region.config("MX");
    let limit = 64 * 1024;
    config.limits.max_message_bytes = limit;
    let mx = region.start_with(config.clone()).await;
    let mut inm = region.agency("MX", "destination-authority").await;

    for (times, size) in [("1.5", limit * 3 / 2), ("2.5", limit * 5 / 2)] {
        let mut oversized = notice_to("GT", "");
        if let Some(Payload::AdvanceNotice(notice)) = &mut oversized.payload {
            notice.child.as_mut().unwrap().family_names = "x".repeat(size);
        }
        let status = match inm.submit(oversized).await {
            Err(ClientError::Status(status)) => status,
            other => panic!("{times} times the limit: {other:?}"),
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{times}: {status:?}");
        assert!(
            status
                .message()
                .contains("over this gateway's limit of 65536 bytes (limits.max_message_bytes)"),
            "{times} times the limit: {}",
            status.message()
        );
    }
    let served = inm.submit(notice_to("GT", "")).await;
    assert!(served.is_ok(), "a submit under the limit: {served:?}");

    // Refused before the Agency API sees them, they are audited as its refusals are.
    mx.shutdown().await;
    let store = retorno_tests::open_store(&config).await;
    let entries = retorno_gateway::audit::entries(&store).unwrap();
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e.event == retorno_gateway::audit::Event::SubmitRefused as i32)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|e| e.party.contains("destination-authority")
                && e.detail.starts_with("InvalidArgument")),
        "{refused:?}"
    );
}

/// Whether a call on a new connection as GT's child-protection agency is served.
async fn served(region: &Region) -> Option<Client> {
    let mut client = Client::connect(&region.profile("GT", "child-protection"))
        .await
        .ok()?;
    client.cases(None).await.ok()?;
    Some(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_an_identitys_limit_are_refused_until_one_closes() {
    let region = Region::new(&["MX", "GT"]);
    let mut config = region.config("GT");
    config.limits.connections_per_identity = 2;
    let _gt = region.start_with(config).await;

    let first = served(&region).await.expect("a first connection");
    let _second = served(&region).await.expect("a second connection");
    assert!(
        served(&region).await.is_none(),
        "a third connection of the same certificate is refused"
    );
    let other = Client::connect(&region.profile("GT", "consulate")).await;
    assert!(
        other.unwrap().cases(None).await.is_ok(),
        "another identity is not affected"
    );
    drop(first);
    eventually("a freed connection to make room", || served(&region)).await;
}

/// Reads until the server closes the connection (end of stream or error).
async fn closed_by_server<S: tokio::io::AsyncRead + Unpin>(mut stream: S) {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(DEADLINE, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await
    .expect("the gateway closed the idle connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_while_a_quiet_follower_keeps_its_stream() {
    let region = Region::new(&["MX", "GT"]);
    let mut config = region.config("GT");
    config.limits.idle_timeout_ms = 300;
    config.limits.keepalive_interval_ms = 100;
    config.limits.keepalive_timeout_ms = 2_000;
    let gt = region.start_with(config).await;
    let _mx = region.start("MX").await;
    let mut follower = region.agency("GT", "child-protection").await;
    let mut following = follower.subscribe(None, true).await.unwrap();

    let tls = agency_client_config(&region, "GT", "child-protection");
    let name = retorno_certs_dev::gateway_dns_name("GT");
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(tls_connection(gt.agency_addr(), &name, tls.clone()).await);
    }
    let mut preface_only = tls_connection(gt.agency_addr(), &name, tls).await;
    preface_only
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    idle.push(preface_only);
    for connection in idle {
        closed_by_server(connection).await;
    }

    // The follower has now been quiet for longer than the idle timeout.
    let mut inm = region.agency("MX", "destination-authority").await;
    let accepted = inm.submit(notice_to("GT", "")).await.unwrap();
    let item = tokio::time::timeout(DEADLINE, following.message())
        .await
        .expect("the follower's stream delivers")
        .expect("the follower's stream is still open")
        .expect("an item");
    assert_eq!(item.body.unwrap().message_id, accepted.message_id);
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_whose_connection_went_silent_resumes_delivery_on_a_new_one() {
    let captured = Captured::default();
    let _logs = captured.start();
    let region = Region::new(&["MX", "GT"]);
    let mut gt_config = region.config("GT");
    gt_config.limits.streams_per_peer = 1;
    // GT's own keepalive would free the dead stream only after the test's deadline:
    // delivery must resume because MX's new stream replaces it.
    gt_config.limits.keepalive_interval_ms = 60_000;
    gt_config.limits.keepalive_timeout_ms = 60_000;
    let _gt = region.start_with(gt_config).await;
    let proxy = Proxy::start(region.peer_addr("GT")).await;
    let mut mx_config = region.config("MX");
    mx_config
        .peers
        .get_mut(&retorno_tests::country("GT"))
        .unwrap()
        .address = proxy.address().to_string();
    mx_config.delivery.keepalive_interval_ms = 200;
    mx_config.delivery.keepalive_timeout_ms = 500;
    let mx = region.start_with(mx_config).await;
    let mut inm = region.agency("MX", "destination-authority").await;
    let mut sbs = region.agency("GT", "child-protection").await;

    inm.submit(notice_to("GT", "")).await.unwrap();
    inbox_with(&mut sbs, 0, 1).await;
    proxy.silence();
    for _ in 0..2 {
        inm.submit(notice_to("GT", "")).await.unwrap();
    }
    let items = inbox_with(&mut sbs, 0, 3).await;
    assert_eq!(items.len(), 3);
    eventually("MX's outbox to empty", || async {
        (mx.outbox_depth(retorno_tests::country("GT")) == 0).then_some(())
    })
    .await;
    assert!(proxy.connections() >= 2, "MX reconnected");
    let interrupted = captured
        .wait_for("MX to say why delivery stopped", "delivery interrupted")
        .await;
    assert!(
        interrupted.contains("keepalive expired") && interrupted.contains("peer=GT"),
        "MX names the cause: {interrupted}"
    );
    captured
        .wait_for(
            "GT to say that the new stream replaced the dead one",
            "replaces the peer's oldest idle one",
        )
        .await;
}

/// Everything logged on this test's thread, from DEBUG up.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures this thread's logs (a current-thread runtime runs every
    /// task of the test, the gateways' included, on it) until the guard drops.
    fn start(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn wait_for(&self, what: &str, needle: &str) -> String {
        eventually(what, || async {
            self.lines().into_iter().find(|line| line.contains(needle))
        })
        .await
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_servers_keepalive_closes_a_silent_peer_connection_and_says_so() {
    let captured = Captured::default();
    let _logs = captured.start();
    let region = Region::new(&["MX", "GT"]);
    let mut gt_config = region.config("GT");
    gt_config.limits.keepalive_interval_ms = 100;
    gt_config.limits.keepalive_timeout_ms = 300;
    let _gt = region.start_with(gt_config).await;
    let proxy = Proxy::start(region.peer_addr("GT")).await;
    let mut mx_config = region.config("MX");
    mx_config
        .peers
        .get_mut(&retorno_tests::country("GT"))
        .unwrap()
        .address = proxy.address().to_string();
    // MX does not notice the silence in this test: GT must.
    mx_config.delivery.keepalive_interval_ms = 600_000;
    let _mx = region.start_with(mx_config).await;
    let mut inm = region.agency("MX", "destination-authority").await;
    let mut sbs = region.agency("GT", "child-protection").await;
    inm.submit(notice_to("GT", "")).await.unwrap();
    inbox_with(&mut sbs, 0, 1).await;

    proxy.silence();
    let line = captured
        .wait_for("GT to close the silent connection", "keepalive expired")
        .await;
    assert!(line.contains("urn:retorno:gateway:MX"), "{line}");
    assert!(line.contains("listener=\"peer\""), "{line}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_leaves_before_the_handshake_is_no_warning_but_a_refused_certificate_is() {
    let captured = Captured::default();
    let _logs = captured.start();
    let region = Region::new(&["MX", "GT"]);
    let mx = region.start("MX").await;

    drop(
        tokio::net::TcpStream::connect(mx.agency_addr())
            .await
            .unwrap(),
    );
    let mut half = tokio::net::TcpStream::connect(mx.agency_addr())
        .await
        .unwrap();
    // The start of a TLS ClientHello record, then gone.
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    drop(half);
    captured
        .wait_for(
            "the abandoned handshakes to be logged",
            "the client left before the TLS handshake completed",
        )
        .await;

    let refused = Client::connect(&region.profile_at("MX", "GT", "consulate")).await;
    if let Ok(mut client) = refused {
        assert!(client.cases(None).await.is_err());
    }
    captured
        .wait_for("the refused certificate to be logged", "connection refused")
        .await;

    let lines = captured.lines();
    let abandoned: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("left before the TLS handshake"))
        .collect();
    assert_eq!(abandoned.len(), 2, "{abandoned:#?}");
    assert!(
        abandoned.iter().all(|line| line.contains("DEBUG")),
        "{abandoned:#?}"
    );
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains(" WARN "))
        .collect();
    assert!(
        warnings.iter().all(|line| !line.contains("handshake eof")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|line| line.contains("connection refused") && line.contains("listener=\"agency\"")),
        "a refused certificate stays a warning: {warnings:#?}"
    );
}
