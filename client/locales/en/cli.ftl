# The `retorno` program, in English (it follows LANG). Each message has its pair
# in ../es/cli.ftl, with the same parameters.
