-- One read path for series (docs/metrics.md, "From a row to a panel"). Every value is computed by the metrics
-- layer (Python, metrics.compute / metrics.indicators) and published here; these functions only say how a
-- series is read from what is published, so that the API (metrics.query.indicator_series), the indicator
-- explorer and the plan-targets board select the same rows:
--   * indicator_rollup: the buckets of the last refresh (metrics.rollups.refresh_rollups);
--   * indicator_pending: the buckets changes since then can reach (the pending tail), recomputed from the
--     observations by metrics.rollups.refresh_pending, with pending_state saying from which instant a
--     series reads them (`cutoff`) and when they were computed;
--   * iw_indicator: what a reader needs to know of each indicator (published by the metrics layer from the
--     catalogue, metrics.rollups.publish_catalogue): whether its buckets hold increases to cumulate, and
--     its input metrics (a pending tail older than their newest reading is flagged not current).

CREATE TABLE iw_indicator (
    id         text COLLATE "C" PRIMARY KEY,
    cumulative boolean NOT NULL,
    inputs     text[] NOT NULL
);

INSERT INTO iw_indicator (id, cumulative, inputs) VALUES
    ('bs5g_total', false, ARRAY['bs5g_total']::text[]),
    ('bs5g_built_total', false, ARRAY['bs5g_built_total']::text[]),
    ('bs5g_built_ytd', false, ARRAY['bs5g_built_ytd']::text[]),
    ('bs4g_total', false, ARRAY['bs4g_total']::text[]),
    ('bs_mobile_total', false, ARRAY['bs_mobile_total']::text[]),
    ('users_5g', false, ARRAY['users_5g']::text[]),
    ('gigabit_users', false, ARRAY['gigabit_users']::text[]),
    ('broadband_users', false, ARRAY['broadband_users']::text[]),
    ('ports_broadband', false, ARRAY['ports_broadband']::text[]),
    ('ports_ftth', false, ARRAY['ports_ftth']::text[]),
    ('ports_10gpon', false, ARRAY['ports_10gpon']::text[]),
    ('fibre_km', false, ARRAY['fibre_km']::text[]),
    ('egress_bandwidth_gbps', false, ARRAY['egress_bandwidth_gbps']::text[]),
    ('ipv6_active_users', false, ARRAY['ipv6_active_users']::text[]),
    ('iot_terminals_mobile', false, ARRAY['iot_terminals_mobile']::text[]),
    ('iot_connections_pan', false, ARRAY['iot_connections_pan']::text[]),
    ('traffic_mobile_gb', false, ARRAY['traffic_mobile_gb']::text[]),
    ('ipv6_traffic_mobile_gb', false, ARRAY['ipv6_traffic_mobile_gb']::text[]),
    ('traffic_fixed_gb', false, ARRAY['traffic_fixed_gb']::text[]),
    ('ipv6_traffic_fixed_gb', false, ARRAY['ipv6_traffic_fixed_gb']::text[]),
    ('dc_energy_total_kwh', false, ARRAY['dc_energy_total_kwh']::text[]),
    ('dc_energy_it_kwh', false, ARRAY['dc_energy_it_kwh']::text[]),
    ('dc_racks', false, ARRAY['dc_racks']::text[]),
    ('dc_compute_pflops', false, ARRAY['dc_compute_pflops']::text[]),
    ('dc_count', false, ARRAY['dc_count']::text[]),
    ('bs5g_energy_kwh', false, ARRAY['bs5g_energy_kwh']::text[]),
    ('townships', false, ARRAY['townships']::text[]),
    ('townships_5g', false, ARRAY['townships_5g']::text[]),
    ('villages', false, ARRAY['villages']::text[]),
    ('villages_5g', false, ARRAY['villages_5g']::text[]),
    ('iir_resolutions_total', false, ARRAY['iir_resolutions_total']::text[]),
    ('enterprises_cloud_ytd', false, ARRAY['enterprises_cloud_ytd']::text[]),
    ('programme_count', false, ARRAY['programme_count']::text[]),
    ('milestone', false, ARRAY['milestone']::text[]),
    ('gigabit_city', false, ARRAY['gigabit_city']::text[]),
    ('population', false, ARRAY['population']::text[]),
    ('bs5g_new', true, ARRAY['bs5g_total', 'bs5g_built_ytd']::text[]),
    ('bs5g_net_new', true, ARRAY['bs5g_total']::text[]),
    ('bs5g_built', false, ARRAY['bs5g_built_total', 'bs5g_total']::text[]),
    ('iir_resolutions', false, ARRAY['iir_resolutions_total']::text[]),
    ('users_5g_new', true, ARRAY['users_5g']::text[]),
    ('enterprises_cloud_new', true, ARRAY['enterprises_cloud_ytd']::text[]),
    ('ipv6_share_mobile', false, ARRAY['ipv6_traffic_mobile_gb', 'traffic_mobile_gb']::text[]),
    ('ipv6_share_fixed', false, ARRAY['ipv6_traffic_fixed_gb', 'traffic_fixed_gb']::text[]),
    ('dc_pue', false, ARRAY['dc_energy_total_kwh', 'dc_energy_it_kwh']::text[]),
    ('gigabit_cities', false, ARRAY['gigabit_city']::text[]),
    ('iot_per_capita', false, ARRAY['iot_connections_pan', 'population']::text[]),
    ('bs5g_per_10k', false, ARRAY['bs5g_total', 'population']::text[]),
    ('township_5g_coverage', false, ARRAY['townships_5g', 'townships']::text[]),
    ('village_5g_coverage', false, ARRAY['villages_5g', 'villages']::text[]),
    ('bs5g_efficiency', false, ARRAY['traffic_mobile_gb', 'bs5g_energy_kwh']::text[])
