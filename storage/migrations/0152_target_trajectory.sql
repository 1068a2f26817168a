-- The expected trajectory of each target, published by the metrics layer (metrics/trajectory.py) and only
-- read here: the expected value at every plan day's start from the target's start to its deadline and at
-- the deadline's last instants, written when targets are loaded or changed and by the progress job (with
-- the baseline and goal of the latest evaluation). iw_target_expected() no longer computes the
-- trajectory: it interpolates between the two published points around the instant, so the board shows
-- the number progress uses (issue 17: no rule written twice).

CREATE TABLE target_trajectory (
    target_id text COLLATE "C" NOT NULL REFERENCES target (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL,
    expected  double precision NOT NULL,
    PRIMARY KEY (target_id, at)
);

-- The expected value of a target at an instant: the published point at that instant, else the straight
-- line between the neighbouring points; before the first point the baseline, after the last the goal.
-- NULL when nothing is published (baseline or goal not known yet).
CREATE OR REPLACE FUNCTION iw_target_expected(p_target_id text, p_at timestamptz) RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN lo.at IS NULL THEN hi.expected
        WHEN hi.at IS NULL OR hi.at = lo.at THEN lo.expected
        ELSE lo.expected + (hi.expected - lo.expected)
             * (extract(epoch FROM p_at - lo.at) / extract(epoch FROM hi.at - lo.at))::double precision
    END
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT at, expected FROM target_trajectory
        WHERE target_id = p_target_id AND at <= p_at ORDER BY at DESC LIMIT 1
    ) AS lo ON true
    LEFT JOIN LATERAL (
        SELECT at, expected FROM target_trajectory
        WHERE target_id = p_target_id AND at >= p_at ORDER BY at LIMIT 1
    ) AS hi ON true
$$;

-- Grafana's read-only role (0051_grafana_reader.sql): the function runs with the caller's rights, so the
-- role reads the points as well.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infrawatch_grafana') THEN
        GRANT SELECT ON target_trajectory TO infrawatch_grafana;
        GRANT EXECUTE ON FUNCTION iw_target_expected(text, timestamptz) TO infrawatch_grafana;
    END IF;
END $$;
