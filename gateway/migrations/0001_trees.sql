-- One table per tree of a gateway's database (storage::TREES), plus the
-- default tree that holds the health probe's key. Keys and values are the
-- store's bytes, opaque here; bytea compares as bytes, so a table's key
-- order is the tree's.
CREATE TABLE "outbox" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "sent" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "inbox" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "seen" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "acks" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "cases" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "policies" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "certificates" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "retention" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "audit" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "sequences" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "rollbacks" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "alerts" (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE "default_tree" (k bytea PRIMARY KEY, v bytea NOT NULL);

-- Db::generate_id: numbers never given before by this database.
CREATE SEQUENCE retorno_ids;
