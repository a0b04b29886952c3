//! Issue 4, the audit log: Mexico notifies Guatemala of a child's return,
//! and each gateway's log holds, chained by hashes, what it did: the
//! submit, the delivery, the receipt, the refusals with their reasons and
//! the agencies' reads. `audit verify` walks the chain and every stored seal
//! and says it is intact; then someone with write access to a stopped
//! gateway's files edits an entry, deletes one, or alters a stored receipt
//! or envelope, and `audit verify` names what was changed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

use prost::Message as _;
use retorno_client::{ClientError, compose};
use retorno_gateway::{
    Config,
    audit::{self, AuditEntry, Event, Fault, Report},
    store::{InboxRecord, SentRecord},
};
use retorno_proto::v1::{
    CaseState, DeterminingAuthority, Envelope, Receipt, ReceiptBody, submit_request::Payload,
};
use retorno_tests::{
    Region, country, eventually, notice, notice_to, open_database, open_store, regional_roots,
    sealer, wait_for_state,
};

const CASE: &str = "MX-2026-0001";
/// A notice Guatemala stores but refuses: the determination was made by migration.
const REFUSED_CASE: &str = "MX-2026-0002";

/// Verifies a stopped gateway's log with the library, as `audit verify` does.
async fn verify(region: &Region, config: &Config) -> (Report, Vec<AuditEntry>) {
    let store = open_store(config).await;
    let report = audit::verify(&store, &regional_roots(region), config.country).unwrap();
    let entries = audit::entries(&store).unwrap();
    (report, entries)
}

