//! Throwaway PostgreSQL clusters for the tests, from the machine's
//! PostgreSQL binaries.
//!
//! [`Cluster::start`] runs `initdb` in a temporary folder (as the
//! `postgres` user when the tests run as root, since PostgreSQL refuses to
//! run as root), on a free port of 127.0.0.1 with its socket in that folder,
//! `fsync = on` and `synchronous_commit = on`, and stops it (`-m
//! immediate`) when dropped. [`shared`] is one cluster per test binary;
//! [`Cluster::database`] makes as many databases in it as the tests need.
//!
//! When PostgreSQL is not installed, [`Cluster::start`] says in one line
//! that the PostgreSQL tests were skipped and how to install PostgreSQL, and
//! the tests return early; with `RETORNO_REQUIRE_POSTGRES=1` (CI) it panics
//! instead. `RETORNO_PG_BINDIR` names the binaries' folder (default: `pg_config
//! --bindir`, then `/usr/lib/postgresql/*/bin`, then `PATH`).

use std::{
    io::Write as _,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

/// The one-line notice of a skipped PostgreSQL test run.
pub const SKIPPED: &str = "PostgreSQL tests skipped: no PostgreSQL binaries found (install them with `apt-get install postgresql`, or set RETORNO_PG_BINDIR; RETORNO_REQUIRE_POSTGRES=1 makes this a failure)";

/// The shared cluster of this test binary, started on first use; `None`
/// (after the one-line notice) when PostgreSQL is not installed.
pub fn shared() -> Option<&'static Cluster> {
    static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
    SHARED.get_or_init(Cluster::start).as_ref()
}

/// A running throwaway PostgreSQL server (a primary, and maybe a
/// synchronous standby), removed when dropped.
pub struct Cluster {
    bindir: PathBuf,
    /// The temporary folder: data folders, sockets, logs.
    dir: tempfile::TempDir,
    /// Whether the servers run as the `postgres` user (the tests run as root).
    as_postgres: bool,
    primary: Server,
    standby: Option<Server>,
}

/// One server of a cluster.
struct Server {
    data: PathBuf,
    port: u16,
}

/// The folder of the PostgreSQL binaries, or why there is none.
fn bindir() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("RETORNO_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return has_initdb(&dir).then_some(dir);
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_initdb(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_initdb(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| has_initdb(dir)))
}

fn required() -> bool {
    std::env::var("RETORNO_REQUIRE_POSTGRES").is_ok_and(|value| value == "1")
}

fn free_port() -> u16 {
    retorno_gateway::dev::free_ports(1).expect("a free port on 127.0.0.1")
}

/// The PEM files of a TLS-only cluster ([`Cluster::start_with_tls`]): the
/// throwaway CA that signed the server's certificate and the clients'.
pub struct TlsFiles {
    /// The CA: what `[storage] tls_ca` names.
    pub ca: PathBuf,
    /// A client certificate for the user `postgres` (`[storage] tls_cert`).
    pub client_cert: PathBuf,
    /// Its private key (`[storage] tls_key`).
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// A throwaway CA's files in `dir` (`ca.pem`, `client.crt`,
    /// `client.key`): another CA than any cluster's, for a test of one
    /// that the server or the client does not trust.
    pub fn of_another_ca(dir: &Path) -> TlsFiles {
        // Another name too: a verifier then finds no issuer at all.
        TlsFiles::write(dir, "retorno tests: another CA").0
    }

    /// A throwaway CA's files in `dir`, and the PEM of the CA and of the
    /// server certificate and key it issued (for the server's data folder).
    fn write(dir: &Path, name: &str) -> (TlsFiles, [String; 3]) {
        let [ca, cert, key, client_cert, client_key] = tls_certificates(name);
        let tls = TlsFiles {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        for (file, text) in [
            (&tls.ca, &ca),
            (&tls.client_cert, &client_cert),
            (&tls.client_key, &client_key),
        ] {
            std::fs::write(file, text).expect("write the TLS files");
        }
        (tls, [ca, cert, key])
    }
}

/// The database of a TLS-only cluster that takes a connection without a
/// client certificate; every other database asks for one (`cert`).
pub const SERVER_TLS_ONLY: &str = "server_tls_only";

/// A throwaway CA named `name`, and, all PEM: the CA, a server certificate
/// and key it issued for `127.0.0.1` and `localhost`, and a client
/// certificate and key it issued to the user `postgres`.
fn tls_certificates(name: &str) -> [String; 5] {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, name);
    let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("a server key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server parameters");
    let cert = params
        .signed_by(&key, &issuer)
        .expect("the server certificate");
    let client_key = KeyPair::generate().expect("a client key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, "postgres");
    let client = params
        .signed_by(&client_key, &issuer)
        .expect("the client certificate");
    [
        ca.pem(),
        cert.pem(),
        key.serialize_pem(),
        client.pem(),
        client_key.serialize_pem(),
    ]
}

/// The uid and gid of the `postgres` user.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres") && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

impl Cluster {
    /// Starts a throwaway primary; `None` (after one line on stderr) when
    /// PostgreSQL is not installed, a panic then with `RETORNO_REQUIRE_POSTGRES=1`.
    pub fn start() -> Option<Cluster> {
        Cluster::start_configured(|_| {})
    }

