-- The inventory: devices, certificates stored once, and the links between
-- them; the registry of published snapshots. Times are Unix microseconds, UTC.
-- Text that ReadInventory orders by is COLLATE "C", so that PostgreSQL sorts
-- it byte by byte, as Go's strings compare and the export's order is defined.

-- meta holds the one row of organization-wide state.
CREATE TABLE meta (
	id         integer PRIMARY KEY CHECK (id = 1),
	org_id     text    NOT NULL,           -- organization GUID, made at first Open
	version    bigint  NOT NULL DEFAULT 0, -- inventory version: grows on every visible change
	derivation integer NOT NULL DEFAULT 0  -- parser version that made every certificate's json
);

-- groups are the RBAC device groups. Ids start at 1: 0 is certinv.NoGroupID.
CREATE TABLE groups (
	id   bigint GENERATED ALWAYS AS IDENTITY (START WITH 1) PRIMARY KEY CHECK (id > 0),
	name text   NOT NULL UNIQUE
);

-- devices: group_id 0 means no group, so that (group_id, device_id) is one
-- index that gives ReadInventory its order.
CREATE TABLE devices (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_id    text COLLATE "C" NOT NULL UNIQUE CHECK (length(device_id) = 40),
	name         text   NOT NULL,
	os           text   NOT NULL,
	collected_at bigint NOT NULL,
	group_id     bigint NOT NULL DEFAULT 0,
	links_digest bytea  NOT NULL  -- SHA-256 over the sorted (path, sha256) pairs of its links
);
CREATE UNIQUE INDEX devices_group_device ON devices (group_id, device_id);

-- certificates are stored once, keyed by the SHA-256 of their DER. sha1 is
-- the exported thumbprint as raw bytes: bytea sorts as its uppercase hex does.
CREATE TABLE certificates (
	id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	sha256 bytea NOT NULL UNIQUE CHECK (length(sha256) = 32),
	sha1   bytea NOT NULL CHECK (length(sha1) = 20),
	der    bytea NOT NULL,
	json   bytea NOT NULL  -- certinv.AppendCertificateJSON fragment
);

-- links: one certificate at one path of a device. The key is the order in
-- which ReadInventory emits a device's records (path, then thumbprint); the
-- certificate closes the key, for two certificates whose SHA-1 collide.
CREATE TABLE links (
	device      bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	path        text COLLATE "C" NOT NULL,
	sha1        bytea  NOT NULL,
	certificate bigint NOT NULL REFERENCES certificates (id),
	PRIMARY KEY (device, path, sha1, certificate)
);

-- snapshots is the registry of published snapshots; seq is the publish order.
CREATE TABLE snapshots (
	seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id            text   NOT NULL UNIQUE,
	generated_at  bigint NOT NULL,
	version       bigint NOT NULL,
	manifest_key  text   NOT NULL,
	records       bigint NOT NULL,
	files         integer NOT NULL,
	published_at  bigint NOT NULL,
	superseded_at bigint,
	retired_at    bigint
);
-- At most one latest snapshot, whatever the writers do.
CREATE UNIQUE INDEX snapshots_one_latest ON snapshots ((true)) WHERE superseded_at IS NULL;
