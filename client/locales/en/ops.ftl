# The `retorno-gateway ops` commands (and `retorno-gateway rekey`), in English
# (follows LANG). Each message has its pair in ../es/ops.ftl, with the same parameters.

ops-status-head = { $country } gateway at { $now }: { $draining ->
        [yes] DRAINING
       *[no] serving
    }, store { $bytes } bytes
ops-peers = peers:
ops-peer = { $country }  { $connected ->
        [yes] connected
       *[no] DOWN
    }  queued { $queued }{ $oldest }  last receipt { $receipt }
ops-peer-oldest = , oldest { $age }
ops-peer-error = last error { $at }: { $error }
ops-certificates = certificates:
ops-certificate-expired = EXPIRED
ops-certificate-days = { $days } days left
ops-no-findings = went back in time: nothing found
ops-finding = FINDING { $kind } with { $peer }: { $count } message(s): { $description }
ops-finding-acknowledged = (acknowledged)
ops-more = more: --page { $token }

# A message's state in the log.
ops-state-queued = queued
ops-state-delivered = delivered
ops-state-rejected = REJECTED
ops-state-refused = refused
ops-state-received = received
# The columns of one message of the log.
ops-to = to { $peer }
ops-from = from { $peer }
ops-bytes = { $size } bytes
ops-case = case { $cases }
ops-inbox-cursor = inbox cursor { $cursor }
ops-envelope-purged = envelope purged { $at }
ops-id-not-kept = (id not kept)

ops-no-acknowledgement = no agency has acknowledged past it yet
ops-acknowledged-past = acknowledged past it by: { $agencies }
ops-requeueable = requeueable: `ops requeue` sends it again once the cause is fixed
ops-not-requeueable = not requeueable: { $reason }
ops-requeued = requeued { $id } (new sequence { $sequence })
ops-not-requeued = NOT requeued { $id }: { $reason }
ops-not-requeued-count = { $count } message(s) not requeued
# Why a message cannot be requeued, by the Operator API's code.
ops-requeue-unknown = this gateway accepted no message with this id
ops-requeue-queued = it is still queued: it goes out when the peer answers
ops-requeue-delivered = the peer stored it and gave a receipt
ops-requeue-refused = the peer stored it and its case rules refused it; that answer is final: send a new message instead
ops-requeue-gone = it was rejected before this gateway kept rejected envelopes; send a new message instead
ops-requeue-purged = retention removed its envelope storage.retention_withdrawn_days after the rejection; send a new message instead

ops-draining = draining: health reports NOT_SERVING; queued messages still go out
ops-resumed = resumed: health follows the gateway's checks again

# rekey: key ids, files and counts only.
ops-key = key { $id } ({ $file })
ops-key-not-configured = key { $id } (not in storage.keys)
ops-rekey-kept = { $count } envelope(s) kept (outbox, inbox, rejected messages kept for a requeue):
ops-rekey-under = { $count } sealed under { $key }
ops-rekey-clear = { $count } in the clear
ops-rekey-sealed = { $dry_run ->
        [yes] would seal
       *[no] sealed
    } { $count } envelope(s) again under { $key }
ops-rekey-retirable = no kept envelope needs { $files } now: remove it from storage.keys once no backup made before now is needed; the old copies left in the database files can then no longer be opened
