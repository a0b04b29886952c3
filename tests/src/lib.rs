//! Test support for retorno's end-to-end tests: a region of real gateways on
//! loopback with real mutual TLS (a dev PKI made with rcgen for each test) and
//! real databases: sled in a temporary folder, or, for the tests written with
//! [`on_both_engines!`], also a throwaway PostgreSQL cluster ([`postgres`]).
//!
//! Tests wait on conditions with a deadline ([`eventually`]) or on events
//! (a subscription's next item), never on fixed sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod browser;
pub mod engine;
pub mod postgres;

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    net::{SocketAddr, TcpListener as StdListener},
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use retorno_certs_dev::{Layout, Options};
use retorno_client::{Client, Profile, notice::parse_notice};
use retorno_gateway::{
    Config, Country, Gateway,
    clock::Clock,
    config::{
        CaseRules, Delegation, Delivery, Health, Limits, Listen, Log, Metrics, PeerConfig,
        Reception, Storage, TlsPaths,
    },
};
use retorno_proto::v1::{AdvanceNotice, InboxItem, SubmitRequest, submit_request::Payload};
use tempfile::TempDir;
use tokio::net::TcpListener;

/// How long a condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The README's example notice.
pub fn notice() -> AdvanceNotice {
    parse_notice(include_str!("../../client/examples/notice-mx-gt.json")).unwrap()
}

/// A submit of the example notice.
pub fn notice_to(recipient: &str, case_id: &str) -> SubmitRequest {
    SubmitRequest {
        message_id: String::new(),
        case_id: case_id.to_owned(),
        recipient_country: recipient.to_owned(),
        payload: Some(Payload::AdvanceNotice(notice())),
        ..Default::default()
    }
}

pub fn country(code: &str) -> Country {
    code.parse().unwrap()
}

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Which listener of a gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Api {
    Peer,
    Agency,
}

/// A region: a dev PKI, one address pair and one data folder per country.
pub struct Region {
    dir: TempDir,
    pki: Layout,
    addresses: BTreeMap<Country, Listen>,
    /// Listeners bound at creation and handed to the gateway when it starts,
    /// so that no other test can take the port in between.
    reserved: Mutex<HashMap<(Country, Api), StdListener>>,
    /// The region's time: every gateway started in-process reads it, and a
    /// test moves it forward to walk steps that are days apart.
    clock: Clock,
    /// The storage engine every gateway of the region runs on.
    engine: engine::Engine,
    /// Each country's PostgreSQL database URL, made on first use.
    databases: Mutex<HashMap<Country, String>>,
}

impl Region {
    /// A region of `countries`, none started.
    pub fn new(countries: &[&str]) -> Region {
        let dir = tempfile::tempdir().unwrap();
        let pki = retorno_certs_dev::generate(&Options {
            out: dir.path().join("certs"),
            countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            force: false,
        })
        .unwrap();
        let mut addresses = BTreeMap::new();
        let mut reserved = HashMap::new();
        for code in countries {
            let cc = country(code);
            // Outside the ephemeral range: a gateway restarted, or run as
            // a process, binds its port again, and no outgoing connection
            // can have been given it meanwhile. Kept bound until the
            // gateway starts, so that nothing takes it before.
            let mut pair =
                retorno_gateway::dev::free_listeners(2).expect("free ports on 127.0.0.1");
            let agency = pair.pop().unwrap();
            let peer = pair.pop().unwrap();
            addresses.insert(
                cc,
                Listen {
                    peer: peer.local_addr().unwrap(),
                    agency: agency.local_addr().unwrap(),
                },
            );
            reserved.insert((cc, Api::Peer), peer);
            reserved.insert((cc, Api::Agency), agency);
        }
        Region {
            dir,
            pki,
            addresses,
            reserved: Mutex::new(reserved),
            clock: Clock::adjustable(),
            engine: engine::current(),
            databases: Mutex::new(HashMap::new()),
        }
    }

    /// The storage engine the region's gateways run on.
    pub fn engine(&self) -> &engine::Engine {
        &self.engine
    }

    /// Where `code`'s gateway keeps its data on disk: its sled folder, or
    /// the whole PostgreSQL cluster's data folder (tables and WAL, shared by
    /// the databases of this test binary).
    pub fn storage_files(&self, code: &str) -> PathBuf {
        match &self.engine {
            engine::Engine::Sled => self.config(code).data_dir,
            engine::Engine::Postgres(cluster) => cluster.data_dir().to_owned(),
        }
    }

