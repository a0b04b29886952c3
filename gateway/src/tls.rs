//! Mutual TLS for both listeners and for outgoing connections.
//!
//! retorno does its own TLS with rustls instead of tonic's built-in TLS so that
//! the client certificate is read into an [`Identity`] exactly once, at the
//! handshake, and attached to every request of that connection; a connection
//! whose certificate does not name an acceptable party never reaches a handler.
//! Plain TLS without a client certificate, and plaintext, are never accepted.
//!
//! The certificates, keys, CAs and revocation lists are re-read from disk
//! while the gateway runs ([`Credentials`]), so that an operator can rotate a
//! certificate or revoke one without a restart.
//!
//! # Layout
//! - this file: the acceptor that reads identities once per connection, and
//!   the stream that closes an idle connection ([`crate::connections`] decides).
//! - `credentials`: [`Credentials`], the swappable material and its reload task.
//! - `material`: reading and checking one generation of material.
//! - `expiry`: [`CertificateInfo`], expiry dates and the warnings before them.

mod credentials;
mod expiry;
mod material;

use std::{
    io,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

pub use credentials::{Credentials, Reload, TlsStats};
pub use expiry::{CertificateInfo, CertificateRole, CrlInfo};
pub use retorno_client::tls::{KeyedChain, TlsError, client_config, load_certificates, load_roots};
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::{
    connections::{Activity, ConnectionRules, ConnectionSlot, Ending, IdleTimer, Watch},
    country::Country,
    identity::{Identity, IdentityError},
};

/// Why TLS material cannot be used: at start the gateway does not start; on
/// a reload the previous material stays in use. Each names the file and why.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file could not be read (missing, permissions, being replaced).
    #[error("{path}: cannot read: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key is not the certificate's.
    #[error(
        "{key}: this private key does not belong to the certificate in {cert}: install the key issued with that certificate"
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate names another party than this gateway.
    #[error(
        "{cert}: the gateway certificate names {found}, but the config says country = {country}: use {country}'s gateway certificate"
    )]
    WrongCountry {
        /// The certificate file.
        cert: PathBuf,
        /// What the certificate names.
        found: String,
        /// This gateway's country.
        country: Country,
    },
    /// The certificate does not chain to the regional root, or is expired.
    #[error(
        "{cert}: the gateway certificate is not valid under the regional root {root}: {reason}"
    )]
    Untrusted {
        /// The certificate file.
        cert: PathBuf,
        /// The regional root file.
        root: PathBuf,
        /// webpki's reason (unknown issuer, expired, ...).
        reason: String,
    },
    /// A revocation list does not parse.
    #[error("{path}: not a usable revocation list: {reason}")]
    Crl {
        /// The CRL file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// Opens a channel to `peer`'s Peer API with this gateway's current
/// client certificate, checking that the server is that peer's gateway.
pub async fn connect_to_peer(
    peer: crate::country::Country,
    address: &crate::config::PeerConfig,
    credentials: &Credentials,
    keepalive: crate::config::Keepalive,
) -> Result<(tonic::transport::Channel, retorno_client::tls::LastHeard), TlsError> {
    let check = expect_identity(Identity::Gateway { country: peer });
    retorno_client::tls::connect_with_keepalive(
        &address.address,
        address.server_name(),
        credentials.client_config(),
        Some(check),
        (keepalive.interval, keepalive.timeout),
    )
    .await
}

/// A check for [`retorno_client::tls::connect`]: the server's certificate must name `expected`.
pub fn expect_identity(expected: Identity) -> retorno_client::tls::ServerCheck {
    Arc::new(move |certs: &[CertificateDer<'_>]| {
        let found = peer_identity(Some(certs)).map_err(|e| e.to_string())?;
        if found == expected {
            Ok(())
        } else {
            Err(format!(
                "its certificate names {found}, expected {expected}"
            ))
        }
    })
}

/// What a handler knows about the connection a request came on.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// Who the client certificate says the caller is.
    pub identity: Identity,
    /// The caller's address, for logs.
    pub remote: SocketAddr,
    /// The calls in progress on this connection, which keep it from being closed as idle.
    pub activity: Arc<Activity>,
}

/// Reads the caller's identity that the acceptor attached to a request.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<&Identity, tonic::Status> {
    request
        .extensions()
        .get::<PeerInfo>()
        .map(|info| &info.identity)
        .ok_or_else(|| tonic::Status::unauthenticated("no authenticated client certificate"))
}

