//! A gateway's refusal as data: a stable reason code and its named parameters,
//! rendered in the reader's language from `locales/{es,en}/refusals.ftl`.
//!
//! The gateway sends every refusal of an Agency API call as a
//! `google.rpc.ErrorInfo` detail (reason = code, domain = [`DOMAIN`],
//! metadata = parameters) beside the English sentence in the status message,
//! which stays for `grpcurl` and logs. A peer's refusal of a delivered message
//! travels the same way in the receipt (`ReceiptBody.case_refusal_detail`).

use std::collections::BTreeMap;

use fluent_bundle::FluentValue;
use retorno_proto::v1::RefusalDetail;
use tonic_types::StatusExt;

use crate::i18n::Lang;

/// The `ErrorInfo` domain of retorno's reason codes.
pub const DOMAIN: &str = "retorno.v1";

/// The parameter that names the field a refusal is about, as the gateway's
/// rules name it (`advance_notice.best_interest.determined_at`): the console
/// shows the refusal next to that field.
pub const FIELD: &str = "field";

/// Why the gateway refused, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The stable reason code, e.g. `outside-reception-hours`.
    pub code: String,
    /// Its named parameters, e.g. `field`, `earliest`.
    pub params: BTreeMap<String, String>,
    /// The gateway's English sentence (for logs, and when no translation exists).
    pub message: String,
}

impl Refusal {
    /// The refusal a status carries, if the gateway sent one as data. A status
    /// without retorno's `ErrorInfo` (a transport failure, an older gateway)
    /// gives `None`: show its message as it is.
    pub fn from_status(status: &tonic::Status) -> Option<Refusal> {
        let info = status.get_details_error_info()?;
        (info.domain == DOMAIN).then(|| Refusal {
            code: info.reason,
            params: info.metadata.into_iter().collect(),
            message: status.message().to_owned(),
        })
    }

    /// The refusal a receipt or timeline carries.
    pub fn from_detail(detail: &RefusalDetail) -> Refusal {
        Refusal {
            code: detail.code.clone(),
            params: detail.params.clone().into_iter().collect(),
            message: detail.message.clone(),
        }
    }

    /// The field the refusal is about, if it names one.
    pub fn field(&self) -> Option<&str> {
        self.params.get(FIELD).map(String::as_str)
    }

    /// The Fluent message id of this refusal: `refused-<code>`.
    pub fn message_id(&self) -> String {
        format!("refused-{}", self.code)
    }