    /// `code`'s storage settings on the region's engine: sled's defaults,
    /// or PostgreSQL in a database of its own (one node, named `node-a`).
    pub fn storage(&self, code: &str) -> Storage {
        match &self.engine {
            engine::Engine::Sled => Storage::default(),
            engine::Engine::Postgres(cluster) => {
                let url = self
                    .databases
                    .lock()
                    .unwrap()
                    .entry(country(code))
                    .or_insert_with(|| cluster.database(&engine::database_name(code)))
                    .clone();
                engine::postgres_storage(&url, "node-a")
            }
        }
    }

    /// The region's clock, which the in-process gateways read.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Moves the region's time forward to `at` (never back).
    pub fn advance_to(&self, at: jiff::Timestamp) {
        self.clock.advance_to(at).unwrap();
    }

    /// Moves the region's time forward by `days`.
    pub fn advance_days(&self, days: i64) {
        self.clock
            .advance(jiff::SignedDuration::from_hours(24 * days))
            .unwrap();
    }

    /// The region's time as a message's `created_at` (an envelope sealed by hand).
    pub fn created_at(&self) -> pbjson_types::Timestamp {
        let now = self.clock.now();
        pbjson_types::Timestamp {
            seconds: now.as_second(),
            nanos: now.subsec_nanosecond(),
        }
    }

