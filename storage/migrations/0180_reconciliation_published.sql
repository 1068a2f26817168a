-- Reconciliation gaps as the metrics layer computes them (metrics.reconciliation.publish_reconciliation, run by
-- the scheduler's reconciliation job): every reported total beside the sum of its parts, for every indicator
-- with reported totals, as of the job's last run. The indicator explorer's reconciliation panel reads this
-- table, so it shows what GET /v1/reconciliation computes (the rule is written once, in Python).
CREATE TABLE reconciliation_gap (
    indicator       text COLLATE "C" NOT NULL,
    metric          text COLLATE "C" NOT NULL,
    region          integer NOT NULL,
    operator        text COLLATE "C" NOT NULL,
    axis            text NOT NULL CHECK (axis IN ('regions', 'operators')),
    reported        double precision NOT NULL,
    derived         double precision NOT NULL,
    gap             double precision NOT NULL,
    gap_share       double precision,
    parts_reporting integer NOT NULL,
    parts_total     integer NOT NULL,
    period_start    timestamptz,
    as_of           timestamptz NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (indicator, metric, region, operator, axis)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infrawatch_grafana') THEN
        GRANT SELECT ON reconciliation_gap TO infrawatch_grafana;
    END IF;
END $$;
