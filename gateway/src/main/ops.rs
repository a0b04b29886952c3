//! `retorno-gateway ops`: the operator's commands against a running gateway,
//! over the Operator API with an operator's profile. Text for people,
//! `--json` (the proto3 JSON mapping) for scripts.
//!
//! And `retorno-gateway migrate`, the one operation on a stopped gateway's
//! database as a whole: moving it from sled onto PostgreSQL ([`migrate`]).

use std::{
    path::PathBuf,
    sync::{Arc, OnceLock, mpsc::RecvTimeoutError},
    time::Duration,
};

use clap::{Args, Subcommand, ValueEnum};
use retorno_client::{
    Operations, Profile,
    i18n::{FluentValue, Lang, t},
};
use retorno_gateway::{
    Config,
    config::DatabaseUrl,
    kv,
    lease::{Lease, PgLease},
    storage::Backend,
};
use retorno_proto::v1::{
    GatewayStatus, KeyEnvelopes, ListMessagesRequest, MessageDirection, MessageHistory,
    MessageState, MessageSummary, RekeyResponse, RequeueOutcome, RequeueRefusal, RequeueResponse,
};
use serde::Serialize;

/// Options shared by every `ops` command.
#[derive(Args)]
pub struct OpsOptions {
    /// The operator's connection profile (an agency profile whose
    /// certificate has the role `operator`).
    #[arg(long, env = "RETORNO_PROFILE")]
    profile: PathBuf,
    /// Print the answer as JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: OpsCommand,
}

#[derive(Subcommand)]
enum OpsCommand {
    /// Per peer (connected, queued, oldest age, last receipt, last error),
    /// certificates with days left, store size, drain state, findings.
    Status,
    /// The message log, newest first, a page at a time: the messages this
    /// gateway accepted, or with --received those it received from peers.
    Messages {
        /// List the messages received from peers instead of those sent.
        #[arg(long)]
        received: bool,
        /// Only messages to this country (with --received, from it).
        #[arg(long)]
        peer: Option<String>,
        /// Only messages in this state (received ones are `received` or `refused`).
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only messages accepted (with --received, stored) at or after this
        /// time (RFC 3339, e.g. 2026-12-02T08:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only messages of this case.
        #[arg(long = "case")]
        case_id: Option<String>,
        /// Messages per page.
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        /// The page after the one that printed this token.
        #[arg(long)]
        page: Option<String>,
    },
    /// One message's whole history: accepted, each attempt, answers,
    /// requeues; for a received one, when it was stored, its inbox cursor and
    /// the agencies that have acknowledged past it.
    Show {
        /// The message id.
        message_id: String,
    },
    /// Send again messages the peer rejected without storing them (once the
    /// cause, e.g. a seal or policy problem, is fixed).
    Requeue {
        /// The message ids.
        #[arg(required = true)]
        message_ids: Vec<String>,
    },
    /// Seal every kept envelope again under the newest key of storage.keys
    /// while the gateway runs, so that an older key can be retired (see
    /// `retorno-gateway rekey` for a stopped gateway). Key ids, files and
    /// counts only.
    Rekey {
        /// Print how the envelopes stand, per key, without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Drain: health says NOT_SERVING so that a load balancer takes this
    /// gateway out; queued messages still go out.
    Drain,
    /// Resume after a drain.
    Resume,
}

/// A message state on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum StateArg {
    Queued,
    Delivered,
    Rejected,
    Refused,
    Received,
}

impl StateArg {
    fn to_proto(self) -> MessageState {
        match self {
            StateArg::Queued => MessageState::Queued,
            StateArg::Delivered => MessageState::Delivered,
            StateArg::Rejected => MessageState::Rejected,
            StateArg::Refused => MessageState::Refused,
            StateArg::Received => MessageState::Received,
        }
    }
}