    /// A primary that takes TLS connections only (`hostssl`; a plain TCP
    /// connection is rejected by `pg_hba.conf`), with a server certificate
    /// for `127.0.0.1` and `localhost` from a throwaway CA. Every database
    /// but [`SERVER_TLS_ONLY`] (and `postgres`, where the harness creates
    /// the others) also asks for a client certificate of that CA naming the
    /// user (`cert`). `None` as [`Cluster::start`].
    pub fn start_with_tls() -> Option<(Cluster, TlsFiles)> {
        let mut files = None;
        let cluster = Cluster::start_configured(|cluster| {
            let dir = cluster.dir.path();
            let data = &cluster.primary.data;
            let (tls, [ca, cert, key]) = TlsFiles::write(dir, "retorno tests: PostgreSQL CA");
            for (name, text) in [("server.crt", cert), ("server.key", key), ("ca.pem", ca)] {
                let file = data.join(name);
                std::fs::write(&file, text).expect("write the server's certificate");
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod the server's key");
                cluster.own(&file);
            }
            std::fs::write(
                data.join("pg_hba.conf"),
                format!(
                    "local all all trust\n\
                     hostnossl all all 127.0.0.1/32 reject\n\
                     hostssl {SERVER_TLS_ONLY},postgres all 127.0.0.1/32 trust\n\
                     hostssl all all 127.0.0.1/32 cert\n\
                     local replication all trust\n"
                ),
            )
            .expect("write pg_hba.conf");
            cluster.append_conf(
                data,
                "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.pem'\n",
            );
            files = Some(tls);
        })?;
        Some((cluster, files.expect("the TLS files")))
    }

    /// Makes `file` the PostgreSQL user's, when the cluster runs as it.
    fn own(&self, file: &Path) {
        if self.as_postgres {
            let (uid, gid) = postgres_user().expect("the `postgres` user");
            std::os::unix::fs::chown(file, Some(uid), Some(gid)).expect("chown");
        }
    }

    /// [`Cluster::start`], with `configure` run on the data folder between
    /// `initdb` and the server's start.
    fn start_configured(configure: impl FnOnce(&Cluster)) -> Option<Cluster> {
        let Some(bindir) = bindir() else {
            if required() {
                panic!("RETORNO_REQUIRE_POSTGRES=1 but {SKIPPED}");
            }
            // Straight to the process's stderr, past the test harness's
            // capture, so that a passing run still says it.
            let _ = writeln!(std::io::stderr(), "{SKIPPED}");
            return None;
        };
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let dir = tempfile::Builder::new()
            .prefix("retorno-pg-")
            .tempdir()
            .expect("a temporary folder for PostgreSQL");
        if root {
            let (uid, gid) = postgres_user().expect(
                "the tests run as root, and PostgreSQL needs the `postgres` user to run as",
            );
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the cluster folder");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod the cluster folder");
        let mut cluster = Cluster {
            bindir,
            as_postgres: root,
            primary: Server {
                data: dir.path().join("primary"),
                port: 0,
            },
            standby: None,
            dir,
        };
        cluster.initdb();
        configure(&cluster);
        cluster.primary.port = cluster.start_server(&cluster.primary.data.clone(), "primary");
        cluster.watchdog();
        Some(cluster)
    }