    /// A local date at least four days ahead of the region's time, Monday to Friday.
    pub fn weekday_ahead(&self, time_zone: &str) -> String {
        weekday_ahead_of(self.clock.now(), time_zone)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pki(&self) -> &Layout {
        &self.pki
    }

    pub fn peer_addr(&self, code: &str) -> SocketAddr {
        self.addresses[&country(code)].peer
    }

    /// Takes `code` off the network: its reserved ports are released, so that
    /// connections to it are refused until it starts.
    pub fn take_offline(&self, code: &str) {
        let cc = country(code);
        let mut reserved = self.reserved.lock().unwrap();
        reserved.remove(&(cc, Api::Peer));
        reserved.remove(&(cc, Api::Agency));
    }

    /// The config of `code`'s gateway: every other country is a peer, and
    /// retries are quick so that tests of outages finish fast.
    pub fn config(&self, code: &str) -> Config {
        let cc = country(code);
        let peers = self
            .addresses
            .iter()
            .filter(|(other, _)| **other != cc)
            .map(|(other, listen)| {
                let peer = PeerConfig {
                    address: listen.peer.to_string(),
                    tls_name: Some(retorno_certs_dev::gateway_dns_name(other.as_str())),
                };
                (*other, peer)
            })
            .collect();
        Config {
            country: cc,
            data_dir: self.dir.path().join(code).join("data"),
            listen: self.addresses[&cc].clone(),
            tls: TlsPaths {
                regional_root: self.pki.root_ca(),
                gateway_cert: self.pki.gateway_cert(code),
                gateway_key: self.pki.gateway_key(code),
                agency_ca: self.pki.agency_ca(code),
                crls: Vec::new(),
                reload_interval_ms: retorno_gateway::config::DEFAULT_RELOAD_INTERVAL_MS,
                expiry_warning_days: retorno_gateway::config::DEFAULT_EXPIRY_WARNING_DAYS,
            },
            peers,
            // Tests and benchmarks submit far faster than any agency would.
            limits: Limits {
                agency_submits_per_second: 1_000_000,
                agency_submit_burst: 1_000_000,
                ..Limits::default()
            },
            delivery: Delivery {
                backoff_initial_ms: 20,
                backoff_max_ms: 300,
                ..Delivery::default()
            },
            storage: self.storage(code),
            case: CaseRules::default(),
            reception: Reception {
                points: retorno_gateway::policy::dev_points(cc),
            },
            alerts: retorno_gateway::config::AlertSettings::default(),
            // Several gateways run in one test: each scrape endpoint on a free port.
            metrics: Metrics {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..Metrics::default()
            },
            health: Health::default(),
            log: Log::default(),
            statistics: retorno_gateway::statistics::Rule::default(),
            delegations: Vec::new(),
        }
    }

    /// A delegation to `consulate_country`'s consulate, under its agency CA,
    /// for a config's `[[delegations]]`.
    pub fn delegation(&self, consulate_country: &str) -> Delegation {
        Delegation {
            consulate_country: country(consulate_country),
            agency_ca: self.pki.agency_ca(consulate_country),
        }
    }

    /// Writes `code`'s config to a TOML file (for a gateway run as a process).
    pub fn write_config(&self, code: &str) -> PathBuf {
        let file = self.dir.path().join(format!("{code}.toml"));
        std::fs::write(&file, self.config(code).to_toml().unwrap()).unwrap();
        file
    }

    /// Starts `code`'s gateway in this process on its reserved addresses.
    pub async fn start(&self, code: &str) -> Gateway {
        self.start_with(self.config(code)).await
    }

    /// Starts a gateway with a config changed by the test.
    pub async fn start_with(&self, config: Config) -> Gateway {
        let cc = config.country;
        let peer = self.listener(cc, Api::Peer).await;
        let agency = self.listener(cc, Api::Agency).await;
        Gateway::start_on_clock(config, peer, agency, self.clock.clone())
            .await
            .unwrap()
    }

    /// Starts a gateway again after its shutdown, with `config` (changed by
    /// the test, as an operator edits the file before a restart), once the
    /// stopped gateway has released its database (its flush task ends when
    /// its last handle goes).
    pub async fn restart_with(&self, config: Config) -> Gateway {
        let cc = config.country;
        eventually("the stopped gateway's database to be free", || {
            let config = config.clone();
            async move {
                let peer = self.listener(cc, Api::Peer).await;
                let agency = self.listener(cc, Api::Agency).await;
                match Gateway::start_on_clock(config, peer, agency, self.clock.clone()).await {
                    Ok(gateway) => Some(gateway),
                    Err(retorno_gateway::gateway::StartError::Store { .. }) => None,
                    Err(other) => panic!("{other}"),
                }
            }
        })
        .await
    }

    async fn listener(&self, cc: Country, api: Api) -> TcpListener {
        let reserved = self.reserved.lock().unwrap().remove(&(cc, api));
        match reserved {
            Some(listener) => {
                listener.set_nonblocking(true).unwrap();
                TcpListener::from_std(listener).unwrap()
            }
            None => {
                let listen = &self.addresses[&cc];
                let address = if api == Api::Peer {
                    listen.peer
                } else {
                    listen.agency
                };
                TcpListener::bind(address).await.unwrap()
            }
        }
    }

    /// The connection profile of `code`'s agency in `role`.
    pub fn profile(&self, code: &str, role: &str) -> Profile {
        Profile {
            gateway: self.addresses[&country(code)].agency.to_string(),
            tls_name: Some(retorno_certs_dev::gateway_dns_name(code)),
            ca: self.pki.root_ca(),
            cert: self.pki.agency_cert(code, role),
            key: self.pki.agency_key(code, role),
        }
    }

    /// Connects as `code`'s agency in `role`.
    pub async fn agency(&self, code: &str, role: &str) -> Client {
        Client::connect(&self.profile(code, role)).await.unwrap()
    }

    /// The profile of `agency_country`'s agency in `role` connecting to
    /// `gateway`'s Agency API (a consulate acting for another country).
    pub fn profile_at(&self, gateway: &str, agency_country: &str, role: &str) -> Profile {
        Profile {
            cert: self.pki.agency_cert(agency_country, role),
            key: self.pki.agency_key(agency_country, role),
            ..self.profile(gateway, role)
        }
    }

    /// Connects as `code`'s agency in `role`, waiting for the gateway to come up.
    pub async fn agency_when_up(&self, code: &str, role: &str) -> Client {
        let profile = self.profile(code, role);
        eventually(&format!("{code}'s gateway to accept agencies"), || async {
            Client::connect(&profile).await.ok()
        })
        .await
    }
}

/// Reads every inbox item currently stored at `client`'s gateway after `after`.
pub async fn inbox_now(client: &mut Client, after: u64) -> Vec<InboxItem> {
    let mut stream = client.subscribe(Some(after), false).await.unwrap();
    let mut items = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        items.push(item);
    }
    items
}

