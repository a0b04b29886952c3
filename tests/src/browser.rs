//! A real browser for the console's end-to-end tests: Debian's Chromium,
//! headless, driven over WebDriver by ChromeDriver, one of each per test.
//!
//! Each [`Browser`] starts its own `chromedriver` on a free loopback port
//! (`--port=0`; the port is read from what it prints, and its `/status` is
//! polled until it answers ready), with a fresh Chromium profile in a temporary
//! folder, so that tests share no cookies, no cache and no port. Dropping it
//! ends ChromeDriver and the Chromium it started (their process group), also
//! when a test panics.
//!
//! Every wait polls a condition until [`DEADLINE`] (30 s: the machine is slow
//! and shared); none sleeps for a fixed time. A wait that times out fails the
//! test with the page's address and text, which is usually enough to see why.
//!
//! Where Chromium or ChromeDriver is missing, [`Browser::launch`] gives `None`
//! and prints one line (once per test binary) saying the browser tests were
//! skipped and how to run them; with `RETORNO_REQUIRE_BROWSER=1` (as CI sets)
//! a missing browser fails the test instead. `RETORNO_CHROMIUM` and
//! `RETORNO_CHROMEDRIVER` name other paths than Debian's.

use std::{
    future::Future,
    io::{BufRead as _, BufReader, Write as _},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Once,
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value as Json, json};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

pub use crate::DEADLINE;

/// Debian's Chromium (`apt-get install chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's ChromeDriver (`apt-get install chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Set to `1` to make a missing browser a failure rather than a skip (CI).
pub const REQUIRE_VARIABLE: &str = "RETORNO_REQUIRE_BROWSER";
/// A folder where the scenario saves its screenshots (for the README).
pub const SCREENSHOTS_VARIABLE: &str = "RETORNO_SCREENSHOTS";

/// How often a wait looks again: often enough to be quick, rarely enough
/// not to load a 2-core machine with WebDriver round trips.
const POLL: Duration = Duration::from_millis(100);

/// The flags this machine needs (no sandbox as root, no GPU, no network
/// beyond the page under test) plus a fixed device scale for small,
/// comparable screenshots.
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
];

/// The window a test looks through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewport {
    /// A caseworker's desk: 1280 × 900.
    Desktop,
    /// A consul's phone at the border post: 360 × 740.
    Phone,
}

impl Viewport {
    /// Width and height in CSS pixels.
    pub fn size(self) -> (u32, u32) {
        match self {
            Viewport::Desktop => (1280, 900),
            Viewport::Phone => (360, 740),
        }
    }
}

/// Chromium's path: `RETORNO_CHROMIUM` if set (another system's build), else [`CHROMIUM`].
pub fn chromium() -> String {
    std::env::var("RETORNO_CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned())
}

/// ChromeDriver's path: `RETORNO_CHROMEDRIVER` if set, else [`CHROMEDRIVER`].
pub fn chromedriver() -> String {
    std::env::var("RETORNO_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.to_owned())
}

/// Which of the two programs is missing, if one is.
pub fn missing() -> Option<String> {
    [chromium(), chromedriver()]
        .into_iter()
        .find(|program| !Path::new(program).exists())
}

/// Whether browser tests must run (`RETORNO_REQUIRE_BROWSER=1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_VARIABLE).is_ok_and(|value| value == "1")
}

static SKIP_NOTICE: Once = Once::new();

/// `true` when this machine has no browser and browser tests should return
/// early; says so once per test binary. Fails the test when a browser is
/// required.
pub fn skip() -> bool {
    let Some(program) = missing() else {
        return false;
    };
    assert!(
        !required(),
        "{REQUIRE_VARIABLE}=1 but {program} is missing: apt-get install chromium chromium-driver"
    );
    SKIP_NOTICE.call_once(|| {
        // Straight to stderr: the test harness captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "retorno: browser tests skipped ({program} not found); to run them: \
             apt-get install chromium chromium-driver (set {REQUIRE_VARIABLE}=1 to fail instead)"
        );
    });
    true
}

