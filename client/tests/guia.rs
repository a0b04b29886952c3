//! The Spanish guide for staff (`client/GUIA.md`): its walkthrough, from the
//! advance notice to the follow-up and both readers' case views, run as
//! written under `LANG=es_GT.UTF-8` with the real `retorno` program against a
//! dev region, so that what it shows a caseworker is what the program says.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod walkthrough;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spanish_guides_walkthrough_runs_as_written() {
    walkthrough::walk(
        "GUIA.md",
        &["## Un retorno de principio a fin"],
        "es_GT.UTF-8",
    )
    .await;
}
