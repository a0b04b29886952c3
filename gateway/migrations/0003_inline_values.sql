-- A value of a few KB (an envelope, sealed at rest: ciphertext) stays in its
-- row. By default PostgreSQL tries to compress any row over about 2 KB
-- (pglz, which gains nothing on ciphertext) and then moves the value to the
-- table's TOAST table (a second insert and index entry); with the target at
-- its largest, only a row that does not fit in a page is TOASTed. Every
-- tree's table (a migration that adds one sets it there too); rows already
-- TOASTed stay so until rewritten.
ALTER TABLE "outbox" SET (toast_tuple_target = 8160);
ALTER TABLE "sent" SET (toast_tuple_target = 8160);
ALTER TABLE "inbox" SET (toast_tuple_target = 8160);
ALTER TABLE "seen" SET (toast_tuple_target = 8160);
ALTER TABLE "acks" SET (toast_tuple_target = 8160);
ALTER TABLE "cases" SET (toast_tuple_target = 8160);
ALTER TABLE "policies" SET (toast_tuple_target = 8160);
ALTER TABLE "certificates" SET (toast_tuple_target = 8160);
ALTER TABLE "retention" SET (toast_tuple_target = 8160);
ALTER TABLE "audit" SET (toast_tuple_target = 8160);
ALTER TABLE "sequences" SET (toast_tuple_target = 8160);
ALTER TABLE "rollbacks" SET (toast_tuple_target = 8160);
ALTER TABLE "alerts" SET (toast_tuple_target = 8160);
ALTER TABLE "default_tree" SET (toast_tuple_target = 8160);
