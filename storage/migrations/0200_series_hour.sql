-- Per-series hourly summaries of the sub-daily metrics (the data-centre meters): for each series and UTC hour
-- with readings, how many, the first value, the last (ts, value), and the increase between them as a counter
-- counts it (Prometheus' increase(): after a reset, the new reading itself) with the number of resets. (The
-- first reading's ts is not kept: a read of whole hours needs only its hour. About 116 bytes a row with its
-- key, 10 bytes a reading of a 5-minute meter.)
--
-- Kept current by the rollup refresh for every hour that rollup_dirty does not name: it summarizes the hours it
-- consumes in the same transaction (metrics.hours). A live read of whole hours therefore reads one summary row
-- per series and hour, and the raw readings only of the hours still named in rollup_dirty (the newest one
-- between two refreshes); the day and month rollups are computed from hours, not from every reading.
--
-- series_hour_state names the metrics whose summaries are complete: built in one transaction by the first
-- refresh after this migration (or after a metric joins the catalogue); until then readers read raw readings.
-- An hour's summary depends on its own readings only (the increase across the boundary to the previous hour
-- is taken at read time from the two summaries), so a changed reading changes one summary.

-- (columns ordered so that no padding is stored)
CREATE TABLE series_hour (
    series_id   integer NOT NULL,
    readings    integer NOT NULL CHECK (readings > 0),
    resets      integer NOT NULL,
    hour        timestamptz NOT NULL,
    first_value double precision NOT NULL,
    last_ts     timestamptz NOT NULL,
    last_value  double precision NOT NULL,
    -- Σ over the hour's readings after its first: value − previous, or value after a reset (value < previous)
    increase    double precision NOT NULL,
    PRIMARY KEY (series_id, hour)
);

CREATE TABLE series_hour_state (
    metric   text COLLATE "C" PRIMARY KEY,
    built_at timestamptz NOT NULL DEFAULT now()
);

-- The summaries of the readings of `p_series` with p_lo <= ts < p_hi, one row per series and UTC hour.
CREATE FUNCTION iw_hour_summaries(p_series integer[], p_lo timestamptz, p_hi timestamptz)
RETURNS TABLE (series_id integer, readings integer, resets integer, hour timestamptz,
               first_value double precision, last_ts timestamptz, last_value double precision,
               increase double precision)
LANGUAGE sql STABLE AS $$
    SELECT r.series_id, count(*)::integer, (count(*) FILTER (WHERE r.value < r.prev))::integer, r.hour,
           (array_agg(r.value ORDER BY r.ts))[1], max(r.ts), (array_agg(r.value ORDER BY r.ts DESC))[1],
           coalesce(sum(CASE WHEN r.value >= r.prev THEN r.value - r.prev ELSE r.value END)
                    FILTER (WHERE r.prev IS NOT NULL), 0)
    FROM (
        SELECT p.series_id, date_trunc('hour', p.ts, 'UTC') AS hour, p.ts, p.value,
               lag(p.value) OVER (PARTITION BY p.series_id, date_trunc('hour', p.ts, 'UTC') ORDER BY p.ts) AS prev
        FROM observation_point p
        WHERE p.series_id = ANY(p_series) AND p.ts >= p_lo AND p.ts < p_hi
    ) r
    GROUP BY r.series_id, r.hour
$$;

-- Summarize the given (metric, UTC hour) pairs again: every series of the metric, that hour's readings.
CREATE FUNCTION iw_summarize_hours(p_metric text[], p_hour timestamptz[]) RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (
        SELECT DISTINCT metric, hour FROM unnest(p_metric, p_hour) AS d(metric, hour)
    ), done AS (
        INSERT INTO series_hour AS h
        SELECT x.*
        FROM (SELECT d.metric, d.hour, array_agg(s.id) AS ids FROM d JOIN series s ON s.metric = d.metric
              GROUP BY d.metric, d.hour) k
        CROSS JOIN LATERAL iw_hour_summaries(k.ids, k.hour, k.hour + interval '1 hour') x
        ORDER BY x.series_id, x.hour
        ON CONFLICT (series_id, hour) DO UPDATE SET
            readings = EXCLUDED.readings, resets = EXCLUDED.resets, first_value = EXCLUDED.first_value,
            last_ts = EXCLUDED.last_ts, last_value = EXCLUDED.last_value, increase = EXCLUDED.increase
        RETURNING 1
    )
    SELECT count(*) FROM done
$$;

-- Summarize every reading of a metric (its first build): replaces whatever summaries it had.
CREATE FUNCTION iw_summarize_metric(p_metric text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    ids integer[] := ARRAY(SELECT id FROM series WHERE metric = p_metric);
    n   bigint;
BEGIN
    DELETE FROM series_hour WHERE series_id = ANY(ids);
    INSERT INTO series_hour SELECT * FROM iw_hour_summaries(ids, '-infinity', 'infinity');
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO series_hour_state (metric) VALUES (p_metric)
    ON CONFLICT (metric) DO UPDATE SET built_at = now();
    RETURN n;
END
$$;

-- A row inserted into the observation view (by hand, or by a tool that writes SQL) is marked for the rollups
-- as the pipeline marks what it stores: its hour is not summarized until a refresh has consumed the mark.
CREATE OR REPLACE FUNCTION iw_observation_insert() RETURNS trigger
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
    INSERT INTO rollup_dirty (metric, day, hour)
    VALUES (NEW.metric, (NEW.ts AT TIME ZONE 'UTC')::date, extract(hour FROM NEW.ts AT TIME ZONE 'UTC')::smallint)
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
