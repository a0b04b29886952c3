//! Why a gateway refuses, as data: a stable reason [`Code`] and its named
//! parameters ([`Reason`]), decided here once for the gateway (which sends
//! them) and the client (which renders `refused-<code>` from its message
//! files in the reader's language).
//!
//! On a refused Agency API call the reason travels as a `google.rpc.ErrorInfo`
//! detail (reason = code, domain = [`DOMAIN`], metadata = parameters) beside
//! the English sentence in the status message; in a receipt and a case
//! timeline it travels as a [`RefusalDetail`]. Times in parameters are RFC
//! 3339 in the point's local offset, with the zone's name as a parameter of
//! its own (`time_zone`), so that a reader can format them.

use std::collections::BTreeMap;

use crate::v1::RefusalDetail;

/// The `ErrorInfo` domain of retorno's reason codes.
pub const DOMAIN: &str = "retorno.v1";

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $text:literal,)*) => {
        /// A stable reason code: what rule a refused step or request broke.
        /// Codes are added, never renamed: clients keep messages by them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* $name,)*
        }

        impl Code {
            /// Every code, for a test that every language renders each one.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as it travels: kebab-case, e.g. `outside-reception-hours`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $text,)*
                }
            }
        }
    };
}

codes! {
    /// `field` is required and missing or blank.
    FieldRequired = "field-required",
    /// `field` is longer than `max` characters.
    FieldTooLong = "field-too-long",
    /// `field` holds `value`, which is not a value this version knows.
    FieldUnknownValue = "field-unknown-value",
    /// `field` is not a UUID.
    FieldNotUuid = "field-not-uuid",
    /// `field` is a UUID but not a time-ordered UUIDv7.
    FieldNotUuidV7 = "field-not-uuid-v7",
    /// `field` (`value`) is not a two-letter country code.
    FieldNotCountry = "field-not-country",
    /// `field` is a timestamp outside 0001-01-01..9999-12-31 or with bad nanoseconds.
    FieldTimestampOutOfRange = "field-timestamp-out-of-range",
    /// `field` is not a real calendar date from 1900 to 2200.
    FieldBadDate = "field-bad-date",
    /// `field` gives an age of `years`, which is not a child's (under 18).
    FieldNotAChild = "field-not-a-child",
    /// `field` is not 1 to 128 characters of letters, digits and `-_.:/`.
    FieldBadCaseId = "field-bad-case-id",
    /// `field` (a case summary) has no section.
    FieldNoSection = "field-no-section",
    /// `field` (a summary section's readers) names no role.
    FieldNoReaders = "field-no-readers",
    /// `field` holds control characters (a line break, a tab).
    FieldControlCharacters = "field-control-characters",
    /// The payload is missing or of a kind this version does not know (`known`).
    FieldUnknownPayload = "field-unknown-payload",
    /// The notice has no best-interest determination (`field`).
    BestInterestMissing = "best-interest-missing",
    /// The determination was made by `authority`, not child protection or a court.
    BestInterestAuthority = "best-interest-authority",
    /// The determination does not find return in the child's best interest.
    BestInterestOutcome = "best-interest-outcome",
    /// `country` is not a peer of this gateway (`peers`).
    NotAPeer = "not-a-peer",
    /// The message is `size` bytes, over the gateway's `max`.
    MessageTooLarge = "message-too-large",
    /// The agency is over its submit rate; retry in `retry_ms` milliseconds.
    RateLimited = "rate-limited",
    /// The caller's certificate is not an agency's.
    NotAnAgency = "not-an-agency",
    /// `message_id` was accepted before with different content.
    MessageIdConflict = "message-id-conflict",
    /// This gateway accepted no message `message_id`.
    MessageUnknown = "message-unknown",
    /// This gateway holds no case `case`.
    CaseUnknown = "case-unknown",
    /// A delegated consulate (`acting`) may not read this (`country`'s delegation).
    NotShownToDelegate = "not-shown-to-delegate",
    /// `cursor` is beyond the last inbox item `head`.
    CursorBeyond = "cursor-beyond",
    /// Statistics are for the destination authority and child protection.
    StatisticsNotAllowed = "statistics-not-allowed",
    /// Case `case` is `state`: `step` is not allowed now; `allowed` are.
    OutOfOrder = "out-of-order",
    /// There is no case `case` here.
    NoSuchCase = "no-such-case",
    /// Case `case` exists already (`state`).
    CaseExists = "case-exists",
    /// A case opened by `country` must start with `prefix`.
    CaseIdPrefix = "case-id-prefix",
    /// A `role` agency may not send `step`; `roles` send it.
    RoleMayNotSend = "role-may-not-send",
    /// Case `case` is between `destination` and `origin`; `country` is neither.
    NotAParty = "not-a-party",
    /// `step` is sent by the case's `side` (`country`).
    WrongSide = "wrong-side",
    /// A delegation names the sender's own `country`.
    DelegationOwnCountry = "delegation-own-country",
    /// Only a consulate may act for `country` under a delegation (`acting` sent as `role`).
    DelegationNotConsulate = "delegation-not-consulate",
    /// `country` lists no delegation to `acting`'s consulate.
    DelegationNotListed = "delegation-not-listed",
    /// `acting`'s consulate acts for `country` only in cases `country` receives.
    DelegatedNotOrigin = "delegated-not-origin",
    /// `acting` is the destination of case `case`: its consulate cannot act for `country`.
    DelegatedIsDestination = "delegated-is-destination",
    /// `country`'s reception policy is not known here yet: try again later.
    PolicyUnknown = "policy-unknown",
    /// `country`'s policy was not known when the message arrived: refused for good.
    PolicyUnknownFinal = "policy-unknown-final",
    /// Case `case` has no open proposal to answer.
    NoOpenProposal = "no-open-proposal",
    /// The open proposal of case `case` is `open`, not `given`.
    ProposalIdMismatch = "proposal-id-mismatch",
    /// Family group `group` (`members`) travels together; `missing`, `extra`.
    FamilySplit = "family-split",
    /// Case `case` is of a child travelling `companionship`: name an escort officer.
    EscortRequired = "escort-required",
    /// `point` is not a point of entry of `country` (`known`).
    UnknownPointOfEntry = "unknown-point-of-entry",
    /// `field` says `given`, but `point` is in `time_zone`.
    TimeZoneMismatch = "time-zone-mismatch",
    /// The point's time zone `time_zone` is unknown to this gateway.
    UnknownTimeZone = "unknown-time-zone",
    /// `arrival` is sooner than `point`'s minimum notice of `hours` hours; `slots`.
    MinimumNotice = "minimum-notice",
    /// `point` receives no children on `arrival`'s weekday; `before`, `slots`.
    NoReceptionOnWeekday = "no-reception-on-weekday",
    /// `arrival` is outside `point`'s reception hours `start`-`end`; `before`, `slots`.
    OutsideReceptionHours = "outside-reception-hours",
    /// `point` can receive `capacity` children on `date`; `taken` are agreed.
    CapacityFull = "capacity-full",
    /// The step is too early under `rule`; the earliest allowed is `earliest`.
    TooEarly = "too-early",
    /// The case's stored origin is not a country (a corrupt case).
    CaseOriginInvalid = "case-origin-invalid",
    /// Not a refusal but a remark on an accepted handoff (`TimelineEntry.flag_detail`):
    /// acknowledged `hours` hours after the agreed `arrival` (in `time_zone`), over
    /// `country`'s `late_after` hours (`[case] handoff_late_after_hours`).
    HandoffLate = "handoff-late",
}

