# retorno's web console, in English. Each message has its pair in
# ../es/console.ftl, with the same parameters.

language-switch = Language
