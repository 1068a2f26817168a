-- The read-only role Grafana's datasource uses: SELECT on what the boards read, nothing else.
-- `infrawatch_grafana` is a NOLOGIN group role; a deployment grants it to a login role (docker-compose:
-- deploy/postgres/initdb/10-grafana-reader.sh). Roles are cluster-wide, so creation is guarded: another
-- database on the same server may already have made it (or be making it right now), and a migrating
-- user without CREATEROLE skips it with a notice instead of failing the upgrade.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infrawatch_grafana') THEN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolcreaterole OR rolsuper)) THEN
            CREATE ROLE infrawatch_grafana NOLOGIN;
        ELSE
            RAISE NOTICE 'role infrawatch_grafana does not exist and % may not create roles; '
                'create it (CREATE ROLE infrawatch_grafana NOLOGIN) and run this migration''s grants again',
                current_user;
        END IF;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by a migration of another database on this server
END $$;

DO $$
DECLARE
    rel text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infrawatch_grafana') THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO infrawatch_grafana', current_schema());
    FOREACH rel IN ARRAY ARRAY[
        'target', 'target_progress', 'indicator_rollup', 'feed_freshness', 'ingest_batch', 'operator',
        'alert', 'alert_rule', 'alert_event', 'iw_region', 'iw_rejection'
    ] LOOP
        IF to_regclass(rel) IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON %I TO infrawatch_grafana', rel);
        END IF;
    END LOOP;
    IF to_regprocedure('iw_target_expected(text, timestamptz)') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION iw_target_expected(text, timestamptz) TO infrawatch_grafana;
    END IF;
END $$;
