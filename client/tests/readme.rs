//! The README's first walkthrough ("Five minutes": send the notice, read the
//! inbox, check the delivery) run as written against a dev region, with the
//! real `retorno` program, comparing each output's shape with the README's
//! (message ids, times and hashes masked), so that the README cannot drift
//! from the programs.
//!
//! The region runs in this process (the gateway library is a dev-dependency);
//! the commands run in a folder holding the region's `.retorno-dev` and a link
//! to this crate's `examples`, so that the README's relative paths resolve.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use retorno_gateway::{Config, Gateway, dev};

/// How long a command's output may take to reach the README's shape.
const DEADLINE: Duration = Duration::from_secs(30);

/// One command of the README and the output the README shows for it.
struct Step {
    command: String,
    output: Vec<String>,
}

/// The README's section from `start` to the next `## ` heading.
fn section<'a>(readme: &'a str, start: &str) -> &'a str {
    let from = readme.find(start).expect("the section");
    let rest = &readme[from + start.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// Each `retorno` command of an `sh` block directly followed by an output
/// block, with that output; continuation lines are joined. A block of
/// several commands shows their outputs one after the other.
fn steps(section: &str) -> Vec<Step> {
    let blocks: Vec<(&str, &str)> = section
        .split("```")
        .collect::<Vec<_>>()
        .chunks(2)
        .filter_map(|pair| match pair {
            [_, block] => Some(block.split_once('\n').unwrap_or((block, ""))),
            _ => None,
        })
        .collect();
    let mut steps = Vec::new();
    for pair in blocks.windows(2) {
        let [(lang, commands), ("", output)] = pair else {
            continue;
        };
        if *lang != "sh" {
            continue;
        }
        let commands: Vec<String> = commands
            .replace("\\\n", " ")
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|line| line.starts_with("retorno "))
            .collect();
        if commands.len() == 1 {
            steps.push(Step {
                command: commands[0].clone(),
                output: output.lines().map(str::to_owned).collect(),
            });
        }
    }
    steps
}

/// `text` with what differs from run to run replaced: UUIDs, times, hashes.
fn masked(text: &str) -> String {
    let mut out = String::new();
    for word in text.split(' ') {
        let bare = word.trim_matches(|c: char| "`(),".contains(c));
        let kind = if is_uuid(bare) {
            Some("ID")
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

/// Runs one README command in `dir`; its stdout, then its stderr, by line.
fn run(dir: &Path, command: &str) -> Vec<String> {
    let args = words(command);
    let output = Command::new(env!("CARGO_BIN_EXE_retorno"))
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    text.lines().map(str::to_owned).collect()
}

/// Free consecutive ports on 127.0.0.1 for the dev region's countries.
fn free_ports(count: u16) -> u16 {
    (0..50)
        .find_map(|_| {
            let first = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
            let start = first.local_addr().ok()?.port();
            let rest: Option<Vec<_>> = (1..count)
                .map(|i| std::net::TcpListener::bind(("127.0.0.1", start.checked_add(i)?)).ok())
                .collect();
            rest.map(|_| start)
        })
        .expect("free ports")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_first_walkthrough_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("client")).unwrap();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        dir.path().join("client/examples"),
    )
    .unwrap();
    let options = dev::DevOptions {
        dir: dir.path().join(".retorno-dev"),
        countries: vec!["MX".parse().unwrap(), "GT".parse().unwrap()],
        peer_port: free_ports(2),
        agency_port: free_ports(2),
        danger_clock_ahead_days: 0,
    };
    let mut gateways = Vec::new();
    for file in dev::prepare(&options).unwrap() {
        gateways.push(Gateway::start(Config::load(&file).unwrap()).await.unwrap());
    }

    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let steps = steps(section(&readme, "## Five minutes"));
    assert!(
        steps.len() >= 3,
        "the walkthrough's commands were not found"
    );
    // The README's message ids, replaced in later commands by the ones of this run.
    let mut ids: Vec<(String, String)> = Vec::new();
    for step in steps {
        let mut command = step.command.clone();
        for (readme_id, actual) in &ids {
            command = command.replace(readme_id, actual);
        }
        let expected: Vec<String> = step.output.iter().map(|line| masked(line)).collect();
        let started = Instant::now();
        let output = loop {
            let output = run(dir.path(), &command);
            let shape: Vec<String> = output.iter().map(|line| masked(line)).collect();
            // Delivery takes a moment: the inbox and the status reach the
            // README's shape once the receipt is back.
            if shape == expected || started.elapsed() > DEADLINE {
                break output;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let shape: Vec<String> = output.iter().map(|line| masked(line)).collect();
        assert_eq!(
            shape,
            expected,
            "`{command}` printed:\n{}",
            output.join("\n")
        );
        for (readme_line, line) in step.output.iter().zip(&output) {
            for (readme_word, word) in readme_line.split(' ').zip(line.split(' ')) {
                let (readme_word, word) = (
                    readme_word.trim_matches(|c: char| "`(),".contains(c)),
                    word.trim_matches(|c: char| "`(),".contains(c)),
                );
                if is_uuid(readme_word) && !ids.iter().any(|(id, _)| id == readme_word) {
                    ids.push((readme_word.to_owned(), word.to_owned()));
                }
            }
        }
    }
    for gateway in gateways {
        gateway.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_certificate_is_named_as_the_readme_says_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let options = dev::DevOptions {
        dir: dir.path().join(".retorno-dev"),
        countries: vec!["MX".parse().unwrap(), "GT".parse().unwrap()],
        peer_port: free_ports(2),
        agency_port: free_ports(2),
        danger_clock_ahead_days: 0,
    };
    let files = dev::prepare(&options).unwrap();
    let mx = Gateway::start(Config::load(&files[0]).unwrap())
        .await
        .unwrap();
    // Guatemala's child protection, pointed at Mexico's gateway.
    let profiles = options.dir.join("GT/profiles");
    let mut profile =
        retorno_client::Profile::load(&profiles.join("child-protection.toml")).unwrap();
    profile.gateway = mx.agency_addr().to_string();
    profile.tls_name = Some("gateway.mx.retorno.test".into());
    profile.ca = std::fs::canonicalize(&profile.ca).unwrap();
    profile.cert = std::fs::canonicalize(&profile.cert).unwrap();
    profile.key = std::fs::canonicalize(&profile.key).unwrap();
    let file = profiles.join("at-mx.toml");
    std::fs::write(&file, profile.to_toml().unwrap()).unwrap();

    let expected = format!(
        "retorno: the gateway at {} refused this certificate (UnknownCA): it was not issued by a CA that gateway trusts (another country's agency CA, or another PKI)",
        profile.gateway
    );
    // The gateway's alert often arrives after the call's write has failed;
    // the program must name the refusal anyway, on every try.
    for command in [
        "inbox",
        "case list",
        "status 01a22a34-4d95-750b-a3cf-17f05588d2c3",
    ] {
        for _ in 0..3 {
            let said = run(
                dir.path(),
                &format!("retorno --profile {} {command}", file.display()),
            );
            assert_eq!(said, vec![expected.clone()], "retorno {command}");
        }
    }
    mx.shutdown().await;
}
