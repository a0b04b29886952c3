//! Mutual TLS from the client side: loading PEM material and opening a gRPC
//! channel to a gateway. Used by agencies (the `retorno` program) and by
//! gateways, which are each other's clients on the Peer API.

use std::{
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore, client::WebPkiServerVerifier, crypto::CryptoProvider};
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, pem::PemObject,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint};

use crate::i18n::{FluentValue, Lang};

/// Why TLS material could not be loaded or a connection not made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing, unreadable or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong with it, in the system's and the parser's words.
        reason: String,
        /// The same, as the reader's language says it ([`TlsError::render_file`]).
        problem: FileProblem,
        /// The profile's field that named the file (`cert`, `key`, `ca`), if one did.
        field: Option<&'static str>,
    },
    /// rustls refused the configuration (for example a key that does not match the certificate).
    #[error("TLS configuration refused: {0}")]
    Config(String),
    /// The address or server name could not be used.
    #[error("{0}")]
    Address(String),
    /// The connection failed for a reason [`TransportCause`] can name.
    #[error("{}", .cause.describe(.address))]
    Transport {
        /// The address dialled.
        address: String,
        /// What went wrong, and so what to check.
        cause: TransportCause,
    },
    /// The connection failed for another reason.
    #[error("could not connect to {address}: {error}")]
    Connect {
        /// The address dialled.
        address: String,
        /// tonic's error; its message already includes its sources.
        error: tonic::transport::Error,
    },
}

/// Why a connection or a call failed at the transport, read from an error's
/// sources, so that a person is told what to check instead of a chain of
/// "transport error". With TLS 1.3 a server refuses a client certificate
/// after the client has finished its handshake, so a refusal shows on the
/// first call as an alert received, not at connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportCause {
    /// Nothing accepts connections at the address.
    NothingListens,
    /// The other end refused this side's certificate with a TLS alert (its name, e.g. `UnknownCA`).
    CertificateRefused(String),
    /// This side refused the other end's certificate.
    ServerCertificateRefused(String),
    /// The other end closed the connection under a call. Right after a
    /// handshake this is most often a refused certificate whose alert was
    /// lost: the call's write failed before the alert was read.
    Closed,
}

impl TransportCause {
    /// The first cause found in `error` or its sources, if any is known.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Option<TransportCause> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(cause) = Self::of_one(error) {
                return Some(cause);
            }
            current = error.source();
        }
        None
    }

    fn of_one(error: &(dyn std::error::Error + 'static)) -> Option<TransportCause> {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return Some(TransportCause::NothingListens),
                io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::UnexpectedEof => return Some(TransportCause::Closed),
                _ => {}
            }
            // An io::Error's source skips the error it wraps: look at it here.
            let inner = io.get_ref()?;
            return Self::of_one(inner).or_else(|| Self::alert_in_text(&inner.to_string()));
        }
        match error.downcast_ref::<rustls::Error>()? {
            rustls::Error::AlertReceived(alert) => {
                Some(TransportCause::CertificateRefused(format!("{alert:?}")))
            }
            rustls::Error::InvalidCertificate(why) => {
                Some(TransportCause::ServerCertificateRefused(format!("{why:?}")))
            }
            _ => None,
        }
    }

    /// tokio-rustls hands a received alert up as the text of rustls's error
    /// (`received fatal alert: UnknownCA`), not as the error itself.
    fn alert_in_text(text: &str) -> Option<TransportCause> {
        let alert = text.strip_prefix("received fatal alert: ")?;
        Some(TransportCause::CertificateRefused(alert.to_owned()))
    }

    /// One sentence naming the cause at `address` and what to check, in English.
    pub fn describe(&self, address: &str) -> String {
        self.describe_in(address, Lang::En)
    }

    /// [`TransportCause::describe`] in `lang` (`conn-*` in `locales/*/cli.ftl`).
    pub fn describe_in(&self, address: &str, lang: Lang) -> String {
        let arg = |value: &str| FluentValue::from(value.to_owned());
        match self {
            TransportCause::NothingListens => {
                lang.text("conn-nothing-listens", &[("address", arg(address))])
            }
            TransportCause::CertificateRefused(alert) => {
                let likely = match alert.as_str() {
                    "UnknownCA" => "conn-likely-unknown-ca",
                    "DecryptError" => "conn-likely-decrypt-error",
                    "CertificateRevoked" => "conn-likely-revoked",
                    "CertificateExpired" => "conn-likely-expired",
                    _ => "conn-likely-other",
                };
                lang.text(
                    "conn-certificate-refused",
                    &[
                        ("address", arg(address)),
                        ("alert", arg(alert)),
                        ("likely", FluentValue::from(lang.text(likely, &[]))),
                    ],
                )
            }
            TransportCause::Closed => lang.text("conn-closed", &[("address", arg(address))]),
            TransportCause::ServerCertificateRefused(why) => lang.text(
                "conn-server-refused",
                &[("address", arg(address)), ("why", arg(why))],
            ),
        }
    }
}

