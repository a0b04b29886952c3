# El programa `retorno`, en español (sigue LANG). Cada mensaje tiene su par en
# ../en/cli.ftl, con los mismos parámetros.

# Se dice cuando la pasarela aceptó un mensaje; `duplicate` es yes si ya se había aceptado.
cli-accepted = { $duplicate ->
        [yes] aceptado (ya se había aceptado antes)
       *[no] aceptado
    }: mensaje { $message_id }, el caso { $case } queda en estado: { $state }
# Una solicitud rechazada: el código de estado gRPC y el motivo.
cli-refused = la pasarela rechazó la solicitud ({ $status }): { $reason }
cli-no-new-messages = no hay mensajes nuevos en la bandeja de entrada
cli-acknowledged = acuse de recibo hasta { $cursor }
cli-no-cases = no hay casos
cli-timeline = historial del caso:
cli-family-group = grupo familiar: { $group }
# Una propuesta en las primeras líneas de un caso: su identificador, el punto de recepción y el arribo en su hora local.
cli-proposal = { $id } en { $point }, { $at }
cli-open-proposal = propuesta de arribo abierta: { $proposal }
cli-agreed-arrival = arribo acordado: { $proposal } para { $cases }
cli-refused-here = RECHAZADO aquí: { $reason }
cli-refused-by-peer = RECHAZADO por la pasarela del otro país: { $reason }
cli-delivery-queued = en cola
cli-delivery-delivered = entregado
cli-delivery-rejected = RECHAZADO por la otra pasarela
cli-delivery-received = recibido

# Lo que el programa muestra de un caso, un mensaje y una entrega. Las palabras
# de cada paso, estado y valor son las de la consola (console.ftl: tl-*,
# state-*, companionship-*, o-*, date-*), para que ambos digan lo mismo.

# La primera línea de un mensaje de la bandeja; `at` va en UTC, como las columnas del programa.
cli-inbox-item = #{ $cursor }  recibido { $at }  de { $sender }  caso { $case }  mensaje { $message_id }
cli-inbox-no-body = #{ $cursor } (sin contenido)
# Un aviso previo en la bandeja: la niña, niño o adolescente, con quién viaja,
# el riesgo (se omite si su función no lo ve), el punto de recepción y la
# fecha más temprana de viaje.
cli-inbox-notice = aviso previo: { $child }, { $companionship }, punto de recepción { $point } desde el { $date }
cli-inbox-notice-risk = aviso previo: { $child }, { $companionship }, riesgo { $risk }, punto de recepción { $point } desde el { $date }
# Un acuse de entrega en la bandeja: la línea del paso, quién recibió y cuándo (UTC).
cli-inbox-handoff = { $line }; recibido por { $institution } el { $at }
# Cuando `status` encuentra un mensaje rechazado: el programa termina con error.
cli-rejected-exit = { $country } rechazó el mensaje
cli-inbox-summary = resumen del caso (retorno inbox --json lo muestra completo)
cli-inbox-unknown = (un tipo de mensaje que este programa no conoce)
cli-inbox-redacted = (se omitieron los datos que su función no necesita)
# Después de aceptar un aviso previo: cómo seguir su entrega.
cli-notice-stored = queda guardado en la bandeja de salida; `retorno { $connection } status { $message_id }` muestra su entrega
# En qué está un mensaje enviado (retorno status).
cli-delivered = entregado: el mensaje { $message_id } quedó guardado en { $country } el { $stored } (aceptado aquí el { $accepted })
cli-receipt = acuse de recibo: sha256 del contenido { $sha256 }
cli-delivered-refused = pero las reglas del caso de { $country } lo rechazaron (allí se guarda como rechazado): { $reason }
cli-queued = en cola: mensaje { $message_id } para { $country }, aceptado el { $accepted }; se espera el acuse de recibo de { $country }
cli-rejected = rechazado por { $country }: { $reason } ({ $code })
cli-unknown-state = estado desconocido del mensaje { $message_id }
# La primera línea de un caso: número, destino -> origen, estado y acompañamiento.
cli-case = caso { $case }  { $destination } -> { $origin }  { $state }  ({ $companionship })
cli-case-row = { $case }  { $destination } -> { $origin }  { $state }
cli-relaxed = determinación del interés superior FLEXIBILIZADA por un acuerdo bilateral (la determinó la autoridad migratoria)
# Quién envió un mensaje: el nombre de su función, y un consulado que actúa por delegación de otro país.
cli-role-destination-authority = autoridad del país de destino
cli-role-child-protection = institución de protección de la niñez
cli-role-consulate = consulado
cli-role-operator = operador
cli-role-unspecified = sin rol
cli-sender-delegated = { $acting } { $agency } ({ $role } de { $acting } en nombre de { $country }, por delegación de { $country })

