//! One generation of TLS material: read from disk, checked, ready to install.
//!
//! Everything is checked before it is used (STYLE 4, after linkerd's
//! credential store): the key must belong to the certificate, the
//! certificate must name this gateway's country and chain to the regional
//! root, every revocation list must parse. A generation that fails any check
//! is never installed, so a half-copied or wrong file cannot take a running
//! gateway off the network.

use std::{collections::BTreeMap, path::Path, path::PathBuf, sync::Arc};

use retorno_client::tls::{KeyedChain, client_config_with_crls};
use rustls::{
    ClientConfig, RootCertStore,
    crypto::CryptoProvider,
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
    sign::CertifiedKey,
};
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime, pem::PemObject,
};

use super::{
    CredentialsError,
    expiry::{CertificateInfo, CertificateRole, CrlInfo},
};
use crate::{
    config::{Delegation, TlsPaths},
    country::Country,
    identity::Identity,
};

/// The bytes of every TLS file, read once, so that what is checked is exactly
/// what is installed, and so that a change is noticed by content (a
/// modification time can stay the same across a quick rewrite).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    files: Vec<(PathBuf, Result<Vec<u8>, String>)>,
}

/// Names the files only: the bytes include the private key.
impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.files.iter().map(|(path, _)| path))
            .finish()
    }
}

impl Snapshot {
    /// Reads every file of `paths` and the delegated countries' agency CAs;
    /// a file that cannot be read is recorded with the reason.
    pub(crate) fn read(paths: &TlsPaths, delegations: &[Delegation]) -> Snapshot {
        let mut list = vec![
            paths.gateway_cert.clone(),
            paths.gateway_key.clone(),
            paths.regional_root.clone(),
            paths.agency_ca.clone(),
        ];
        list.extend(paths.crls.iter().cloned());
        list.extend(delegations.iter().map(|d| d.agency_ca.clone()));
        let files = list
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).map_err(|e| e.to_string());
                (path, bytes)
            })
            .collect();
        Snapshot { files }
    }

    /// The files whose contents differ from `other`, for the log of a reload.
    pub(crate) fn changed_since(&self, other: &Snapshot) -> Vec<String> {
        self.files
            .iter()
            .filter(|(path, bytes)| !other.files.iter().any(|(p, b)| p == path && b == bytes))
            .map(|(path, _)| path.display().to_string())
            .collect()
    }

    fn bytes(&self, path: &Path) -> Result<&[u8], CredentialsError> {
        let found = self.files.iter().find(|(p, _)| p == path);
        match found.map(|(_, bytes)| bytes) {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(reason)) => Err(CredentialsError::Read {
                path: path.to_owned(),
                reason: reason.clone(),
            }),
            None => Err(CredentialsError::Read {
                path: path.to_owned(),
                reason: "not read".into(),
            }),
        }
    }
}

/// Checked TLS material, shared by both listeners and by every courier.
#[derive(Debug)]
pub(crate) struct Material {
    /// This gateway's chain and key, presented on both listeners and to peers.
    pub(crate) certified: Arc<CertifiedKey>,
    /// Verifies peers' client certificates: regional root and revocation lists.
    pub(crate) peer_verifier: Arc<dyn ClientCertVerifier>,
    /// Verifies agencies' client certificates: agency CA and revocation lists.
    pub(crate) agency_verifier: Arc<dyn ClientCertVerifier>,
    /// Verifies the certificates of consulates acting for this country, one
    /// verifier per delegated country under that country's agency CA only,
    /// so that a delegated CA cannot certify this country's own agencies.
    pub(crate) delegated_verifiers: BTreeMap<Country, Arc<dyn ClientCertVerifier>>,
    /// For connections to peers: presents `certified`, verifies under the regional root.
    pub(crate) client: Arc<ClientConfig>,
    /// Subjects and expiry dates, for warnings and `check-config`.
    pub(crate) certificates: Vec<CertificateInfo>,
    /// The revocation lists in use.
    pub(crate) crls: Vec<CrlInfo>,
    /// What was read, to notice the next change.
    pub(crate) snapshot: Snapshot,
    /// The regional root certificates (DER), to check peers' seals.
    pub(crate) regional_roots: Vec<CertificateDer<'static>>,
}

