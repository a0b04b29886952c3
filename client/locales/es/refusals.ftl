# Por qué una pasarela rechazó un mensaje: un mensaje por código de motivo
# (`refused-<código>`), con los parámetros con nombre que el código lleva.
# Cada mensaje tiene su par en ../en/refusals.ftl.

## Reglas de los campos: `field` nombra el campo por su ruta en el proto.
refused-field-required = { $field }: es obligatorio.
refused-field-too-long = { $field }: tiene más de { $max } caracteres.
refused-field-unknown-value = { $field }: { $value } no es un valor que esta versión conozca.
refused-field-not-uuid = { $field }: no es un UUID.
refused-field-not-uuid-v7 = { $field }: no es un UUIDv7 (ordenado en el tiempo); déjelo vacío y la pasarela asignará uno.
refused-field-not-country = { $field }: «{ $value }» no es un código de país; indique dos letras de ISO 3166-1, como GT o MX.
refused-field-timestamp-out-of-range = { $field }: no es una hora entre los años 0001 y 9999.
refused-field-bad-date = { $field }: no es una fecha válida entre 1900 y 2200.
refused-field-not-a-child = { $field }: { $years } no es la edad de una persona menor de edad (menos de 18).
refused-field-bad-case-id = { $field }: debe tener de 1 a 128 caracteres entre letras, dígitos y - _ . : /
refused-field-no-section = { $field }: no tiene ninguna sección; indique al menos una.
refused-field-no-readers = { $field }: indique al menos un rol que pueda leer esta sección.
refused-field-control-characters = { $field }: contiene caracteres de control (un salto de línea, un tabulador); escríbalo en una sola línea.
refused-field-unknown-payload = { $field }: falta, o es de un tipo que esta pasarela no conoce.
refused-best-interest-missing = { $field }: sin determinación del interés superior. No hay repatriación sin una determinación de una institución de protección de la niñez o de una autoridad judicial.
refused-best-interest-authority = { $field }: la determinación del interés superior debe hacerla una institución de protección de la niñez o una autoridad judicial, no la autoridad migratoria; ningún acuerdo entre { $country } y { $other } lo flexibiliza.
refused-best-interest-outcome = { $field }: la determinación no concluye que el retorno sea en el interés superior de la niña, niño o adolescente; no se puede notificar una repatriación.

## La API de agencias.
refused-not-a-peer = { $field }: { $country } no es un país con el que esta pasarela se comunique (países: { $peers }).
refused-message-too-large = El mensaje supera el límite de { $max } bytes de esta pasarela.
refused-rate-limited = Demasiados mensajes a la vez; inténtelo de nuevo en { $retry_ms } ms.
refused-not-an-agency = Su certificado no es el de una institución.
refused-message-id-conflict = { $field }: el mensaje { $message_id } ya fue aceptado con otro contenido; déjelo vacío o use uno nuevo.
refused-message-unknown = Esta pasarela no ha aceptado ningún mensaje { $message_id }.
refused-case-unknown = Esta pasarela no conoce el caso { $case }.
refused-not-shown-to-delegate = Bajo la delegación de { $country }, el consulado de { $acting } solo lee casos cuyo país de origen es { $country } y cuyo país de destino no es { $acting }.
refused-cursor-beyond = { $field }: { $cursor } está más allá del último elemento de la bandeja de entrada ({ $head }).
refused-statistics-not-allowed = Las estadísticas se entregan a la autoridad del país de destino y a la institución de protección de la niñez, no a los consulados.

## Las reglas del caso.
refused-out-of-order = El caso { $case } está en «{ $state }»: ahora no se puede enviar «{ $step }». Lo que puede seguir: { $allowed }.
refused-no-such-case = Aquí no hay ningún caso { $case }.
refused-case-exists = El caso { $case } ya existe (en «{ $state }»); un aviso previo de repatriación abre un caso una sola vez.
refused-case-id-prefix = { $field }: un caso abierto por { $country } debe empezar por { $prefix }.
refused-role-may-not-send = Quien tiene el rol «{ $role }» no puede enviar «{ $step }»; lo envía: { $roles }.
refused-not-a-party = El caso { $case } es entre { $destination } y { $origin }; { $country } no puede escribir en él.
refused-wrong-side = «{ $step }» lo envía el país { $side ->
        [origin] de origen
       *[destination] de destino
    } ({ $country }) del caso { $case }.