impl TlsError {
    /// A connection failure, with its cause named when it is known.
    pub fn connect(address: &str, error: tonic::transport::Error) -> TlsError {
        match TransportCause::of(&error) {
            Some(cause) => TlsError::Transport {
                address: address.to_owned(),
                cause,
            },
            None => TlsError::Connect {
                address: address.to_owned(),
                error,
            },
        }
    }
}

/// A certificate chain and its private key, as loaded from PEM files.
#[derive(Debug)]
pub struct KeyedChain {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl KeyedChain {
    /// Loads a certificate chain and a private key from PEM files.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain = load_certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
        Ok(KeyedChain { chain, key })
    }
}

impl Clone for KeyedChain {
    fn clone(&self) -> Self {
        KeyedChain {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// What is wrong with a PEM file, for its sentence in the reader's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileProblem {
    /// There is no such file.
    Missing,
    /// It holds no certificate.
    NoCertificate,
    /// It holds no revocation list.
    NoCrl,
    /// Anything else (the system's or the parser's words say what).
    Unusable,
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> TlsError {
    let problem = if path.exists() {
        FileProblem::Unusable
    } else {
        FileProblem::Missing
    };
    file_problem(path, problem, error)
}

fn file_problem(path: &Path, problem: FileProblem, error: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: error.to_string(),
        problem,
        field: None,
    }
}

impl TlsError {
    /// A file's problem in `lang` (`file-*` in `locales/*/cli.ftl`), naming
    /// the profile's field that named it; `None` for another error.
    pub fn render_file(&self, lang: Lang) -> Option<String> {
        let TlsError::File {
            path,
            reason,
            problem,
            field,
        } = self
        else {
            return None;
        };
        if lang == Lang::En {
            return Some(self.to_string());
        }
        let id = match problem {
            FileProblem::Missing => "file-missing",
            FileProblem::NoCertificate => "file-no-certificate",
            FileProblem::NoCrl => "file-no-crl",
            FileProblem::Unusable => "file-unusable",
        };
        let arg = |value: String| FluentValue::from(value);
        let what = lang.text(
            id,
            &[
                ("file", arg(path.display().to_string())),
                ("why", arg(reason.clone())),
            ],
        );
        Some(match field {
            Some(field) => lang.text(
                "file-of-profile",
                &[("what", arg(what)), ("field", arg((*field).to_owned()))],
            ),
            None => what,
        })
    }
}

/// Loads every certificate of a PEM file; an empty file is an error.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_problem(
            path,
            FileProblem::NoCertificate,
            "no certificate found in the file",
        ));
    }
    Ok(certs)
}

/// Loads the CA certificates of a PEM file into a trust store.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certificates(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}

/// The one crypto provider of the process (ring). Installed as the process
/// default too, so that nothing else picks a second one.
pub fn provider() -> Arc<CryptoProvider> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Fails only if a default is installed already, which is what we want anyway.
    let _ = CryptoProvider::install_default(provider.as_ref().clone());
    provider
}

/// Loads every certificate revocation list of a PEM file; an empty file is an error,
/// since a CRL file that revokes nothing is better written as an empty list.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if crls.is_empty() {
        return Err(file_problem(
            path,
            FileProblem::NoCrl,
            "no X509 CRL found in the file",
        ));
    }
    Ok(crls)
}

/// A client configuration that presents `own` and trusts servers under `server_roots`.
pub fn client_config(
    own: &KeyedChain,
    server_roots: RootCertStore,
) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_with_crls(own, server_roots, Vec::new())
}

