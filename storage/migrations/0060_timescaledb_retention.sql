-- TimescaleDB only: retention drops whole chunks of the `observation` hypertable that end before the limit,
-- so `infrawatch db maintain --retention-days N` and the scheduler's maintenance job work there too
-- (0001's iw_apply_retention only knows monthly partitions). Nothing changes on plain PostgreSQL.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
       AND NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'observation'::regclass) THEN
        CREATE OR REPLACE FUNCTION iw_apply_retention(older_than timestamptz) RETURNS integer
        LANGUAGE sql AS $f$
            SELECT count(*)::integer FROM drop_chunks('observation', older_than => older_than)
        $f$;
    END IF;
END $$;
