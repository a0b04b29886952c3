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