/// Runs one `ops` command.
pub async fn run(options: OpsOptions) -> anyhow::Result<()> {
    let profile = Profile::load(&options.profile)?;
    let mut ops = Operations::connect(&profile).await?;
    let json = options.json;
    match options.command {
        OpsCommand::Status => print(json, &ops.status().await?, status_text),
        OpsCommand::Messages {
            received,
            peer,
            state,
            since,
            case_id,
            page_size,
            page,
        } => {
            let request = ListMessagesRequest {
                peer: peer.unwrap_or_default(),
                state: state.map_or(MessageState::Unspecified, StateArg::to_proto) as i32,
                since: since.as_deref().map(timestamp).transpose()?,
                case_id: case_id.unwrap_or_default(),
                page_size,
                page_token: page.unwrap_or_default(),
                direction: if received {
                    MessageDirection::Received
                } else {
                    MessageDirection::Sent
                } as i32,
            };
            let answer = ops.messages(request).await?;
            print(json, &answer, |answer| {
                let mut text: String = answer.messages.iter().map(summary_line).collect();
                if !answer.next_page_token.is_empty() {
                    let token = [("token", answer.next_page_token.clone().into())];
                    text.push_str(&format!("{}\n", say("ops-more", &token)));
                }
                text
            })
        }
        OpsCommand::Show { message_id } => print(json, &ops.show(&message_id).await?, history_text),
        OpsCommand::Requeue { message_ids } => {
            let answer = ops.requeue(message_ids).await?;
            print(json, &answer, requeue_text)?;
            let refused = answer.outcomes.iter().filter(|o| !o.requeued).count();
            anyhow::ensure!(
                refused == 0,
                say(
                    "ops-not-requeued-count",
                    &[("count", refused.to_string().into())]
                )
            );
            Ok(())
        }
        OpsCommand::Rekey { dry_run } => print(json, &ops.rekey(dry_run).await?, rekey_text),
        OpsCommand::Drain => {
            let on = ops.set_draining(true).await?;
            print(json, &serde_json::json!({ "draining": on }), |_| {
                format!("{}\n", say("ops-draining", &[]))
            })
        }
        OpsCommand::Resume => {
            let on = ops.set_draining(false).await?;
            print(json, &serde_json::json!({ "draining": on }), |_| {
                format!("{}\n", say("ops-resumed", &[]))
            })
        }
    }
}

fn print<T: Serialize>(json: bool, value: &T, text: impl Fn(&T) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text(value));
    }
    Ok(())
}

fn timestamp(text: &str) -> anyhow::Result<pbjson_types::Timestamp> {
    let at: jiff::Timestamp = text
        .parse()
        .map_err(|e| anyhow::anyhow!("--since: {text:?} is not an RFC 3339 time ({e})"))?;
    Ok(retorno_gateway::clock::wire(at))
}

fn when(at: Option<&pbjson_types::Timestamp>) -> String {
    at.and_then(retorno_gateway::clock::from_wire).map_or_else(
        || "-".into(),
        |at| at.round(jiff::Unit::Second).map_or(at, |r| r).to_string(),
    )
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The reader's language, from `LANG` (as the `retorno` program follows it).
pub(crate) fn lang() -> Lang {
    static LANG: OnceLock<Lang> = OnceLock::new();
    *LANG.get_or_init(Lang::from_env)
}

/// Message `id` of `ops.ftl` in the reader's language.
fn say(id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    t(lang(), id, args)
}

fn yes(on: bool) -> FluentValue<'static> {
    if on { "yes" } else { "no" }.into()
}

