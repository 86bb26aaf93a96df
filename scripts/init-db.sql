-- Schemas, login roles and grants for a fresh sv_sdk database.
--
-- The postgres image runs this once, on first start, as POSTGRES_USER (the bootstrap
-- superuser `postgres`, which nothing of sv_sdk connects as) connected to POSTGRES_DB
-- (sv_sdk). It can also be run by hand as a superuser against an existing database:
--
--   psql -v ON_ERROR_STOP=1 -U postgres -d sv_sdk -f scripts/init-db.sql
--
-- `manage.py setup_db_roles` does the same from Python; both run the statements of
-- sv_sdk/db/grants.sql, which this script includes.
--
-- The owner role owns the schemas and runs the migrations, so every table is created by it
-- and picks up the default privileges set below. It is created when missing, and it is never
-- a superuser: an existing one is demoted (so it must not be the role running this script).
-- Running the script again is safe; it re-applies grants and resets the four passwords.
--
-- Role names default to sv_owner, sv_app, readonly_user and auditor_user; -v owner_role=...
-- (app_role, readonly_role, auditor_role) changes them. Passwords (owner_password,
-- app_password, ...; variables SV_OWNER_PASSWORD, SV_APP_PASSWORD, ...): a -v name=value on the
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

\if :{?owner_password}
\else
  \set owner_password 'sv-owner-dev-password'
  \getenv owner_password SV_OWNER_PASSWORD
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
    IF current_setting('sv_sdk.owner_role') = current_user THEN
        RAISE EXCEPTION 'run this as a superuser other than the owner role %, which must not be one',
            current_user;
    END IF;
END
$$;

SELECT format('CREATE ROLE %I LOGIN', name)
FROM (VALUES (:'owner_role'), (:'app_role'), (:'readonly_role'), (:'auditor_role')) AS wanted(name)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted.name)
\gexec

-- The owner owns tables, not the server: no superuser, no role or database creation.
ALTER ROLE :"owner_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_password';
ALTER ROLE :"app_role" LOGIN PASSWORD :'app_password';
ALTER ROLE :"readonly_role" LOGIN PASSWORD :'readonly_password';
ALTER ROLE :"auditor_role" LOGIN PASSWORD :'auditor_password';

SELECT current_database() AS dbname \gset

-- The grants themselves, shared with `manage.py setup_db_roles`. \ir resolves the path
-- from this file's directory: ../sv_sdk/db/grants.sql in the repository, and in the
-- postgres image (which runs this from /docker-entrypoint-initdb.d) the compose file
-- mounts the same file at /sv_sdk/db/grants.sql.
\ir ../sv_sdk/db/grants.sql

COMMIT;
