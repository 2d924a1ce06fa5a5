-- The links' foreign keys cost PostgreSQL a trigger call per inserted row,
-- two index probes that were 90% of a new device's ingest (10,000 links:
-- 400 ms of checks, 40 ms of inserts). The store keeps them true itself:
-- links are written only by ApplyDeviceSets, under the write lock, with
-- device and certificate ids it resolved or allocated in that transaction,
-- and neither devices nor certificates are ever deleted.
ALTER TABLE links DROP CONSTRAINT links_device_fkey;
ALTER TABLE links DROP CONSTRAINT links_certificate_fkey;