/// Waits until the inbox holds at least `count` items after `after`, and returns them all.
pub async fn inbox_with(client: &mut Client, after: u64, count: usize) -> Vec<InboxItem> {
    let mut stream = client.subscribe(Some(after), true).await.unwrap();
    let mut items = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while items.len() < count {
        let next = tokio::time::timeout_at(deadline.into(), stream.message()).await;
        let item = next
            .unwrap_or_else(|_| panic!("only {} of {count} messages arrived in time", items.len()))
            .unwrap()
            .expect("the subscription ended early");
        items.push(item);
    }
    items
}

pub use retorno_proto::v1;

/// Opens the Peer API of `to` with `as_country`'s gateway certificate, as a
/// gateway (or an impostor holding that certificate) would.
pub async fn peer_client(
    region: &Region,
    as_country: &str,
    to: &str,
) -> v1::peer_exchange_client::PeerExchangeClient<tonic::transport::Channel> {
    let own = gateway_chain(region, as_country);
    let config = gateway_client_config(region, &own);
    let channel = retorno_client::tls::connect(
        &region.peer_addr(to).to_string(),
        &retorno_certs_dev::gateway_dns_name(to),
        config,
        None,
    )
    .await
    .unwrap();
    v1::peer_exchange_client::PeerExchangeClient::new(channel)
}

/// An envelope as a gateway would seal it: `sender` country's destination
/// authority writing to `recipient`.
pub fn envelope(sender: &str, recipient: &str, case_id: &str) -> v1::Envelope {
    use prost::Message as _;
    let body = v1::EnvelopeBody {
        message_id: uuid::Uuid::now_v7().to_string(),
        case_id: case_id.to_owned(),
        sender: Some(v1::Sender {
            country: sender.to_owned(),
            agency: "INM".to_owned(),
            role: v1::Role::DestinationAuthority as i32,
            delegated_consulate_country: String::new(),
            ..Default::default()
        }),
        recipient_country: recipient.to_owned(),
        created_at: Some(pbjson_types::Timestamp {
            seconds: 1_795_000_000,
            nanos: 0,
        }),
        payload: Some(v1::envelope_body::Payload::AdvanceNotice(notice())),
    };
    v1::Envelope {
        body: body.encode_to_vec(),
        seal: None,
    }
}

/// What seals as `country`'s gateway: its certificate and key from the dev PKI.
pub fn sealer(region: &Region, country: &str) -> retorno_gateway::seal::Sealer {
    let own = gateway_chain(region, country);
    retorno_gateway::seal::Sealer {
        certificate: own.chain[0].clone(),
        key: rustls::crypto::ring::sign::any_ecdsa_type(&own.key).unwrap(),
    }
}

/// Seals each batch as `sealer`'s gateway would (one signature per batch).
pub fn seal_batches(
    sealer: &retorno_gateway::seal::Sealer,
    batches: Vec<Vec<v1::Envelope>>,
) -> Vec<v1::DeliveryBatch> {
    batches
        .into_iter()
        .map(|mut envelopes| {
            let bodies: Vec<Vec<u8>> = envelopes.iter().map(|e| e.body.clone()).collect();
            let bodies: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
            let seals = sealer
                .seal(retorno_gateway::seal::ENVELOPES, &bodies)
                .unwrap();
            for (envelope, seal) in envelopes.iter_mut().zip(seals) {
                envelope.seal = Some(seal);
            }
            v1::DeliveryBatch {
                envelopes,
                signer_certificate: sealer.certificate.to_vec(),
                ..v1::DeliveryBatch::default()
            }
        })
        .collect()
}

/// Delivers `batches`, sealed by `sealer`, on one stream and returns the answers.
pub async fn deliver(
    client: &mut v1::peer_exchange_client::PeerExchangeClient<tonic::transport::Channel>,
    sealer: &retorno_gateway::seal::Sealer,
    batches: Vec<Vec<v1::Envelope>>,
) -> Result<Vec<v1::DeliveryResults>, tonic::Status> {
    deliver_batches(client, seal_batches(sealer, batches)).await
}

