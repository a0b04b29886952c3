//! The web console in a real browser (issue 11).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use retorno_tests::browser::{Browser, ForeignPage, Viewport};

/// The harness itself: a phone-sized Spanish browser fills a form and sees
/// the page at exactly 360 pixels wide.
#[tokio::test]
async fn the_browser_harness_fills_a_form_at_phone_size() {
    let Some(browser) = Browser::launch(Viewport::Phone).await else {
        return;
    };
    let page = ForeignPage::serve(
        r#"<!doctype html><html><head><meta name="viewport" content="width=device-width"></head><body>
        <form><label>Nombre <input name="child.given_names"></label>
        <input type="date" name="arrival.date"><select name="mode"><option value="air">a</option><option value="land">l</option></select>
        <p id="lang"></p></form>
        <script>document.getElementById('lang').textContent = navigator.languages.join(',');</script>
        </body></html>"#
            .to_owned(),
    )
    .await;
    browser.goto(&page.url()).await;
    browser
        .fill(&[
            ("child.given_names", "María José"),
            ("arrival.date", "2026-12-04"),
            ("mode", "land"),
        ])
        .await;
    assert_eq!(browser.value("child.given_names").await, "María José");
    assert_eq!(browser.value("arrival.date").await, "2026-12-04");
    assert_eq!(browser.value("mode").await, "land");
    assert!(browser.text("#lang").await.starts_with("es"));
    let size = browser
        .script("return [window.innerWidth, window.innerHeight];", vec![])
        .await;
    assert_eq!(size, serde_json::json!([360, 740]));
    assert!(!browser.scrolls_sideways().await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.png");
    browser.screenshot(&file).await;
    let png = std::fs::read(&file).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // width, height in the IHDR chunk
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (360, 740));
    browser.close().await;
}