/// Runs `retorno-gateway audit verify --config FILE` on a stopped gateway
/// and returns whether it succeeded and what it printed.
async fn verify_command(config_file: &std::path::Path) -> (bool, String) {
    eventually("the database to be free for audit verify", || async {
        let output = Command::new(env!("CARGO_BIN_EXE_gateway-process"))
            .args(["audit", "verify", "--config"])
            .arg(config_file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if stderr.contains("cannot open the database") {
            return None;
        }
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        Some((output.status.success(), format!("{stdout}{stderr}")))
    })
    .await
}

fn of(entries: &[AuditEntry], event: Event) -> Vec<&AuditEntry> {
    entries.iter().filter(|e| e.event == event as i32).collect()
}

fn refusal(result: Result<retorno_proto::v1::SubmitResponse, ClientError>) -> tonic::Status {
    match result {
        Err(ClientError::Status(status)) => status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Mexico notifies Guatemala of one child and reads the case; both stop.
/// Returns both configs and the notice's message id.
async fn one_notice(region: &Region) -> (Config, Config, String) {
    let (mx_config, gt_config) = (region.config("MX"), region.config("GT"));
    let mx = region.start_with(mx_config.clone()).await;
    let gt = region.start_with(gt_config.clone()).await;
    let mut inm = region.agency("MX", "destination-authority").await;
    let sent = inm.submit(notice_to("GT", CASE)).await.unwrap();
    eventually("Mexico's outbox to be delivered", || async {
        (mx.outbox_depth(country("GT")) == 0).then_some(())
    })
    .await;
    inm.case(CASE).await.unwrap();
    mx.shutdown().await;
    gt.shutdown().await;
    (mx_config, gt_config, sent.message_id)
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_notice_leaves_an_intact_chain_of_what_each_gateway_did() {
        let region = Region::new(&["MX", "GT"]);
        // Mexico relaxes the best-interest gate for Guatemala, which has not
        // agreed: Guatemala stores such a notice but refuses it.
        let mut mx_config = region.config("MX");
        mx_config.case.relax_best_interest_for = vec![country("GT")];
        let gt_config = region.config("GT");
        let mx = region.start_with(mx_config.clone()).await;
        let gt = region.start_with(gt_config.clone()).await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let sbs = region.agency("GT", "child-protection").await;

        let sent = inm.submit(notice_to("GT", CASE)).await.unwrap();
        wait_for_state(&sbs, CASE, CaseState::Notified).await;

        // A notice with an impossible birth date: refused by validation.
        let mut bad_date = notice_to("GT", "MX-2026-0003");
        if let Some(Payload::AdvanceNotice(notice)) = &mut bad_date.payload {
            let child = notice.child.as_mut().unwrap();
            child.age = Some(retorno_proto::v1::child::Age::BirthDate(
                retorno_proto::v1::Date {
                    year: 2012,
                    month: 2,
                    day: 30,
                },
            ));
        }
        let status = refusal(inm.submit(bad_date).await);
        assert!(status.message().contains("2012-02-30"), "{status:?}");
        // A consulate may not notify: refused by the case rules.
        let mut consulate = region.agency("MX", "consulate").await;
        let status = refusal(consulate.submit(notice_to("GT", "MX-2026-0004")).await);
        assert_eq!(status.code(), tonic::Code::PermissionDenied);

        let mut migration = notice();
        migration.best_interest.as_mut().unwrap().authority_kind =
            DeterminingAuthority::Migration as i32;
        let request = compose::request(REFUSED_CASE, Some("GT"), Payload::AdvanceNotice(migration));
        let refused = inm.submit(request).await.unwrap();
        eventually("Mexico's outbox to be delivered", || async {
            (mx.outbox_depth(country("GT")) == 0).then_some(())
        })
        .await;
        inm.case(CASE).await.unwrap();
        inm.cases(None).await.unwrap();
        mx.shutdown().await;
        gt.shutdown().await;

        // Mexico's own program says the log is intact.
        let (ok, printed) = verify_command(&region.write_config("MX")).await;
        assert!(ok, "{printed}");
        assert!(printed.contains("audit chain intact: "), "{printed}");

        let (report, entries) = verify(&region, &mx_config).await;
        assert!(report.intact(), "{report}");
        assert!(
            printed.contains(&format!(
                "audit chain intact: {} entries, {} seals verified",
                report.chain.entries, report.seals.verified
            )),
            "{printed}"
        );
        assert_eq!(report.chain.entries, entries.len() as u64);
        assert_eq!(
            report.seals.verified, 2,
            "the two receipts Guatemala sealed"
        );
        let inm_urn = "urn:retorno:agency:MX:destination-authority";
        let accepted = of(&entries, Event::SubmitAccepted);
        assert_eq!(accepted.len(), 2);
        assert_eq!(accepted[0].message_id, sent.message_id);
        assert_eq!(accepted[0].case_ids, [CASE]);
        assert!(accepted[0].party.starts_with(inm_urn), "{:?}", accepted[0]);
        let receipts = of(&entries, Event::Receipt);
        let receipt_for = |id: &str| receipts.iter().find(|e| e.message_id == id).unwrap();
        assert_eq!(receipt_for(&sent.message_id).party, "GT");
        assert_eq!(receipt_for(&sent.message_id).detail, "");
        assert!(
            receipt_for(&refused.message_id)
                .detail
                .starts_with("the peer's case rules: advance_notice.best_interest.authority_kind"),
            "{:?}",
            receipt_for(&refused.message_id)
        );
        let refusals: Vec<&str> = of(&entries, Event::SubmitRefused)
            .iter()
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(refusals.len(), 2, "{refusals:?}");
        assert_eq!(
            refusals[0],
            "InvalidArgument: advance_notice.child.birth_date"
        );
        assert!(
            refusals[1].starts_with("case rules (Permission): a consulate agency may not send"),
            "{refusals:?}"
        );
        let reads = of(&entries, Event::CaseRead);
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0].case_ids, [CASE]);
        assert!(reads[0].party.starts_with(inm_urn));
        assert_eq!(of(&entries, Event::CasesListed).len(), 1);
        // Reasons name the field, never the value: the refused birth date is not kept.
        for entry in &entries {
            let text = format!("{entry:?}");
            for personal in ["2012", "Ana Lucía", "Pérez Xol", "RENAP"] {
                assert!(!text.contains(personal), "{personal} in {entry:?}");
            }
        }

        let (report, entries) = verify(&region, &gt_config).await;
        assert!(report.intact(), "{report}");
        assert_eq!(
            report.seals.verified, 4,
            "Mexico's seals over two envelopes, Guatemala's over two receipts"
        );
        let delivered = of(&entries, Event::Delivered);
        assert_eq!(delivered.len(), 1);
        assert_eq!(
            (
                delivered[0].message_id.as_str(),
                delivered[0].party.as_str(),
                delivered[0].case_ids.as_slice()
            ),
            (sent.message_id.as_str(), "MX", [CASE.to_owned()].as_slice())
        );
        let stored_refused = of(&entries, Event::StoredRefused);
        assert_eq!(stored_refused.len(), 1);
        assert_eq!(stored_refused[0].case_ids, [REFUSED_CASE]);
        assert!(
            stored_refused[0]
                .detail
                .starts_with("case rules: advance_notice.best_interest.authority_kind"),
            "{:?}",
            stored_refused[0]
        );
        assert!(
            of(&entries, Event::CaseRead).iter().all(|e| e
                .party
                .starts_with("urn:retorno:agency:GT:child-protection")),
            "Guatemala's child protection read the case while it waited for it"
        );
        assert!(!of(&entries, Event::CaseRead).is_empty());

        // Retention purges the refused notice's envelope: its seal can no
        // longer be checked, and verify says so instead of failing. The
        // purge is in the chain, naming the message, its case and sender.
        let store = open_store(&gt_config).await;
        let id = uuid::Uuid::parse_str(&refused.message_id).unwrap();
        let seen = store.seen(country("MX"), id).unwrap().unwrap();
        assert!(store.purge_inbox_entry(seen.cursor, 1, "a test's rule").unwrap());
        assert!(
            !store.purge_inbox_entry(seen.cursor, 2, "a test's rule").unwrap(),
            "nothing is left to purge, and nothing is logged twice"
        );
        store.commit().await.unwrap();
        drop(store);
        let (report, entries) = verify(&region, &gt_config).await;
        assert!(report.intact(), "{report}");
        assert_eq!((report.seals.verified, report.seals.purged), (3, 1));
        let purged = of(&entries, Event::EnvelopePurged);
        assert_eq!(purged.len(), 1, "{purged:?}");
        assert_eq!(
            (
                purged[0].message_id.as_str(),
                purged[0].party.as_str(),
                purged[0].case_ids.as_slice(),
                purged[0].detail.as_str()
            ),
            (
                refused.message_id.as_str(),
                "MX",
                [REFUSED_CASE.to_owned()].as_slice(),
                format!("inbox cursor {}: a test's rule", seen.cursor).as_str()
            )
        );
        assert!(
            report
                .to_string()
                .contains("note: 1 inbox envelopes purged by retention were skipped"),
            "{report}"
        );
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn an_entry_edited_on_disk_is_named_by_its_sequence_number() {
        let region = Region::new(&["MX", "GT"]);
        let (mx_config, _, message_id) = one_notice(&region).await;
        let (report, entries) = verify(&region, &mx_config).await;
        assert!(report.intact(), "{report}");
        let receipt = of(&entries, Event::Receipt)[0].clone();
        assert_eq!(receipt.message_id, message_id);

        // One byte of the receipt entry's case id changes; its hash is left as it was.
        let db = open_database(&mx_config).await;
        let log = db.open_tree("audit").unwrap();
        let key = receipt.seq.to_be_bytes();
        let original = log.get(key).unwrap().unwrap().to_vec();
        let at = original
            .windows(CASE.len())
            .position(|w| w == CASE.as_bytes())
            .unwrap();
        let mut edited = original.clone();
        edited[at + CASE.len() - 1] = b'9';
        log.insert(key, edited).unwrap();
        db.flush().unwrap();
        drop((log, db));

        let (report, _) = verify(&region, &mx_config).await;
        assert!(!report.intact());
        let broken = report.chain.broken.clone().unwrap();
        assert_eq!(
            (broken.seq, broken.fault),
            (receipt.seq, Fault::HashMismatch)
        );
        assert_eq!(
            report.chain.entries,
            receipt.seq - 1,
            "entries before it verify"
        );
        let text = report.to_string();
        assert!(
            text.contains(&format!(
                "audit entry {} (receipt of message {message_id}",
                receipt.seq
            )) && text.contains("hash mismatch"),
            "{text}"
        );
        let (ok, printed) = verify_command(&region.write_config("MX")).await;
        assert!(!ok, "audit verify exits non-zero: {printed}");
        assert!(
            printed.contains(&format!("audit entry {} (receipt", receipt.seq)),
            "{printed}"
        );

        // Put back, the entry verifies again.
        let db = open_database(&mx_config).await;
        db.open_tree("audit")
            .unwrap()
            .insert(key, original)
            .unwrap();
        db.flush().unwrap();
        drop(db);
        let (report, _) = verify(&region, &mx_config).await;
        assert!(report.intact(), "{report}");
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn an_entry_deleted_from_the_middle_breaks_the_link() {
        let region = Region::new(&["MX", "GT"]);
        let (mx_config, _, _) = one_notice(&region).await;
        let (report, entries) = verify(&region, &mx_config).await;
        assert!(report.intact(), "{report}");
        let kinds: Vec<i32> = entries.iter().map(|e| e.event).collect();
        assert_eq!(
            kinds,
            [Event::SubmitAccepted, Event::Receipt, Event::CaseRead].map(|e| e as i32),
            "submit, receipt, read"
        );

        let db = open_database(&mx_config).await;
        db.open_tree("audit")
            .unwrap()
            .remove(2u64.to_be_bytes())
            .unwrap()
            .unwrap();
        db.flush().unwrap();
        drop(db);

        let (report, _) = verify(&region, &mx_config).await;
        let broken = report.chain.broken.clone().unwrap();
        assert_eq!(
            (broken.seq, broken.fault),
            (3, Fault::Missing { from: 2, to: 2 })
        );
        let text = report.to_string();
        assert!(
            text.contains("audit entry 3 (case-read")
                && text.contains("broken link: entry 2 before it is missing"),
            "{text}"
        );
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_receipt_or_an_envelope_altered_on_disk_fails_its_seal() {
        let region = Region::new(&["MX", "GT"]);
        let (mx_config, gt_config, message_id) = one_notice(&region).await;
        let id = uuid::Uuid::parse_str(&message_id).unwrap();

        // Mexico's kept receipt gets a later reception time.
        let db = open_database(&mx_config).await;
        let sent = db.open_tree("sent").unwrap();
        let mut record =
            SentRecord::decode(sent.get(id.as_bytes()).unwrap().unwrap().as_ref()).unwrap();
        let mut receipt = Receipt::decode(record.receipt.as_slice()).unwrap();
        let mut body = ReceiptBody::decode(receipt.body.as_slice()).unwrap();
        body.received_at.as_mut().unwrap().seconds += 3600;
        receipt.body = body.encode_to_vec();
        record.receipt = receipt.encode_to_vec();
        sent.insert(id.as_bytes(), record.encode_to_vec()).unwrap();
        db.flush().unwrap();
        drop((sent, db));

        let (report, _) = verify(&region, &mx_config).await;
        assert!(report.chain.broken.is_none(), "the log itself is untouched");
        assert_eq!(report.seals.failures.len(), 1, "{report}");
        let failure = &report.seals.failures[0];
        assert_eq!(
            failure.what,
            format!("the receipt for message {message_id} (sent to GT)")
        );
        assert!(
            failure.why.contains("signature does not verify"),
            "{failure:?}"
        );

        // Guatemala's kept envelope gets another child's name.
        let store = open_store(&gt_config).await;
        let seen = store.seen(country("MX"), id).unwrap().unwrap();
        drop(store);
        let db = open_database(&gt_config).await;
        let inbox = db.open_tree("inbox").unwrap();
        let key = seen.cursor.to_be_bytes();
        let original = inbox.get(key).unwrap().unwrap().to_vec();
        let mut record = InboxRecord::decode(original.as_slice()).unwrap();
        let mut envelope = Envelope::decode(record.envelope.as_slice()).unwrap();
        let at = envelope.body.windows(3).position(|w| w == b"Ana").unwrap();
        envelope.body[at + 2] = b'e';
        record.envelope = envelope.encode_to_vec();
        inbox.insert(key, record.encode_to_vec()).unwrap();
        db.flush().unwrap();
        drop((inbox, db));

        let (report, _) = verify(&region, &gt_config).await;
        assert_eq!(report.seals.failures.len(), 1, "{report}");
        let failure = &report.seals.failures[0];
        assert_eq!(
            failure.what,
            format!("inbox entry {} (message {message_id} from MX)", seen.cursor)
        );
        assert!(
            failure.why.contains("signature does not verify"),
            "{failure:?}"
        );
        assert!(report.to_string().contains("audit verification FAILED"));

        // Re-sealed with a key of one's own, and its certificate kept beside
        // the others, the envelope still does not pass: that certificate is not
        // under the regional root.
        let rogue = Region::new(&["MX"]);
        let rogue_sealer = sealer(&rogue, "MX");
        let seal = rogue_sealer
            .seal(
                retorno_gateway::seal::ENVELOPES,
                &[envelope.body.as_slice()],
            )
            .unwrap();
        envelope.seal = seal.into_iter().next();
        record.envelope = envelope.encode_to_vec();
        let db = open_database(&gt_config).await;
        db.open_tree("inbox")
            .unwrap()
            .insert(key, record.encode_to_vec())
            .unwrap();
        let certificate = rogue_sealer.certificate.to_vec();
        db.open_tree("certificates")
            .unwrap()
            .insert(
                retorno_gateway::seal::certificate_id(&certificate),
                certificate,
            )
            .unwrap();
        db.flush().unwrap();
        drop(db);
        let (report, _) = verify(&region, &gt_config).await;
        assert_eq!(report.seals.failures.len(), 1, "{report}");
        assert!(
            report.seals.failures[0]
                .why
                .contains("not certified by the regional root"),
            "{report}"
        );
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn reading_the_inbox_a_status_or_the_operator_view_is_recorded_without_content() {
        let region = Region::new(&["MX", "GT"]);
        let (mx_config, gt_config) = (region.config("MX"), region.config("GT"));
        let mx = region.start_with(mx_config.clone()).await;
        let gt = region.start_with(gt_config.clone()).await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let sent = inm.submit(notice_to("GT", CASE)).await.unwrap();
        let mut sbs = region.agency("GT", "child-protection").await;
        retorno_tests::inbox_with(&mut sbs, 0, 1).await;
        inm.status(&sent.message_id).await.unwrap();
        let mut ops = retorno_client::Operations::connect(&region.profile("MX", "operator"))
            .await
            .unwrap();
        ops.status().await.unwrap();
        ops.show(&sent.message_id).await.unwrap();
        mx.shutdown().await;
        gt.shutdown().await;

        let (report, entries) = verify(&region, &gt_config).await;
        assert!(report.intact(), "{report}");
        let inbox_reads = of(&entries, Event::InboxRead);
        assert!(!inbox_reads.is_empty());
        assert!(
            inbox_reads
                .iter()
                .all(|e| e.party == "urn:retorno:agency:GT:child-protection:SBS"
                    && e.detail == "after cursor 0")
        );
        let (report, entries) = verify(&region, &mx_config).await;
        assert!(report.intact(), "{report}");
        let status_reads = of(&entries, Event::StatusRead);
        assert_eq!(status_reads.len(), 1);
        assert_eq!(status_reads[0].message_id, sent.message_id);
        assert_eq!(
            status_reads[0].party,
            "urn:retorno:agency:MX:destination-authority:INM"
        );
        let operator_reads: Vec<(&str, &str)> = of(&entries, Event::OperatorRead)
            .iter()
            .map(|e| (e.detail.as_str(), e.message_id.as_str()))
            .collect();
        assert_eq!(
            operator_reads,
            [
                ("gateway status", ""),
                ("message history", sent.message_id.as_str())
            ]
        );
        assert!(
            of(&entries, Event::OperatorRead)
                .iter()
                .all(|e| e.party == "urn:retorno:agency:MX:operator:OPS")
        );
        for entry in &entries {
            let text = format!("{entry:?}");
            for personal in ["Ana Lucía", "Pérez Xol", "RENAP"] {
                assert!(!text.contains(personal), "{personal} in {entry:?}");
            }
        }
    }
}
