-- The latest rollup bucket of an indicator (region-level rows, entity = ''), as the boards' "latest bucket in
-- the time range" panels ask: one backward probe of this index instead of a walk over every region, operator
-- and data centre row of the indicator.
CREATE INDEX indicator_rollup_latest ON indicator_rollup (indicator, interval, entity, bucket);
