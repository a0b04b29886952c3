//! `retorno console`: the argument side of the web console and its `user`
//! commands; the console itself is the library's `retorno_client::console`.

use std::io::{BufRead, IsTerminal, Write};

use retorno_client::console::{self, ConsoleConfig, accounts};

use crate::{Connection, ConsoleArgs, ConsoleCommand, UserCommand, show};

/// Runs a `retorno console` command.
pub async fn run(connection: &Connection, args: &ConsoleArgs) -> anyhow::Result<()> {
    match &args.user {
        Some(ConsoleCommand::User { command }) => user(args, command),
        None => serve(connection, args).await,
    }
}

fn user(args: &ConsoleArgs, command: &UserCommand) -> anyhow::Result<()> {
    let file = args.users.display().to_string();
    match command {
        UserCommand::Add { login, name } => {
            let password = read_password()?;
            accounts::add(&args.users, login, name, &password)?;
            show::said(
                "console-user-added",
                &[("login", login), ("name", name), ("file", &file)],
            );
        }
        UserCommand::Disable { login } => {
            accounts::disable(&args.users, login)?;
            show::said(
                "console-user-disabled",
                &[("login", login), ("file", &file)],
            );
        }
        UserCommand::List => {
            let now = jiff::Timestamp::now().as_second();
            for account in accounts::list(&args.users)? {
                let mut state = Vec::new();
                if account.disabled {
                    state.push(show::say("console-user-disabled-state", &[]));
                }
                if account.locked_at(now) {
                    state.push(show::say("console-user-locked", &[]));
                }
                if state.is_empty() {
                    state.push(show::say("console-user-active", &[]));
                }
                println!(
                    "{}\t{}\t{}",
                    account.login,
                    account.display_name,
                    state.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Reads the password from standard input, without echo on a terminal.
fn read_password() -> anyhow::Result<String> {
    let terminal = std::io::stdin().is_terminal();
    if terminal {
        eprint!("{}", show::say("console-password-prompt", &[]));
        std::io::stderr().flush()?;
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if terminal {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

async fn serve(connection: &Connection, args: &ConsoleArgs) -> anyhow::Result<()> {
    let profile = connection.profile()?;
    let mut config = ConsoleConfig::new(profile, args.users.clone());
    config.listen = args.listen;
    config.tls = args.tls_cert.clone().zip(args.tls_key.clone());
    config.idle_timeout = std::time::Duration::from_secs(args.idle_minutes.saturating_mul(60));
    config.public_origin = args.public_origin.clone();
    let running = console::start(config).await?;
    println!(
        "{}",
        show::lang().text("console-listening", &[("url", running.url().into())])
    );
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}
