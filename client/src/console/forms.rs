//! The console's forms as data: groups of labelled inputs whose `id` and
//! `name` are the field's path in the payload (`child.given_names`), filled
//! with what the official typed, each with the slot its refusal shows in
//! (`#error-<path>`). One template (`fields.html`) draws them all.

use std::collections::BTreeMap;

use crate::i18n::Lang;

use super::web::Fields;

/// A choice of a select or a group of checkboxes.
pub(crate) struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One labelled input.
pub(crate) struct Input {
    /// The field path: the input's `id` and `name`.
    pub name: String,
    pub label: String,
    /// `text`, `date`, `number`, `tel`, `datetime-local`, `select`, `checks`, `checkbox`, `textarea`.
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<Opt>,
    pub error: String,
}

/// A group of inputs as a caseworker thinks of them (a fieldset).
pub(crate) struct Group {
    pub id: String,
    pub legend: String,
    pub inputs: Vec<Input>,
    /// A refusal of the group as a whole (`advance_notice.best_interest: is required`).
    pub error: String,
}

/// Builds groups of inputs in the reader's language, filled from `values`.
pub(crate) struct FormBuilder<'a> {
    lang: Lang,
    values: &'a Fields,
    pub groups: Vec<Group>,
}

/// The label of a field path: message `f-<path, dots and brackets as dashes>`.
fn label_id(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| if matches!(c, '.' | '[' | ']') { '-' } else { c })
        .collect();
    format!("f-{}", id.replace("--", "-").trim_end_matches('-'))
}

impl<'a> FormBuilder<'a> {
    pub fn new(lang: Lang, values: &'a Fields) -> FormBuilder<'a> {
        FormBuilder {
            lang,
            values,
            groups: Vec::new(),
        }
    }

    /// Starts a group; its legend is message `g-<id>`.
    pub fn group(&mut self, id: &str) -> &mut Self {
        self.groups.push(Group {
            id: id.to_owned(),
            legend: self.lang.text(&format!("g-{}", id.replace('.', "-")), &[]),
            inputs: Vec::new(),
            error: String::new(),
        });
        self
    }

    fn push(&mut self, input: Input) -> &mut Self {
        if let Some(group) = self.groups.last_mut() {
            group.inputs.push(input);
        }
        self
    }

    fn input(&self, name: &str, kind: &'static str) -> Input {
        Input {
            name: name.to_owned(),
            label: self.lang.text(&label_id(name), &[]),
            kind,
            value: self.values.get(name).unwrap_or_default().to_owned(),
            options: Vec::new(),
            error: String::new(),
        }
    }

    /// A text-like input: `text`, `date`, `number`, `tel`, `datetime-local`, `textarea`, `checkbox`.
    pub fn field(&mut self, name: &str, kind: &'static str) -> &mut Self {
        let input = self.input(name, kind);
        self.push(input)
    }

    /// A select of enum values; labels are messages `o-<name>-<value>` or
    /// `o-<value>` ([`crate::words::option`]), an empty value first.
    pub fn select(&mut self, name: &str, values: &[&str]) -> &mut Self {
        let mut input = self.input(name, "select");
        let chosen = input.value.clone();
        input.options = std::iter::once("")
            .chain(values.iter().copied())
            .map(|value| Opt {
                value: value.to_owned(),
                label: if value.is_empty() {
                    self.lang.text("o-none", &[])
                } else {
                    crate::words::option(name, value, self.lang)
                        .unwrap_or_else(|| self.lang.text(&format!("o-{value}"), &[]))
                },
                selected: value == chosen,
            })
            .collect();
        self.push(input)
    }

    /// A select of given values and labels, without an empty choice.
    pub fn choose(&mut self, name: &str, choices: Vec<(String, String)>) -> &mut Self {
        let mut input = self.input(name, "select");
        let chosen = input.value.clone();
        input.options = choices
            .into_iter()
            .map(|(value, label)| Opt {
                selected: value == chosen,
                value,
                label,
            })
            .collect();
        self.push(input)
    }

    /// Checkboxes sharing a name (several values); labels are messages `o-<value>`.
    pub fn checks(&mut self, name: &str, values: &[&str]) -> &mut Self {
        let mut input = self.input(name, "checks");
        let ticked = self.values.all(name);
        input.options = values
            .iter()
            .map(|value| Opt {
                value: (*value).to_owned(),
                label: self.lang.text(&format!("o-{value}"), &[]),
                selected: ticked.contains(value),
            })
            .collect();
        self.push(input)
    }

    /// Puts each refusal in its slot: the input of its path, else (indices
    /// dropped, then parents) the closest input or group; what has no slot
    /// is returned, for the top of the page.
    pub fn place_errors(&mut self, errors: BTreeMap<String, String>) -> Vec<String> {
        let mut unplaced = Vec::new();
        for (path, text) in errors {
            if !self.place(&path, &text) {
                unplaced.push(text);
            }
        }
        unplaced
    }

    fn place(&mut self, path: &str, text: &str) -> bool {
        for candidate in slot_candidates(path) {
            for group in &mut self.groups {
                if group.id == candidate {
                    group.error = text.to_owned();
                    return true;
                }
                if let Some(input) = group.inputs.iter_mut().find(|i| i.name == candidate) {
                    input.error = text.to_owned();
                    return true;
                }
            }
        }
        // A list refused as a whole (`escort_officers`): its first input.
        let inside = |name: &str| {
            name.strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('[') || rest.starts_with('.'))
        };
        let first = self
            .groups
            .iter_mut()
            .flat_map(|g| g.inputs.iter_mut())
            .find(|i| inside(&i.name));
        if let Some(input) = first {
            input.error = text.to_owned();
            return true;
        }
        false
    }
}

/// Where a refusal of `path` may show, closest first:
/// `child.nationalities[1]`, `child.nationalities`, `child`.
fn slot_candidates(path: &str) -> Vec<String> {
    let mut out = vec![path.to_owned()];
    let mut plain = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    out.push(plain.clone());
    let mut rest = plain.as_str();
    while let Some((parent, _)) = rest.rsplit_once('.') {
        out.push(parent.to_owned());
        rest = parent;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_goes_to_its_field_or_the_closest_slot() {
        assert_eq!(
            slot_candidates("child.documents[0].number"),
            [
                "child.documents[0].number",
                "child.documents.number",
                "child.documents",
                "child"
            ]
        );
        let values = Fields::default();
        let mut form = FormBuilder::new(Lang::En, &values);
        form.group("child")
            .field("child.given_names", "text")
            .field("child.nationalities", "text");
        form.group("best_interest")
            .field("best_interest.date", "date");
        form.group("escort")
            .field("escort_officers[0].name", "text");
        let errors = BTreeMap::from([
            (
                "child.nationalities[1]".to_owned(),
                "not a country".to_owned(),
            ),
            ("best_interest".to_owned(), "is required".to_owned()),
            ("payload".to_owned(), "elsewhere".to_owned()),
            ("escort_officers".to_owned(), "name one".to_owned()),
        ]);
        assert_eq!(form.place_errors(errors), ["elsewhere"]);
        assert_eq!(form.groups[0].inputs[1].error, "not a country");
        assert_eq!(form.groups[1].error, "is required");
        assert_eq!(form.groups[2].inputs[0].error, "name one");
        assert_eq!(
            label_id("child.documents[0].number"),
            "f-child-documents-0-number"
        );
    }
}
