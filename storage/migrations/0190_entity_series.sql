-- iw_entity_series(): every entity's series (data centres) of one indicator, in one read: what
-- iw_indicator_series gives for each entity scope, at the buckets where the entity holds a value. Both read
-- their buckets from iw_series_frame(), the one statement of the rule (0130_read_path.sql says why): a bucket
-- ending after the indicator's pending cutoff is read from indicator_pending, any other from
-- indicator_rollup; increases are cumulated from the first bucket of the range (per entity); a pending bucket
-- is current when the pending rows were computed after the newest input arrived. Rows are returned only where
-- the entity has a value (a cumulated increase therefore has no row where iw_indicator_series would carry
-- the running sum over an empty bucket).
--
-- The data-centre board read every centre through iw_indicator_series, one LATERAL call per centre over the
-- centres iw_series_entities() listed: 3 to 7 times slower than the board that selected indicator_rollup
-- directly. iw_entity_series is one range scan of each table on (indicator, interval, entity, bucket), and
-- iw_series_entities, read by nothing else, is dropped.

-- The buckets of a series of the indicator over [p_start, p_end): each bucket's start, whether it is read
-- from the pending tail, and the indicator's constants (cumulated; the pending tail saw the newest input).
CREATE FUNCTION iw_series_frame(p_indicator text, p_start timestamptz, p_end timestamptz, p_interval text)
RETURNS TABLE (ts timestamptz, pending boolean, cumulative boolean, tail_current boolean)
LANGUAGE sql STABLE AS $$
    WITH ind AS (
        SELECT i.cumulative, s.cutoff,
               s.computed_at >= coalesce((SELECT max(f.last_received_at) FROM feed_freshness f
                                          WHERE f.metric = ANY(i.inputs)), '-infinity') AS fresh
        FROM iw_indicator i LEFT JOIN pending_state s ON s.indicator = i.id AND s.interval = p_interval
        WHERE i.id = p_indicator
    )
    SELECT bk.ts, (ind.cutoff IS NOT NULL AND bk.ts_end > ind.cutoff), ind.cumulative, coalesce(ind.fresh, false)
    FROM ind, iw_buckets(p_start, p_end, p_interval) bk
$$;

-- What it returns is unchanged (0170_series_by_key.sql says how it reads the keys).
CREATE OR REPLACE FUNCTION iw_indicator_series(
    p_indicator text, p_region integer, p_operator text, p_start timestamptz, p_end timestamptz,
    p_interval text, p_entity text DEFAULT ''
) RETURNS TABLE (ts timestamptz, value double precision, pending boolean, current boolean)
LANGUAGE sql STABLE AS $$
    WITH b AS MATERIALIZED (
        SELECT * FROM iw_series_frame(p_indicator, p_start, p_end, p_interval)
    ), r AS (
        SELECT x.bucket, x.value FROM indicator_rollup x
        WHERE x.indicator = p_indicator COLLATE "C" AND x.interval = p_interval COLLATE "default" AND x.region = p_region
          AND x.operator = (CASE WHEN p_operator IS NULL OR p_operator = 'all' THEN '' ELSE p_operator END) COLLATE "C"
          AND x.entity = coalesce(p_entity, '') COLLATE "C"
          AND x.bucket >= (SELECT min(b.ts) FROM b) AND x.bucket <= (SELECT max(b.ts) FROM b)
    ), t AS (
        SELECT x.bucket, x.value FROM indicator_pending x
        WHERE x.indicator = p_indicator COLLATE "C" AND x.interval = p_interval COLLATE "default" AND x.region = p_region
          AND x.operator = (CASE WHEN p_operator IS NULL OR p_operator = 'all' THEN '' ELSE p_operator END) COLLATE "C"
          AND x.entity = coalesce(p_entity, '') COLLATE "C"
          AND x.bucket >= (SELECT min(b.ts) FROM b WHERE b.pending) AND x.bucket <= (SELECT max(b.ts) FROM b)
    ), v AS (
        SELECT b.ts, b.pending, b.cumulative, b.tail_current,
               CASE WHEN b.pending THEN t.value ELSE r.value END AS value
        FROM b
        LEFT JOIN r ON NOT b.pending AND r.bucket = b.ts
        LEFT JOIN t ON b.pending AND t.bucket = b.ts
    )
    SELECT v.ts,
           CASE WHEN v.cumulative THEN sum(v.value) OVER (ORDER BY v.ts) ELSE v.value END,
           v.pending,
           NOT v.pending OR v.tail_current
    FROM v
    ORDER BY v.ts
$$;

CREATE FUNCTION iw_entity_series(p_indicator text, p_interval text, p_start timestamptz, p_end timestamptz)
RETURNS TABLE (entity text, region integer, operator text, ts timestamptz, value double precision,
               pending boolean, current boolean)
LANGUAGE sql STABLE AS $$
    WITH b AS MATERIALIZED (
        SELECT * FROM iw_series_frame(p_indicator, p_start, p_end, p_interval)
    ), ind AS (
        SELECT b.cumulative, b.tail_current FROM b LIMIT 1
    ), span AS (
        SELECT min(b.ts) AS first, max(b.ts) AS last,
               coalesce(min(b.ts) FILTER (WHERE b.pending), 'infinity') AS first_pending
        FROM b
    ), v AS NOT MATERIALIZED (
        SELECT x.entity, x.region, x.operator, x.bucket AS ts, false AS pending, x.value
        FROM indicator_rollup x, span
        WHERE x.indicator = p_indicator COLLATE "C" AND x.interval = p_interval COLLATE "default"
          AND x.entity > '' COLLATE "C"
          AND x.bucket >= span.first AND x.bucket <= span.last AND x.bucket < span.first_pending
          AND x.bucket IN (SELECT b.ts FROM b WHERE NOT b.pending)
        UNION ALL
        SELECT x.entity, x.region, x.operator, x.bucket, true, x.value
        FROM indicator_pending x, span
        WHERE x.indicator = p_indicator COLLATE "C" AND x.interval = p_interval COLLATE "default"
          AND x.entity > '' COLLATE "C"
          AND x.bucket >= span.first_pending AND x.bucket <= span.last
          AND x.bucket IN (SELECT b.ts FROM b WHERE b.pending)
    )
    -- the running sum only for a cumulated indicator: the window's sort would otherwise cost most of the read
    SELECT v.entity, v.region, v.operator, v.ts, v.value, v.pending, NOT v.pending OR ind.tail_current
    FROM ind, v
    WHERE NOT ind.cumulative
    UNION ALL
    SELECT v.entity, v.region, v.operator, v.ts,
           sum(v.value) OVER (PARTITION BY v.region, v.operator, v.entity ORDER BY v.ts),
           v.pending, NOT v.pending OR ind.tail_current
    FROM ind, v
    WHERE ind.cumulative
$$;

DROP FUNCTION iw_series_entities(text, text, timestamptz, timestamptz);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infrawatch_grafana') THEN
        GRANT EXECUTE ON FUNCTION iw_series_frame(text, timestamptz, timestamptz, text) TO infrawatch_grafana;
        GRANT EXECUTE ON FUNCTION iw_entity_series(text, text, timestamptz, timestamptz) TO infrawatch_grafana;
    END IF;
END $$;
