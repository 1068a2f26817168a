-- Plan targets (docs/interface.md §8), their latest progress, and the indicator rollups boards and series read.

CREATE TABLE target (
    id             text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    title          text NOT NULL,
    source         text NOT NULL DEFAULT '',
    indicator      text NOT NULL,
    region         integer NOT NULL DEFAULT 360000,
    operator       text,
    comparator     text NOT NULL CHECK (comparator IN ('>=', '>', '<=', '<')),
    goal           double precision,
    goal_indicator text,
    goal_relative  double precision,
    start_date     date NOT NULL,
    deadline       date NOT NULL,
    baseline       double precision,
    profile        double precision[],
    tolerance      double precision NOT NULL DEFAULT 0.05,
    window_days    integer NOT NULL DEFAULT 30 CHECK (window_days > 0),
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (deadline >= start_date),
    CHECK ((goal IS NOT NULL)::int + (goal_indicator IS NOT NULL)::int + (goal_relative IS NOT NULL)::int = 1)
);

-- Latest evaluation per target (written by metrics.progress.store_progress every minute).
CREATE TABLE target_progress (
    target_id    text COLLATE "C" PRIMARY KEY REFERENCES target (id) ON DELETE CASCADE,
    evaluated_at timestamptz NOT NULL DEFAULT now(),
    as_of        timestamptz NOT NULL,
    status       text NOT NULL,
    actual       double precision,
    expected     double precision,
    projected    double precision,
    goal         double precision,
    baseline     double precision,
    gap          double precision,
    unit         text NOT NULL DEFAULT '',
    deadline     date NOT NULL,
    laggards     jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Precomputed indicator values per bucket (bucket = start, Asia/Shanghai), region (each city and the
-- province), operator ('' = all) and entity ('' = all; data centres for dc_pue).
CREATE TABLE indicator_rollup (
    interval  text NOT NULL CHECK (interval IN ('1d', '1mo')),
    bucket    timestamptz NOT NULL,
    indicator text COLLATE "C" NOT NULL,
    region    integer NOT NULL,
    operator  text COLLATE "C" NOT NULL DEFAULT '',
    entity    text COLLATE "C" NOT NULL DEFAULT '',
    value     double precision NOT NULL,
    PRIMARY KEY (indicator, interval, region, operator, entity, bucket)
);
CREATE INDEX indicator_rollup_bucket ON indicator_rollup (interval, bucket);

-- Observations stored before this migration still need their rollups.
INSERT INTO rollup_dirty (metric, day)
SELECT DISTINCT metric, (ts AT TIME ZONE 'UTC')::date FROM observation
ON CONFLICT DO NOTHING;

-- Expected value of a target at an instant: baseline + (goal − baseline) × elapsed fraction, linear or
-- along the target's monthly cumulative profile. Baseline and goal not fixed in the target (baseline
-- = value at start, goal = another indicator or a relative change) come from its latest evaluation.
CREATE FUNCTION iw_target_expected(p_target_id text, p_at timestamptz) RETURNS double precision
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
    t0 := t.start_date::timestamp AT TIME ZONE 'Asia/Shanghai';
    t1 := (t.deadline + 1)::timestamp AT TIME ZONE 'Asia/Shanghai';
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
        m_start := date_trunc('month', t0 AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai';
        FOR i IN 1 .. array_length(t.profile, 1) LOOP
            m_end := ((m_start AT TIME ZONE 'Asia/Shanghai') + make_interval(months => i)) AT TIME ZONE 'Asia/Shanghai';
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

-- Up to which plan day the gauge-based rollups have been carried forward (levels persist between readings).
CREATE TABLE rollup_state (
    indicator        text COLLATE "C" PRIMARY KEY,
    computed_through date NOT NULL
);
