//! The README's walkthrough ("Five minutes" and "The whole case": a notice,
//! a summary, arrival times refused, countered and agreed, a handoff refused
//! as too early and then made, a delegated handoff, reception, follow-up and
//! both readers' case views) run as written against a dev region, with the
//! real `retorno` program ([`walkthrough`]), so that the README cannot drift
//! from the programs; and the README's other claims about the program.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod walkthrough;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use retorno_gateway::{Config, Gateway, dev};
use walkthrough::{DEADLINE, run_in, walkthrough_day};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_walkthrough_runs_as_written() {
    walkthrough::walk(
        "../README.md",
        &["## Five minutes", "## The whole case"],
        "C",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_certificate_is_named_as_the_readme_says_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let options = dev::DevOptions {
        dir: dir.path().join(".retorno-dev"),
        countries: vec!["MX".parse().unwrap(), "GT".parse().unwrap()],
        peer_port: dev::free_ports(2).unwrap(),
        agency_port: dev::free_ports(2).unwrap(),
        metrics_port: dev::free_ports(2).unwrap(),
        danger_clock_ahead_days: 0,
    };
    let files = dev::prepare(&options).unwrap();
    let mx = Gateway::start(Config::load(&files[0]).unwrap())
        .await
        .unwrap();
    // Guatemala's child protection, pointed at Mexico's gateway.
    let profiles = options.dir.join("GT/profiles");
    let mut profile =
        retorno_client::Profile::load(&profiles.join("child-protection.toml")).unwrap();
    profile.gateway = mx.agency_addr().to_string();
    profile.tls_name = Some("gateway.mx.retorno.test".into());
    profile.ca = std::fs::canonicalize(&profile.ca).unwrap();
    profile.cert = std::fs::canonicalize(&profile.cert).unwrap();
    profile.key = std::fs::canonicalize(&profile.key).unwrap();
    let file = profiles.join("at-mx.toml");
    std::fs::write(&file, profile.to_toml().unwrap()).unwrap();

    let expected = format!(
        "retorno: the gateway at {} refused this certificate (UnknownCA): it was not issued by a CA that gateway trusts (another country's agency CA, or another PKI)",
        profile.gateway
    );
    // The gateway's alert often arrives after the call's write has failed;
    // the program must name the refusal anyway, on every try.
    for command in [
        "inbox",
        "case list",
        "status 01a22a34-4d95-750b-a3cf-17f05588d2c3",
    ] {
        for _ in 0..3 {
            let said = walkthrough::run(
                dir.path(),
                &format!("retorno --profile {} {command}", file.display()),
                "C",
            );
            assert_eq!(said, vec![expected.clone()], "retorno {command}");
        }
    }
    // The same, and a command without a connection, told in Spanish.
    let spanish = walkthrough::run(
        dir.path(),
        &format!("retorno --profile {} inbox", file.display()),
        "es_GT.UTF-8",
    );
    assert_eq!(
        spanish,
        vec![format!(
            "retorno: la pasarela en {} rechazó este certificado (UnknownCA): no lo emitió una CA en la que esa pasarela confíe (la CA de las instituciones de otro país, u otra PKI)",
            profile.gateway
        )]
    );
    let missing = walkthrough::run(
        dir.path(),
        "retorno --profile no-such-profile.toml inbox",
        "es_GT.UTF-8",
    );
    assert_eq!(
        missing,
        ["retorno: perfil no-such-profile.toml: ese archivo no existe"]
    );
    let mut broken = profile.clone();
    broken.cert = dir.path().join("missing.pem");
    let broken_file = profiles.join("broken.toml");
    std::fs::write(&broken_file, broken.to_toml().unwrap()).unwrap();
    let no_cert = walkthrough::run(
        dir.path(),
        &format!("retorno --profile {} inbox", broken_file.display()),
        "es_GT.UTF-8",
    );
    assert_eq!(
        no_cert,
        [format!(
            "retorno: {}: ese archivo no existe (el `cert` del perfil)",
            broken.cert.display()
        )]
    );
    let in_english = walkthrough::run(
        dir.path(),
        &format!("retorno --profile {} inbox", broken_file.display()),
        "C",
    );
    assert!(
        in_english[0].ends_with("(the profile's `cert` or `key`, or --cert or --key)"),
        "{in_english:?}"
    );
    let nowhere = walkthrough::run(dir.path(), "retorno inbox", "es_GT.UTF-8");
    assert!(
        nowhere[0].starts_with("retorno: falta la conexión: indique --profile ARCHIVO"),
        "{nowhere:?}"
    );
    mx.shutdown().await;
}

/// Runs `retorno ARGS` under a Spanish locale until its output holds
/// `wanted` (delivery between gateways is asynchronous); the last output.
async fn until(dir: &Path, args: &[&str], wanted: &str) -> String {
    let started = Instant::now();
    loop {
        let said = run_in(dir, "es_GT.UTF-8", args);
        if said.contains(wanted) || started.elapsed() > DEADLINE {
            return said;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 11: the program follows LANG. The README's refused 21:30 arrival,
/// asked with `LANG=es_GT.UTF-8`, is told in Spanish, in the region's own
/// words, with the allowed slots; the program's own sentences follow too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_night_arrival_is_told_in_spanish_under_a_spanish_locale() {
    let dir = tempfile::tempdir().unwrap();
    let options = dev::DevOptions {
        dir: dir.path().join(".retorno-dev"),
        countries: vec!["MX".parse().unwrap(), "GT".parse().unwrap()],
        peer_port: dev::free_ports(2).unwrap(),
        agency_port: dev::free_ports(2).unwrap(),
        metrics_port: dev::free_ports(2).unwrap(),
        danger_clock_ahead_days: 0,
    };
    let mut gateways = Vec::new();
    for file in dev::prepare(&options).unwrap() {
        gateways.push(Gateway::start(Config::load(&file).unwrap()).await.unwrap());
    }
    let inm = ".retorno-dev/MX/profiles/destination-authority.toml";
    let notice = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/notice-mx-gt.json");
    let sent = run_in(
        dir.path(),
        "es_GT.UTF-8",
        &[
            "--profile",
            inm,
            "send",
            "notice",
            notice.to_str().unwrap(),
            "--to",
            "GT",
            "--case",
            "MX-2026-0001",
        ],
    );
    assert!(
        sent.starts_with("aceptado: mensaje ")
            && sent.contains("el caso MX-2026-0001 queda en estado: Notificado")
            && sent.contains("queda guardado en la bandeja de salida;"),
        "{sent}"
    );
    let at = format!("{} 21:30", walkthrough_day());
    let propose = [
        "--profile",
        inm,
        "propose",
        "--case",
        "MX-2026-0001",
        "--proposal",
        "P1",
        "--point",
        "GT-TECUN-UMAN",
        "--at",
        &at,
        "--tz",
        "America/Guatemala",
        "--escort",
        "Lucía Gómez/INM",
    ];
    // Until Mexico's gateway has Guatemala's published policy, the refusal is another.
    let started = Instant::now();
    let refused = loop {
        let said = run_in(dir.path(), "es_GT.UTF-8", &propose);
        if said.contains("horario de recepción") || started.elapsed() > DEADLINE {
            break said;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let day = walkthrough_day();
    assert!(
        refused.starts_with(&format!(
            "retorno: la pasarela rechazó la solicitud (InvalidArgument): El arribo del viernes {day} 21:30 es "
        )),
        "{refused}"
    );
    assert!(
        refused.contains("un arribo vespertino o nocturno, fuera del horario de recepción para NNA no acompañados o separados en GT-TECUN-UMAN (08:00–16:00, hora de Guatemala)"),
        "{refused}"
    );
    // The walkthrough's day is a Friday: the same day's last slot, then
    // Saturday, Monday and Tuesday (no reception on Sunday).
    let next_days = [(1, "sábado"), (3, "lunes"), (4, "martes")].map(|(n, weekday)| {
        format!(
            "{weekday} {} 08:00",
            day.checked_add(jiff::Span::new().days(n)).unwrap()
        )
    });
    assert!(
        refused.contains(&format!(
            "Horarios permitidos más cercanos: viernes {day} 15:45; {}.",
            next_days.join("; ")
        )),
        "the slot before and the next three: {refused}"
    );
    // The same refusal under LANG=C is the gateway's own English sentence, as the README shows.
    let english = run_in(dir.path(), "C", &propose);
    assert!(
        english.starts_with("retorno: the gateway refused the request (InvalidArgument): arrival "),
        "{english}"
    );

    // Issue 11, and the program's reading of a case: the inbox, the case and
    // a delivery read in Spanish too, in the console's words for each step.
    let at = format!("{day} 10:00");
    let mut propose = propose;
    propose[10] = &at;
    let proposed = run_in(dir.path(), "es_GT.UTF-8", &propose);
    assert!(
        proposed.contains("el caso MX-2026-0001 queda en estado: Arribo propuesto"),
        "{proposed}"
    );
    let sbs = ".retorno-dev/GT/profiles/child-protection.toml";
    let inbox = until(dir.path(), &["--profile", sbs, "inbox"], "Propuesta P1").await;
    for line in [
        "#1  recibido ",
        "  de MX INM (autoridad del país de destino)  caso MX-2026-0001  mensaje ",
        "    aviso previo: Ana Lucía Pérez Xol, No acompañado, riesgo Medio, punto de recepción GT-TECUN-UMAN desde el ",
        &format!("    Propuesta P1 para 1 NNA en GT-TECUN-UMAN: {day} 10:00 (hora de Guatemala)"),
    ] {
        assert!(inbox.contains(line), "{line:?} in:\n{inbox}");
    }
    let case = until(
        dir.path(),
        &["--profile", inm, "case", "show", "MX-2026-0001"],
        "[entregado]\n  ",
    )
    .await;
    for line in [
        "caso MX-2026-0001  MX -> GT  Arribo propuesto  (No acompañado)\n",
        &format!(
            "propuesta de arribo abierta: P1 en GT-TECUN-UMAN, {day} 10:00 (hora de Guatemala)\n"
        ),
        "historial del caso:\n",
        "  MX INM (autoridad del país de destino)  Aviso previo: No acompañado, riesgo Medio  [entregado]",
    ] {
        assert!(case.contains(line), "{line:?} in:\n{case}");
    }
    let english_words = [
        "received",
        " from ",
        "notice",
        "proposal",
        "delivered",
        "timeline",
    ];
    for text in [&inbox, &case] {
        assert!(
            !english_words.iter().any(|word| text.contains(word)),
            "no English left:\n{text}"
        );
    }
    for gateway in gateways {
        gateway.shutdown().await;
    }
}
