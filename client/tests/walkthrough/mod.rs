//! Runs a document's walkthrough (the README's, the Spanish guide's) as
//! written, with the real `retorno` program against a dev region, comparing
//! each output's shape with the document's (message ids, dates, times,
//! weekdays and hashes masked), so that no document can drift from the
//! programs.
//!
//! The region runs in the test's process (the gateway library is a
//! dev-dependency); the commands run in a folder holding the region's
//! `.retorno-dev` and a link to this crate's `examples`, so that the
//! documents' relative paths resolve.

#![allow(dead_code)]

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use retorno_gateway::{Config, Gateway, dev};

/// How long a command's output may take to reach the README's shape.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// What the README asks the reader to do, in order.
#[derive(Debug)]
enum Action {
    /// Run the `retorno` commands of a block; the README shows what they
    /// print, one after the other (`None` when it shows nothing: each must
    /// then simply succeed).
    Run {
        commands: Vec<String>,
        output: Option<Vec<String>>,
    },
    /// Restart the dev region with its case rules this many days ahead.
    ClockAhead(i64),
}

/// The README's section from `start` to the next `## ` heading.
fn section<'a>(readme: &'a str, start: &str) -> &'a str {
    let from = readme.find(start).expect("the section");
    let rest = &readme[from + start.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The fenced blocks of `text`: (language, body), in order.
fn blocks(text: &str) -> Vec<(&str, &str)> {
    text.split("```")
        .collect::<Vec<_>>()
        .chunks(2)
        .filter_map(|pair| match pair {
            [_, block] => Some(block.split_once('\n').unwrap_or((block, ""))),
            _ => None,
        })
        .collect()
}

/// The lines of an `sh` block, continuation lines joined and spaces folded.
fn shell_lines(block: &str) -> Vec<String> {
    block
        .replace("\\\n", " ")
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

/// Every step of a README section, in order: the `retorno` commands of each
/// `sh` block (with the plain block right after it as what they print, one
/// command's lines after the other's), the `$ retorno ...` lines of a plain
/// block with the lines under each, and each restart of the region with its
/// clock ahead. Variable assignments (`MX=...`) go into `vars`.
fn actions(section: &str, vars: &mut Vec<(String, String)>) -> Vec<Action> {
    let blocks = blocks(section);
    let mut actions = Vec::new();
    let mut index = 0;
    while index < blocks.len() {
        let (lang, body) = blocks[index];
        index += 1;
        if lang == "sh" {
            let mut commands = Vec::new();
            for line in shell_lines(body) {
                if let Some(days) = line.split("--danger-clock-ahead-days ").nth(1) {
                    actions.push(Action::ClockAhead(days.trim().parse().unwrap()));
                } else if line.starts_with("retorno ") {
                    commands.push(line);
                } else if !line.starts_with("DAY=") {
                    for assignment in line.split(';') {
                        if let Some((name, value)) = assignment.trim().split_once('=')
                            && name.chars().all(|c| c.is_ascii_uppercase())
                        {
                            vars.push((format!("${name}"), value.trim_matches('"').to_owned()));
                        }
                    }
                }
            }
            if commands.is_empty() {
                continue;
            }
            let output = match blocks.get(index) {
                Some(("", next)) if !next.starts_with("$ ") => {
                    index += 1;
                    Some(next.lines().map(str::to_owned).collect::<Vec<_>>())
                }
                _ => None,
            };
            actions.push(Action::Run { commands, output });
        } else if lang.is_empty() && body.starts_with("$ retorno ") {
            let mut lines = body.lines().peekable();
            while let Some(line) = lines.next() {
                let command = line.trim_start_matches("$ ").to_owned();
                let mut output = Vec::new();
                while let Some(next) = lines.next_if(|l| !l.starts_with("$ ")) {
                    output.push(next.to_owned());
                }
                actions.push(Action::Run {
                    commands: vec![command],
                    output: Some(output),
                });
            }
        }
    }
    actions
}

/// `text` with what differs from run to run replaced: UUIDs, times, hashes.
fn masked(text: &str) -> String {
    let mut out = String::new();
    for word in text.split(' ') {
        let bare = word.trim_matches(|c: char| "`(),".contains(c));
        let kind = if is_uuid(bare) {
            Some("ID")
        } else if jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%:z", bare.replace('Z', "+00:00"))
            .is_ok()
        {
            Some("INSTANT")
        } else if WEEKDAYS.contains(&bare) {
            Some("WEEKDAY")
        } else if is_date(bare) {
            Some("DATE")
        } else if is_time(bare) {
            Some("TIME")
        } else if bare.len() == 64 && bare.chars().all(|c| c.is_ascii_hexdigit()) {
            Some("SHA256")
        } else {
            None
        };
        if !out.is_empty() {
            out.push(' ');
        }
        match kind {
            Some(kind) => out.push_str(&word.replace(bare, kind)),
            None => out.push_str(word),
        }
    }
    out
}

const WEEKDAYS: [&str; 14] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "lunes",
    "martes",
    "miércoles",
    "jueves",
    "viernes",
    "sábado",
    "domingo",
];

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::try_parse(text).is_ok() && text.len() == 36
}

