#!/usr/bin/env bash
#
# make run: a local PostgreSQL cluster and nginx with the msgr module, in
# the foreground.  Everything lives under var/ in the repository:
#
#   var/pg/                the cluster (initdb on the first run only)
#   var/pg.log             its log
#   var/pg-socket/         its unix socket
#   var/demo-admin-key     the "Demo School" admin key (mode 600)
#   var/nginx/             nginx's prefix: conf/nginx.conf, error.log,
#                          access.log, nginx.pid, tmp/
#   var/outbox/            what msgr-sender's file providers sent
#   var/sender.log         msgr-sender's log
#
# Run as root, PostgreSQL runs as the postgres user and nginx's workers as
# www-data, and they must reach those directories.  When the checkout is
# where they cannot (a clone under /root, mode 700), pg/, pg.log,
# pg-socket/ and nginx/ live in /var/lib/msgr/<hash of the checkout's
# path>/ instead (the banner says where); the permissions of the checkout
# and of the directories above it are never changed.
#
# A second run reuses the cluster, the school and the key.  Ctrl-C (or
# SIGTERM) stops nginx, then PostgreSQL, and exits 0.
#
# Environment: MSGR_PG_PORT (5433), MSGR_PORT (8080), MSGR_PGBIN
# (PostgreSQL's bin directory), MSGR_NGINX (nginx), MSGR_MODULE (the .so),
# MSGR_MSGRCTL (msgrctl), MSGR_LIBRARY (share/library/library.json),
# MSGR_STATE_ROOT (/var/lib/msgr).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR=$ROOT/var
KEYFILE=$VAR/demo-admin-key
STATE_ROOT=${MSGR_STATE_ROOT:-/var/lib/msgr}

# set by choose_rundir: var/, or a directory of STATE_ROOT
RUNDIR=
PGDATA=
PGLOG=
PGSOCK=
NGX=
TEMPLATE=$ROOT/conf/nginx.conf

PGPORT=${MSGR_PG_PORT:-5433}
PORT=${MSGR_PORT:-8080}
MODULE=${MSGR_MODULE:-$ROOT/build/ngx_http_msgr_module.so}
LIBRARY=${MSGR_LIBRARY:-$ROOT/share/library/library.json}
MSGRCTL=${MSGR_MSGRCTL:-$ROOT/build/msgrctl}
SENDER=${MSGR_SENDER:-$ROOT/build/msgr-sender}
SENDER_CONF=${MSGR_SENDER_CONF:-$ROOT/conf/msgr-sender.conf}
NGINX=${MSGR_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

CONNINFO="host=127.0.0.1 port=$PGPORT dbname=msgr user=msgr"
SCHOOL_NAME="Demo School"

NGINX_PID=
SENDER_PID=
PG_STARTED=0


say() {
    printf 'run: %s\n' "$*"
}


die() {
    printf 'run: error: %s\n' "$*" >&2
    exit 1
}


# PostgreSQL refuses to run as root: as root, the cluster is the postgres
# user's.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}


find_pgbin() {
    local d best=

    if [ -n "${MSGR_PGBIN:-}" ]; then
        echo "$MSGR_PGBIN"
        return
    fi

    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] || continue
        if [ -z "$best" ] \
            || [ "$(basename "$(dirname "$d")")" -gt \
                 "$(basename "$(dirname "$best")")" ]
        then
            best=$d
        fi
    done

    if [ -z "$best" ] && command -v initdb >/dev/null; then
        best=$(dirname "$(command -v initdb)")
    fi

    [ -n "$best" ] || die "no PostgreSQL server binaries (initdb): make deps"
    echo "$best"
}


check_port() {
    if [[ ! $2 =~ ^[0-9]{1,5}$ ]] || [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]
    then
        die "$1 must be a port number, not \"$2\""
    fi
}


