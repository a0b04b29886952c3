//! `retorno --help` in the reader's language.
//!
//! The English help is the doc comments of `main.rs` (clap's derive reads
//! them); the Spanish is `client/locales/es/help.ftl`, keyed by where each
//! text sits in the command tree: `help-<command path>` for a command's
//! summary (`help-send-notice`), `help-<command path>--<argument id>` for an
//! argument (`help-send-notice--to`), `help-global--<id>` for an argument every
//! command below its own takes (`--profile`, `--official`). A test walks the
//! tree so that no text is left without its Spanish and no Spanish text
//! names an argument that is gone.

use clap::Command;
use retorno_client::i18n::Lang;

/// The English connection heading of `main.rs`'s `Connection`.
pub const CONNECTION_HEADING: &str =
    "Connection (a profile, or --gateway with --ca, --cert and --key)";

/// The command tree with its help in `lang` (English as written in `main.rs`).
pub fn localized(command: Command, lang: Lang) -> Command {
    if lang == Lang::En {
        return command;
    }
    // The tree's own texts first, so that building it copies them where clap
    // copies texts (global arguments into each command, summaries into the
    // `help` command); then clap's own flags and `help` command, which only
    // building makes.
    let mut command = translate(command, "", lang);
    command.build();
    generated(command, lang)
}

/// Where a command sits: `retorno` for the root, `send-notice` below it.
fn path_of(parent: &str, name: &str) -> String {
    match parent {
        "" => "retorno".to_owned(),
        "retorno" => name.to_owned(),
        parent => format!("{parent}-{name}"),
    }
}

/// The message id of an argument's help in the command at `path`.
fn arg_id(path: &str, arg: &clap::Arg) -> String {
    if arg.is_global_set() {
        format!("help-global--{}", arg.get_id())
    } else {
        format!("help-{path}--{}", arg.get_id())
    }
}

