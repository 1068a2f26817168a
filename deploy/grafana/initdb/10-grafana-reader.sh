#!/bin/sh
# First start of the database container only (docker-entrypoint-initdb.d): the login role Grafana's
# datasource uses. It is a member of infrawatch_grafana, the NOLOGIN group role that migration
# 0051_grafana_reader.sql grants SELECT on what the boards read; every session it opens is read-only.
# Credentials: INFRAWATCH_GRAFANA_DB_USER / INFRAWATCH_GRAFANA_DB_PASSWORD from .env.
set -eu
: "${INFRAWATCH_GRAFANA_DB_USER:?set INFRAWATCH_GRAFANA_DB_USER in .env}"
: "${INFRAWATCH_GRAFANA_DB_PASSWORD:?set INFRAWATCH_GRAFANA_DB_PASSWORD in .env}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v reader="$INFRAWATCH_GRAFANA_DB_USER" -v password="$INFRAWATCH_GRAFANA_DB_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE infrawatch_grafana NOLOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infrawatch_grafana') \gexec
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE infrawatch_grafana', :'reader', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') \gexec
ALTER ROLE :"reader" SET default_transaction_read_only = on;
ALTER ROLE :"reader" SET statement_timeout = '30s';
ALTER ROLE :"reader" CONNECTION LIMIT 20;
SQL