impl Material {
    /// The verifier for an agency's certificate: the delegated country's CA
    /// if the certificate names a delegated country, this country's otherwise
    /// (a certificate naming any other country then fails there, or at admission).
    pub(crate) fn agency_verifier_for(
        &self,
        end_entity: &CertificateDer<'_>,
    ) -> Arc<dyn ClientCertVerifier> {
        if !self.delegated_verifiers.is_empty()
            && let Ok(Identity::Agency { country, .. }) = Identity::from_certificate(end_entity)
            && let Some(verifier) = self.delegated_verifiers.get(&country)
        {
            return verifier.clone();
        }
        self.agency_verifier.clone()
    }
}

/// Parses and checks a snapshot into material for `country`'s gateway.
pub(crate) fn load(
    country: Country,
    paths: &TlsPaths,
    delegations: &[Delegation],
    snapshot: Snapshot,
    provider: &Arc<CryptoProvider>,
) -> Result<Material, CredentialsError> {
    let chain = certificates(&snapshot, &paths.gateway_cert)?;
    let key = private_key(&snapshot, &paths.gateway_key)?;
    let regional_root = roots(&snapshot, &paths.regional_root)?;
    let regional_roots = certificates(&snapshot, &paths.regional_root)?;
    let agency_ca = roots(&snapshot, &paths.agency_ca)?;
    let crls = revocation_lists(&snapshot, paths, &regional_root, provider)?;

    let certified = certified_key(paths, chain.clone(), key.clone_key(), provider)?;
    check_country(country, paths, &chain)?;
    check_chain(paths, &chain, &regional_root, provider)?;
    let peer_verifier = client_verifier(&regional_root, &crls, provider)?;
    let agency_verifier = client_verifier(&agency_ca, &crls, provider)?;
    let mut delegated_verifiers = BTreeMap::new();
    for delegation in delegations {
        let ca = roots(&snapshot, &delegation.agency_ca)?;
        let verifier = client_verifier(&ca, &crls, provider)?;
        delegated_verifiers.insert(delegation.consulate_country, verifier);
    }
    warn_if_revoked(paths, &chain, &peer_verifier);
    let client = client_config_with_crls(
        &KeyedChain { chain, key },
        (*regional_root).clone(),
        crls.iter().map(|(_, crl)| crl.clone()).collect(),
    )
    .map_err(|e| CredentialsError::Config(e.to_string()))?;

    Ok(Material {
        certified: Arc::new(certified),
        peer_verifier,
        agency_verifier,
        delegated_verifiers,
        client,
        certificates: describe_certificates(&snapshot, paths, delegations),
        crls: crls
            .iter()
            .filter_map(|(path, crl)| CrlInfo::read(path, crl))
            .collect(),
        snapshot,
        regional_roots,
    })
}

