//! Where the console listens and how it serves each connection.
//!
//! On loopback it serves plain HTTP (the caseworker's own desk); anywhere
//! else it requires a certificate and key and serves HTTPS with rustls, and
//! without them it does not start, saying why. Each connection is served by
//! hyper with a header timeout, plain or after the TLS handshake, in a task of
//! its own; stopping the console drops them all.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use axum::Router;
use fluent_bundle::FluentValue;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    task::JoinSet,
};
use tokio_rustls::TlsAcceptor;

use crate::{i18n::Lang, tls};

/// A request's headers must arrive within this time (a slow client holds no connection forever).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A TLS handshake must end within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the console may listen on `address`: loopback always, anything
/// else only with TLS. The refusal is in `lang`.
pub fn check(address: SocketAddr, with_tls: bool, lang: Lang) -> Result<(), String> {
    if address.ip().is_loopback() || with_tls {
        return Ok(());
    }
    Err(lang.text(
        "listen-needs-tls",
        &[("address", FluentValue::from(address.to_string()))],
    ))
}

/// The TLS acceptor of the console's own certificate and key (PEM).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let own = tls::KeyedChain::load(cert, key).map_err(|e| e.to_string())?;
    let config = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(own.chain, own.key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The origins the console's own pages have: the listen address (and
/// `localhost` for loopback), or the public origin the agency gave.
pub fn own_origins(address: SocketAddr, secure: bool, public: Option<&str>) -> Vec<String> {
    let scheme = if secure { "https" } else { "http" };
    let mut origins = Vec::new();
    if let Some(public) = public {
        origins.push(public.trim_end_matches('/').to_owned());
    }
    origins.push(format!("{scheme}://{address}"));
    if address.ip().is_loopback() {
        origins.push(format!("{scheme}://localhost:{}", address.port()));
    }
    origins
}

/// Accepts connections until the task is aborted.
pub async fn serve(listener: TcpListener, acceptor: Option<TlsAcceptor>, app: Router) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: wait a little rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let app = app.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            match acceptor {
                None => connection(stream, app).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    if let Ok(Ok(stream)) = handshake {
                        connection(stream, app).await;
                    }
                }
            }
        });
    }
}

async fn connection<S>(stream: S, app: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_the_console_needs_tls_and_says_why_in_the_machines_language() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let loopback6: SocketAddr = "[::1]:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let lan: SocketAddr = "192.168.1.20:8080".parse().unwrap();
        assert_eq!(check(loopback, false, Lang::En), Ok(()));
        assert_eq!(check(loopback6, false, Lang::En), Ok(()));
        assert_eq!(check(any, true, Lang::En), Ok(()));
        let es = check(lan, false, Lang::Es).unwrap_err();
        assert!(
            es.contains("192.168.1.20:8080") && es.contains("--tls-cert"),
            "{es}"
        );
        let en = check(any, false, Lang::En).unwrap_err();
        assert!(
            en.contains("0.0.0.0:8443") && en.contains("--tls-key"),
            "{en}"
        );
        assert_ne!(
            es,
            check(lan, false, Lang::En).unwrap_err(),
            "each in its language"
        );
    }

    #[test]
    fn the_consoles_own_origins() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            own_origins(loopback, false, None),
            ["http://127.0.0.1:8080", "http://localhost:8080"]
        );
        let any: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        assert_eq!(
            own_origins(any, true, Some("https://consola.sbs.gob.gt:8443/")),
            ["https://consola.sbs.gob.gt:8443", "https://0.0.0.0:8443"]
        );
    }
}
