//! `retorno console`: a web console for an agency's staff, run at the agency
//! with the agency's own profile (one console = one agency = one role).
//!
//! The console is a client of its agency's gateway like the `retorno`
//! program ([`crate::Client`]): every page shows what the gateway returns to
//! this agency, and the gateway alone decides who sees what and which steps a
//! case allows (`CaseView.allowed_steps`). The console decides nothing about
//! a case; it renders, in the reader's language, and sends what its staff type,
//! naming the logged-in official in `SubmitRequest.official`.
//!
//! # Layout
//! - [`accounts`]: the staff file (argon2id hashes, lock after failed logins), also
//!   used by `retorno console user add|disable|list`.
//! - [`session`]: sessions, cookies, and the CSRF and origin checks of every POST.
//! - [`listen`]: where the console may listen, and its TLS.
//! - [`dates`] (from [`crate::words`], shared with the `retorno` program): instants
//!   in a point of entry's time zone, in the reader's language.
//! - `web`, `pages`, `forms`: the routes, the pages (askama templates in
//!   `client/templates/`) and what their forms become.
//!
//! # Selectors the browser tests rely on
//! - Every input, select and textarea has `id` and `name` equal to its field
//!   path with dots, e.g. `child.given_names`, `best_interest.date`,
//!   `transport.point_of_entry` (the paths of `AdvanceNotice` and of the
//!   step's payload, without the payload's own name).
//! - A refusal of one field is in the element `#error-<field path>` next to
//!   the input (e.g. `#error-best_interest.date`; in CSS selectors write
//!   `[id="error-best_interest.date"]`). A refusal of the whole step, and any
//!   notice after a post (sent, refused, CSRF), is in `#refusal` at the top.
//! - Every button that takes a step has `data-step="<payload kind>"`
//!   (`advance_notice`, `arrival_proposal`, `arrival_response`, `handoff_ack`,
//!   `reception_confirmation`, `follow_up_report`, `case_summary`,
//!   `case_withdrawal`); an arrival answer also has `data-decision="accept|counter|decline"`;
//!   an allowed slot offered after a refusal has `data-slot="YYYY-MM-DD HH:MM"`.
//! - The inbox list is `#inbox`, one `<li data-message-id="..." data-cursor="...">`
//!   per item; its acknowledge button has `data-ack`.
//! - The login form: `#login`, `#password`, submit button `#log-in`; the
//!   logout button `#log-out`; the language switch links `a[hreflang=es|en]`.
//! - A list of cases is `#cases`, one `<tr data-case-id="...">` per case.
//! - The case timeline is `#timeline`, one `<li data-kind="...">` per step.

pub mod accounts;
mod arrival;
mod custody;
mod forms;
pub mod listen;
mod pages;
pub mod session;
mod steps;
mod summary;
mod web;

pub use crate::words::dates;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};

use crate::{Client, ClientError, Profile, i18n::Lang};

/// The default idle timeout of a session.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How a console runs.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// The agency's connection profile: the console acts as this agency.
    pub profile: Profile,
    /// Where to listen; loopback unless `tls` is given.
    pub listen: SocketAddr,
    /// The certificate and key (PEM) to serve HTTPS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The staff accounts file.
    pub users: PathBuf,
    /// A session idle this long is ended.
    pub idle_timeout: Duration,
    /// The origin the staff's browsers use when it is not the listen address
    /// (a DNS name in front of `0.0.0.0`), e.g. `https://consola.sbs.gob.gt:8443`.
    /// Form posts must come from it.
    pub public_origin: Option<String>,
}

impl ConsoleConfig {
    /// A console on `127.0.0.1:8080` with the default timeouts.
    pub fn new(profile: Profile, users: PathBuf) -> ConsoleConfig {
        ConsoleConfig {
            profile,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            users,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            public_origin: None,
        }
    }
}

/// Why the console did not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Listening beyond loopback without TLS; the message is in the machine's language.
    #[error("{0}")]
    Listen(String),
    /// The address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTPS certificate or key cannot be used.
    #[error("--tls-cert/--tls-key: {0}")]
    Tls(String),
    /// The agency's gateway cannot be reached with the profile.
    #[error(transparent)]
    Gateway(#[from] ClientError),
    /// The staff file cannot be used.
    #[error(transparent)]
    Accounts(#[from] accounts::AccountError),
}

/// A running console.
pub struct Console {
    address: SocketAddr,
    secure: bool,
    task: JoinHandle<()>,
}

impl Console {
    /// The address it listens on (the port chosen, for `:0`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The console's URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// Stops listening and closes every connection (live inboxes included).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Starts a console: checks where it may listen, the staff file and the
/// gateway connection, binds, and serves until [`Console::stop`].
pub async fn start(config: ConsoleConfig) -> Result<Console, ConsoleError> {
    listen::check(config.listen, config.tls.is_some(), Lang::from_env())
        .map_err(ConsoleError::Listen)?;
    accounts::list(&config.users)?;
    let acceptor = match &config.tls {
        Some((cert, key)) => Some(listen::acceptor(cert, key).map_err(ConsoleError::Tls)?),
        None => None,
    };
    let mut client = Client::connect(&config.profile).await?;
    let agency = Agency::of_profile(&config.profile);
    let home_zone = home_zone(&mut client, agency.as_ref()).await;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ConsoleError::Bind {
            address: config.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ConsoleError::Bind {
        address: config.listen,
        source,
    })?;
    let secure = acceptor.is_some();
    let origins = listen::own_origins(address, secure, config.public_origin.as_deref());
    let state = Arc::new(web::State::new(
        client, &config, secure, origins, agency, home_zone,
    ));
    let app = web::router(state);
    let task = tokio::spawn(listen::serve(listener, acceptor, app));
    Ok(Console {
        address,
        secure,
        task,
    })
}

/// The agency a console acts as, from its certificate's URI
/// (`urn:retorno:agency:GT:child-protection:SBS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agency {
    /// ISO 3166-1 alpha-2 code of the agency's country.
    pub country: String,
    /// The role, as the certificate names it, e.g. `child-protection`.
    pub role: String,
    /// The agency's short name, e.g. `SBS`.
    pub name: String,
}

impl Agency {
    /// The agency named by the profile's certificate, if it names one.
    pub fn of_profile(profile: &Profile) -> Option<Agency> {
        let chain = crate::tls::load_certificates(&profile.cert).ok()?;
        let der = chain.first()?;
        let (_, certificate) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        let names = certificate.subject_alternative_name().ok()??;
        names
            .value
            .general_names
            .iter()
            .find_map(|name| match name {
                x509_parser::extensions::GeneralName::URI(uri) => Agency::from_uri(uri),
                _ => None,
            })
    }

    /// Reads `urn:retorno:agency:CC:role:NAME`.
    pub fn from_uri(uri: &str) -> Option<Agency> {
        let mut parts = uri.strip_prefix("urn:retorno:agency:")?.splitn(3, ':');
        Some(Agency {
            country: parts.next()?.to_owned(),
            role: parts.next()?.to_owned(),
            name: parts.next()?.to_owned(),
        })
    }
}

/// The time zone of the console's own country (its first published point
/// of entry), for times not tied to an arrival; UTC if it cannot be read.
async fn home_zone(client: &mut Client, agency: Option<&Agency>) -> String {
    let Some(agency) = agency else {
        return "UTC".to_owned();
    };
    client
        .reception_policy(&agency.country)
        .await
        .ok()
        .and_then(|policy| policy.points.into_iter().next())
        .map(|point| point.time_zone)
        .filter(|zone| !zone.is_empty())
        .unwrap_or_else(|| "UTC".to_owned())
}
