-- The BRIN index on observation.ts (plain PostgreSQL path) summarizes each block range as soon as it is
-- full (an autovacuum work item) instead of at the next VACUUM: a range not yet summarized matches every
-- query, so until then "the last two hours" read the whole month's partition. Rebuilt with the option
-- (BRIN builds are quick); new monthly partitions copy it from the partitioned index.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class WHERE relname = 'observation_ts_brin' AND relkind = 'I') THEN
        DROP INDEX observation_ts_brin;
        CREATE INDEX observation_ts_brin ON observation USING brin (ts) WITH (autosummarize = on);
    END IF;
END $$;