/// A reason code with its named parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// Which rule.
    pub code: Code,
    /// Its named values, e.g. `field`, `max`, `earliest`.
    pub params: BTreeMap<String, String>,
}

impl Reason {
    /// A reason without parameters yet.
    pub fn new(code: Code) -> Reason {
        Reason {
            code,
            params: BTreeMap::new(),
        }
    }

    /// The reason with the parameter `name` set to `value`.
    pub fn with(mut self, name: &str, value: impl ToString) -> Reason {
        self.params.insert(name.to_owned(), value.to_string());
        self
    }

    /// The reason as a receipt or timeline carries it, with its English `message`.
    pub fn detail(&self, message: &str) -> RefusalDetail {
        RefusalDetail {
            code: self.code.as_str().to_owned(),
            params: self.params.clone().into_iter().collect(),
            message: message.to_owned(),
        }
    }

    /// The refusal of a call: status `code` with the English `message`, and
    /// this reason as a `google.rpc.ErrorInfo` detail.
    pub fn status(&self, code: tonic::Code, message: impl Into<String>) -> tonic::Status {
        use tonic_types::{ErrorDetails, StatusExt as _};
        let details = ErrorDetails::with_error_info(
            self.code.as_str(),
            DOMAIN,
            self.params
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        tonic::Status::with_error_details(code, message, details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit()),
                "{text}"
            );
        }
    }
}