fn is_date(text: &str) -> bool {
    text.len() == 10 && jiff::civil::Date::strptime("%Y-%m-%d", text).is_ok()
}

fn is_time(text: &str) -> bool {
    text.len() == 8 && jiff::civil::Time::strptime("%H:%M:%S", text).is_ok()
}

/// The words of a command line, with the quotes a shell would remove.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => words.push(std::mem::take(&mut word)),
            c => word.push(c),
        }
    }
    words.push(word);
    words
}

/// Runs one command of a document in `dir` under the locale `lang` (`C`
/// for the README, whatever the machine's locale); its stdout, then its
/// stderr, by line.
pub fn run(dir: &Path, command: &str, lang: &str) -> Vec<String> {
    let args = words(command);
    let args: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    run_in(dir, lang, &args)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `retorno ARGS` in `dir` under the locale `lang`, whatever the
/// machine's; stdout, then stderr.
pub fn run_in(dir: &Path, lang: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_retorno"))
        .args(args)
        .env("LANG", lang)
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// Whether a command only reads (so it may be run again until delivery
/// catches up), or printed a refusal (which stored nothing, so running it
/// again once the message before it has arrived changes nothing else).
fn may_run_again(command: &str, output: &[String]) -> bool {
    let reads = [" inbox", " status ", " case show ", " case list"];
    reads.iter().any(|read| command.contains(read))
        || output.first().is_some_and(|line| {
            line.starts_with("retorno: the gateway refused")
                || line.starts_with("retorno: la pasarela rechazó")
        })
}

/// The README's `DAY`: a Friday at least three days ahead (the README's
/// is a Friday two days after it was written, so that its refusal lists the
/// same slots: the same day before, then Saturday, Monday and Tuesday).
pub fn walkthrough_day() -> jiff::civil::Date {
    let tz = jiff::tz::TimeZone::get("America/Guatemala").unwrap();
    let today = jiff::Timestamp::now().to_zoned_datetime(tz).date();
    let mut day = today.checked_add(jiff::Span::new().days(3)).unwrap();
    while day.weekday() != jiff::civil::Weekday::Friday {
        day = day.tomorrow().unwrap();
    }
    day
}

/// The README's walkthrough, run as written with the real `retorno` program
/// against a dev region (MX, GT, HN) whose case clock the test moves where
/// the README restarts the region ahead of time.
struct Walkthrough {
    dir: tempfile::TempDir,
    clock: retorno_gateway::clock::Clock,
    /// `$MX`, `$GT`, `$HN`, `$DAY` and their values.
    vars: Vec<(String, String)>,
    /// How many days after today the test's `DAY` is, against the README's two.
    extra_days: i64,
    /// The README's message ids, replaced in later commands by this run's.
    ids: Vec<(String, String)>,
    /// The locale the commands run under.
    lang: &'static str,
}

impl Walkthrough {
    fn command(&self, command: &str) -> String {
        let mut command = command.to_owned();
        for (name, value) in self.vars.iter().chain(&self.ids) {
            command = command.replace(name, value);
        }
        command
    }

    /// Runs a block's commands; each must print the README's lines (in
    /// shape) in turn, the last all that remain.
    async fn run(&mut self, commands: &[String], expected: Option<&[String]>) {
        let mut offset = 0;
        for (i, command) in commands.iter().enumerate() {
            let command = self.command(command);
            let last = i + 1 == commands.len();
            let started = Instant::now();
            let (output, wanted) = loop {
                let output = run(self.dir.path(), &command, self.lang);
                let shape: Vec<String> = output.iter().map(|line| masked(line)).collect();
                let wanted: Vec<String> = match expected {
                    Some(lines) if last => lines[offset..].to_vec(),
                    Some(lines) => lines[offset..(offset + shape.len()).min(lines.len())].to_vec(),
                    None => shape.clone(),
                };
                let refused = output
                    .first()
                    .is_some_and(|line| line.starts_with("retorno:"));
                let good = if expected.is_some() {
                    shape == wanted.iter().map(|line| masked(line)).collect::<Vec<_>>()
                } else {
                    !refused
                };
                if good {
                    break (output, wanted);
                }
                assert!(
                    may_run_again(&command, &output) && started.elapsed() < DEADLINE,
                    "`{command}` printed:\n{}\nthe README shows:\n{}",
                    output.join("\n"),
                    wanted.join("\n")
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            offset += output.len();
            self.learn_ids(&wanted, &output);
        }
    }

    fn learn_ids(&mut self, readme: &[String], output: &[String]) {
        for (readme_line, line) in readme.iter().zip(output) {
            for (readme_word, word) in readme_line.split(' ').zip(line.split(' ')) {
                let trim = |w: &str| w.trim_matches(|c: char| "`(),".contains(c)).to_owned();
                let (readme_word, word) = (trim(readme_word), trim(word));
                if is_uuid(&readme_word) && !self.ids.iter().any(|(id, _)| *id == readme_word) {
                    self.ids.push((readme_word, word));
                }
            }
        }
    }

    /// Where the README restarts the region `days` ahead of the system clock.
    fn clock_ahead(&self, days: i64) {
        let ahead = jiff::SignedDuration::from_hours(24 * (days + self.extra_days));
        self.clock
            .advance_to(jiff::Timestamp::now().checked_add(ahead).unwrap())
            .unwrap();
    }
}

/// Runs the `sections` of `document` (a path from this crate) as written,
/// under the locale `lang`, against a dev region of MX, GT and HN whose case
/// clock moves where the document restarts the region ahead.
pub async fn walk(document: &str, sections: &[&str], lang: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("client")).unwrap();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        dir.path().join("client/examples"),
    )
    .unwrap();
    let options = dev::DevOptions {
        dir: dir.path().join(".retorno-dev"),
        countries: ["MX", "GT", "HN"].map(|c| c.parse().unwrap()).to_vec(),
        peer_port: dev::free_ports(3).unwrap(),
        agency_port: dev::free_ports(3).unwrap(),
        metrics_port: dev::free_ports(3).unwrap(),
        danger_clock_ahead_days: 0,
    };
    let clock = retorno_gateway::clock::Clock::adjustable();
    let mut gateways = Vec::new();
    for file in dev::prepare(&options).unwrap() {
        let config = Config::load(&file).unwrap();
        gateways.push(
            Gateway::start_with_clock(config, clock.clone())
                .await
                .unwrap(),
        );
    }
    let day = walkthrough_day();
    let tz = jiff::tz::TimeZone::get("America/Guatemala").unwrap();
    let today = jiff::Timestamp::now().to_zoned_datetime(tz).date();
    let mut walk = Walkthrough {
        dir,
        clock,
        vars: vec![("$DAY".into(), day.to_string())],
        extra_days: i64::from(today.until(day).unwrap().get_days()) - 2,
        ids: Vec::new(),
        lang,
    };

    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(document)).unwrap();
    let mut steps = Vec::new();
    for start in sections {
        steps.extend(actions(section(&text, start), &mut walk.vars));
    }
    assert!(
        steps.len() >= 12,
        "the walkthrough's commands were not found: {steps:?}"
    );
    for action in &steps {
        match action {
            Action::Run { commands, output } => walk.run(commands, output.as_deref()).await,
            Action::ClockAhead(days) => walk.clock_ahead(*days),
        }
    }
    for gateway in gateways {
        gateway.shutdown().await;
    }
}
