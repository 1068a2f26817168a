-- The UTC hour of the earliest change a dirty row stands for, so that a series read takes the rollups up to
-- that hour instead of the start of its day (meters push every few minutes: "today" is nearly always
-- dirty between two refreshes). Rows without an hour (0) stand for the whole day, as before. One row per
-- changed hour keeps the ingest's INSERT … ON CONFLICT DO NOTHING free of row locks.
ALTER TABLE rollup_dirty ADD COLUMN hour smallint NOT NULL DEFAULT 0 CHECK (hour BETWEEN 0 AND 23);
ALTER TABLE rollup_dirty DROP CONSTRAINT rollup_dirty_pkey;
ALTER TABLE rollup_dirty ADD PRIMARY KEY (metric, day, hour);
