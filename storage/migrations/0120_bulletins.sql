-- Bulletins (按月调度、按季通报): one per period and region, with its Word, PDF and Excel files, and
-- its delivery to each notification channel. UNIQUE (period, region) makes a period's bulletin exist once
-- however many schedulers try to produce it.

CREATE TABLE bulletin (
    id            bigserial PRIMARY KEY,
    period        text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('month', 'quarter', 'year')),
    region        integer NOT NULL,
    period_start  date NOT NULL,
    period_end    date NOT NULL,
    as_of         timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    summary       jsonb NOT NULL DEFAULT '{}',
    UNIQUE (period, region)
);
CREATE INDEX bulletin_period_end ON bulletin (period_end DESC, id DESC);

CREATE TABLE bulletin_file (
    bulletin_id   bigint NOT NULL REFERENCES bulletin (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('docx', 'pdf', 'xlsx')),
    filename      text NOT NULL,
    content_type  text NOT NULL,
    content       bytea NOT NULL,
    PRIMARY KEY (bulletin_id, kind)
);

CREATE TABLE bulletin_delivery (
    bulletin_id   bigint NOT NULL REFERENCES bulletin (id) ON DELETE CASCADE,
    channel       text COLLATE "C" NOT NULL,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    sent_at       timestamptz,
    PRIMARY KEY (bulletin_id, channel)
);
