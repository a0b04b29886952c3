//! `retorno-bench`: measures two retorno gateways on one machine, Mexico's
//! (the sender) and Guatemala's (the receiver), each in its own process with
//! real mutual TLS and a real sled database on disk, next to baselines
//! measured in the same run: a plain mutual-TLS gRPC server that stores
//! nothing, and sled alone. Modes: the main measurement (closed loop, `--runs`
//! times, with medians), offered load (`--load-levels`, `--rate`), a crash
//! check (`--crash`, `--kill-sender-every`) and a backlog check (`--backlog`).
//!
//! Build both programs with `cargo build --release -p retorno-tests`; the
//! gateways run as `gateway-process`, found next to this program.
//! All traffic stays on 127.0.0.1.

#[path = "../bench/baseline.rs"]
mod baseline;
#[path = "../bench/load.rs"]
mod load;
#[path = "../bench/procs.rs"]
mod procs;
#[path = "../bench/report.rs"]
mod report;

use std::{
    collections::HashMap,
    ffi::OsStr,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use clap::{Parser, Subcommand};
use load::{Lat, Sample, Tracker, Workload, closed_loop, connect, connections, open_loop};
use procs::{Proc, Stats};
use report::{Row, Unit, thousands};
use retorno_client::{Client, Profile};
use retorno_gateway::config::Delivery;
use retorno_proto::v1::{AdvanceNotice, DeliveryState};
use retorno_tests::Region;
use uuid::Uuid;

/// Measures retorno's gateways (MX sends to GT, each its own process, real
/// mTLS, sled on disk) against a plain mTLS gRPC server and sled alone.
#[derive(Parser, Debug)]
#[command(name = "retorno-bench", args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    internal: Option<Internal>,
    /// Notices per measured run.
    #[arg(long, default_value_t = 20_000)]
    notices: usize,
    /// Concurrent agency connections (each submits its next notice when the last is answered).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Encoded size of each SubmitRequest (the notice is padded to it).
    #[arg(long, default_value_t = 2048)]
    payload_bytes: usize,
    /// Repeat the main measurement this many times and print the medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Notices sent (and delivered) before each measurement, not counted.
    #[arg(long, default_value_t = 2000)]
    warmup: usize,
    /// Where the gateways' sled databases go (default: a temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the databases and logs afterwards.
    #[arg(long)]
    keep: bool,
    /// Offered-load levels, in percent of the accept throughput measured in the same run.
    #[arg(long, value_delimiter = ',')]
    load_levels: Vec<f64>,
    /// An offered load in notices per second (open loop), instead of or besides --load-levels.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds per offered-load level.
    #[arg(long, default_value_t = 5.0)]
    level_secs: f64,
    /// Crash check: kill MX's gateway with SIGKILL every second during a run, restart it.
    #[arg(long)]
    crash: bool,
    /// Crash check with this many seconds between kills.
    #[arg(long, value_name = "SECS")]
    kill_sender_every: Option<f64>,
    /// At most this many kills in the crash check.
    #[arg(long, default_value_t = 5)]
    max_kills: usize,
    /// Backlog check: queue this many notices at MX with GT down, then restart MX and drain.
    #[arg(long, value_name = "N")]
    backlog: Option<usize>,
    /// Rekey check: queue this many notices at MX under one at-rest key, restart MX
    /// with a second key appended, and time `ops rekey` on the running gateway,
    /// beside a dry run and beside submits with and without a rekey running.
    #[arg(long, value_name = "N")]
    rekey: Option<usize>,
    /// Seconds per sled-alone variant (at most --notices operations).
    #[arg(long, default_value_t = 2.0)]
    sled_secs: f64,
    /// RUST_LOG for the gateway processes (default: theirs, `info`).
    #[arg(long)]
    gateway_log: Option<String>,
    /// Also print each gateway's CPU time per thread name.
    #[arg(long)]
    threads: bool,
    /// Run the gateways with `storage.durability = "process-crash"` instead of
    /// the default `"power-loss"`, to measure what the device syncs cost.
    #[arg(long)]
    danger_process_crash: bool,
    /// The gateways' storage engine: `sled`, `postgres` (a throwaway
    /// PostgreSQL cluster the bench starts from the machine's binaries, a
    /// database per gateway, `fsync` and `synchronous_commit` on), or both
    /// (`sled,postgres`), measured one after the other in each run beside the
    /// same run's baseline.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sled")]
    backend: Vec<Engine>,
    /// Run the gateways without at-rest keys (a weaker configuration than a
    /// real gateway's), to measure what encryption at rest costs.
    #[arg(long)]
    no_at_rest_keys: bool,
    /// After the main measurement, send --notices more in four equal
    /// phases, alternately without and with a scraper reading both
    /// gateways' /metrics every second (so that neither gets the emptier
    /// database), and report the end-to-end throughput of each half.
    #[arg(long)]
    scrape_metrics: bool,
}

/// A storage engine to measure.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Sled,
    Postgres,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Sled => "sled",
            Engine::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Subcommand, Debug)]
enum Internal {
    /// The baseline server (run by the bench itself).
    #[command(hide = true)]
    ServeBaseline {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        pki: PathBuf,
    },
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Internal::ServeBaseline { listen, pki }) = &args.internal {
        return baseline::serve(*listen, pki.clone(), "MX");
    }
    ensure!(
        args.notices > 0 && args.concurrency > 0 && args.runs > 0,
        "--notices, --concurrency and --runs must be at least 1"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let bench = Bench::new(args)?;
        bench.run().await
    })
}

/// Setup every mode shares.
struct Bench {
    args: Args,
    region: Region,
    /// Where databases, configs and logs go.
    root: PathBuf,
    gateway_exe: PathBuf,
    self_exe: PathBuf,
    notice: Arc<AdvanceNotice>,
    /// Encoded size of one SubmitRequest.
    request_bytes: usize,
    /// The copy of the PKI under `--dir` that configs point to.
    kept_pki: Option<PathBuf>,
    /// The PostgreSQL cluster, when `--backend` names it.
    cluster: Option<retorno_tests::postgres::Cluster>,
    /// The engine of the gateways being measured now.
    engine: std::cell::Cell<Engine>,
}

/// How to (re)start one gateway.
struct Spec {
    name: &'static str,
    config: PathBuf,
    log: PathBuf,
    data: PathBuf,
    /// Where the gateway serves its metrics, if the bench scrapes them.
    metrics: Option<SocketAddr>,
}

