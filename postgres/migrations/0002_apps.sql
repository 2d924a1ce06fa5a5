-- apps are the applications registered with the embedded token issuer.
-- Only a digest of each secret is kept; secret_id names the current secret
-- and changes with every rotation. Times are Unix microseconds, UTC. The id
-- is COLLATE "C" so that Apps breaks ties of creation time byte by byte, as
-- the sqlite store does.
CREATE TABLE apps (
	id                text COLLATE "C" PRIMARY KEY,
	name              text   NOT NULL,
	roles             text[] NOT NULL DEFAULT '{}',
	secret_id         text   NOT NULL,
	secret_hash       bytea  NOT NULL CHECK (length(secret_hash) = 32),
	created_at        bigint NOT NULL,
	secret_created_at bigint NOT NULL
);
