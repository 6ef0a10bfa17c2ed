# What the benchmarks in bench/ share (sourced from the repository root,
# with $TMP a directory of the benchmark's own):
#
#   start_env              a throwaway msgr (bench/lib/settings_env.pl):
#                          sets ENV_PID, PORT and KEY (an admin key)
#   stop_env               tears it down; fails when it reported a problem
#   bench_traps            on exit (or INT, TERM): stop_extra when the
#                          benchmark defines it, stop_env, $TMP removed
#   run_wrk NAME ARGS...   runs wrk, its output kept in $TMP/NAME.out
#   rate NAME              its requests per second
#   non2xx NAME            its answers that were not 2xx or 3xx
#   socket_errors NAME     its socket errors line, if any
#   p99 NAME               its 99th percentile latency in ms (needs --latency)

run_wrk() {
    local name=$1
    shift
    wrk "$@" >"$TMP/$name.out" 2>&1 || {
        echo "bench: wrk failed:" >&2
        cat "$TMP/$name.out" >&2
        exit 1
    }
}

rate() {
    awk '/^Requests\/sec:/ { print $2; found = 1 } END { if (!found) print 0 }' \
        "$TMP/$1.out"
}

non2xx() {
    awk '/Non-2xx or 3xx responses:/ { n = $NF } END { print n + 0 }' \
        "$TMP/$1.out"
}

socket_errors() {
    sed -n 's/^ *Socket errors: *//p' "$TMP/$1.out"
}

p99() {
    awk '$1 == "99%" {
             v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
             if (u == "us") v /= 1000; else if (u == "s") v *= 1000
             else if (u == "m") v *= 60000
             print v; found = 1
         }
         END { if (!found) print 0 }' "$TMP/$1.out"
}


start_env() {
    mkfifo "$TMP/env.in" "$TMP/env.out"
    perl bench/lib/settings_env.pl <"$TMP/env.in" >"$TMP/env.out" &
    ENV_PID=$!
    exec 3>"$TMP/env.in"
    if ! read -r PORT KEY <"$TMP/env.out" || [ -z "${KEY:-}" ]; then
        echo "bench: the msgr environment did not start" >&2
        exit 1
    fi
}

stop_env() {
    [ -n "${ENV_PID:-}" ] || return 0
    # closing its stdin tells the helper to tear everything down
    exec 3>&-
    if ! wait "$ENV_PID"; then
        echo "bench: the msgr environment reported a problem" >&2
        return 1
    fi
}

bench_cleanup() {
    local rc=$?
    set +e
    if declare -F stop_extra >/dev/null; then
        stop_extra
    fi
    if ! stop_env && [ "$rc" = 0 ]; then
        rc=1
    fi
    rm -rf "$TMP"
    exit "$rc"
}

bench_traps() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
