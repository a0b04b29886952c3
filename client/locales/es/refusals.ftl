# Por qué una pasarela rechazó un mensaje: un mensaje por código de motivo
# (`refused-<código>`), con los parámetros con nombre que el código lleva.
# Cada mensaje tiene su par en ../en/refusals.ftl.
