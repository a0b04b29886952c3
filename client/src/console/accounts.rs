//! The console's staff accounts: one file per console (TOML), each account
//! with a login, the name that travels with every message the official sends
//! (`SubmitRequest.official`), an argon2id hash (the `argon2` crate's
//! defaults), a disabled flag and the failed-login count that locks it.
//!
//! The file holds password hashes, so it is written only by replacing it
//! whole (a temporary file in the same folder, synced, then renamed: a crash
//! leaves the old file or the new one, never half of one) and only readable
//! by its owner (0600). A file that others can read is refused, naming the fix.
//!
//! The same functions serve `retorno console user add|disable|list` and the
//! console's login, so both read and write the file the same way.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
};
use serde::{Deserialize, Serialize};

use crate::i18n::{FluentValue, Lang};

/// Failed logins in a row that lock an account.
pub const MAX_FAILED_LOGINS: u32 = 5;

/// How long a locked account stays locked.
pub const LOCK_SECONDS: i64 = 15 * 60;

/// Passwords shorter than this are refused when an account is added.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// One member of staff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// What the official types to log in, e.g. `aperez`.
    pub login: String,
    /// The name shown in both countries' timelines, e.g. `Ana Pérez`.
    pub display_name: String,
    /// The argon2id hash in PHC form (`$argon2id$v=19$...`), salt included.
    pub hash: String,
    /// A disabled account cannot log in; it is kept so its name stays known.
    #[serde(default)]
    pub disabled: bool,
    /// Failed logins since the last successful one.
    #[serde(default)]
    pub failed_logins: u32,
    /// Unix seconds until which the account is locked, after too many failed logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

impl Account {
    /// Whether the account is locked at `now` (Unix seconds).
    pub fn locked_at(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }
}

/// The file's shape.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(default)]
    staff: Vec<Account>,
}

/// What went wrong with the accounts file or a command on it.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The file cannot be read, parsed or written.
    #[error("accounts file {file}: {problem}")]
    File {
        /// The file.
        file: PathBuf,
        /// What is wrong, and the fix.
        problem: String,
    },
    /// A value given for an account cannot be used.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field: `login`, `display_name` or `password`.
        field: &'static str,
        /// What is wrong, and what to give instead.
        problem: Problem,
    },
    /// No account has this login.
    #[error("no account has the login {0:?}: see `retorno console user list`")]
    NoSuchLogin(String),
}

/// What is wrong with a value given for an account (English here; in the
/// reader's language with [`AccountError::render`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The display name is blank.
    #[error("is empty: give the name the other country will read, e.g. \"Ana Pérez\"")]
    EmptyName,
    /// The password is shorter than this many characters.
    #[error("must have at least {0} characters")]
    ShortPassword(usize),
    /// The login is taken.
    #[error("{0:?} already exists: choose another, or disable the old one")]
    LoginTaken(String),
    /// The login has characters or a length a login may not have.
    #[error("{0:?}: use 1 to 64 letters, digits, '.', '-', '_' or '@', e.g. aperez")]
    BadLogin(String),
    /// The system's random source failed.
    #[error("the system's random source failed; try again")]
    NoRandom,
    /// No salt could be made for the hash (the encoder's reason).
    #[error("cannot make a salt: {0}")]
    Salt(String),
    /// The password could not be hashed (argon2's reason).
    #[error("cannot be hashed: {0}")]
    Hash(String),
}

