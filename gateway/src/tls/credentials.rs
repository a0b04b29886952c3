//! The gateway's TLS material, replaced on disk and picked up without a restart.
//!
//! Both listeners are built once, over a certificate resolver and client
//! certificate verifiers that read the *current* material at each handshake;
//! couriers ask for the current client configuration at each (re)connect.
//! A background task re-reads the files every `tls.reload_interval_ms` and
//! installs a new generation only once it has passed every check of
//! [`super::material`]. Connections already open keep the material they were
//! made with until they end; nothing else (the store, the outbox) is touched.

use std::sync::{
    Arc, Mutex, PoisonError, RwLock,
    atomic::{AtomicU64, Ordering},
};

use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    server::danger::ClientCertVerifier,
    server::{ClientHello, NoServerSessionStorage, ResolvesServerCert, danger::ClientCertVerified},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::{sync::watch, task::JoinHandle};

use super::{
    CredentialsError,
    expiry::{self, CertificateInfo, CrlInfo},
    material::{self, Material, Snapshot},
};
use crate::{
    config::{Delegation, TlsPaths},
    country::Country,
};

/// The material in use, swapped whole by a reload.
type Slot = Arc<RwLock<Arc<Material>>>;

fn current(slot: &Slot) -> Arc<Material> {
    // A writer only assigns an Arc, so a poisoned lock still holds a whole value.
    slot.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A handle on the gateway's TLS material; cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    shared: Arc<Shared>,
}

struct Shared {
    country: Country,
    paths: TlsPaths,
    /// Consulates of other countries acting for this one: their agency CAs
    /// are read and reloaded with the rest.
    delegations: Vec<Delegation>,
    provider: Arc<CryptoProvider>,
    slot: Slot,
    peer_server: Arc<ServerConfig>,
    agency_server: Arc<ServerConfig>,
    /// The files of the last refused reload, so that one bad change is
    /// reported once, not at every poll, and the reason kept for operators.
    refused: Mutex<Option<(Snapshot, String)>>,
    installed: AtomicU64,
    refused_reloads: AtomicU64,
    peer_refusals: Arc<AtomicU64>,
    agency_refusals: Arc<AtomicU64>,
}

/// What a reload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The files are those in use (or those last refused): nothing to do.
    Unchanged,
    /// New material passed every check and is in use for new handshakes.
    Installed,
    /// New material failed a check; the previous material stays in use.
    Refused,
}

/// Counters for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// Reloads that installed new material (the material loaded at start not counted).
    pub installed: u64,
    /// Reloads whose material failed a check and was not installed.
    pub refused_reloads: u64,
    /// Peer API handshakes whose client certificate failed verification
    /// (unknown CA, expired, revoked).
    pub refused_peer_certificates: u64,
    /// Agency API handshakes whose client certificate failed verification.
    pub refused_agency_certificates: u64,
}

impl Credentials {
    /// Loads and checks the material of `country`'s gateway, and logs what is
    /// about to expire. Fails if anything is unusable: a gateway does not start
    /// with a certificate that its peers would refuse.
    pub fn load(country: Country, paths: &TlsPaths) -> Result<Credentials, CredentialsError> {
        Self::load_with_delegations(country, paths, &[])
    }

    /// As [`Credentials::load`], with the Agency API also admitting, at the
    /// TLS layer, certificates of the delegated countries' agencies, each
    /// verified under its own country's agency CA only (the gateway's
    /// admission rule then lets their consulates in, and no other role).
    pub fn load_with_delegations(
        country: Country,
        paths: &TlsPaths,
        delegations: &[Delegation],
    ) -> Result<Credentials, CredentialsError> {
        let provider = retorno_client::tls::provider();
        let snapshot = Snapshot::read(paths, delegations);
        let material = material::load(country, paths, delegations, snapshot, &provider)?;
        expiry::warn(
            &material.certificates,
            &material.crls,
            paths.expiry_warning_days,
        );
        let slot: Slot = Arc::new(RwLock::new(Arc::new(material)));
        let peer_refusals = Arc::new(AtomicU64::new(0));
        let agency_refusals = Arc::new(AtomicU64::new(0));
        let resolver = Arc::new(CurrentCertificate { slot: slot.clone() });
        let server = |listener: Listener, refusals: &Arc<AtomicU64>| {
            let verifier = Arc::new(CurrentVerifier {
                slot: slot.clone(),
                listener,
                refusals: refusals.clone(),
            });
            server_config(resolver.clone(), verifier, &provider)
        };
        let peer_server = server(Listener::Peer, &peer_refusals)?;
        let agency_server = server(Listener::Agency, &agency_refusals)?;
        Ok(Credentials {
            shared: Arc::new(Shared {
                country,
                paths: paths.clone(),
                delegations: delegations.to_vec(),
                provider,
                slot,
                peer_server,
                agency_server,
                refused: Mutex::new(None),
                installed: AtomicU64::new(0),
                refused_reloads: AtomicU64::new(0),
                peer_refusals,
                agency_refusals,
            }),
        })
    }

