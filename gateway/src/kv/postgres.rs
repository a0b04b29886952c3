//! The PostgreSQL engine of [`crate::kv`]: one gateway's trees as tables of
//! one database, shared by the nodes of that gateway.
//!
//! # Tables
//!
//! One table per tree ([`crate::storage::TREES`], plus `default_tree`), each
//! `k bytea PRIMARY KEY, v bytea NOT NULL`: bytea compares byte by byte, so a
//! table's key order is the tree's. The schema is versioned in
//! `gateway/migrations/` (embedded in the program), recorded in
//! `retorno_schema` and applied at [`Pg::open`] in one transaction under
//! `pg_advisory_xact_lock`, so that two nodes starting together do not race.
//!
//! # Sync over async
//!
//! The store is synchronous (its writer is a thread of its own; many reads
//! come from async tasks). tokio-postgres' [`Client`] is runtime agnostic;
//! only its connection task needs Tokio. So a [`Pg`] has its own small Tokio
//! runtime (one worker) on which its connections run, and each synchronous
//! call waits for its query with a plain blocking wait
//! ([`futures::executor::block_on`] on the client's future), inside
//! [`tokio::task::block_in_place`] when the caller is a worker of a
//! multi-thread runtime. `Runtime::block_on` is never used (it panics inside
//! a runtime), and no caller's runtime is needed: a current-thread runtime,
//! a multi-thread one and a plain thread all work.
//!
//! The pool is a small one of its own (connections opened on demand up to
//! `pool_size`, each with its prepared statements): deadpool's `get` is
//! async and its manager spawns connections with `tokio::spawn` on the
//! caller's runtime, which is exactly what a synchronous caller on a
//! current-thread runtime (or none) cannot offer.
//!
//! # Transactions
//!
//! [`Pg::transaction`] is one `SERIALIZABLE` transaction on one connection:
//! the fencing check (below), then the closure, whose reads see its own
//! pending writes first and the database after; its writes are buffered and
//! sent at the end as one upsert (`unnest`) and one delete (`= ANY`) per
//! table, pipelined with the `COMMIT`. A conflict from the closure, a
//! `serialization_failure` (40001) or a `deadlock_detected` (40P01) rolls
//! back and runs the closure again; an abort rolls back and is returned. A
//! lost connection is an error, never a retry: the outcome of a commit whose
//! answer was lost is unknown, and only the caller can tell what to do.
//! Writes outside a transaction (`insert`, `remove`, `clear`, ...) are each
//! a transaction of their own, so they are fenced too.
//!
//! # Lease and fencing
//!
//! `retorno_lease` has one row per gateway: its holder (a node name), an
//! epoch and an expiry, all times from the database's clock. A node takes
//! the lease when it is free, expired or already its own
//! ([`Pg::try_acquire`]); the epoch rises by one each time it changes hands
//! (or its holder restarted). Every write transaction begins with
//! `SELECT epoch FROM retorno_lease WHERE gateway = $1 FOR SHARE` and stops
//! with [`StoreError::Fenced`] unless the epoch is the one this [`Pg`]
//! acquired. That is safe against a concurrent takeover because the
//! takeover is an `UPDATE` of that row, which needs a lock that conflicts
//! with `FOR SHARE`: it waits until every writer that already checked the
//! epoch has committed or rolled back. A writer that checks after the
//! takeover committed sees the new epoch and stops; one whose serializable
//! snapshot predates the takeover cannot lock the updated row (PostgreSQL
//! answers `serialization_failure`), so it runs again, sees the new epoch
//! and stops. So once another node holds the lease, a node that lost it
//! (paused, partitioned) never writes again, whatever its clock says.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap, VecDeque},
    future::Future,
    ops::Bound,
    path::Path,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::Duration,
};

use futures::future::{FutureExt as _, LocalBoxFuture};
use tokio_postgres::{Client, NoTls, Statement, error::SqlState, types::ToSql};

use super::{TxTree, Value};
use crate::storage::{StoreError, TREES, TxError};

/// The schema's migrations, in order: version, name, SQL.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_trees",
        include_str!("../../migrations/0001_trees.sql"),
    ),
    (
        2,
        "0002_lease",
        include_str!("../../migrations/0002_lease.sql"),
    ),
    (
        3,
        "0003_inline_values",
        include_str!("../../migrations/0003_inline_values.sql"),
    ),
];

/// The table of the default tree (the health probe's key).
pub const DEFAULT_TABLE: &str = "default_tree";

/// The advisory lock that serialises migrations (`retorno` in ASCII).
const MIGRATION_LOCK: i64 = 0x0072_6574_6f72_6e6f;

/// Rows of the first page of an iterator; each next page doubles, up to
/// [`PAGE_MAX`]: a lookup of the first entry reads little, a long scan
/// (the audit log, the message log) reads in few round trips.
const PAGE_FIRST: i64 = 16;
/// The largest page of an iterator.
const PAGE_MAX: i64 = 512;

/// How long a call waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(30);

