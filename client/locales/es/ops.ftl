# Los comandos `retorno-gateway ops` (y `retorno-gateway rekey`), en español
# (sigue LANG). Cada mensaje tiene su par en ../en/ops.ftl, con los mismos parámetros.

ops-status-head = Pasarela de { $country } a las { $now }: { $draining ->
        [yes] EN VACIADO
       *[no] en servicio
    }, almacén de { $bytes } bytes
ops-peers = otros países:
ops-peer = { $country }  { $connected ->
        [yes] conectado
       *[no] SIN CONEXIÓN
    }  en cola { $queued }{ $oldest }  último acuse de recibo { $receipt }
ops-peer-oldest = , el más antiguo de hace { $age }
ops-peer-error = último error { $at }: { $error }
ops-certificates = certificados:
ops-certificate-expired = VENCIDO
ops-certificate-days = le quedan { $days } días
ops-no-findings = vuelta atrás en el tiempo: no se encontró ninguna
ops-finding = HALLAZGO { $kind } con { $peer }: { $count } mensaje(s): { $description }
ops-finding-acknowledged = (reconocido)
ops-more = más: --page { $token }

# El estado de un mensaje en el registro.
ops-state-queued = en cola
ops-state-delivered = entregado
ops-state-rejected = RECHAZADO
ops-state-refused = rechazado
ops-state-received = recibido
# Las columnas de un mensaje del registro.
ops-to = a { $peer }
ops-from = de { $peer }
ops-bytes = { $size } bytes
ops-case = caso { $cases }
ops-inbox-cursor = cursor de la bandeja de entrada { $cursor }
ops-envelope-purged = sobre eliminado { $at }
ops-id-not-kept = (id no conservado)

ops-no-acknowledgement = ninguna institución ha confirmado la lectura hasta este mensaje
ops-acknowledged-past = lectura confirmada hasta este mensaje por: { $agencies }
ops-requeueable = se puede reenviar: `ops requeue` lo envía de nuevo una vez corregida la causa
ops-not-requeueable = no se puede reenviar: { $reason }
ops-requeued = reenviado { $id } (nuevo número de secuencia { $sequence })
ops-not-requeued = NO reenviado { $id }: { $reason }
ops-not-requeued-count = { $count } mensaje(s) no reenviado(s)
# Por qué no se puede reenviar un mensaje, según el código de la API de operación.
ops-requeue-unknown = esta pasarela no aceptó ningún mensaje con este id
ops-requeue-queued = sigue en cola: sale cuando el otro país responda
ops-requeue-delivered = el otro país lo guardó y dio acuse de recibo
ops-requeue-refused = el otro país lo guardó y sus reglas del caso lo rechazaron; esa respuesta es definitiva: envíe un mensaje nuevo
ops-requeue-gone = se rechazó antes de que esta pasarela guardara los sobres rechazados; envíe un mensaje nuevo
ops-requeue-purged = la retención eliminó su sobre storage.retention_withdrawn_days después del rechazo; envíe un mensaje nuevo

ops-draining = en vaciado: la verificación de salud responde NOT_SERVING; los mensajes en cola siguen saliendo
ops-resumed = reanudado: la verificación de salud vuelve a seguir las comprobaciones de la pasarela

# rekey: solo ids de clave, archivos y conteos.
ops-key = clave { $id } ({ $file })
ops-key-not-configured = clave { $id } (no está en storage.keys)
ops-rekey-kept = { $count } sobre(s) guardado(s) (cola de salida, bandeja de entrada, mensajes rechazados guardados para reenviar):
ops-rekey-under = { $count } cifrado(s) con la { $key }
ops-rekey-clear = { $count } sin cifrar
ops-rekey-sealed = { $dry_run ->
        [yes] se cifrarían
       *[no] se cifraron
    } de nuevo { $count } sobre(s) con la { $key }
ops-rekey-retirable = ningún sobre guardado necesita ya { $files }: quítela de storage.keys cuando ya no necesite ninguna copia de seguridad anterior; las copias viejas que quedan en los archivos de la base de datos ya no podrán abrirse
