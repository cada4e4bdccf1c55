# Shared by the benchmark scripts (sourced): the binary under test, a work directory, timing whole processes.
#
# pick_sextant: sets sextant (an absolute path) and build: $SEXTANT_BIN as given, else the release build (built here).
#
# bench_dir PREFIX: sets dir: $BENCH_DIR (kept), else a new temp dir removed at exit.
#
# measure NAME CMD...: runs CMD with stdout to $dir/NAME.out and stderr to $dir/NAME.err, and sets wall_s (seconds)
# and rss_kib (peak resident set size, KiB). Needs $dir, $time_bin (GNU time, or anything not executable to use
# the Python getrusage wrapper) and $python.
#
# best_of NAME CMD...: runs `measure` RUNS times; sets best_wall (fastest run) and best_rss (largest peak RSS).

# measure NAME CMD...: runs CMD with stdout to $dir/NAME.out and stderr to $dir/NAME.err, and sets
# wall_s (seconds) and rss_kib (peak resident set size, KiB).
measure() {
    local name=$1
    shift
    local start end
    start=$(date +%s%N)
    if [ -x "$time_bin" ]; then
        "$time_bin" -v -o "$dir/$name.time" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || {
            echo "bench.sh: $name failed:" >&2
            cat "$dir/$name.err" >&2
            exit 1
        }
        end=$(date +%s%N)
        rss_kib=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): *//p' "$dir/$name.time")
    else
        # No GNU time: a Python parent reports its (only) child's peak RSS; Linux gives ru_maxrss in KiB.
        "$python" -c '
import resource, subprocess, sys
with open(sys.argv[1], "w") as out, open(sys.argv[2], "w") as err:
    rc = subprocess.call(sys.argv[4:], stdout=out, stderr=err)
with open(sys.argv[3], "w") as f:
    f.write(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
sys.exit(rc)
' "$dir/$name.out" "$dir/$name.err" "$dir/$name.time" "$@" || {
            echo "bench.sh: $name failed:" >&2
            cat "$dir/$name.err" >&2
            exit 1
        }
        end=$(date +%s%N)
        rss_kib=$(cat "$dir/$name.time")
    fi
    wall_s=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
}

# best_of NAME CMD...: runs `measure` RUNS times; sets best_wall (fastest run) and best_rss (largest peak RSS).
best_of() {
    local run
    best_wall=
    best_rss=0
    for run in $(seq "$RUNS"); do
        measure "$@"
        echo "    run $run: ${wall_s} s, $((rss_kib / 1024)) MiB" >&2
        if [ -z "$best_wall" ] || awk -v a="$wall_s" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
            best_wall=$wall_s
        fi
        if [ "$rss_kib" -gt "$best_rss" ]; then
            best_rss=$rss_kib
        fi
    done
}


pick_sextant() {
    if [ -n "${SEXTANT_BIN:-}" ]; then
        sextant=$SEXTANT_BIN
        build="SEXTANT_BIN"
    else
        echo "==> cargo build --release -p sextant" >&2
        cargo build --release -p sextant >&2
        sextant=$root/target/release/sextant
        build="release"
    fi
    [ -x "$sextant" ] || { echo "$0: $sextant is not an executable" >&2; exit 1; }
    sextant=$(cd "$(dirname "$sextant")" && pwd)/$(basename "$sextant")
}

bench_dir() {
    if [ -n "${BENCH_DIR:-}" ]; then
        dir=$BENCH_DIR
        mkdir -p "$dir"
    else
        dir=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
        trap 'rm -rf "$dir"' EXIT
    fi
    dir=$(cd "$dir" && pwd)
}
