# retorno's web console, in English. Each message has its pair in
# ../es/console.ftl, with the same parameters.

language-switch = Language
skip-to-content = Skip to content
nav-label = Sections
nav-inbox = Inbox
nav-cases = Cases
nav-new-notice = New advance notice
log-out = Log out
log-in = Log in

## Start

listen-needs-tls = The console does not start: { $address } is not a loopback address, and without encryption anyone on the network could read the cases and the passwords. Give --tls-cert and --tls-key, or listen on 127.0.0.1.

## Login

login-title = Staff login
login-login = Login
login-password = Password
login-wrong = The login or the password is not right.
login-locked = After { $attempts } failed logins in a row, logging in is locked for { $minutes } minutes. Try again later, or ask whoever runs the console.
login-failed-file = The console cannot read its staff list. Tell whoever runs it.
login-failed-random = The console could not open a session. Try again.

## Posts the console refuses

post-refused-title = Form refused
post-refused-no-origin = The form came without saying which page sent it. Nothing was changed. Go back to the page and send it again.
post-refused-other-origin = The form does not come from this console. Nothing was changed.
post-refused-token = The form does not carry this session's key (the page may be old, or the session changed). Nothing was changed. Open the page again and send it again.
gateway-refused-title = The gateway did not answer as expected
gateway-unreachable = Your country's gateway could not be reached: { $reason }
not-found-title = Page not found
not-found = This page does not exist.
named-by-agency = { $official } (named by the agency)

## Inbox

inbox-title = Inbox
inbox-hint = New messages appear here without reloading the page.
inbox-empty = No messages are waiting.
inbox-ack = Mark as handled
inbox-redacted = without the details your role does not need
ack-bad-cursor = The form did not say which message to mark as handled.

## Message kinds

kind-advance_notice = Advance notice of return
kind-case_summary = Case summary
kind-arrival_proposal = Arrival proposal
kind-arrival_response = Answer to the arrival proposal
kind-handoff_ack = Handoff acknowledgement
kind-reception_confirmation = Reception confirmation
kind-follow_up_report = Follow-up report
kind-case_withdrawal = Withdrawal of the return
kind-unknown = A message of an unknown kind

## Steps a case allows

step-advance_notice = Send an advance notice
step-case_summary = Write the case summary
step-arrival_proposal = Propose an arrival
step-arrival_response = Answer the proposal
step-handoff_ack = Acknowledge the handoff
step-reception_confirmation = Confirm reception
step-follow_up_report = Report a follow-up
step-case_withdrawal = Withdraw the return

## Case states

state-unspecified = no state
state-notified = Notified
state-summary-shared = Summary shared
state-arrival-proposed = Arrival proposed
state-awaiting-proposal = Awaiting a proposal
state-arrival-agreed = Arrival agreed
state-handed-over = Handed over
state-received = Received
state-follow-up = Follow-up
state-withdrawn = Withdrawn

companionship-unspecified = not given
companionship-unaccompanied = Unaccompanied
companionship-separated = Separated
companionship-with-family = With family

## Cases

cases-title = Cases
cases-counts = Cases per state
cases-none = No case matches these filters.
filter-state = State
filter-any = Any
filter-point = Point of entry
filter-arrival = Arrival date
filter-country = Country
filter-unaccompanied = Unaccompanied only
filter-apply = Filter
case-title = Case
case-id = Case
case-state = State
case-countries = Countries (destination → origin)
case-companionship = Companionship
case-arrival = Arrival
case-steps = What you can do now
case-no-steps = Your agency has no step to take on this case for now.
case-timeline = Timeline
timeline-refused = Refused:

## Dates

date-time = { $day } { $month } { $year }, { $time } ({ $zone } time)
date-time-weekday = { $weekday } { $day } { $month } { $year }, { $time } ({ $zone } time)
date-time-compact = { $date } { $time } ({ $zone } time)
date-time-weekday-compact = { $weekday } { $date } { $time }
date-day = { $weekday } { $day } { $month }
date = { $day } { $month } { $year }
month-1 = January
month-2 = February
month-3 = March
month-4 = April
month-5 = May
month-6 = June
month-7 = July
month-8 = August
month-9 = September
month-10 = October
month-11 = November
month-12 = December
weekday-1 = Monday
weekday-2 = Tuesday
weekday-3 = Wednesday
weekday-4 = Thursday
weekday-5 = Friday
weekday-6 = Saturday
weekday-7 = Sunday
zone-America-Guatemala = Guatemala
zone-America-Mexico_City = Mexico City
zone-America-Tegucigalpa = Honduras
zone-America-El_Salvador = El Salvador
zone-America-Costa_Rica = Costa Rica
zone-America-Managua = Nicaragua
zone-America-Panama = Panama
zone-America-Belize = Belize
zone-America-Los_Angeles = Los Angeles
zone-America-Tijuana = Tijuana