std::thread_local! {
    /// Whether this thread holds a pooled connection. A thread that asked
    /// for a second one while holding the first would wait on itself with
    /// `storage.pool_size = 1` (and hold two of the pool otherwise): debug
    /// builds, and so every test, panic at such a nested call instead.
    static HOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// An error of the PostgreSQL engine: the driver's message and, when the
/// server answered, its SQLSTATE. It never holds the connection URL.
#[derive(Clone, Debug)]
pub struct PgError {
    code: Option<String>,
    message: String,
    closed: bool,
}

impl PgError {
    /// An error of this engine's own (not the driver's).
    pub fn new(message: impl Into<String>) -> PgError {
        PgError {
            code: None,
            message: message.into(),
            closed: false,
        }
    }

    /// The SQLSTATE the server answered, if it did (`40001`, ...).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether the connection was lost (the outcome of a commit in flight is unknown).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn from_driver(error: &tokio_postgres::Error) -> PgError {
        let mut refused = PgError::connecting(error);
        // Lost while talking (not while connecting): a commit in flight
        // may or may not have been kept.
        refused.closed = error.is_closed()
            || (error.to_string() == "error communicating with the server"
                && std::error::Error::source(error).is_some_and(is_io));
        if refused.closed {
            refused.message.push_str(
                " (the connection was lost: a commit in flight may or may not have been kept)",
            );
        }
        refused
    }

    /// The driver's error while connecting: nothing was in flight yet.
    fn connecting(error: &tokio_postgres::Error) -> PgError {
        let code = error.code().map(|code| code.code().to_owned());
        let message = match error.as_db_error() {
            Some(db) => match db.detail() {
                Some(detail) => format!("{}: {} ({detail})", db.severity(), db.message()),
                None => format!("{}: {}", db.severity(), db.message()),
            },
            None => {
                // The cause of a connection error (refused, timed out) helps;
                // a connection string's parse error may quote the string, so
                // its cause is left out.
                let text = error.to_string();
                match std::error::Error::source(error) {
                    Some(cause) if text != "invalid connection string" => {
                        format!("{text}: {cause}")
                    }
                    _ => text,
                }
            }
        };
        PgError {
            code,
            message,
            closed: false,
        }
    }
}

fn is_io(error: &(dyn std::error::Error + 'static)) -> bool {
    error.downcast_ref::<std::io::Error>().is_some()
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} (SQLSTATE {code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        StoreError::Postgres(PgError::from_driver(&error))
    }
}

impl From<PgError> for StoreError {
    fn from(error: PgError) -> Self {
        StoreError::Postgres(error)
    }
}

/// Whether running the transaction again may succeed: a serialization
/// failure or a deadlock, answered by the server (so nothing was kept).
fn retryable(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Waits for `future` on this thread: the driver's connections run on the
/// [`Pg`]'s own runtime, so the caller's runtime (if any) is not needed.
fn wait<F: Future>(future: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| futures::executor::block_on(future))
        }
        _ => futures::executor::block_on(future),
    }
}

/// One connection of the pool, with its prepared statements.
struct Conn {
    client: Client,
    statements: RefCell<HashMap<String, Statement>>,
    /// A transaction was begun and not yet ended: such a connection (left
    /// by a panicking closure) is closed, never given to the next caller.
    in_transaction: std::cell::Cell<bool>,
}

impl Conn {
    /// The prepared statement for `sql`, prepared once per connection.
    fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = wait(self.client.prepare(sql))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let statement = self.statement(sql)?;
        wait(self.client.query(&statement, params))
    }

    fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let statement = self.statement(sql)?;
        wait(self.client.execute(&statement, params))
    }

    fn simple(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        wait(self.client.batch_execute(sql))
    }
}

/// The lease this handle holds.
#[derive(Clone)]
struct Lease {
    gateway: String,
    node: String,
    epoch: i64,
}

struct Pool {
    /// Idle connections, and how many are open in all.
    idle: Mutex<(Vec<Conn>, usize)>,
    freed: Condvar,
    size: usize,
}

struct Inner {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    config: tokio_postgres::Config,
    /// TLS to the server, verified against `[storage] tls_ca`; `None`
    /// connects in the clear.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// What a refusal calls the settings.
    names: SettingNames,
    /// Whether this node presents a client certificate.
    client_cert: bool,
    pool: Pool,
    lease: Mutex<Option<Lease>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime inside another one panics; this does not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A tree of a PostgreSQL database: its table ([`super::Tree::Postgres`]).
#[derive(Clone)]
pub struct PgTree {
    pub(crate) pg: Pg,
    pub(crate) table: &'static str,
}

/// A connected PostgreSQL database of one gateway (cheap to clone).
#[derive(Clone)]
pub struct Pg(Arc<Inner>);

/// A connection taken from the pool; back to it when dropped (unless lost).
struct Pooled<'a> {
    pg: &'a Inner,
    conn: Option<Conn>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Always Some until dropped.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        HOLDING.with(|holding| holding.set(false));
        let Some(conn) = self.conn.take() else { return };
        let mut idle = lock(&self.pg.pool.idle);
        if conn.client.is_closed() || conn.in_transaction.get() {
            // Dropping the client closes the connection: the server rolls back.
            idle.1 -= 1;
        } else {
            idle.0.push(conn);
        }
        drop(idle);
        self.pg.pool.freed.notify_one();
    }
}

/// What the operator calls the engine's connection settings, for its
/// refusals and hints: the gateway file's `[storage]` settings, or the
/// `migrate` flags that give them for the target database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingNames {
    /// The database URL.
    pub url: &'static str,
    /// The CA of the server's certificate.
    pub tls_ca: &'static str,
    /// This node's client certificate.
    pub tls_cert: &'static str,
    /// Its private key.
    pub tls_key: &'static str,
}

impl SettingNames {
    /// The gateway file's `[storage]` settings.
    pub const STORAGE: SettingNames = SettingNames {
        url: "storage.url",
        tls_ca: "storage.tls_ca",
        tls_cert: "storage.tls_cert",
        tls_key: "storage.tls_key",
    };
}