/// A ChromeDriver process, in its own process group so that the Chromium
/// it starts ends with it.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    /// Starts ChromeDriver on a free loopback port and waits until it is ready.
    async fn start() -> ChromeDriver {
        let mut child = Command::new(chromedriver())
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver()));
        let stdout = child.stdout.take().unwrap();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        // Reads the port from the start-up line, then keeps draining the
        // pipe so that ChromeDriver never blocks on a full one.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = started_on_port(&line) {
                    let _ = port_tx.send(port);
                }
            }
        });
        let port = tokio::task::spawn_blocking(move || port_rx.recv_timeout(DEADLINE))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("{} did not say which port it took", chromedriver()));
        let driver = ChromeDriver { child, port };
        poll("ChromeDriver's /status to say ready", || driver.ready()).await;
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `Some(())` once `GET /status` answers `"ready": true`.
    async fn ready(&self) -> Option<()> {
        let status = tokio::time::timeout(Duration::from_secs(5), self.status())
            .await
            .ok()??;
        (status["value"]["ready"] == true).then_some(())
    }

    /// `GET /status`, read up to its `Content-Length` (ChromeDriver keeps
    /// the connection open even when asked to close it).
    async fn status(&self) -> Option<Json> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        let request = format!(
            "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = stream.read(&mut buffer).await.ok()?;
            if read == 0 {
                return None;
            }
            answer.extend_from_slice(&buffer[..read]);
            if let Some(body) = http_body(&answer) {
                return serde_json::from_slice(body).ok();
            }
        }
    }
}

/// The body of an HTTP/1.1 answer once all of it (by `Content-Length`) is in.
fn http_body(answer: &[u8]) -> Option<&[u8]> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    answer.get(end..end + length)
}

/// The port in ChromeDriver's "ChromeDriver was started successfully on port N."
fn started_on_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("started successfully on port ")?;
    rest.trim_end_matches(['.', ' ']).parse().ok()
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group: ChromeDriver and every Chromium process it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium with its own profile, driven over WebDriver.
pub struct Browser {
    client: Client,
    viewport: Viewport,
    // Dropped after the client: Chromium's profile, then ChromeDriver.
    _profile: TempDir,
    _driver: ChromeDriver,
}

impl Browser {
    /// A Spanish-speaking browser (`Accept-Language: es`) of `viewport`'s
    /// size, or `None` where this machine has no browser (see [`skip`]).
    pub async fn launch(viewport: Viewport) -> Option<Browser> {
        Browser::launch_in(viewport, "es").await
    }

