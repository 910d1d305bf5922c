#!/usr/bin/env bash
# Makes sure a PostgreSQL server is reachable for the PostgreSQL half of the test suite and
# exports PROSSIMO_TEST_DATABASE_URL. Source it from bash.
#
# - If PROSSIMO_TEST_DATABASE_URL is set, it must work: nothing is started.
# - Otherwise the default is postgres://postgres@127.0.0.1:5432/prossimo_test. When nothing
#   answers there, a local Debian cluster is started (pg_ctlcluster), and when PostgreSQL is
#   not installed at all and we are root, it is installed with apt-get first.
# Unreachable in the end means failure, never a silent skip.

pg_fail() { echo "postgres.sh: $*" >&2; return 1; }

pg_start_local() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "postgres.sh: installing PostgreSQL with apt-get" >&2
            apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
                || pg_fail "apt-get install postgresql failed" || return 1
        else
            pg_fail "no PostgreSQL server answers on 127.0.0.1:5432 and none is installed; install one or set PROSSIMO_TEST_DATABASE_URL" || return 1
        fi
    fi
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] || { pg_fail "no cluster under /etc/postgresql"; return 1; }
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main start || true
    # A fresh Debian cluster asks for a password over TCP: give the postgres role one.
    if [ "$(id -u)" = 0 ]; then
        su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'prossimo'\"" >/dev/null 2>&1 || true
    fi
}

pg_reachable() {
    PGPASSWORD="${PGPASSWORD:-prossimo}" PGCONNECT_TIMEOUT=3 psql "$1" -qtAc "SELECT 1" >/dev/null 2>&1
}

if [ -n "${PROSSIMO_TEST_DATABASE_URL:-}" ]; then
    pg_reachable "$PROSSIMO_TEST_DATABASE_URL" || pg_fail "PROSSIMO_TEST_DATABASE_URL=$PROSSIMO_TEST_DATABASE_URL is not reachable"
else
    admin_url="postgres://postgres@127.0.0.1:5432/postgres"
    if ! pg_reachable "$admin_url"; then
        pg_start_local
        for _ in $(seq 1 30); do pg_reachable "$admin_url" && break; sleep 1; done
    fi
    if pg_reachable "$admin_url"; then
        # Password-less trust setups ignore the password; fresh clusters need it.
        if PGCONNECT_TIMEOUT=3 psql "$admin_url" -qtAc "SELECT 1" >/dev/null 2>&1; then pass=""; else pass=":prossimo"; fi
        PGPASSWORD=prossimo psql "$admin_url" -qtAc "SELECT 1 FROM pg_database WHERE datname = 'prossimo_test'" | grep -q 1 \
            || PGPASSWORD=prossimo psql "$admin_url" -qc "CREATE DATABASE prossimo_test" >/dev/null
        export PROSSIMO_TEST_DATABASE_URL="postgres://postgres${pass}@127.0.0.1:5432/prossimo_test"
        echo "postgres.sh: using ${PROSSIMO_TEST_DATABASE_URL}" >&2
    else
        pg_fail "PostgreSQL did not come up on 127.0.0.1:5432"
    fi
fi