fn status_text(status: &GatewayStatus) -> String {
    let mut text = say(
        "ops-status-head",
        &[
            ("country", status.country.clone().into()),
            ("now", when(status.now.as_ref()).into()),
            ("draining", yes(status.draining)),
            ("bytes", status.store_bytes.to_string().into()),
        ],
    );
    text.push('\n');
    text.push_str(&format!("{}\n", say("ops-peers", &[])));
    for peer in &status.peers {
        let oldest = match peer.queued {
            0 => String::new(),
            _ => say(
                "ops-peer-oldest",
                &[("age", age(peer.oldest_queued_seconds).into())],
            ),
        };
        text.push_str("  ");
        text.push_str(&say(
            "ops-peer",
            &[
                ("country", peer.country.clone().into()),
                ("connected", yes(peer.connected)),
                ("queued", peer.queued.to_string().into()),
                ("oldest", oldest.into()),
                ("receipt", when(peer.last_receipt_at.as_ref()).into()),
            ],
        ));
        if !peer.last_error.is_empty() {
            text.push_str("  ");
            text.push_str(&say(
                "ops-peer-error",
                &[
                    ("at", when(peer.last_error_at.as_ref()).into()),
                    ("error", peer.last_error.clone().into()),
                ],
            ));
        }
        text.push('\n');
    }
    text.push_str(&format!("{}\n", say("ops-certificates", &[])));
    for cert in &status.certificates {
        let note = if cert.days_left < 0 {
            say("ops-certificate-expired", &[])
        } else {
            say(
                "ops-certificate-days",
                &[("days", cert.days_left.to_string().into())],
            )
        };
        text.push_str(&format!("  {:<19} {}  {note}\n", cert.role, cert.subject));
    }
    if status.findings.is_empty() {
        text.push_str(&format!("{}\n", say("ops-no-findings", &[])));
    }
    for finding in &status.findings {
        let mut line = say(
            "ops-finding",
            &[
                ("kind", finding.kind.clone().into()),
                ("peer", finding.peer.clone().into()),
                ("count", finding.count.to_string().into()),
                ("description", finding.description.clone().into()),
            ],
        );
        if finding.acknowledged {
            line.push(' ');
            line.push_str(&say("ops-finding-acknowledged", &[]));
        }
        text.push_str(&format!("{line}\n"));
    }
    text
}

fn state_name(state: i32) -> String {
    let id = match MessageState::try_from(state) {
        Ok(MessageState::Queued) => "ops-state-queued",
        Ok(MessageState::Delivered) => "ops-state-delivered",
        Ok(MessageState::Rejected) => "ops-state-rejected",
        Ok(MessageState::Refused) => "ops-state-refused",
        Ok(MessageState::Received) => "ops-state-received",
        _ => return "?".into(),
    };
    say(id, &[])
}

fn summary_line(message: &MessageSummary) -> String {
    let error = match message.error.as_str() {
        "" => String::new(),
        error => format!("  {error}"),
    };
    let peer = [("peer", FluentValue::from(message.peer.clone()))];
    let (way, place) = if message.direction() == MessageDirection::Received {
        let cursor = [("cursor", message.inbox_cursor.to_string().into())];
        (
            say("ops-from", &peer),
            format!("  {}", say("ops-inbox-cursor", &cursor)),
        )
    } else {
        (say("ops-to", &peer), String::new())
    };
    let purged = match &message.purged_at {
        Some(at) => format!(
            "  {}",
            say("ops-envelope-purged", &[("at", when(Some(at)).into())])
        ),
        None => String::new(),
    };
    let id = match message.message_id.as_str() {
        "" => say("ops-id-not-kept", &[]),
        id => id.to_owned(),
    };
    format!(
        "{id}  {}  {way}  {:<22} {:<9} {}  {}{place}{purged}{error}\n",
        when(message.accepted_at.as_ref()),
        message.kind,
        state_name(message.state),
        say(
            "ops-bytes",
            &[("size", message.size_bytes.to_string().into())]
        ),
        say("ops-case", &[("cases", message.case_ids.join(" ").into())]),
    )
}