/// Delivers batches exactly as given (sealed or not) on one stream.
pub async fn deliver_batches(
    client: &mut v1::peer_exchange_client::PeerExchangeClient<tonic::transport::Channel>,
    batches: Vec<v1::DeliveryBatch>,
) -> Result<Vec<v1::DeliveryResults>, tonic::Status> {
    let count = batches.len();
    let outgoing = tokio_stream::iter(batches);
    let mut answers = client.deliver(outgoing).await?.into_inner();
    let mut results = Vec::new();
    while results.len() < count {
        match answers.message().await? {
            Some(answer) => results.push(answer),
            None => break,
        }
    }
    Ok(results)
}

/// The DER of the first certificate in a PEM file, to compare with what a
/// gateway presents.
pub fn certificate_der(path: &Path) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

/// The certificate `to`'s gateway presents on a new Peer API connection, as
/// `as_country`'s gateway sees it (the handshake itself must succeed).
pub async fn presented_certificate(region: &Region, as_country: &str, to: &str) -> Vec<u8> {
    let seen = std::sync::Arc::new(Mutex::new(None::<Vec<u8>>));
    let record = seen.clone();
    let check: retorno_client::tls::ServerCheck = std::sync::Arc::new(move |certs| {
        *record.lock().unwrap() = certs.first().map(|cert| cert.to_vec());
        Ok(())
    });
    let own = gateway_chain(region, as_country);
    let config = gateway_client_config(region, &own);
    retorno_client::tls::connect(
        &region.peer_addr(to).to_string(),
        &retorno_certs_dev::gateway_dns_name(to),
        config,
        Some(check),
    )
    .await
    .unwrap();
    seen.lock()
        .unwrap()
        .take()
        .expect("the server presented no certificate")
}

/// A TCP forwarder between two gateways that a test can cut, as a network
/// blip would: open connections drop, new ones go through.
pub struct Proxy {
    address: SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
    silence: tokio::sync::watch::Sender<u64>,
    closing: tokio::sync::watch::Sender<bool>,
    connections: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Forwards connections on a fresh loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (silence, _) = tokio::sync::watch::channel(0u64);
        let (closing, _) = tokio::sync::watch::channel(false);
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (cuts, silences, closings, count) = (
            cut.clone(),
            silence.clone(),
            closing.clone(),
            connections.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut cut = cuts.subscribe();
                let mut silenced = silences.subscribe();
                let mut closing = closings.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                        // Both ends stay open and hear nothing more, as in a
                        // partition that drops every packet, until the proxy goes
                        // or cuts them.
                        _ = silenced.changed() => {
                            tokio::select! {
                                _ = closing.wait_for(|closing| *closing) => {}
                                _ = cut.changed() => {}
                            }
                        }
                    }
                });
            }
        });
        Proxy {
            address,
            cut,
            silence,
            closing,
            connections,
            task,
        }
    }

    /// Where to connect instead of the target.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Drops every open connection, silent ones too.
    pub fn cut(&self) {
        self.cut.send_modify(|cuts| *cuts += 1);
    }

    /// Makes every open connection go silent without closing (no FIN, no
    /// RST: a black hole); new connections go through.
    pub fn silence(&self) {
        self.silence.send_modify(|silences| *silences += 1);
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.closing.send_replace(true);
        self.task.abort();
    }
}