# nginx.conf string: quoted, with " and \ escaped
ngx_quote() {
    local s=${1//\\/\\\\}

    printf '"%s"' "${s//\"/\\\"}"
}


stop_all() {
    trap - INT TERM EXIT

    if [ -n "$SENDER_PID" ] && kill -0 "$SENDER_PID" 2>/dev/null; then
        say "stopping msgr-sender"
        kill -TERM "$SENDER_PID" 2>/dev/null || true
        wait "$SENDER_PID" 2>/dev/null || true
    fi
    SENDER_PID=

    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        say "stopping nginx"
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    NGINX_PID=

    if [ "$PG_STARTED" = 1 ]; then
        say "stopping PostgreSQL"
        as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null \
            || say "PostgreSQL did not stop cleanly: see $PGLOG"
        PG_STARTED=0
    fi
}


# shellcheck disable=SC2317  # called by trap
on_signal() {
    echo
    stop_all
    exit 0
}


# --- where the cluster and nginx live ---------------------------------------

# var/ when whoever runs PostgreSQL can reach it; else (root, and the
# postgres user cannot reach the checkout) a directory of its own under
# STATE_ROOT, named by a hash of the checkout's path.
choose_rundir() {
    local hash

    mkdir -p "$VAR"
    RUNDIR=$VAR

    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 \
            || die "running as root and there is no postgres user"

        if ! as_pg test -x "$VAR" 2>/dev/null; then
            hash=$(printf '%s' "$ROOT" | sha256sum | cut -c 1-16)
            RUNDIR=$STATE_ROOT/$hash
            mkdir -p -m 755 "$STATE_ROOT"
            mkdir -p -m 755 "$RUNDIR"
            printf '%s\n' "$ROOT" >"$RUNDIR/checkout"
            RUNDIR_WHY="the postgres user cannot reach $VAR"
        fi
    fi

    PGDATA=$RUNDIR/pg
    PGLOG=$RUNDIR/pg.log
    PGSOCK=$RUNDIR/pg-socket
    NGX=$RUNDIR/nginx
}


# --- PostgreSQL --------------------------------------------------------------

start_pg() {
    local esc

    mkdir -p "$PGSOCK"
    touch "$PGLOG"

    if [ "$(id -u)" = 0 ]; then
        if [ ! -d "$PGDATA" ]; then
            mkdir -m 700 "$PGDATA"
        fi
        chown postgres: "$PGDATA" "$PGSOCK" "$PGLOG"
        as_pg test -x "$RUNDIR" -a -w "$PGDATA" \
            || die "the postgres user cannot reach $RUNDIR"
    fi

    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        say "creating the PostgreSQL cluster in $PGDATA"
        as_pg "$PGBIN/initdb" -D "$PGDATA" -U msgr --auth=trust \
            -E UTF8 --no-locale >"$RUNDIR/initdb.log" 2>&1 \
            || { cat "$RUNDIR/initdb.log" >&2; die "initdb failed"; }
        printf "\n# make run\ninclude_if_exists = 'msgr-run.conf'\n" \
            | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
    fi

    if as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        die "PostgreSQL in $PGDATA is already running (another make run?);" \
            "stop it with: ${SUDO_HINT}$PGBIN/pg_ctl -D $PGDATA stop"
    fi

    # rewritten on every run, so that MSGR_PG_PORT may change
    esc=${PGSOCK//\'/\'\'}
    as_pg tee "$PGDATA/msgr-run.conf" >/dev/null <<EOF
# written by scripts/run.sh on every run
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$esc'
EOF

    say "starting PostgreSQL on 127.0.0.1:$PGPORT (log: $PGLOG)"
    PG_STARTED=1
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 start \
        >/dev/null
    then
        PG_STARTED=0
        tail -n 20 "$PGLOG" >&2
        die "PostgreSQL did not start (is port $PGPORT taken?" \
            "set MSGR_PG_PORT)"
    fi
}


create_db() {
    local exists

    exists=$("$PGBIN/psql" -XAtq -h 127.0.0.1 -p "$PGPORT" -U msgr \
             -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'msgr'")

    if [ "$exists" != 1 ]; then
        say "creating the database msgr"
        "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U msgr msgr
    fi

    "$MSGRCTL" migrate | sed 's/^/run: migrate: /'
}


# --- the demo school and its admin key ---------------------------------------

key_active() {
    local key=$1 school kid

    [[ $key =~ ^msgr_([0-9]+)_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$ ]] \
        || return 1
    school=${BASH_REMATCH[1]}
    kid=${BASH_REMATCH[2]}

    "$MSGRCTL" key list --school "$school" 2>/dev/null \
        | awk -F '\t' -v k="$kid" '$1 == k && $4 == "active" { f = 1 }
                                   END { exit !f }'
}


demo_key() {
    local key school

    if [ -s "$KEYFILE" ]; then
        key=$(head -n 1 "$KEYFILE")
        if key_active "$key"; then
            return
        fi
        say "$KEYFILE holds no active key of this database: making a new one"
    fi

    school=$("$MSGRCTL" school list \
             | awk -F '\t' -v n="$SCHOOL_NAME" '$2 == n { print $1; exit }')

    if [ -z "$school" ]; then
        school=$("$MSGRCTL" school create "$SCHOOL_NAME")
        say "created the school \"$SCHOOL_NAME\" (id $school)"
    fi

    key=$("$MSGRCTL" key create --school "$school" --role admin)

    (umask 077 && printf '%s\n' "$key" >"$KEYFILE.tmp")
    chmod 600 "$KEYFILE.tmp"
    mv -f "$KEYFILE.tmp" "$KEYFILE"
    say "created an admin key for \"$SCHOOL_NAME\" (id $school)"
}


# --- nginx -------------------------------------------------------------------

# The user nginx workers run as when the master is root: one that can reach
# the temp directories under var/nginx, which the master creates for it.
worker_user() {
    local u

    for u in www-data nobody; do
        if id "$u" >/dev/null 2>&1 \
            && runuser -u "$u" -- test -x "$NGX/tmp" 2>/dev/null
        then
            echo "user $u $(id -gn "$u");"
            return
        fi
    done

    say "no unprivileged user can reach $NGX: nginx workers run as root" >&2
    echo "user root;"
}


# Copies conf/nginx.conf, replacing what is site-specific; every kind of
# line it must replace has to be there.
render_conf() {
    local line body indent directive user_line k missing=
    local -A seen=()

    if [ "$(id -u)" = 0 ]; then
        user_line=$(worker_user)
    else
        user_line="# user: not root, the workers run as $(id -un)"
    fi

    printf '# written by scripts/run.sh from conf/nginx.conf: edit that one\n\n'

    while IFS= read -r line || [ -n "$line" ]; do
        indent=${line%%[! ]*}
        body=${line#"$indent"}
        directive=${body%% *}

        case "$body" in
        "load_module "*ngx_http_msgr_module.so\;)
            body="load_module $(ngx_quote "$MODULE");" ;;
        "user "*\;)
            body=$user_line ;;
        "error_log "*\;)
            body="error_log $(ngx_quote "$NGX/error.log");"
            body+=$'\n'"${indent}error_log stderr;" ;;
        "pid "*\;)
            body="pid $(ngx_quote "$NGX/nginx.pid");" ;;
        "access_log "*\;)
            body="access_log $(ngx_quote "$NGX/access.log");" ;;
        *"_temp_path /var/lib/nginx/"*\;)
            body=${body##*/}
            body="$directive $(ngx_quote "$NGX/tmp/${body%;}");" ;;
        "msgr_pg \""*\"\;)
            body="msgr_pg $(ngx_quote "$CONNINFO");" ;;
        "msgr_library "*\;)
            body="msgr_library $(ngx_quote "$LIBRARY");" ;;
        "listen "*\;)
            body="listen 127.0.0.1:$PORT;" ;;
        *)
            directive= ;;
        esac

        [ -z "$directive" ] || seen[$directive]=1
        printf '%s%s\n' "$indent" "$body"
    done <"$TEMPLATE"

    for k in load_module user error_log pid access_log client_body_temp_path \
             msgr_pg msgr_library listen
    do
        [ -n "${seen[$k]:-}" ] || missing+=" $k"
    done

    [ -z "$missing" ] \
        || die "$TEMPLATE: no line to adapt for:$missing"
}