fn history_text(history: &MessageHistory) -> String {
    let mut text = history
        .message
        .as_ref()
        .map(summary_line)
        .unwrap_or_default();
    for event in &history.events {
        let detail = match event.detail.as_str() {
            "" => String::new(),
            detail => format!(": {detail}"),
        };
        text.push_str(&format!(
            "  {}  {}{detail}\n",
            when(event.at.as_ref()),
            event.event
        ));
    }
    // Only a received message that went to the agencies has acknowledgements.
    if history
        .message
        .as_ref()
        .is_some_and(|m| m.state() == MessageState::Received)
    {
        let line = match history.acknowledged_past.as_slice() {
            [] => say("ops-no-acknowledgement", &[]),
            agencies => say(
                "ops-acknowledged-past",
                &[("agencies", agencies.join(", ").into())],
            ),
        };
        text.push_str(&format!("{line}\n"));
    }
    let line = if history.requeueable {
        say("ops-requeueable", &[])
    } else {
        say(
            "ops-not-requeueable",
            &[("reason", history.not_requeueable.clone().into())],
        )
    };
    text.push_str(&format!("{line}\n"));
    text
}

/// Why a message was not requeued, in the reader's language when its code
/// is known, else as the gateway said it.
fn requeue_refusal(outcome: &RequeueOutcome) -> String {
    let id = match outcome.refusal() {
        RequeueRefusal::Unknown => "ops-requeue-unknown",
        RequeueRefusal::Queued => "ops-requeue-queued",
        RequeueRefusal::Delivered => "ops-requeue-delivered",
        RequeueRefusal::RefusedByCaseRules => "ops-requeue-refused",
        RequeueRefusal::EnvelopeGone => "ops-requeue-gone",
        RequeueRefusal::EnvelopePurged => "ops-requeue-purged",
        RequeueRefusal::Unspecified => return outcome.reason.clone(),
    };
    say(id, &[])
}

fn requeue_text(answer: &RequeueResponse) -> String {
    answer
        .outcomes
        .iter()
        .map(|outcome| {
            let id = ("id", FluentValue::from(outcome.message_id.clone()));
            let line = if outcome.requeued {
                say(
                    "ops-requeued",
                    &[id, ("sequence", outcome.sequence.to_string().into())],
                )
            } else {
                say(
                    "ops-not-requeued",
                    &[id, ("reason", requeue_refusal(outcome).into())],
                )
            };
            format!("{line}\n")
        })
        .collect()
}

/// What a rekey (`ops rekey`, `retorno-gateway rekey`) found and did, each
/// key named by its id and file.
pub fn rekey_text(done: &RekeyResponse) -> String {
    let name = |key: &KeyEnvelopes| {
        let id = ("id", FluentValue::from(key.id.clone()));
        match key.file.as_str() {
            "" => say("ops-key-not-configured", &[id]),
            file => say("ops-key", &[id, ("file", file.to_owned().into())]),
        }
    };
    let count = |n: u64| ("count", FluentValue::from(n.to_string()));
    let kept = done.keys.iter().map(|k| k.envelopes).sum::<u64>() + done.clear;
    let mut lines = vec![say("ops-rekey-kept", &[count(kept)])];
    for key in &done.keys {
        let under = say(
            "ops-rekey-under",
            &[count(key.envelopes), ("key", name(key).into())],
        );
        lines.push(format!("  {under}"));
    }
    if done.clear > 0 {
        lines.push(format!(
            "  {}",
            say("ops-rekey-clear", &[count(done.clear)])
        ));
    }
    if let Some(newest) = &done.sealing_key {
        lines.push(say(
            "ops-rekey-sealed",
            &[
                ("dry_run", yes(done.dry_run)),
                count(done.resealed),
                ("key", name(newest).into()),
            ],
        ));
        if !done.retirable_files.is_empty() {
            let files = ("files", done.retirable_files.join(", ").into());
            lines.push(say("ops-rekey-retirable", &[files]));
        }
    }
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// `retorno-gateway migrate`'s arguments.
#[derive(Args)]
pub struct MigrateArgs {
    /// The stopped gateway's TOML configuration (its `data_dir` is the sled
    /// database copied).
    #[arg(long, env = "RETORNO_CONFIG")]
    config: PathBuf,
    /// The empty PostgreSQL database to copy into, as a libpq URL:
    /// postgres://USER@HOST:5432/DATABASE (postgresql:// too). Read from
    /// RETORNO_MIGRATE_TO when not given, which keeps a password in the URL
    /// out of the process list and the shell's history.
    #[arg(
        long,
        env = "RETORNO_MIGRATE_TO",
        hide_env_values = true,
        value_name = "URL"
    )]
    to: String,
    /// The PEM file of the CA that signed the PostgreSQL server's
    /// certificate: the copy then goes over TLS, the server verified
    /// against it (what `[storage] tls_ca` will say once the gateway runs there).
    #[arg(long, value_name = "FILE")]
    to_tls_ca: Option<PathBuf>,
    /// The PEM file of the client certificate to present to the PostgreSQL
    /// server (with --to-tls-key and --to-tls-ca): what `[storage] tls_cert`
    /// will say.
    #[arg(long, value_name = "FILE", requires_all = ["to_tls_key", "to_tls_ca"])]
    to_tls_cert: Option<PathBuf>,
    /// The PEM file of --to-tls-cert's private key (`[storage] tls_key`).
    #[arg(long, value_name = "FILE", requires = "to_tls_cert")]
    to_tls_key: Option<PathBuf>,
}

