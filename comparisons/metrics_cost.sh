#!/usr/bin/env bash
# What the `metrics` feature costs the throughput probe: the probe built without the feature, and
# with it (a Prometheus recorder installed, published to and rendered every 100 ms), run in turn,
# PAIRS times each, ROUNDS rounds per run. Prints each run's median rate, then the ratios
# (on / off) of the medians of all rounds, of the fastest half of the rounds, and of the means.
# PROBE_PUBLISH=counters leaves the histograms out; PROBE_PUBLISH=rendered publishes the counters
# and appends the histograms to the rendered page with `render_call_site_histograms` (the page
# built as examples/prometheus.rs builds it); PROBE_PUBLISH_MS sets the interval.
#   bash comparisons/metrics_cost.sh [PAIRS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")"
pairs=${1:-6}
rounds=${2:-5}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --example throughput_probe
cp "$target/release/examples/throughput_probe" "$target/probe-off"
cargo build --release --quiet --features metrics --example throughput_probe
cp "$target/release/examples/throughput_probe" "$target/probe-on"
echo "publishing ${PROBE_PUBLISH:-all} every ${PROBE_PUBLISH_MS:-100} ms; $pairs pairs of $rounds rounds"
off=$(mktemp) on=$(mktemp)
for pair in $(seq "$pairs"); do
  # Alternate which goes first.
  if (( pair % 2 )); then order="off on"; else order="on off"; fi
  for which in $order; do
    "$target/probe-$which" --rounds "$rounds" | tee -a "$([ "$which" = on ] && echo "$on" || echo "$off")" |
      sort -g | awk -v w="$which" '{ r[NR] = $1 } END { printf "%s: median %.3f M calls/s\n", w, r[int((NR + 1) / 2)] }'
  done
done
python3 - "$off" "$on" <<'PY'
import statistics, sys
off, on = ([float(line) for line in open(path)] for path in sys.argv[1:])
fast = lambda rates: statistics.median(sorted(rates)[len(rates) // 2:])
print(f"rounds: off {len(off)}, on {len(on)}")
print(f"median      off {statistics.median(off):.3f}  on {statistics.median(on):.3f}  ratio {statistics.median(on) / statistics.median(off):.3f}")
print(f"fast half   off {fast(off):.3f}  on {fast(on):.3f}  ratio {fast(on) / fast(off):.3f}")
print(f"mean        off {statistics.mean(off):.3f}  on {statistics.mean(on):.3f}  ratio {statistics.mean(on) / statistics.mean(off):.3f}")
PY
rm -f "$off" "$on"
