//! What a newcomer meets in the first hour: refusals that name the field
//! and the fix, and the defaults the gateway can give (issue 14), and
//! timestamps checked as protobuf defines them (issue 9, point 3).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use retorno_client::compose;
use retorno_proto::v1::{self, submit_request::Payload};
use retorno_tests::{Region, notice_to, submit_case_message, wait_for_state, weekday_ahead};
use tonic::Code;

/// A proposal for the README's case at 10:00 on a weekday ahead.
fn proposal_at_ten() -> Payload {
    let at = format!("{} 10:00", weekday_ahead("America/Guatemala"));
    compose::proposal(&compose::Proposal {
        id: "P1",
        cases: Vec::new(),
        point: "GT-TECUN-UMAN",
        at: &at,
        time_zone: "America/Guatemala",
        mode: "land",
        reference: "bus INM-0452",
        escorts: &["Lucía Gómez/INM".to_owned()],
    })
    .unwrap()
}

#[tokio::test]
async fn a_proposal_whose_arrival_has_negative_nanos_is_refused_naming_the_field() {
    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let _gt = region.start("GT").await;
    let inm = region.agency("MX", "destination-authority").await;
    inm.clone()
        .submit(notice_to("GT", "MX-2026-0001"))
        .await
        .unwrap();

    let Payload::ArrivalProposal(mut proposal) = proposal_at_ten() else {
        unreachable!("compose::proposal builds a proposal")
    };
    proposal.arrival.as_mut().unwrap().nanos = -5;
    let status = submit_case_message(&inm, "MX-2026-0001", Payload::ArrivalProposal(proposal))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("arrival_proposal.arrival.nanos: -5 is not 0 to 999999999"),
        "{}",
        status.message()
    );
    // Nothing changed: the case still waits for a proposal.
    wait_for_state(&inm, "MX-2026-0001", v1::CaseState::Notified).await;
}

/// The error of connecting with `profile` and making one call.
async fn first_call_error(profile: &retorno_client::Profile) -> String {
    // With TLS 1.3 a refused client certificate shows on the first call, not at connect.
    match retorno_client::Client::connect(profile).await {
        Err(error) => error.to_string(),
        Ok(mut client) => client
            .submit(notice_to("GT", "MX-2026-0001"))
            .await
            .expect_err("the call must fail")
            .to_string(),
    }
}

#[tokio::test]
async fn a_gateway_that_is_not_running_is_named_once_with_what_to_check() {
    let region = Region::new(&["MX"]);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = free.local_addr().unwrap().to_string();
    drop(free);
    let mut profile = region.profile("MX", "destination-authority");
    profile.gateway = address.clone();

    let error = first_call_error(&profile).await;
    assert_eq!(
        error,
        format!(
            "nothing listens at {address}: is the gateway running, and is {address} its address?"
        )
    );
}

#[tokio::test]
async fn a_certificate_the_gateway_refuses_is_named_with_its_likely_cause() {
    let region = Region::new(&["MX", "GT"]);
    let rogue = Region::new(&["MX"]);
    let _mx = region.start("MX").await;
    let address = region.profile("MX", "destination-authority").gateway;

    // Guatemala's child protection, at Mexico's gateway: another country's
    // agency CA. The gateway's alert is often lost under the call (TLS 1.3
    // refuses a client certificate after the client's handshake, and the
    // call's write fails first); the client then asks again and reads it.
    let mut foreign = region.profile("GT", "child-protection");
    foreign.gateway = address.clone();
    foreign.tls_name = Some("gateway.mx.retorno.test".into());
    let alert = format!(
        "the gateway at {address} refused this certificate (UnknownCA): it was not issued by a CA that gateway trusts (another country's agency CA, or another PKI)"
    );
    assert_eq!(first_call_error(&foreign).await, alert);
    for _ in 0..5 {
        let mut client = retorno_client::Client::connect(&foreign).await.unwrap();
        let listed = client.cases(None).await.unwrap_err();
        assert_eq!(listed.to_string(), alert);
        let subscribed = client.subscribe(None, false).await.unwrap_err();
        assert_eq!(subscribed.to_string(), alert);
    }

    // INM's certificate from another PKI whose CA has the same name.
    let mut other_pki = region.profile("MX", "destination-authority");
    other_pki.cert = rogue.pki().agency_cert("MX", "destination-authority");
    other_pki.key = rogue.pki().agency_key("MX", "destination-authority");
    let alert = format!(
        "the gateway at {address} refused this certificate (DecryptError): its issuer has the name of a CA that gateway trusts but another key (a CA from another PKI, or a dev PKI made again since)"
    );
    assert_eq!(first_call_error(&other_pki).await, alert);
}