    /// The Peer API's server configuration: verifies peers under the regional root.
    pub fn peer_server_config(&self) -> Arc<ServerConfig> {
        self.shared.peer_server.clone()
    }

    /// The Agency API's server configuration: verifies agencies under the agency CA.
    pub fn agency_server_config(&self) -> Arc<ServerConfig> {
        self.shared.agency_server.clone()
    }

    /// The client configuration for connecting to peers, as it is now. Take
    /// it at each connection attempt, never keep it: a reload replaces it.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        current(&self.shared.slot).client.clone()
    }

    /// What seals this gateway's batches now: its current certificate and key.
    pub fn sealer(&self) -> crate::seal::Sealer {
        let material = current(&self.shared.slot);
        crate::seal::Sealer {
            certificate: material
                .certified
                .cert
                .first()
                .cloned()
                .unwrap_or_else(|| CertificateDer::from(Vec::new())),
            key: material.certified.key.clone(),
        }
    }

    /// The regional root certificates now trusted, to check peers' seals.
    pub fn regional_roots(&self) -> Vec<CertificateDer<'static>> {
        current(&self.shared.slot).regional_roots.clone()
    }

    /// The certificates in use and their expiry.
    pub fn certificates(&self) -> Vec<CertificateInfo> {
        current(&self.shared.slot).certificates.clone()
    }

    /// The revocation lists in use.
    pub fn crls(&self) -> Vec<CrlInfo> {
        current(&self.shared.slot).crls.clone()
    }

    /// Why the last reload was refused, while the files are still those refused.
    pub fn last_refusal(&self) -> Option<String> {
        self.refused().as_ref().map(|(_, reason)| reason.clone())
    }

    /// Reloads, handshake refusals.
    pub fn stats(&self) -> TlsStats {
        let shared = &self.shared;
        TlsStats {
            installed: shared.installed.load(Ordering::Relaxed),
            refused_reloads: shared.refused_reloads.load(Ordering::Relaxed),
            refused_peer_certificates: shared.peer_refusals.load(Ordering::Relaxed),
            refused_agency_certificates: shared.agency_refusals.load(Ordering::Relaxed),
        }
    }

    /// Re-reads the files and installs them if they changed and pass every
    /// check; otherwise keeps the material in use and logs why (once per change).
    pub fn reload(&self) -> Reload {
        let shared = &self.shared;
        let snapshot = Snapshot::read(&shared.paths, &shared.delegations);
        let in_use = current(&shared.slot);
        if snapshot == in_use.snapshot {
            *self.refused() = None;
            return Reload::Unchanged;
        }
        if matches!(&*self.refused(), Some((refused, _)) if *refused == snapshot) {
            return Reload::Unchanged;
        }
        let changed = snapshot.changed_since(&in_use.snapshot).join(", ");
        match material::load(
            shared.country,
            &shared.paths,
            &shared.delegations,
            snapshot.clone(),
            &shared.provider,
        ) {
            Ok(material) => {
                expiry::warn(
                    &material.certificates,
                    &material.crls,
                    shared.paths.expiry_warning_days,
                );
                *shared.slot.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(material);
                *self.refused() = None;
                shared.installed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(country = %shared.country, %changed, "new TLS material installed: new handshakes use it");
                Reload::Installed
            }
            Err(error) => {
                tracing::error!(country = %shared.country, %changed, %error, "new TLS material refused: the previous certificates stay in use");
                *self.refused() = Some((snapshot, error.to_string()));
                shared.refused_reloads.fetch_add(1, Ordering::Relaxed);
                Reload::Refused
            }
        }
    }

    /// Re-reads the files every `tls.reload_interval_ms` until `shutdown` turns true.
    pub fn watch(&self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let credentials = self.clone();
        let interval = self.shared.paths.reload_interval();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                let reloading = credentials.clone();
                // Reading files and checking signatures would stall the runtime's worker.
                if let Err(error) = tokio::task::spawn_blocking(move || reloading.reload()).await {
                    tracing::error!(%error, "the TLS reload task failed; retrying at the next interval");
                }
            }
        })
    }

    fn refused(&self) -> std::sync::MutexGuard<'_, Option<(Snapshot, String)>> {
        self.shared
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A listener's server configuration over the current material.
fn server_config(
    resolver: Arc<CurrentCertificate>,
    verifier: Arc<CurrentVerifier>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, CredentialsError> {
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CredentialsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec()];
    // A resumed session skips client certificate verification, so a
    // certificate revoked (or a CA replaced) since the first handshake would
    // still get in. Connections are long-lived: full handshakes cost nothing.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Presents the gateway's current certificate at each handshake.
#[derive(Debug)]
struct CurrentCertificate {
    slot: Slot,
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(current(&self.slot).certified.clone())
    }
}

