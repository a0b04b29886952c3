# La consola web de retorno, en español (GLOSARIO.md; se trata al lector de usted).
# Cada mensaje tiene su par en ../en/console.ftl, con los mismos parámetros.

language-switch = Idioma
skip-to-content = Ir al contenido
nav-label = Secciones
nav-inbox = Bandeja de entrada
nav-cases = Casos
nav-new-notice = Nuevo aviso previo
log-out = Cerrar sesión
log-in = Ingresar

## Arranque

listen-needs-tls = La consola no se inicia: { $address } no es una dirección local (loopback) y sin cifrado cualquiera en la red podría leer los casos y las contraseñas. Indique --tls-cert y --tls-key, o escuche en 127.0.0.1.

## Ingreso

login-title = Ingreso del personal
login-login = Usuario
login-password = Contraseña
login-wrong = El usuario o la contraseña no son correctos.
login-locked = Después de { $attempts } intentos fallidos seguidos, el ingreso queda bloqueado { $minutes } minutos. Intente más tarde o pida ayuda a quien administra la consola.
login-failed-file = La consola no puede leer su lista de personal. Avise a quien la administra.
login-failed-random = La consola no pudo abrir la sesión. Intente de nuevo.

## Envíos rechazados por la consola

post-refused-title = Envío rechazado
post-refused-no-origin = El formulario llegó sin indicar de qué página viene. No se cambió nada. Vuelva a la página y envíe de nuevo.
post-refused-other-origin = El formulario no viene de esta consola. No se cambió nada.
post-refused-token = El formulario no lleva la clave de esta sesión (quizá la página es antigua o la sesión cambió). No se cambió nada. Vuelva a abrir la página y envíe de nuevo.
gateway-refused-title = La pasarela no respondió como se esperaba
gateway-unreachable = No se pudo hablar con la pasarela de su país: { $reason }
not-found-title = Página no encontrada
not-found = Esta página no existe.
named-by-agency = { $official } (nombrado por la institución)

## Bandeja de entrada

inbox-title = Bandeja de entrada
inbox-hint = Los mensajes nuevos aparecen aquí sin recargar la página.
inbox-empty = No hay mensajes pendientes.
inbox-ack = Marcar como atendido
inbox-redacted = sin los datos que su función no necesita
ack-bad-cursor = No se indicó qué mensaje marcar como atendido.

## Tipos de mensaje

kind-advance_notice = Aviso previo de repatriación
kind-case_summary = Resumen del caso
kind-arrival_proposal = Propuesta de arribo
kind-arrival_response = Respuesta a la propuesta de arribo
kind-handoff_ack = Acuse de entrega
kind-reception_confirmation = Confirmación de recepción
kind-follow_up_report = Informe de seguimiento
kind-case_withdrawal = Desistimiento de la repatriación
kind-unknown = Mensaje de un tipo desconocido

## Pasos que el caso permite

step-advance_notice = Enviar aviso previo
step-case_summary = Redactar el resumen del caso
step-arrival_proposal = Proponer arribo
step-arrival_response = Responder a la propuesta
step-handoff_ack = Acusar la entrega
step-reception_confirmation = Confirmar la recepción
step-follow_up_report = Informar el seguimiento
step-case_withdrawal = Desistir de la repatriación

## Estados del caso

state-unspecified = sin estado
state-notified = Notificado
state-summary-shared = Resumen compartido
state-arrival-proposed = Arribo propuesto
state-awaiting-proposal = En espera de propuesta
state-arrival-agreed = Arribo acordado
state-handed-over = Entregado
state-received = Recibido
state-follow-up = En seguimiento
state-withdrawn = Desistido

companionship-unspecified = sin indicar
companionship-unaccompanied = No acompañado
companionship-separated = Separado
companionship-with-family = Acompañado por su familia

## Casos

