#!/bin/sh
# The hot standby's start (service timescaledb-replica): on an empty volume, clone the primary with
# pg_basebackup (a replication slot keeps the WAL it still needs), then run as a streaming standby that
# answers read-only queries: the API's reads (INFRAWATCH_DATABASE_READ_URL) and Grafana.
set -eu
: "${PGPASSWORD:?set POSTGRES_REPLICATION_PASSWORD in .env}"
PRIMARY_HOST=${PRIMARY_HOST:-timescaledb}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h "$PRIMARY_HOST" -p 5432 -q; do sleep 2; done
  mkdir -p "$PGDATA" && chmod 0700 "$PGDATA"
  # -C makes the slot; when it exists already (the volume was lost, the slot kept), reuse it
  pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" -R -X stream -c fast -C -S infrawatch_replica \
    || { rm -rf "${PGDATA:?}"/*; pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" -R -X stream -c fast -S infrawatch_replica; }
  rm -f "$PGDATA"/.s.PGSQL.*.lock
fi
exec postgres -c hot_standby=on -c hot_standby_feedback=on -c max_standby_streaming_delay=30s
