#!/bin/sh
# The users PgBouncer admits, with the passwords it also uses towards PostgreSQL (SCRAM): the
# application role only. Written at start from the environment, never into the image.
set -eu
umask 077
printf '"sv_app" "%s"\n' "${SV_APP_PASSWORD:?set SV_APP_PASSWORD}" > /tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
