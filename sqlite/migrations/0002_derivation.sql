-- derivation is the version of the parser (certparse.Version) that made the
-- json of every stored certificate; 0 before any was recorded. When the
-- parser changes, Rederive makes the json anew from the der.
ALTER TABLE meta ADD COLUMN derivation INTEGER NOT NULL DEFAULT 0;
