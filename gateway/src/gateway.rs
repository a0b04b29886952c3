//! A running gateway: its store, its two listeners and one courier per peer.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use retorno_proto::v1::{
    agency_server::AgencyServer, operator_server::OperatorServer,
    peer_exchange_server::PeerExchangeServer,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::transport::Server;

use crate::{
    agency_api::AgencyService,
    alerts::{Alerts, Watched},
    case::Rules,
    clock::Clock,
    config::{Config, ConfigError, Limits},
    connections::{ConnectionRules, TrackCalls},
    country::Country,
    delivery::Courier,
    health::{Checks, Reporters},
    identity::{Identity, Role},
    lease::Lease,
    limits::{NameTheSizeLimit, RateLimiter, StreamSlots},
    links::Links,
    metrics::{self, Metrics},
    operator_api::OperatorService,
    peer_api::{BATCH_BYTES, PeerService},
    policy,
    reception::{ArrivalRefresh, PolicyFetcher, PolicyWatch},
    store::{Store, StoreError},
    tls::{self, Credentials, CredentialsError},
};

/// How long a graceful shutdown may wait for connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A certificate, key, CA or revocation list could not be used (the
    /// error names the file; a certificate for another country is one of these).
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The configuration cannot work.
    #[error(transparent)]
    Config(ConfigError),
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
    /// Re-read from disk while the gateway runs; see [`Credentials`].
    credentials: Credentials,
    shutdown: watch::Sender<bool>,
    /// True while an operator has drained the gateway: health says
    /// NOT_SERVING so that a load balancer takes it out, while queued
    /// messages still go out.
    drain: watch::Sender<bool>,
    /// Alerts to webhooks; [`Gateway::alerts`] lets other checks raise theirs.
    alerts: Arc<Alerts>,
    metrics: Metrics,
    /// Where `GET /metrics` is served, if `[metrics]` enables it.
    metrics_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    /// Why this node lost its lease, once it has ([`Gateway::lease_lost`]).
    lease_lost: watch::Receiver<Option<String>>,
}

