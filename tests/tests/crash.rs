//! Killing a gateway loses nothing it accepted. Mexico's gateway runs as a
//! separate process and is killed with SIGKILL (no shutdown, no final flush)
//! with a full outbox, and again while it is delivering; each time it restarts
//! on the same data folder, and Guatemala ends up with every notice exactly
//! once, in the order Mexico accepted them.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    path::Path,
    process::{Child, Command, Stdio},
};

use retorno_proto::v1::DeliveryState;
use retorno_tests::{Region, eventually, inbox_now, inbox_with, notice_to};

/// A gateway in its own process; killed with SIGKILL when dropped.
struct GatewayProcess(Child);

impl GatewayProcess {
    fn run(config: &Path, log: &Path) -> GatewayProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gateway-process"))
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        GatewayProcess(child)
    }

    /// SIGKILL: the process gets no chance to flush or say goodbye.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_killed_gateway_restarts_and_delivers_everything_it_accepted_exactly_once() {
        let region = Region::new(&["MX", "GT"]);
        region.take_offline("GT");
        region.take_offline("MX");
        let config = region.write_config("MX");
        let log = region.dir().join("mx.log");

        let mx = GatewayProcess::run(&config, &log);
        let mut inm = region.agency_when_up("MX", "destination-authority").await;
        let mut sent = Vec::new();
        for i in 0..150 {
            let answer = inm
                .submit(notice_to("GT", &format!("MX-2026-{i:04}")))
                .await
                .unwrap();
            sent.push(answer.message_id);
        }
        drop(inm);
        mx.kill();

        let gt = region.start("GT").await;
        let mut sbs = region.agency("GT", "child-protection").await;

        // Restart, and kill again as soon as delivery is under way.
        let mx = GatewayProcess::run(&config, &log);
        inbox_with(&mut sbs, 0, 1).await;
        mx.kill();

        let mx = GatewayProcess::run(&config, &log);
        let received: Vec<String> = inbox_with(&mut sbs, 0, sent.len())
            .await
            .into_iter()
            .map(|item| item.body.unwrap().message_id)
            .collect();
        assert_eq!(received, sent, "every accepted notice, in order");

        let mut inm = region.agency_when_up("MX", "destination-authority").await;
        let last = sent.last().unwrap().clone();
        eventually("MX to hold the receipt of the last notice", || {
            let (mut inm, last) = (inm.clone(), last.clone());
            async move { (inm.status(&last).await.ok()?.state() == DeliveryState::Delivered).then_some(()) }
        })
        .await;
        for id in &sent {
            assert_eq!(
                inm.status(id).await.unwrap().state(),
                DeliveryState::Delivered
            );
        }
        assert_eq!(
            inbox_now(&mut sbs, 0).await.len(),
            sent.len(),
            "none stored twice"
        );
        drop(mx);
        gt.shutdown().await;
    }
}