/// A layer-4 load balancer in front of the nodes of one gateway, as the
/// README's HAProxy example is: each new connection goes, bytes untouched
/// (mutual TLS ends at the gateway), to the first node whose `GET /health`
/// on its metrics listener answers 200; a node that answers otherwise, or
/// not at all, gets none. Open connections are not moved: they end with
/// their node.
pub struct Balancer {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Balances connections on a fresh loopback port over `nodes`: (where
    /// the node serves this port, where its metrics listener is).
    pub async fn start(nodes: Vec<(SocketAddr, SocketAddr)>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let nodes = std::sync::Arc::new(nodes);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let nodes = nodes.clone();
                tokio::spawn(async move {
                    for (target, health) in nodes.iter() {
                        if health_answer(*health).await != Some(200) {
                            continue;
                        }
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            // As HAProxy does: no Nagle delay on small gRPC frames.
                            let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Balancer { address, task }
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The HTTP status of `GET /health` on a metrics listener, or `None` when
/// nothing answers there.
pub async fn health_answer(metrics: SocketAddr) -> Option<u16> {
    http_get(metrics, "/health").await.map(|(status, _)| status)
}

/// `GET path` on a metrics listener: the HTTP status and the body, or
/// `None` when nothing answers there within 2 s.
pub async fn http_get(metrics: SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(metrics).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: balancer\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        Some((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// A free port on loopback, for a gateway run as a process (which binds
/// its configured addresses itself).
pub fn free_address() -> SocketAddr {
    let port = retorno_gateway::dev::free_ports(1).expect("a free port on 127.0.0.1");
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A local date (YYYY-MM-DD) at least four days ahead, Monday to Friday, so
/// that an arrival at 10:00 there passes the reception rules.
pub fn weekday_ahead(time_zone: &str) -> String {
    weekday_ahead_of(jiff::Timestamp::now(), time_zone)
}

/// [`weekday_ahead`] of `now`.
pub fn weekday_ahead_of(now: jiff::Timestamp, time_zone: &str) -> String {
    use jiff::ToSpan as _;
    let tz = jiff::tz::TimeZone::get(time_zone).unwrap();
    let mut day = now
        .to_zoned_datetime(tz)
        .date()
        .checked_add(4.days())
        .unwrap();
    while day.weekday().to_monday_one_offset() > 5 {
        day = day.tomorrow().unwrap();
    }
    day.to_string()
}

/// Submits one case message, retrying while the destination does not know
/// the origin's reception policy yet (fetched when the gateways connect).
pub async fn submit_case_message(
    client: &Client,
    case_id: &str,
    payload: retorno_proto::v1::submit_request::Payload,
) -> Result<v1::SubmitResponse, tonic::Status> {
    eventually("the origin's reception policy to be known", || {
        let (mut client, payload) = (client.clone(), payload.clone());
        async move {
            let request = retorno_client::compose::request(case_id, None, payload);
            match client.submit(request).await {
                Err(retorno_client::ClientError::Status(status))
                    if status.message().contains("not known here yet") =>
                {
                    None
                }
                Err(retorno_client::ClientError::Status(status)) => Some(Err(status)),
                Err(other) => panic!("transport failure: {other}"),
                Ok(answer) => Some(Ok(answer)),
            }
        }
    })
    .await
}

/// Waits until `client`'s gateway shows `case_id` in `state`.
pub async fn wait_for_state(client: &Client, case_id: &str, state: v1::CaseState) -> v1::CaseView {
    eventually(&format!("case {case_id} to be {state:?}"), || {
        let mut client = client.clone();
        async move {
            let view = client.case(case_id).await.ok()?;
            (view.state() == state).then_some(view)
        }
    })
    .await
}

/// Mexico returns a Guatemalan child (`notice`, opened as `case_id`) from
/// notice to follow-up: summary, proposal at 10:00, acceptance, handoff by
/// the consulate on the arrival day, reception and, 30 days later, the
/// follow-up (the region's clock moves forward for both); returns when both
/// gateways show FOLLOW_UP. Both gateways must be running.
pub async fn return_a_child(region: &Region, case_id: &str, notice: AdvanceNotice) {
    use retorno_client::compose;
    use v1::CaseState;
    let inm = region.agency("MX", "destination-authority").await;
    let sbs = region.agency("GT", "child-protection").await;
    let consulate = region.agency("GT", "consulate").await;
    let open =
        retorno_client::compose::request(case_id, Some("GT"), Payload::AdvanceNotice(notice));
    inm.clone().submit(open).await.unwrap();
    let summary = v1::CaseSummary {
        best_interest_plan: Some(v1::BestInterestPlan {
            readers: Some(v1::Readers {
                roles: vec![v1::Role::ChildProtection as i32],
            }),
            plan: "Return to grandmother in Quetzaltenango".into(),
            receiving_caregiver: "grandmother".into(),
        }),
        ..v1::CaseSummary::default()
    };
    submit_case_message(&inm, case_id, Payload::CaseSummary(summary))
        .await
        .unwrap();
    wait_for_state(&sbs, case_id, CaseState::SummaryShared).await;
    let day = region.weekday_ahead("America/Guatemala");
    let at = format!("{day} 10:00");
    let proposal = compose::proposal(&compose::Proposal {
        id: "P1",
        cases: Vec::new(),
        point: "GT-TECUN-UMAN",
        at: &at,
        time_zone: "America/Guatemala",
        mode: "land",
        reference: "bus INM-0452",
        escorts: &["Lucía Gómez/INM".to_owned()],
    })
    .unwrap();
    submit_case_message(&inm, case_id, proposal).await.unwrap();
    wait_for_state(&sbs, case_id, CaseState::ArrivalProposed).await;
    submit_case_message(&sbs, case_id, compose::accept("P1"))
        .await
        .unwrap();
    let agreed = wait_for_state(&inm, case_id, CaseState::ArrivalAgreed).await;
    region.advance_to(agreed_arrival(&agreed));
    let handoff = compose::handoff(
        "GT-TECUN-UMAN",
        "Rosa Cux/Consulado de Guatemala",
        vec![],
        "tired, healthy",
    )
    .unwrap();
    submit_case_message(&consulate, case_id, handoff)
        .await
        .unwrap();
    let received = compose::reception("with-family", "grandmother, Quetzaltenango").unwrap();
    submit_case_message(&sbs, case_id, received).await.unwrap();
    region.advance_days(30);
    let follow_up = compose::follow_up(30, "stable", "back at school").unwrap();
    submit_case_message(&sbs, case_id, follow_up).await.unwrap();
    wait_for_state(&inm, case_id, CaseState::FollowUp).await;
}

/// The agreed arrival instant of a case.
pub fn agreed_arrival(case: &v1::CaseView) -> jiff::Timestamp {
    let at = case.agreed_arrival.as_ref().unwrap().arrival.unwrap();
    jiff::Timestamp::new(at.seconds, at.nanos).unwrap()
}

/// `len` bytes that do not compress, as ciphertext would not (xorshift from
/// `seed`, which must not be 0).
pub fn incompressible(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Whether any file under `dir` (a gateway's sled folder: its log, snapshots
/// and blobs) contains `needle`, byte for byte.
pub fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_contain(&path, needle)
        } else {
            let bytes = std::fs::read(&path).unwrap();
            bytes.windows(needle.len()).any(|window| window == needle)
        }
    })
}

/// Writes a new at-rest key file (mode 0600) under the region's folder.
pub fn new_key(region: &Region, name: &str) -> PathBuf {
    let file = region.dir().join("keys").join(name);
    retorno_gateway::at_rest::write_new_key(&file).unwrap();
    file
}

/// Opens a stopped gateway's store, waiting for the gateway just stopped to
/// release its database (sled's lock on its folder: its flush task ends when
/// its last handle goes; PostgreSQL's lease, which a stopped gateway gives up).
pub async fn open_store(config: &Config) -> std::sync::Arc<retorno_gateway::Store> {
    eventually("the database to be free", || async {
        match retorno_gateway::Store::open(&config.data_dir, &config.storage) {
            Ok(store) => Some(store),
            Err(
                retorno_gateway::store::StoreError::Sled(_)
                | retorno_gateway::store::StoreError::LeaseHeld { .. },
            ) => None,
            Err(other) => panic!("{other}"),
        }
    })
    .await
}

/// Opens a stopped gateway's database directly, below the store, as
/// someone with write access to its files (sled) or its tables (PostgreSQL,
/// with the gateway's lease, as its own node) would.
pub async fn open_database(config: &Config) -> retorno_gateway::kv::Db {
    eventually("the database to be free", || async {
        let db = retorno_gateway::kv::Db::open(&config.data_dir, &config.storage).ok()?;
        if let retorno_gateway::kv::Db::Postgres(pg) = &db {
            let lease = retorno_gateway::lease::PgLease::new(pg.clone(), &config.storage);
            retorno_gateway::lease::Lease::try_acquire(&lease).ok()??;
        }
        Some(db)
    })
    .await
}

/// The regional root certificates of `region`, that seals must chain to.
pub fn regional_roots(region: &Region) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    retorno_gateway::tls::load_certificates(&region.pki().root_ca()).unwrap()
}

/// `country`'s gateway certificate chain and key from the region's dev PKI.
pub fn gateway_chain(region: &Region, country: &str) -> retorno_client::tls::KeyedChain {
    retorno_client::tls::KeyedChain::load(
        &region.pki.gateway_cert(country),
        &region.pki.gateway_key(country),
    )
    .unwrap()
}

/// A client configuration presenting `own`, trusting the region's root.
pub fn gateway_client_config(
    region: &Region,
    own: &retorno_client::tls::KeyedChain,
) -> std::sync::Arc<rustls::ClientConfig> {
    let roots = retorno_client::tls::load_roots(&region.pki.root_ca()).unwrap();
    retorno_client::tls::client_config(own, roots).unwrap()
}

/// A webhook receiver on 127.0.0.1: answers every POST with 200 and keeps
/// its JSON body. Dropping it closes the port (a receiver that is down).
pub struct WebhookReceiver {
    address: SocketAddr,
    events: std::sync::Arc<Mutex<Vec<serde_json::Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts on a free port.
    pub async fn start() -> WebhookReceiver {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts on `address` (again, after it was down), with no events.
    pub async fn start_on(address: SocketAddr) -> WebhookReceiver {
        let listener = TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let events = std::sync::Arc::new(Mutex::new(Vec::new()));
        let kept = events.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    if let Some(event) = webhook_request(stream).await {
                        kept.lock().unwrap().push(event);
                    }
                });
            }
        });
        WebhookReceiver {
            address,
            events,
            task,
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/alerts", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The events received so far, in order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.events.lock().unwrap().clone()
    }

    /// The events of alert `alert` with `status`.
    pub fn of(&self, alert: &str, status: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["alert"] == alert && e["status"] == status)
            .collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 POST, answers 200, and returns its body as JSON.
async fn webhook_request(mut stream: tokio::net::TcpStream) -> Option<serde_json::Value> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let (head_end, length) = loop {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        bytes.extend_from_slice(&buffer[..read]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while bytes.len() < head_end + length {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        bytes.extend_from_slice(&buffer[..read]);
    }
    let event = serde_json::from_slice(&bytes[head_end..head_end + length]).ok();
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    event
}

/// The TLS configuration of `code`'s agency in `role`, as its client uses it.
pub fn agency_client_config(
    region: &Region,
    code: &str,
    role: &str,
) -> std::sync::Arc<rustls::ClientConfig> {
    let profile = region.profile(code, role);
    let own = retorno_client::tls::KeyedChain::load(&profile.cert, &profile.key).unwrap();
    let roots = retorno_client::tls::load_roots(&profile.ca).unwrap();
    retorno_client::tls::client_config(&own, roots).unwrap()
}

/// A gRPC channel to `code`'s Agency API as its agency in `role`, for calls
/// the typed client cannot make (raw bytes).
pub async fn agency_channel(region: &Region, code: &str, role: &str) -> tonic::transport::Channel {
    let profile = region.profile(code, role);
    retorno_client::tls::connect(
        &profile.gateway,
        profile.tls_name.as_deref().unwrap(),
        agency_client_config(region, code, role),
        None,
    )
    .await
    .unwrap()
}

/// A bare mutual-TLS connection to `address` as the holder of `config`,
/// handshake done and nothing sent: what an idle or hostile client holds.
pub async fn tls_connection(
    address: SocketAddr,
    server_name: &str,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Sends bytes as they are, whatever a method's message type: a hostile or
/// broken client.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut as _;
        buf.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf as _;
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Calls `path` (`/retorno.v1.Agency/Submit`) with `bytes` as the request.
pub async fn raw_unary(
    channel: tonic::transport::Channel,
    path: &'static str,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(bytes), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Calls the server-streaming `path` with `bytes` and reads its first answer.
pub async fn raw_server_streaming(
    channel: tonic::transport::Channel,
    path: &'static str,
    bytes: Vec<u8>,
) -> Result<Option<Vec<u8>>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.server_streaming(tonic::Request::new(bytes), path, RawCodec)
        .await?
        .into_inner()
        .message()
        .await
}

/// Opens the bidirectional `path` stream, sends `messages` and reads the first answer.
pub async fn raw_streaming(
    channel: tonic::transport::Channel,
    path: &'static str,
    messages: Vec<Vec<u8>>,
) -> Result<Option<Vec<u8>>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    let outgoing = tokio_stream::iter(messages);
    grpc.streaming(tonic::Request::new(outgoing), path, RawCodec)
        .await?
        .into_inner()
        .message()
        .await
}

/// Copies a directory tree: a stopped gateway's database (as an operator
/// backs one up and restores it), or a PKI kept beside a bench's configs.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
