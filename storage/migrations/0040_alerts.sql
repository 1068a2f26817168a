-- Alerting: rules, alerts with their life cycle and history, notification channels and deliveries,
-- and the scheduler's per-interval run claims (so several scheduler processes evaluate once per interval).

CREATE TABLE alert_rule (
    id          text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    kind        text NOT NULL CHECK (kind IN ('target', 'threshold', 'stale', 'quality')),
    -- the whole rule as the pydantic model serialises it (alerts/rules.py)
    spec        jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    -- 'file' (alerts/rules.yaml, reloaded at start) or 'api' (an admin's change, never overwritten by the file)
    source      text NOT NULL DEFAULT 'file' CHECK (source IN ('file', 'api')),
    -- a deleted rule stays as a tombstone so reloading the file does not bring it back
    deleted     boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert (
    id               bigserial PRIMARY KEY,
    rule_id          text COLLATE "C" NOT NULL,
    kind             text NOT NULL,
    scope_key        text COLLATE "C" NOT NULL,
    scope            jsonb NOT NULL DEFAULT '{}',
    state            text NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    value            double precision,
    summary          text NOT NULL DEFAULT '',
    started_at       timestamptz NOT NULL,          -- condition first seen (pending since)
    fired_at         timestamptz,                   -- NULL: never fired (pending that cleared)
    resolved_at      timestamptz,
    last_seen_at     timestamptz NOT NULL,          -- last evaluation with the condition true
    clear_since      timestamptz,                   -- condition false since (resolve delay), NULL while true
    last_notified_at timestamptz,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- one active alert per rule and scope
CREATE UNIQUE INDEX alert_active_rule_scope ON alert (rule_id, scope_key) WHERE state IN ('pending', 'firing');
CREATE INDEX alert_state ON alert (state, fired_at DESC);
CREATE INDEX alert_rule_started ON alert (rule_id, started_at DESC);

CREATE TABLE alert_event (
    id          bigserial PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alert (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    event       text NOT NULL,  -- pending, firing, resolved, cleared, reminder, acknowledged, severity
    state       text NOT NULL,
    value       double precision,
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX alert_event_alert ON alert_event (alert_id, at);

CREATE TABLE notification_channel (
    name        text COLLATE "C" PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    kind        text NOT NULL CHECK (kind IN ('webhook', 'dingtalk', 'wecom', 'email')),
    -- non-secret settings; secrets are named by *_env keys and read from the environment when sending
    config      jsonb NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One message to one channel: a group of alerts of one rule changing state in one evaluation.
CREATE TABLE notification (
    id              bigserial PRIMARY KEY,
    channel         text COLLATE "C" NOT NULL,
    event           text NOT NULL CHECK (event IN ('firing', 'resolved', 'reminder')),
    rule_id         text COLLATE "C" NOT NULL,
    alert_ids       bigint[] NOT NULL,
    message         jsonb NOT NULL,      -- channel-neutral message, rendered per channel when sent
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX notification_due ON notification (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notification_created ON notification (created_at DESC);

-- Which scheduler claimed which interval of a job: the claim is an atomic UPDATE, so with several
-- scheduler processes each interval runs once.
CREATE TABLE scheduler_run (
    job          text PRIMARY KEY,
    bucket       timestamptz NOT NULL,
    runner       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    last_error   text
);

-- Every evaluation of a rule, for audit and to show that several schedulers evaluate once per interval
-- (the claim in scheduler_run is what guarantees it; this log deliberately has no unique key).
CREATE TABLE alert_evaluation (
    id              bigserial PRIMARY KEY,
    rule_id         text COLLATE "C" NOT NULL,
    interval_start  timestamptz NOT NULL,
    evaluated_at    timestamptz NOT NULL,
    runner          text NOT NULL,
    findings        integer NOT NULL DEFAULT 0,
    error           text
);
CREATE INDEX alert_evaluation_rule ON alert_evaluation (rule_id, interval_start);
CREATE INDEX alert_evaluation_at ON alert_evaluation (evaluated_at);