cases-title = Casos
cases-counts = Casos por estado
cases-none = Ningún caso cumple estos filtros.
filter-state = Estado
filter-any = Todos
filter-point = Punto de recepción
filter-arrival = Fecha de arribo
filter-country = País
filter-unaccompanied = Solo no acompañados
filter-apply = Filtrar
case-title = Caso
case-id = Caso
case-state = Estado
case-countries = Países (destino → origen)
case-companionship = Acompañamiento
case-arrival = Arribo
case-steps = Lo que usted puede hacer ahora
case-no-steps = Por ahora su institución no tiene pasos pendientes en este caso.
case-timeline = Historial del caso
timeline-refused = Rechazado:

## Fechas

date-time = { $day } de { $month } de { $year }, { $time } (hora de { $zone })
date-time-weekday = { $weekday } { $day } de { $month } de { $year }, { $time } (hora de { $zone })
date-time-compact = { $date } { $time } (hora de { $zone })
date-time-weekday-compact = { $weekday } { $date } { $time }
date-day = { $weekday } { $day } de { $month }
date = { $day } de { $month } de { $year }
month-1 = enero
month-2 = febrero
month-3 = marzo
month-4 = abril
month-5 = mayo
month-6 = junio
month-7 = julio
month-8 = agosto
month-9 = septiembre
month-10 = octubre
month-11 = noviembre
month-12 = diciembre
weekday-1 = lunes
weekday-2 = martes
weekday-3 = miércoles
weekday-4 = jueves
weekday-5 = viernes
weekday-6 = sábado
weekday-7 = domingo
zone-America-Guatemala = Guatemala
zone-America-Mexico_City = Ciudad de México
zone-America-Tegucigalpa = Honduras
zone-America-El_Salvador = El Salvador
zone-America-Costa_Rica = Costa Rica
zone-America-Managua = Nicaragua
zone-America-Panama = Panamá
zone-America-Belize = Belice
zone-America-Los_Angeles = Los Ángeles
zone-America-Tijuana = Tijuana

## Program

console-listening = La consola atiende en { $url } (Ctrl+C la detiene).

## Formularios

step-sent = { $what }: enviado. La pasarela lo aceptó y lo entregará al otro país.
form-refused-see-fields = No se envió: revise los campos marcados.
form-bad-date = «{ $value }» no es una fecha: escríbala como 2026-12-04.
form-bad-number = «{ $value }» no es un número.
o-none = (sin indicar)
notice-title = Nuevo aviso previo de repatriación
notice-hint = Complete lo que sabe. La pasarela revisa el aviso y le dice, junto a cada campo, lo que falta.
notice-send = Enviar el aviso previo
g-case = Destino del aviso
g-child = La niña, el niño o adolescente
g-companions = Acompañantes y grupo familiar
g-protection = Necesidades de protección
g-best_interest = Determinación del interés superior (DIS)
g-consular_interview = Entrevista consular
g-transport = Viaje
g-origin_contact = Contacto en el país de origen
f-recipient_country = País de origen (destinatario), p. ej. GT
f-case_id = Número de caso (opcional; se asigna si lo deja vacío)
f-child-given_names = Nombres
f-child-family_names = Apellidos
f-child-birth_date = Fecha de nacimiento
f-child-estimated_age_years = Edad estimada (años), si no se conoce la fecha de nacimiento
f-child-sex = Sexo
f-child-nationalities = Nacionalidades (códigos de país, separados por comas)
f-child-languages = Idiomas que habla (p. ej. es, mam, quc)
f-child-documents-0-kind = Documento de identidad
f-child-documents-0-number = Número del documento
f-child-documents-0-issuing_country = País que lo emitió
f-companionship = Acompañamiento
f-family_group_id = Grupo familiar (el mismo para hermanas y hermanos que viajan juntos)
f-protection_concerns = Situaciones que cambian cómo se le recibe
f-risk_level = Nivel de riesgo
f-best_interest-authority_kind = Quién determinó
f-best_interest-authority_name = Institución que determinó
f-best_interest-date = Fecha de la determinación
f-best_interest-outcome = Resultado
f-consular_interview-consulate = Consulado que entrevistó
f-consular_interview-date = Fecha de la entrevista
f-transport-mode = Medio de transporte
f-transport-point_of_entry = Punto de recepción (código, p. ej. GT-TECUN-UMAN)
f-transport-earliest_date = Fecha más temprana posible de viaje
f-origin_contact-family_located = Se localizó a la familia
f-origin_contact-contact_name = Persona de contacto
f-origin_contact-contact_phone = Teléfono de contacto
f-origin_contact-relationship = Parentesco o relación
o-female = Femenino
o-male = Masculino
o-unknown = Desconocido
o-passport = Pasaporte
o-birth-certificate = Certificado de nacimiento
o-national-id = Documento nacional de identidad
o-consular-id = Matrícula o documento consular
o-other = Otro
o-unaccompanied = No acompañado
o-separated = Separado
o-with-family = Acompañado por su familia
o-trafficking-victim = Víctima de trata de personas
o-trafficking-risk = En riesgo de trata de personas
o-asylum-seeker = Solicitante de asilo
o-refugee = Persona refugiada
o-crime-victim-on-route = Víctima de delito en la ruta
o-child-worker = Niñez trabajadora
o-disability = Discapacidad
o-health = Salud
o-pregnancy = Embarazo
o-indigenous-language = Habla una lengua indígena
o-low = Bajo
o-medium = Medio
o-high = Alto
o-child-protection = Institución de protección de la niñez
o-judicial = Autoridad judicial
o-migration = Autoridad migratoria
o-return = Retorno
o-return-with-conditions = Retorno con condiciones
o-stay = Permanencia
o-air = Aéreo
o-land = Terrestre
o-sea = Marítimo