impl AccountError {
    /// The error in `lang` (`account-*` in `locales/*/cli.ftl`). A file's
    /// problem keeps the system's words (it names the file and the fix).
    pub fn render(&self, lang: Lang) -> String {
        let text = |id: &str, args: &[(&str, String)]| {
            let args: Vec<(&str, FluentValue<'_>)> = args
                .iter()
                .map(|(name, value)| (*name, FluentValue::from(value.clone())))
                .collect();
            lang.text(id, &args)
        };
        match self {
            AccountError::File { file, problem } => text(
                "account-file",
                &[
                    ("file", file.display().to_string()),
                    ("problem", problem.clone()),
                ],
            ),
            AccountError::NoSuchLogin(login) => {
                text("account-no-such-login", &[("login", shown(login))])
            }
            AccountError::Invalid { field, problem } => {
                let why = match problem {
                    Problem::EmptyName => text("account-empty-name", &[]),
                    Problem::ShortPassword(min) => {
                        text("account-short-password", &[("min", min.to_string())])
                    }
                    Problem::LoginTaken(login) => {
                        text("account-login-taken", &[("login", shown(login))])
                    }
                    Problem::BadLogin(login) => {
                        text("account-bad-login", &[("login", shown(login))])
                    }
                    Problem::NoRandom => text("account-no-random", &[]),
                    Problem::Salt(why) => text("account-salt", &[("why", why.clone())]),
                    Problem::Hash(why) => text("account-hash", &[("why", why.clone())]),
                };
                format!("{field}: {why}")
            }
        }
    }
}

/// A login as typed, with what a terminal would act on escaped (a line
/// break, an escape sequence), as the English `{:?}` shows it.
fn shown(login: &str) -> String {
    login.escape_debug().to_string()
}

/// Why a login was refused. Deliberately coarse: an unknown login, a wrong
/// password and a disabled account read the same, so that the page does not
/// tell whether a login exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// The login or the password is wrong (or the account is disabled).
    Wrong,
    /// No account has this login. Shown exactly like [`LoginRefused::Wrong`];
    /// the console counts these failures too, so that an unknown login
    /// locks like a real one and the lock does not tell either.
    UnknownLogin,
    /// Too many failed logins in a row: locked until this Unix second.
    Locked {
        /// When the lock ends.
        until: i64,
    },
}

fn file_error(file: &Path, problem: impl Into<String>) -> AccountError {
    AccountError::File {
        file: file.to_owned(),
        problem: problem.into(),
    }
}

/// Every account in `file`; an absent file has none.
pub fn list(file: &Path) -> Result<Vec<Account>, AccountError> {
    Ok(read(file)?.staff)
}

/// Adds an account with an argon2id hash of `password`.
pub fn add(
    file: &Path,
    login: &str,
    display_name: &str,
    password: &str,
) -> Result<(), AccountError> {
    check_login(login)?;
    if display_name.trim().is_empty() {
        return Err(AccountError::Invalid {
            field: "display_name",
            problem: Problem::EmptyName,
        });
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::Invalid {
            field: "password",
            problem: Problem::ShortPassword(MIN_PASSWORD_CHARS),
        });
    }
    let mut accounts = read(file)?;
    if accounts.staff.iter().any(|a| a.login == login) {
        return Err(AccountError::Invalid {
            field: "login",
            problem: Problem::LoginTaken(login.to_owned()),
        });
    }
    accounts.staff.push(Account {
        login: login.to_owned(),
        display_name: display_name.trim().to_owned(),
        hash: hash_password(password)?,
        disabled: false,
        failed_logins: 0,
        locked_until: None,
    });
    write(file, &accounts)
}

/// Disables an account: it can no longer log in (its sessions end at their next request).
pub fn disable(file: &Path, login: &str) -> Result<(), AccountError> {
    let mut accounts = read(file)?;
    let account = accounts
        .staff
        .iter_mut()
        .find(|a| a.login == login)
        .ok_or_else(|| AccountError::NoSuchLogin(login.to_owned()))?;
    account.disabled = true;
    write(file, &accounts)
}

/// Checks a login at `now` (Unix seconds), recording a failure or clearing
/// the count. Returns the account on success.
pub fn log_in(
    file: &Path,
    login: &str,
    password: &str,
    now: i64,
) -> Result<Result<Account, LoginRefused>, AccountError> {
    let mut accounts = read(file)?;
    let Some(account) = accounts.staff.iter_mut().find(|a| a.login == login) else {
        // The same work as for a real account, so that timing does not tell.
        let _ = verify(DUMMY_HASH, password);
        return Ok(Err(LoginRefused::UnknownLogin));
    };
    if let Some(until) = account.locked_until.filter(|until| now < *until) {
        return Ok(Err(LoginRefused::Locked { until }));
    }
    let good = verify(&account.hash, password) && !account.disabled;
    let outcome = if good {
        account.failed_logins = 0;
        account.locked_until = None;
        Ok(account.clone())
    } else {
        account.failed_logins += 1;
        if account.failed_logins >= MAX_FAILED_LOGINS {
            account.failed_logins = 0;
            account.locked_until = Some(now + LOCK_SECONDS);
            Err(LoginRefused::Locked {
                until: now + LOCK_SECONDS,
            })
        } else {
            Err(LoginRefused::Wrong)
        }
    };
    write(file, &accounts)?;
    Ok(outcome)
}

