//! The load: notices of a chosen encoded size, a closed-loop driver (C
//! agencies, each submitting its next notice when the last is answered), an
//! open-loop driver (sends at fixed intervals, latency from the scheduled
//! time), the tracker of what arrives in GT's inbox, and percentiles.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Result, anyhow, bail};
use prost::Message as _;
use retorno_client::{Client, Profile};
use retorno_proto::v1::{AdvanceNotice, SubmitRequest, submit_request::Payload};
use tokio::{sync::watch, task::JoinSet};
use uuid::Uuid;

/// One submit may take this long before it counts as failed.
pub(crate) const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The README's example notice, with `origin_contact.relationship` padded so
/// that a whole `SubmitRequest` encodes to `payload_bytes` (or as close as the
/// unpadded notice allows). Returns the notice and the encoded request size.
pub(crate) fn padded_notice(payload_bytes: usize) -> (AdvanceNotice, usize) {
    const FILLER: &str = "Maternal grandmother; lives in Aldea Xequemeya, Momostenango, \
        Totonicapan; reachable through the municipal child-protection office (OMPNA) on \
        weekdays; speaks K'iche' and Spanish; has cared for the child before. ";
    let mut notice = retorno_tests::notice();
    let work = Workload {
        notice: Arc::new(notice.clone()),
        phase: 0,
        ids: vec![Uuid::now_v7()],
    };
    let size = |notice: &AdvanceNotice| {
        let mut request = work.request(0);
        request.payload = Some(Payload::AdvanceNotice(notice.clone()));
        request.encoded_len()
    };
    let base = size(&notice);
    if payload_bytes <= base {
        return (notice, base);
    }
    let mut pad = payload_bytes - base;
    for _ in 0..8 {
        let text: String = FILLER.chars().cycle().take(pad).collect();
        if let Some(contact) = notice.origin_contact.as_mut() {
            contact.relationship = text;
        }
        let now = size(&notice);
        if now == payload_bytes {
            break;
        }
        // Length prefixes grow by a byte here and there: adjust and retry.
        pad = (pad + payload_bytes).saturating_sub(now);
    }
    let final_size = size(&notice);
    (notice, final_size)
}

/// Numbers each workload, so that case ids never repeat within a bench.
static PHASES: AtomicU32 = AtomicU32::new(1);

/// A numbered set of notices, each with its own caller-chosen UUIDv7, so that
/// a retry after a crash reuses the same id and the same bytes.
pub(crate) struct Workload {
    notice: Arc<AdvanceNotice>,
    phase: u32,
    pub(crate) ids: Vec<Uuid>,
}

impl Workload {
    pub(crate) fn new(notice: Arc<AdvanceNotice>, count: usize) -> Arc<Workload> {
        Arc::new(Workload {
            notice,
            phase: PHASES.fetch_add(1, Ordering::Relaxed),
            ids: (0..count).map(|_| Uuid::now_v7()).collect(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The submit of notice `i`: always the same bytes for the same `i`.
    pub(crate) fn request(&self, i: usize) -> SubmitRequest {
        SubmitRequest {
            message_id: self.ids[i].to_string(),
            case_id: format!("MX-BENCH{:04}-{i:09}", self.phase % 10_000),
            recipient_country: "GT".to_owned(),
            payload: Some(Payload::AdvanceNotice((*self.notice).clone())),
            ..Default::default()
        }
    }
}

/// One answered submit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Which notice of the workload.
    pub(crate) idx: usize,
    /// Which agency connection sent it (its own submits are strictly sequential).
    pub(crate) worker: usize,
    /// When it was sent (closed loop: first attempt) or scheduled (open loop).
    pub(crate) sent: Instant,
    /// When the gateway answered "accepted".
    pub(crate) done: Instant,
    /// The gateway said it had accepted this id before (a retry).
    pub(crate) duplicate: bool,
}

/// What a closed-loop drive did.
pub(crate) struct Driven {
    pub(crate) samples: Vec<Sample>,
    /// Submits that failed and were tried again (crash mode only).
    pub(crate) failed_attempts: usize,
}

/// Connects to a gateway's Agency API, retrying until `deadline` (it may be starting).
pub(crate) async fn connect(profile: &Profile, deadline: Instant) -> Result<Client> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), Client::connect(profile)).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(error)) if Instant::now() > deadline => {
                bail!("{} did not come up: {error}", profile.gateway)
            }
            _ if Instant::now() > deadline => bail!("{} did not come up", profile.gateway),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// `count` connections (each its own TLS connection).
pub(crate) async fn connections(
    profile: &Profile,
    count: usize,
    deadline: Instant,
) -> Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(connect(profile, deadline).await?);
    }
    Ok(clients)
}

