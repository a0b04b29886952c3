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