/// Whether `login` names an account that may still act (not disabled), for
/// a session's every request.
pub fn active(file: &Path, login: &str) -> Result<bool, AccountError> {
    Ok(read(file)?
        .staff
        .iter()
        .any(|a| a.login == login && !a.disabled))
}

/// An argon2id hash of a password no one has, verified against when a login
/// does not exist (argon2's defaults, like real hashes).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$cmV0b3Juby1kdW1teQ$M2ZrkgLfrnf0GJpuSC5jlHhbQ0I58y5AFvV/HgbDt6c";

fn check_login(login: &str) -> Result<(), AccountError> {
    let fine = !login.is_empty()
        && login.len() <= 64
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if fine {
        Ok(())
    } else {
        Err(AccountError::Invalid {
            field: "login",
            problem: Problem::BadLogin(login.to_owned()),
        })
    }
}

fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt).map_err(|_| {
        AccountError::Invalid {
            field: "password",
            problem: Problem::NoRandom,
        }
    })?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Invalid {
        field: "password",
        problem: Problem::Salt(e.to_string()),
    })?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Invalid {
            field: "password",
            problem: Problem::Hash(e.to_string()),
        })
}

fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn read(file: &Path) -> Result<AccountsFile, AccountError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AccountsFile::default()),
        Err(e) => return Err(file_error(file, format!("cannot read it: {e}"))),
    };
    check_private(file)?;
    toml::from_str(&text).map_err(|e| file_error(file, e.to_string()))
}