impl Gateway {
    /// Binds the configured addresses and starts.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        Self::start_with_clock(config, Clock::system()).await
    }

    /// [`Gateway::start`] with the case rules reading the time from `clock`
    /// (`retorno-gateway dev --danger-clock-ahead-days`).
    pub async fn start_with_clock(config: Config, clock: Clock) -> Result<Gateway, StartError> {
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address)
                .await
                .map_err(|source| StartError::Bind { address, source })
        };
        let peer = bind(config.listen.peer).await?;
        let agency = bind(config.listen.agency).await?;
        Self::start_on_clock(config, peer, agency, clock).await
    }

    /// Starts on listeners the caller has bound (tests bind `127.0.0.1:0`).
    pub async fn start_on(
        config: Config,
        peer_listener: TcpListener,
        agency_listener: TcpListener,
    ) -> Result<Gateway, StartError> {
        Self::start_on_clock(config, peer_listener, agency_listener, Clock::system()).await
    }

    /// [`Gateway::start_on`] with the case rules reading the time from
    /// `clock`: tests (and `retorno-gateway dev`) move it forward to walk a
    /// case whose steps are days apart.
    pub async fn start_on_clock(
        config: Config,
        peer_listener: TcpListener,
        agency_listener: TcpListener,
        clock: Clock,
    ) -> Result<Gateway, StartError> {
        let credentials =
            Credentials::load_with_delegations(config.country, &config.tls, &config.delegations)?;
        let vault = crate::at_rest::Vault::load(&config.storage.keys).map_err(|error| {
            StartError::Config(ConfigError::Invalid {
                file: "(configuration)".into(),
                field: "storage.keys".into(),
                problem: error.to_string(),
            })
        })?;
        vault.log_status();
        if let Some(warning) = config.storage.durability.warning() {
            tracing::warn!("{warning}");
        }
        let metrics_listener =
            metrics::bind(&config.metrics)
                .await
                .map_err(|source| StartError::Bind {
                    address: config.metrics.listen,
                    source,
                })?;
        let listeners = Listeners {
            peer: peer_listener,
            agency: agency_listener,
            metrics: metrics_listener,
        };
        let opened = open_store(&config, &credentials, Arc::new(vault), listeners).await?;
        let (store, peer_listener, agency_listener, metrics_listener) = (
            opened.store,
            opened.listeners.peer,
            opened.listeners.agency,
            opened.listeners.metrics,
        );
        if store.went_back_unacknowledged().unwrap_or(false) {
            tracing::error!(
                "this gateway went back in time and no operator has acknowledged it: peers hold messages or receipts it no longer has; `retorno-gateway rollback --config FILE` lists them (and --acknowledge marks them seen)"
            );
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (drain, draining) = watch::channel(false);
        let links = Arc::new(Links::new(config.peers.keys().copied()));
        let metrics = Metrics::new();
        metrics.lease_held(true);
        let peer_addr = local_addr(&peer_listener)?;
        let agency_addr = local_addr(&agency_listener)?;
        let max = config.limits.max_message_bytes;
        let mut tasks = Vec::new();

        let rules = Arc::new(case_rules(&config, &store, clock)?);
        let fetchers = policy_fetchers(&config, &credentials, &store, &rules);
        let peer_service = PeerService {
            country: config.country,
            store: store.clone(),
            max_message_bytes: max,
            shutdown: shutdown_rx.clone(),
            rules: rules.clone(),
            streams: StreamSlots::new(config.limits.streams_per_peer),
            tls: credentials.clone(),
            metrics: metrics.clone(),
            policy_refresh: Arc::new(
                fetchers
                    .iter()
                    .map(|(peer, fetcher)| (*peer, ArrivalRefresh::new(fetcher.clone())))
                    .collect(),
            ),
        };
        let peer_incoming = tls::accept(
            peer_listener,
            credentials.peer_server_config(),
            peer_admission(),
            ConnectionRules::for_listener(&config.limits),
            "peer",
        );
        let peer_server = PeerExchangeServer::new(peer_service)
            .max_decoding_message_size(max + BATCH_BYTES)
            .max_encoding_message_size(max + BATCH_BYTES);
        let (peer_health, peer_health_service) = tonic_health::server::health_reporter();
        tasks.push(serve(
            server(&config.limits)
                .layer(TrackCalls)
                .add_service(peer_health_service)
                .add_service(peer_server)
                .serve_with_incoming_shutdown(peer_incoming, stopped(shutdown_rx.clone())),
        ));

        let country = config.country;
        let agency_service = AgencyService {
            country,
            peers: Arc::new(config.peers.keys().copied().collect::<BTreeSet<_>>()),
            store: store.clone(),
            max_message_bytes: max,
            shutdown: shutdown_rx.clone(),
            rules: rules.clone(),
            submit_limit: Arc::new(RateLimiter::new(
                config.limits.agency_submits_per_second,
                config.limits.agency_submit_burst,
            )),
            metrics: metrics.clone(),
            statistics: config.statistics,
        };
        let agency_incoming = tls::accept(
            agency_listener,
            credentials.agency_server_config(),
            agency_admission(country, config.delegated_consulates()),
            ConnectionRules::for_listener(&config.limits),
            "agency",
        );
        // A request is refused from its length prefix, before it is read, if
        // it is over the limit (a submit is measured whole, so it needs no
        // framing beyond it); the refusal names the setting.
        let agency_server = AgencyServer::new(agency_service)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max + BATCH_BYTES);
        let operator_server = OperatorServer::new(OperatorService {
            country,
            peers: Arc::new(config.peers.keys().copied().collect()),
            store: store.clone(),
            links: links.clone(),
            tls: credentials.clone(),
            drain: drain.clone(),
        });
        let (agency_health, agency_health_service) = tonic_health::server::health_reporter();
        let (reflection_v1, reflection_v1alpha) = reflection()?;
        tasks.push(serve(
            server(&config.limits)
                .layer(TrackCalls)
                .layer(NameTheSizeLimit {
                    max,
                    refused: audit_oversized(store.clone()),
                })
                .add_service(agency_health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .add_service(agency_server)
                .add_service(operator_server)
                .serve_with_incoming_shutdown(agency_incoming, stopped(shutdown_rx.clone())),
        ));

        for (peer, address) in &config.peers {
            let courier = Courier {
                peer: *peer,
                address: address.clone(),
                store: store.clone(),
                tls: credentials.clone(),
                settings: config.delivery.clone(),
                max_message_bytes: max,
                shutdown: shutdown_rx.clone(),
                links: links.clone(),
                metrics: metrics.clone(),
            };
            tasks.push(tokio::spawn(courier.run()));
        }
        for fetcher in fetchers.into_values() {
            let watch = PolicyWatch {
                fetcher,
                shutdown: shutdown_rx.clone(),
            };
            tasks.push(tokio::spawn(watch.run()));
        }
        tasks.push(credentials.watch(shutdown_rx.clone()));
        let alerts = Arc::new(Alerts::new(country, store.clone(), config.alerts.clone()));
        let watched = Watched {
            alerts: alerts.clone(),
            tls: credentials.clone(),
            links: links.clone(),
            peers: config.peers.keys().copied().collect(),
        };
        tasks.extend(crate::alerts::run(watched, shutdown_rx.clone()));
        tasks.push(tokio::spawn(crate::retention::run(
            store.clone(),
            crate::retention::Policy::from(&config.storage),
            metrics.clone(),
            shutdown_rx.clone(),
        )));
        let checks = Checks {
            store: store.clone(),
            tls: credentials.clone(),
            clock: rules.clock.clone(),
            peers: config.peers.clone(),
            settings: config.health.clone(),
            metrics: metrics.clone(),
            draining,
            pending_probe: Default::default(),
        };
        let (plain_health, health_verdict) = watch::channel(crate::health::Verdict::default());
        let reporters = Reporters {
            peer: peer_health,
            agency: agency_health,
            plain: plain_health,
        };
        tasks.push(checks.start(reporters, shutdown_rx.clone()).await);
        let metrics_addr = match metrics_listener {
            Some(listener) => {
                let address = local_addr(&listener)?;
                let sources = metrics::Sources {
                    metrics: metrics.clone(),
                    store: store.clone(),
                    tls: credentials.clone(),
                    peers: config.peers.keys().copied().collect(),
                    clock: rules.clock.clone(),
                    health: health_verdict,
                };
                tasks.push(metrics::serve(listener, sources, shutdown_rx.clone()));
                tracing::info!(metrics = %metrics::url(address), "metrics listening");
                Some(address)
            }
            None => None,
        };
        let (lost, lease_lost) = watch::channel(None);
        if let Some(lease) = opened.lease {
            let ttl = Duration::from_secs(config.storage.lease_seconds.max(1));
            let shutdown = shutdown.clone();
            let stopping = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                if let Some(why) = crate::lease::keep(lease, ttl, stopping).await {
                    tracing::error!(%why, "this node lost the lease: it stops serving now (another node serves; start it again to stand by)");
                    let _ = lost.send(Some(why));
                    let _ = shutdown.send(true);
                }
            }));
        }
        tracing::info!(%country, %peer_addr, %agency_addr, peers = config.peers.len(), "gateway started");
        Ok(Gateway {
            country,
            peer_addr,
            agency_addr,
            store,
            credentials,
            shutdown,
            drain,
            alerts,
            metrics,
            metrics_addr,
            tasks,
            lease_lost,
        })
    }

    /// Resolves, with the reason, when this node has lost its lease to
    /// another node of the same gateway (PostgreSQL engine): it has stopped
    /// serving and must be stopped ([`Gateway::shutdown`]). Never resolves
    /// on sled, where there is no lease.
    pub async fn lease_lost(&self) -> String {
        let mut lost = self.lease_lost.clone();
        match lost.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Drains the gateway (`on`) or ends the drain: while drained its
    /// health says NOT_SERVING, so that a load balancer sends new work
    /// elsewhere, and everything queued is still delivered.
    pub fn set_draining(&self, on: bool) {
        self.drain.send_replace(on);
    }

    /// Whether an operator drains the gateway.
    pub fn draining(&self) -> bool {
        *self.drain.borrow()
    }

    /// Where `GET /metrics` is served, if `[metrics]` enables it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The gateway's metrics, as a scrape would encode them (without the
    /// values read at scrape time).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Makes the store's health probe fail (`on`) or work again: for tests
    /// of the health checks only, see [`Store::danger_fail_probes`].
    pub fn danger_fail_store_probes(&self, on: bool) {
        self.store.danger_fail_probes(on);
    }

    /// The TLS material in use: its certificates, reloads and refused handshakes.
    pub fn tls(&self) -> &Credentials {
        &self.credentials
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

    /// What this gateway found when it compared positions with its peers:
    /// a peer, or itself, gone back in time ([`crate::store::Finding`]).
    pub fn findings(&self) -> Result<Vec<crate::store::Finding>, crate::store::StoreError> {
        self.store.findings()
    }

    /// The gateway's alerts, for checks that raise their own
    /// ([`crate::alerts::Condition::StoreProbe`]).
    pub fn alerts(&self) -> &Arc<Alerts> {
        &self.alerts
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

/// One fetcher of its reception policy per peer.
fn policy_fetchers(
    config: &Config,
    credentials: &Credentials,
    store: &Arc<Store>,
    rules: &Arc<Rules>,
) -> BTreeMap<Country, PolicyFetcher> {
    config
        .peers
        .iter()
        .map(|(peer, address)| {
            let fetcher = PolicyFetcher {
                peer: *peer,
                address: address.clone(),
                tls: credentials.clone(),
                store: store.clone(),
                rules: rules.clone(),
            };
            (*peer, fetcher)
        })
        .collect()
}

/// Who may use the Peer API: gateways only (which country, the Peer API
/// checks per envelope).
fn peer_admission() -> tls::AdmissionRule {
    Arc::new(|identity: &Identity| match identity {
        Identity::Gateway { .. } => Ok(()),
        other => Err(format!("{other} is not a gateway")),
    })
}

/// Who may use the Agency API: this country's agencies, and the consulates
/// of the countries this one has delegated to (`[[delegations]]`); no other
/// agency of a delegated country.
fn agency_admission(country: Country, delegated: BTreeSet<Country>) -> tls::AdmissionRule {
    Arc::new(move |identity: &Identity| match identity {
        Identity::Agency { country: c, .. } if *c == country => Ok(()),
        Identity::Agency {
            country: d,
            role: Role::Consulate,
            ..
        } if delegated.contains(d) => Ok(()),
        Identity::Agency {
            country: d, role, ..
        } if delegated.contains(d) => Err(format!(
            "{identity} is not an agency of {country}: {country} delegates to {d}'s consulate only, not to its {} agency",
            role.as_str()
        )),
        other => Err(format!(
            "{other} is not an agency of {country}, nor a consulate acting for it under [[delegations]]"
        )),
    })
}

/// The case rules from the config, with the peers' policies kept from earlier runs.
fn case_rules(config: &Config, store: &Store, clock: Clock) -> Result<Rules, StartError> {
    // Configs built in code (tests, `dev`) are checked here as files are in `Config::load`.
    config
        .check(std::path::Path::new("(configuration)"))
        .map_err(StartError::Config)?;
    let mut own_policy =
        policy::published(config.country, &config.reception.points).map_err(|(i, bad)| {
            StartError::Config(ConfigError::Invalid {
                file: "(configuration)".into(),
                field: format!("reception.points[{i}].{}", bad.field),
                problem: bad.problem,
            })
        })?;
    // Published with the policy so that peers accept what these consulates send.
    own_policy.delegated_consulates = config
        .delegated_consulates()
        .iter()
        .map(ToString::to_string)
        .collect();
    // Published so that the destination times the steps after an agreed arrival as this country does.
    own_policy.timing = Some(config.case.timing());
    let peer_policies = store.policies().map_err(|source| StartError::Store {
        dir: config.data_dir.display().to_string(),
        source,
    })?;
    Ok(Rules {
        country: config.country,
        relaxed_best_interest: config
            .case
            .relax_best_interest_for
            .iter()
            .copied()
            .collect(),
        own_policy,
        peer_policies: RwLock::new(peer_policies),
        clock,
    })
}

/// Records an oversized submit, which tonic refuses before the Agency API
/// sees it, in the audit log as the API records its other refused submits.
fn audit_oversized(store: Arc<Store>) -> crate::limits::Refused {
    Arc::new(
        move |identity: &Identity, method: &str, status: &tonic::Status| {
            if method != "/retorno.v1.Agency/Submit" {
                return;
            }
            let record = crate::audit::Record::submit_refused(&identity.urn())
                .detail(&crate::audit::status_reason(status));
            if let Err(error) = store.audit(&[record]) {
                tracing::error!(%error, "the audit log could not record a refused submit");
            }
        },
    )
}

/// A server with HTTP/2 keepalive: a connection whose other end went silent
/// (a partition that drops every packet, a frozen process) is closed when a
/// ping goes unanswered, and frees what it held.
fn server(limits: &Limits) -> Server {
    let keepalive = limits.keepalive();
    Server::builder()
        .http2_keepalive_interval(Some(keepalive.interval))
        .http2_keepalive_timeout(Some(keepalive.timeout))
}

/// gRPC reflection over the Agency API's descriptors (and health's), so
/// that `grpcurl` can list and call it without the .proto files: both the
/// `v1` service and the `v1alpha` one that older tools still ask for.
fn reflection() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    StartError,
> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(retorno_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let refused = |error: tonic_reflection::server::Error| {
        StartError::Config(ConfigError::Invalid {
            file: "(built in)".into(),
            field: "reflection".into(),
            problem: error.to_string(),
        })
    };
    Ok((
        builder().build_v1().map_err(refused)?,
        builder().build_v1alpha().map_err(refused)?,
    ))
}

/// The listeners a gateway serves on: its two APIs and, if enabled, metrics.
struct Listeners {
    peer: TcpListener,
    agency: TcpListener,
    metrics: Option<TcpListener>,
}

/// The store a gateway serves from, the listeners it serves on, and the
/// lease it holds (none on sled).
struct Opened {
    store: Arc<Store>,
    listeners: Listeners,
    lease: Option<Arc<dyn Lease>>,
}

/// Opens the configured engine's store. On PostgreSQL this node first
/// stands by until it holds its country's lease ([`crate::lease`]).
async fn open_store(
    config: &Config,
    credentials: &Credentials,
    vault: Arc<crate::at_rest::Vault>,
    listeners: Listeners,
) -> Result<Opened, StartError> {
    let failed = |source| StartError::Store {
        dir: config.data_dir.display().to_string(),
        source,
    };
    let db = crate::kv::Db::open(&config.data_dir, &config.storage).map_err(failed)?;
    let lease: Option<Arc<dyn Lease>> = match &db {
        crate::kv::Db::Sled(_) => None,
        crate::kv::Db::Postgres(pg) => Some(Arc::new(crate::lease::PgLease::new(
            pg.clone(),
            &config.storage,
        ))),
    };
    let listeners = match &lease {
        Some(lease) => stand_by(lease, config, credentials, listeners).await?,
        None => listeners,
    };
    let store = Store::open_on(db, &config.data_dir, &config.storage, vault).map_err(failed)?;
    if let Err(refused) = store.claim(config.country).await {
        if let Some(lease) = &lease
            && let Err(error) = crate::lease::release(lease).await
        {
            tracing::warn!(%error, "could not give the lease back");
        }
        return Err(failed(refused));
    }
    Ok(Opened {
        store,
        listeners,
        lease,
    })
}

/// Serves only `grpc.health.v1`, NOT_SERVING, on both API listeners until
/// this node holds the lease; then closes them and binds their addresses
/// again for the gateway itself. Meanwhile the metrics listener answers
/// `GET /health` 503 `NOT_SERVING: standby` and `GET /metrics` with
/// `retorno_lease_held 0` ([`metrics::serve_standby`]). Returns at once
/// when the lease is free.
async fn stand_by(
    lease: &Arc<dyn Lease>,
    config: &Config,
    credentials: &Credentials,
    listeners: Listeners,
) -> Result<Listeners, StartError> {
    let Listeners {
        peer,
        agency,
        metrics,
    } = listeners;
    let acquired = crate::lease::try_acquire(lease)
        .await
        .map_err(|source| StartError::Store {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
    if acquired.is_some() {
        return Ok(Listeners {
            peer,
            agency,
            metrics,
        });
    }
    let (peer_addr, agency_addr) = (local_addr(&peer)?, local_addr(&agency)?);
    let (stop, stopping) = watch::channel(false);
    let standby = [
        health_only(
            tls::accept(
                peer,
                credentials.peer_server_config(),
                peer_admission(),
                ConnectionRules::for_listener(&config.limits),
                "peer",
            ),
            crate::health::PEER_SERVICE,
            &config.limits,
            stopping.clone(),
        ),
        health_only(
            tls::accept(
                agency,
                credentials.agency_server_config(),
                agency_admission(config.country, config.delegated_consulates()),
                ConnectionRules::for_listener(&config.limits),
                "agency",
            ),
            crate::health::AGENCY_SERVICE,
            &config.limits,
            stopping,
        ),
    ];
    let standby_metrics =
        metrics.map(|listener| metrics::serve_standby(listener, stop.subscribe()));
    let every = Duration::from_secs(config.storage.lease_seconds.max(1)) / 3;
    crate::lease::acquire(lease, every).await;
    let _ = stop.send(true);
    for server in standby {
        let _ = server.await;
    }
    let metrics = match standby_metrics {
        Some(serving) => Some(serving.await.map_err(|error| StartError::Bind {
            address: config.metrics.listen,
            source: std::io::Error::other(error),
        })?),
        None => None,
    };
    let bind = |address: SocketAddr| async move {
        // The standby's listeners close as their accept tasks see the
        // servers gone, a moment after: their addresses are free then.
        let mut tries = 0;
        loop {
            match TcpListener::bind(address).await {
                Ok(listener) => return Ok(listener),
                Err(source) if tries < 100 && source.kind() == std::io::ErrorKind::AddrInUse => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(source) => return Err(StartError::Bind { address, source }),
            }
        }
    };
    Ok(Listeners {
        peer: bind(peer_addr).await?,
        agency: bind(agency_addr).await?,
        metrics,
    })
}

/// A server of `grpc.health.v1` alone, answering NOT_SERVING for `""` and
/// `service`, until `stopping`.
fn health_only(
    incoming: impl tokio_stream::Stream<Item = Result<tls::AuthenticatedStream, std::io::Error>>
    + Send
    + 'static,
    service: &'static str,
    limits: &Limits,
    stopping: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let serving = server(limits)
        .add_service(health)
        .serve_with_incoming_shutdown(incoming, stopped(stopping));
    tokio::spawn(async move {
        for name in ["", service] {
            reporter
                .set_service_status(name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        if let Err(error) = serving.await {
            tracing::error!(%error, "the standby's health server stopped with an error");
        }
    })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        address: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })
}

/// Runs a server until it stops, logging why if it fails.
fn serve(
    serving: impl std::future::Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = serving.await {
            tracing::error!(%error, "server stopped with an error");
        }
    })
}

/// Resolves when the gateway is told to stop.
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admits(rule: &tls::AdmissionRule, urn: &str) -> Result<(), String> {
        rule(&urn.parse().unwrap())
    }

    #[test]
    fn a_delegated_countrys_consulate_is_admitted_and_its_other_agencies_are_not() {
        let hn: Country = "HN".parse().unwrap();
        let rule = agency_admission(hn, BTreeSet::from(["GT".parse().unwrap()]));
        assert!(admits(&rule, "urn:retorno:agency:HN:child-protection:DINAF").is_ok());
        assert!(admits(&rule, "urn:retorno:agency:GT:consulate:MINEX").is_ok());
        let refused = admits(&rule, "urn:retorno:agency:GT:child-protection:SBS").unwrap_err();
        assert!(
            refused
                .contains("delegates to GT's consulate only, not to its child-protection agency"),
            "{refused}"
        );
        assert!(admits(&rule, "urn:retorno:agency:GT:destination-authority:IGM").is_err());
        assert!(admits(&rule, "urn:retorno:agency:SV:consulate:RREE").is_err());
        assert!(admits(&rule, "urn:retorno:gateway:HN").is_err());

        let without = agency_admission(hn, BTreeSet::new());
        let refused = admits(&without, "urn:retorno:agency:GT:consulate:MINEX").unwrap_err();
        assert!(refused.contains("is not an agency of HN"), "{refused}");
    }
}