/// One closed-loop measurement of a server.
#[derive(Clone, Copy, Default)]
struct Measured {
    throughput: f64,
    latency: Lat,
    /// Server process CPU seconds per 1,000 notices.
    cpu_per_k: f64,
    /// The bench's own CPU seconds per 1,000 notices (the agencies).
    client_cpu_per_k: f64,
    hwm: f64,
}

/// One offered-load level.
struct Level {
    label: String,
    rate: f64,
    gateway: Lat,
    gateway_e2e: Lat,
    baseline: Lat,
    failed: usize,
}

fn ms(since: Instant, until: Instant) -> Duration {
    until.saturating_duration_since(since)
}

fn per_k(total: f64, count: usize) -> f64 {
    total / count as f64 * 1000.0
}

/// One end-to-end measurement on gateways already warm: `count` notices
/// until the last is in GT's inbox, with or without a scraper.
struct Phase<'a> {
    clients: &'a [Client],
    tracker: &'a Tracker,
    notice: Arc<AdvanceNotice>,
    count: usize,
    counter: Arc<AtomicUsize>,
    deadline: Instant,
    /// The metrics addresses to scrape every second meanwhile.
    scrape: Option<[SocketAddr; 2]>,
}

impl Phase<'_> {
    /// The end-to-end throughput (in GT's inbox) and the scrapes made.
    async fn run(self, expected: &mut usize) -> Result<(f64, usize)> {
        let stop = Arc::new(AtomicBool::new(false));
        let scraper = self.scrape.map(|targets| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut scrapes = 0;
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    for target in targets {
                        if scrape(target).await.is_ok() {
                            scrapes += 1;
                        }
                    }
                }
                scrapes
            })
        });
        let start = Instant::now();
        let work = Workload::new(self.notice.clone(), self.count);
        closed_loop(
            self.clients,
            work,
            None,
            self.counter.clone(),
            self.deadline,
        )
        .await?;
        *expected += self.count;
        ensure!(
            self.tracker.wait_for(*expected, self.deadline).await,
            "not every notice arrived at GT"
        );
        let secs = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let scrapes = match scraper {
            Some(task) => task.await?,
            None => 0,
        };
        Ok((self.count as f64 / secs, scrapes))
    }
}