## Program

console-listening = The console is serving at { $url } (Ctrl+C stops it).

## Forms

step-sent = { $what }: sent. The gateway accepted it and will deliver it to the other country.
form-refused-see-fields = Not sent: see the marked fields.
form-bad-date = "{ $value }" is not a date: write it as 2026-12-04.
form-bad-number = "{ $value }" is not a number.
o-none = (not given)
notice-title = New advance notice of return
notice-hint = Fill in what you know. The gateway checks the notice and tells you, next to each field, what is missing.
notice-send = Send the advance notice
g-case = Where the notice goes
g-child = The child
g-companions = Companions and family group
g-protection = Protection concerns
g-best_interest = Best-interest determination
g-consular_interview = Consular interview
g-transport = Travel
g-origin_contact = Contact in the country of origin
f-recipient_country = Country of origin (recipient), e.g. GT
f-case_id = Case number (optional; one is assigned if left empty)
f-child-given_names = Given names
f-child-family_names = Family names
f-child-birth_date = Date of birth
f-child-estimated_age_years = Estimated age (years), if the date of birth is not known
f-child-sex = Sex
f-child-nationalities = Nationalities (country codes, comma-separated)
f-child-languages = Languages spoken (e.g. es, mam, quc)
f-child-documents-0-kind = Identity document
f-child-documents-0-number = Document number
f-child-documents-0-issuing_country = Issuing country
f-companionship = Companionship
f-family_group_id = Family group (the same for siblings travelling together)
f-protection_concerns = What changes how the child is received
f-risk_level = Risk level
f-best_interest-authority_kind = Who determined it
f-best_interest-authority_name = Determining institution
f-best_interest-date = Date of the determination
f-best_interest-outcome = Outcome
f-consular_interview-consulate = Consulate that interviewed
f-consular_interview-date = Date of the interview
f-transport-mode = Means of transport
f-transport-point_of_entry = Point of entry (code, e.g. GT-TECUN-UMAN)
f-transport-earliest_date = Earliest possible travel date
f-origin_contact-family_located = The family was located
f-origin_contact-contact_name = Contact person
f-origin_contact-contact_phone = Contact phone
f-origin_contact-relationship = Relationship
o-female = Female
o-male = Male
o-unknown = Unknown
o-passport = Passport
o-birth-certificate = Birth certificate
o-national-id = National identity document
o-consular-id = Consular identity document
o-other = Other
o-unaccompanied = Unaccompanied
o-separated = Separated
o-with-family = With family
o-trafficking-victim = Trafficking victim
o-trafficking-risk = At risk of trafficking
o-asylum-seeker = Asylum seeker
o-refugee = Refugee
o-crime-victim-on-route = Victim of crime on the route
o-child-worker = Child worker
o-disability = Disability
o-health = Health
o-pregnancy = Pregnancy
o-indigenous-language = Speaks an indigenous language
o-low = Low
o-medium = Medium
o-high = High
o-child-protection = Child-protection agency
o-judicial = Judicial authority
o-migration = Migration authority
o-return = Return
o-return-with-conditions = Return with conditions
o-stay = Stay
o-air = Air
o-land = Land
o-sea = Sea

## Arrival

