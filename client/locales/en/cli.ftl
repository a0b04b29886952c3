# The `retorno` program, in English (it follows LANG). Each message has its pair
# in ../es/cli.ftl, with the same parameters.

# Said when the gateway accepted a message; `duplicate` is yes when it was accepted before.
cli-accepted = { $duplicate ->
        [yes] accepted (it had been accepted before)
       *[no] accepted
    }: message { $message_id }, case { $case } is now { $state }
# A refused call: the gRPC status code, then why.
cli-refused = the gateway refused the request ({ $status }): { $reason }
cli-no-new-messages = no new messages
cli-acknowledged = acknowledged up to { $cursor }
cli-no-cases = no cases
cli-timeline = timeline:
cli-family-group = family group: { $group }
cli-open-proposal = open proposal: { $proposal }
cli-agreed-arrival = agreed arrival: { $proposal } for { $cases }
cli-refused-here = REFUSED here: { $reason }
cli-refused-by-peer = REFUSED by the other country's gateway: { $reason }
cli-delivery-queued = queued
cli-delivery-delivered = delivered
cli-delivery-rejected = REJECTED by the peer
cli-delivery-received = received