#[tokio::test]
async fn a_proposal_takes_its_time_zone_from_the_origins_published_policy() {
    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let _gt = region.start("GT").await;
    let mut inm = region.agency("MX", "destination-authority").await;
    inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();

    // Mexico's gateway holds Guatemala's policy once it has fetched it.
    let point = retorno_tests::eventually("GT's policy at MX", || {
        let mut inm = inm.clone();
        async move {
            inm.origin_point("MX-2026-0001", Some("GT-TECUN-UMAN"))
                .await
                .ok()
        }
    })
    .await;
    assert_eq!(point.time_zone, "America/Guatemala");
    let tz = compose::point_time_zone(None, &point).unwrap();
    let at = format!("{} 10:00", weekday_ahead("America/Guatemala"));
    let proposal = compose::proposal(&compose::Proposal {
        id: "P1",
        cases: Vec::new(),
        point: "GT-TECUN-UMAN",
        at: &at,
        time_zone: &tz,
        mode: "land",
        reference: "",
        escorts: &["Lucía Gómez/INM".to_owned()],
    })
    .unwrap();
    let answer = submit_case_message(&inm, "MX-2026-0001", proposal)
        .await
        .unwrap();
    assert_eq!(answer.case_state(), v1::CaseState::ArrivalProposed);

    // A point the origin does not publish, and a country that is no peer, are named.
    let error = inm
        .origin_point("MX-2026-0001", Some("GT-NOWHERE"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "--point: GT-NOWHERE is not a point of entry in GT's published reception policy"
    );
    let own = inm.reception_policy("MX").await.unwrap();
    assert_eq!(own.points[0].code, "MX-AICM");
    let Err(retorno_client::ClientError::Status(status)) = inm.reception_policy("ZZ").await else {
        panic!("ZZ is not a peer")
    };
    assert_eq!(status.code(), Code::NotFound);

    // Guatemala's child protection counters in the zone of the open proposal's point.
    let mut sbs = region.agency("GT", "child-protection").await;
    wait_for_state(&sbs, "MX-2026-0001", v1::CaseState::ArrivalProposed).await;
    let open = sbs.origin_point("MX-2026-0001", None).await.unwrap();
    assert_eq!(open.code, "GT-TECUN-UMAN");
    assert_eq!(open.time_zone, "America/Guatemala");
}

/// `retorno-gateway dev` for Mexico and Guatemala in `dir`.
fn dev_region(dir: &std::path::Path, peer_port: u16, agency_port: u16) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-process"));
    command
        .args(["dev", "--countries", "MX,GT", "--dir"])
        .arg(dir)
        .args(["--peer-port", &peer_port.to_string()])
        .args(["--agency-port", &agency_port.to_string()])
        .env("RUST_LOG", "info");
    command
}

#[tokio::test]
async fn the_dev_region_names_each_gateway_in_its_logs_and_says_when_one_already_runs() {
    use std::{io::BufRead as _, process::Stdio};
    let dir = tempfile::tempdir().unwrap();
    let (peer_port, agency_port) = (
        retorno_gateway::dev::free_ports(2).unwrap(),
        retorno_gateway::dev::free_ports(2).unwrap(),
    );
    let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut region = dev_region(&dir.path().join("region"), peer_port, agency_port)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(region.stdout.take().unwrap());
    // Reading the region's output until it says how to try it is the wait:
    // it prints that once every gateway is listening. The rest is read
    // too, to the end: a pipe closed early would fail the region's next
    // line.
    let (said, printed) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = stdout.lines().map_while(Result::ok);
        let upto_inbox: Vec<String> = lines
            .by_ref()
            .take_while(|line| !line.contains("inbox"))
            .collect();
        let _ = said.send(upto_inbox);
        lines.for_each(drop);
    });
    let printed: Vec<String> = printed.await.unwrap();
    let try_line = printed
        .iter()
        .find(|line| line.contains("send notice"))
        .expect("a try line");
    assert!(
        try_line.ends_with("--to GT --case MX-2026-0001"),
        "{try_line}"
    );

    // A second region on the same ports: one line, the cause said once, and the likely reason.
    let second = dev_region(&dir.path().join("other"), peer_port, agency_port)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let said = String::from_utf8(second.stderr).unwrap();
    let error = said
        .lines()
        .find(|line| line.starts_with("retorno-gateway: "))
        .expect("an error line");
    assert!(error.contains("is a dev region already running"), "{error}");
    assert_eq!(
        error.matches("Address already in use").count(),
        1,
        "{error}"
    );

    std::process::Command::new("kill")
        .args(["-INT", &region.id().to_string()])
        .status()
        .unwrap();
    assert!(region.wait().unwrap().success());
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    let log_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Z  INFO "))
        .collect();
    assert!(log_lines.len() > 4, "{log}");
    for line in &log_lines {
        assert!(
            line.contains("gateway{country=MX}") || line.contains("gateway{country=GT}"),
            "a line that does not say which gateway wrote it: {line}"
        );
    }
    assert!(!log.contains('\u{1b}'), "colour codes in a log file: {log}");
}

