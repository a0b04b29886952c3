//! The reader's language: Spanish or English, with every sentence a person reads
//! kept in Fluent files a translator can edit (`client/locales/{es,en}/*.ftl`).
//!
//! One loader serves the `retorno` program (which follows `LANG`) and the web
//! console (which follows the browser's `Accept-Language`, with a switch on every
//! page). A message missing in one language falls back to English, then to its id,
//! so a gap shows as an untranslated sentence, never as a crash; the tests below
//! keep both languages holding the same messages with the same parameters.
//!
//! Words follow `GLOSARIO.md`: the region's own Spanish, addressing the reader as
//! *usted*.

use std::{borrow::Cow, sync::OnceLock};

/// A message parameter's value: programs that render messages need not
/// depend on Fluent themselves.
pub use fluent_bundle::FluentValue;
use fluent_bundle::{FluentArgs, FluentResource, concurrent::FluentBundle};
use unic_langid::LanguageIdentifier;

/// The languages retorno speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// Español: the region's working language.
    Es,
    /// English: the default where nothing says otherwise.
    #[default]
    En,
}

/// The message files, per language, compiled into the program so that a
/// release binary needs nothing beside it. Adding a file: add it to both lists
/// (but `help.ftl`, Spanish only: see the tests).
const FILES: &[(Lang, &str, &str)] = &[
    (Lang::Es, "cli.ftl", include_str!("../locales/es/cli.ftl")),
    (
        Lang::Es,
        "console.ftl",
        include_str!("../locales/es/console.ftl"),
    ),
    (
        Lang::Es,
        "refusals.ftl",
        include_str!("../locales/es/refusals.ftl"),
    ),
    (Lang::Es, "ops.ftl", include_str!("../locales/es/ops.ftl")),
    (Lang::Es, "help.ftl", include_str!("../locales/es/help.ftl")),
    (Lang::En, "cli.ftl", include_str!("../locales/en/cli.ftl")),
    (
        Lang::En,
        "console.ftl",
        include_str!("../locales/en/console.ftl"),
    ),
    (
        Lang::En,
        "refusals.ftl",
        include_str!("../locales/en/refusals.ftl"),
    ),
    (Lang::En, "ops.ftl", include_str!("../locales/en/ops.ftl")),
];

impl Lang {
    /// Every language, in the order the console's switch shows them.
    pub const ALL: [Lang; 2] = [Lang::Es, Lang::En];

    /// The BCP 47 tag: `es` or `en`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }

    /// The language's own name, for a switch: "Español", "English".
    pub fn name(self) -> &'static str {
        match self {
            Lang::Es => "Español",
            Lang::En => "English",
        }
    }

    /// A tag or locale as people write them (`es`, `es-GT`, `es_MX.UTF-8`,
    /// `EN`), or `None` for a language retorno does not speak.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag
            .trim()
            .split(['-', '_', '.', '@'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "es" => Some(Lang::Es),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language of the `retorno` program: `LC_ALL`, then `LC_MESSAGES`,
    /// then `LANG`, as POSIX orders them; the first one set decides. English
    /// when none is set or the one set is another language (`C`, `fr_FR`).
    pub fn from_env() -> Lang {
        Self::from_locale_vars(|name| std::env::var(name).ok())
    }

    /// [`Lang::from_env`] over any source of variables (for tests).
    pub fn from_locale_vars(var: impl Fn(&str) -> Option<String>) -> Lang {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| var(name).filter(|value| !value.is_empty()))
            .map(|value| Lang::from_tag(&value).unwrap_or_default())
            .next()
            .unwrap_or_default()
    }

    /// The browser's choice from an `Accept-Language` header (RFC 9110
    /// 12.5.4): the spoken language with the highest weight, ties going to
    /// the one listed first; `None` when it names neither.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(Lang, f32)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::from_tag) else {
                continue;
            };
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            if weight > 0.0 && best.is_none_or(|(_, w)| weight > w) {
                best = Some((lang, weight));
            }
        }
        best.map(|(lang, _)| lang)
    }

    /// The message `id` in this language, with named parameters filled in.
    /// Falls back to English, then to the id itself.
    pub fn text(self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, value.clone());
        }
        let args = (!args.is_empty()).then_some(&fluent_args);
        [self, Lang::En]
            .into_iter()
            .find_map(|lang| bundles().get(lang).format(id, args))
            .unwrap_or_else(|| id.to_owned())
    }

    /// Whether this language has the message `id` (a page or refusal can then
    /// choose a generic sentence for a code it does not know).
    pub fn has(self, id: &str) -> bool {
        bundles().get(self).bundle.has_message(id)
    }
}