/// Every message id the tree's help needs (`main.rs`'s commands and
/// arguments; clap's own are in [`generated`]), for the test.
#[cfg(test)]
fn needed(command: &Command) -> Vec<String> {
    let mut ids = Vec::new();
    collect(command, "", &mut ids);
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
fn collect(command: &Command, parent: &str, ids: &mut Vec<String>) {
    let path = path_of(parent, command.get_name());
    ids.push(format!("help-{path}"));
    if command.get_long_about().is_some() {
        ids.push(format!("help-{path}-long"));
    }
    ids.extend(command.get_arguments().map(|arg| arg_id(&path, arg)));
    for sub in command.get_subcommands() {
        collect(sub, &path, ids);
    }
}

/// The texts of `main.rs`'s commands and arguments, and the headings they sit under.
fn translate(mut command: Command, parent: &str, lang: Lang) -> Command {
    let path = path_of(parent, command.get_name());
    let text = |id: &str| lang.has(id).then(|| lang.text(id, &[]));
    if let Some(about) = text(&format!("help-{path}")) {
        command = command.about(about);
    }
    if command.get_long_about().is_some()
        && let Some(long) = text(&format!("help-{path}-long"))
    {
        command = command.long_about(long);
    }
    let args: Vec<(String, Option<String>, String)> = command
        .get_arguments()
        .map(|arg| {
            let section = match arg.get_help_heading() {
                Some(CONNECTION_HEADING) => lang.text("help-heading-connection", &[]),
                Some(other) => other.to_owned(),
                None if arg.is_positional() => lang.text("help-heading-arguments", &[]),
                None => lang.text("help-heading-options", &[]),
            };
            (arg.get_id().to_string(), text(&arg_id(&path, arg)), section)
        })
        .collect();
    for (id, help, section) in args {
        command = command.mut_arg(id, |arg| {
            let arg = arg.help_heading(section);
            match help {
                Some(help) => arg.help(help.clone()).long_help(help),
                None => arg,
            }
        });
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in subcommands {
        command = command.mut_subcommand(name, |sub| translate(sub, &path, lang));
    }
    command
        .subcommand_help_heading(lang.text("help-heading-commands", &[]))
        .help_template(template(lang))
}

/// clap's own `--help`, `--version` and `help` command, once built.
fn generated(mut command: Command, lang: Lang) -> Command {
    let options = lang.text("help-heading-options", &[]);
    for (id, text) in [("help", "help-clap-help"), ("version", "help-clap-version")] {
        if command.get_arguments().any(|arg| arg.get_id() == id) {
            let text = lang.text(text, &[]);
            let options = options.clone();
            command = command.mut_arg(id, |arg| {
                arg.help(text.clone()).long_help(text).help_heading(options)
            });
        }
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in subcommands {
        command = if name == "help" {
            command.mut_subcommand(name, |help| {
                help.about(lang.text("help-clap-help-command", &[]))
            })
        } else {
            command.mut_subcommand(name, |sub| generated(sub, lang))
        };
    }
    command
}

/// clap's default template with the usage heading in `lang`.
fn template(lang: Lang) -> String {
    format!(
        "{{before-help}}{{about-with-newline}}\n{} {{usage}}\n\n{{all-args}}{{after-help}}",
        lang.text("help-heading-usage", &[])
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::{Cli, Command as Cmd};

    /// The ids of `help.ftl`, as written.
    fn written() -> BTreeSet<String> {
        include_str!("../locales/es/help.ftl")
            .lines()
            .filter_map(|line| line.split_once(" = "))
            .map(|(id, _)| id.trim().to_owned())
            .filter(|id| id.starts_with("help-"))
            .collect()
    }

    #[test]
    fn every_command_and_argument_has_its_spanish_help_and_no_spanish_text_is_stale() {
        let needed: BTreeSet<String> = needed(&Cli::command()).into_iter().collect();
        let missing: Vec<_> = needed.iter().filter(|id| !Lang::Es.has(id)).collect();
        assert!(missing.is_empty(), "help.ftl lacks {missing:?}");
        let ours = |id: &&String| {
            ["help-heading-", "help-clap-", "help-shared-"]
                .iter()
                .any(|prefix| id.starts_with(prefix))
        };
        let stale: Vec<_> = written()
            .iter()
            .filter(|id| !needed.contains(*id) && !ours(id))
            .cloned()
            .collect();
        assert!(
            stale.is_empty(),
            "help.ftl names what main.rs no longer has: {stale:?}"
        );
        for id in written().iter().filter(ours) {
            assert!(Lang::Es.has(id), "{id} does not parse");
        }
    }

    #[test]
    fn the_help_is_in_spanish_under_a_spanish_locale_and_parses_the_same() {
        let mut spanish = localized(Cli::command(), Lang::Es);
        spanish.clone().debug_assert();
        let root = spanish.render_long_help().to_string();
        for words in [
            "La línea de comandos de las instituciones",
            "Uso: retorno",
            "Comandos:",
            "Propone un arribo (autoridad del país de destino)",
            "Conexión (un perfil, o --gateway con --ca, --cert y --key):",
            "Un perfil de conexión (TOML",
            "Muestra la ayuda",
            "Muestra la versión",
        ] {
            assert!(root.contains(words), "{words:?} in:\n{root}");
        }
        let propose = spanish
            .find_subcommand_mut("propose")
            .unwrap()
            .render_help()
            .to_string();
        for words in [
            "Opciones:",
            "Un identificador para esta propuesta, p. ej. P1.",
            "El número de caso, p. ej. MX-2026-0001.",
            "Un oficial de acompañamiento como NOMBRE/INSTITUCIÓN",
        ] {
            assert!(propose.contains(words), "{words:?} in:\n{propose}");
        }
        for text in [&root, &propose] {
            for english in [
                "Usage:",
                "Options:",
                "Commands:",
                "Print help",
                "The case id",
            ] {
                assert!(!text.contains(english), "{english:?} left in:\n{text}");
            }
        }
        // The same arguments parse to the same command.
        let matches = localized(Cli::command(), Lang::Es)
            .try_get_matches_from(["retorno", "--profile", "p.toml", "case", "show", "MX-1"])
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        assert_eq!(
            cli.connection.profile.as_deref(),
            Some(std::path::Path::new("p.toml"))
        );
        assert!(matches!(
            cli.command,
            Cmd::Case { command: crate::CaseCommand::Show { ref case } } if case == "MX-1"
        ));
        // English stays as main.rs writes it.
        let english = localized(Cli::command(), Lang::En)
            .render_long_help()
            .to_string();
        assert!(
            english.contains("Usage: retorno") && english.contains("Print help"),
            "{english}"
        );
    }
}