/// The driver's settings from the URL and the CA file: the one check of
/// both, for `check-config` and for connecting. With a CA, TLS is required
/// whatever the URL's `sslmode`; without, a URL that requires it is
/// refused, since there is nothing to verify the server against. A refusal
/// is the setting to change and why.
pub fn parse_url(
    url: &str,
    tls_ca: Option<&Path>,
    names: SettingNames,
) -> Result<tokio_postgres::Config, (&'static str, String)> {
    use tokio_postgres::config::SslMode;
    let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
        (
            names.url,
            "not a PostgreSQL URL: write it as postgres://user@host:5432/database".to_owned(),
        )
    })?;
    match (tls_ca, config.get_ssl_mode()) {
        (Some(_), _) => {
            config.ssl_mode(SslMode::Require);
        }
        (None, SslMode::Require) => {
            return Err((
                names.url,
                format!(
                    "asks for sslmode=require, but {} is not set: set it to the PEM file of the CA that signed the PostgreSQL server's certificate",
                    names.tls_ca
                ),
            ));
        }
        (None, _) => {}
    }
    Ok(config)
}

/// What to check when a connection failed for a reason of TLS: the
/// server's certificate (`tls_ca`), or this node's (`tls_cert`, `tls_key`),
/// or that it has none (`client_cert` false) where the server asks for one.
fn tls_hint(message: &str, names: SettingNames, client_cert: bool) -> Option<String> {
    let SettingNames {
        url,
        tls_ca,
        tls_cert,
        tls_key,
    } = names;
    let theirs = format!(
        "check that {tls_ca} is the CA that signed the PostgreSQL server's certificate, and that the certificate names the host of {url}"
    );
    let ours = if client_cert {
        format!(
            "check that {tls_cert} is a client certificate from a CA the PostgreSQL server trusts (its ssl_ca_file), issued to the database user of {url}, and that {tls_key} is its key"
        )
    } else {
        format!(
            "the server asks for a client certificate and this node presents none: set {tls_cert} and {tls_key} to a certificate from a CA the server trusts (its ssl_ca_file), issued to the database user of {url}, and its key"
        )
    };
    if message.contains("client certificate") || message.contains("certificate authentication") {
        // The server's own refusal (pg_hba.conf says `cert`).
        Some(ours)
    } else if message.contains("invalid peer certificate") {
        Some(theirs)
    } else if [
        "UnknownCA",
        "BadCertificate",
        "CertificateRequired",
        "DecryptError",
    ]
    .iter()
    .any(|alert| message.contains(&format!("received fatal alert: {alert}")))
    {
        // The server did not take the certificate this node presented (with
        // TLS 1.3 its alert comes on the first read).
        Some(ours)
    } else if message.contains("received fatal alert") {
        Some(format!(
            "the PostgreSQL server ended the TLS handshake: check its ssl settings against {tls_ca}, {tls_cert} and {tls_key}"
        ))
    } else if message.contains("TLS handshake") {
        Some(theirs)
    } else {
        None
    }
}

/// Runs a connection until it ends, logging why if it failed.
async fn watch_connection(
    connection: impl std::future::Future<Output = Result<(), tokio_postgres::Error>>,
) {
    if let Err(error) = connection.await {
        tracing::warn!(error = %PgError::from_driver(&error), "a PostgreSQL connection ended");
    }
}

/// TLS to the PostgreSQL server: `[storage] tls_ca`, and `tls_cert` with
/// `tls_key` when the node presents a client certificate.
#[derive(Clone, Copy, Debug)]
pub struct TlsFiles<'a> {
    /// The CA the server's certificate must chain to.
    pub ca: &'a Path,
    /// The client certificate's PEM file and its key's.
    pub client: Option<(&'a Path, &'a Path)>,
}