;

CREATE TABLE indicator_pending (
    interval  text NOT NULL CHECK (interval IN ('1h', '1d', '1mo')),
    bucket    timestamptz NOT NULL,
    indicator text COLLATE "C" NOT NULL,
    region    integer NOT NULL,
    operator  text COLLATE "C" NOT NULL DEFAULT '',
    entity    text COLLATE "C" NOT NULL DEFAULT '',
    value     double precision NOT NULL,
    PRIMARY KEY (indicator, interval, region, operator, entity, bucket)
);

CREATE TABLE pending_state (
    indicator   text COLLATE "C" NOT NULL,
    interval    text NOT NULL,
    -- buckets ending after this instant are read from indicator_pending
    cutoff      timestamptz NOT NULL,
    computed_at timestamptz NOT NULL,
    PRIMARY KEY (indicator, interval)
);

-- Bucket starts (Asia/Shanghai) of every bucket overlapping [p_start, p_end), as metrics.timeutil.buckets.
CREATE FUNCTION iw_buckets(p_start timestamptz, p_end timestamptz, p_interval text)
RETURNS TABLE (ts timestamptz, ts_end timestamptz)
LANGUAGE sql STABLE AS $$
    WITH u AS (
        SELECT CASE p_interval WHEN '1h' THEN 'hour' WHEN '1d' THEN 'day' WHEN '1mo' THEN 'month' END AS field,
               CASE p_interval WHEN '1h' THEN interval '1 hour' WHEN '1d' THEN interval '1 day'
                               WHEN '1mo' THEN interval '1 month' END AS step
    )
    SELECT g AT TIME ZONE 'Asia/Shanghai', (g + u.step) AT TIME ZONE 'Asia/Shanghai'
    FROM u, generate_series(date_trunc(u.field, p_start AT TIME ZONE 'Asia/Shanghai'),
                            (p_end AT TIME ZONE 'Asia/Shanghai') - interval '1 microsecond', u.step) AS g
    WHERE u.step IS NOT NULL
$$;

-- An indicator for a scope over [p_start, p_end) per bucket: the rolled-up value up to the published cutoff,
-- the pending tail's after it; an increase indicator cumulated since the first bucket's start (a running sum
-- of the buckets' increases; NULL until something was counted). p_operator '' (or NULL, or 'all') = all
-- operators together; p_entity '' = every entity. `pending`: the value comes from the pending tail;
-- `current`: false when that tail is older than the newest reading of the indicator's inputs.
CREATE FUNCTION iw_indicator_series(
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
    ), op AS (
        SELECT CASE WHEN p_operator IS NULL OR p_operator = 'all' THEN '' ELSE p_operator END AS id
    ), v AS (
        SELECT b.ts,
               (ind.cutoff IS NOT NULL AND b.ts_end > ind.cutoff) AS pending,
               ind.fresh,
               ind.cumulative,
               CASE WHEN ind.cutoff IS NOT NULL AND b.ts_end > ind.cutoff THEN
                   (SELECT p.value FROM indicator_pending p
                    WHERE p.indicator = p_indicator AND p.interval = p_interval AND p.region = p_region
                      AND p.operator = op.id AND p.entity = coalesce(p_entity, '') AND p.bucket = b.ts)
               ELSE
                   (SELECT r.value FROM indicator_rollup r
                    WHERE r.indicator = p_indicator AND r.interval = p_interval AND r.region = p_region
                      AND r.operator = op.id AND r.entity = coalesce(p_entity, '') AND r.bucket = b.ts)
               END AS value
        FROM ind, op, iw_buckets(p_start, p_end, p_interval) b
    )
    SELECT v.ts,
           CASE WHEN v.cumulative THEN sum(v.value) OVER (ORDER BY v.ts) ELSE v.value END,
           v.pending,
           NOT v.pending OR coalesce(v.fresh, false)
    FROM v
    ORDER BY v.ts
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infrawatch_grafana') THEN
        EXECUTE format('GRANT SELECT ON iw_indicator, indicator_pending, pending_state TO infrawatch_grafana');
        GRANT EXECUTE ON FUNCTION iw_buckets(timestamptz, timestamptz, text) TO infrawatch_grafana;
        GRANT EXECUTE ON FUNCTION iw_indicator_series(text, integer, text, timestamptz, timestamptz, text, text)
            TO infrawatch_grafana;
    END IF;
END $$;