/// One `GET /metrics`, read to the end, as Prometheus scrapes.
async fn scrape(address: SocketAddr) -> Result<usize> {
    tokio::task::spawn_blocking(move || -> Result<usize> {
        use std::io::{Read as _, Write as _};
        let mut tcp = std::net::TcpStream::connect(address)?;
        write!(
            tcp,
            "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer)?;
        ensure!(answer.starts_with(b"HTTP/1.1 200"), "the scrape failed");
        Ok(answer.len())
    })
    .await?
}

fn free_port() -> Result<SocketAddr> {
    let port = retorno_gateway::dev::free_ports(1)?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

impl Bench {
    fn new(args: Args) -> Result<Bench> {
        let gateway_exe = procs::sibling("gateway-process")?;
        let self_exe = std::env::current_exe()?;
        let region = Region::new(&["MX", "GT"]);
        // The gateways run as processes: free their reserved ports.
        region.take_offline("MX");
        region.take_offline("GT");
        let root = match &args.dir {
            Some(dir) => dir.clone(),
            None => region.dir().join("bench"),
        };
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        // A folder of one's own keeps a copy of the dev PKI, so that the
        // configs written there still work once the bench has exited.
        let kept_pki = match &args.dir {
            Some(_) => {
                let copy = root.join("bench-certs");
                retorno_tests::copy_dir(region.pki().dir(), &copy)?;
                Some(copy)
            }
            None => None,
        };
        let (notice, request_bytes) = load::padded_notice(args.payload_bytes);
        let cluster = if args.backend.contains(&Engine::Postgres) {
            Some(retorno_tests::postgres::Cluster::start().context(
                "--backend postgres: no PostgreSQL binaries (apt-get install postgresql, or RETORNO_PG_BINDIR)",
            )?)
        } else {
            None
        };
        Ok(Bench {
            cluster,
            engine: std::cell::Cell::new(args.backend.first().copied().unwrap_or(Engine::Sled)),
            args,
            region,
            root,
            gateway_exe,
            self_exe,
            notice: Arc::new(notice),
            request_bytes,
            kept_pki,
        })
    }

    async fn run(&self) -> Result<()> {
        let a = &self.args;
        println!(
            "retorno-bench: MX gateway -> GT gateway, separate processes, mutual TLS on 127.0.0.1, sled in {}",
            self.root.display()
        );
        let (durability, keys) = (
            if a.danger_process_crash {
                "\"process-crash\" (--danger-process-crash)"
            } else {
                "\"power-loss\" (the default)"
            },
            if a.no_at_rest_keys {
                "no at-rest keys (--no-at-rest-keys)"
            } else {
                "envelopes encrypted at rest with a key, as a real gateway's config"
            },
        );
        println!("  storage.durability = {durability}; {keys}");
        if self.cluster.is_some() {
            println!(
                "  PostgreSQL: a throwaway cluster of this machine's binaries on 127.0.0.1, a database per gateway, fsync and synchronous_commit on, no standby"
            );
        }
        println!(
            "  notices of {} bytes (encoded SubmitRequest), {} agency connections, {} CPUs",
            self.request_bytes,
            a.concurrency,
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        let kill_every = a.kill_sender_every.or(a.crash.then_some(1.0));
        if let Some(every) = kill_every {
            self.crash(every).await?;
        }
        if let Some(count) = a.backlog {
            self.backlog(count).await?;
        }
        if let Some(count) = a.rekey {
            self.rekey(count).await?;
        }
        if kill_every.is_some() || a.backlog.is_some() || a.rekey.is_some() {
            return self.cleanup();
        }
        let mut runs: Vec<(Engine, Vec<Vec<Row>>)> = a
            .backend
            .iter()
            .map(|engine| (*engine, Vec::new()))
            .collect();
        for run in 1..=a.runs {
            for (engine, rows_of) in &mut runs {
                self.engine.set(*engine);
                let rows = self.main_run(run).await?;
                report::print(
                    &format!(
                        "run {run} of {}, gateways on {}: {} notices, {} connections",
                        a.runs,
                        engine.name(),
                        a.notices,
                        a.concurrency
                    ),
                    &rows,
                    None,
                );
                rows_of.push(rows);
            }
        }
        for (engine, rows_of) in &runs {
            if rows_of.len() > 1 {
                let (rows, ratios) = report::medians(rows_of);
                report::print(
                    &format!(
                        "gateways on {}: median of {} runs (ratios: median of the per-run ratios)",
                        engine.name(),
                        rows_of.len()
                    ),
                    &rows,
                    Some(&ratios),
                );
            }
        }
        self.cleanup()
    }

    fn cleanup(&self) -> Result<()> {
        if self.args.keep {
            println!("\nkept: {}", self.root.display());
        } else if self.args.dir.is_some() {
            for entry in std::fs::read_dir(&self.root)?.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("run-")
                    || name == "crash"
                    || name == "backlog"
                    || name == "rekey"
                    || name == "bench-certs"
                {
                    std::fs::remove_dir_all(entry.path())?;
                }
            }
        }
        Ok(())
    }

    fn profile(&self, code: &str, role: &str) -> Profile {
        self.region.profile(code, role)
    }

    /// Writes `code`'s config for a data folder under `dir`.
    fn spec(&self, name: &'static str, dir: &Path) -> Result<Spec> {
        let code = name;
        let data = dir.join(code).join("data");
        std::fs::create_dir_all(&data)?;
        let mut config = self.region.config(code);
        config.data_dir = data.clone();
        // What an operator runs, not the tests' quick retries: the default
        // durability ("power-loss") and personal data encrypted at rest.
        config.delivery = Delivery::default();
        if let (Engine::Postgres, Some(cluster)) = (self.engine.get(), &self.cluster) {
            let database = retorno_tests::engine::database_name(code);
            config.storage =
                retorno_tests::engine::postgres_storage(&cluster.database(&database), "bench");
        }
        if self.args.danger_process_crash {
            config.storage.durability = retorno_gateway::config::Durability::ProcessCrash;
        }
        if !self.args.no_at_rest_keys {
            let key = dir.join(code).join("at-rest.key");
            if !key.exists() {
                retorno_gateway::at_rest::write_new_key(&key)?;
            }
            config.storage.keys = vec![key];
        }
        let metrics = if self.args.scrape_metrics {
            let address = free_port()?;
            config.metrics.listen = address;
            Some(address)
        } else {
            config.metrics.enabled = false;
            None
        };
        let mut text = config.to_toml()?;
        if let Some(copy) = &self.kept_pki {
            let original = self.region.pki().dir().to_string_lossy().into_owned();
            text = text.replace(&original, &copy.to_string_lossy());
        }
        let file = dir.join(format!("{code}.toml"));
        std::fs::write(&file, text)?;
        Ok(Spec {
            name,
            config: file,
            log: dir.join(format!("{code}.log")),
            data,
            metrics,
        })
    }

    fn launch(&self, spec: &Spec) -> Result<Proc> {
        let args: [&OsStr; 3] = ["run".as_ref(), "--config".as_ref(), spec.config.as_os_str()];
        Proc::spawn(
            spec.name,
            &self.gateway_exe,
            &args,
            &spec.log,
            self.args.gateway_log.as_deref(),
        )
    }

    /// Waits for `spec`'s gateway to take agencies; fails early if it died.
    async fn up(&self, proc: &mut Proc, profile: &Profile, spec: &Spec) -> Result<Client> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Err(error) = proc.check_running() {
                bail!("{error:#}; see {}", spec.log.display());
            }
            match tokio::time::timeout(Duration::from_secs(5), Client::connect(profile)).await {
                Ok(Ok(client)) => return Ok(client),
                _ if Instant::now() > deadline => {
                    bail!("{} did not come up; see {}", spec.name, spec.log.display())
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn deadline_for(&self, count: usize) -> Instant {
        // Generous: at least 300 notices a second, plus two minutes.
        Instant::now() + Duration::from_secs(120 + (count / 300) as u64)
    }

    /// One main measurement: sled alone, the baseline server, the gateways,
    /// and the offered-load levels against both servers.
    async fn main_run(&self, run: usize) -> Result<Vec<Row>> {
        let a = &self.args;
        let (n, c) = (a.notices, a.concurrency);
        let dir = self.root.join(format!("run-{run}"));
        std::fs::create_dir_all(&dir)?;
        let deadline = self.deadline_for(n + a.warmup);

        eprintln!("run {run}: sled alone");
        let sled = {
            let (dir, bytes, secs) = (dir.join("sled"), self.request_bytes, a.sled_secs);
            tokio::task::spawn_blocking(move || {
                baseline::sled_alone(&dir, bytes, n, Duration::from_secs_f64(secs))
            })
            .await??
        };
        let _ = std::fs::remove_dir_all(dir.join("sled"));

        eprintln!("run {run}: baseline server");
        let base_addr = free_port()?;
        let base_addr_text = base_addr.to_string();
        let base_args: [&OsStr; 5] = [
            "serve-baseline".as_ref(),
            "--listen".as_ref(),
            base_addr_text.as_ref(),
            "--pki".as_ref(),
            self.region.pki().dir().as_os_str(),
        ];
        let mut base_proc = Proc::spawn(
            "baseline server",
            &self.self_exe,
            &base_args,
            &dir.join("baseline.log"),
            None,
        )?;
        let mut base_profile = self.profile("MX", "destination-authority");
        base_profile.gateway = base_addr.to_string();
        let base_spec = Spec {
            name: "baseline server",
            config: PathBuf::new(),
            log: dir.join("baseline.log"),
            data: PathBuf::new(),
            metrics: None,
        };
        self.up(&mut base_proc, &base_profile, &base_spec).await?;
        let base_clients = connections(&base_profile, c, deadline).await?;
        let counter = Arc::new(AtomicUsize::new(0));
        let warm = Workload::new(self.notice.clone(), a.warmup);
        closed_loop(&base_clients, warm, None, counter.clone(), deadline).await?;
        let (server0, own0) = (base_proc.stats()?, Stats::own()?);
        let machine0 = procs::machine_busy_secs();
        let start = Instant::now();
        let work = Workload::new(self.notice.clone(), n);
        let driven = closed_loop(&base_clients, work, None, counter.clone(), deadline).await?;
        let (server1, own1) = (base_proc.stats()?, Stats::own()?);
        let end = last_done(&driven.samples, start);
        let base_others = (procs::machine_busy_secs()
            - machine0
            - (server1.cpu_secs - server0.cpu_secs)
            - (own1.cpu_secs - own0.cpu_secs))
            / ms(start, Instant::now()).as_secs_f64();
        let base = Measured {
            throughput: n as f64 / ms(start, end).as_secs_f64(),
            latency: load::percentiles(driven.samples.iter().map(|s| ms(s.sent, s.done)).collect()),
            cpu_per_k: per_k(server1.cpu_secs - server0.cpu_secs, n),
            client_cpu_per_k: per_k(own1.cpu_secs - own0.cpu_secs, n),
            hwm: server1.hwm as f64,
        };

        eprintln!("run {run}: gateways");
        let gt_spec = self.spec("GT", &dir)?;
        let mx_spec = self.spec("MX", &dir)?;
        let mx_profile = self.profile("MX", "destination-authority");
        let mut gt = self.launch(&gt_spec)?;
        let sbs = self
            .up(&mut gt, &self.profile("GT", "child-protection"), &gt_spec)
            .await?;
        let mut mx = self.launch(&mx_spec)?;
        let mut inm = self.up(&mut mx, &mx_profile, &mx_spec).await?;
        eprintln!(
            "run {run}: MX gateway pid {}, GT gateway pid {}",
            mx.pid(),
            gt.pid()
        );
        let tracker = Tracker::start(sbs).await?;
        let clients = connections(&mx_profile, c, deadline).await?;
        let mut expected = a.warmup;
        let warm = Workload::new(self.notice.clone(), a.warmup);
        closed_loop(&clients, warm, None, counter.clone(), deadline).await?;
        ensure!(
            tracker.wait_for(expected, deadline).await,
            "warm-up notices did not all arrive at GT"
        );

        let (mx0, gt0, own0) = (mx.stats()?, gt.stats()?, Stats::own()?);
        let machine0 = procs::machine_busy_secs();
        let (mx_threads0, gt_threads0) = (procs::threads(mx.pid()), procs::threads(gt.pid()));
        let start = Instant::now();
        let work = Workload::new(self.notice.clone(), n);
        let driven = closed_loop(&clients, work.clone(), None, counter.clone(), deadline).await?;
        let accepted_end = last_done(&driven.samples, start);
        expected += n;
        if !tracker.wait_for(expected, deadline).await {
            bail!(
                "only {} of {expected} notices arrived at GT in time ({})",
                tracker.distinct(),
                tracker.with(|a| a.ended.clone()).unwrap_or_default()
            );
        }
        let (arrivals, last_id, duplicates) = tracker.with(|arrived| {
            let times: Vec<Option<Instant>> = work
                .ids
                .iter()
                .map(|id| arrived.at.get(id).copied())
                .collect();
            let last = work
                .ids
                .iter()
                .filter_map(|id| arrived.at.get(id).map(|at| (*at, *id)))
                .max();
            (times, last, arrived.duplicates)
        });
        ensure!(duplicates == 0, "{duplicates} notices arrived twice at GT");
        let (arrived_end, last_id) = last_id.context("nothing arrived")?;
        let receipt_end = wait_delivered(&mut inm, &last_id, deadline).await?;
        let (mx1, gt1, own1) = (mx.stats()?, gt.stats()?, Stats::own()?);
        let others = (procs::machine_busy_secs()
            - machine0
            - (mx1.cpu_secs - mx0.cpu_secs)
            - (gt1.cpu_secs - gt0.cpu_secs)
            - (own1.cpu_secs - own0.cpu_secs))
            / ms(start, Instant::now()).as_secs_f64();
        if others > 0.1 || base_others > 0.1 {
            eprintln!(
                "run {run}: warning: other processes used {others:.2} cores during the gateway measurement, {base_others:.2} during the baseline: figures are disturbed"
            );
        }
        if a.threads {
            print_threads("MX", &mx_threads0, &procs::threads(mx.pid()));
            print_threads("GT", &gt_threads0, &procs::threads(gt.pid()));
        }
        let accept_latency =
            load::percentiles(driven.samples.iter().map(|s| ms(s.sent, s.done)).collect());
        let e2e_latency = load::percentiles(
            driven
                .samples
                .iter()
                .filter_map(|s| arrivals[s.idx].map(|at| ms(s.sent, at)))
                .collect(),
        );
        let accept_tput = n as f64 / ms(start, accepted_end).as_secs_f64();
        let secs = |end: Instant| ms(start, end).as_secs_f64();
        let scraped = match (a.scrape_metrics, mx_spec.metrics, gt_spec.metrics) {
            (true, Some(mx_metrics), Some(gt_metrics)) => {
                let count = (n / 4).max(1);
                let phase = |scrape: bool| Phase {
                    clients: &clients,
                    tracker: &tracker,
                    notice: self.notice.clone(),
                    count,
                    counter: counter.clone(),
                    deadline: self.deadline_for(count),
                    scrape: scrape.then_some([mx_metrics, gt_metrics]),
                };
                // (seconds, scrapes) of the phases without and with the scraper.
                let mut totals = [(0.0, 0); 2];
                for scraped in [false, true, false, true] {
                    eprintln!("run {run}: end to end, scraped every second: {scraped}");
                    let (rate, scrapes) = phase(scraped).run(&mut expected).await?;
                    let total = &mut totals[usize::from(scraped)];
                    total.0 += count as f64 / rate;
                    total.1 += scrapes;
                }
                let [(without, _), (with, scrapes)] = totals;
                let notices = (2 * count) as f64;
                Some(((notices / with, scrapes), (notices / without, 0)))
            }
            _ => None,
        };

        // Offered load, open loop, against the gateway and then the baseline at the same rate.
        let mut levels = Vec::new();
        let mut targets: Vec<(String, f64)> = a
            .load_levels
            .iter()
            .map(|pct| (format!("{pct:.0}% of max"), accept_tput * pct / 100.0))
            .collect();
        if let Some(rate) = a.rate {
            targets.push((format!("{} /s", thousands(rate)), rate));
        }
        for (label, rate) in targets {
            eprintln!("run {run}: offered load {label} = {rate:.0} notices/s");
            let count = ((rate * a.level_secs).ceil() as usize).max(1);
            let level_deadline =
                Instant::now() + Duration::from_secs_f64(a.level_secs * 3.0) + load::SUBMIT_TIMEOUT;
            let work = Workload::new(self.notice.clone(), count);
            let (samples, failed) = open_loop(&clients, work.clone(), rate, level_deadline).await?;
            expected += samples.len();
            ensure!(
                tracker.wait_for(expected, self.deadline_for(count)).await,
                "offered load {label}: not everything arrived at GT"
            );
            let gateway = load::percentiles(samples.iter().map(|s| ms(s.sent, s.done)).collect());
            let gateway_e2e = tracker.with(|arrived| {
                load::percentiles(
                    samples
                        .iter()
                        .filter_map(|s| arrived.at.get(&work.ids[s.idx]).map(|at| ms(s.sent, *at)))
                        .collect(),
                )
            });
            let base_work = Workload::new(self.notice.clone(), count);
            let (base_samples, base_failed) =
                open_loop(&base_clients, base_work, rate, level_deadline).await?;
            levels.push(Level {
                label,
                rate,
                gateway,
                gateway_e2e,
                baseline: load::percentiles(
                    base_samples.iter().map(|s| ms(s.sent, s.done)).collect(),
                ),
                failed: failed + base_failed,
            });
        }

        drop(tracker);
        mx.kill()?;
        gt.kill()?;
        base_proc.kill()?;
        if !a.keep {
            std::fs::remove_dir_all(&dir)?;
        }

        const PLAIN: &str = "plain mTLS unary, no storage";
        const PLAIN_SERVER: &str = "plain mTLS server process";
        let lat_rows =
            |rows: &mut Vec<Row>, what: &str, gw: Lat, base: Lat, against: &'static str| {
                for (name, value, baseline) in [
                    ("p50", gw.p50, base.p50),
                    ("p90", gw.p90, base.p90),
                    ("p99", gw.p99, base.p99),
                    ("max", gw.max, base.max),
                ] {
                    rows.push(
                        Row::new(format!("{what} {name}"), Unit::Ms, value)
                            .against(baseline, against),
                    );
                }
            };
        let mut rows = vec![
            Row::new("accept throughput", Unit::Rate, accept_tput).against(base.throughput, PLAIN),
            Row::new(
                "end-to-end throughput (in GT's inbox)",
                Unit::Rate,
                n as f64 / secs(arrived_end),
            )
            .against(base.throughput, PLAIN),
            Row::new(
                "end-to-end throughput (receipt stored at MX)",
                Unit::Rate,
                n as f64 / secs(receipt_end),
            )
            .against(base.throughput, PLAIN),
            Row::new("accept throughput", Unit::Rate, accept_tput)
                .against(sled.flush_each, "sled alone: insert + flush each"),
            Row::new("accept throughput", Unit::Rate, accept_tput)
                .against(sled.flush_per_64, "sled alone: 64 inserts + 1 flush"),
            Row::new("accept throughput", Unit::Rate, accept_tput).against(
                sled.tx_each_flush_per_64,
                "sled alone: 64 transactions (2 trees) + 1 flush",
            ),
            Row::new("accept throughput", Unit::Rate, accept_tput).against(
                sled.tx_per_64,
                "sled alone: 1 transaction of 64 (2 trees) + 1 flush",
            ),
        ];
        lat_rows(
            &mut rows,
            "accept latency",
            accept_latency,
            base.latency,
            PLAIN,
        );
        lat_rows(
            &mut rows,
            "end-to-end latency (to GT's inbox)",
            e2e_latency,
            base.latency,
            PLAIN,
        );
        if let Some(((with, scrapes), (without, _))) = scraped {
            const UNSCRAPED: &str = "the same gateways, not scraped (phases alternated)";
            rows.push(
                Row::new(
                    format!("end-to-end throughput, /metrics of both scraped every 1 s ({scrapes} scrapes)"),
                    Unit::Rate,
                    with,
                )
                .against(without, UNSCRAPED),
            );
        }
        rows.extend([
            Row::new(
                "MX receipt after last arrival at GT",
                Unit::Ms,
                ms(arrived_end, receipt_end).as_secs_f64() * 1e3,
            ),
            Row::new(
                "CPU per 1,000 notices: MX gateway",
                Unit::Secs,
                per_k(mx1.cpu_secs - mx0.cpu_secs, n),
            )
            .against(base.cpu_per_k, PLAIN_SERVER),
            Row::new(
                "CPU per 1,000 notices: GT gateway",
                Unit::Secs,
                per_k(gt1.cpu_secs - gt0.cpu_secs, n),
            )
            .against(base.cpu_per_k, PLAIN_SERVER),
            Row::new(
                "CPU per 1,000 notices: the bench's agencies",
                Unit::Secs,
                per_k(own1.cpu_secs - own0.cpu_secs, n),
            )
            .against(base.client_cpu_per_k, "the bench's agencies, baseline"),
            Row::new("peak memory (VmHWM): MX gateway", Unit::Mb, mx1.hwm as f64)
                .against(base.hwm, PLAIN_SERVER),
            Row::new("peak memory (VmHWM): GT gateway", Unit::Mb, gt1.hwm as f64)
                .against(base.hwm, PLAIN_SERVER),
            Row::new(
                "disk writes per notice: MX gateway",
                Unit::Kb,
                (mx1.disk_writes - mx0.disk_writes) as f64 / n as f64,
            )
            .against(self.request_bytes as f64, "the notice's encoded size"),
            Row::new(
                "disk writes per notice: GT gateway",
                Unit::Kb,
                (gt1.disk_writes - gt0.disk_writes) as f64 / n as f64,
            )
            .against(self.request_bytes as f64, "the notice's encoded size"),
            Row::new(
                "CPU used by other processes (disturbance)",
                Unit::Cores,
                others.max(0.0),
            )
            .against(base_others.max(0.0), "the same, during the baseline")
            .without_ratio(),
        ]);
        for level in &levels {
            rows.push(Row::new(
                format!("offered load @ {}: rate", level.label),
                Unit::Rate,
                level.rate,
            ));
            lat_rows(
                &mut rows,
                &format!("  accept latency @ {}", level.label),
                level.gateway,
                level.baseline,
                "plain mTLS, same rate",
            );
            rows.push(Row::new(
                format!("  end-to-end latency @ {} p99", level.label),
                Unit::Ms,
                level.gateway_e2e.p99,
            ));
            if level.failed > 0 {
                eprintln!(
                    "run {run}: offered load {}: {} submits failed",
                    level.label, level.failed
                );
            }
        }
        Ok(rows)
    }

    /// Kills MX's gateway with SIGKILL every `every` seconds while notices are
    /// submitted and delivered, restarts it on the same data, and counts
    /// accepted notices lost and stored twice at GT.
    async fn crash(&self, every: f64) -> Result<()> {
        let a = &self.args;
        let (n, c) = (a.notices, a.concurrency);
        let dir = self.root.join("crash");
        let deadline = self.deadline_for(n) + Duration::from_secs(60);
        let gt_spec = self.spec("GT", &dir)?;
        let mx_spec = Arc::new(self.spec("MX", &dir)?);
        let mx_profile = self.profile("MX", "destination-authority");
        let gt_profile = self.profile("GT", "child-protection");
        let mut gt = self.launch(&gt_spec)?;
        let sbs = self.up(&mut gt, &gt_profile, &gt_spec).await?;
        let mut first = self.launch(&mx_spec)?;
        self.up(&mut first, &mx_profile, &mx_spec).await?;
        let mx = Arc::new(Mutex::new(Some(first)));
        let tracker = Arc::new(Tracker::start(sbs).await?);
        let clients = connections(&mx_profile, c, deadline).await?;
        let work = Workload::new(self.notice.clone(), n);
        let accepted = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        println!(
            "\ncrash check: {n} notices from {c} connections; MX's gateway is SIGKILLed every {every} s (at most {} times) and restarted on the same data",
            a.max_kills
        );
        let start = Instant::now();
        let killer = {
            let (mx, spec, accepted, finished, tracker) = (
                mx.clone(),
                mx_spec.clone(),
                accepted.clone(),
                finished.clone(),
                tracker.clone(),
            );
            let (exe, log_filter, max_kills, profile) = (
                self.gateway_exe.clone(),
                a.gateway_log.clone(),
                a.max_kills,
                mx_profile.clone(),
            );
            tokio::spawn(async move {
                let mut kills = Vec::new();
                while kills.len() < max_kills {
                    tokio::time::sleep(Duration::from_secs_f64(every)).await;
                    if finished.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let at = start.elapsed();
                    let (done, arrived) = (accepted.load(Ordering::Relaxed), tracker.distinct());
                    tokio::task::block_in_place(|| -> Result<()> {
                        let mut slot = mx.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(old) = slot.take() {
                            old.kill()?;
                        }
                        let args: [&OsStr; 3] =
                            ["run".as_ref(), "--config".as_ref(), spec.config.as_os_str()];
                        *slot = Some(Proc::spawn(
                            spec.name,
                            &exe,
                            &args,
                            &spec.log,
                            log_filter.as_deref(),
                        )?);
                        Ok(())
                    })?;
                    // Down until its Agency API completes a TLS handshake again
                    // (it opens the database before it accepts).
                    let killed = Instant::now();
                    let _ = connect(&profile, deadline).await;
                    println!(
                        "  kill {} at {:.2} s: {done} accepted, {arrived} in GT's inbox; restarted, taking agencies again after {:.0} ms",
                        kills.len() + 1,
                        at.as_secs_f64(),
                        killed.elapsed().as_secs_f64() * 1e3
                    );
                    kills.push(at);
                }
                Ok::<_, anyhow::Error>(kills.len())
            })
        };
        let driven = closed_loop(
            &clients,
            work.clone(),
            Some(Arc::new(mx_profile.clone())),
            accepted.clone(),
            deadline,
        )
        .await?;
        let accepted_in = start.elapsed();
        let all_arrived = tracker.wait_for(n, deadline).await;
        let arrived_in = start.elapsed();
        finished.store(true, Ordering::Relaxed);
        let kills = killer.await??;

        // What GT holds: read its whole inbox again on a new subscription.
        let mut reader = connect(&gt_profile, deadline).await?;
        let mut stream = reader.subscribe(Some(0), false).await?;
        let mut inbox = Vec::new();
        while let Some(item) = stream.message().await? {
            let id = item
                .body
                .as_ref()
                .map(|b| b.message_id.as_str())
                .unwrap_or("");
            inbox.push(Uuid::try_parse(id).unwrap_or_default());
        }
        let mut copies: HashMap<Uuid, usize> = HashMap::new();
        for id in &inbox {
            *copies.entry(*id).or_default() += 1;
        }
        let accepted_ids: Vec<Uuid> = driven.samples.iter().map(|s| work.ids[s.idx]).collect();
        let lost = accepted_ids
            .iter()
            .filter(|id| !copies.contains_key(id))
            .count();
        let twice = copies.values().filter(|count| **count > 1).count();
        let unexpected = copies.len()
            - accepted_ids
                .iter()
                .filter(|id| copies.contains_key(id))
                .count();
        let out_of_order = load::order_violations(&driven.samples, &work, &inbox);
        let retried_duplicates = driven.samples.iter().filter(|s| s.duplicate).count();

        // MX's receipts: every accepted notice should end up delivered there.
        let mut inm = {
            let mut slot_proc = mx.lock().unwrap_or_else(|e| e.into_inner()).take();
            let client = match slot_proc.as_mut() {
                Some(proc) => self.up(proc, &mx_profile, &mx_spec).await?,
                None => bail!("MX's gateway is not running"),
            };
            *mx.lock().unwrap_or_else(|e| e.into_inner()) = slot_proc;
            client
        };
        let delivered = count_delivered(&mut inm, &accepted_ids, deadline).await?;

        println!(
            "  {} of {n} notices accepted in {:.1} s ({} submits failed while MX was down and were retried with the same id; {retried_duplicates} of the retries were answered \"accepted before\")",
            driven.samples.len(),
            accepted_in.as_secs_f64(),
            driven.failed_attempts
        );
        println!(
            "  {} in GT's inbox after {:.1} s{}; {kills} kills",
            copies.len(),
            arrived_in.as_secs_f64(),
            if all_arrived {
                ""
            } else {
                " (gave up waiting)"
            }
        );
        println!("  accepted notices lost (accepted, never in GT's inbox): {lost}");
        println!("  notices stored twice at GT (same message id twice in the inbox): {twice}");
        println!("  inbox entries for ids never accepted: {unexpected}");
        println!(
            "  notices out of order (per connection, inbox order vs acceptance order): {out_of_order}"
        );
        println!(
            "  receipts stored at MX (status DELIVERED): {delivered} of {}",
            accepted_ids.len()
        );
        let verdict = lost == 0 && twice == 0 && out_of_order == 0 && driven.samples.len() == n;
        println!(
            "  {}",
            if verdict {
                "PASS: nothing accepted was lost, nothing stored twice"
            } else {
                "FAIL"
            }
        );
        drop(tracker);
        if let Some(proc) = mx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            proc.kill()?;
        }
        gt.kill()?;
        ensure!(verdict, "crash check failed");
        Ok(())
    }

    /// Queues `count` notices at MX with GT down, then restarts MX on that
    /// backlog with GT up and measures the drain.
    async fn backlog(&self, count: usize) -> Result<()> {
        let c = self.args.concurrency;
        let dir = self.root.join("backlog");
        let deadline = self.deadline_for(count) + Duration::from_secs(120);
        let gt_spec = self.spec("GT", &dir)?;
        let mx_spec = self.spec("MX", &dir)?;
        let mx_profile = self.profile("MX", "destination-authority");
        println!("\nbacklog check: {count} notices queued at MX while GT is down");
        let mut mx = self.launch(&mx_spec)?;
        self.up(&mut mx, &mx_profile, &mx_spec).await?;
        let clients = connections(&mx_profile, c, deadline).await?;
        let work = Workload::new(self.notice.clone(), count);
        let accepted = Arc::new(AtomicUsize::new(0));
        let sampler = {
            let (accepted, pid) = (accepted.clone(), mx.pid());
            tokio::spawn(async move {
                let mut marks = Vec::new();
                let mut next_mark = count.div_ceil(10).max(1);
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let done = accepted.load(Ordering::Relaxed);
                    if done >= next_mark {
                        if let Ok(stats) = Stats::of(pid) {
                            marks.push((done, stats.rss));
                        }
                        next_mark += count.div_ceil(10).max(1);
                    }
                    if done >= count || Instant::now() > deadline {
                        return marks;
                    }
                }
            })
        };
        let start = Instant::now();
        let driven = closed_loop(&clients, work.clone(), None, accepted.clone(), deadline).await?;
        let fill = start.elapsed();
        let marks = sampler.await?;
        drop(clients);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let queued = mx.stats()?;
        let on_disk = procs::disk_usage(&mx_spec.data);
        println!(
            "  queued {count} in {:.1} s ({} /s accepted with GT down); data folder {:.0} MB",
            fill.as_secs_f64(),
            thousands(count as f64 / fill.as_secs_f64()),
            on_disk as f64 / 1e6
        );
        let marks: Vec<String> = marks
            .iter()
            .map(|(done, rss)| format!("{done}: {:.0} MB", *rss as f64 / 1e6))
            .collect();
        println!(
            "  MX resident memory while queueing (accepted so far: VmRSS): {}",
            marks.join(", ")
        );
        println!(
            "  MX memory with the backlog queued: VmRSS {:.0} MB, VmHWM {:.0} MB (target < 200 MB)",
            queued.rss as f64 / 1e6,
            queued.hwm as f64 / 1e6
        );
        mx.kill()?;

        let mut gt = self.launch(&gt_spec)?;
        let sbs = self
            .up(&mut gt, &self.profile("GT", "child-protection"), &gt_spec)
            .await?;
        let tracker = Tracker::start(sbs).await?;
        let restart = Instant::now();
        let mut mx = self.launch(&mx_spec)?;
        let mut inm = self.up(&mut mx, &mx_profile, &mx_spec).await?;
        let open = restart.elapsed();
        let at_open = mx.stats()?;
        ensure!(tracker.wait_for(1, deadline).await, "nothing arrived at GT");
        let first = restart.elapsed();
        // MX's memory through the drain, at every tenth of the backlog.
        let mut drain_marks = Vec::new();
        let step = count.div_ceil(10).max(1);
        let mut next_mark = step.min(count);
        loop {
            let soon = Instant::now() + Duration::from_secs(10);
            if tracker.wait_for(next_mark, soon).await {
                let rss = mx.stats()?.rss as f64 / 1e6;
                drain_marks.push(format!("{}: {rss:.0} MB", tracker.distinct()));
                if next_mark >= count {
                    break;
                }
                next_mark = (next_mark + step).min(count);
            }
            ensure!(
                Instant::now() < deadline,
                "the backlog did not drain in time"
            );
        }
        let (last, order, duplicates) = tracker.with(|arrived| {
            let last = arrived.at.values().max().copied();
            (last, arrived.order.clone(), arrived.duplicates)
        });
        let last = last.context("nothing arrived")?;
        let last_id = order.last().copied().context("nothing arrived")?;
        let receipt = wait_delivered(&mut inm, &last_id, deadline).await?;
        let (mx_after, gt_after) = (mx.stats()?, gt.stats()?);
        let lost = work
            .ids
            .iter()
            .filter(|id| tracker.with(|arrived| !arrived.at.contains_key(id)))
            .count();
        let out_of_order = load::order_violations(&driven.samples, &work, &order);
        let drain = ms(restart + first, last).as_secs_f64();
        println!(
            "  restart of MX with the backlog: Agency API up after {:.0} ms, VmRSS then {:.0} MB (VmHWM {:.0} MB)",
            open.as_secs_f64() * 1e3,
            at_open.rss as f64 / 1e6,
            at_open.hwm as f64 / 1e6
        );
        println!(
            "  MX resident memory while draining (in GT's inbox so far: VmRSS): {}",
            drain_marks.join(", ")
        );
        println!(
            "  first notice in GT's inbox {:.0} ms after MX's restart (target < 2,000 ms)",
            first.as_secs_f64() * 1e3
        );
        println!(
            "  drained {count} in {drain:.1} s: {} /s; last receipt stored at MX {:.1} s after restart",
            thousands(count as f64 / drain),
            ms(restart, receipt).as_secs_f64()
        );
        println!(
            "  MX peak memory after restart, through the drain: VmHWM {:.0} MB; GT: VmHWM {:.0} MB",
            mx_after.hwm as f64 / 1e6,
            gt_after.hwm as f64 / 1e6
        );
        println!(
            "  lost: {lost}, stored twice: {duplicates}, out of order (per connection): {out_of_order}"
        );
        drop(tracker);
        mx.kill()?;
        gt.kill()?;
        ensure!(
            lost == 0 && duplicates == 0 && out_of_order == 0,
            "backlog check failed"
        );
        Ok(())
    }
}

impl Bench {
    /// Queues `count` notices at MX (GT down) under one at-rest key,
    /// restarts MX with a second key appended, and times `ops rekey` on the
    /// running gateway. Beside it, from the same run: a dry run (which reads
    /// every kept envelope and writes nothing), and MX's accept throughput
    /// with no rekey running and while one runs.
    async fn rekey(&self, count: usize) -> Result<()> {
        ensure!(
            !self.args.no_at_rest_keys,
            "--rekey needs at-rest keys: leave out --no-at-rest-keys"
        );
        let c = self.args.concurrency;
        let dir = self.root.join("rekey");
        let deadline = self.deadline_for(4 * count) + Duration::from_secs(120);
        let mx_spec = self.spec("MX", &dir)?;
        let mx_profile = self.profile("MX", "destination-authority");
        println!(
            "\nrekey check: {count} notices queued at MX under one key (GT down); MX restarted with a second key appended"
        );
        let mut mx = self.launch(&mx_spec)?;
        self.up(&mut mx, &mx_profile, &mx_spec).await?;
        let clients = connections(&mx_profile, c, deadline).await?;
        let fill = Workload::new(self.notice.clone(), count);
        closed_loop(
            &clients,
            fill,
            None,
            Arc::new(AtomicUsize::new(0)),
            deadline,
        )
        .await?;
        drop(clients);
        mx.kill()?;

        let mut config = retorno_gateway::Config::load(&mx_spec.config)?;
        let second = dir.join("MX").join("at-rest-2.key");
        retorno_gateway::at_rest::write_new_key(&second)?;
        config.storage.keys.push(second);
        std::fs::write(&mx_spec.config, config.to_toml()?)?;
        let mut mx = self.launch(&mx_spec)?;
        self.up(&mut mx, &mx_profile, &mx_spec).await?;
        let clients = connections(&mx_profile, c, deadline).await?;
        let mut ops = retorno_client::Operations::connect(&self.profile("MX", "operator")).await?;

        // Accepting with no rekey running.
        let quiet = Workload::new(self.notice.clone(), count);
        let start = Instant::now();
        closed_loop(
            &clients,
            quiet,
            None,
            Arc::new(AtomicUsize::new(0)),
            deadline,
        )
        .await?;
        let quiet_rate = count as f64 / start.elapsed().as_secs_f64();

        let start = Instant::now();
        let dry = ops.rekey(true).await?;
        let dry_secs = start.elapsed().as_secs_f64();
        let kept = dry.keys.iter().map(|k| k.envelopes).sum::<u64>() + dry.clear;

        // Accepting while the rekey runs: the submits answered inside its window.
        let accepted = Arc::new(AtomicUsize::new(0));
        let busy = Workload::new(self.notice.clone(), 2 * count);
        let driving = {
            let (clients, accepted) = (clients.clone(), accepted.clone());
            tokio::spawn(async move { closed_loop(&clients, busy, None, accepted, deadline).await })
        };
        while accepted.load(Ordering::Relaxed) < c {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (before, start) = (accepted.load(Ordering::Relaxed), Instant::now());
        let done = ops.rekey(false).await?;
        let rekey_secs = start.elapsed().as_secs_f64();
        let during = accepted.load(Ordering::Relaxed) - before;
        let all_done = during + before >= 2 * count;
        driving.await??;
        let busy_rate = during as f64 / rekey_secs;

        let after = ops.rekey(true).await?;
        let first = dry
            .keys
            .iter()
            .find(|k| Some(&k.id) != dry.sealing_key.as_ref().map(|s| &s.id))
            .map(|k| k.id.clone())
            .unwrap_or_default();
        let left_under_first = after
            .keys
            .iter()
            .filter(|k| k.id == first)
            .map(|k| k.envelopes)
            .sum::<u64>();
        let status = ops.status().await?;
        let queued: u64 = status.peers.iter().map(|p| p.queued).sum();
        println!(
            "  dry run (opens no envelope, reads every kept one): {kept} kept in {dry_secs:.2} s: {} /s",
            thousands(kept as f64 / dry_secs)
        );
        println!(
            "  ops rekey on the running gateway: sealed {} envelope(s) again in {rekey_secs:.2} s: {} /s",
            done.resealed,
            thousands(done.resealed as f64 / rekey_secs)
        );
        println!(
            "  MX accept throughput while the rekey ran: {} /s; with no rekey running: {} /s; ratio {:.2}{}",
            thousands(busy_rate),
            thousands(quiet_rate),
            busy_rate / quiet_rate,
            if all_done {
                " (the submits ended before the rekey: the window is shorter than the rekey)"
            } else {
                ""
            }
        );
        println!(
            "  after: {left_under_first} envelope(s) left under the first key; {queued} queued for GT (accepted: {})",
            4 * count
        );
        drop(clients);
        mx.kill()?;
        ensure!(
            left_under_first == 0 && queued == 4 * count as u64,
            "rekey check failed"
        );
        Ok(())
    }
}

fn last_done(samples: &[Sample], start: Instant) -> Instant {
    samples.iter().map(|s| s.done).max().unwrap_or(start)
}

/// Polls MX's status of `id` every millisecond until it is DELIVERED.
async fn wait_delivered(client: &mut Client, id: &Uuid, deadline: Instant) -> Result<Instant> {
    let id = id.to_string();
    loop {
        let status = client.status(&id).await?;
        if status.state() == DeliveryState::Delivered {
            return Ok(Instant::now());
        }
        ensure!(Instant::now() < deadline, "{id} was not delivered in time");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// How many of `ids` MX reports DELIVERED, waiting (until `deadline`) for the
/// receipts that are still on their way.
async fn count_delivered(client: &mut Client, ids: &[Uuid], deadline: Instant) -> Result<usize> {
    let mut delivered = 0;
    for id in ids {
        let text = id.to_string();
        loop {
            match client.status(&text).await {
                Ok(status) if status.state() == DeliveryState::Delivered => {
                    delivered += 1;
                    break;
                }
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(_) => break,
                Err(error) => bail!("status of {text}: {error}"),
            }
        }
    }
    Ok(delivered)
}

fn print_threads(
    name: &str,
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) {
    let parts: Vec<String> = after
        .iter()
        .map(|(thread, cpu)| (thread, cpu - before.get(thread).copied().unwrap_or(0.0)))
        .filter(|(_, cpu)| *cpu > 0.0)
        .map(|(thread, cpu)| format!("{thread} {cpu:.2} s"))
        .collect();
    println!(
        "  {name} CPU by thread during the measurement: {}",
        parts.join(", ")
    );
}
