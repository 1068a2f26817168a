-- Series ids: the narrow observation layout (docs/architecture.md, "How observations are stored").
--
-- `series` names each (metric, region, operator, entity) once, with an integer id. `observation_point` holds
-- one row per (series_id, ts): the value and the batch that stored it, keyed by (series_id, ts). That is
-- ~95 bytes an observation with its key instead of 196, and a COPY into it runs about twice as fast (issue
-- 18, docs/benchmarks.md). It is still partitioned by UTC month (partitions observation_yYYYYmMM and
-- observation_default, made by iw_ensure_partitions, dropped by iw_apply_retention) or, with TimescaleDB, a
-- hypertable compressed by series.
--
-- Gone from the rows: received_at (the batch's, ingest_batch.received_at, is the same instant: both were
-- now() of the storing transaction) and the BRIN index on ts of 0001 / 0090 (every read goes by series and
-- time, the primary key; retention drops whole partitions).
--
-- No foreign key from observation_point.series_id to series: its check costs every COPYed row a lookup and
-- a share lock on the series row (measured: a COPY of 1M rows took 1.7 s without it, 9.0 s with it), and
-- series rows are never deleted; the ingest pipeline takes ids only from committed series rows
-- (ingest/pipeline.py).
--
-- `observation` becomes a view with the old columns (received_at from the batch), so that every reader,
-- the boards and ad-hoc SQL keep working; an INSERT into it still works (one row at a time, an INSTEAD OF
-- trigger: the ingest pipeline writes observation_point directly).
--
-- An existing database is converted in place: series from the distinct identities, every row copied with
-- its value and batch, the names swapped. observation_history, quarantine, ingest_batch, feed_freshness and
-- the rollups are not touched; views over the old table are made again over the new view, with their grants.

CREATE TABLE series (
    id       integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    metric   text COLLATE "C" NOT NULL,
    region   integer NOT NULL,
    operator text COLLATE "C" NOT NULL,
    entity   text COLLATE "C" NOT NULL DEFAULT '',
    UNIQUE (metric, region, operator, entity)
);

-- Views over the old table (and views over those), oldest first, to be made again over the new view.
CREATE TEMP TABLE iw_dependent_view ON COMMIT DROP AS
WITH RECURSIVE dep(oid) AS (
    SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = 'observation'::regclass
    UNION
    SELECT r.ev_class FROM dep JOIN pg_depend d ON d.refobjid = dep.oid AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE r.ev_class <> dep.oid
)
SELECT c.oid::bigint AS oid, c.relname::text AS name, c.relkind::text AS kind, pg_get_viewdef(c.oid) AS definition,
       c.relacl
FROM dep JOIN pg_class c ON c.oid = dep.oid
WHERE c.oid <> 'observation'::regclass;

DO $$
DECLARE
    v       record;
    part    record;
    hyper   boolean := NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'observation'::regclass);
BEGIN
    IF EXISTS (SELECT 1 FROM iw_dependent_view WHERE kind <> 'v') THEN
        RAISE EXCEPTION 'a materialized view reads observation (%); drop it, upgrade, then make it again',
            (SELECT string_agg(name, ', ') FROM iw_dependent_view WHERE kind <> 'v');
    END IF;
    FOR v IN SELECT name FROM iw_dependent_view ORDER BY oid DESC LOOP
        EXECUTE format('DROP VIEW %I', v.name);
    END LOOP;

    ALTER TABLE observation RENAME TO observation_wide;
    IF hyper THEN
        CREATE TABLE observation_point (
            series_id integer NOT NULL,
            ts        timestamptz NOT NULL,
            value     double precision NOT NULL,
            batch_id  bigint NOT NULL,
            PRIMARY KEY (series_id, ts)
        );
        PERFORM create_hypertable('observation_point', 'ts', chunk_time_interval => interval '7 days');
        -- Compression is a Timescale-License feature: an Apache-only build keeps plain chunks.
        IF current_setting('timescaledb.license', true) IS DISTINCT FROM 'apache' THEN
            ALTER TABLE observation_point SET (timescaledb.compress,
                timescaledb.compress_segmentby = 'series_id',
                timescaledb.compress_orderby = 'ts');
            PERFORM add_compression_policy('observation_point', interval '60 days');
        END IF;
    ELSE
        DROP INDEX IF EXISTS observation_ts_brin;
        CREATE TABLE observation_point (
            series_id integer NOT NULL,
            ts        timestamptz NOT NULL,
            value     double precision NOT NULL,
            batch_id  bigint NOT NULL
        ) PARTITION BY RANGE (ts);
        -- the same partitions, under the same names (the old ones step aside)
        FOR part IN
            SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'observation_wide'::regclass
            ORDER BY c.relname
        LOOP
            EXECUTE format('ALTER TABLE %I RENAME TO %I', part.name, part.name || '_wide');
            EXECUTE format('CREATE TABLE %I PARTITION OF observation_point %s', part.name, part.bound);
        END LOOP;
    END IF;

    INSERT INTO series (metric, region, operator, entity)
    SELECT DISTINCT metric, region, operator, entity FROM observation_wide ORDER BY 1, 2, 3, 4;
    INSERT INTO observation_point (series_id, ts, value, batch_id)
    SELECT s.id, o.ts, o.value, o.batch_id
    FROM observation_wide o JOIN series s USING (metric, region, operator, entity);
    DROP TABLE observation_wide;
    IF NOT hyper THEN
        -- built once over the copied rows (faster than maintained row by row); each partition gets its own
        ALTER TABLE observation_point ADD PRIMARY KEY (series_id, ts);
    END IF;