fn pem_error(path: &Path, reason: impl std::fmt::Display) -> CredentialsError {
    CredentialsError::Pem {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Every certificate of a PEM file; none is an error.
fn certificates(
    snapshot: &Snapshot,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, CredentialsError> {
    let certs = CertificateDer::pem_slice_iter(snapshot.bytes(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate found in the file"));
    }
    Ok(certs)
}

fn private_key(
    snapshot: &Snapshot,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, CredentialsError> {
    PrivateKeyDer::from_pem_slice(snapshot.bytes(path)?).map_err(|e| pem_error(path, e))
}

fn roots(snapshot: &Snapshot, path: &Path) -> Result<Arc<RootCertStore>, CredentialsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(snapshot, path)? {
        store.add(cert).map_err(|e| pem_error(path, e))?;
    }
    Ok(Arc::new(store))
}

/// Every CRL of every `tls.crls` file, each checked on its own so that an
/// error names the file.
fn revocation_lists(
    snapshot: &Snapshot,
    paths: &TlsPaths,
    any_roots: &Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Vec<(PathBuf, CertificateRevocationListDer<'static>)>, CredentialsError> {
    let mut all = Vec::new();
    for path in &paths.crls {
        let crls = CertificateRevocationListDer::pem_slice_iter(snapshot.bytes(path)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| crl_error(path, e))?;
        if crls.is_empty() {
            return Err(crl_error(path, "no X509 CRL found in the file"));
        }
        // Building a verifier parses each list the way handshakes will.
        WebPkiClientVerifier::builder_with_provider(any_roots.clone(), provider.clone())
            .with_crls(crls.iter().cloned())
            .build()
            .map_err(|e| crl_error(path, e))?;
        all.extend(crls.into_iter().map(|crl| (path.clone(), crl)));
    }
    Ok(all)
}

fn crl_error(path: &Path, reason: impl std::fmt::Display) -> CredentialsError {
    CredentialsError::Crl {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The chain and key as rustls presents them; the key must be the certificate's.
fn certified_key(
    paths: &TlsPaths,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CredentialsError> {
    CertifiedKey::from_der(chain, key, provider).map_err(|error| match error {
        rustls::Error::InconsistentKeys(_) => CredentialsError::KeyMismatch {
            cert: paths.gateway_cert.clone(),
            key: paths.gateway_key.clone(),
        },
        other => pem_error(&paths.gateway_key, other),
    })
}

/// The certificate must name this gateway: another country's certificate
/// would make peers take this gateway for that country.
fn check_country(
    country: Country,
    paths: &TlsPaths,
    chain: &[CertificateDer<'static>],
) -> Result<(), CredentialsError> {
    let found = chain
        .first()
        .map(|leaf| Identity::from_certificate(leaf))
        .transpose();
    let found = match found {
        Ok(Some(identity)) if identity == (Identity::Gateway { country }) => return Ok(()),
        Ok(Some(identity)) => identity.to_string(),
        Ok(None) => "nothing".to_owned(),
        Err(error) => error.to_string(),
    };
    Err(CredentialsError::WrongCountry {
        cert: paths.gateway_cert.clone(),
        found,
        country,
    })
}

/// The certificate must chain to the regional root and be valid now, or
/// every peer would refuse it.
fn check_chain(
    paths: &TlsPaths,
    chain: &[CertificateDer<'static>],
    regional_root: &Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<(), CredentialsError> {
    let untrusted = |reason: String| CredentialsError::Untrusted {
        cert: paths.gateway_cert.clone(),
        root: paths.regional_root.clone(),
        reason,
    };
    let verifier = client_verifier(regional_root, &[], provider)?;
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| untrusted("no certificate".into()))?;
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .map(|_| ())
        .map_err(|e| untrusted(e.to_string()))
}

/// A gateway whose own certificate is revoked still installs the rest (the
/// lists protect it from others); it says loudly that peers will refuse it.
fn warn_if_revoked(
    paths: &TlsPaths,
    chain: &[CertificateDer<'static>],
    verifier: &Arc<dyn ClientCertVerifier>,
) {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return;
    };
    if let Err(error) = verifier.verify_client_cert(leaf, intermediates, UnixTime::now()) {
        tracing::error!(file = %paths.gateway_cert.display(), %error, "this gateway's own certificate is refused by its revocation lists: peers with the same lists refuse it too; renew it");
    }
}

/// A verifier of client certificates under `roots`, honouring `crls`.
///
/// A certificate whose issuer has no list is accepted: lists are optional per
/// CA, so "no list for this CA" must not mean "every certificate revoked".
pub(crate) fn client_verifier(
    roots: &Arc<RootCertStore>,
    crls: &[(PathBuf, CertificateRevocationListDer<'static>)],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, CredentialsError> {
    let mut builder = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
    if !crls.is_empty() {
        builder = builder
            .with_crls(crls.iter().map(|(_, crl)| crl.clone()))
            .allow_unknown_revocation_status();
    }
    builder
        .build()
        .map_err(|e| CredentialsError::Config(e.to_string()))
}

/// The expiry of every certificate in use: own chain, regional root, agency
/// CA and the delegated countries' agency CAs.
fn describe_certificates(
    snapshot: &Snapshot,
    paths: &TlsPaths,
    delegations: &[Delegation],
) -> Vec<CertificateInfo> {
    let mut found = Vec::new();
    let mut add = |path: &Path, role: CertificateRole, der: &[u8]| {
        if let Some(info) = CertificateInfo::read(path, role, der) {
            found.push(info);
        }
    };
    for (i, cert) in certificates(snapshot, &paths.gateway_cert)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let role = if i == 0 {
            CertificateRole::Gateway
        } else {
            CertificateRole::Intermediate
        };
        add(&paths.gateway_cert, role, cert);
    }
    let cas = [
        (&paths.regional_root, CertificateRole::RegionalRoot),
        (&paths.agency_ca, CertificateRole::AgencyCa),
    ];
    let delegated = delegations
        .iter()
        .map(|d| (&d.agency_ca, CertificateRole::AgencyCa));
    for (path, role) in cas.into_iter().chain(delegated) {
        for cert in certificates(snapshot, path).unwrap_or_default() {
            add(path, role, &cert);
        }
    }
    found
}