## Arribo

arrival-title = Arribo
arrival-agreed = Arribo acordado:
arrival-open = Propuesta en espera de respuesta:
arrival-slots = Horarios permitidos: elija uno para proponerlo
arrival-week = Horario de recepción de la semana
arrival-week-hint = Los horarios son los que publica el país de origen, en la hora local del punto de recepción
arrival-show-point = Ver este punto
arrival-previous-week = Semana anterior
arrival-next-week = Semana siguiente
arrival-hours-family = Con su familia:
arrival-hours-unaccompanied = No acompañados o separados:
arrival-closed = No recibe
arrival-on-day = Arribo:
arrival-propose = Proponer el arribo
arrival-answer = Responder a la propuesta
arrival-accept = Aceptar la propuesta
arrival-counter = Enviar la contrapropuesta
arrival-decline = Rechazar la propuesta
arrival-no-points = El país de origen no ha publicado puntos de recepción; no se puede proponer un arribo todavía.
form-bad-time = «{ $value }» no es una fecha y hora local: elija día y hora, p. ej. 2026-12-04 10:00.
form-bad-value = «{ $value }» no es válido aquí.
g-proposal = Propuesta de arribo
g-counter = Contrapropuesta
g-decline = Rechazo
f-point_of_entry = Punto de recepción
f-proposal_id = Identificador de la propuesta (p. ej. P1; se asigna si lo deja vacío)
f-arrival = Fecha y hora de arribo (hora local del punto)
f-transport_mode = Medio de transporte
f-transport_reference = Vuelo, o empresa y placa del autobús
f-escort_officers-0-name = Oficial de acompañamiento
f-escort_officers-0-institution = Institución del oficial
f-counter-arrival = Otra fecha y hora (hora local del punto)
f-counter-note = Nota para el país de destino
f-decline-reason = Motivo
f-decline-text = Explicación (obligatoria si el motivo es «Otro»)
o-outside-reception-hours = Fuera del horario de recepción
o-notice-too-short = Aviso con muy poca anticipación
o-no-capacity = Sin capacidad de recepción
o-family-not-located = Familia no localizada
o-risk-on-return = Riesgo al retorno

## Entrega, recepción, seguimiento, desistimiento

