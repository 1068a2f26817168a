-- The plans' time zone in SQL: iw_plan_tz() reads the database setting infrawatch.plan_tz, which
-- `infrawatch db upgrade` sets from INFRAWATCH_TIMEZONE (ALTER DATABASE … SET, so every session sees it,
-- Grafana's included), else Asia/Shanghai. The SQL functions that cut plan days and months use it.

CREATE FUNCTION iw_plan_tz() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('infrawatch.plan_tz', true), ''), 'Asia/Shanghai')
$$;

CREATE OR REPLACE FUNCTION iw_target_expected(p_target_id text, p_at timestamptz) RETURNS double precision
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t        target%ROWTYPE;
    p        target_progress%ROWTYPE;
    t0       timestamptz;
    t1       timestamptz;
    base     double precision;
    goal     double precision;
    frac     double precision;
    m_start  timestamptz;
    m_end    timestamptz;
    prev_f   double precision := 0;
    prev_t   timestamptz;
    i        integer;
BEGIN
    SELECT * INTO t FROM target WHERE id = p_target_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO p FROM target_progress WHERE target_id = p_target_id;
    t0 := t.start_date::timestamp AT TIME ZONE iw_plan_tz();
    t1 := (t.deadline + 1)::timestamp AT TIME ZONE iw_plan_tz();
    base := COALESCE(t.baseline, p.baseline);
    goal := COALESCE(t.goal, p.goal);
    IF base IS NULL OR goal IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_at <= t0 THEN
        frac := 0;
    ELSIF p_at >= t1 THEN
        frac := 1;
    ELSIF t.profile IS NULL THEN
        frac := extract(epoch FROM p_at - t0) / extract(epoch FROM t1 - t0);
    ELSE
        frac := NULL;
        prev_t := t0;
        m_start := date_trunc('month', t0 AT TIME ZONE iw_plan_tz()) AT TIME ZONE iw_plan_tz();
        FOR i IN 1 .. array_length(t.profile, 1) LOOP
            m_end := ((m_start AT TIME ZONE iw_plan_tz()) + make_interval(months => i)) AT TIME ZONE iw_plan_tz();
            IF p_at <= m_end THEN
                frac := prev_f + (t.profile[i] - prev_f) * extract(epoch FROM p_at - prev_t) / extract(epoch FROM m_end - prev_t);
                EXIT;
            END IF;
            prev_f := t.profile[i];
            prev_t := m_end;
        END LOOP;
        frac := COALESCE(frac, prev_f);
    END IF;
    RETURN base + (goal - base) * frac;
END $$;

CREATE OR REPLACE FUNCTION iw_buckets(p_start timestamptz, p_end timestamptz, p_interval text)
RETURNS TABLE (ts timestamptz, ts_end timestamptz)
LANGUAGE sql STABLE AS $$
    WITH u AS (
        SELECT CASE p_interval WHEN '1h' THEN 'hour' WHEN '1d' THEN 'day' WHEN '1mo' THEN 'month' END AS field,
               CASE p_interval WHEN '1h' THEN interval '1 hour' WHEN '1d' THEN interval '1 day'
                               WHEN '1mo' THEN interval '1 month' END AS step
    )
    SELECT g AT TIME ZONE iw_plan_tz(), (g + u.step) AT TIME ZONE iw_plan_tz()
    FROM u, generate_series(date_trunc(u.field, p_start AT TIME ZONE iw_plan_tz()),
                            (p_end AT TIME ZONE iw_plan_tz()) - interval '1 microsecond', u.step) AS g
    WHERE u.step IS NOT NULL
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infrawatch_grafana') THEN
        GRANT EXECUTE ON FUNCTION iw_plan_tz() TO infrawatch_grafana;
    END IF;
END $$;