arrival-title = Arrival
arrival-agreed = Agreed arrival:
arrival-open = Proposal awaiting an answer:
arrival-slots = Allowed times: choose one to propose it
arrival-week = The week's reception hours
arrival-week-hint = The hours the country of origin publishes, in the point of entry's local time
arrival-show-point = Show this point
arrival-previous-week = Previous week
arrival-next-week = Next week
arrival-hours-family = With family:
arrival-hours-unaccompanied = Unaccompanied or separated:
arrival-closed = No reception
arrival-on-day = Arrival:
arrival-propose = Propose the arrival
arrival-answer = Answer the proposal
arrival-accept = Accept the proposal
arrival-counter = Send the counter-proposal
arrival-decline = Decline the proposal
arrival-no-points = The country of origin has published no point of entry; an arrival cannot be proposed yet.
form-bad-time = "{ $value }" is not a local date and time: choose a day and a time, e.g. 2026-12-04 10:00.
form-bad-value = "{ $value }" is not valid here.
g-proposal = Arrival proposal
g-counter = Counter-proposal
g-decline = Decline
f-point_of_entry = Point of entry
f-proposal_id = Proposal id (e.g. P1; one is assigned if left empty)
f-arrival = Arrival date and time (the point's local time)
f-transport_mode = Means of transport
f-transport_reference = Flight, or bus company and plate
f-escort_officers-0-name = Escort officer
f-escort_officers-0-institution = The officer's institution
f-counter-arrival = Another date and time (the point's local time)
f-counter-note = A note for the destination country
f-decline-reason = Reason
f-decline-text = Explanation (required when the reason is "Other")
o-outside-reception-hours = Outside reception hours
o-notice-too-short = Notice too short
o-no-capacity = No reception capacity
o-family-not-located = Family not located
o-risk-on-return = Risk on return

## Handoff, reception, follow-up, withdrawal

handoff-title = Handoff
reception-title = Reception and follow-up
withdraw-title = Withdrawal of the return
handoff-children = Children to receive
follow-ups-title = Follow-ups
follow-up-days = at { $days } days
follow-up-done = Follow-up at { $days } days: reported.
follow-up-overdue = Follow-up at { $days } days: overdue since { $due }.
follow-up-due = Follow-up at { $days } days: due on { $due }.
g-received_by = Who receives
g-reception = Reception
g-follow_up = Follow-up report
g-withdrawal = Withdrawal
f-received_by-name = Received by (name)
f-received_by-institution = Receiving institution
f-condition_notes = Notes on health and belongings
f-placement = Placement
f-placement_detail = Where, in words
f-days_since_return = Follow-up
f-status = Situation
f-notes = Notes
f-reason = Reason
f-text = Explanation (required when the reason is "Other")
o-placement-with-family = With family
o-reception-centre = In a reception centre
o-foster-care = In foster care
o-stable = Stable
o-at-risk = At risk
o-lost-contact = Contact lost
o-remigrated = Migrated again
o-protection-granted = International protection granted
o-local-integration = Integration in the destination country
o-best-interest-decision = Best-interest decision

## Case summary

summary-title = Case summary
summary-none = Your agency has received no summary of this case.
summary-withheld = Section withheld: not shared with your agency, or not included.
summary-compose = Write the case summary
summary-compose-hint = Each section is shared with the child-protection agency of the country of origin. Leave empty a section that does not apply.
yes = Yes
no = No
g-identity = Identity
g-best_interest_plan = Best-interest plan
g-health = Health
g-psychosocial = Psychosocial assessment
g-legal = Legal situation
g-education = Education
g-risks_on_return = Risks on return
g-recommendations = Recommendations
f-identity-verification = How identity was established
f-identity-aliases = Other names used (comma-separated)
f-best_interest_plan-plan = Plan
f-best_interest_plan-receiving_caregiver = Who will receive the child
f-health-conditions = Health conditions
f-health-medication = Medication
f-health-needs_medical_escort = Needs a medical escort
f-psychosocial-assessment = Assessment
f-psychosocial-assessed_by = Assessed by
f-legal-protection_claim = Protection claim
f-legal-asylum_claim = Asylum claim
f-legal-legal_representative = Legal representative
f-legal-guardian = Guardian
f-legal-notes = Legal notes
f-education-last_grade_completed = Last grade completed
f-education-notes = Notes on education
f-risks_on_return-level = Risk level
f-risks_on_return-description = Description of the risks
f-recommendations-items = Recommendations (one per line)

## The case timeline: one line per step, from the facts the gateway lets this role see.
tl-notice = Notice: { $companionship }
tl-notice-risk = Notice: { $companionship }, risk { $risk }
tl-summary = Case summary shared
tl-proposal = Proposal { $id } for { $children } child(ren) at { $point }: { $at }
tl-accepted = Accepted proposal { $id }
tl-countered = Countered proposal { $id }: { $at }
tl-declined = Declined proposal { $id }
tl-declined-reason = Declined proposal { $id }: { $reason }
tl-handoff = Handed over at { $point }, { $children } child(ren)
tl-received = Reception confirmed
tl-received-placement = Reception confirmed: { $placement }
tl-follow-up = Follow-up at { $days } days
tl-follow-up-status = Follow-up at { $days } days: { $status }
tl-withdrawn = Return withdrawn
tl-withdrawn-reason = Return withdrawn: { $reason }