handoff-title = Entrega
reception-title = Recepción y seguimiento
withdraw-title = Desistimiento de la repatriación
handoff-children = Niñas, niños y adolescentes que se reciben
follow-ups-title = Seguimientos
follow-up-days = a los { $days } días
follow-up-done = Seguimiento a los { $days } días: informado.
follow-up-overdue = Seguimiento a los { $days } días: vencido desde el { $due }.
follow-up-due = Seguimiento a los { $days } días: pendiente para el { $due }.
g-received_by = Quién recibe
g-reception = Recepción
g-follow_up = Informe de seguimiento
g-withdrawal = Desistimiento
f-received_by-name = Recibido por (nombre)
f-received_by-institution = Institución que recibe
f-condition_notes = Notas sobre el estado de salud y pertenencias
f-placement = Ubicación
f-placement_detail = Dónde, en palabras
f-days_since_return = Seguimiento
f-status = Situación
f-notes = Notas
f-reason = Motivo
f-text = Explicación (obligatoria si el motivo es «Otro»)
o-placement-with-family = Con su familia
o-reception-centre = En institución (centro de recepción)
o-foster-care = En acogimiento familiar
o-stable = Estable
o-at-risk = En riesgo
o-lost-contact = Sin contacto
o-remigrated = Volvió a migrar
o-protection-granted = Protección internacional otorgada
o-local-integration = Integración en el país de destino
o-best-interest-decision = Decisión por interés superior

## Resumen del caso

summary-title = Resumen del caso
summary-none = Su institución no ha recibido ningún resumen de este caso.
summary-withheld = Sección reservada: no se comparte con su institución, o no se incluyó.
summary-compose = Redactar el resumen del caso
summary-compose-hint = Cada sección se comparte con la institución de protección de la niñez del país de origen. Deje vacía la sección que no corresponda.
yes = Sí
no = No
g-identity = Identidad
g-best_interest_plan = Plan de interés superior
g-health = Salud
g-psychosocial = Evaluación psicosocial
g-legal = Situación jurídica
g-education = Educación
g-risks_on_return = Riesgos al retorno
g-recommendations = Recomendaciones
f-identity-verification = Cómo se estableció la identidad
f-identity-aliases = Otros nombres usados (separados por comas)
f-best_interest_plan-plan = Plan
f-best_interest_plan-receiving_caregiver = Quién recibirá a la niña, niño o adolescente
f-health-conditions = Condiciones de salud
f-health-medication = Medicación
f-health-needs_medical_escort = Necesita acompañamiento médico
f-psychosocial-assessment = Evaluación
f-psychosocial-assessed_by = Evaluado por
f-legal-protection_claim = Solicitud de protección
f-legal-asylum_claim = Solicitud de asilo
f-legal-legal_representative = Representante legal
f-legal-guardian = Tutor
f-legal-notes = Notas jurídicas
f-education-last_grade_completed = Último grado aprobado
f-education-notes = Notas sobre educación
f-risks_on_return-level = Nivel de riesgo
f-risks_on_return-description = Descripción de los riesgos
f-recommendations-items = Recomendaciones (una por línea)

## Historial del caso: una línea por paso, de los datos que la pasarela deja ver a esta función.
tl-notice = Aviso previo: { $companionship }
tl-notice-risk = Aviso previo: { $companionship }, riesgo { $risk }
tl-summary = Resumen del caso compartido
tl-proposal = Propuesta { $id } para { $children } NNA en { $point }: { $at }
tl-accepted = Aceptó la propuesta { $id }
tl-countered = Contrapropuesta a { $id }: { $at }
tl-declined = Rechazó la propuesta { $id }
tl-declined-reason = Rechazó la propuesta { $id }: { $reason }
tl-handoff = Entrega en { $point }, { $children } NNA
tl-received = Recepción confirmada
tl-received-placement = Recepción confirmada: { $placement }
tl-follow-up = Seguimiento a los { $days } días
tl-follow-up-status = Seguimiento a los { $days } días: { $status }
tl-withdrawn = Desistimiento de la repatriación
tl-withdrawn-reason = Desistimiento de la repatriación: { $reason }