/// A server-side TLS connection whose client certificate has been read. It
/// reads as ended once the connection has been idle for the listener's
/// timeout, and says why the connection ended when it is dropped.
pub struct AuthenticatedStream {
    inner: TlsStream<TcpStream>,
    info: PeerInfo,
    idle: IdleTimer,
    watch: Watch,
    listener: &'static str,
    /// Counts this connection against its identity's limit while it is open.
    _slot: ConnectionSlot,
}

impl Drop for AuthenticatedStream {
    fn drop(&mut self) {
        self.watch.log_end(&self.info, self.listener);
    }
}

impl Connected for AuthenticatedStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for AuthenticatedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // An idle connection reads as ended: the HTTP/2 server then closes it.
        if this.watch.closed_idle() || this.idle.poll_expired(cx).is_ready() {
            this.watch.ended(Ending::Idle);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &read {
            Poll::Ready(Ok(())) if buf.filled().len() > before => this.watch.read(),
            Poll::Ready(_) => this.watch.ended(Ending::ByClient),
            Poll::Pending => {}
        }
        read
    }
}

impl AsyncWrite for AuthenticatedStream {
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

/// Decides whether an authenticated identity may use a listener; the error is logged.
pub type AdmissionRule = Arc<dyn Fn(&Identity) -> Result<(), String> + Send + Sync>;

/// Accepts TCP connections, runs each TLS handshake in its own task (so that a
/// slow or hostile client cannot hold up the others), reads the client's
/// identity and yields only the connections that `admit` and the identity's
/// connection limit allow.
pub fn accept(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    admit: AdmissionRule,
    rules: ConnectionRules,
    listener_name: &'static str,
) -> ReceiverStream<Result<AuthenticatedStream, io::Error>> {
    let (sender, receiver) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(listener = listener_name, %error, "accept failed");
                        continue;
                    }
                },
                () = sender.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            if let Err(error) = crate::connections::tcp_keepalive(&tcp, rules.keepalive) {
                tracing::debug!(listener = listener_name, %remote, %error, "TCP keepalive not set");
            }
            let acceptor = acceptor.clone();
            let admit = admit.clone();
            let sender = sender.clone();
            let rules = rules.clone();
            tokio::spawn(async move {
                match handshake(acceptor, tcp, remote, &admit, &rules, listener_name).await {
                    Ok(stream) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Err(Refused::Abandoned(reason)) => {
                        tracing::debug!(listener = listener_name, %remote, %reason, "the client left before the TLS handshake completed");
                    }
                    Err(Refused::Refused(reason)) => {
                        tracing::warn!(listener = listener_name, %remote, %reason, "connection refused");
                    }
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

/// Why a connection did not get past the handshake.
enum Refused {
    /// The client closed the connection before the handshake completed: not
    /// an incident (a client that gave up, a port probe, a health check).
    Abandoned(String),
    /// The gateway refused it: a certificate, an identity, a limit, a stall.
    Refused(String),
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    admit: &AdmissionRule,
    rules: &ConnectionRules,
    listener: &'static str,
) -> Result<AuthenticatedStream, Refused> {
    let timeout = rules.handshake_timeout;
    let tls = tokio::time::timeout(timeout, acceptor.accept(tcp))
        .await
        .map_err(|_| Refused::Refused(format!("TLS handshake took longer than {timeout:?}")))?
        .map_err(handshake_failed)?;
    let identity = peer_identity(tls.get_ref().1.peer_certificates())
        .map_err(|e| Refused::Refused(e.to_string()))?;
    admit(&identity).map_err(Refused::Refused)?;
    let slot = rules.slots.open(&identity).map_err(Refused::Refused)?;
    let activity = Activity::new();
    Ok(AuthenticatedStream {
        inner: tls,
        idle: IdleTimer::new(activity.clone(), rules.idle_timeout),
        watch: Watch::new(rules),
        info: PeerInfo {
            identity,
            remote,
            activity,
        },
        listener,
        _slot: slot,
    })
}

/// A failed handshake: abandoned if the client's end closed or reset the
/// connection, refused if TLS itself failed (rustls says why, e.g. a
/// certificate it does not trust).
fn handshake_failed(error: io::Error) -> Refused {
    let reason = format!("TLS handshake failed: {error}");
    match error.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Refused::Abandoned(reason),
        _ => Refused::Refused(reason),
    }
}

fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Result<Identity, IdentityError> {
    let leaf = certs
        .and_then(|certs| certs.first())
        .ok_or(IdentityError::NoCertificate)?;
    Identity::from_certificate(leaf)
}
