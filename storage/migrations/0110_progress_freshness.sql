-- Progress says whether its goal is met now (a share met before its deadline stays on_track), which
-- observation it rests on, and whether that data is stale (older than twice the indicator's cadence).
ALTER TABLE target_progress
    ADD COLUMN met_now    boolean NOT NULL DEFAULT false,
    ADD COLUMN data_as_of timestamptz,
    ADD COLUMN stale      boolean NOT NULL DEFAULT false;
