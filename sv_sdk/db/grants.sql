-- Schemas and grants for the project's four roles: the one source of these statements.
--
-- Two callers run it: `manage.py setup_db_roles` reads this file from the package, and
-- scripts/init-db.sql (the docker entrypoint script, run by psql) includes it with \ir.
-- Both bind the same variables: :"owner_role",
-- :"app_role", :"readonly_role", :"auditor_role" and :"dbname" (the current database).
-- Plain SQL otherwise: no psql meta-commands, no dollar quoting.
--
-- The roles must exist. Re-running is safe: it re-applies the grants and takes back
-- whatever the application role was granted by hand in `audit`.

-- Schemas, owned by the owner role. The migrations' CREATE SCHEMA IF NOT EXISTS then finds
-- them in place; PostgreSQL checks CREATE on the database even when the schema exists.
GRANT CONNECT, CREATE ON DATABASE :"dbname" TO :"owner_role";
CREATE SCHEMA IF NOT EXISTS auth AUTHORIZATION :"owner_role";
CREATE SCHEMA IF NOT EXISTS email AUTHORIZATION :"owner_role";
CREATE SCHEMA IF NOT EXISTS audit AUTHORIZATION :"owner_role";
CREATE SCHEMA IF NOT EXISTS permissions AUTHORIZATION :"owner_role";
ALTER SCHEMA auth OWNER TO :"owner_role";
ALTER SCHEMA email OWNER TO :"owner_role";
ALTER SCHEMA audit OWNER TO :"owner_role";
ALTER SCHEMA permissions OWNER TO :"owner_role";

-- Only the owner creates objects. PostgreSQL 15+ already withholds CREATE on public from
-- PUBLIC; saying it again covers older clusters and hand-made changes.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA auth, email, audit, permissions FROM PUBLIC;
-- Django's and Procrastinate's tables stay in public, so the owner creates there too.
GRANT USAGE, CREATE ON SCHEMA public TO :"owner_role";

-- Application role: DML everywhere except the audit trail, which it may only append to.
GRANT CONNECT ON DATABASE :"dbname" TO :"app_role";
GRANT USAGE ON SCHEMA auth, email, audit, permissions, public TO :"app_role";

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA auth, email, permissions, public
    TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA auth, email, permissions, public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";

GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA audit TO :"app_role";
-- On a re-run, take back anything granted by hand since.
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA audit
    FROM :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA audit
    GRANT SELECT, INSERT ON TABLES TO :"app_role";

-- The audit log's partition job runs as the application role and creates next months'
-- partitions through one SECURITY DEFINER function (audit.add_month_partition), which
-- its migration withholds from PUBLIC.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA audit TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA audit
    GRANT EXECUTE ON FUNCTIONS TO :"app_role";

-- Identity columns (audit_logs.id, django_admin_log.id, procrastinate_jobs.id, ...).
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA auth, email, audit, permissions, public
    TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA auth, email, audit, permissions, public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- Procrastinate defers, fetches and finishes jobs through plpgsql functions in public.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO :"app_role";

-- Read-only role: SELECT on the four schemas.
GRANT CONNECT ON DATABASE :"dbname" TO :"readonly_role";
GRANT USAGE ON SCHEMA auth, email, audit, permissions TO :"readonly_role";
GRANT SELECT ON ALL TABLES IN SCHEMA auth, email, audit, permissions TO :"readonly_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA auth, email, audit, permissions
    GRANT SELECT ON TABLES TO :"readonly_role";

-- Auditor: reads the audit schema and nothing else of the project's.
GRANT CONNECT ON DATABASE :"dbname" TO :"auditor_role";
GRANT USAGE ON SCHEMA audit TO :"auditor_role";
GRANT SELECT ON ALL TABLES IN SCHEMA audit TO :"auditor_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA audit
    GRANT SELECT ON TABLES TO :"auditor_role";