    /// A browser whose `Accept-Language` is `language` (`es`, `en`).
    pub async fn launch_in(viewport: Viewport, language: &str) -> Option<Browser> {
        if skip() {
            return None;
        }
        let driver = ChromeDriver::start().await;
        let profile = tempfile::tempdir().unwrap();
        let (width, height) = viewport.size();
        let mut args: Vec<String> = FLAGS.iter().map(|flag| (*flag).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        args.push(format!("--lang={language}"));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": args,
                "prefs": { "intl.accept_languages": language },
            },
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("ChromeDriver could not start Chromium: {e}"));
        let browser = Browser {
            client,
            viewport,
            _profile: profile,
            _driver: driver,
        };
        browser.fit_viewport().await;
        Some(browser)
    }

    /// Makes the page area (not the window) exactly the viewport's size.
    async fn fit_viewport(&self) {
        let (width, height) = self.viewport.size();
        self.client.set_window_size(width, height).await.unwrap();
        let inner = self
            .script("return [window.innerWidth, window.innerHeight];", vec![])
            .await;
        let (inner_width, inner_height) = (
            inner[0].as_u64().unwrap() as u32,
            inner[1].as_u64().unwrap() as u32,
        );
        if (inner_width, inner_height) != (width, height) {
            let (extra_width, extra_height) = (width - inner_width, height - inner_height);
            self.client
                .set_window_size(width + extra_width, height + extra_height)
                .await
                .unwrap();
        }
    }

    /// The viewport this browser was launched with.
    pub fn viewport(&self) -> Viewport {
        self.viewport
    }

    /// The WebDriver client, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The address of the page shown now.
    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits for the address to satisfy `check` (a redirect, a form's answer).
    pub async fn wait_for_url(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        self.poll(&format!("the address to be {what}"), || async {
            let url = self.client.current_url().await.ok()?.to_string();
            check(&url).then_some(url)
        })
        .await
    }

    /// Waits for an element matching `css` and returns it.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.poll(&format!("an element `{css}`"), || async {
            self.client.find(Locator::Css(css)).await.ok()
        })
        .await
    }

    /// Waits until an element matching `css` shows text containing `text`,
    /// and returns its whole text.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> String {
        self.poll(&format!("`{css}` to show \"{text}\""), || async {
            let found = self.client.find_all(Locator::Css(css)).await.ok()?;
            for element in found {
                let shown = element.text().await.ok()?;
                if shown.contains(text) {
                    return Some(shown);
                }
            }
            None
        })
        .await
    }

    /// Waits until no element matches `css` (a form replaced by its answer).
    pub async fn wait_for_absent(&self, css: &str) {
        self.poll(&format!("`{css}` to be gone"), || async {
            let found = self.client.find_all(Locator::Css(css)).await.ok()?;
            found.is_empty().then_some(())
        })
        .await
    }

    /// Whether an element matches `css` now (no wait).
    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    /// The text of the first element matching `css`, once there is one.
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap()
    }

    /// The texts of every element matching `css` now.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            texts.push(element.text().await.unwrap());
        }
        texts
    }

    /// The page's visible text.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// Waits for the refusal shown next to the field `path`
    /// (`#error-<path>`) to say something, and returns it.
    pub async fn field_error(&self, path: &str) -> String {
        let css = field_error_css(path);
        self.poll(&format!("a refusal next to `{path}`"), || async {
            let element = self.client.find(Locator::Css(&css)).await.ok()?;
            let text = element.text().await.ok()?;
            (!text.trim().is_empty()).then_some(text)
        })
        .await
    }

    /// Fills a form's fields, each named by its path (`child.given_names`):
    /// text is typed, a select takes the option of that value, a checkbox
    /// is ticked for `true`/`on` and cleared otherwise (in a group of boxes
    /// sharing the name, the box of that value is ticked), a radio button of
    /// that value is chosen, and a date or time is set as the browser
    /// stores it (`2026-12-04`, `10:00`), whatever the locale shows.
    pub async fn fill(&self, fields: &[(&str, &str)]) {
        for (path, value) in fields {
            self.set_field(path, value).await;
        }
    }

    async fn set_field(&self, path: &str, value: &str) {
        let element = self.visible_field(path).await;
        let tag = element.tag_name().await.unwrap().to_lowercase();
        let kind = element.attr("type").await.unwrap().unwrap_or_default();
        match (tag.as_str(), kind.as_str()) {
            ("select", _) => element.select_by_value(value).await.unwrap(),
            (_, "checkbox") if self.exists(&choice_css(path, value)).await => {
                // One box of a group sharing the name (protection concerns).
                let choice = self.wait_for(&choice_css(path, value)).await;
                if !choice.is_selected().await.unwrap() {
                    choice.click().await.unwrap();
                }
            }
            (_, "checkbox") => {
                let checked = element.is_selected().await.unwrap();
                if checked != matches!(value, "true" | "on" | "1") {
                    element.click().await.unwrap();
                }
            }
            (_, "radio") => {
                self.click(&choice_css(path, value)).await;
            }
            (_, "date" | "time" | "datetime-local" | "month" | "week") => {
                self.set_value(&element, value).await;
            }
            _ => {
                element.clear().await.unwrap();
                element.send_keys(value).await.unwrap();
            }
        }
    }

    /// The first input named `path` that a person can see (a page may also
    /// carry hidden inputs of that name, e.g. in the offered slots' forms).
    async fn visible_field(&self, path: &str) -> Element {
        let css = field_css(path);
        self.poll(&format!("a visible field `{css}`"), || async {
            for element in self.client.find_all(Locator::Css(&css)).await.ok()? {
                if element.is_displayed().await.ok()? {
                    return Some(element);
                }
            }
            None
        })
        .await
    }

    /// Sets an input's value as a script would, with the events a person's
    /// typing fires (for inputs whose typing depends on the locale).
    async fn set_value(&self, element: &Element, value: &str) {
        let element = serde_json::to_value(element).unwrap();
        self.script(
            "const [input, value] = arguments; input.value = value;
             input.dispatchEvent(new Event('input', { bubbles: true }));
             input.dispatchEvent(new Event('change', { bubbles: true }));",
            vec![element, json!(value)],
        )
        .await;
    }

    /// The value an input holds now.
    pub async fn value(&self, path: &str) -> String {
        self.wait_for(&field_css(path))
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Clicks the first element matching `css`, once there is one.
    pub async fn click(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click `{css}`: {e}"));
    }

    /// Clicks the button of the case step `kind` (`data-step="<kind>"`).
    pub async fn click_step(&self, kind: &str) {
        self.click(&step_css(kind)).await;
    }

    /// The steps offered as buttons now (their `data-step` values).
    pub async fn steps(&self) -> Vec<String> {
        let mut steps = Vec::new();
        for button in self
            .client
            .find_all(Locator::Css("[data-step]"))
            .await
            .unwrap()
        {
            steps.push(button.attr("data-step").await.unwrap().unwrap_or_default());
        }
        steps
    }

    /// Runs `script` in the page (arguments as `arguments[i]`) and returns its result.
    pub async fn script(&self, script: &str, args: Vec<Json>) -> Json {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// The text of an open `alert()`, if the page opened one.
    pub async fn alert(&self) -> Option<String> {
        self.client.get_alert_text().await.ok()
    }

    /// Whether the page is wider than the viewport (a person would have to
    /// scroll sideways).
    pub async fn scrolls_sideways(&self) -> bool {
        let widths = self
            .script(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await;
        widths[0].as_u64().unwrap() > widths[1].as_u64().unwrap()
    }

    /// The element's box in the viewport: left, top, width, height (CSS px).
    pub async fn bounds(&self, css: &str) -> (f64, f64, f64, f64) {
        let element = serde_json::to_value(self.wait_for(css).await).unwrap();
        let rect = self
            .script(
                "const r = arguments[0].getBoundingClientRect();
                 return [r.left, r.top, r.width, r.height];",
                vec![element],
            )
            .await;
        let at = |i: usize| rect[i].as_f64().unwrap();
        (at(0), at(1), at(2), at(3))
    }

    /// Saves what the viewport shows as a PNG file.
    pub async fn screenshot(&self, file: &Path) {
        let png = self.client.screenshot().await.unwrap();
        if let Some(folder) = file.parent() {
            std::fs::create_dir_all(folder).unwrap();
        }
        std::fs::write(file, png).unwrap();
    }

    /// Polls `check` every `POLL` until it gives `Some`; after [`DEADLINE`]
    /// fails the test with the page's address and text.
    pub async fn poll<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        match poll_until(check).await {
            Some(value) => value,
            None => {
                let url = self.client.current_url().await.map(|u| u.to_string());
                let text = match self.client.find(Locator::Css("body")).await {
                    Ok(body) => body.text().await.unwrap_or_default(),
                    Err(e) => format!("(no page: {e})"),
                };
                let text: String = text.chars().take(3000).collect();
                panic!(
                    "timed out after {DEADLINE:?} waiting for {what}\n  at: {url:?}\n  page text:\n{text}"
                )
            }
        }
    }

    /// Ends the WebDriver session (Chromium closes), then ChromeDriver.
    pub async fn close(self) {
        let Browser {
            client,
            _profile,
            _driver,
            ..
        } = self;
        let _ = client.close().await;
    }
}

/// The path of an address, without scheme, host, query or fragment (`/login`).
pub fn path_of(url: &str) -> &str {
    let after_host = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_host.find('/').map_or("/", |i| &after_host[i..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

/// Polls `check` every [`POLL`] until it gives `Some`, or `None` after [`DEADLINE`].
async fn poll_until<T, F, Fut>(mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if start.elapsed() > DEADLINE {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it gives `Some`, failing the test after [`DEADLINE`].
async fn poll<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_until(check)
        .await
        .unwrap_or_else(|| panic!("timed out after {DEADLINE:?} waiting for {what}"))
}

/// The CSS selector of the input named `path`. Paths hold dots
/// (`child.given_names`), which `#id` would read as classes.
pub fn field_css(path: &str) -> String {
    format!("[name=\"{path}\"]")
}

/// The CSS selector of the box or button of value `value` among those named `path`.
pub fn choice_css(path: &str, value: &str) -> String {
    format!("{}[value=\"{value}\"]", field_css(path))
}

/// The CSS selector of the refusal shown next to the field `path`.
pub fn field_error_css(path: &str) -> String {
    format!("[id=\"error-{path}\"]")
}

/// The CSS selector of the button of case step `kind`.
pub fn step_css(kind: &str) -> String {
    format!("[data-step=\"{kind}\"]")
}

/// Where the scenario saves its screenshots: `RETORNO_SCREENSHOTS` if set
/// (the README's pictures), else a temporary folder, never the repository.
pub struct Screenshots {
    folder: PathBuf,
    _temporary: Option<TempDir>,
}

impl Screenshots {
    /// The folder named by `RETORNO_SCREENSHOTS`, or a new temporary one.
    pub fn from_env() -> Screenshots {
        match std::env::var_os(SCREENSHOTS_VARIABLE) {
            Some(folder) => Screenshots {
                folder: PathBuf::from(folder),
                _temporary: None,
            },
            None => {
                let temporary = tempfile::tempdir().unwrap();
                Screenshots {
                    folder: temporary.path().to_owned(),
                    _temporary: Some(temporary),
                }
            }
        }
    }

    /// Saves `browser`'s viewport as `<folder>/<name>`, and returns the file.
    pub async fn take(&self, browser: &Browser, name: &str) -> PathBuf {
        let file = self.folder.join(name);
        browser.screenshot(&file).await;
        file
    }
}

/// A page served from another origin (another loopback port): what a
/// hostile site a caseworker visits would serve. Dropping it closes the port.
pub struct ForeignPage {
    address: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ForeignPage {
    /// Serves `html` to every request on a free loopback port.
    pub async fn serve(html: String) -> ForeignPage {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let html = html.clone();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{html}",
                        html.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        ForeignPage { address, task }
    }

    /// Its address, `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }
}

impl Drop for ForeignPage {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chromedrivers_start_up_line_gives_its_port() {
        let line = "ChromeDriver was started successfully on port 39951.";
        assert_eq!(started_on_port(line), Some(39951));
        assert_eq!(started_on_port("Only local connections are allowed."), None);
    }

    #[test]
    fn an_answer_is_whole_once_its_content_length_is_in() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length:4\r\nConnection:close\r\n\r\n";
        let mut answer = head.to_vec();
        answer.extend_from_slice(b"{\"a");
        assert_eq!(http_body(&answer), None);
        answer.extend_from_slice(b"}");
        assert_eq!(http_body(&answer), Some(&b"{\"a}"[..]));
    }

    #[test]
    fn a_url_path_leaves_out_host_and_query() {
        assert_eq!(
            path_of("http://127.0.0.1:8080/login?next=%2Fcases#top"),
            "/login"
        );
        assert_eq!(path_of("http://127.0.0.1:8080"), "/");
    }
}