/// `retorno-gateway migrate`: copies a stopped sled gateway's whole database
/// into an empty PostgreSQL database, then checks the copy (every tree's
/// count, keys and values, and the audit chain) and says what to do next.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    // The engines' calls block (the PostgreSQL engine waits on its driver
    // with `Handle::block_on`): off the async workers.
    tokio::task::spawn_blocking(move || migrate_blocking(&args)).await?
}

fn migrate_blocking(args: &MigrateArgs) -> anyhow::Result<()> {
    let to = target_url(&args.to)?;
    let config = Config::load_with_files(&args.config)?;
    let source = open_source(&config)?;
    retorno_gateway::store::check_owner(&source, config.country).map_err(|e| {
        anyhow::anyhow!(
            "data_dir {}: {e}: is --config this gateway's own file?",
            config.data_dir.display()
        )
    })?;
    let (target, lease) = open_target(&config, args)?;
    let from = config.data_dir.display();
    println!(
        "copying {}'s gateway from {from} (sled) into {to}",
        config.country
    );
    let checked = kv::copy(&source, &target)
        .map_err(anyhow::Error::from)
        .and_then(|copied| {
            for (tree, count) in &copied.trees {
                println!("  copied {tree:<13} {count:>9} entries");
            }
            println!("copied {} entries; checking the copy", copied.total());
            verify_copy(&source, &target)
        });
    lease.release();
    checked?;
    let mut settings = "url".to_owned();
    for (field, file) in [
        ("tls_ca", &args.to_tls_ca),
        ("tls_cert", &args.to_tls_cert),
        ("tls_key", &args.to_tls_key),
    ] {
        if let Some(file) = file {
            // As the gateway's file must say it: a relative path there is
            // taken from the file's folder, not from here.
            let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            settings.push_str(&format!(", {field} = \"{}\"", file.display()));
        }
    }
    println!(
        "{}'s gateway now lives in {to}: in {}, set [storage] backend = \"postgres\" and {settings}, then start it (keep {from} until it runs)",
        config.country,
        args.config.display()
    );
    Ok(())
}

/// `--to`, checked: a PostgreSQL URL, returned as it may be printed.
fn target_url(url: &str) -> anyhow::Result<String> {
    let postgres = ["postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    anyhow::ensure!(
        postgres,
        "--to: {} is not a PostgreSQL URL: write it as postgres://USER@HOST:5432/DATABASE (or postgresql://...)",
        retorno_gateway::config::redact_url(url)
    );
    Ok(retorno_gateway::config::redact_url(url))
}

