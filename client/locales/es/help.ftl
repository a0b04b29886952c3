# La ayuda del programa `retorno` (retorno --help), en español. Solo existe en
# español: la ayuda en inglés son los comentarios de client/src/main.rs. Cada id
# dice dónde está el texto: help-<comando> es el resumen de un comando
# (help-send-notice), help-<comando>--<argumento> el de un argumento
# (help-send-notice--to) y help-global--<argumento> el de un argumento que
# toman todos los comandos (--profile). Un test recorre los comandos del
# programa y exige que cada texto tenga aquí su versión.

## Lo que clap escribe por su cuenta
help-heading-usage = Uso:
help-heading-commands = Comandos
help-heading-arguments = Argumentos
help-heading-options = Opciones
help-heading-connection = Conexión (un perfil, o --gateway con --ca, --cert y --key)
help-clap-help = Muestra la ayuda
help-clap-version = Muestra la versión
help-clap-help-command = Muestra esta ayuda, o la de los comandos indicados

## Cuando la línea de comandos tiene un error (en lugar de los mensajes de clap)
help-error-unknown-argument = argumento desconocido «{ $arg }»
help-error-unknown-command = comando desconocido «{ $command }»
help-error-missing-value = falta el valor de «{ $arg }»
help-error-invalid-value = valor «{ $value }» no válido para «{ $arg }»
help-error-possible-values = ; valores posibles: { $values }
help-error-not-a-number = no es un número entero
help-error-not-an-address = no es una dirección IP:puerto, p. ej. 127.0.0.1:8080
help-error-missing-required = faltan argumentos obligatorios: { $arg }
help-error-conflict = «{ $arg }» no puede usarse junto con «{ $prior }»
help-error-values = número de valores no válido para «{ $arg }»
help-error-missing-command = falta un comando: { $commands }
help-error-did-you-mean = sugerencia: quizá quiso decir «{ $suggested }»
help-error-more = Para más información, use «--help».

## El programa
help-retorno = La línea de comandos de las instituciones: envíe mensajes de un caso a otro país a través de la pasarela retorno de su país, lea su bandeja de entrada y siga las entregas y los casos.
help-retorno-long = La línea de comandos de las instituciones: envíe mensajes de un caso (el aviso previo de repatriación, el resumen del caso, la propuesta de arribo y su respuesta, la entrega, la recepción y el seguimiento) a otro país a través de la pasarela retorno de su país, lea su bandeja de entrada y siga las entregas y los casos.

    Cada comando necesita una conexión: --profile ARCHIVO (o RETORNO_PROFILE=ARCHIVO), o bien --gateway, --ca, --cert y --key. `retorno-gateway dev` escribe un perfil por institución en .retorno-dev/CC/profiles.

## La conexión y quién actúa (todos los comandos)
help-global--profile = Un perfil de conexión (TOML: gateway, ca, cert, key, tls_name).
help-global--gateway = La Agency API de la pasarela, host:puerto (en lugar de un perfil).
help-global--ca = La CA raíz regional que certifica las pasarelas (PEM).
help-global--cert = El certificado de su institución (PEM).
help-global--key = La clave privada de su institución (PEM).
help-global--tls_name = El nombre DNS del certificado de la pasarela (por omisión, el host de --gateway).
help-global--official = La persona funcionaria que actúa por su institución, p. ej. «Ana Pérez»: viaja con cada mensaje y aparece en el historial del caso y en los registros de auditoría de ambos países, tal como su institución la nombra (ninguna pasarela puede comprobarlo).
help-global--users = El archivo de cuentas del personal (se guarda con permisos 0600; `retorno console user add` lo crea).

## Argumentos que se repiten
help-shared-case = El número de caso, p. ej. MX-2026-0001.
help-shared-to = El país al que se envía; por omisión, el otro país del caso.
help-shared-text = Obligatorio con --reason other.
help-shared-notes = Notas.

## Enviar
help-send = Envía un mensaje a la pasarela de otro país.
help-send-notice = Un aviso previo de repatriación, desde un archivo JSON.
help-send-notice--file = El aviso en JSON, con los nombres de campo de retorno.v1.AdvanceNotice.
help-send-notice--to = El país al que se envía (ISO 3166-1 alfa-2), p. ej. GT.
help-send-notice--case = El número de caso, que empieza por el código de su país (MX-2026-0001); si lo omite, se asigna uno.
help-send-notice--message_id = Un UUIDv7 para reutilizar al reintentar un envío cuya respuesta se perdió.
help-send-summary = Un resumen del caso, desde un archivo JSON con los campos de retorno.v1.CaseSummary.
help-send-summary--file = El resumen en JSON.
help-send-summary--case = { help-shared-case }
help-send-summary--to = { help-shared-to }

## Bandeja de entrada y entregas
help-inbox = Muestra los mensajes de la bandeja de entrada de su pasarela posteriores a su último acuse.
help-inbox--follow = Sigue esperando mensajes nuevos.
help-inbox--after = Empieza después de este cursor en lugar de después de su último acuse.
help-inbox--ack = Acusa recibo de cada mensaje al mostrarlo, para que el siguiente `inbox` empiece después.
help-inbox--json = Muestra cada mensaje en JSON en lugar de un resumen.
help-ack = Acusa recibo de todos los mensajes de la bandeja hasta un cursor.
help-ack--cursor = El cursor que muestra `inbox`.
help-status = En qué está un mensaje que usted envió: en cola, entregado (con el acuse de recibo) o rechazado.
help-status--message_id = El identificador del mensaje que mostró `send`.

