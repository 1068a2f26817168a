-- iw_indicator_series reads each series with one range scan of its rolled-up buckets (and one of its pending
-- tail) on the primary keys, joined to the buckets, instead of one probe per bucket; the keys are compared in
-- the columns' collations ("C" for indicator, operator and entity, the default for interval), without which
-- the planner cannot use the keys: a board calling it per city and operator (LATERAL) took seconds. What it
-- returns is unchanged (0130_read_path.sql says what it reads and why).
CREATE OR REPLACE FUNCTION iw_indicator_series(
    p_indicator text, p_region integer, p_operator text, p_start timestamptz, p_end timestamptz,
    p_interval text, p_entity text DEFAULT ''
) RETURNS TABLE (ts timestamptz, value double precision, pending boolean, current boolean)
LANGUAGE sql STABLE AS $$
    WITH ind AS (
        SELECT i.cumulative, s.cutoff,
               s.computed_at >= coalesce((SELECT max(f.last_received_at) FROM feed_freshness f
                                          WHERE f.metric = ANY(i.inputs)), '-infinity') AS fresh
        FROM iw_indicator i LEFT JOIN pending_state s ON s.indicator = i.id AND s.interval = p_interval
        WHERE i.id = p_indicator
    ), b AS MATERIALIZED (
        SELECT bk.ts, (ind.cutoff IS NOT NULL AND bk.ts_end > ind.cutoff) AS pending
        FROM ind, iw_buckets(p_start, p_end, p_interval) bk
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
        SELECT b.ts, b.pending, CASE WHEN b.pending THEN t.value ELSE r.value END AS value
        FROM b
        LEFT JOIN r ON NOT b.pending AND r.bucket = b.ts
        LEFT JOIN t ON b.pending AND t.bucket = b.ts
    )
    SELECT v.ts,
           CASE WHEN ind.cumulative THEN sum(v.value) OVER (ORDER BY v.ts) ELSE v.value END,
           v.pending,
           NOT v.pending OR coalesce(ind.fresh, false)
    FROM v, ind
    ORDER BY v.ts
$$;