/// Submits every notice of `work` from `clients.len()` concurrent agencies,
/// each sending its next notice when the last one is answered. With `retry`,
/// a failed submit (the gateway was killed) is sent again with the same id
/// over a new connection until it is answered; without, it fails the drive.
/// `accepted` counts answered submits as they come (for progress reports).
pub(crate) async fn closed_loop(
    clients: &[Client],
    work: Arc<Workload>,
    retry: Option<Arc<Profile>>,
    accepted: Arc<AtomicUsize>,
    deadline: Instant,
) -> Result<Driven> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for (worker, client) in clients.iter().enumerate() {
        let (client, work, next, retry, accepted) = (
            client.clone(),
            work.clone(),
            next.clone(),
            retry.clone(),
            accepted.clone(),
        );
        workers.spawn(async move {
            let mut client = Some(client);
            let mut samples = Vec::new();
            let mut failed = 0usize;
            loop {
                let idx = next.fetch_add(1, Ordering::Relaxed);
                if idx >= work.len() {
                    break;
                }
                let request = work.request(idx);
                let sent = Instant::now();
                loop {
                    if Instant::now() > deadline {
                        bail!("deadline passed before notice {idx} was accepted");
                    }
                    let live = match (&mut client, &retry) {
                        (Some(live), _) => live,
                        (None, Some(profile)) => {
                            match tokio::time::timeout(
                                Duration::from_secs(5),
                                Client::connect(profile),
                            )
                            .await
                            {
                                Ok(Ok(fresh)) => client.insert(fresh),
                                _ => {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                    continue;
                                }
                            }
                        }
                        (None, None) => bail!("no connection"),
                    };
                    let answer = tokio::time::timeout(SUBMIT_TIMEOUT, live.submit(request.clone()))
                        .await
                        .map_err(|_| anyhow!("no answer in {SUBMIT_TIMEOUT:?}"))
                        .and_then(|answer| answer.map_err(anyhow::Error::from));
                    match answer {
                        Ok(response) => {
                            samples.push(Sample {
                                idx,
                                worker,
                                sent,
                                done: Instant::now(),
                                duplicate: response.duplicate,
                            });
                            accepted.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(error) if retry.is_none() => {
                            bail!("submit of notice {idx} failed: {error:#}")
                        }
                        Err(_) => {
                            failed += 1;
                            client = None;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>((samples, failed))
        });
    }
    let mut driven = Driven {
        samples: Vec::with_capacity(work.len()),
        failed_attempts: 0,
    };
    while let Some(done) = workers.join_next().await {
        let (samples, failed) = done??;
        driven.samples.extend(samples);
        driven.failed_attempts += failed;
    }
    Ok(driven)
}

/// Sends the notices of `work` at `rate` per second, whatever the answers
/// (open loop), spread over `clients` in turn. Each sample's `sent` is the
/// time the send was scheduled for, so that a stalled gateway cannot hide
/// its stall by delaying the sends behind it (coordinated omission).
/// Returns the samples and how many submits failed.
pub(crate) async fn open_loop(
    clients: &[Client],
    work: Arc<Workload>,
    rate: f64,
    deadline: Instant,
) -> Result<(Vec<Sample>, usize)> {
    if clients.is_empty() || rate <= 0.0 {
        bail!("open loop needs a connection and a positive rate");
    }
    let handle = tokio::runtime::Handle::current();
    let (results, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let clients = clients.to_vec();
    let count = work.len();
    let start = Instant::now() + Duration::from_millis(20);
    // A thread of its own sleeps until each scheduled instant (nanosleep has
    // tens of microseconds of slack; a tokio timer would have a millisecond).
    let pacer = std::thread::spawn(move || {
        for idx in 0..count {
            let scheduled = start + Duration::from_secs_f64(idx as f64 / rate);
            if scheduled > deadline {
                break;
            }
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            let worker = idx % clients.len();
            let mut client = clients[worker].clone();
            let (work, results) = (work.clone(), results.clone());
            handle.spawn(async move {
                let answer =
                    tokio::time::timeout(SUBMIT_TIMEOUT, client.submit(work.request(idx))).await;
                let sample = match answer {
                    Ok(Ok(response)) => Some(Sample {
                        idx,
                        worker,
                        sent: scheduled,
                        done: Instant::now(),
                        duplicate: response.duplicate,
                    }),
                    _ => None,
                };
                let _ = results.send(sample);
            });
        }
    });
    let mut samples = Vec::with_capacity(count);
    let mut failed = 0;
    while samples.len() + failed < count {
        match tokio::time::timeout_at(deadline.into(), answers.recv()).await {
            Ok(Some(Some(sample))) => samples.push(sample),
            Ok(Some(None)) => failed += 1,
            Ok(None) | Err(_) => break,
        }
    }
    tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| anyhow!("the pacer thread panicked"))?;
    if samples.len() + failed < count {
        bail!(
            "open loop: only {} of {count} submits answered in time",
            samples.len() + failed
        );
    }
    Ok((samples, failed))
}

/// What has arrived in GT's inbox, as seen by GT's child-protection agency
/// following its inbox from cursor 0.
#[derive(Default)]
pub(crate) struct Arrivals {
    /// First arrival of each message id.
    pub(crate) at: HashMap<Uuid, Instant>,
    /// Every arrival, in inbox order (a duplicate would appear twice).
    pub(crate) order: Vec<Uuid>,
    /// Arrivals of an id already seen.
    pub(crate) duplicates: usize,
    /// Why the subscription ended, if it did.
    pub(crate) ended: Option<String>,
}

/// Follows an inbox in a task of its own.
pub(crate) struct Tracker {
    state: Arc<Mutex<Arrivals>>,
    distinct: watch::Receiver<usize>,
    task: tokio::task::AbortHandle,
}

impl Tracker {
    /// Subscribes with `client` from cursor 0, following.
    pub(crate) async fn start(mut client: Client) -> Result<Tracker> {
        let mut stream = client.subscribe(Some(0), true).await?;
        let state = Arc::new(Mutex::new(Arrivals::default()));
        let (count, distinct) = watch::channel(0usize);
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            loop {
                let next = stream.message().await;
                let now = Instant::now();
                let mut arrivals = shared.lock().unwrap_or_else(|e| e.into_inner());
                match next {
                    Ok(Some(item)) => {
                        let id = item
                            .body
                            .as_ref()
                            .and_then(|body| Uuid::try_parse(&body.message_id).ok())
                            .unwrap_or_default();
                        arrivals.order.push(id);
                        match arrivals.at.entry(id) {
                            std::collections::hash_map::Entry::Occupied(_) => {
                                arrivals.duplicates += 1;
                            }
                            std::collections::hash_map::Entry::Vacant(slot) => {
                                slot.insert(now);
                                count.send_replace(arrivals.at.len());
                            }
                        }
                    }
                    Ok(None) => {
                        arrivals.ended = Some("the subscription ended".into());
                        return;
                    }
                    Err(status) => {
                        arrivals.ended = Some(status.to_string());
                        return;
                    }
                }
            }
        });
        Ok(Tracker {
            state,
            distinct,
            task: task.abort_handle(),
        })
    }

    /// Waits until `count` distinct ids have arrived; false at `deadline`.
    pub(crate) async fn wait_for(&self, count: usize, deadline: Instant) -> bool {
        let mut distinct = self.distinct.clone();
        let reached = tokio::time::timeout_at(
            deadline.into(),
            distinct.wait_for(|arrived| *arrived >= count),
        )
        .await;
        matches!(reached, Ok(Ok(_)))
    }

    /// How many distinct ids have arrived.
    pub(crate) fn distinct(&self) -> usize {
        *self.distinct.borrow()
    }

    /// Reads the arrivals.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Arrivals) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Latency percentiles, milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lat {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

/// Nearest-rank percentiles of `values`.
pub(crate) fn percentiles(mut values: Vec<Duration>) -> Lat {
    if values.is_empty() {
        return Lat::default();
    }
    values.sort_unstable();
    let at = |p: f64| {
        let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1].as_secs_f64() * 1e3
    };
    Lat {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// Checks that each worker's notices arrived in the order that worker had
/// them accepted (a worker sends its next notice only after the last one was
/// accepted, so its notices have increasing outbox sequence numbers).
/// Returns how many pairs arrived out of order.
pub(crate) fn order_violations(
    samples: &[Sample],
    work: &Workload,
    arrival_order: &[Uuid],
) -> usize {
    let mut position: HashMap<Uuid, usize> = HashMap::with_capacity(arrival_order.len());
    for (pos, id) in arrival_order.iter().enumerate() {
        position.entry(*id).or_insert(pos);
    }
    let mut by_worker: HashMap<usize, Vec<&Sample>> = HashMap::new();
    for sample in samples {
        by_worker.entry(sample.worker).or_default().push(sample);
    }
    let mut violations = 0;
    for mut own in by_worker.into_values() {
        own.sort_by_key(|sample| sample.done);
        let mut last = None;
        for sample in own {
            let Some(&pos) = position.get(&work.ids[sample.idx]) else {
                continue;
            };
            if last.is_some_and(|last| pos < last) {
                violations += 1;
            }
            last = Some(pos);
        }
    }
    violations
}
