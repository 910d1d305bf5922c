#!/usr/bin/env bash
# Analytics benchmark (issue #3, BENCHMARKS.md): Prossimo's customer analytics against the
# peers, in the same run, on the peers' seeded synthetic log (1,000,000 customers,
# 10,370,334 purchases, ../shared/peers/gen_synth.py seed 20240601).
#
#   peers    ../shared/peers/scale_bench.py: DuckDB SQL RFM, pandas RFM, and lifetimes
#            (summary_data_from_transaction_data + BetaGeoFitter.fit + E[X(30 d)] + P(alive)),
#            3 reps each -> peer-results/scale_bench.json; plus lifetimes' Gamma-Gamma fit on
#            its RFM table, for the parameters -> peer-results/lifetimes_gg.json
#   ours     crates/bench/src/bin/analytics_bench.rs on the same log (CSV): (a) RFM summary,
#            (a') RFM scores, (b) BG/NBD + Gamma-Gamma fits, (c) E[X(30 d)] + P(alive) for every
#            customer, and CLV scoring; medians of REPS, all cores and then RAYON_NUM_THREADS=1
#            -> peer-results/analytics_bench.json, analytics_bench_1thread.json
#   analyze  (d): `prossimo import orders` of the CSV into a fresh embedded store (the full
#            ingest path; timed, an ingest data point too), then the whole
#            `prossimo analyze --as-of 2024-12-31 --period day`, which prints per-stage timings
#            -> peer-results/analyze_import.txt, peer-results/analyze.txt
#
#   bash scripts/bench-analytics.sh [STEPS]      # STEPS: comma list of peers,ours,analyze (default all)
#
# Environment: REPS (3); WAIT_IDLE=0 to pass --no-wait-idle to the peers and to our bench (by
# default both wait, before every rep, for the machine to be < 8% busy, at most 900 s, and
# record the CPU other processes used during each timed region); PREFIX_ROWS=N to run (d) on
# the first N rows only (the log is sorted by time, so a prefix is the first weeks of history
# analysed two years later: a degenerate data set, for smoke tests only); STORE (/tmp/bench-store, deleted first); SKIP_IMPORT=1 to analyze the
# store left by an earlier run.
# Needs the peers venv: bash ../shared/peers/setup.sh .venv-peers (see ../shared/peers/README.md).
# Run it on an otherwise idle machine and compare only figures from the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-peers,ours,analyze}
REPS=${REPS:-3}
STORE=${STORE:-/tmp/bench-store}
PY=.venv-peers/bin/python
P=../shared/peers
OUT=peer-results
NOWAIT=()
[ "${WAIT_IDLE:-1}" = 0 ] && NOWAIT=(--no-wait-idle)
has() { [[ ",$STEPS," == *",$1,"* ]]; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
mkdir -p "$OUT"
if [ ! -f "$OUT/synth.parquet" ] || [ ! -f "$OUT/synth.csv" ]; then
    echo "== generating the synthetic log"
    $PY $P/gen_synth.py --customers 1000000 --seed 20240601 --out "$OUT/synth.parquet" --csv "$OUT/synth.csv"
fi

if has peers; then
    echo "== peers: scale_bench.py (load $(load))"
    $PY $P/scale_bench.py --data "$OUT/synth.parquet" --out "$OUT/scale_bench.json" --reps "$REPS" \
        --rfm-csv "$OUT/rfm.csv" "${NOWAIT[@]}"
    # scale_bench.py fits no Gamma-Gamma: fit lifetimes' GammaGammaFitter on its RFM table, for
    # the parameters only (one run, not idle-checked) -> peer-results/lifetimes_gg.json
    $PY - "$OUT/rfm.csv" "$OUT/lifetimes_gg.json" <<'EOF_PY'
# Untimed-by-scale_bench parameter check: lifetimes' GammaGammaFitter on the peers' RFM table.
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
from lifetimes import GammaGammaFitter
rfm, out = sys.argv[1], sys.argv[2]
s = pd.read_csv(rfm, index_col=0)
rep = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
t0 = time.perf_counter()
gg = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
wall = time.perf_counter() - t0
p = {k: float(v) for k, v in gg.params_.items()}
ll = -len(rep) * GammaGammaFitter._negative_log_likelihood(
    np.log(gg.params_[["p", "q", "v"]].values), rep["frequency"].values, rep["monetary_value"].values, np.ones(len(rep)), 0.0)
res = {"params": p, "loglik": float(ll), "repeat_customers": int(len(rep)), "fit_s_single_run": wall,
       "note": "fit on scale_bench.py's --rfm-csv table (written %.10g); one run, not idle-checked"}
json.dump(res, open(out, "w"), indent=1)
print(json.dumps(res))
EOF_PY
    echo "== peers done (load $(load))"
fi

if has ours; then
    cargo build --release -q -p prossimo-bench --bin analytics_bench
    PEER=()
    [ -f "$OUT/scale_bench.json" ] && PEER=(--peer-json "$OUT/scale_bench.json")
    [ -f "$OUT/rfm.csv" ] && PEER+=(--rfm-csv "$OUT/rfm.csv")
    echo "== ours: analytics_bench, all cores (load $(load))"
    target/release/analytics_bench --csv "$OUT/synth.csv" --reps "$REPS" "${PEER[@]}" "${NOWAIT[@]}" \
        --out "$OUT/analytics_bench.json" >/dev/null
    echo "== ours: analytics_bench, RAYON_NUM_THREADS=1 (load $(load))"
    RAYON_NUM_THREADS=1 target/release/analytics_bench --csv "$OUT/synth.csv" --reps "$REPS" "${NOWAIT[@]}" \
        --out "$OUT/analytics_bench_1thread.json" >/dev/null
    echo "== ours done (load $(load))"
fi

if has analyze; then
    cargo build --release -q -p prossimo
    CSV="$OUT/synth.csv"
    if [ -n "${PREFIX_ROWS:-}" ]; then
        CSV=/tmp/synth-prefix.csv
        head -n $((PREFIX_ROWS + 1)) "$OUT/synth.csv" >"$CSV"
    fi
    printf '[money]\ncurrency = "EUR"\n' >/tmp/bench-analytics.toml
    PROSSIMO=(target/release/prossimo --data-dir "$STORE" --config /tmp/bench-analytics.toml)
    if [ "${SKIP_IMPORT:-0}" != 1 ]; then
        rm -rf "$STORE"
        echo "== (d) import orders $CSV ($(($(wc -l <"$CSV") - 1)) rows) into a fresh store $STORE (load $(load))"
        # The import exits 1 when it rejects rows (customer_id 0 is refused as a placeholder
        # identifier: 6 rows of the 1M log); the summary line says what was stored.
        /usr/bin/time -v "${PROSSIMO[@]}" import orders "$CSV" --rejects /tmp/bench-analytics.rejects.ndjson \
            >"$OUT/analyze_import.txt" 2>&1 || true
        cat "$OUT/analyze_import.txt"
        grep -q ' stored, ' "$OUT/analyze_import.txt" || { echo "import failed" >&2; exit 1; }
        echo "store on disk: $(du -sh "$STORE" | cut -f1)" | tee -a "$OUT/analyze_import.txt"
    fi
    echo "== (d) analyze (load $(load))"
    /usr/bin/time -v "${PROSSIMO[@]}" analyze --as-of 2024-12-31 --period day 2>&1 | tee "$OUT/analyze.txt"
    echo "== (d) done (load $(load))"
fi
