# El programa `retorno`, en español (sigue LANG). Cada mensaje tiene su par en
# ../en/cli.ftl, con los mismos parámetros.