    /// The refusal in the reader's language. A code that the files do not
    /// (yet) translate shows the gateway's English sentence.
    pub fn render(&self, lang: Lang) -> String {
        let id = self.message_id();
        if !Lang::En.has(&id) {
            return self.message.clone();
        }
        // Where the reader types a zone (`--tz`), it keeps its IANA name.
        let typed_zone = matches!(
            self.code.as_str(),
            "time-zone-mismatch" | "unknown-time-zone"
        );
        let mut named: Vec<(&str, String)> = self
            .params
            .iter()
            .map(|(name, value)| match name.as_str() {
                "time_zone" if !typed_zone => {
                    (name.as_str(), crate::words::dates::zone_name(value, lang))
                }
                _ => (name.as_str(), named(name, value, lang)),
            })
            .collect();
        // The latest allowed time before the one refused comes first among
        // the nearest allowed ones (the messages list them as one).
        let before = named
            .iter()
            .find(|(name, _)| *name == "before")
            .map(|(_, value)| value.clone())
            .filter(|before| !before.is_empty());
        if let (Some(before), Some((_, slots))) =
            (before, named.iter_mut().find(|(name, _)| *name == "slots"))
        {
            *slots = if slots.is_empty() {
                before
            } else {
                format!("{before}; {slots}")
            };
        }
        let args: Vec<(&str, FluentValue<'_>)> = named
            .iter()
            .map(|(name, value)| (*name, FluentValue::from(value.as_str())))
            .collect();
        lang.text(&id, &args)
    }
}

/// A parameter as its reader names it: a case's state (`state`), a step
/// (`step`, and the list `allowed`) and a role (`role`, and the list
/// `roles`) by their names in the reader's language, as the timeline and the
/// console name them, instead of the codes the gateway sends
/// (`ARRIVAL_AGREED`, `arrival_response`, `destination-authority`); an
/// instant (`arrival`, `earliest`, `before`, and the list `slots`) with its
/// weekday at the local time its RFC 3339 offset says (`viernes 2026-12-04
/// 15:45`); an empty `allowed` as nothing more. A value the files do not name
/// stays as it came.
fn named(name: &str, value: &str, lang: Lang) -> String {
    let step = |kind: &str| {
        if Lang::En.has(&format!("kind-{kind}")) {
            crate::words::kind(kind, lang)
        } else {
            kind.to_owned()
        }
    };
    let role = |role: &str| crate::words::role(role, lang);
    let instant = |value: &str| match jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%:z", value)
        .and_then(|parsed| parsed.to_datetime())
    {
        Ok(local) => crate::words::dates::weekday_compact(local, lang),
        Err(_) => value.to_owned(),
    };
    match name {
        "arrival" | "earliest" | "before" => instant(value),
        "slots" if !value.is_empty() => value
            .split(", ")
            .map(instant)
            .collect::<Vec<_>>()
            .join("; "),
        "state" => retorno_proto::v1::CaseState::from_str_name(&format!("CASE_STATE_{value}"))
            .map_or_else(
                || value.to_owned(),
                |state| crate::words::state(state, lang),
            ),
        "step" => step(value),
        "allowed" if value.is_empty() => lang.text("refusal-nothing-follows", &[]),
        "allowed" => value.split(", ").map(step).collect::<Vec<_>>().join("; "),
        "role" => role(value),
        "roles" => value.split(" or ").map(role).collect::<Vec<_>>().join("; "),
        _ => value.to_owned(),
    }
}

/// A failed call in the reader's language: the refusal if the gateway sent
/// one as data, else the status message as it came.
pub fn render_status(status: &tonic::Status, lang: Lang) -> String {
    match Refusal::from_status(status) {
        Some(refusal) => refusal.render(lang),
        None => status.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_without_retornos_error_info_is_not_a_refusal() {
        let plain = tonic::Status::invalid_argument("payload: is required");
        assert_eq!(Refusal::from_status(&plain), None);
        assert_eq!(render_status(&plain, Lang::Es), "payload: is required");
    }

    #[test]
    fn a_refusal_survives_the_status_and_falls_back_to_the_gateways_sentence() {
        let details = tonic_types::ErrorDetails::with_error_info(
            "no-such-code-yet",
            DOMAIN,
            [("field".to_owned(), "advance_notice.child".to_owned())],
        );
        let status = tonic::Status::with_error_details(
            tonic::Code::InvalidArgument,
            "advance_notice.child: is required",
            details,
        );
        let refusal = Refusal::from_status(&status).expect("an ErrorInfo was attached");
        assert_eq!(refusal.code, "no-such-code-yet");
        assert_eq!(refusal.field(), Some("advance_notice.child"));
        assert_eq!(
            refusal.render(Lang::Es),
            "advance_notice.child: is required"
        );
    }
}

#[cfg(test)]
mod names {
    use super::*;

    fn refused(code: &str, params: &[(&str, &str)]) -> Refusal {
        Refusal {
            code: code.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            message: String::new(),
        }
    }

    /// A step out of order reads in the words of the timeline, not the
    /// gateway's codes.
    #[test]
    fn states_steps_and_roles_are_named_in_the_readers_language() {
        let refusal = refused(
            "out-of-order",
            &[
                ("case", "MX-2026-0001"),
                ("state", "ARRIVAL_AGREED"),
                ("step", "arrival_response"),
                ("allowed", "handoff_ack, case_summary, case_withdrawal"),
            ],
        );
        assert_eq!(
            refusal.render(Lang::Es),
            "El caso MX-2026-0001 está en «Arribo acordado»: ahora no se puede enviar «Respuesta a la propuesta de arribo». Lo que puede seguir: Acuse de entrega; Resumen del caso; Desistimiento de la repatriación."
        );
        let roles = refused(
            "role-may-not-send",
            &[
                ("role", "child-protection"),
                ("step", "arrival_proposal"),
                ("roles", "destination-authority"),
            ],
        );
        assert_eq!(
            roles.render(Lang::Es),
            "Quien tiene el rol «institución de protección de la niñez» no puede enviar «Propuesta de arribo»; lo envía: autoridad del país de destino."
        );
        // A value the files do not name stays as it came.
        assert_eq!(named("state", "SOMETHING_NEW", Lang::Es), "SOMETHING_NEW");
        // A closed case allows nothing more; a zone the reader types keeps its name.
        assert_eq!(named("allowed", "", Lang::Es), "nada: el caso está cerrado");
        let typed = refused(
            "time-zone-mismatch",
            &[
                ("field", "time_zone"),
                ("given", "America/Mexico_City"),
                ("point", "GT-TECUN-UMAN"),
                ("time_zone", "America/Guatemala"),
            ],
        );
        assert!(
            typed
                .render(Lang::Es)
                .ends_with("está en America/Guatemala."),
            "{}",
            typed.render(Lang::Es)
        );
        // Instants read at the point's local time, the latest before first.
        let night = refused(
            "outside-reception-hours",
            &[
                ("arrival", "2026-12-04T21:30:00-06:00"),
                ("night", "yes"),
                ("alone", "yes"),
                ("point", "GT-TECUN-UMAN"),
                ("start", "08:00"),
                ("end", "16:00"),
                ("time_zone", "America/Guatemala"),
                ("before", "2026-12-04T15:45:00-06:00"),
                (
                    "slots",
                    "2026-12-05T08:00:00-06:00, 2026-12-07T08:00:00-06:00",
                ),
            ],
        );
        assert_eq!(
            night.render(Lang::Es),
            "El arribo del viernes 2026-12-04 21:30 es un arribo vespertino o nocturno, fuera del horario de recepción para NNA no acompañados o separados en GT-TECUN-UMAN (08:00–16:00, hora de Guatemala). Horarios permitidos más cercanos: viernes 2026-12-04 15:45; sábado 2026-12-05 08:00; lunes 2026-12-07 08:00."
        );
    }
}

#[cfg(test)]
mod every_code {
    use retorno_proto::refusal::Code;

    use super::*;

    /// A code the gateway can send and a language cannot say would show the
    /// gateway's English sentence to a Spanish reader: refused here instead.
    #[test]
    fn every_reason_code_has_a_message_in_every_language() {
        let mut missing = Vec::new();
        for code in Code::ALL {
            let id = format!("refused-{}", code.as_str());
            for lang in Lang::ALL {
                if !lang.has(&id) {
                    missing.push(format!("{}/refusals.ftl: {id}", lang.tag()));
                }
            }
        }
        assert!(missing.is_empty(), "missing messages: {missing:#?}");
    }
}