/// The TLS client for the PostgreSQL server: the gateway's rustls provider,
/// TLS 1.2 or 1.3, the server verified against `files.ca` alone (no system
/// roots), and the client certificate of `files.client` presented if set.
fn tls_to_server(
    files: TlsFiles<'_>,
    names: SettingNames,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let refused = |field: &str, file: &Path, problem: String| {
        PgError::new(format!("{field} {}: {problem}", file.display()))
    };
    let roots = retorno_client::tls::load_roots(files.ca)
        .map_err(|error| refused(names.tls_ca, files.ca, error.to_string()))?;
    let config = rustls::ClientConfig::builder_with_provider(retorno_client::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| refused(names.tls_ca, files.ca, error.to_string()))?
        .with_root_certificates(roots);
    let config = match files.client {
        None => config.with_no_client_auth(),
        Some((cert, key)) => {
            let own = retorno_client::tls::KeyedChain::load(cert, key)
                .map_err(|error| refused(names.tls_cert, cert, error.to_string()))?;
            config
                .with_client_auth_cert(own.chain, own.key)
                .map_err(|error| {
                    refused(
                        names.tls_key,
                        key,
                        format!("{error}: is it the key of {}?", names.tls_cert),
                    )
                })?
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long a transaction of this gateway may wait between two statements
/// before the server ends its session. A healthy node sends each next
/// statement within milliseconds; one that stopped (SIGSTOP, a frozen
/// virtual machine, a cut network) would otherwise keep a standby from
/// taking the lease until it woke.
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

impl Pg {
    /// Connects to the database at `url` (at most `pool_size` connections)
    /// and applies the schema's migrations. Takes no lease. With `tls`,
    /// every connection is TLS, the server's certificate must chain to
    /// `tls.ca` and name the URL's host, and the client certificate of
    /// `tls.client` is presented when set; without, connections are in the
    /// clear, and a URL asking for `sslmode=require` is refused.
    ///
    /// Refusals and hints call the settings by `names`.
    pub fn open(
        url: &str,
        pool_size: usize,
        tls: Option<TlsFiles<'_>>,
        names: SettingNames,
    ) -> Result<Pg, StoreError> {
        let mut config = parse_url(url, tls.map(|files| files.ca), names)
            .map_err(|(field, reason)| StoreError::Settings { field, reason })?;
        let client_cert = tls.is_some_and(|files| files.client.is_some());
        let tls = tls.map(|files| tls_to_server(files, names)).transpose()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // A database machine that dies without closing its sockets is noticed
        // in seconds, not hours.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        if config.get_application_name().is_none() {
            config.application_name("retorno-gateway");
        }
        // A node paused or cut off inside a transaction holds the lease
        // row's FOR SHARE lock, on which a standby's takeover waits: the
        // server ends such a session, and its transaction with nothing
        // kept, once it has sent nothing for this long.
        //
        // Every lookup of the engine goes by key or key range, and a
        // sequential scan is never what it wants; the planner takes one for
        // `k = ANY($1)` on a table it believes small (a queue whose heap is
        // full of dead rows, one without statistics yet), which compares
        // every row with every key (twice the server's CPU per notice in
        // `retorno-bench --backend postgres`) and, under SERIALIZABLE,
        // takes a predicate lock on the whole table, so that a concurrent
        // write anywhere in it fails one of the two transactions, to be run
        // again. What reads a whole table (a count, a clear) still does.
        let session = format!(
            "-c idle_in_transaction_session_timeout={} -c enable_seqscan=off",
            IDLE_IN_TRANSACTION.as_millis()
        );
        let options = match config.get_options() {
            Some(given) => format!("{given} {session}"),
            None => session,
        };
        config.options(options);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("retorno-postgres")
            .enable_all()
            .build()
            .map_err(|error| StoreError::Io(Arc::new(error)))?;
        let pg = Pg(Arc::new(Inner {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            config,
            tls,
            names,
            client_cert,
            pool: Pool {
                idle: Mutex::new((Vec::new(), 0)),
                freed: Condvar::new(),
                size: pool_size.max(1),
            },
            lease: Mutex::new(None),
        }));
        pg.migrate()?;
        Ok(pg)
    }

    fn conn(&self) -> Result<Pooled<'_>, StoreError> {
        debug_assert!(
            !HOLDING.with(std::cell::Cell::get),
            "a PostgreSQL connection asked for by a thread that holds one: \
             with storage.pool_size = 1 it would wait on itself"
        );
        let pooled = self.pooled()?;
        HOLDING.with(|holding| holding.set(true));
        Ok(pooled)
    }

    fn pooled(&self) -> Result<Pooled<'_>, StoreError> {
        let inner = &*self.0;
        let deadline = std::time::Instant::now() + POOL_WAIT;
        let mut idle = lock(&inner.pool.idle);
        loop {
            while let Some(conn) = idle.0.pop() {
                if !conn.client.is_closed() {
                    return Ok(Pooled {
                        pg: inner,
                        conn: Some(conn),
                    });
                }
                idle.1 -= 1;
            }
            if idle.1 < inner.pool.size {
                idle.1 += 1;
                drop(idle);
                return match self.connect() {
                    Ok(conn) => Ok(Pooled {
                        pg: inner,
                        conn: Some(conn),
                    }),
                    Err(error) => {
                        lock(&inner.pool.idle).1 -= 1;
                        inner.pool.freed.notify_one();
                        Err(error)
                    }
                };
            }
            // One deadline for the whole wait: a caller that keeps losing
            // the freed connection to others still gives up in time.
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let (guard, _) = inner
                .pool
                .freed
                .wait_timeout(idle, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            idle = guard;
            if std::time::Instant::now() >= deadline
                && idle.0.is_empty()
                && idle.1 >= inner.pool.size
            {
                return Err(PgError::new(format!(
                    "no PostgreSQL connection free after {}s (storage.pool_size = {})",
                    POOL_WAIT.as_secs(),
                    inner.pool.size
                ))
                .into());
            }
        }
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let config = self.0.config.clone();
        let tls = self.0.tls.clone();
        let task = self.0.handle.spawn(async move {
            let client = match tls {
                Some(tls) => {
                    let (client, connection) = config.connect(tls).await?;
                    tokio::spawn(watch_connection(connection));
                    client
                }
                None => {
                    let (client, connection) = config.connect(NoTls).await?;
                    tokio::spawn(watch_connection(connection));
                    client
                }
            };
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = wait(task)
            .map_err(|error| {
                PgError::new(format!("the PostgreSQL connecting task failed: {error}"))
            })?
            .map_err(|error| {
                let mut refused = PgError::connecting(&error);
                if let Some(hint) = tls_hint(&refused.message, self.0.names, self.0.client_cert) {
                    refused.message.push_str(": ");
                    refused.message.push_str(&hint);
                }
                refused
            })?;
        Ok(Conn {
            client,
            statements: RefCell::new(HashMap::new()),
            in_transaction: std::cell::Cell::new(false),
        })
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let result = (|| -> Result<(), tokio_postgres::Error> {
            conn.simple("BEGIN")?;
            conn.query("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            conn.simple(
                "CREATE TABLE IF NOT EXISTS retorno_schema (version integer PRIMARY KEY, \
                 name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
            )?;
            let applied: Vec<i32> = conn
                .query("SELECT version FROM retorno_schema", &[])?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            for (version, name, sql) in MIGRATIONS {
                if applied.contains(version) {
                    continue;
                }
                conn.simple(sql)?;
                conn.execute(
                    "INSERT INTO retorno_schema (version, name) VALUES ($1, $2)",
                    &[version, name],
                )?;
                tracing::info!(migration = name, "PostgreSQL schema migrated");
            }
            conn.simple("COMMIT")
        })();
        if let Err(error) = result {
            let _ = conn.simple("ROLLBACK");
            return Err(error.into());
        }
        let mut tables: Vec<&str> = TREES.to_vec();
        tables.push(DEFAULT_TABLE);
        let missing: Vec<String> = conn
            .query(
                "SELECT t FROM unnest($1::text[]) t WHERE to_regclass(quote_ident(t)) IS NULL",
                &[&tables],
            )?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        if !missing.is_empty() {
            return Err(PgError::new(format!(
                "the database has no table for the trees {missing:?}: add them in a migration (gateway/migrations)"
            ))
            .into());
        }
        Ok(())
    }

    /// The table of the tree `name`, if the schema has one.
    pub(crate) fn table(name: &str) -> Result<&'static str, StoreError> {
        TREES
            .iter()
            .copied()
            .chain([DEFAULT_TABLE])
            .find(|table| *table == name)
            .ok_or_else(|| {
                PgError::new(format!(
                    "no table for the tree {name:?}: name it in storage::TREES and create it in a migration"
                ))
                .into()
            })
    }

    /// Runs `f` on a pooled connection, outside any transaction.
    fn read<R>(
        &self,
        f: impl FnOnce(&Conn) -> Result<R, tokio_postgres::Error>,
    ) -> Result<R, StoreError> {
        let conn = self.conn()?;
        Ok(f(&conn)?)
    }

    /// The value under `key` in `table`.
    pub(crate) fn get(&self, table: &str, key: &[u8]) -> Result<Option<Value>, StoreError> {
        self.read(|conn| get(conn, table, key))
    }

    /// Up to `limit` entries of `table` between `lo` and `hi`, in key order or backwards.
    pub(crate) fn page(
        &self,
        table: &str,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
        descending: bool,
        limit: i64,
    ) -> Result<Vec<(Value, Value)>, StoreError> {
        let mut sql = format!("SELECT k, v FROM \"{table}\"");
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        let mut conditions = Vec::new();
        for (bound, included, excluded) in [(lo, ">=", ">"), (hi, "<=", "<")] {
            match bound {
                Bound::Included(key) => {
                    params.push(key);
                    conditions.push(format!("k {included} ${}", params.len()));
                }
                Bound::Excluded(key) => {
                    params.push(key);
                    conditions.push(format!("k {excluded} ${}", params.len()));
                }
                Bound::Unbounded => {}
            }
        }
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        params.push(&limit);
        sql.push_str(&format!(
            " ORDER BY k {} LIMIT ${}",
            if descending { "DESC" } else { "ASC" },
            params.len()
        ));
        self.read(|conn| {
            conn.query(&sql, &params)?
                .iter()
                .map(|row| {
                    let k: Vec<u8> = row.try_get(0)?;
                    let v: Vec<u8> = row.try_get(1)?;
                    Ok((Value::from(k), Value::from(v)))
                })
                .collect()
        })
    }

    /// How many entries `table` holds.
    pub(crate) fn count(&self, table: &str) -> Result<u64, StoreError> {
        self.read(|conn| {
            let rows = conn.query(&format!("SELECT count(*) FROM \"{table}\""), &[])?;
            let count: i64 = match rows.first() {
                Some(row) => row.try_get(0)?,
                None => 0,
            };
            Ok(count.max(0) as u64)
        })
    }

    /// Whether `table` holds no entry.
    pub(crate) fn empty(&self, table: &str) -> Result<bool, StoreError> {
        self.read(|conn| {
            let rows = conn.query(&format!("SELECT 1 FROM \"{table}\" LIMIT 1"), &[])?;
            Ok(rows.is_empty())
        })
    }

    /// Bytes the gateway's tables take (with their indexes and TOAST).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        let mut tables: Vec<&str> = TREES.to_vec();
        tables.push(DEFAULT_TABLE);
        self.read(|conn| {
            let rows = conn.query(
                "SELECT COALESCE(sum(pg_total_relation_size(quote_ident(t)::regclass)), 0)::bigint \
                 FROM unnest($1::text[]) t",
                &[&tables],
            )?;
            let size: i64 = match rows.first() {
                Some(row) => row.try_get(0)?,
                None => 0,
            };
            Ok(size.max(0) as u64)
        })
    }

    /// A number never given before by this database.
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let rows = conn.query("SELECT nextval('retorno_ids')", &[])?;
            let id: i64 = match rows.first() {
                Some(row) => row.try_get(0)?,
                None => 0,
            };
            Ok(id.max(0) as u64)
        })
    }

    /// Moves the id sequence past `id` (never back).
    pub fn ids_after(&self, id: u64) -> Result<(), StoreError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.read(|conn| {
            conn.execute(
                "SELECT setval('retorno_ids', GREATEST($1, (SELECT last_value FROM retorno_ids)))",
                &[&id],
            )?;
            Ok(())
        })
    }

    /// Removes every entry of `table` (a fenced transaction of its own).
    pub(crate) fn clear(&self, table: &'static str) -> Result<(), StoreError> {
        self.transaction(&[table], |trees| {
            if let Some(TxTree::Postgres(tree)) = trees.first() {
                tree.clear();
            }
            Ok(())
        })
    }

    /// Takes the lease of `gateway` for `node` for `ttl` when it is free,
    /// expired or already this handle's; returns the epoch held, or `None`
    /// when another node holds it. The epoch rises by one when the lease
    /// changes hands or its holder restarted (a new handle of the same node).
    pub fn try_acquire(
        &self,
        gateway: &str,
        node: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, StoreError> {
        let mut lease = lock(&self.0.lease);
        let ours = lease
            .as_ref()
            .filter(|lease| lease.gateway == gateway && lease.node == node)
            .map_or(0, |lease| lease.epoch);
        let seconds = ttl.as_secs_f64();
        let epoch: Option<i64> = self.read(|conn| {
            let rows = conn.query(
                "INSERT INTO retorno_lease AS l (gateway, holder, epoch, expires_at) \
                 VALUES ($1, $2, 1, now() + make_interval(secs => $3)) \
                 ON CONFLICT (gateway) DO UPDATE SET \
                   holder = EXCLUDED.holder, \
                   epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.epoch = $4 \
                           THEN l.epoch ELSE l.epoch + 1 END, \
                   expires_at = EXCLUDED.expires_at \
                 WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder \
                 RETURNING l.epoch",
                &[&gateway, &node, &seconds, &ours],
            )?;
            rows.first().map(|row| row.try_get(0)).transpose()
        })?;
        if let Some(epoch) = epoch {
            *lease = Some(Lease {
                gateway: gateway.to_owned(),
                node: node.to_owned(),
                epoch,
            });
        }
        Ok(epoch)
    }

    /// Extends the lease by `ttl` if this handle still holds it (same
    /// epoch); `false` means it was lost: this node writes nothing more.
    pub fn renew(&self, ttl: Duration) -> Result<bool, StoreError> {
        let Some(lease) = lock(&self.0.lease).clone() else {
            return Ok(false);
        };
        let seconds = ttl.as_secs_f64();
        let updated = self.read(|conn| {
            conn.execute(
                "UPDATE retorno_lease SET expires_at = now() + make_interval(secs => $4) \
                 WHERE gateway = $1 AND holder = $2 AND epoch = $3",
                &[&lease.gateway, &lease.node, &lease.epoch, &seconds],
            )
        })?;
        Ok(updated == 1)
    }

    /// Gives the lease up (it expires now, its epoch stays, so the next
    /// holder's is higher); this handle writes nothing more until it takes
    /// a lease again.
    pub fn release(&self) -> Result<(), StoreError> {
        let Some(lease) = lock(&self.0.lease).take() else {
            return Ok(());
        };
        self.read(|conn| {
            conn.execute(
                "UPDATE retorno_lease SET expires_at = now() \
                 WHERE gateway = $1 AND holder = $2 AND epoch = $3",
                &[&lease.gateway, &lease.node, &lease.epoch],
            )
        })?;
        Ok(())
    }

    /// Who holds the lease of `gateway` now (not expired), and its epoch.
    pub fn holder(&self, gateway: &str) -> Result<Option<(String, i64)>, StoreError> {
        self.read(|conn| {
            let rows = conn.query(
                "SELECT holder, epoch FROM retorno_lease WHERE gateway = $1 AND expires_at > now()",
                &[&gateway],
            )?;
            rows.first()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .transpose()
        })
    }

    /// Sessions of this database waiting on a lock to change a lease (a
    /// takeover waiting for the holder's writers in flight): for operators
    /// and tests.
    pub fn lease_waiters(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let rows = conn.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE '%INTO retorno_lease%'",
                &[],
            )?;
            let count: i64 = match rows.first() {
                Some(row) => row.try_get(0)?,
                None => 0,
            };
            Ok(count.max(0) as u64)
        })
    }

    /// The epoch this handle acquired, if it holds a lease.
    pub fn epoch(&self) -> Option<i64> {
        lock(&self.0.lease).as_ref().map(|lease| lease.epoch)
    }

    /// Runs `f` over the trees of `tables` as one fenced, serializable
    /// transaction (see the module's documentation).
    pub(crate) fn transaction<T>(
        &self,
        tables: &[&'static str],
        f: impl Fn(&[TxTree<'_>]) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let Some(lease) = lock(&self.0.lease).clone() else {
            return Err(StoreError::Fenced {
                held: None,
                current: None,
            });
        };
        let conn = self.conn()?;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match attempt_once(&conn, tables, &lease, &f) {
                Ok(value) => return Ok(value),
                Err(Outcome::Retry) => {
                    if attempt > 2 {
                        // Contended: spread the runs apart a little.
                        let most = 1u64 << attempt.min(6);
                        std::thread::sleep(Duration::from_millis(rand::random_range(0..=most)));
                    }
                }
                Err(Outcome::Fail(error)) => return Err(error),
            }
        }
    }
}