refused-delegation-own-country = { $field }: { $country } es el propio país del remitente; una delegación es al consulado de otro país.
refused-delegation-not-consulate = Una delegación permite al consulado de { $acting } actuar por { $country }; quien tiene el rol «{ $role }» no puede.
refused-delegation-not-listed = { $country } no registra ninguna delegación al consulado de { $acting }, que por tanto no puede actuar por { $country }.
refused-delegated-not-origin = El consulado de { $acting } actúa por { $country } solo en casos cuyo país de origen es { $country }; el caso { $case } retorna a una persona menor de edad a { $case_origin }.
refused-delegated-is-destination = { $acting } es el país de destino del caso { $case }; su consulado no puede actuar por { $country } en él.
refused-policy-unknown = La política de recepción de { $country } aún no se conoce aquí; inténtelo de nuevo cuando la pasarela de { $country } responda.
refused-policy-unknown-final = La política de recepción de { $country } no se conocía cuando llegó el mensaje; queda rechazado definitivamente. Envíelo de nuevo como un mensaje nuevo.
refused-no-open-proposal = El caso { $case } no tiene ninguna propuesta de arribo abierta: fue contrapropuesta o rechazada. Espere la nueva propuesta del país de destino.
refused-proposal-id-mismatch = { $field }: la propuesta de arribo abierta del caso { $case } es { $open }, no { $given }.
refused-family-split = { $field }: el grupo familiar viaja junto. El grupo familiar { $group } es { $members }.
refused-escort-required = { $field }: el caso { $case } es de una persona menor de edad que viaja { $companionship ->
        [unaccompanied] no acompañada
        [separated] separada
       *[other] { $companionship }
    }; la propuesta debe nombrar al menos a un oficial de acompañamiento.
refused-unknown-point-of-entry = { $field }: { $point } no es un punto de recepción de { $country }.
refused-time-zone-mismatch = { $field }: se indicó { $given }, pero { $point } está en { $time_zone }.
refused-unknown-time-zone = Esta pasarela no conoce la zona horaria { $time_zone } de { $point }.
refused-minimum-notice = El arribo del { $arrival } (hora de { $time_zone }) no respeta el aviso mínimo de { $hours } horas en { $point }. Horarios permitidos más cercanos: { $slots }.
refused-no-reception-on-weekday = { $point } no recibe a niñas, niños ni adolescentes ese día de la semana (el arribo del { $arrival }, hora de { $time_zone }). Horarios permitidos más cercanos: { $slots }.
refused-outside-reception-hours = El arribo del { $arrival } { $night ->
        [yes] es un arribo vespertino o nocturno, fuera del horario de recepción
       *[no] está fuera del horario de recepción
    } para { $alone ->
        [yes] NNA no acompañados o separados
       *[no] NNA acompañados por su familia
    } en { $point } ({ $start }–{ $end }, hora de { $time_zone }). Horarios permitidos más cercanos: { $slots }.
refused-capacity-full = { $point } puede recibir a { $capacity } personas menores de edad el { $date }; ya hay { $taken } acordadas.
refused-too-early = Demasiado pronto: lo más temprano permitido es el { $earliest } (hora de { $time_zone }), según { $rule }.
refused-case-origin-invalid = El país de origen del caso no es un país; avise al operador de su pasarela.
# No es un rechazo: la observación sobre una entrega acusada mucho después del arribo acordado (en el historial del caso).
refused-handoff-late = Entrega tardía: se acusó { $hours } horas después del arribo acordado (el { $arrival }, hora de { $time_zone }), más de las { $late_after } horas que admite { $country } (handoff_late_after_hours).
# Lo que puede seguir cuando ya no puede seguir nada.
refusal-nothing-follows = nada: el caso está cerrado
