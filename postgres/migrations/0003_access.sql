-- Access: which groups users may read, rules that place devices in groups,
-- device tags, device credentials and the audit log (the sqlite store's
-- migration 0004, without its triggers: this store places devices in Go,
-- with certinv.GroupRule.Matches, in the transaction of the write that
-- moves them; see rules.go).

-- user_groups: the RBAC groups a delegated user may read. user_key is the
-- oid, or the upn lower-cased (ASCII); group_id 0 is the devices of no group.
CREATE TABLE user_groups (
	user_key   text COLLATE "C" NOT NULL,
	user_name  text   NOT NULL, -- as the administrator wrote it
	group_id   bigint NOT NULL CHECK (group_id >= 0),
	granted_at bigint NOT NULL,
	PRIMARY KEY (user_key, group_id)
);

-- group_rules place devices in groups: the first by (priority, id) whose
-- every non-empty condition matches. domain_suffix is stored lower-cased.
CREATE TABLE group_rules (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	group_id      bigint  NOT NULL REFERENCES groups (id),
	priority      integer NOT NULL,
	name_glob     text    NOT NULL,
	domain_suffix text    NOT NULL,
	os_glob       text    NOT NULL,
	tag           text    NOT NULL,
	created_at    bigint  NOT NULL
);
CREATE INDEX group_rules_order ON group_rules (priority, id);

-- device_tags by device id, not row: a device may be tagged before it
-- reports. Tags compare byte by byte (COLLATE "C"), as they sort.
CREATE TABLE device_tags (
	device_id text COLLATE "C" NOT NULL,
	tag       text COLLATE "C" NOT NULL,
	PRIMARY KEY (device_id, tag)
);

-- devices.group_id stays the group a device is exported in (ReadInventory
-- reads it as it did). explicit_group is the group pinned at ingest or by an
-- administrator, 0 for "no group" (NULL: rules decide).
ALTER TABLE devices ADD COLUMN explicit_group bigint;
-- Every group given so far was given explicitly.
UPDATE devices SET explicit_group = group_id WHERE group_id <> 0;

-- device_credentials: a device's own reporting secret (its SHA-256), and
-- whether an administrator revoked it. A revoked device may have no secret.
CREATE TABLE device_credentials (
	device_id   text COLLATE "C" PRIMARY KEY CHECK (length(device_id) = 40),
	secret_hash bytea CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
	enrolled_at bigint,
	revoked_at  bigint
);

-- audit_log: every administrative action. Never a secret. Entries are
-- written under the write lock, so ids commit in order and a reader that
-- pages by id never skips one.
CREATE TABLE audit_log (
	id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at      bigint NOT NULL,
	actor   text   NOT NULL,
	action  text   NOT NULL,
	target  text   NOT NULL,
	details text   NOT NULL
);
