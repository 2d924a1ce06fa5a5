-- Access: which groups users may read, rules that place devices in groups,
-- device tags, device credentials and the audit log.

-- user_groups: the RBAC groups a delegated user may read. user_key is the
-- oid, or the upn lower-cased (ASCII); group_id 0 is the devices of no group.
CREATE TABLE user_groups (
	user_key   TEXT    NOT NULL,
	user_name  TEXT    NOT NULL, -- as the administrator wrote it
	group_id   INTEGER NOT NULL CHECK (group_id >= 0),
	granted_at INTEGER NOT NULL,
	PRIMARY KEY (user_key, group_id)
) WITHOUT ROWID;

-- group_rules place devices in groups: the first by (priority, id) whose
-- every non-empty condition matches. name_sql and os_sql are the globs in
-- SQLite GLOB syntax, lower-cased; domain_suffix is stored lower-cased.
CREATE TABLE group_rules (
	id            INTEGER PRIMARY KEY,
	group_id      INTEGER NOT NULL REFERENCES groups (id),
	priority      INTEGER NOT NULL,
	name_glob     TEXT    NOT NULL,
	name_sql      TEXT    NOT NULL,
	domain_suffix TEXT    NOT NULL,
	os_glob       TEXT    NOT NULL,
	os_sql        TEXT    NOT NULL,
	tag           TEXT    NOT NULL,
	created_at    INTEGER NOT NULL
);
CREATE INDEX group_rules_order ON group_rules (priority, id);

-- device_tags by device id, not row: a device may be tagged before it reports.
CREATE TABLE device_tags (
	device_id TEXT NOT NULL,
	tag       TEXT NOT NULL,
	PRIMARY KEY (device_id, tag)
) WITHOUT ROWID;

-- devices.group_id stays the group a device is exported in (ReadInventory
-- reads it as it did). explicit_group is the group pinned at ingest or by an
-- administrator (NULL: rules decide). assign_seq grows on every write that
-- places a device by rule, so the triggers below can tell their own updates
-- from the inventory's.
ALTER TABLE devices ADD COLUMN explicit_group INTEGER;
ALTER TABLE devices ADD COLUMN assign_seq INTEGER NOT NULL DEFAULT 0;
-- Every group given so far was given explicitly.
UPDATE devices SET explicit_group = group_id WHERE group_id <> 0;

-- device_rule_groups: the group the rules give each device, NULL for none.
CREATE VIEW device_rule_groups AS
SELECT d.id AS device, (
	SELECT r.group_id FROM group_rules r
	WHERE (r.name_glob = '' OR lower(d.name) GLOB r.name_sql)
	  AND (r.domain_suffix = '' OR lower(d.name) = r.domain_suffix
	       OR substr(lower(d.name), -length(r.domain_suffix) - 1) = '.' || r.domain_suffix)
	  AND (r.os_glob = '' OR lower(d.os) GLOB r.os_sql)
	  AND (r.tag = '' OR EXISTS (SELECT 1 FROM device_tags t WHERE t.device_id = d.device_id AND t.tag = r.tag))
	ORDER BY r.priority, r.id LIMIT 1
) AS group_id
FROM devices d;

-- A new device: a group given at ingest is pinned; otherwise rules place it.
CREATE TRIGGER devices_place_on_insert AFTER INSERT ON devices
WHEN NEW.group_id <> 0 OR EXISTS (SELECT 1 FROM group_rules)
BEGIN
	UPDATE devices SET
		explicit_group = nullif(NEW.group_id, 0),
		group_id = coalesce(nullif(NEW.group_id, 0), (SELECT v.group_id FROM device_rule_groups v WHERE v.device = NEW.id), 0),
		assign_seq = assign_seq + 1
	WHERE id = NEW.id;
END;

-- A device updated by the inventory (a report, or SetDeviceGroup): a group
-- that changed was given explicitly (0: taken away, so rules decide);
-- otherwise a new name or OS may match other rules.
CREATE TRIGGER devices_place_on_update AFTER UPDATE OF name, os, group_id ON devices
WHEN NEW.assign_seq = OLD.assign_seq
 AND (NEW.group_id <> OLD.group_id OR NEW.name <> OLD.name OR NEW.os <> OLD.os)
BEGIN
	UPDATE devices SET
		explicit_group = CASE WHEN NEW.group_id <> OLD.group_id THEN nullif(NEW.group_id, 0) ELSE OLD.explicit_group END,
		group_id = coalesce(
			CASE WHEN NEW.group_id <> OLD.group_id THEN nullif(NEW.group_id, 0) ELSE OLD.explicit_group END,
			(SELECT v.group_id FROM device_rule_groups v WHERE v.device = NEW.id), 0),
		assign_seq = assign_seq + 1
	WHERE id = NEW.id;
	UPDATE meta SET version = version + 1
	WHERE id = 1
	  AND (SELECT group_id FROM devices WHERE id = NEW.id) <> OLD.group_id
	  AND EXISTS (SELECT 1 FROM links WHERE device = NEW.id);
END;

-- device_credentials: a device's own reporting secret (its SHA-256), and
-- whether an administrator revoked it. A revoked device may have no secret.
CREATE TABLE device_credentials (
	device_id   TEXT    PRIMARY KEY CHECK (length(device_id) = 40),
	secret_hash BLOB    CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
	enrolled_at INTEGER,
	revoked_at  INTEGER
);

-- audit_log: every administrative action. Never a secret.
CREATE TABLE audit_log (
	id      INTEGER PRIMARY KEY,
	at      INTEGER NOT NULL,
	actor   TEXT    NOT NULL,
	action  TEXT    NOT NULL,
	target  TEXT    NOT NULL,
	details TEXT    NOT NULL
);
