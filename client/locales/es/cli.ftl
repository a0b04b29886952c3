# El programa `retorno`, en español (sigue LANG). Cada mensaje tiene su par en
# ../en/cli.ftl, con los mismos parámetros.

# Se dice cuando la pasarela aceptó un mensaje; `duplicate` es yes si ya se había aceptado.
cli-accepted = { $duplicate ->
        [yes] aceptado (ya se había aceptado antes)
       *[no] aceptado
    }: mensaje { $message_id }, el caso { $case } está ahora en { $state }
# Una solicitud rechazada: el código de estado gRPC y el motivo.
cli-refused = la pasarela rechazó la solicitud ({ $status }): { $reason }
cli-no-new-messages = no hay mensajes nuevos en la bandeja de entrada
cli-acknowledged = acuse de recibo hasta { $cursor }
cli-no-cases = no hay casos
cli-timeline = historial del caso:
cli-family-group = grupo familiar: { $group }
cli-open-proposal = propuesta de arribo abierta: { $proposal }
cli-agreed-arrival = arribo acordado: { $proposal } para { $cases }
cli-refused-here = RECHAZADO aquí: { $reason }
cli-refused-by-peer = RECHAZADO por la pasarela del otro país: { $reason }
cli-delivery-queued = en cola
cli-delivery-delivered = entregado
cli-delivery-rejected = RECHAZADO por la otra pasarela
cli-delivery-received = recibido
