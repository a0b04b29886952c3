-- The lease of each gateway served from this database: one row, held by one
-- node at a time until expires_at (the database's clock). The epoch rises by
-- one each time the lease changes hands; every write transaction first reads
-- it FOR SHARE and stops when it is no longer its node's (fencing).
CREATE TABLE retorno_lease (
    gateway text PRIMARY KEY,
    holder text NOT NULL,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