/// Which listener a verifier serves, so it picks the right trust anchors.
#[derive(Clone, Copy, Debug)]
enum Listener {
    Peer,
    Agency,
}

/// Verifies a client certificate with the current material's verifier for its listener.
#[derive(Debug)]
struct CurrentVerifier {
    slot: Slot,
    listener: Listener,
    refusals: Arc<AtomicU64>,
}

impl CurrentVerifier {
    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        let material = current(&self.slot);
        match self.listener {
            Listener::Peer => material.peer_verifier.clone(),
            Listener::Agency => material.agency_verifier.clone(),
        }
    }

    /// The verifier for this certificate: on the Agency API, a delegated
    /// country's certificate is checked under that country's agency CA.
    fn for_certificate(&self, end_entity: &CertificateDer<'_>) -> Arc<dyn ClientCertVerifier> {
        let material = current(&self.slot);
        match self.listener {
            Listener::Peer => material.peer_verifier.clone(),
            Listener::Agency => material.agency_verifier_for(end_entity),
        }
    }
}

impl ClientCertVerifier for CurrentVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No hints: they would have to borrow from material that a reload may
    /// replace, and our clients hold exactly one certificate each, so a hint
    /// would never change what they send.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verdict =
            self.for_certificate(end_entity)
                .verify_client_cert(end_entity, intermediates, now);
        if verdict.is_err() {
            self.refusals.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("country", &self.shared.country)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use retorno_certs_dev::{Holder, Layout, Lifetime, Options};

    fn pki(dir: &std::path::Path) -> (Layout, TlsPaths) {
        let layout = retorno_certs_dev::generate(&Options {
            out: dir.to_owned(),
            countries: vec!["MX".into(), "GT".into()],
            force: false,
        })
        .unwrap();
        let paths = TlsPaths {
            regional_root: layout.root_ca(),
            gateway_cert: layout.gateway_cert("MX"),
            gateway_key: layout.gateway_key("MX"),
            agency_ca: layout.agency_ca("MX"),
            crls: Vec::new(),
            reload_interval_ms: 50,
            expiry_warning_days: 30,
        };
        (layout, paths)
    }

    fn leaf(credentials: &Credentials) -> Vec<u8> {
        current(&credentials.shared.slot).certified.cert[0].to_vec()
    }

    #[test]
    fn a_bad_change_is_refused_once_and_a_good_one_installed() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, paths) = pki(dir.path());
        let mx = Credentials::load("MX".parse().unwrap(), &paths).unwrap();
        let original = leaf(&mx);
        assert_eq!(mx.reload(), Reload::Unchanged);

        std::fs::write(&paths.gateway_cert, "not a certificate").unwrap();
        assert_eq!(mx.reload(), Reload::Refused);
        assert_eq!(mx.reload(), Reload::Unchanged, "reported once");
        let reason = mx.last_refusal().unwrap();
        assert!(reason.contains("gateway.pem"), "{reason}");
        assert_eq!(leaf(&mx), original, "the old certificate stays");

        let mx_holder = Holder::Gateway {
            country: "MX".into(),
        };
        retorno_certs_dev::renew(&layout, &mx_holder, Lifetime::default()).unwrap();
        assert_eq!(mx.reload(), Reload::Installed);
        assert_ne!(leaf(&mx), original);
        assert_eq!(mx.last_refusal(), None);
        assert_eq!(
            mx.stats(),
            TlsStats {
                installed: 1,
                refused_reloads: 1,
                ..TlsStats::default()
            }
        );
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, paths) = pki(dir.path());
        let mx = Credentials::load("MX".parse().unwrap(), &paths).unwrap();
        std::fs::copy(layout.gateway_key("GT"), &paths.gateway_key).unwrap();
        assert_eq!(mx.reload(), Reload::Refused);
        let reason = mx.last_refusal().unwrap();
        assert!(
            reason.contains("gateway.key.pem") && reason.contains("does not belong"),
            "{reason}"
        );
    }
}
