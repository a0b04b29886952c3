# The `retorno` program, in English (it follows LANG). Each message has its pair
# in ../es/cli.ftl, with the same parameters.

# Said when the gateway accepted a message; `duplicate` is yes when it was accepted before.
cli-accepted = { $duplicate ->
        [yes] accepted (it had been accepted before)
       *[no] accepted
    }: message { $message_id }, case { $case } is now in state: { $state }
# A refused call: the gRPC status code, then why.
cli-refused = the gateway refused the request ({ $status }): { $reason }
cli-no-new-messages = no new messages
cli-acknowledged = acknowledged up to { $cursor }
cli-no-cases = no cases
cli-timeline = timeline:
cli-family-group = family group: { $group }
# A proposal in a case's first lines: its id, the point of entry and the arrival in its local time.
cli-proposal = { $id } at { $point } { $at }
cli-open-proposal = open proposal: { $proposal }
cli-agreed-arrival = agreed arrival: { $proposal } for { $cases }
cli-refused-here = REFUSED here: { $reason }
cli-refused-by-peer = REFUSED by the other country's gateway: { $reason }
cli-delivery-queued = queued
cli-delivery-delivered = delivered
cli-delivery-rejected = REJECTED by the peer
cli-delivery-received = received

# What the program prints of a case, a message and a delivery. The words of a
# step, a state and an enum's values are the console's (console.ftl: tl-*,
# state-*, companionship-*, o-*, date-*), so that both read the same.

# An inbox item's first line; `at` is in UTC, as the program's columns are.
cli-inbox-item = #{ $cursor }  received { $at }  from { $sender }  case { $case }  message { $message_id }
cli-inbox-no-body = #{ $cursor } (no body)
# An advance notice in the inbox: the child, whom the child travels with, the
# risk (left out where this role may not see it), the point of entry and the
# earliest day of travel.
cli-inbox-notice = advance notice: { $child }, { $companionship }, entry { $point } from { $date }
cli-inbox-notice-risk = advance notice: { $child }, { $companionship }, risk { $risk }, entry { $point } from { $date }
# A handoff acknowledgement in the inbox: the step's line, who received and when (UTC).
cli-inbox-handoff = { $line }; received by { $institution } at { $at }
# When `status` finds a message rejected: the program ends with an error.
cli-rejected-exit = the message was rejected by { $country }
cli-inbox-summary = case summary (retorno inbox --json shows it in full)
cli-inbox-unknown = (a kind this program does not know)
cli-inbox-redacted = (details your role does not need were left out)
# After an advance notice is accepted: how to follow its delivery.
cli-notice-stored = it is stored in the outbox; `retorno { $connection } status { $message_id }` shows its delivery
# Where a sent message stands (retorno status).
cli-delivered = delivered: message { $message_id } stored by { $country } at { $stored } (accepted here { $accepted })
cli-receipt = receipt: body sha256 { $sha256 }
cli-delivered-refused = but { $country }'s case rules refused it (it is kept there as refused): { $reason }
cli-queued = queued: message { $message_id } for { $country }, accepted { $accepted }; waiting for { $country }'s receipt
cli-rejected = rejected by { $country }: { $reason } ({ $code })
cli-unknown-state = unknown state for message { $message_id }
# A case's first line: its id, destination -> origin, state and companionship.
cli-case = case { $case }  { $destination } -> { $origin }  { $state }  ({ $companionship })
cli-case-row = { $case }  { $destination } -> { $origin }  { $state }
cli-relaxed = best-interest gate RELAXED under a bilateral agreement (determination by the migration authority)
# Who sent a message: a role's name, and a consulate acting under another country's delegation.
cli-role-destination-authority = destination-authority
cli-role-child-protection = child-protection
cli-role-consulate = consulate
cli-role-operator = operator
cli-role-unspecified = no role
cli-sender-delegated = { $acting } { $agency } ({ $role } of { $acting } acting for { $country }, under { $country }'s delegation)

# Why a connection failed, and what to check (retorno, and the console's gateway page).
conn-nothing-listens = nothing listens at { $address }: is the gateway running, and is { $address } its address?
conn-certificate-refused = the gateway at { $address } refused this certificate ({ $alert }): { $likely }
conn-likely-unknown-ca = it was not issued by a CA that gateway trusts (another country's agency CA, or another PKI)
conn-likely-decrypt-error = its issuer has the name of a CA that gateway trusts but another key (a CA from another PKI, or a dev PKI made again since)
conn-likely-revoked = it is revoked: ask for a new one
conn-likely-expired = it has expired or is not valid yet: renew it
conn-likely-other = likely another country's CA, revoked or expired; the gateway's log says which
conn-closed = the gateway at { $address } closed the connection under the call: if this is the first call, it most likely refused this certificate (another country's agency CA, another PKI, revoked or expired; the gateway's log says which); otherwise it may be stopping
conn-server-refused = the server at { $address } is not a gateway this profile trusts ({ $why }): check the profile's `ca` and `tls_name`
# Said when a command has no connection to use.
cli-no-connection = no connection given: pass --profile FILE or set RETORNO_PROFILE=FILE (retorno-gateway dev writes profiles under .retorno-dev/CC/profiles), or pass --gateway, --ca, --cert and --key
# --state with a value that is not a state.
cli-bad-state = --state: "{ $given }" is not a state: { $states }

# retorno console user: the staff accounts file and its commands.
console-user-added = added { $login } ({ $name }) to { $file }
console-user-disabled = disabled { $login } in { $file }
console-user-active = active
console-user-disabled-state = disabled
console-user-locked = locked
console-password-prompt = Password:{" "}
account-file = accounts file { $file }: { $problem }
account-no-such-login = no account has the login "{ $login }": see `retorno console user list`
account-empty-name = is empty: give the name the other country will read, e.g. "Ana Pérez"
account-short-password = must have at least { $min } characters
account-login-taken = "{ $login }" already exists: choose another, or disable the old one
account-bad-login = "{ $login }": use 1 to 64 letters, digits, '.', '-', '_' or '@', e.g. aperez
account-no-random = the system's random source failed; try again
account-salt = cannot make a salt: { $why }
account-hash = cannot be hashed: { $why }

# A profile file that cannot be used (in English the program says it as the system does).
profile-not-found = profile { $file }: there is no such file
profile-no-permission = profile { $file }: you may not read it
profile-unreadable = profile { $file }: cannot read it: { $why }
profile-invalid = profile { $file }: not a connection profile (TOML: gateway, ca, cert, key, tls_name): { $why }

# A PEM file (a certificate, a key, a CA) that cannot be used.
file-missing = { $file }: there is no such file
file-no-certificate = { $file }: it holds no certificate
file-no-crl = { $file }: it holds no revocation list (X509 CRL)
file-unusable = { $file }: it cannot be used: { $why }
file-of-profile = { $what } (the profile's `{ $field }`)
