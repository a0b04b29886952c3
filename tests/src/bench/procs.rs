//! Child processes of the benchmark (gateways, the baseline server) and what
//! `/proc` says about them: CPU time, peak and current memory, disk writes.

use std::{
    collections::BTreeMap,
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
};

use anyhow::{Context as _, Result, anyhow};

/// A child process; SIGKILLed when dropped, so that no gateway outlives the bench.
pub(crate) struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    /// Runs `program args..` with stdout discarded and stderr appended to `log`.
    pub(crate) fn spawn(
        name: &str,
        program: &Path,
        args: &[&std::ffi::OsStr],
        log: &Path,
        rust_log: Option<&str>,
    ) -> Result<Proc> {
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open the log {}", log.display()))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot run {}", program.display()))?;
        Ok(Proc {
            child,
            name: name.to_owned(),
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What `/proc` says about it now.
    pub(crate) fn stats(&self) -> Result<Stats> {
        Stats::of(self.pid()).with_context(|| format!("reading /proc for {}", self.name))
    }

    /// Fails if the process has exited (a gateway that could not start, for example).
    pub(crate) fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(anyhow!("{} exited: {status}", self.name)),
        }
    }

    /// SIGKILL: no shutdown, no final flush.
    pub(crate) fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway program built next to this one (`cargo build --release -p retorno-tests`).
pub(crate) fn sibling(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    if !path.exists() {
        return Err(anyhow!(
            "{} not found: build both programs with `cargo build --release -p retorno-tests`",
            path.display()
        ));
    }
    Ok(path)
}

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat`.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// A reading of one process.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    /// utime + stime, seconds.
    pub(crate) cpu_secs: f64,
    /// VmHWM: peak resident memory, bytes.
    pub(crate) hwm: u64,
    /// VmRSS: resident memory now, bytes.
    pub(crate) rss: u64,
    /// `write_bytes` of `/proc/PID/io`: bytes this process sent to storage.
    pub(crate) disk_writes: u64,
}

impl Stats {
    /// Reads `/proc/PID`.
    pub(crate) fn of(pid: u32) -> Result<Stats> {
        read(&PathBuf::from(format!("/proc/{pid}")))
    }

    /// Reads `/proc/self`: the bench itself (its agencies' clients).
    pub(crate) fn own() -> Result<Stats> {
        read(Path::new("/proc/self"))
    }
}

/// utime + stime of a `stat` file, in seconds.
fn cpu_of_stat(stat: &str) -> Result<f64> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let (_, rest) = stat
        .rsplit_once(')')
        .ok_or_else(|| anyhow!("unexpected stat line"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state(3) ... utime(14) stime(15), so indexes 11 and 12.
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow!("stat line too short"))?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

fn read(dir: &Path) -> Result<Stats> {
    let cpu_secs = cpu_of_stat(&std::fs::read_to_string(dir.join("stat"))?)?;
    let status = std::fs::read_to_string(dir.join("status"))?;
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    // /proc/PID/io may be unreadable under some security settings: then 0.
    let disk_writes = std::fs::read_to_string(dir.join("io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|line| line.strip_prefix("write_bytes:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    Ok(Stats {
        cpu_secs,
        hwm: kb("VmHWM:"),
        rss: kb("VmRSS:"),
        disk_writes,
    })
}

/// CPU seconds the whole machine has spent busy since boot (every process,
/// the kernel included), from the first line of `/proc/stat`.
pub(crate) fn machine_busy_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    // cpu user nice system idle iowait irq softirq steal ...
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let busy: f64 = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| ticks.get(*i))
        .sum();
    busy / clock_ticks()
}

/// CPU seconds per thread name (tokio workers, sled's threads, ...).
pub(crate) fn threads(pid: u32) -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let name = std::fs::read_to_string(task.path().join("comm"))
            .map(|n| n.trim().to_owned())
            .unwrap_or_default();
        let cpu = std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| cpu_of_stat(&stat).ok())
            .unwrap_or(0.0);
        *by_name.entry(name).or_insert(0.0) += cpu;
    }
    by_name
}

/// Bytes of every file under `dir`.
pub(crate) fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
