# Sourced by the benchmarks (bench/*.sh): their temporary directory, and
# their throwaway msgr, run by a helper in bench/lib/ that prints one line
# once it is up and tears it all down when its stdin closes.
#
#   bench_begin NAME
#       makes TMP (/tmp/msgr-bench-NAME-...) and traps EXIT, INT and TERM:
#       on exit bench_stop_own (when the benchmark defines it: what it
#       started itself) runs first, then the msgr is stopped and TMP
#       removed; the exit status is 1 when the msgr reported a problem
#   bench_env_start bench/lib/HELPER.pl [ARGS...]
#       starts it; ENV_PID is its pid and ENV_LINE its line ("PORT KEY")
#   bench_env_stop
#       from the EXIT trap: stops it; returns 1 when it reported a problem
#       (alerts or crashes in nginx's error log)

bench_env_start() {
    mkfifo "$TMP/env.in" "$TMP/env.out"
    perl "$@" <"$TMP/env.in" >"$TMP/env.out" &
    ENV_PID=$!
    exec 3>"$TMP/env.in"
    if ! read -r ENV_LINE <"$TMP/env.out" || [ -z "$ENV_LINE" ]; then
        echo "bench: the msgr environment did not start" >&2
        exit 1
    fi
}

bench_env_stop() {
    [ -n "${ENV_PID:-}" ] || return 0
    # closing its stdin tells the helper to tear everything down
    exec 3>&-
    if ! wait "$ENV_PID"; then
        echo "bench: the msgr environment reported a problem" >&2
        return 1
    fi
}


bench_begin() {
    TMP=$(mktemp -d "/tmp/msgr-bench-$1-XXXXXX")
    chmod 755 "$TMP"
    ENV_PID=
    trap bench_end EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_end() {
    local rc=$?
    set +e
    if declare -F bench_stop_own >/dev/null; then
        bench_stop_own
    fi
    if ! bench_env_stop && [ "$rc" = 0 ]; then
        rc=1
    fi
    rm -rf "$TMP"
    exit "$rc"
}
