-- What the boards read besides the series (docs/metrics.md, "From a row to a panel"), published by the metrics
-- layer so that Grafana selects from the same definitions the API uses and no rule is written twice:
--   * iw_metric: each metric's push cadence, kept equal to the catalogue by metrics.rollups.publish_catalogue
--     (like iw_indicator; seeded here so a database answers before its first refresh);
--   * iw_feed_stale(): the stale rule of a feed, its one definition (the factor lives here; Python's
--     metrics.freshness.STALE_FACTOR names it for texts and a test keeps the two equal);
--   * iw_feed_freshness(): every feed (operator, metric, region) with its age, cadence and state, read by
--     metrics.freshness.feed_freshness (GET /v1/freshness, the console) and, per operator and metric, by the
--     feeds board (iw_feed_freshness_by_metric);
--   * iw_series_entities(): the entity scopes (data centres) the published series keep, so the data-centre
--     board reads each centre through iw_indicator_series like every other board.

CREATE TABLE iw_metric (
    id        text COLLATE "C" PRIMARY KEY,
    cadence_s integer NOT NULL CHECK (cadence_s > 0)
);

INSERT INTO iw_metric (id, cadence_s) VALUES
    ('bs5g_total', 2678400),
    ('bs5g_built_total', 2678400),
    ('bs5g_built_ytd', 2678400),
    ('bs4g_total', 2678400),
    ('bs_mobile_total', 2678400),
    ('users_5g', 2678400),
    ('gigabit_users', 2678400),
    ('broadband_users', 2678400),
    ('ports_broadband', 2678400),
    ('ports_ftth', 2678400),
    ('ports_10gpon', 2678400),
    ('fibre_km', 2678400),
    ('egress_bandwidth_gbps', 2678400),
    ('ipv6_active_users', 2678400),
    ('iot_terminals_mobile', 2678400),
    ('iot_connections_pan', 2678400),
    ('traffic_mobile_gb', 86400),
    ('ipv6_traffic_mobile_gb', 86400),
    ('traffic_fixed_gb', 86400),
    ('ipv6_traffic_fixed_gb', 86400),
    ('dc_energy_total_kwh', 300),
    ('dc_energy_it_kwh', 300),
    ('dc_racks', 2678400),
    ('dc_compute_pflops', 2678400),
    ('dc_count', 2678400),
    ('bs5g_energy_kwh', 86400),
    ('townships', 2678400),
    ('townships_5g', 2678400),
    ('villages', 2678400),
    ('villages_5g', 2678400),
    ('iir_resolutions_total', 2678400),
    ('enterprises_cloud_ytd', 2678400),
    ('programme_count', 31622400),
    ('milestone', 31622400),
    ('gigabit_city', 31622400),
    ('population', 31622400)
;

-- A feed is stale when its newest observation is older than twice its metric's cadence.
CREATE FUNCTION iw_feed_stale(p_age_s double precision, p_cadence_s double precision) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_age_s > 2 * p_cadence_s
$$;

-- What the boards show for iw_feed_stale(): 'stale' or 'fresh'.
CREATE FUNCTION iw_feed_state(p_age_s double precision, p_cadence_s double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN iw_feed_stale(p_age_s, p_cadence_s) THEN 'stale' ELSE 'fresh' END
$$;

-- Every feed seen, per (operator, metric, region), at p_at: its newest observation's age (never negative), its
-- metric's cadence (a day for a metric the catalogue no longer has) and its state.
CREATE FUNCTION iw_feed_freshness(p_at timestamptz DEFAULT now())
RETURNS TABLE (
    operator text, metric text, region integer, last_ts timestamptz, last_received_at timestamptz,
    age_s double precision, cadence_s integer, stale boolean, state text
)
LANGUAGE sql STABLE AS $$
    SELECT f.operator, f.metric, f.region, f.last_ts, f.last_received_at, a.age_s, a.cadence_s,
           iw_feed_stale(a.age_s, a.cadence_s), iw_feed_state(a.age_s, a.cadence_s)
    FROM feed_freshness f
    LEFT JOIN iw_metric m ON m.id = f.metric
    CROSS JOIN LATERAL (
        SELECT greatest(0, extract(epoch FROM p_at - f.last_ts))::double precision AS age_s,
               coalesce(m.cadence_s, 86400) AS cadence_s
    ) a
$$;

-- Per operator and metric: the newest region decides (a feed is fresh while any of its regions is), `regions`
-- counts the regions reporting.
CREATE FUNCTION iw_feed_freshness_by_metric(p_at timestamptz DEFAULT now())
RETURNS TABLE (
    operator text, metric text, last_ts timestamptz, last_received_at timestamptz, age_s double precision,
    cadence_s integer, regions bigint, stale boolean, state text
)
LANGUAGE sql STABLE AS $$
    SELECT f.operator, f.metric, max(f.last_ts), max(f.last_received_at), min(f.age_s), f.cadence_s, count(*),
           iw_feed_stale(min(f.age_s), f.cadence_s), iw_feed_state(min(f.age_s), f.cadence_s)
    FROM iw_feed_freshness(p_at) f
    GROUP BY f.operator, f.metric, f.cadence_s
$$;

-- The entity scopes (city, operator, entity) the published series keep for an indicator with a bucket
-- overlapping [p_start, p_end): the data centres of dc_pue, rolled up or in the pending tail.
CREATE FUNCTION iw_series_entities(p_indicator text, p_interval text, p_start timestamptz, p_end timestamptz)
RETURNS TABLE (region integer, operator text, entity text)
LANGUAGE sql STABLE AS $$
    WITH span AS (SELECT min(b.ts) AS first, max(b.ts) AS last FROM iw_buckets(p_start, p_end, p_interval) b)
    SELECT r.region, r.operator, r.entity
    FROM indicator_rollup r, span
    WHERE r.indicator = p_indicator AND r.interval = p_interval AND r.entity <> ''
      AND r.bucket >= span.first AND r.bucket <= span.last
    UNION
    SELECT p.region, p.operator, p.entity
    FROM indicator_pending p, span
    WHERE p.indicator = p_indicator AND p.interval = p_interval AND p.entity <> ''
      AND p.bucket >= span.first AND p.bucket <= span.last
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infrawatch_grafana') THEN
        GRANT SELECT ON iw_metric TO infrawatch_grafana;
        GRANT EXECUTE ON FUNCTION iw_feed_stale(double precision, double precision) TO infrawatch_grafana;
        GRANT EXECUTE ON FUNCTION iw_feed_state(double precision, double precision) TO infrawatch_grafana;
        GRANT EXECUTE ON FUNCTION iw_feed_freshness(timestamptz) TO infrawatch_grafana;
        GRANT EXECUTE ON FUNCTION iw_feed_freshness_by_metric(timestamptz) TO infrawatch_grafana;
        GRANT EXECUTE ON FUNCTION iw_series_entities(text, text, timestamptz, timestamptz) TO infrawatch_grafana;
    END IF;
END $$;

-- Tiny tables autovacuum never analyses (fewer than 50 changes): without statistics the planner takes the
-- operator table for some 600 rows, prices a series per operator (the operators board, the explorer) far too
-- high and JIT-compiles the query (0.6 s of 0.7 s on the 2023 scenario; 0.1 s with statistics).
ANALYZE operator, iw_metric;
