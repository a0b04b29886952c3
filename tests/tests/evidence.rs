//! Evidence of an exchange, proved later and offline: Guatemala's gateway
//! exports what it received from Mexico, and anyone holding only the regional
//! root can check who sent what, who stored it, and that nothing was altered.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

use retorno_gateway::{evidence, store::Store, tls};
use retorno_proto::v1::DeliveryState;
use retorno_tests::{Region, country, eventually, notice_to};

async fn exchange(region: &Region) -> String {
    let mx = region.start("MX").await;
    let gt = region.start("GT").await;
    let mut inm = region.agency("MX", "destination-authority").await;
    let sent = inm.submit(notice_to("GT", "MX-2026-0801")).await.unwrap();
    eventually("GT's receipt", || {
        let (mut inm, id) = (inm.clone(), sent.message_id.clone());
        async move { (inm.status(&id).await.ok()?.state() == DeliveryState::Delivered).then_some(()) }
    })
    .await;
    mx.shutdown().await;
    gt.shutdown().await;
    sent.message_id
}

fn failures(checks: &[evidence::Check]) -> Vec<String> {
    checks
        .iter()
        .filter_map(|c| {
            c.outcome
                .as_ref()
                .err()
                .map(|why| format!("{}: {why}", c.what))
        })
        .collect()
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn an_exchange_is_proved_offline_with_the_regional_root_alone() {
        let region = Region::new(&["MX", "GT"]);
        let id = exchange(&region).await;
        let config = region.config("GT");
        let bundle = {
            let store = eventually("GT's database to be released", || async {
                Store::open(&config.data_dir, &config.storage).ok()
            })
            .await;
            evidence::export(&store, id.parse().unwrap(), country("GT")).unwrap()
        };
        let root = tls::load_certificates(&region.pki().root_ca()).unwrap();

        let checks = evidence::verify(&bundle, &root);
        assert_eq!(failures(&checks), Vec::<String>::new());
        assert_eq!(checks.len(), 8);

        // One byte of the child's notice changed: the sender's seal and the receipt both say so.
        let mut altered = bundle.clone();
        let envelope = altered.envelope.as_mut().unwrap();
        let last = envelope.body.len() - 1;
        envelope.body[last] ^= 1;
        let failed = failures(&evidence::verify(&altered, &root));
        assert!(
            failed
                .iter()
                .any(|f| f.starts_with("the sender's seal covers the envelope body")),
            "{failed:?}"
        );
        assert!(
            failed
                .iter()
                .any(|f| f.starts_with("the receipt names this message and its exact bytes")),
            "{failed:?}"
        );

        // The receipt's seal swapped for the envelope's: refused.
        let mut swapped = bundle.clone();
        swapped.receipt.as_mut().unwrap().seal = bundle.envelope.as_ref().unwrap().seal.clone();
        let failed = failures(&evidence::verify(&swapped, &root));
        assert!(
            failed
                .iter()
                .any(|f| f.starts_with("the receiver's seal covers the receipt body")),
            "{failed:?}"
        );

        // Under another region's root, neither gateway is certified.
        let elsewhere = Region::new(&["MX"]);
        let foreign_root = tls::load_certificates(&elsewhere.pki().root_ca()).unwrap();
        let failed = failures(&evidence::verify(&bundle, &foreign_root));
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(
            failed
                .iter()
                .all(|f| f.contains("not certified by the regional root")),
            "{failed:?}"
        );

        // The program says the same, and its exit code tells a script.
        let file = region.dir().join("evidence.json");
        evidence::write(&bundle, &file).unwrap();
        let program = env!("CARGO_BIN_EXE_gateway-process");
        let ok = Command::new(program)
            .args(["evidence", "verify"])
            .arg(&file)
            .arg("--root")
            .arg(region.pki().root_ca())
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(String::from_utf8_lossy(&ok.stdout).contains("the evidence holds: 8 checks passed"));
        let bad = Command::new(program)
            .args(["evidence", "verify"])
            .arg(&file)
            .arg("--root")
            .arg(elsewhere.pki().root_ca())
            .output()
            .unwrap();
        assert!(!bad.status.success());
        assert!(String::from_utf8_lossy(&bad.stdout).contains("FAILED  the sender's certificate"));
    }
}
