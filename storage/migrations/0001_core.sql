-- infrawatch core schema: operators, observations (partitioned by time or a TimescaleDB hypertable),
-- revision history, ingest batches, quarantine, uploads, feed freshness and the rollup change log.

CREATE TABLE operator (
    id          text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{1,31}$'),
    name        text NOT NULL,
    name_zh     text NOT NULL DEFAULT '',
    builtin     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO operator (id, name, name_zh, builtin) VALUES
    ('cmcc', 'China Mobile', '中国移动', true),
    ('ctcc', 'China Telecom', '中国电信', true),
    ('cucc', 'China Unicom', '中国联通', true),
    ('cbn', 'China Broadnet', '中国广电', true),
    ('tower', 'China Tower', '中国铁塔', true),
    ('admin', 'Communications administration (reference series)', '省通信管理局', true);

-- One row per (metric, region, operator, entity, ts): the current value of that observation.
-- With TimescaleDB loaded it is a compressed hypertable; otherwise a table partitioned by month,
-- with a default partition as the safety net and partitions made ahead by iw_ensure_partitions().
CREATE TABLE observation (
    metric      text COLLATE "C" NOT NULL,
    region      integer NOT NULL,
    operator    text COLLATE "C" NOT NULL,
    entity      text COLLATE "C" NOT NULL DEFAULT '',
    ts          timestamptz NOT NULL,
    value       double precision NOT NULL,
    batch_id    bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (metric, region, operator, entity, ts)
) PARTITION BY RANGE (ts);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        DROP TABLE observation;
        CREATE TABLE observation (
            metric      text COLLATE "C" NOT NULL,
            region      integer NOT NULL,
            operator    text COLLATE "C" NOT NULL,
            entity      text COLLATE "C" NOT NULL DEFAULT '',
            ts          timestamptz NOT NULL,
            value       double precision NOT NULL,
            batch_id    bigint NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (metric, region, operator, entity, ts)
        );
        PERFORM create_hypertable('observation', 'ts', chunk_time_interval => interval '7 days');
        -- Compression is a Timescale-License feature: an Apache-only build keeps plain chunks.
        IF current_setting('timescaledb.license', true) IS DISTINCT FROM 'apache' THEN
            ALTER TABLE observation SET (timescaledb.compress,
                timescaledb.compress_segmentby = 'metric, operator',
                timescaledb.compress_orderby = 'region, entity, ts');
            PERFORM add_compression_policy('observation', interval '60 days');
        END IF;
    ELSE
        CREATE TABLE observation_default PARTITION OF observation DEFAULT;
        -- Time-range scans across all series (retention, rollup rebuilds).
        CREATE INDEX observation_ts_brin ON observation USING brin (ts);
    END IF;
END $$;

-- The values a revision replaced: newest wins in `observation`, the earlier ones are kept here.
CREATE TABLE observation_history (
    metric        text COLLATE "C" NOT NULL,
    region        integer NOT NULL,
    operator      text COLLATE "C" NOT NULL,
    entity        text COLLATE "C" NOT NULL,
    ts            timestamptz NOT NULL,
    value         double precision NOT NULL,
    batch_id      bigint NOT NULL,
    superseded_at timestamptz NOT NULL DEFAULT now(),
    superseded_by bigint NOT NULL
);
CREATE INDEX observation_history_identity ON observation_history (metric, region, operator, entity, ts);

CREATE TABLE ingest_batch (
    id          bigserial PRIMARY KEY,
    source      text NOT NULL,
    operator    text,
    received_at timestamptz NOT NULL DEFAULT now(),
    accepted    integer NOT NULL DEFAULT 0,
    duplicates  integer NOT NULL DEFAULT 0,
    revised     integer NOT NULL DEFAULT 0,
    rejected    integer NOT NULL DEFAULT 0,
    upload_id   uuid
);
CREATE INDEX ingest_batch_received ON ingest_batch (received_at);
CREATE INDEX ingest_batch_operator ON ingest_batch (operator, received_at);

CREATE TABLE quarantine (
    id          bigserial PRIMARY KEY,
    batch_id    bigint,
    source      text NOT NULL,
    operator    text,
    location    text NOT NULL DEFAULT '',
    field       text NOT NULL DEFAULT '',
    raw         text NOT NULL,
    reason      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_operator ON quarantine (operator, received_at);
CREATE INDEX quarantine_received ON quarantine (received_at);

CREATE TABLE upload (
    id          uuid PRIMARY KEY,
    operator    text,
    filename    text NOT NULL,
    sha256      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    report      jsonb NOT NULL
);
CREATE INDEX upload_operator ON upload (operator, created_at);

-- Last observation per operator, metric and region: feeds freshness and stale alerts.
CREATE TABLE feed_freshness (
    operator         text COLLATE "C" NOT NULL,
    metric           text COLLATE "C" NOT NULL,
    region           integer NOT NULL,
    last_ts          timestamptz NOT NULL,
    last_received_at timestamptz NOT NULL,
    PRIMARY KEY (operator, metric, region)
);

-- Days (UTC) whose observations changed since the rollups were last refreshed.
CREATE TABLE rollup_dirty (
    metric text COLLATE "C" NOT NULL,
    day    date NOT NULL,
    PRIMARY KEY (metric, day)
);

-- Create monthly partitions (UTC months) covering [from_ts, to_ts]; rows that already landed in the
-- default partition for such a month are moved into the new partition, so nothing is ever lost.
-- A no-op when `observation` is not a partitioned table (TimescaleDB hypertable).
CREATE FUNCTION iw_ensure_partitions(from_ts timestamptz, to_ts timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m      timestamptz;
    lo     timestamptz;
    hi     timestamptz;
    part   text;
    made   integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'observation'::regclass) THEN
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
            EXECUTE format('CREATE TABLE %I (LIKE observation INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('WITH moved AS (DELETE FROM observation_default WHERE ts >= %L AND ts < %L RETURNING *) '
                           'INSERT INTO %I SELECT * FROM moved', lo, hi, part);
            EXECUTE format('ALTER TABLE observation ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
            made := made + 1;
        END IF;
        m := hi;
    END LOOP;
    RETURN made;
END $$;

-- Drop whole monthly partitions that end before `older_than`; returns how many were dropped.
CREATE FUNCTION iw_apply_retention(older_than timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r      record;
    n      integer := 0;
BEGIN
    FOR r IN
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'observation'::regclass AND c.relname ~ '^observation_y[0-9]{4}m[0-9]{2}$'
    LOOP
        IF (to_date(substr(r.relname, 14, 4) || substr(r.relname, 19, 2), 'YYYYMM') + interval '1 month')
           AT TIME ZONE 'UTC' <= older_than THEN
            EXECUTE format('DROP TABLE %I', r.relname);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;
