//! A running gateway: its store, its two listeners and one courier per peer.

use std::{collections::BTreeSet, net::SocketAddr, sync::Arc, time::Duration};

use retorno_proto::v1::{agency_server::AgencyServer, peer_exchange_server::PeerExchangeServer};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::transport::Server;

use crate::{
    agency_api::AgencyService,
    config::Config,
    country::Country,
    delivery::Courier,
    identity::Identity,
    peer_api::{BATCH_BYTES, PeerService},
    store::{Store, StoreError},
    tls::{self, KeyedChain, TlsError},
};

/// How long a graceful shutdown may wait for connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The gateway's own certificate does not name its configured country.
    #[error(
        "{cert}: the gateway certificate names {found}, but the config says country = {country}: use {country}'s gateway certificate"
    )]
    WrongCertificate {
        /// The certificate file.
        cert: String,
        /// What the certificate says.
        found: String,
        /// What the config says.
        country: Country,
    },
    /// The database could not be opened.
    #[error("data_dir {dir}: {source}")]
    Store {
        /// The data folder.
        dir: String,
        /// What failed.
        source: StoreError,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A gateway serving its Peer and Agency APIs and delivering its outbox.
pub struct Gateway {
    country: Country,
    peer_addr: SocketAddr,
    agency_addr: SocketAddr,
    store: Arc<Store>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Binds the configured addresses and starts.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address)
                .await
                .map_err(|source| StartError::Bind { address, source })
        };
        let peer = bind(config.listen.peer).await?;
        let agency = bind(config.listen.agency).await?;
        Self::start_on(config, peer, agency).await
    }

    /// Starts on listeners the caller has bound (tests bind `127.0.0.1:0`).
    pub async fn start_on(
        config: Config,
        peer_listener: TcpListener,
        agency_listener: TcpListener,
    ) -> Result<Gateway, StartError> {
        let own = KeyedChain::load(&config.tls.gateway_cert, &config.tls.gateway_key)?;
        check_own_certificate(&config, &own)?;
        let regional_root = tls::load_roots(&config.tls.regional_root)?;
        let agency_ca = tls::load_roots(&config.tls.agency_ca)?;
        let store =
            Store::open(&config.data_dir, &config.storage).map_err(|source| StartError::Store {
                dir: config.data_dir.display().to_string(),
                source,
            })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let peer_addr = local_addr(&peer_listener)?;
        let agency_addr = local_addr(&agency_listener)?;
        let handshake_timeout = Duration::from_millis(config.limits.handshake_timeout_ms);
        let max = config.limits.max_message_bytes;
        let mut tasks = Vec::new();

        let peer_service = PeerService {
            country: config.country,
            store: store.clone(),
            max_message_bytes: max,
            shutdown: shutdown_rx.clone(),
        };
        let peer_incoming = tls::accept(
            peer_listener,
            tls::server_config(&own, regional_root.clone())?,
            Arc::new(|identity: &Identity| match identity {
                Identity::Gateway { .. } => Ok(()),
                other => Err(format!("{other} is not a gateway")),
            }),
            handshake_timeout,
            "peer",
        );
        let peer_server = PeerExchangeServer::new(peer_service)
            .max_decoding_message_size(max + BATCH_BYTES)
            .max_encoding_message_size(max + BATCH_BYTES);
        tasks.push(serve(
            Server::builder().add_service(peer_server),
            peer_incoming,
            shutdown_rx.clone(),
        ));

        let country = config.country;
        let agency_service = AgencyService {
            country,
            peers: Arc::new(config.peers.keys().copied().collect::<BTreeSet<_>>()),
            store: store.clone(),
            max_message_bytes: max,
            shutdown: shutdown_rx.clone(),
        };
        let agency_incoming = tls::accept(
            agency_listener,
            tls::server_config(&own, agency_ca)?,
            Arc::new(move |identity: &Identity| match identity {
                Identity::Agency { country: c, .. } if *c == country => Ok(()),
                other => Err(format!("{other} is not an agency of {country}")),
            }),
            handshake_timeout,
            "agency",
        );
        // Twice the limit, so that a message a little over it gets our
        // InvalidArgument naming the limit rather than a bare transport error.
        let agency_server = AgencyServer::new(agency_service)
            .max_decoding_message_size(2 * max)
            .max_encoding_message_size(max + BATCH_BYTES);
        tasks.push(serve(
            Server::builder().add_service(agency_server),
            agency_incoming,
            shutdown_rx.clone(),
        ));

        let client_tls = tls::client_config(&own, regional_root)?;
        for (peer, address) in &config.peers {
            let courier = Courier {
                peer: *peer,
                address: address.clone(),
                store: store.clone(),
                tls: client_tls.clone(),
                settings: config.delivery.clone(),
                max_message_bytes: max,
                shutdown: shutdown_rx.clone(),
            };
            tasks.push(tokio::spawn(courier.run()));
        }
        tracing::info!(%country, %peer_addr, %agency_addr, peers = config.peers.len(), "gateway started");
        Ok(Gateway {
            country,
            peer_addr,
            agency_addr,
            store,
            shutdown,
            tasks,
        })
    }

    /// This gateway's country.
    pub fn country(&self) -> Country {
        self.country
    }

    /// Where the Peer API listens.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Where the Agency API listens.
    pub fn agency_addr(&self) -> SocketAddr {
        self.agency_addr
    }

    /// How many envelopes wait for `peer` (for operators and tests).
    pub fn outbox_depth(&self, peer: Country) -> usize {
        self.store.outbox_depth(peer)
    }

    /// Stops accepting, ends open streams, stops delivery and waits (a few
    /// seconds at most) for all of it. Everything accepted stays in the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
        if let Err(error) = self.store.commit().await {
            tracing::error!(%error, "final flush failed");
        }
        tracing::info!(country = %self.country, "gateway stopped");
    }
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        address: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })
}

fn check_own_certificate(config: &Config, own: &KeyedChain) -> Result<(), StartError> {
    let expected = Identity::Gateway {
        country: config.country,
    };
    let found = own
        .chain
        .first()
        .map(|leaf| Identity::from_certificate(leaf))
        .transpose()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    if found.as_ref() == Some(&expected) {
        return Ok(());
    }
    Err(StartError::WrongCertificate {
        cert: config.tls.gateway_cert.display().to_string(),
        found: found.map_or_else(|| "nothing".to_owned(), |f| f.to_string()),
        country: config.country,
    })
}

fn serve(
    router: tonic::transport::server::Router,
    incoming: tokio_stream::wrappers::ReceiverStream<
        Result<tls::AuthenticatedStream, std::io::Error>,
    >,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let signal = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = router.serve_with_incoming_shutdown(incoming, signal).await {
            tracing::error!(%error, "server stopped with an error");
        }
    })
}
