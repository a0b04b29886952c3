# La consola web de retorno, en español (GLOSARIO.md; se trata al lector de usted).
# Cada mensaje tiene su par en ../en/console.ftl, con los mismos parámetros.

language-switch = Idioma
