#!/usr/bin/env bash
# Device check: one prepared script that exercises a device end to end and prints one table.
#
#   benchmarks/device_check.sh            # CUDA when present, else the CPU half
#   benchmarks/device_check.sh --cpu      # the CPU half on any machine (tests/test_device_check.py, CI)
#   benchmarks/device_check.sh --quick    # smaller benchmark and one workflow experiment (tests)
#   options: --out DIR (keep logs and the work folder there), --cores N (workflow jobs side by side)
#
# Steps, on the chosen device (about 3-4 minutes on one H200; the CPU --quick half well
# under a minute on an idle core):
#   1. benchmarks/equivalence.py: K models together = each alone = the torch.nn reference,
#      MLP engine and CNN, float32 (tolerances stated there); the same run twice is bit-identical;
#      on CUDA also how far masks, engine parameters and CNN logits land from the CPU's.
#   2. benchmarks/bench_engine.py --device D: model-epochs per second for K in 1, 32, 128, 1024
#      (CPU half: 1 and 8).
#   3. the tiny workflow (tests/tiny_config.yaml) with `device: D` into a fresh folder; its
#      jobs' peak RSS and CPU time against the mem_mb / runtime the rules declared.
# Exit status: 0 when every step ran and every check with a bound holds.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
DEVICE=auto
QUICK=0
OUT=""
CORES=$(nproc 2>/dev/null || echo 2)
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu) DEVICE=cpu ;;
        --cuda) DEVICE=cuda ;;
        --quick) QUICK=1 ;;
        --out) OUT=$2; shift ;;
        --cores) CORES=$2; shift ;;
        *) echo "device_check.sh: unknown option $1 (allowed: --cpu, --cuda, --quick, --out DIR, --cores N)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$DEVICE" = auto ]; then
    DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')") || exit 2
fi
WORK=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX")}
mkdir -p "$WORK"
ROWS="$WORK/rows.tsv"
: > "$ROWS"
FAILED=0
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"

# run NAME CMD...: one step, its output in $WORK/NAME.log; a failed step is a row of its own
run() {
    local name=$1; shift
    local t0=$SECONDS
    echo "== $name: $*"
    if "$@" > "$WORK/$name.log" 2>&1; then
        printf '%s\t%s\tran in %d s\t-\tyes\n' "$name" "$DEVICE" $((SECONDS - t0)) >> "$ROWS"
    else
        printf '%s\t%s\tFAILED after %d s (log: %s)\t-\tNO\n' "$name" "$DEVICE" $((SECONDS - t0)) "$WORK/$name.log" >> "$ROWS"
        tail -n 30 "$WORK/$name.log"
        FAILED=1
    fi
}

# 1. equivalence (writes its own rows; its exit status fails the step when a bound does not hold)
run equivalence "$PY" "$ROOT/benchmarks/equivalence.py" --device "$DEVICE" --rows "$ROWS"

# 2. engine throughput
if [ "$DEVICE" = cuda ]; then
    BENCH=(--ks 1 32 128 1024 --naive-max-k 32 --repeats 2)
elif [ "$QUICK" = 1 ]; then
    BENCH=(--ks 1 8 --naive-max-k 1 --repeats 1 --model-epochs 16)
else
    BENCH=(--ks 1 8 32 --naive-max-k 8 --repeats 2)
fi
run bench_engine "$PY" "$ROOT/benchmarks/bench_engine.py" --device "$DEVICE" "${BENCH[@]}"
# its markdown rows "| K | naive | batched | vmap | engine/naive | engine/vmap | ..." as table rows
awk -F'|' -v dev="$DEVICE" '/^\| [0-9]+ \|/ {
        gsub(/ /, "", $2); gsub(/ /, "", $4); gsub(/ /, "", $6); gsub(/ /, "", $7)
        printf "bench_engine: K = %s, batched model-epochs/s (engine/naive, engine/vmap)\t%s\t%s (%s, %s)\treported\t-\n", $2, dev, $4, $6, $7
    }' "$WORK/bench_engine.log" >> "$ROWS"

# 3. the tiny workflow on this device, in its own working directory
WF="$WORK/workflow"
mkdir -p "$WF"
TARGETS=()
if [ "$QUICK" = 1 ]; then
    TARGETS=(results/tables/bn_stats.parquet)   # one neural experiment: engine, BN, device, benchmark file
fi
run workflow "$PY" -m snakemake -s "$ROOT/Snakefile" -d "$WF" --cores "$CORES" "${TARGETS[@]}" \
    --configfile "$ROOT/tests/tiny_config.yaml" --config results=results "device=$DEVICE"
"$PY" - "$ROOT" "$WF" "$DEVICE" >> "$ROWS" <<'EOF' || FAILED=1
# Every finished experiment job's peak RSS and CPU time against what its rule declared.
import sys
from pathlib import Path
from regbench import config, resources
root, wf, device = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
schema = config.load_schema(root / "workflow" / "schemas" / "config.schema.yaml")
cfg = config.validate(config.load(root / "config" / "config.yaml", [root / "tests" / "tiny_config.yaml"],
                                  {"results": "results", "device": device}), schema)
coef = resources.load(str(root / "workflow" / "resources.yaml"))
jobs = resources.compare(coef, cfg, wf / "results" / "benchmarks")
if not jobs:
    print(f"workflow: declared resources\t{device}\tno benchmark files\t-\tNO")
    sys.exit(1)
mem = max(jobs, key=lambda j: j["rss_mb"] / j["mem_mb"])
cpu = max(jobs, key=lambda j: j["cpu_s"] / (60 * j["runtime"]))
ok = lambda good: "yes" if good else "NO"
print(f"workflow: peak RSS / declared mem_mb, worst of {len(jobs)} jobs ({mem['experiment']} chunk {mem['chunk']})\t"
      f"{device}\t{mem['rss_mb']:.0f} / {mem['mem_mb']} MB\t<= 1\t{ok(mem['rss_mb'] <= mem['mem_mb'])}")
print(f"workflow: CPU time / declared runtime, worst ({cpu['experiment']} chunk {cpu['chunk']})\t"
      f"{device}\t{cpu['cpu_s']:.1f} s / {cpu['runtime']} min\t<= 1\t{ok(cpu['cpu_s'] <= 60 * cpu['runtime'])}")
print(f"workflow: GPU requested per neural job\t{device}\t"
      f"{sorted({j['gpu'] for j in jobs})}\treported\t-")
sys.exit(0 if mem["rss_mb"] <= mem["mem_mb"] and cpu["cpu_s"] <= 60 * cpu["runtime"] else 1)
EOF

# The table: every row of every step
echo
echo "device check on $DEVICE ($([ "$QUICK" = 1 ] && echo quick || echo full)), work folder $WORK"
echo
echo "| check | device | measured | bound | ok |"
echo "|---|---|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$ROWS"
if grep -q $'\tNO$' "$ROWS"; then FAILED=1; fi
echo
[ "$FAILED" = 0 ] && echo "device check: all bounds hold" || echo "device check: FAILED (see the rows marked NO)"
exit "$FAILED"