# Por qué falló una conexión y qué revisar (retorno, y la página de error de la consola).
conn-nothing-listens = nada atiende en { $address }: ¿está funcionando la pasarela, y es { $address } su dirección?
conn-certificate-refused = la pasarela en { $address } rechazó este certificado ({ $alert }): { $likely }
conn-likely-unknown-ca = no lo emitió una CA en la que esa pasarela confíe (la CA de las instituciones de otro país, u otra PKI)
conn-likely-decrypt-error = su emisor tiene el nombre de una CA en la que esa pasarela confía, pero otra clave (una CA de otra PKI, o una PKI de práctica creada de nuevo desde entonces)
conn-likely-revoked = está revocado: solicite uno nuevo
conn-likely-expired = venció o todavía no es válido: renuévelo
conn-likely-other = probablemente la CA de otro país, o está revocado o vencido; el registro de la pasarela dice cuál
conn-closed = la pasarela en { $address } cerró la conexión durante la llamada: si es la primera llamada, lo más probable es que haya rechazado este certificado (la CA de las instituciones de otro país, otra PKI, revocado o vencido; el registro de la pasarela dice cuál); si no, puede estar deteniéndose
conn-server-refused = el servidor en { $address } no es una pasarela en la que este perfil confíe ({ $why }): revise `ca` y `tls_name` en el perfil
# Cuando un comando no tiene conexión que usar.
cli-no-connection = falta la conexión: indique --profile ARCHIVO o defina RETORNO_PROFILE=ARCHIVO (retorno-gateway dev escribe perfiles en .retorno-dev/CC/profiles), o indique --gateway, --ca, --cert y --key
# --state con un valor que no es un estado.
cli-bad-state = --state: «{ $given }» no es un estado: { $states }

# retorno console user: el archivo de cuentas del personal y sus comandos.
console-user-added = se agregó { $login } ({ $name }) a { $file }
console-user-disabled = se desactivó { $login } en { $file }
console-user-active = activa
console-user-disabled-state = desactivada
console-user-locked = bloqueada
console-password-prompt = Contraseña:{" "}
account-file = archivo de cuentas { $file }: { $problem }
account-no-such-login = ninguna cuenta tiene el usuario «{ $login }»: vea `retorno console user list`
account-empty-name = está vacío: indique el nombre que leerá el otro país, p. ej. «Ana Pérez»
account-short-password = debe tener al menos { $min } caracteres
account-login-taken = «{ $login }» ya existe: elija otro, o desactive la cuenta anterior
account-bad-login = «{ $login }»: use de 1 a 64 letras, dígitos, «.», «-», «_» o «@», p. ej. aperez
account-no-random = falló la fuente de azar del sistema; intente de nuevo
account-salt = no se pudo crear la sal del hash: { $why }
account-hash = no se pudo calcular su hash: { $why }

# Un archivo de perfil que no se puede usar.
profile-not-found = perfil { $file }: ese archivo no existe
profile-no-permission = perfil { $file }: usted no tiene permiso para leerlo
profile-unreadable = perfil { $file }: no se puede leer: { $why }
profile-invalid = perfil { $file }: no es un perfil de conexión (TOML: gateway, ca, cert, key, tls_name): { $why }

# Un archivo PEM (un certificado, una clave, una CA) que no se puede usar.
file-missing = { $file }: ese archivo no existe
file-no-certificate = { $file }: no contiene ningún certificado
file-no-crl = { $file }: no contiene ninguna lista de revocación (X509 CRL)
file-unusable = { $file }: no se puede usar: { $why }
file-of-profile = { $what } (el `{ $field }` del perfil)