/// Why one run of a transaction did not commit.
enum Outcome {
    /// Run it again (a conflict; nothing was kept).
    Retry,
    /// Stop with this error (nothing was kept, or the outcome is unknown
    /// because the connection was lost).
    Fail(StoreError),
}

fn get(conn: &Conn, table: &str, key: &[u8]) -> Result<Option<Value>, tokio_postgres::Error> {
    let rows = conn.query(&format!("SELECT v FROM \"{table}\" WHERE k = $1"), &[&key])?;
    match rows.first() {
        Some(row) => {
            let value: Vec<u8> = row.try_get(0)?;
            Ok(Some(Value::from(value)))
        }
        None => Ok(None),
    }
}

/// Rolls back after a failed run; a lost connection is the error then.
fn rollback(conn: &Conn) -> Result<(), StoreError> {
    match conn.simple("ROLLBACK") {
        Ok(()) => {
            conn.in_transaction.set(false);
            Ok(())
        }
        Err(error) if conn.client.is_closed() => Err(error.into()),
        // The transaction may already be over (a failed COMMIT ends it).
        Err(_) => Ok(()),
    }
}

/// The outcome of a driver error inside a run: retry, or fail (after a
/// rollback when the connection is still there).
fn failed(conn: &Conn, error: tokio_postgres::Error) -> Outcome {
    if conn.client.is_closed() || error.is_closed() {
        return Outcome::Fail(error.into());
    }
    if let Err(lost) = rollback(conn) {
        return Outcome::Fail(lost);
    }
    if retryable(&error) {
        Outcome::Retry
    } else {
        Outcome::Fail(error.into())
    }
}

