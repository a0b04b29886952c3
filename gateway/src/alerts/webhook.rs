//! Posting alert events to one webhook: HTTP/1.1 over TCP, or over TLS
//! with the webhook's CA (and a client certificate if it asks for one),
//! with hyper's client, already in the dependency tree for gRPC.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Uri, header};
use hyper_util::rt::TokioIo;
use rand::Rng as _;
use retorno_client::tls::{KeyedChain, TlsError, load_roots, provider};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::{net::TcpStream, sync::watch};
use tokio_rustls::TlsConnector;

use super::Alerts;
use crate::config::Webhook;

/// How long one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Events taken from the store at a time.
const BATCH: usize = 32;

/// Why a webhook could not be used or did not take an event.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL cannot be used.
    #[error("url {0}")]
    Url(String),
    /// The CA or client certificate could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Connecting, TLS or HTTP failed.
    #[error("{0}")]
    Post(String),
    /// The receiver answered with a status other than 2xx.
    #[error("the receiver answered {0}")]
    Status(u16),
}

fn post_error(error: impl std::fmt::Display) -> WebhookError {
    WebhookError::Post(error.to_string())
}

/// One webhook, ready to post to.
pub struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
    bearer: Option<String>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    /// Reads the URL and loads the TLS material of `hook`.
    pub fn new(hook: &Webhook) -> Result<Target, WebhookError> {
        let uri: Uri = hook
            .url
            .parse()
            .map_err(|e| WebhookError::Url(format!("{:?}: {e}", hook.url)))?;
        let https = uri.scheme_str() == Some("https");
        let authority = uri
            .authority()
            .ok_or_else(|| WebhookError::Url(format!("{:?} has no host", hook.url)))?;
        let host = authority.host().to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = match (https, &hook.ca) {
            (false, _) => None,
            (true, None) => {
                return Err(WebhookError::Url(format!("{:?} needs a ca", hook.url)));
            }
            (true, Some(ca)) => Some(tls(hook, ca, &host)?),
        };
        Ok(Target {
            host,
            port,
            authority: authority.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), ToString::to_string),
            bearer: hook.bearer_token.clone(),
            tls,
        })
    }

    /// Posts one event; `Ok` only on a 2xx answer.
    pub async fn post(&self, body: &[u8]) -> Result<(), WebhookError> {
        tokio::time::timeout(POST_TIMEOUT, self.post_now(body))
            .await
            .map_err(|_| WebhookError::Post("timed out".into()))?
    }

    async fn post_now(&self, body: &[u8]) -> Result<(), WebhookError> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(post_error)?;
        let request = self.request(body)?;
        let status = match &self.tls {
            None => exchange(TokioIo::new(stream), request).await?,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(post_error)?;
                exchange(TokioIo::new(stream), request).await?
            }
        };
        match status {
            200..=299 => Ok(()),
            other => Err(WebhookError::Status(other)),
        }
    }

    fn request(&self, body: &[u8]) -> Result<Request<Full<Bytes>>, WebhookError> {
        let mut request = Request::post(self.path.as_str())
            .header(header::HOST, self.authority.as_str())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(post_error)
    }
}

/// The TLS client of an https webhook: its CA, and a client certificate if set.
fn tls(
    hook: &Webhook,
    ca: &std::path::Path,
    host: &str,
) -> Result<(TlsConnector, ServerName<'static>), WebhookError> {
    let roots = load_roots(ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&hook.client_cert, &hook.client_key) {
        (Some(cert), Some(key)) => {
            let own = KeyedChain::load(cert, key)?;
            builder
                .with_client_auth_cert(own.chain, own.key)
                .map_err(|e| TlsError::Config(e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| WebhookError::Url(format!("{host}: {e}")))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// One HTTP/1.1 request on a fresh connection; the answer's status.
async fn exchange<I>(io: I, request: Request<Full<Bytes>>) -> Result<u16, WebhookError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(post_error)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "webhook connection ended");
        }
    });
    let response = sender.send_request(request).await.map_err(post_error)?;
    Ok(response.status().as_u16())
}

/// Delivers the events waiting for webhook `index`, oldest first, until
/// `shutdown`: each is removed from the store once the webhook took it; a
/// failure waits (exponential backoff with jitter) and tries the same event again.
pub(super) async fn deliver(
    index: u16,
    target: Target,
    alerts: Arc<Alerts>,
    mut shutdown: watch::Receiver<bool>,
) {
    let initial = Duration::from_millis(alerts.settings.retry_initial_ms);
    let max = Duration::from_millis(alerts.settings.retry_max_ms).max(initial);
    let idle = Duration::from_millis(alerts.settings.check_interval_ms);
    let mut step = initial;
    loop {
        // Created before looking, so that an event queued meanwhile wakes it.
        let queued = alerts.queued.notified();
        let waiting = alerts
            .store
            .alerts_waiting(index, BATCH)
            .unwrap_or_else(|error| {
                tracing::error!(%error, "cannot read waiting alerts");
                Vec::new()
            });
        let mut pause = idle;
        if !waiting.is_empty() {
            match post_all(&target, &alerts, waiting).await {
                Ok(()) => {
                    step = initial;
                    continue;
                }
                Err(error) => {
                    pause = step / 2 + rand::rng().random_range(Duration::ZERO..=step / 2);
                    step = (step * 2).min(max);
                    tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "an alert webhook did not take an event; it is kept");
                }
            }
        }
        tokio::select! {
            () = queued, if pause == idle => {}
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn post_all(
    target: &Target,
    alerts: &Alerts,
    waiting: Vec<crate::store::WaitingAlert>,
) -> Result<(), WebhookError> {
    for (key, event) in waiting {
        target.post(&event).await?;
        if let Err(error) = alerts.store.alert_delivered(&key) {
            tracing::error!(%error, "a delivered alert could not be removed; it may be sent again");
        }
    }
    Ok(())
}