start_nginx() {
    local conf=$NGX/conf/nginx.conf

    mkdir -p "$NGX/conf" "$NGX/tmp"
    chmod 755 "$NGX" "$NGX/tmp"

    render_conf >"$conf.tmp"
    mv -f "$conf.tmp" "$conf"

    "$NGINX" -t -q -p "$NGX/" -c "$conf" \
        || die "nginx rejects $conf (see above)"

    "$NGINX" -p "$NGX/" -c "$conf" -g 'daemon off;' &
    NGINX_PID=$!

    # the banner says it is running: wait until it answers
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            return
        fi
        kill -0 "$NGINX_PID" 2>/dev/null \
            || die "nginx exited at start: see $NGX/error.log"
        sleep 0.1
    done
    die "nginx does not answer on 127.0.0.1:$PORT: see $NGX/error.log"
}


# msgr-sender from the checkout, so that the file providers' var/outbox is
# the checkout's
start_sender() {
    mkdir -p "$VAR/outbox"
    (cd "$ROOT" && exec "$SENDER" --config "$SENDER_CONF") \
        2>>"$VAR/sender.log" &
    SENDER_PID=$!

    sleep 0.2
    kill -0 "$SENDER_PID" 2>/dev/null \
        || die "msgr-sender exited at start: see $VAR/sender.log"
}


