-- The inventory: devices, certificates stored once, and the links between
-- them; the registry of published snapshots. Times are Unix nanoseconds, UTC.

-- meta holds the one row of organization-wide state.
CREATE TABLE meta (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	org_id  TEXT    NOT NULL,           -- organization GUID, made at first Open
	version INTEGER NOT NULL DEFAULT 0  -- inventory version: grows on every visible change
);

-- groups are the RBAC device groups. Ids start at 1: 0 is certinv.NoGroupID.
CREATE TABLE groups (
	id   INTEGER PRIMARY KEY CHECK (id > 0),
	name TEXT    NOT NULL UNIQUE
);

-- devices: group_id 0 means no group, so that (group_id, device_id) is one
-- index that gives ReadInventory its order without a sort. The index is
-- UNIQUE (device_id alone is) so that SQLite knows each of its entries is
-- one device and walks each device's links in their key order after it.
CREATE TABLE devices (
	id           INTEGER PRIMARY KEY,
	device_id    TEXT    NOT NULL UNIQUE CHECK (length(device_id) = 40),
	name         TEXT    NOT NULL,
	os           TEXT    NOT NULL,
	collected_at INTEGER NOT NULL,
	group_id     INTEGER NOT NULL DEFAULT 0,
	links_digest BLOB    NOT NULL  -- SHA-256 over the sorted (path, sha256) pairs of its links
);
CREATE UNIQUE INDEX devices_group_device ON devices (group_id, device_id);

-- certificates are stored once, keyed by the SHA-256 of their DER. sha1 is
-- the exported thumbprint (as raw bytes), kept for the links' order.
CREATE TABLE certificates (
	id     INTEGER PRIMARY KEY,
	sha256 BLOB    NOT NULL UNIQUE CHECK (length(sha256) = 32),
	sha1   BLOB    NOT NULL CHECK (length(sha1) = 20),
	der    BLOB    NOT NULL,
	json   BLOB    NOT NULL  -- certinv.AppendCertificateJSON fragment
);

-- links: one certificate at one path of a device. The key is the order in
-- which ReadInventory emits a device's records (path, then thumbprint: raw
-- SHA-1 bytes sort as their uppercase hex does), so reading needs no sort;
-- the certificate closes the key, for two certificates whose SHA-1 collide.
CREATE TABLE links (
	device      INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	path        TEXT    NOT NULL,
	sha1        BLOB    NOT NULL,
	certificate INTEGER NOT NULL REFERENCES certificates (id),
	PRIMARY KEY (device, path, sha1, certificate)
) WITHOUT ROWID;

-- snapshots is the registry of published snapshots; seq is the publish order.
CREATE TABLE snapshots (
	seq           INTEGER PRIMARY KEY,
	id            TEXT    NOT NULL UNIQUE,
	generated_at  INTEGER NOT NULL,
	version       INTEGER NOT NULL,
	manifest_key  TEXT    NOT NULL,
	records       INTEGER NOT NULL,
	files         INTEGER NOT NULL,
	published_at  INTEGER NOT NULL,
	superseded_at INTEGER,
	retired_at    INTEGER
);
