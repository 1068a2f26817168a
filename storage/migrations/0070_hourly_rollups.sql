-- Hourly buckets in indicator_rollup for the indicators fed only by sub-daily metrics (the data-centre
-- meters: dc_energy_total_kwh, dc_energy_it_kwh and dc_pue; metrics.rollups.hourly_indicators), kept for
-- region-level scopes only.

ALTER TABLE indicator_rollup DROP CONSTRAINT indicator_rollup_interval_check;
ALTER TABLE indicator_rollup ADD CONSTRAINT indicator_rollup_interval_check
    CHECK (interval IN ('1h', '1d', '1mo'));

-- Meter readings stored before this migration still need their hourly buckets: the next refresh builds
-- them (and rewrites those days' 1d / 1mo buckets, to the same values). The sub-daily metrics of the
-- catalogue (reference/catalogue.py, cadence_s < 86400) when this was written.
INSERT INTO rollup_dirty (metric, day)
SELECT DISTINCT metric, (ts AT TIME ZONE 'UTC')::date FROM observation
WHERE metric IN ('dc_energy_total_kwh', 'dc_energy_it_kwh')
ON CONFLICT DO NOTHING;
