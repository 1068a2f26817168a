-- API keys (docs/interface.md §7): only an HMAC-SHA256 of each key (server secret) is stored, never the key.
-- `prefix` is the key's public lookup part; `operator` binds an operator key to one operator.
CREATE TABLE api_key (
    id           bigserial PRIMARY KEY,
    prefix       text COLLATE "C" NOT NULL UNIQUE,
    hash         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('operator', 'viewer', 'admin')),
    operator     text COLLATE "C" REFERENCES operator (id),
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CONSTRAINT api_key_operator_role CHECK ((role = 'operator') = (operator IS NOT NULL))
);