const FENCE: &str = "SELECT epoch FROM retorno_lease WHERE gateway = $1 FOR SHARE";

fn attempt_once<T>(
    conn: &Conn,
    tables: &[&'static str],
    lease: &Lease,
    f: &impl Fn(&[TxTree<'_>]) -> Result<T, TxError>,
) -> Result<T, Outcome> {
    let fence = conn
        .statement(FENCE)
        .map_err(|error| Outcome::Fail(error.into()))?;
    conn.in_transaction.set(true);
    // BEGIN and the fencing check in one round trip.
    let (begun, checked) = wait(futures::future::join(
        conn.client
            .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE"),
        conn.client.query(&fence, &[&lease.gateway]),
    ));
    let rows = match (begun, checked) {
        (Ok(()), Ok(rows)) => rows,
        (Err(error), _) | (Ok(()), Err(error)) => return Err(failed(conn, error)),
    };
    let current: Option<i64> = match rows.first().map(|row| row.try_get(0)).transpose() {
        Ok(current) => current,
        Err(error) => return Err(failed(conn, error)),
    };
    if current != Some(lease.epoch) {
        if let Err(lost) = rollback(conn) {
            return Err(Outcome::Fail(lost));
        }
        return Err(Outcome::Fail(StoreError::Fenced {
            held: Some(lease.epoch),
            current,
        }));
    }

    let tx = Tx {
        conn,
        tables,
        pending: RefCell::new((0..tables.len()).map(|_| Pending::default()).collect()),
        failure: RefCell::new(None),
    };
    let views: Vec<TxTree<'_>> = (0..tables.len())
        .map(|index| TxTree::Postgres(TxView { tx: &tx, index }))
        .collect();
    let result = f(&views);
    drop(views);
    if let Some(error) = tx.failure.borrow_mut().take() {
        // A read failed inside the closure (whatever the closure made of it).
        return Err(failed(conn, error));
    }
    let value = match result {
        Ok(value) => value,
        Err(TxError::Conflict) => {
            return Err(match rollback(conn) {
                Ok(()) => Outcome::Retry,
                Err(lost) => Outcome::Fail(lost),
            });
        }
        Err(TxError::Abort(error)) => {
            return Err(match rollback(conn) {
                Ok(()) => Outcome::Fail(error),
                Err(lost) => Outcome::Fail(lost),
            });
        }
    };

    // The buffered writes, one statement per table and kind, pipelined
    // with the COMMIT: one round trip.
    let pending = tx.pending.into_inner();
    let mut writes: Vec<Write> = Vec::new();
    let mut clears: Vec<String> = Vec::new();
    for (table, pending) in tables.iter().zip(pending) {
        if pending.cleared {
            clears.push(format!("DELETE FROM \"{table}\""));
        }
        let mut keys = Vec::new();
        let mut values = Vec::new();
        let mut removed = Vec::new();
        for (key, value) in pending.writes {
            match value {
                Some(value) => {
                    keys.push(key);
                    values.push(value);
                }
                None => removed.push(key),
            }
        }
        if !keys.is_empty() {
            writes.push((
                format!(
                    "INSERT INTO \"{table}\" (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                ),
                keys,
                values,
            ));
        }
        if !removed.is_empty() && !pending.cleared {
            writes.push((
                format!("DELETE FROM \"{table}\" WHERE k = ANY($1::bytea[])"),
                removed,
                Vec::new(),
            ));
        }
    }
    let mut statements = Vec::with_capacity(writes.len());
    for (sql, _, _) in &writes {
        statements.push(conn.statement(sql).map_err(|error| failed(conn, error))?);
    }
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = writes
        .iter()
        .map(|(_, first, second)| -> Vec<&(dyn ToSql + Sync)> {
            if second.is_empty() {
                vec![first]
            } else {
                vec![first, second]
            }
        })
        .collect();
    let mut steps: Vec<LocalBoxFuture<'_, Result<(), tokio_postgres::Error>>> = Vec::new();
    for sql in &clears {
        steps.push(conn.client.batch_execute(sql).boxed_local());
    }
    for (statement, params) in statements.iter().zip(&params) {
        steps.push(
            conn.client
                .execute(statement, params)
                .map(|result| result.map(|_| ()))
                .boxed_local(),
        );
    }
    steps.push(conn.client.batch_execute("COMMIT").boxed_local());
    for result in wait(futures::future::join_all(steps)) {
        if let Err(error) = result {
            return Err(failed(conn, error));
        }
    }
    conn.in_transaction.set(false);
    Ok(value)
}

/// One buffered write statement: its SQL, then its keys (and values).
type Write = (String, Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Writes of one tree in a transaction, not yet sent, and what it read.
#[derive(Default)]
struct Pending {
    /// The whole tree was cleared first.
    cleared: bool,
    /// Inserts (`Some`) and removals (`None`), the last per key.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Values read in this transaction (`None`: no entry), which a
    /// `SERIALIZABLE` transaction sees unchanged until it ends: a second
    /// read of a key, or one fetched ahead ([`TxView::prefetch`]), needs no
    /// round trip.
    read: HashMap<Vec<u8>, Option<Value>>,
}

/// A transaction in progress on one connection.
pub struct Tx<'a> {
    conn: &'a Conn,
    tables: &'a [&'static str],
    pending: RefCell<Vec<Pending>>,
    /// The first driver error of a read, which decides the run's outcome.
    failure: RefCell<Option<tokio_postgres::Error>>,
}

/// One tree of a PostgreSQL transaction ([`TxTree::Postgres`]).
pub struct TxView<'a> {
    tx: &'a Tx<'a>,
    index: usize,
}

impl TxView<'_> {
    /// The value under `key`, this transaction's own writes first.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>, TxError> {
        {
            let pending = self.tx.pending.borrow();
            let tree = &pending[self.index];
            if let Some(value) = tree.writes.get(key) {
                return Ok(value.clone().map(Value::from));
            }
            if tree.cleared {
                return Ok(None);
            }
            if let Some(value) = tree.read.get(key) {
                return Ok(value.clone());
            }
        }
        let value = get(self.tx.conn, self.tx.tables[self.index], key)
            .map_err(|error| self.failed(error))?;
        self.tx.pending.borrow_mut()[self.index]
            .read
            .insert(key.to_vec(), value.clone());
        Ok(value)
    }

    /// Reads `keys` (those not read or written yet) in one round trip, so
    /// that the [`TxView::get`]s that follow need none.
    pub fn prefetch(&self, keys: &[Vec<u8>]) -> Result<(), TxError> {
        let wanted: Vec<&[u8]> = {
            let pending = self.tx.pending.borrow();
            let tree = &pending[self.index];
            if tree.cleared {
                return Ok(());
            }
            let mut wanted: Vec<&[u8]> = keys
                .iter()
                .map(Vec::as_slice)
                .filter(|key| !tree.writes.contains_key(*key) && !tree.read.contains_key(*key))
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            wanted
        };
        if wanted.is_empty() {
            return Ok(());
        }
        let table = self.tx.tables[self.index];
        let rows = self
            .tx
            .conn
            .query(
                &format!("SELECT k, v FROM \"{table}\" WHERE k = ANY($1)"),
                &[&wanted],
            )
            .map_err(|error| self.failed(error))?;
        let mut pending = self.tx.pending.borrow_mut();
        let read = &mut pending[self.index].read;
        for key in wanted {
            read.insert(key.to_vec(), None);
        }
        for row in rows {
            let key: Vec<u8> = row.try_get(0).map_err(|error| self.failed(error))?;
            let value: Vec<u8> = row.try_get(1).map_err(|error| self.failed(error))?;
            read.insert(key, Some(Value::from(value)));
        }
        Ok(())
    }

    /// The outcome of a driver error in this transaction: retry, or fail;
    /// the first such error decides the run's outcome.
    fn failed(&self, error: tokio_postgres::Error) -> TxError {
        let outcome = if retryable(&error) {
            TxError::Conflict
        } else {
            TxError::Abort(StoreError::Postgres(PgError::from_driver(&error)))
        };
        let mut failure = self.tx.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(error);
        }
        outcome
    }

    /// Keeps `value` under `key` when the transaction commits.
    pub fn insert(&self, key: &[u8], value: Vec<u8>) {
        self.tx.pending.borrow_mut()[self.index]
            .writes
            .insert(key.to_vec(), Some(value));
    }

    /// Removes `key` when the transaction commits; returns what it held.
    pub fn remove(&self, key: &[u8]) -> Result<Option<Value>, TxError> {
        let old = self.get(key)?;
        self.tx.pending.borrow_mut()[self.index]
            .writes
            .insert(key.to_vec(), None);
        Ok(old)
    }

    /// Removes every entry of the tree when the transaction commits.
    fn clear(&self) {
        let mut pending = self.tx.pending.borrow_mut();
        pending[self.index].cleared = true;
        pending[self.index].writes.clear();
        pending[self.index].read.clear();
    }
}