/// The stopped gateway's sled database. sled locks its folder while a
/// gateway has it open: that refusal becomes the sentence an operator needs.
fn open_source(config: &Config) -> anyhow::Result<kv::Db> {
    let dir = &config.data_dir;
    anyhow::ensure!(
        config.storage.backend == Backend::Sled,
        "[storage] backend: migrate copies a sled gateway; this one is not"
    );
    anyhow::ensure!(
        dir.join("db").is_file(),
        "data_dir {}: no gateway database here: nothing to migrate (is --config the gateway's own file?)",
        dir.display()
    );
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(config.storage.cache_mb.saturating_mul(1024 * 1024))
        .open()
        .map_err(|error| {
            let error = retorno_gateway::storage::StoreError::from(error);
            if error.held_by_a_running_gateway() {
                anyhow::anyhow!(
                    "data_dir {}: the gateway is running (it holds its database): stop it, back up {0}, then migrate",
                    dir.display()
                )
            } else {
                anyhow::anyhow!("data_dir {}: cannot open the database: {error}", dir.display())
            }
        })?;
    Ok(kv::Db::Sled(db))
}

/// The flags that give the target's connection settings: what the engine's
/// refusals and hints call them here, instead of the gateway file's
/// `[storage]` settings, which the operator did not type.
const MIGRATE_FLAGS: kv::postgres::SettingNames = kv::postgres::SettingNames {
    url: "--to",
    tls_ca: "--to-tls-ca",
    tls_cert: "--to-tls-cert",
    tls_key: "--to-tls-key",
};

/// The name `migrate` holds the target's lease under, as a standby's log
/// shows it (`standing by: another node holds the lease`).
const MIGRATE_NODE: &str = "retorno-gateway migrate";

/// How long `migrate`'s lease lasts without renewal; it renews every third
/// of it while it copies, and gives it up when done.
const MIGRATE_LEASE: Duration = Duration::from_secs(60);

/// The target database: `config`'s `[storage]` with `backend = "postgres"`
/// and `url`, opened as a gateway node opens it (the schema is created),
/// and its lease taken so that no gateway node writes to it (or starts
/// serving from it) while it is filled. Refused when a node holds it.
fn open_target(config: &Config, args: &MigrateArgs) -> anyhow::Result<(kv::Db, TargetLease)> {
    let url = &args.to;
    let mut storage = config.storage.clone();
    storage.backend = Backend::Postgres;
    storage.url = Some(DatabaseUrl::new(url));
    storage.tls_ca.clone_from(&args.to_tls_ca);
    storage.tls_cert.clone_from(&args.to_tls_cert);
    storage.tls_key.clone_from(&args.to_tls_key);
    storage.node = Some(MIGRATE_NODE.to_owned());
    storage.lease_seconds = MIGRATE_LEASE.as_secs();
    let shown = retorno_gateway::config::redact_url(url);
    let db = kv::Db::open_naming(&config.data_dir, &storage, MIGRATE_FLAGS)
        .map_err(|e| anyhow::anyhow!("--to {shown}: cannot open the database: {e}"))?;
    let kv::Db::Postgres(pg) = &db else {
        anyhow::bail!("--to {shown}: not a PostgreSQL database");
    };
    let lease: Arc<dyn Lease> = Arc::new(PgLease::new(pg.clone(), &storage));
    if lease.try_acquire()?.is_none() {
        let holder = lease.holder()?.map_or_else(String::new, |(node, epoch)| {
            format!(" (node {node}, epoch {epoch})")
        });
        anyhow::bail!(
            "--to {shown}: a gateway node holds this database's lease{holder}: a gateway runs on it; migrate copies into a database no gateway uses"
        );
    }
    Ok((db, TargetLease::keep(lease)))
}

/// `migrate`'s hold on the target's lease: renewed by a thread of its own
/// while the copy runs, given up by [`TargetLease::release`].
struct TargetLease {
    stop: std::sync::mpsc::Sender<()>,
    renewer: std::thread::JoinHandle<()>,
}

