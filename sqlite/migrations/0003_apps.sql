-- apps are the applications registered with the embedded token issuer.
-- Only a digest of each secret is kept; secret_id names the current secret
-- and changes with every rotation. roles is a JSON array of strings. Times
-- are Unix microseconds, UTC.
CREATE TABLE apps (
	id                TEXT    PRIMARY KEY,
	name              TEXT    NOT NULL,
	roles             TEXT    NOT NULL DEFAULT '[]',
	secret_id         TEXT    NOT NULL,
	secret_hash       BLOB    NOT NULL CHECK (length(secret_hash) = 32),
	created_at        INTEGER NOT NULL,
	secret_created_at INTEGER NOT NULL
);
