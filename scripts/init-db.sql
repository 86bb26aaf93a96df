-- Schemas, login roles and grants for a fresh sv_sdk database.
--
-- The postgres image runs this once, on first start, as POSTGRES_USER (sv_owner, a
-- superuser inside the container) connected to POSTGRES_DB (sv_sdk). It can also be run by
-- hand as a superuser against an existing database:
--
--   psql -v ON_ERROR_STOP=1 -U postgres -d sv_sdk -f scripts/init-db.sql
--
-- `manage.py setup_db_roles` does the same from Python; both run the statements of
-- sv_sdk/db/grants.sql, copied verbatim at the end of this file (the image mounts this one
-- file only). tests/test_db_roles.py fails when the copy and the original differ.
--
-- The owner role must exist already: it owns the schemas and runs the migrations, so every
-- table is created by it and picks up the default privileges set below. Running the script
-- again is safe; it re-applies grants and resets the three passwords.
--
-- Role names default to sv_owner, sv_app, readonly_user and auditor_user; -v owner_role=...
-- (app_role, readonly_role, auditor_role) changes them. Passwords: a -v name=value on the
-- command line wins, then the environment variable, then the development default. The
-- defaults are for a laptop only.

\set ON_ERROR_STOP on

\if :{?owner_role}
\else
  \set owner_role sv_owner
\endif
\if :{?app_role}
\else
  \set app_role sv_app
\endif
\if :{?readonly_role}
\else
  \set readonly_role readonly_user
\endif
\if :{?auditor_role}
\else
  \set auditor_role auditor_user
\endif

\if :{?app_password}
\else
  \set app_password 'sv-app-dev-password'
  \getenv app_password SV_APP_PASSWORD
\endif
\if :{?readonly_password}
\else
  \set readonly_password 'readonly-dev-password'
  \getenv readonly_password READONLY_PASSWORD
\endif
\if :{?auditor_password}
\else
  \set auditor_password 'auditor-dev-password'
  \getenv auditor_password AUDITOR_PASSWORD
\endif

BEGIN;

-- psql substitutes variables outside dollar-quoted bodies only, so the DO block reads the
-- owner's name from a setting.
SELECT set_config('sv_sdk.owner_role', :'owner_role', true) AS owner_role_setting \gset
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = current_setting('sv_sdk.owner_role')) THEN
        RAISE EXCEPTION 'role % does not exist; create it (or set POSTGRES_USER to it) first',
            current_setting('sv_sdk.owner_role');
    END IF;
END
$$;

SELECT format('CREATE ROLE %I LOGIN', name)
FROM (VALUES (:'app_role'), (:'readonly_role'), (:'auditor_role')) AS wanted(name)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted.name)
\gexec

ALTER ROLE :"app_role" LOGIN PASSWORD :'app_password';
ALTER ROLE :"readonly_role" LOGIN PASSWORD :'readonly_password';
ALTER ROLE :"auditor_role" LOGIN PASSWORD :'auditor_password';

SELECT current_database() AS dbname \gset

-- BEGIN sv_sdk/db/grants.sql
-- Schemas and grants for the project's four roles: the one source of these statements.
--
-- Two callers run it: `manage.py setup_db_roles` reads this file from the package, and
-- scripts/init-db.sql (the docker entrypoint script, run by psql) holds a verbatim copy that
-- a test compares with this file. Both bind the same variables: :"owner_role",
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
-- END sv_sdk/db/grants.sql

COMMIT;