/// Like [`client_config`], and refuses servers whose certificate one of `crls` revokes.
///
/// A certificate whose issuer has no CRL here is accepted: revocation lists are
/// optional per CA, so "no list" must not mean "everything revoked".
pub fn client_config_with_crls(
    own: &KeyedChain,
    server_roots: RootCertStore,
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let mut builder =
        WebPkiServerVerifier::builder_with_provider(server_roots.into(), provider.clone());
    if !crls.is_empty() {
        builder = builder.with_crls(crls).allow_unknown_revocation_status();
    }
    let verifier = builder
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(own.chain.clone(), own.key.clone_key())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Checks the server's certificate chain (leaf first) after the handshake,
/// beyond what webpki checked; returns why it is not the expected server.
pub type ServerCheck = Arc<dyn Fn(&[CertificateDer<'_>]) -> Result<(), String> + Send + Sync>;

/// The client's HTTP/2 keepalive unless told otherwise: a ping after 20 s
/// without traffic, the connection dropped if it is not answered in 20 s.
pub const KEEPALIVE: Duration = Duration::from_secs(20);

/// How long [`refusal`] waits for the server's first words.
const REFUSAL_WAIT: Duration = Duration::from_secs(2);

/// Why the server at `address` refuses this side, if it says so: opens a TLS
/// connection and reads what the server sends first. A server that refuses
/// the client's certificate sends an alert right after the handshake (TLS
/// 1.3), which a call's write may hit as a broken pipe before reading it;
/// a server that accepts it sends its HTTP/2 settings, and this returns `None`.
pub async fn refusal(
    address: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Option<TransportCause> {
    let name = ServerName::try_from(server_name.to_owned()).ok()?;
    let tcp = TcpStream::connect(address).await.ok()?;
    let mut tls = match TlsConnector::from(config).connect(name, tcp).await {
        Ok(tls) => tls,
        Err(error) => return TransportCause::of(&error),
    };
    let mut first = [0u8; 1];
    let read = std::future::poll_fn(|cx| {
        let mut buf = tokio::io::ReadBuf::new(&mut first);
        std::pin::Pin::new(&mut tls)
            .poll_read(cx, &mut buf)
            .map_ok(|()| buf.filled().len())
    });
    match tokio::time::timeout(REFUSAL_WAIT, read).await {
        Ok(Err(error)) => TransportCause::of(&error),
        _ => None,
    }
}

/// Opens a gRPC channel over mutual TLS to `address` (`host:port`), checking the
/// server's certificate against `server_name` and, when given, with `check`.
pub async fn connect(
    address: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
    check: Option<ServerCheck>,
) -> Result<Channel, TlsError> {
    let keepalive = (KEEPALIVE, KEEPALIVE);
    let (channel, _) =
        connect_with_keepalive(address, server_name, config, check, keepalive).await?;
    Ok(channel)
}

/// When the channel's connection last received a byte from the server.
///
/// HTTP/2 reports a connection dropped because a keepalive ping went
/// unanswered exactly as one the server closed (a broken pipe on every
/// stream); how long the server has been silent tells them apart.
#[derive(Clone, Debug)]
pub struct LastHeard(Arc<Mutex<Instant>>);

impl LastHeard {
    fn new() -> Self {
        LastHeard(Arc::new(Mutex::new(Instant::now())))
    }

    /// How long the server has sent nothing.
    pub fn silent_for(&self) -> Duration {
        // A plain instant: a panic elsewhere cannot leave it inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }

    fn heard(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

/// A connection that records in [`LastHeard`] when it reads.
struct Heard<S> {
    inner: S,
    last: LastHeard,
}

impl<S: AsyncRead + Unpin> AsyncRead for Heard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.last.heard();
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Heard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// [`connect`] with HTTP/2 keepalive pings every `keepalive.0` of silence,
/// also while idle, and the connection dropped as dead when one is not
/// answered within `keepalive.1`: a partition that drops every packet is
/// noticed instead of waited on. [`LastHeard`] says, when a call fails,
/// whether that is why.
pub async fn connect_with_keepalive(
    address: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
    check: Option<ServerCheck>,
    keepalive: (Duration, Duration),
) -> Result<(Channel, LastHeard), TlsError> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| TlsError::Address(format!("server name {server_name:?}: {e}")))?;
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| TlsError::Address(format!("address {address:?}: {e}")))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(keepalive.0)
        .keep_alive_timeout(keepalive.1)
        .keep_alive_while_idle(true);
    let dialled = address.to_owned();
    let address = address.to_owned();
    let last = LastHeard::new();
    let heard = last.clone();
    let connector = tower::service_fn(move |_| {
        let (address, name, config, check, last) = (
            address.clone(),
            name.clone(),
            config.clone(),
            check.clone(),
            heard.clone(),
        );
        async move {
            let tcp = TcpStream::connect(&address).await?;
            tcp.set_nodelay(true)?;
            let tls = TlsConnector::from(config).connect(name, tcp).await?;
            if let Some(check) = check {
                let certs = tls.get_ref().1.peer_certificates().unwrap_or_default();
                check(certs).map_err(|reason| {
                    io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("the server at {address} is not the one expected: {reason}"),
                    )
                })?;
            }
            last.heard();
            Ok::<_, io::Error>(TokioIo::new(Heard { inner: tls, last }))
        }
    });
    let channel = endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|error| TlsError::connect(&dialled, error))?;
    Ok((channel, last))
}
