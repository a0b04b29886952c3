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
use retorno_client::i18n::{FluentValue, Lang};

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

/// A command line clap refuses, in `lang`: what is wrong, what it may have
/// meant, the usage and where to read more (`help-error-*` in help.ftl).
/// `None` in English, and for help and version (not errors) or a kind of
/// error it does not name: clap's own text then.
pub fn error_in(error: &clap::Error, lang: Lang) -> Option<String> {
    use clap::error::{ContextKind as K, ContextValue as V, ErrorKind as E};
    if lang == Lang::En {
        return None;
    }
    let text = |kind: K| match error.get(kind)? {
        V::String(text) => Some(text.clone()),
        V::Strings(texts) => Some(texts.join(", ")),
        V::StyledStr(text) => Some(text.to_string()),
        V::StyledStrs(texts) => Some(
            texts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        V::Number(number) => Some(number.to_string()),
        V::None | V::Bool(_) => None,
        _ => None,
    };
    let say = |id: &str, args: &[(&str, String)]| {
        let args: Vec<(&str, FluentValue<'_>)> = args
            .iter()
            .map(|(name, value)| (*name, FluentValue::from(value.clone())))
            .collect();
        lang.text(id, &args)
    };
    let arg = ("arg", text(K::InvalidArg).unwrap_or_default());
    let value = ("value", text(K::InvalidValue).unwrap_or_default());
    let mut what = match error.kind() {
        E::UnknownArgument => say("help-error-unknown-argument", &[arg]),
        E::InvalidSubcommand => say(
            "help-error-unknown-command",
            &[("command", text(K::InvalidSubcommand).unwrap_or_default())],
        ),
        E::InvalidValue if value.1.is_empty() => say("help-error-missing-value", &[arg]),
        E::InvalidValue => say("help-error-invalid-value", &[arg, value]),
        E::ValueValidation => {
            let why = std::error::Error::source(error).map(|source| {
                if source.is::<std::num::ParseIntError>() {
                    say("help-error-not-a-number", &[])
                } else if source.is::<std::net::AddrParseError>() {
                    say("help-error-not-an-address", &[])
                } else {
                    source.to_string()
                }
            });
            let invalid = say("help-error-invalid-value", &[arg, value]);
            match why {
                Some(why) => format!("{invalid}: {why}"),
                None => invalid,
            }
        }
        E::MissingRequiredArgument => say("help-error-missing-required", &[arg]),
        E::ArgumentConflict => say(
            "help-error-conflict",
            &[arg, ("prior", text(K::PriorArg).unwrap_or_default())],
        ),
        E::TooManyValues | E::TooFewValues | E::WrongNumberOfValues => {
            say("help-error-values", &[arg])
        }
        E::MissingSubcommand => say(
            "help-error-missing-command",
            &[("commands", text(K::ValidSubcommand).unwrap_or_default())],
        ),
        _ => return None,
    };
    if let Some(valid) = text(K::ValidValue).filter(|_| error.kind() == E::InvalidValue) {
        what.push_str(&say("help-error-possible-values", &[("values", valid)]));
    }
    let mut out = format!("error: {what}\n");
    let suggested = [K::SuggestedArg, K::SuggestedSubcommand, K::SuggestedValue]
        .into_iter()
        .find_map(text);
    if let Some(suggested) = suggested {
        out.push_str(&format!(
            "\n  {}\n",
            say("help-error-did-you-mean", &[("suggested", suggested)])
        ));
    }
    if let Some(usage) = text(K::Usage) {
        let usage = usage.trim();
        let usage = usage.strip_prefix("Usage:").unwrap_or(usage).trim();
        out.push_str(&format!(
            "\n{} {usage}\n",
            lang.text("help-heading-usage", &[])
        ));
    }
    out.push_str(&format!("\n{}\n", say("help-error-more", &[])));
    Some(out)
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
            ["help-heading-", "help-clap-", "help-shared-", "help-error-"]
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

    fn refused(args: &[&str]) -> String {
        let error = localized(Cli::command(), Lang::Es)
            .try_get_matches_from(args)
            .err()
            .unwrap();
        error_in(&error, Lang::Es).unwrap()
    }

    #[test]
    fn a_mistyped_command_line_is_told_in_spanish_with_what_was_meant() {
        let typo = refused(&["retorno", "propose", "--case", "C", "--pont", "X"]);
        assert!(
            typo.starts_with("error: argumento desconocido «--pont»\n"),
            "{typo}"
        );
        assert!(
            typo.contains("sugerencia: quizá quiso decir «--point»"),
            "{typo}"
        );
        assert!(typo.contains("\nUso: retorno propose "), "{typo}");
        assert!(
            typo.ends_with("Para más información, use «--help».\n"),
            "{typo}"
        );
        let missing = refused(&["retorno", "propose", "--case", "C"]);
        assert!(
            missing.starts_with("error: faltan argumentos obligatorios: --proposal <PROPOSAL>"),
            "{missing}"
        );
        let command = refused(&["retorno", "inbx"]);
        assert!(
            command.starts_with("error: comando desconocido «inbx»"),
            "{command}"
        );
        assert!(command.contains("quizá quiso decir «inbox»"), "{command}");
        let number = refused(&["retorno", "ack", "diez"]);
        assert!(
            number.starts_with(
                "error: valor «diez» no válido para «<CURSOR>»: no es un número entero"
            ),
            "{number}"
        );
        for text in [&typo, &missing, &command, &number] {
            for english in ["unexpected", "required", "Usage", "For more", "tip:"] {
                assert!(!text.contains(english), "{english:?} left in:\n{text}");
            }
        }
        // Help is not an error, and English stays clap's.
        let help = localized(Cli::command(), Lang::Es)
            .try_get_matches_from(["retorno", "--help"])
            .err()
            .unwrap();
        assert_eq!(error_in(&help, Lang::Es), None);
        let english = Cli::command()
            .try_get_matches_from(["retorno", "inbx"])
            .err()
            .unwrap();
        assert_eq!(error_in(&english, Lang::En), None);
    }
}