/// Runs `retorno-gateway check-config` on `file`, off the runtime's threads
/// (the gateway it checks against runs on them).
async fn check_config(file: &std::path::Path, more: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-process"));
    command
        .arg("check-config")
        .args(more)
        .arg("--config")
        .arg(file);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn check_config_reports_each_peer_and_a_delegation_without_its_revocation_list() {
    let region = Region::new(&["MX", "GT", "HN"]);
    let _gt = region.start("GT").await;
    region.take_offline("HN");
    let mut config = region.config("MX");
    config.delegations = vec![region.delegation("GT")];
    let file = region.dir().join("mx.toml");
    std::fs::write(&file, config.to_toml().unwrap()).unwrap();

    let checked = check_config(&file, &["--peers"]).await;
    let out = String::from_utf8(checked.stdout).unwrap();
    let err = String::from_utf8(checked.stderr).unwrap();
    assert!(!checked.status.success(), "{out}");
    let line = |cc: &str| {
        out.lines()
            .find(|line| line.starts_with(&format!("  {cc}  ")))
            .unwrap_or_else(|| panic!("no line for {cc}: {out}"))
            .to_owned()
    };
    let (gt, hn) = (region.peer_addr("GT"), region.peer_addr("HN"));
    assert_eq!(
        line("GT"),
        format!("  GT  {gt}  reachable, TLS accepted, policy fetched (1 point of entry)")
    );
    assert_eq!(
        line("HN"),
        format!(
            "  HN  {hn}  NOT reachable: nothing listens at {hn}: is the gateway running, and is {hn} its address?"
        )
    );
    assert!(err.contains("1 of 2 peers are not ready"), "{err}");
    assert!(
        out.contains("warning: delegations[0]: tls.crls has no revocation list of GT's agency CA"),
        "{out}"
    );

    // With GT's agency CRL listed (its consulate's certificate revoked), the warning goes.
    let consulate = retorno_certs_dev::Holder::Agency {
        country: "GT".into(),
        role: "consulate".into(),
    };
    let crl = retorno_certs_dev::revoke(region.pki(), &consulate).unwrap();
    config.tls.crls = vec![crl];
    std::fs::write(&file, config.to_toml().unwrap()).unwrap();
    let checked = check_config(&file, &[]).await;
    let out = String::from_utf8(checked.stdout).unwrap();
    assert!(checked.status.success(), "{out}");
    assert!(!out.contains("warning: delegations"), "{out}");
}

/// Log lines written on the test's thread (where a current-thread runtime
/// polls every gateway task), for a thread-local subscriber.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The first line holding every one of `parts`.
    fn line_with(&self, parts: &[&str]) -> Option<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .find(|line| parts.iter().all(|part| line.contains(part)))
            .map(str::to_owned)
    }
}

#[tokio::test]
async fn a_peer_that_cannot_be_reached_is_logged_with_its_address_the_cause_and_the_queue() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    // Another test's thread may have met a callsite (the courier's span)
    // before this subscriber existed, and tracing caches that nobody wanted it.
    tracing::callsite::rebuild_interest_cache();

    let region = Region::new(&["MX", "GT"]);
    region.take_offline("GT");
    let _mx = region.start("MX").await;
    let mut inm = region.agency("MX", "destination-authority").await;
    inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
    inm.submit(notice_to("GT", "MX-2026-0002")).await.unwrap();

    let gt = region.peer_addr("GT").to_string();
    let address = format!("address={gt}");
    let cause = format!("cause=nothing listens at {gt}");
    // The courier's line names the peer by its address (its `delivery{peer=GT}`
    // span is not asserted: thread-local subscribers see spans unreliably).
    let interrupted = retorno_tests::eventually("the courier's warning", || {
        let line = captured.line_with(&[
            " WARN ",
            "delivery interrupted",
            &address,
            &cause,
            "queued=2",
        ]);
        async move { line }
    })
    .await;
    assert!(interrupted.contains("retry_in_ms="), "{interrupted}");
    retorno_tests::eventually("the policy fetch's warning", || {
        let line = captured.line_with(&[" WARN ", "reception policy not fetched", &address]);
        async move { line }
    })
    .await;
}