banner() {
    local key where=

    key=$(head -n 1 "$KEYFILE")

    if [ "$RUNDIR" != "$VAR" ]; then
        where="
  cluster    $PGDATA
             ($RUNDIR_WHY, so it lives there)"
    fi

    cat <<EOF

msgr is running:
  API        http://127.0.0.1:$PORT/msgr/
  database   MSGR_PG="$CONNINFO"$where
  sender     msgr-sender, $SENDER_CONF
  outbox     sent messages go to $VAR/outbox/<channel>.jsonl
             (real providers: see docs/sender.md and conf/msgr-sender.conf)
  logs       $NGX/error.log, $PGLOG, $VAR/sender.log

The "$SCHOOL_NAME" admin key (kept in $KEYFILE):

  $key

Try, in another shell (the examples of README.md and docs/ start so):

  cd $ROOT
  KEY=\$(cat var/demo-admin-key)
  curl -fsS -H "Authorization: Bearer \$KEY" http://127.0.0.1:$PORT/msgr/v1/school
  export MSGR_PG="$CONNINFO"
  build/msgrctl school list

Ctrl-C stops msgr-sender, nginx and PostgreSQL.

EOF
}


main() {
    check_port MSGR_PG_PORT "$PGPORT"
    check_port MSGR_PORT "$PORT"

    [ -x "$MSGRCTL" ] || die "$MSGRCTL is not built: make ctl"
    [ -x "$SENDER" ] || die "$SENDER is not built: make sender"
    [ -f "$MODULE" ] || die "$MODULE is not built: make module"
    [ -f "$TEMPLATE" ] || die "$TEMPLATE is missing"
    [ -x "$NGINX" ] || die "no nginx at $NGINX: make deps"

    PGBIN=$(find_pgbin)
    SUDO_HINT=
    [ "$(id -u)" = 0 ] && SUDO_HINT="runuser -u postgres -- "

    export MSGR_PG=$CONNINFO
    export MSGR_SQL_DIR=$ROOT/sql

    trap on_signal INT TERM
    trap stop_all EXIT

    RUNDIR_WHY=
    choose_rundir
    start_pg
    create_db
    demo_key
    start_nginx
    start_sender
    banner

    local rc=0
    wait "$NGINX_PID" || rc=$?
    NGINX_PID=

    say "nginx exited with status $rc"
    stop_all
    exit "$rc"
}


main "$@"