/// A lazy, paged iterator over a table's entries between two bounds, in
/// both directions (keyset pagination by key).
pub struct Pages {
    pg: Pg,
    table: &'static str,
    /// The bounds of what is not fetched yet.
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    /// Fetched from the front, ascending.
    front: VecDeque<(Value, Value)>,
    /// Fetched from the back, ascending.
    back: VecDeque<(Value, Value)>,
    /// Everything between the bounds has been fetched.
    fetched: bool,
    front_page: i64,
    back_page: i64,
}

impl Pages {
    /// Entries of `table` between `lo` and `hi`.
    pub(crate) fn new(
        pg: Pg,
        table: &'static str,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
    ) -> Pages {
        Pages {
            pg,
            table,
            lo,
            hi,
            front: VecDeque::new(),
            back: VecDeque::new(),
            fetched: false,
            front_page: PAGE_FIRST,
            back_page: PAGE_FIRST,
        }
    }

    fn fetch(&mut self, descending: bool) -> Result<(), StoreError> {
        let limit = if descending {
            self.back_page
        } else {
            self.front_page
        };
        let rows = self
            .pg
            .page(self.table, &self.lo, &self.hi, descending, limit)?;
        if (rows.len() as i64) < limit {
            self.fetched = true;
        }
        if descending {
            self.back_page = (limit * 2).min(PAGE_MAX);
            if let Some((key, _)) = rows.last() {
                self.hi = Bound::Excluded(key.to_vec());
            }
            for row in rows {
                self.back.push_front(row);
            }
        } else {
            self.front_page = (limit * 2).min(PAGE_MAX);
            if let Some((key, _)) = rows.last() {
                self.lo = Bound::Excluded(key.to_vec());
            }
            self.front.extend(rows);
        }
        Ok(())
    }

    fn fail(&mut self, error: StoreError) -> Option<Result<(Value, Value), StoreError>> {
        self.fetched = true;
        self.front.clear();
        self.back.clear();
        Some(Err(error))
    }
}

impl Iterator for Pages {
    type Item = Result<(Value, Value), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.front.is_empty()
            && !self.fetched
            && let Err(error) = self.fetch(false)
        {
            return self.fail(error);
        }
        self.front
            .pop_front()
            .or_else(|| self.back.pop_front())
            .map(Ok)
    }
}

impl DoubleEndedIterator for Pages {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.back.is_empty()
            && !self.fetched
            && let Err(error) = self.fetch(true)
        {
            return self.fail(error);
        }
        self.back
            .pop_back()
            .or_else(|| self.front.pop_back())
            .map(Ok)
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub(crate) fn successor(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_before_its_successor() {
        assert_eq!(successor(b"ab"), Bound::Excluded(b"ac".to_vec()));
        assert_eq!(successor(&[1, 0xff, 0xff]), Bound::Excluded(vec![2]));
        assert_eq!(successor(&[0xff]), Bound::Unbounded);
        assert_eq!(successor(b""), Bound::Unbounded);
    }
}
