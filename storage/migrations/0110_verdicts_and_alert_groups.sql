-- Verdicts of progress and grouped alert notifications.
-- Progress says whether its goal is met now (a share met before its deadline stays on_track), which
-- observation it rests on, and whether that data is stale (older than twice the indicator's cadence).
ALTER TABLE target_progress
    ADD COLUMN met_now    boolean NOT NULL DEFAULT false,
    ADD COLUMN data_as_of timestamptz,
    ADD COLUMN stale      boolean NOT NULL DEFAULT false;

-- Alerts are notified by group, as Alertmanager does: per rule and group key (the values of the rule's
-- group_by labels in the alert's scope, e.g. operator=cmcc), at most one message per group and
-- group_interval, reminders every repeat interval. `dirty_since`: an alert of the group fired or resolved
-- and has not been notified yet.
CREATE TABLE alert_group (
    rule_id       text COLLATE "C" NOT NULL,
    group_key     text COLLATE "C" NOT NULL,
    labels        jsonb NOT NULL DEFAULT '{}',
    dirty_since   timestamptz,
    last_sent_at  timestamptz,
    PRIMARY KEY (rule_id, group_key)
);
CREATE INDEX alert_group_dirty ON alert_group (dirty_since) WHERE dirty_since IS NOT NULL;

ALTER TABLE alert
    ADD COLUMN group_key text COLLATE "C" NOT NULL DEFAULT '',
    -- recorded but never notified (a target already missed when its rule first evaluated)
    ADD COLUMN quiet boolean NOT NULL DEFAULT false;
CREATE INDEX alert_rule_group ON alert (rule_id, group_key, state);

ALTER TABLE notification ADD COLUMN group_key text COLLATE "C" NOT NULL DEFAULT '';

-- when the rule was first evaluated: a target already missed by then does not notify
ALTER TABLE alert_rule ADD COLUMN first_evaluated_at timestamptz;