/// The shorthand for a message with no or few parameters:
/// `t(lang, "inbox-title", &[])`, `t(lang, "refused-field", &[("field", "child.name".into())])`.
pub fn t(lang: Lang, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    lang.text(id, args)
}

struct Bundle {
    bundle: FluentBundle<FluentResource>,
}

impl Bundle {
    fn format(&self, id: &str, args: Option<&FluentArgs<'_>>) -> Option<String> {
        let pattern = self.bundle.get_message(id)?.value()?;
        let mut errors = Vec::new();
        let text = self.bundle.format_pattern(pattern, args, &mut errors);
        Some(match text {
            Cow::Borrowed(s) => s.to_owned(),
            Cow::Owned(s) => s,
        })
    }
}

struct Bundles {
    es: Bundle,
    en: Bundle,
}

impl Bundles {
    fn get(&self, lang: Lang) -> &Bundle {
        match lang {
            Lang::Es => &self.es,
            Lang::En => &self.en,
        }
    }
}

fn bundles() -> &'static Bundles {
    static BUNDLES: OnceLock<Bundles> = OnceLock::new();
    BUNDLES.get_or_init(|| Bundles {
        es: load(Lang::Es),
        en: load(Lang::En),
    })
}

fn load(lang: Lang) -> Bundle {
    let id: LanguageIdentifier = match lang {
        Lang::Es => unic_langid::langid!("es"),
        Lang::En => unic_langid::langid!("en"),
    };
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Unicode isolation marks around parameters would end up in terminals,
    // logs and test expectations; names and codes here are left-to-right.
    bundle.set_use_isolating(false);
    for (_, _, source) in FILES.iter().filter(|(l, _, _)| *l == lang) {
        // A file that does not parse keeps the messages that do; the tests
        // below refuse any error, so none reaches a release.
        let resource = match FluentResource::try_new((*source).to_owned()) {
            Ok(resource) => resource,
            Err((resource, _)) => resource,
        };
        // A duplicate id keeps the first; the tests refuse duplicates too.
        bundle.add_resource_overriding(resource);
    }
    Bundle { bundle }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use fluent_syntax::ast::{self, Entry};

    use super::*;

    /// Each message id of a file, with the names of the variables it uses.
    fn messages(source: &str, file: &str) -> BTreeMap<String, BTreeSet<String>> {
        let resource = fluent_syntax::parser::parse(source)
            .unwrap_or_else(|(_, errors)| panic!("{file}: {errors:?}"));
        let mut out = BTreeMap::new();
        for entry in resource.body {
            if let Entry::Message(message) = entry {
                let mut vars = BTreeSet::new();
                if let Some(value) = &message.value {
                    variables(value, &mut vars);
                }
                assert!(
                    out.insert(message.id.name.to_owned(), vars).is_none(),
                    "{file}: {} is defined twice",
                    message.id.name
                );
            }
        }
        out
    }

    fn variables(pattern: &ast::Pattern<&str>, vars: &mut BTreeSet<String>) {
        for element in &pattern.elements {
            if let ast::PatternElement::Placeable { expression } = element {
                expression_variables(expression, vars);
            }
        }
    }

    fn expression_variables(expression: &ast::Expression<&str>, vars: &mut BTreeSet<String>) {
        match expression {
            ast::Expression::Select { selector, variants } => {
                inline_variables(selector, vars);
                for variant in variants {
                    variables(&variant.value, vars);
                }
            }
            ast::Expression::Inline(inline) => inline_variables(inline, vars),
        }
    }

    fn inline_variables(inline: &ast::InlineExpression<&str>, vars: &mut BTreeSet<String>) {
        match inline {
            ast::InlineExpression::VariableReference { id } => {
                vars.insert(id.name.to_owned());
            }
            ast::InlineExpression::FunctionReference { arguments, .. } => {
                for arg in &arguments.positional {
                    inline_variables(arg, vars);
                }
            }
            ast::InlineExpression::Placeable { expression } => {
                expression_variables(expression, vars)
            }
            _ => {}
        }
    }

    /// Files only in Spanish: `help.ftl` holds `retorno --help` in Spanish;
    /// its English is the doc comments of `client/src/main.rs`, and the
    /// program's own test (`help.rs`) walks its commands against it.
    const SPANISH_ONLY: &[&str] = &["help.ftl"];

    #[test]
    fn spanish_and_english_hold_the_same_messages_with_the_same_parameters() {
        for (es_lang, es_name, es_source) in FILES
            .iter()
            .filter(|(l, name, _)| *l == Lang::Es && !SPANISH_ONLY.contains(name))
        {
            let (_, _, en_source) = FILES
                .iter()
                .find(|(l, name, _)| *l == Lang::En && name == es_name)
                .unwrap_or_else(|| panic!("{es_name} has no English file"));
            let es = messages(es_source, &format!("{}/{es_name}", es_lang.tag()));
            let en = messages(en_source, &format!("en/{es_name}"));
            let es_ids: BTreeSet<_> = es.keys().collect();
            let en_ids: BTreeSet<_> = en.keys().collect();
            assert_eq!(
                es_ids, en_ids,
                "{es_name}: the Spanish and English files must hold the same ids"
            );
            for (id, vars) in &es {
                assert_eq!(
                    vars, &en[id],
                    "{es_name}: {id} uses different parameters in Spanish and English"
                );
            }
        }
    }

    #[test]
    fn the_environment_and_the_browser_choose_the_language() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            Lang::from_locale_vars(env(&[("LANG", "es_GT.UTF-8")])),
            Lang::Es
        );
        assert_eq!(Lang::from_locale_vars(env(&[])), Lang::En);
        assert_eq!(
            Lang::from_locale_vars(env(&[("LANG", "C.UTF-8")])),
            Lang::En
        );
        assert_eq!(
            Lang::from_locale_vars(env(&[("LANG", "es_MX.UTF-8"), ("LC_ALL", "en_US.UTF-8")])),
            Lang::En,
            "LC_ALL wins over LANG"
        );
        assert_eq!(
            Lang::from_locale_vars(env(&[("LANG", "en_US.UTF-8"), ("LC_ALL", "")])),
            Lang::En,
            "an empty variable is unset"
        );
        assert_eq!(
            Lang::from_accept_language("es-GT,es;q=0.9,en;q=0.8"),
            Some(Lang::Es)
        );
        assert_eq!(
            Lang::from_accept_language("fr-FR, en;q=0.5, es;q=0.7"),
            Some(Lang::Es)
        );
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr, de;q=0.8"), None);
        assert_eq!(Lang::from_accept_language("es;q=0, en"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn a_message_is_rendered_with_its_parameters_and_falls_back_to_english() {
        assert_eq!(t(Lang::Es, "language-switch", &[]), "Idioma");
        assert_eq!(t(Lang::En, "language-switch", &[]), "Language");
        assert_eq!(
            t(Lang::Es, "no-such-message", &[]),
            "no-such-message",
            "an unknown id shows as itself"
        );
        assert!(Lang::Es.has("language-switch") && !Lang::Es.has("no-such-message"));
    }
}
