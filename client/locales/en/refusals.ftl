# Why a gateway refused a message: one message per reason code
# (`refused-<code>`), with the named parameters the code carries.
# Each message has its pair in ../es/refusals.ftl.
