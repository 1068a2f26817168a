-- A rollup refresh no longer holds the marks it consumes for the whole of its work. It takes them out of
-- rollup_dirty in a short transaction of its own into rollup_work, and recomputes in a second one, which
-- deletes them from rollup_work as it commits (a refresh that fails leaves them there for the next one).
--
-- Before, the refresh deleted the marks in its long transaction. A writer that marked the same hour meanwhile
-- (INSERT … ON CONFLICT DO NOTHING on a row deleted by a transaction still in progress) had to wait for the
-- refresh to commit: ingest of the current hour stalled for as long as a refresh ran.
--
-- The short transaction first locks rollup_dirty against writers (SHARE ROW EXCLUSIVE, for milliseconds).
-- That waits for the writers that have already added marks to commit, so that the recompute sees their
-- readings. Without it, a writer that found its mark present, and committed after the recompute read the
-- readings, left its reading out of the rollups with no mark to bring it back.
--
-- rollup_pending is what is still pending: marks not taken yet, and marks taken by a refresh that has not
-- committed, each with the instant its UTC hour starts (`at`). Readers ask it which hours the rollups and
-- hourly summaries may not have yet.

CREATE TABLE rollup_work (LIKE rollup_dirty INCLUDING ALL);

CREATE VIEW rollup_pending AS
SELECT metric, day, hour, (day + make_interval(hours => hour)) AT TIME ZONE 'UTC' AS at
FROM (SELECT metric, day, hour FROM rollup_dirty UNION ALL SELECT metric, day, hour FROM rollup_work) m;