    /// A primary with a synchronous streaming standby (`pg_basebackup -R`,
    /// `synchronous_standby_names = '*'`): a commit returns once the standby
    /// has it. `None` as [`Cluster::start`].
    pub fn start_with_standby() -> Option<Cluster> {
        let mut cluster = Cluster::start()?;
        let standby = cluster.dir.path().join("standby");
        let port = cluster.primary.port.to_string();
        let socket = cluster.dir.path().to_string_lossy().into_owned();
        cluster.run(
            "pg_basebackup",
            &[
                "-D",
                &standby.to_string_lossy(),
                "-h",
                &socket,
                "-p",
                &port,
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        // Set on the primary only after the copy: a promoted standby that
        // waited for a standby of its own would never commit.
        cluster.append_conf(
            &cluster.primary.data.clone(),
            "synchronous_standby_names = '*'\n",
        );
        cluster.pg_ctl(&cluster.primary.data.clone(), &["reload"]);
        let port = cluster.start_server(&standby, "standby");
        cluster.standby = Some(Server {
            data: standby,
            port,
        });
        // Wait until the primary counts the standby as synchronous.
        let url = cluster.url_on(cluster.primary.port, "postgres");
        for _ in 0..600 {
            let out = cluster.psql(
                &url,
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
            );
            if out.trim() == "1" {
                return Some(cluster);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the standby never became synchronous");
    }

    /// The primary's data folder: every file the server writes (tables, WAL).
    pub fn data_dir(&self) -> &Path {
        &self.primary.data
    }

    /// The primary's URL for the database `name`, created now.
    pub fn database(&self, name: &str) -> String {
        let admin = self.url_on(self.primary.port, "postgres");
        self.psql(&admin, &format!("CREATE DATABASE \"{name}\""));
        self.url_on(self.primary.port, name)
    }

    /// A URL that reaches whichever of the primary and the standby accepts
    /// writes (libpq's multi-host form), for a failover test.
    pub fn failover_url(&self, name: &str) -> String {
        match &self.standby {
            Some(standby) => format!(
                "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{name}?target_session_attrs=read-write",
                self.primary.port, standby.port
            ),
            None => self.url_on(self.primary.port, name),
        }
    }

    /// Names the standbys whose confirmation each commit waits for
    /// (`synchronous_standby_names`, reloaded at once). Naming one that is
    /// not connected makes every commit wait without end, as Patroni's
    /// `synchronous_mode_strict` does with its standby lost; `""` lets them
    /// complete. Neither statement writes WAL, so neither waits itself.
    pub fn require_standby(&self, names: &str) {
        let admin = self.url_on(self.primary.port, "postgres");
        let quoted = names.replace('\'', "''");
        self.psql(
            &admin,
            &format!("ALTER SYSTEM SET synchronous_standby_names = '{quoted}'"),
        );
        self.psql(&admin, "SELECT pg_reload_conf()");
    }

    /// Kills the primary's postmaster with SIGKILL (a machine lost).
    pub fn kill_primary(&self) {
        let pid = std::fs::read_to_string(self.primary.data.join("postmaster.pid"))
            .expect("the primary's postmaster.pid");
        let pid = pid.lines().next().unwrap_or_default().trim().to_owned();
        let status = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -KILL {pid}");
    }

    /// Promotes the standby (`pg_ctl promote`), waiting until it accepts writes.
    pub fn promote_standby(&self) {
        let standby = self.standby.as_ref().expect("a cluster with a standby");
        self.pg_ctl(&standby.data, &["-w", "promote"]);
    }

    fn url_on(&self, port: u16, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{name}")
    }

    fn command(&self, program: &str) -> Command {
        let binary = self.bindir.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            Command::new(binary)
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("{program}: {error}"));
        assert!(
            output.status.success(),
            "{program} {args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `sql` with `psql` on the database at `url`: its output,
    /// unaligned and without headers (a panic if it failed).
    pub fn psql(&self, url: &str, sql: &str) -> String {
        self.run(
            "psql",
            &[
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ],
        )
    }

    fn pg_ctl(&self, data: &Path, args: &[&str]) {
        let mut all = vec!["-D", data.to_str().unwrap_or_default()];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    fn initdb(&self) {
        self.run(
            "initdb",
            &[
                "-D",
                &self.primary.data.to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
    }

    fn append_conf(&self, data: &Path, text: &str) {
        let file = data.join("postgresql.conf");
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .expect("postgresql.conf");
        conf.write_all(text.as_bytes())
            .expect("write postgresql.conf");
    }

    /// Configures the data folder `data` for a free port and starts it;
    /// returns the port.
    fn start_server(&self, data: &Path, name: &str) -> u16 {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            self.append_conf(
                data,
                &format!(
                    "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
                     fsync = on\nsynchronous_commit = on\nmax_connections = 200\n\
                     shared_buffers = 32MB\nmax_wal_senders = 4\nwal_level = replica\n",
                    self.dir.path().display()
                ),
            );
            let output = self
                .command("pg_ctl")
                .args(["-D", &data.to_string_lossy(), "-l", &log.to_string_lossy()])
                .args(["-w", "-t", "60", "start"])
                .stdin(Stdio::null())
                .output()
                .expect("pg_ctl start");
            if output.status.success() {
                return port;
            }
            last = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("PostgreSQL ({name}) did not start:\n{last}");
    }

    /// A process that stops the servers and removes the folder once this
    /// test process is gone: the shared cluster lives in a static, which
    /// is never dropped.
    fn watchdog(&self) {
        let pg_ctl = self.bindir.join("pg_ctl");
        let as_postgres = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let dir = self.dir.path().display();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             for d in {dir}/primary {dir}/standby; do [ -f $d/postmaster.pid ] && {as_postgres}{pg_ctl} -D $d stop -m immediate; done; \
             rm -rf {dir}",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for data in [
            Some(&self.primary.data),
            self.standby.as_ref().map(|s| &s.data),
        ]
        .into_iter()
        .flatten()
        {
            if data.join("postmaster.pid").exists() {
                let _ = self
                    .command("pg_ctl")
                    .args(["-D", &data.to_string_lossy(), "-m", "immediate", "stop"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
