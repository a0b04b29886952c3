//! A country's gateway on several nodes over one PostgreSQL database: the
//! node holding the lease serves, another takes over when it dies, and a
//! node that lost its lease never writes again. Mexico's nodes run as
//! processes of the real program behind a layer-4 balancer that sends
//! connections to the node whose `/health` answers 200 (the README's HAProxy
//! set-up); Guatemala runs in-process on sled.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use retorno_client::{Client, Profile};
use retorno_gateway::{
    Config,
    config::Listen,
    kv::postgres::{Pg, SettingNames},
};
use retorno_proto::v1::DeliveryState;
use retorno_tests::{
    Balancer, Region, engine, eventually, free_address, health_answer, http_get, inbox_now,
    inbox_with, notice_to, postgres,
};

/// One node of Mexico's gateway, run as the real program.
struct Node {
    name: &'static str,
    config: PathBuf,
    log: PathBuf,
    listen: Listen,
    metrics: SocketAddr,
    child: Option<Child>,
}

impl Node {
    fn new(region: &Region, name: &'static str, url: &str) -> Node {
        let mut config = region.config("MX");
        config.listen = Listen {
            peer: free_address(),
            agency: free_address(),
        };
        config.metrics.listen = free_address();
        config.storage = engine::postgres_storage(url, name);
        config.storage.lease_seconds = 2;
        let file = region.dir().join(format!("mx-{name}.toml"));
        std::fs::write(&file, config.to_toml().unwrap()).unwrap();
        Node {
            name,
            config: file,
            log: region.dir().join(format!("mx-{name}.log")),
            listen: config.listen.clone(),
            metrics: config.metrics.listen,
            child: None,
        }
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gateway-process"))
            .args(["run", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: a machine lost.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("RETORNO_SHOW_LOGS").is_some() {
            eprintln!("--- log of {} ---\n{}", self.name, self.log_text());
        }
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        self.kill();
    }
}

/// Mexico's two nodes, a balancer for each of its APIs, Guatemala pointed
/// at the balancer.
struct Setup {
    /// Dropped first: a failing test prints their logs, kept in the region's folder.
    nodes: Vec<std::sync::Mutex<Node>>,
    region: Region,
    url: String,
    peer: Balancer,
    agency: Balancer,
}

async fn setup(cluster: &postgres::Cluster) -> Setup {
    let region = Region::new(&["MX", "GT"]);
    region.take_offline("MX");
    let url = cluster.database(&engine::database_name("mx"));
    let nodes = vec![
        Node::new(&region, "node-a", &url),
        Node::new(&region, "node-b", &url),
    ];
    let peer = Balancer::start(nodes.iter().map(|n| (n.listen.peer, n.metrics)).collect()).await;
    let agency =
        Balancer::start(nodes.iter().map(|n| (n.listen.agency, n.metrics)).collect()).await;
    Setup {
        region,
        url,
        nodes: nodes.into_iter().map(std::sync::Mutex::new).collect(),
        peer,
        agency,
    }
}

impl Setup {
    /// Guatemala's config, with Mexico behind the balancer.
    fn gt_config(&self) -> Config {
        let mut config = self.region.config("GT");
        config
            .peers
            .get_mut(&retorno_tests::country("MX"))
            .unwrap()
            .address = self.peer.address().to_string();
        config
    }

    async fn mx_agency(&self) -> Client {
        let mut profile = self.region.profile("MX", "destination-authority");
        profile.gateway = self.agency.address().to_string();
        eventually("Mexico's serving node to accept agencies", || async {
            Client::connect(&profile).await.ok()
        })
        .await
    }

    fn node(&self, index: usize) -> std::sync::MutexGuard<'_, Node> {
        self.nodes[index].lock().unwrap()
    }

    /// The node whose `/health` answers 200, once one does.
    async fn serving(&self) -> usize {
        eventually("a node of Mexico's gateway to serve", || async {
            for index in 0..self.nodes.len() {
                let (running, metrics) = {
                    let node = self.node(index);
                    (node.child.is_some(), node.metrics)
                };
                if running && health_answer(metrics).await == Some(200) {
                    return Some(index);
                }
            }
            None
        })
        .await
    }

    /// The lease's holder and epoch, read from the database.
    fn holder(&self) -> Option<(String, i64)> {
        let pg = Pg::open(&self.url, 1, None, SettingNames::STORAGE).unwrap();
        pg.holder("gateway").unwrap()
    }
}

/// Submits `notices` through `profile`, `lanes` at a time, each lane in
/// order and retrying a refused or lost call with the same message id until
/// it is accepted, as an agency's client does; returns the ids per lane, in
/// submission order.
async fn submit_with_retries(
    profile: Profile,
    notices: usize,
    lanes: usize,
    accepted: Arc<AtomicUsize>,
) -> Vec<Vec<String>> {
    let client = eventually("the gateway to accept agencies", || async {
        Client::connect(&profile).await.ok()
    })
    .await;
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let mut mine = client.clone();
        let (profile, accepted) = (profile.clone(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (lane..notices).step_by(lanes) {
                let mut request = notice_to("GT", &format!("MX-2026-{i:05}"));
                request.message_id = uuid::Uuid::now_v7().to_string();
                let mut tries = 0;
                while let Err(error) = mine.submit(request.clone()).await {
                    tries += 1;
                    assert!(tries < 3_000, "lane {lane}: never accepted: {error}");
                    // The node died, stands by or lost its database: connect
                    // again (through the balancer, where there is one).
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let Ok(fresh) = Client::connect(&profile).await {
                        mine = fresh;
                    }
                }
                accepted.fetch_add(1, Ordering::SeqCst);
                ids.push(request.message_id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids
}

/// Checks that Guatemala's inbox holds every id of `lanes` exactly once,
/// each lane in its order.
async fn arrived_once_in_order(sbs: &mut Client, lanes: &[Vec<String>]) {
    let total: usize = lanes.iter().map(Vec::len).sum();
    let received: Vec<String> = inbox_with(sbs, 0, total)
        .await
        .into_iter()
        .map(|item| item.body.unwrap().message_id)
        .collect();
    let distinct: HashSet<&String> = received.iter().collect();
    assert_eq!(distinct.len(), total, "every notice arrived, none twice");
    let position: BTreeMap<&String, usize> =
        received.iter().enumerate().map(|(i, id)| (id, i)).collect();
    for lane in lanes {
        let places: Vec<usize> = lane.iter().map(|id| position[id]).collect();
        assert!(places.is_sorted(), "a lane's notices arrive in its order");
    }
    assert!(
        inbox_now(sbs, 0).await.len() == total,
        "nothing else, nothing twice"
    );
}

/// Checks that Mexico holds the receipt of every id of `lanes`.
async fn receipts_held(inm: &Client, lanes: &[Vec<String>]) {
    for id in lanes.iter().flatten() {
        eventually("Mexico to hold the receipt", || {
            let (mut inm, id) = (inm.clone(), id.clone());
            async move {
                (inm.status(&id).await.ok()?.state() == DeliveryState::Delivered).then_some(())
            }
        })
        .await;
    }
}

/// How many notices the failover test sends (`RETORNO_FAILOVER_NOTICES`).
fn notices() -> usize {
    std::env::var("RETORNO_FAILOVER_NOTICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lease_holder_is_killed_three_times_under_load_and_every_accepted_notice_arrives_once_in_order()
 {
    let Some(cluster) = postgres::shared() else {
        return;
    };
    let setup = Arc::new(setup(cluster).await);
    setup.node(0).start();
    let first = setup.serving().await;
    setup.node(1 - first).start();
    let gt = setup.region.start_with(setup.gt_config()).await;
    let mut sbs = setup.region.agency("GT", "child-protection").await;

    let total = notices();
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut profile = setup.region.profile("MX", "destination-authority");
    profile.gateway = setup.agency.address().to_string();
    let started = std::time::Instant::now();
    let load = tokio::spawn(submit_with_retries(profile, total, 64, accepted.clone()));

    // Three kills of whichever node holds the lease, at moments drawn at
    // random between a tenth and nine tenths of the run.
    let mut moments: Vec<usize> = (0..3)
        .map(|kill| total / 10 + random_below(kill, total * 8 / 10))
        .collect();
    moments.sort_unstable();
    let mut epochs = vec![setup.holder().unwrap().1];
    for moment in moments {
        progress_to(&accepted, moment).await;
        let holder = setup.serving().await;
        setup.node(holder).kill();
        let next = setup.serving().await;
        assert_ne!(next, holder, "the other node took over");
        let (name, epoch) = setup.holder().unwrap();
        assert_eq!(name, setup.node(next).name);
        assert!(
            epoch > *epochs.last().unwrap(),
            "a takeover raises the epoch"
        );
        epochs.push(epoch);
        // The killed machine comes back, as a standby.
        setup.node(holder).start();
    }
    let lanes = load.await.unwrap();
    eprintln!(
        "{total} notices accepted through 3 takeovers (epochs {epochs:?}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    arrived_once_in_order(&mut sbs, &lanes).await;
    eprintln!(
        "every notice in Guatemala's inbox once: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    receipts_held(&setup.mx_agency().await, &lanes).await;
    eprintln!(
        "every notice in Guatemala's inbox once, every receipt at Mexico: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    gt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_paused_past_its_lease_is_fenced_and_writes_nothing_when_it_wakes() {
    let Some(cluster) = postgres::shared() else {
        return;
    };
    let setup = setup(cluster).await;
    setup.node(0).start();
    assert_eq!(setup.serving().await, 0);
    setup.node(1).start();
    // Node B stands by: its metrics listener says so, which a balancer
    // counts as down and Prometheus tells from a dead node (port closed).
    let standby = setup.node(1).metrics;
    let (status, said) = eventually("node B's metrics listener to answer", || async {
        http_get(standby, "/health").await
    })
    .await;
    assert_eq!((status, said.as_str()), (503, "NOT_SERVING: standby\n"));
    let (_, scraped) = http_get(standby, "/metrics").await.unwrap();
    assert!(scraped.contains("retorno_lease_held 0"), "{scraped}");
    let gt = setup.region.start_with(setup.gt_config()).await;
    let mut sbs = setup.region.agency("GT", "child-protection").await;
    let mut inm = setup.mx_agency().await;
    let before = inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
    let (_, first_epoch) = setup.holder().unwrap();

    // Node A stops (SIGSTOP) past its lease: node B takes it over and serves.
    setup.node(0).signal("-STOP");
    let epoch = eventually("node B to take the lease", || async {
        match setup.holder() {
            Some((node, epoch)) if node == "node-b" => Some(epoch),
            _ => None,
        }
    })
    .await;
    assert!(epoch > first_epoch);
    assert_eq!(setup.serving().await, 1);
    let (_, scraped) = http_get(standby, "/metrics").await.unwrap();
    assert!(scraped.contains("retorno_lease_held 1"), "{scraped}");
    let mut inm = setup.mx_agency().await;
    let during = inm.submit(notice_to("GT", "MX-2026-0002")).await.unwrap();

    // Node A wakes still believing it holds the lease; an agency that
    // talks to it directly, not through the balancer, is refused.
    let direct = {
        let mut profile = setup.region.profile("MX", "destination-authority");
        profile.gateway = setup.node(0).listen.agency.to_string();
        profile
    };
    setup.node(0).signal("-CONT");
    let mut woken = notice_to("GT", "MX-2026-0003");
    woken.message_id = uuid::Uuid::now_v7().to_string();
    if let Ok(mut client) = Client::connect(&direct).await {
        assert!(
            client.submit(woken.clone()).await.is_err(),
            "a node that lost its lease accepts nothing"
        );
    }
    // It stops on its own, saying why.
    let status = eventually("node A to stop", || async {
        setup.node(0).child.as_mut().unwrap().try_wait().unwrap()
    })
    .await;
    assert!(!status.success());
    let log = setup.node(0).log_text();
    assert!(log.contains("lost the lease"), "{log}");

    // Nothing of node A's after the takeover: the id it was offered is
    // unknown, and the store holds exactly the two accepted notices.
    assert!(inm.status(&woken.message_id).await.is_err());
    let lanes = vec![vec![before.message_id, during.message_id]];
    arrived_once_in_order(&mut sbs, &lanes).await;
    receipts_held(&inm, &lanes).await;
    gt.shutdown().await;
    setup.node(1).kill();
    let config = Config::load_with_files(&setup.node(1).config).unwrap();
    let report = eventually("the stopped gateway's audit log to verify", || async {
        retorno_gateway::audit::verify_stopped(&config).await.ok()
    })
    .await;
    assert!(report.intact(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_primary_is_killed_under_load_and_the_promoted_standby_holds_every_accepted_notice()
 {
    let Some(cluster) = postgres::Cluster::start_with_standby() else {
        return;
    };
    let region = Region::new(&["MX", "GT"]);
    let name = engine::database_name("mx");
    cluster.database(&name);
    let mut config = region.config("MX");
    config.storage = engine::postgres_storage(&cluster.failover_url(&name), "node-a");
    // Longer than the promotion takes, so the node keeps its lease across it.
    config.storage.lease_seconds = 30;
    let mx = region.start_with(config).await;
    let gt = region.start("GT").await;
    let mut sbs = region.agency("GT", "child-protection").await;

    let total = 2_000;
    let accepted = Arc::new(AtomicUsize::new(0));
    let profile = region.profile("MX", "destination-authority");
    let load = tokio::spawn(submit_with_retries(profile, total, 32, accepted.clone()));
    progress_to(&accepted, total / 4).await;
    cluster.kill_primary();
    cluster.promote_standby();
    let lanes = load.await.unwrap();
    arrived_once_in_order(&mut sbs, &lanes).await;
    receipts_held(&region.agency("MX", "destination-authority").await, &lanes).await;
    gt.shutdown().await;
    mx.shutdown().await;
}

/// A number below `n`, different in every run.
fn random_below(salt: u64, n: usize) -> usize {
    use std::hash::BuildHasher as _;
    let random = std::collections::hash_map::RandomState::new().hash_one(salt);
    (random % n.max(1) as u64) as usize
}

/// Waits until `accepted` reaches `moment`, failing if it stops moving for
/// 30 seconds (the load is long; only a stall is a failure).
async fn progress_to(accepted: &AtomicUsize, moment: usize) {
    let mut last = (0, std::time::Instant::now());
    loop {
        let now = accepted.load(Ordering::SeqCst);
        if now >= moment {
            return;
        }
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        assert!(
            last.1.elapsed() < Duration::from_secs(30),
            "the load stalled at {now} accepted notices"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