impl TargetLease {
    fn keep(lease: Arc<dyn Lease>) -> TargetLease {
        let (stop, stopping) = std::sync::mpsc::channel::<()>();
        let renewer = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopping.recv_timeout(MIGRATE_LEASE / 3) {
                if !matches!(lease.renew(), Ok(true)) {
                    // The copy's next write fails as fenced, and says so.
                    return;
                }
            }
            let _ = lease.release();
        });
        TargetLease { stop, renewer }
    }

    /// Gives the lease up now, so that the first gateway node started on
    /// the database takes it at once.
    fn release(self) {
        drop(self.stop);
        let _ = self.renewer.join();
    }
}

/// Checks the copy: every tree holds the source's entries, byte for byte,
/// and the audit chain it received verifies.
fn verify_copy(source: &kv::Db, target: &kv::Db) -> anyhow::Result<()> {
    let mut differ = 0;
    for tree in kv::compare(source, target)? {
        match tree.first_difference {
            None => println!(
                "  same    {:<13} {:>9} entries, same keys and values",
                tree.tree, tree.target
            ),
            Some(at) => {
                differ += 1;
                println!(
                    "  DIFFERS {:<13} source {} entries, target {}: from entry {at} on (in key order)",
                    tree.tree, tree.source, tree.target
                );
            }
        }
    }
    anyhow::ensure!(
        differ == 0,
        "{differ} tree(s) of the target differ from the source: do not start on it; give migrate a new, empty database"
    );
    let audit = target.open_tree("audit")?;
    let log = audit.iter().map(|item| {
        let (key, value) = item?;
        Ok((key.to_vec(), value.to_vec()))
    });
    let chain = retorno_gateway::audit::verify_log(Box::new(log))?;
    if let Some(broken) = &chain.broken {
        anyhow::bail!(
            "the target's audit chain breaks at entry {} ({}): {}; the source's does too: run `retorno-gateway audit verify` on it",
            broken.seq,
            broken.records,
            broken.fault
        );
    }
    match chain.head {
        Some((seq, hash)) => println!(
            "  audit chain of the target intact: height {}, head entry {seq}, hash {}",
            chain.entries,
            retorno_gateway::seal::hex(&hash)
        ),
        None => println!("  audit chain of the target intact: empty"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_url_is_printed_without_its_password() {
        let cases = [
            (
                "postgres://retorno:s3cr:et@pg.example:5432/retorno_mx",
                "postgres://retorno:***@pg.example:5432/retorno_mx",
            ),
            (
                "postgresql://retorno@h1:5432,h2:5432/mx?target_session_attrs=read-write&password=s3cr:et",
                "postgresql://retorno@h1:5432,h2:5432/mx?target_session_attrs=read-write&password=***",
            ),
            (
                "postgres://pg.example/mx?sslpassword=s3cr:et",
                "postgres://pg.example/mx?sslpassword=***",
            ),
            // An unencoded '/' or '@' in the password hides more, never less.
            (
                "postgres://retorno:s3/cr@et@pg.example/mx",
                "postgres://retorno:***@pg.example/mx",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(retorno_gateway::config::redact_url(url), shown);
            assert_eq!(target_url(url).ok().as_deref(), Some(shown));
        }
    }

    #[test]
    fn a_target_that_is_not_postgres_is_refused_naming_the_flag_and_the_form() {
        for url in [
            "mysql://root:s3cret@db/mx",
            "pg.example:5432",
            "sled:///var/lib/retorno",
        ] {
            let error = target_url(url).map(|_| ()).err().map(|e| e.to_string());
            let error = error.unwrap_or_default();
            assert!(
                error.starts_with("--to: ") && error.contains("postgres://USER@HOST:5432/DATABASE"),
                "{error}"
            );
            assert!(!error.contains("s3cret"), "{error}");
        }
    }
}
