#!/bin/sh
# First start: create the cluster with POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, as
# the official postgres image does; then run the server as the postgres user.
set -eu
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        pg_ctl --wait --silent -o "-c listen_addresses=''" start
        psql --username="$user" --dbname=postgres --quiet \
            --command="CREATE DATABASE \"$db\""
        pg_ctl --wait --silent --mode=fast stop
    fi
    echo "created the database cluster in $PGDATA (role $user, database $db)"
fi
if [ "${1:-}" = postgres ]; then
    shift
    exec postgres "$@"
fi
exec "$@"