/// Refuses a file that its group or others may read: it holds password hashes.
#[cfg(unix)]
fn check_private(file: &Path) -> Result<(), AccountError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file)
        .map_err(|e| file_error(file, format!("cannot read it: {e}")))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(file_error(
            file,
            format!(
                "is readable by others (mode {:o}) and holds password hashes: run `chmod 600 {}`",
                mode & 0o777,
                file.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_file: &Path) -> Result<(), AccountError> {
    Ok(())
}

/// Replaces the file whole: a temporary file beside it (0600), synced, renamed over it.
fn write(file: &Path, accounts: &AccountsFile) -> Result<(), AccountError> {
    let text = toml::to_string_pretty(accounts).map_err(|e| file_error(file, e.to_string()))?;
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "accounts".into());
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = write_private(&temporary, text.as_bytes())
        .and_then(|()| std::fs::rename(&temporary, file))
        .and_then(|()| std::fs::File::open(&dir).and_then(|d| d.sync_all()));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        file_error(file, format!("cannot write it: {e}; nothing was changed"))
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(path)?;
    out.write_all(bytes)?;
    out.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.toml");
        (dir, path)
    }

    #[test]
    fn a_password_is_stored_as_an_argon2id_hash_and_checked() {
        let (_dir, path) = file();
        add(&path, "aperez", "Ana Pérez", "correct horse battery").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "{text}");
        assert!(!text.contains("correct horse"));
        let account = log_in(&path, "aperez", "correct horse battery", 0)
            .unwrap()
            .unwrap();
        assert_eq!(account.display_name, "Ana Pérez");
        assert_eq!(
            log_in(&path, "aperez", "wrong password!", 0).unwrap(),
            Err(LoginRefused::Wrong)
        );
        assert_eq!(
            log_in(&path, "nobody", "correct horse battery", 0).unwrap(),
            Err(LoginRefused::UnknownLogin)
        );
    }

    #[test]
    fn five_failed_logins_in_a_row_lock_the_account_for_fifteen_minutes() {
        let (_dir, path) = file();
        add(&path, "aperez", "Ana Pérez", "correct horse battery").unwrap();
        for _ in 0..4 {
            assert_eq!(
                log_in(&path, "aperez", "nope nope nope", 100).unwrap(),
                Err(LoginRefused::Wrong)
            );
        }
        let locked = Err(LoginRefused::Locked {
            until: 100 + LOCK_SECONDS,
        });
        assert_eq!(
            log_in(&path, "aperez", "nope nope nope", 100).unwrap(),
            locked
        );
        assert_eq!(
            log_in(&path, "aperez", "correct horse battery", 200).unwrap(),
            locked,
            "the right password does not open a locked account"
        );
        let later = 100 + LOCK_SECONDS;
        assert!(
            log_in(&path, "aperez", "correct horse battery", later)
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn a_success_resets_the_count_of_failures() {
        let (_dir, path) = file();
        add(&path, "aperez", "Ana Pérez", "correct horse battery").unwrap();
        for _ in 0..4 {
            let _ = log_in(&path, "aperez", "nope nope nope", 0).unwrap();
        }
        assert!(
            log_in(&path, "aperez", "correct horse battery", 0)
                .unwrap()
                .is_ok()
        );
        assert_eq!(
            log_in(&path, "aperez", "nope nope nope", 0).unwrap(),
            Err(LoginRefused::Wrong)
        );
    }

    #[test]
    fn a_disabled_account_cannot_log_in_and_reads_like_a_wrong_password() {
        let (_dir, path) = file();
        add(&path, "aperez", "Ana Pérez", "correct horse battery").unwrap();
        assert!(active(&path, "aperez").unwrap());
        disable(&path, "aperez").unwrap();
        assert!(!active(&path, "aperez").unwrap());
        assert_eq!(
            log_in(&path, "aperez", "correct horse battery", 0).unwrap(),
            Err(LoginRefused::Wrong)
        );
        assert!(list(&path).unwrap()[0].disabled);
        assert!(matches!(
            disable(&path, "nobody"),
            Err(AccountError::NoSuchLogin(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_and_a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, path) = file();
        add(&path, "aperez", "Ana Pérez", "correct horse battery").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = list(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no temporary file is left: {leftovers:?}"
        );
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_a_failed_one_changes_nothing() {
        let (dir, path) = file();
        add(&path, "aperez", "Ana Pérez", "correct horse battery").unwrap();
        let before = std::fs::read(&path).unwrap();
        // The temporary file's name is taken by a folder: the write fails.
        let blocker = dir
            .path()
            .join(format!(".staff.toml.{}.tmp", std::process::id()));
        std::fs::create_dir(&blocker).unwrap();
        assert!(add(&path, "rcux", "Rosa Cux", "another long password").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was changed");
        std::fs::remove_dir(&blocker).unwrap();
        add(&path, "rcux", "Rosa Cux", "another long password").unwrap();
        assert_eq!(list(&path).unwrap().len(), 2);
    }

    #[test]
    fn bad_values_name_their_field() {
        let (_dir, path) = file();
        let short = add(&path, "aperez", "Ana", "short").unwrap_err();
        assert!(matches!(
            short,
            AccountError::Invalid {
                field: "password",
                ..
            }
        ));
        let login = add(&path, "a perez", "Ana", "long enough password").unwrap_err();
        assert!(matches!(
            login,
            AccountError::Invalid { field: "login", .. }
        ));
        add(&path, "aperez", "Ana", "long enough password").unwrap();
        let twice = add(&path, "aperez", "Ana", "long enough password").unwrap_err();
        assert!(matches!(
            twice,
            AccountError::Invalid { field: "login", .. }
        ));
    }

    #[test]
    fn a_refused_account_reads_in_the_readers_language_and_english_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        add(&path, "aperez", "Ana Pérez", "long enough password").unwrap();
        let taken = add(&path, "aperez", "Otra", "long enough password").unwrap_err();
        assert_eq!(
            taken.to_string(),
            "login: \"aperez\" already exists: choose another, or disable the old one"
        );
        assert_eq!(
            taken.render(Lang::Es),
            "login: «aperez» ya existe: elija otro, o desactive la cuenta anterior"
        );
        assert_eq!(taken.render(Lang::En), taken.to_string());
        let short = add(&path, "mxol", "Marta Xol", "corta").unwrap_err();
        assert_eq!(
            short.render(Lang::Es),
            "password: debe tener al menos 10 caracteres"
        );
        let nobody = disable(&path, "nadie").unwrap_err();
        assert_eq!(
            nobody.render(Lang::Es),
            "ninguna cuenta tiene el usuario «nadie»: vea `retorno console user list`"
        );
        assert_eq!(nobody.render(Lang::En), nobody.to_string());
    }

    #[test]
    fn a_login_with_control_characters_is_shown_escaped_in_every_language() {
        let (_dir, path) = file();
        let bad = add(&path, "a\u{1b}[31mb", "Ana", "long enough password").unwrap_err();
        assert_eq!(bad.render(Lang::En), bad.to_string());
        for lang in Lang::ALL {
            assert!(!bad.render(lang).contains('\u{1b}'), "{}", bad.render(lang));
        }
    }
}