END $$;

-- What the rows used to look like: every reader of `observation` keeps working. The join to ingest_batch
-- is left out of any query that does not ask for received_at.
CREATE VIEW observation AS
SELECT s.metric, s.region, s.operator, s.entity, p.ts, p.value, p.batch_id, b.received_at
FROM observation_point p
JOIN series s ON s.id = p.series_id
LEFT JOIN ingest_batch b ON b.id = p.batch_id;

ALTER VIEW observation ALTER COLUMN entity SET DEFAULT '';

-- An INSERT into the view: the series found or made (safe beside concurrent writers), then the point.
CREATE FUNCTION iw_observation_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sid integer;
BEGIN
    NEW.entity := coalesce(NEW.entity, '');
    SELECT id INTO sid FROM series
    WHERE metric = NEW.metric AND region = NEW.region AND operator = NEW.operator AND entity = NEW.entity;
    IF sid IS NULL THEN
        INSERT INTO series (metric, region, operator, entity) VALUES (NEW.metric, NEW.region, NEW.operator, NEW.entity)
        ON CONFLICT DO NOTHING RETURNING id INTO sid;
    END IF;
    IF sid IS NULL THEN  -- made by a writer that committed meanwhile: this statement's snapshot sees it
        SELECT id INTO sid FROM series
        WHERE metric = NEW.metric AND region = NEW.region AND operator = NEW.operator AND entity = NEW.entity;
    END IF;
    INSERT INTO observation_point (series_id, ts, value, batch_id) VALUES (sid, NEW.ts, NEW.value, NEW.batch_id);
    RETURN NEW;
END $$;

CREATE TRIGGER observation_insert INSTEAD OF INSERT ON observation
FOR EACH ROW EXECUTE FUNCTION iw_observation_insert();

-- The views that read the old table, again (over the view), with their grants.
DO $$
DECLARE
    v record;
    g record;
BEGIN
    FOR v IN SELECT * FROM iw_dependent_view ORDER BY oid LOOP
        EXECUTE format('CREATE VIEW %I AS %s', v.name, v.definition);
        FOR g IN SELECT a.grantee, a.privilege_type FROM aclexplode(v.relacl) a
                 WHERE a.grantee <> (SELECT relowner FROM pg_class WHERE oid = v.name::regclass) LOOP
            EXECUTE format('GRANT %s ON %I TO %s', g.privilege_type, v.name,
                           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END);
        END LOOP;
    END LOOP;
END $$;

-- 0100's reported totals read the series and their points directly.
CREATE OR REPLACE VIEW iw_reported_total AS
SELECT s.metric, s.region, s.operator, p.ts, p.value
FROM series s JOIN observation_point p ON p.series_id = s.id
WHERE s.operator IN ('all', 'admin') AND s.entity = '';

-- 0001's partition functions, for observation_point (same partition names; a no-op on a hypertable).
CREATE OR REPLACE FUNCTION iw_ensure_partitions(from_ts timestamptz, to_ts timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m      timestamptz;
    lo     timestamptz;
    hi     timestamptz;
    part   text;
    made   integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'observation_point'::regclass) THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('infrawatch.partitions'));
    m := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    WHILE m <= to_ts LOOP
        lo := m;
        hi := ((m AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        part := format('observation_y%sm%s', to_char(lo AT TIME ZONE 'UTC', 'YYYY'),
                       to_char(lo AT TIME ZONE 'UTC', 'MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE observation_point INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('WITH moved AS (DELETE FROM observation_default WHERE ts >= %L AND ts < %L RETURNING *) '
                           'INSERT INTO %I SELECT * FROM moved', lo, hi, part);
            EXECUTE format('ALTER TABLE observation_point ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
            made := made + 1;
        END IF;
        m := hi;
    END LOOP;
    RETURN made;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'observation_point'::regclass) THEN
        -- Drop whole monthly partitions that end before `older_than`; returns how many were dropped.
        CREATE OR REPLACE FUNCTION iw_apply_retention(older_than timestamptz) RETURNS integer
        LANGUAGE plpgsql AS $f$
        DECLARE
            r      record;
            n      integer := 0;
        BEGIN
            FOR r IN
                SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'observation_point'::regclass AND c.relname ~ '^observation_y[0-9]{4}m[0-9]{2}$'
            LOOP
                IF (to_date(substr(r.relname, 14, 4) || substr(r.relname, 19, 2), 'YYYYMM') + interval '1 month')
                   AT TIME ZONE 'UTC' <= older_than THEN
                    EXECUTE format('DROP TABLE %I', r.relname);
                    n := n + 1;
                END IF;
            END LOOP;
            RETURN n;
        END $f$;
    ELSE
        -- TimescaleDB (0060): whole chunks of the hypertable that end before the limit.
        CREATE OR REPLACE FUNCTION iw_apply_retention(older_than timestamptz) RETURNS integer
        LANGUAGE sql AS $f$
            SELECT count(*)::integer FROM drop_chunks('observation_point', older_than => older_than)
        $f$;
    END IF;
END $$;

ANALYZE series;
ANALYZE observation_point;