## El arribo
help-propose = Propone un arribo (autoridad del país de destino). Las horas son las locales del punto de recepción.
help-propose--case = { help-shared-case }
help-propose--to = { help-shared-to }
help-propose--proposal = Un identificador para esta propuesta, p. ej. P1.
help-propose--point = El punto de recepción del país de origen, p. ej. GT-TECUN-UMAN.
help-propose--at = Fecha y hora local de arribo en el punto, p. ej. «2026-12-04 10:00».
help-propose--tz = La zona horaria IANA del punto, p. ej. America/Guatemala; por omisión, la que el país de origen publica para el punto (si la indica, debe coincidir).
help-propose--mode = air (aéreo), land (terrestre) o sea (marítimo).
help-propose--reference = Número de vuelo, o empresa y placa del autobús.
help-propose--escort = Un oficial de acompañamiento como NOMBRE/INSTITUCIÓN; repítalo para cada uno.
help-propose--cases = Todos los casos de un grupo familiar que viaja junto, separados por comas.
help-respond = Responde a una propuesta (institución de protección de la niñez del país de origen): aceptar, contraproponer o rechazar.
help-respond--case = { help-shared-case }
help-respond--to = { help-shared-to }
help-respond--proposal = La propuesta que se responde.
help-respond-accept = Acepta la propuesta tal como está.
help-respond-counter = Propone otra hora local.
help-respond-counter--at = Fecha y hora local, p. ej. «2026-12-04 11:00».
help-respond-counter--tz = La zona horaria IANA del punto; por omisión, la que su país publica para el punto de la propuesta (si la indica, debe coincidir).
help-respond-counter--note = Una nota para el país de destino.
help-respond-decline = Rechaza la propuesta, con un motivo.
help-respond-decline--reason = outside-reception-hours (fuera del horario de recepción), notice-too-short (aviso con muy poca anticipación), no-capacity (sin capacidad), family-not-located (familia no localizada), risk-on-return (riesgo al retorno) u other (otro).
help-respond-decline--text = { help-shared-text }

## Entrega, recepción, seguimiento y desistimiento
help-handoff = Acusa la entrega (consulado o institución que recibe).
help-handoff--case = { help-shared-case }
help-handoff--to = { help-shared-to }
help-handoff--point = El punto de recepción donde se recibió a las niñas, niños y adolescentes.
help-handoff--received_by = Quién los recibió, como NOMBRE/INSTITUCIÓN.
help-handoff--cases = Todos los casos de un grupo familiar entregados juntos, separados por comas.
help-handoff--notes = Notas sobre su estado.
help-confirm = Confirma la recepción y la ubicación (institución de protección de la niñez del país de origen).
help-confirm--case = { help-shared-case }
help-confirm--to = { help-shared-to }
help-confirm--placement = with-family (con su familia), reception-centre (en institución) o foster-care (en acogimiento familiar).
help-confirm--detail = Dónde, en palabras.
help-follow-up = Informa sobre la niña, niño o adolescente después del retorno (institución de protección de la niñez del país de origen).
help-follow-up--case = { help-shared-case }
help-follow-up--to = { help-shared-to }
help-follow-up--days = Días desde el retorno.
help-follow-up--status = stable (estable), at-risk (en riesgo), lost-contact (sin contacto) o remigrated (volvió a migrar).
help-follow-up--notes = { help-shared-notes }
help-withdraw = Desiste de la repatriación de un caso: la niña, niño o adolescente se queda (autoridad del país de destino).
help-withdraw--case = { help-shared-case }
help-withdraw--to = { help-shared-to }
help-withdraw--reason = protection-granted (protección internacional otorgada), local-integration (integración en el país de destino), best-interest-decision (decisión por interés superior) u other (otro).
help-withdraw--text = { help-shared-text }

## Casos
help-case = Consulta casos.
help-case-show = El estado de un caso, su arribo acordado y su historial, con el estado de cada entrega.
help-case-show--case = El número de caso.
help-case-list = Los casos que conoce su pasarela.
help-case-list--state = Solo los casos en este estado, p. ej. arrival-agreed.

## La consola web
help-console = Inicia la consola web para el personal de su institución, o administra sus cuentas (`console user ...`).
help-console--listen = Dónde atiende. Cualquier dirección que no sea local (loopback) necesita --tls-cert y --tls-key.
help-console--tls_cert = El certificado HTTPS de la consola (PEM), para atender con TLS.
help-console--tls_key = La clave de --tls-cert (PEM).
help-console--idle_minutes = Minutos sin actividad tras los cuales termina una sesión.
help-console--public_origin = El origen que el personal escribe en su navegador cuando no es --listen, p. ej. https://consola.sbs.gob.gt:8443 (los formularios deben venir de él).
help-console-user = Administra las cuentas del personal de la consola.
help-console-user-add = Agrega una cuenta; la contraseña se lee de la entrada estándar (sin mostrarse en una terminal).
help-console-user-add--login = Lo que la persona funcionaria escribe para ingresar, p. ej. aperez.
help-console-user-add--name = El nombre que el otro país lee en el historial, p. ej. «Ana Pérez».
help-console-user-disable = Desactiva una cuenta: ya no podrá ingresar.
help-console-user-disable--login = El usuario de la cuenta.
help-console-user-list = Lista las cuentas (nunca sus hashes).
