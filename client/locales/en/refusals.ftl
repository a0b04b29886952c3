# Why a gateway refused a message: one message per reason code
# (`refused-<code>`), with the named parameters the code carries.
# Each message has its pair in ../es/refusals.ftl.

## Field rules: `field` names the field by its proto path.
refused-field-required = { $field }: is required.
refused-field-too-long = { $field }: is longer than { $max } characters.
refused-field-unknown-value = { $field }: { $value } is not a value this version knows.
refused-field-not-uuid = { $field }: is not a UUID.
refused-field-not-uuid-v7 = { $field }: is not a UUIDv7 (time-ordered); leave it empty and the gateway assigns one.
refused-field-not-country = { $field }: “{ $value }” is not a country code; give two letters of ISO 3166-1, such as GT or MX.
refused-field-timestamp-out-of-range = { $field }: is not a time between the years 0001 and 9999.
refused-field-bad-date = { $field }: is not a valid date from 1900 to 2200.
refused-field-not-a-child = { $field }: { $years } is not the age of a child (under 18).
refused-field-bad-case-id = { $field }: must be 1 to 128 characters of letters, digits and - _ . : /
refused-field-no-section = { $field }: has no section; give at least one.
refused-field-no-readers = { $field }: name at least one role that may read this section.
refused-field-control-characters = { $field }: holds control characters (a line break, a tab); write it on one line.
refused-field-unknown-payload = { $field }: is missing, or of a kind this gateway does not know.
refused-best-interest-missing = { $field }: no best-interest determination. No return without a determination by a child-protection or judicial authority.
refused-best-interest-authority = { $field }: the best-interest determination must be made by a child-protection or judicial authority, not by migration; no agreement between { $country } and { $other } relaxes this.
refused-best-interest-outcome = { $field }: the determination does not find return in the child's best interest, so no return can be notified.

## The Agency API.
refused-not-a-peer = { $field }: { $country } is not a peer of this gateway (peers: { $peers }).
refused-message-too-large = The message is over this gateway's limit of { $max } bytes.
refused-rate-limited = Too many messages at once; try again in { $retry_ms } ms.
refused-not-an-agency = Your certificate is not an agency's.
refused-message-id-conflict = { $field }: message { $message_id } was accepted before with different content; leave it empty or use a new one.
refused-message-unknown = This gateway has accepted no message { $message_id }.
refused-case-unknown = This gateway knows no case { $case }.
refused-not-shown-to-delegate = Under { $country }'s delegation, { $acting }'s consulate reads only cases of which { $country } is the origin and { $acting } is not the destination.
refused-cursor-beyond = { $field }: { $cursor } is beyond the last inbox item ({ $head }).
refused-statistics-not-allowed = Statistics are given to the destination authority and child protection, not to consulates.

## The case rules.
refused-out-of-order = Case { $case } is at "{ $state }": "{ $step }" may not be sent now. What may follow: { $allowed }.
refused-no-such-case = There is no case { $case } here.
refused-case-exists = Case { $case } exists already (at "{ $state }"); an advance notice opens a case once.
refused-case-id-prefix = { $field }: a case opened by { $country } must start with { $prefix }.
refused-role-may-not-send = The role "{ $role }" may not send "{ $step }"; it is sent by: { $roles }.
refused-not-a-party = Case { $case } is between { $destination } and { $origin }; { $country } may not write to it.
refused-wrong-side = "{ $step }" is sent by the { $side ->
        [origin] origin
       *[destination] destination
    } ({ $country }) of case { $case }.
refused-delegation-own-country = { $field }: { $country } is the sender's own country; a delegation is to another country's consulate.
refused-delegation-not-consulate = A delegation lets { $acting }'s consulate act for { $country }; the role "{ $role }" may not.
refused-delegation-not-listed = { $country } lists no delegation to { $acting }'s consulate, so it may not act for { $country }.
refused-delegated-not-origin = { $acting }'s consulate acts for { $country } only in cases of which { $country } is the origin; case { $case } returns a child to { $case_origin }.
refused-delegated-is-destination = { $acting } is the destination of case { $case }; its consulate cannot act for { $country } in it.
refused-policy-unknown = { $country }'s reception policy is not known here yet; try again once { $country }'s gateway is reachable.
refused-policy-unknown-final = { $country }'s reception policy was not known when the message arrived; it is refused for good. Send it again as a new message.
refused-no-open-proposal = Case { $case } has no open proposal: it was countered or declined. Wait for the destination's new proposal.
refused-proposal-id-mismatch = { $field }: the open proposal of case { $case } is { $open }, not { $given }.
refused-family-split = { $field }: families travel together. Family group { $group } is { $members }.
refused-escort-required = { $field }: case { $case } is of a child travelling { $companionship }; the proposal must name at least one escort officer.
refused-unknown-point-of-entry = { $field }: { $point } is not a point of entry of { $country }.
refused-time-zone-mismatch = { $field }: { $given } was given, but { $point } is in { $time_zone }.
refused-unknown-time-zone = The time zone { $time_zone } of { $point } is unknown to this gateway.
refused-minimum-notice = The arrival on { $arrival } ({ $time_zone } time) is sooner than the minimum notice of { $hours } hours at { $point }. Nearest allowed: { $slots }.
refused-no-reception-on-weekday = { $point } receives no children on that weekday (the arrival on { $arrival }, { $time_zone } time). Nearest allowed: { $slots }.
refused-outside-reception-hours = The arrival on { $arrival } is { $night ->
        [yes] an evening or night arrival
       *[no] outside the reception hours
    } for { $alone ->
        [yes] unaccompanied and separated children
       *[no] children with family
    } at { $point } ({ $start }–{ $end }, { $time_zone } time). Nearest allowed: { $slots }.
refused-capacity-full = { $point } can receive { $capacity } children on { $date }; { $taken } are agreed already.
refused-too-early = Too early: the earliest allowed is { $earliest } ({ $time_zone } time), under { $rule }.
refused-case-origin-invalid = The case's origin is not a country; tell your gateway's operator.
# Not a refusal: the remark on a handoff acknowledged long after the agreed arrival (the case timeline's flag).
refused-handoff-late = Late: acknowledged { $hours } hours after the agreed arrival on { $arrival } ({ $time_zone } time), over the { $late_after } hours that { $country } allows (handoff_late_after_hours).
# What may follow when nothing may.
refusal-nothing-follows = nothing: the case is closed
