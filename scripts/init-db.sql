-- Schemas, login roles and grants for a fresh sv_sdk database.
--
-- The postgres image runs this once, on first start, as POSTGRES_USER (sv_owner, a
-- superuser inside the container) connected to POSTGRES_DB (sv_sdk). It can also be run by
-- hand as a superuser against an existing database:
--
--   psql -v ON_ERROR_STOP=1 -U postgres -d sv_sdk -f scripts/init-db.sql
--
-- sv_owner must exist already: it owns the schemas and runs the migrations, so every table
-- is created by it and picks up the default privileges set below. Running the script again
-- is safe; it re-applies grants and resets the three passwords.
--
-- Passwords: a -v name=value on the command line wins, then the environment variable, then
-- the development default. The defaults are for a laptop only.

\set ON_ERROR_STOP on

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

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sv_owner') THEN
        RAISE EXCEPTION 'role sv_owner does not exist; create it (or set POSTGRES_USER=sv_owner) first';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sv_app') THEN
        CREATE ROLE sv_app LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'readonly_user') THEN
        CREATE ROLE readonly_user LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditor_user') THEN
        CREATE ROLE auditor_user LOGIN;
    END IF;
END
$$;

-- psql substitutes :'var' as a quoted literal outside dollar-quoted bodies only, hence
-- the passwords are set here rather than in the DO block above.
ALTER ROLE sv_app LOGIN PASSWORD :'app_password';
ALTER ROLE readonly_user LOGIN PASSWORD :'readonly_password';
ALTER ROLE auditor_user LOGIN PASSWORD :'auditor_password';

-- Schemas. The migrations' CREATE SCHEMA IF NOT EXISTS then finds them in place.
CREATE SCHEMA IF NOT EXISTS auth AUTHORIZATION sv_owner;
CREATE SCHEMA IF NOT EXISTS email AUTHORIZATION sv_owner;
CREATE SCHEMA IF NOT EXISTS audit AUTHORIZATION sv_owner;
CREATE SCHEMA IF NOT EXISTS permissions AUTHORIZATION sv_owner;
ALTER SCHEMA auth OWNER TO sv_owner;
ALTER SCHEMA email OWNER TO sv_owner;
ALTER SCHEMA audit OWNER TO sv_owner;
ALTER SCHEMA permissions OWNER TO sv_owner;

-- Only the owner creates objects. PostgreSQL 15+ already withholds CREATE on public from
-- PUBLIC; saying it again covers older clusters and hand-made changes.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA auth, email, audit, permissions FROM PUBLIC;
-- Django's and Procrastinate's tables stay in public, so the owner creates there too.
GRANT USAGE, CREATE ON SCHEMA public TO sv_owner;

-- Application role: DML everywhere except the audit trail, which it may only append to.
GRANT USAGE ON SCHEMA auth, email, audit, permissions, public TO sv_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA auth, email, permissions, public
    TO sv_app;
ALTER DEFAULT PRIVILEGES FOR ROLE sv_owner IN SCHEMA auth, email, permissions, public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sv_app;

GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA audit TO sv_app;
-- On a re-run, take back anything granted by hand since.
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA audit FROM sv_app;
ALTER DEFAULT PRIVILEGES FOR ROLE sv_owner IN SCHEMA audit
    GRANT SELECT, INSERT ON TABLES TO sv_app;

-- Identity columns (audit_logs.id, django_admin_log.id, procrastinate_jobs.id, ...).
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA auth, email, audit, permissions, public TO sv_app;
ALTER DEFAULT PRIVILEGES FOR ROLE sv_owner IN SCHEMA auth, email, audit, permissions, public
    GRANT USAGE, SELECT ON SEQUENCES TO sv_app;

-- Procrastinate defers, fetches and finishes jobs through plpgsql functions in public.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO sv_app;
ALTER DEFAULT PRIVILEGES FOR ROLE sv_owner IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO sv_app;

-- Read-only role: SELECT on the four schemas.
GRANT USAGE ON SCHEMA auth, email, audit, permissions TO readonly_user;
GRANT SELECT ON ALL TABLES IN SCHEMA auth, email, audit, permissions TO readonly_user;
ALTER DEFAULT PRIVILEGES FOR ROLE sv_owner IN SCHEMA auth, email, audit, permissions
    GRANT SELECT ON TABLES TO readonly_user;

-- Auditor: reads the audit schema and nothing else of the project's.
GRANT USAGE ON SCHEMA audit TO auditor_user;
GRANT SELECT ON ALL TABLES IN SCHEMA audit TO auditor_user;
ALTER DEFAULT PRIVILEGES FOR ROLE sv_owner IN SCHEMA audit
    GRANT SELECT ON TABLES TO auditor_user;

COMMIT;
