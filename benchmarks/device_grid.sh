#!/usr/bin/env bash
# Many small trainings side by side, one torch thread each, on a machine with many
# cores (the lent device machine has 16): a seeds-and-variants table in one call.
#
#   GRID=benchmarks/grids/<name>.txt JOBS=15 DATA=<datasets folder> OUT=<folder> \
#       bash benchmarks/device_grid.sh
#
# Each line of $GRID is "<run name> <train_agent.py arguments>" ('#' starts a comment).
# Every run writes its run dir under $RUNS/<run name>; at the end (and when the
# call is cut short, whatever finished by then) the run dirs' metrics, configs and
# per-user ranks, without checkpoints or event files, are packed into $OUT/grid.tar.gz,
# with each run's log; $OUT/grid.txt has a line per run (its test metrics). gymnasium, stable-baselines3 and sb3-contrib are installed from
# .whl/ when that folder exists (no network there).
set -uo pipefail
GRID=${GRID:?GRID=<file of runs>}
JOBS=${JOBS:-$(nproc)}
DATA=${DATA:-../shared/data}
OUT=${OUT:-/tmp/device_grid}
RUNS=${RUNS:-/tmp/device_grid_runs}
LIMIT=${LIMIT:-540}  # seconds before every run still going is stopped and the results packed
mkdir -p "$OUT" "$RUNS"
if [ -d /tmp/site/gymnasium ]; then
  export PYTHONPATH=/tmp/site:$PWD
elif [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
pack() {
  tar --exclude='*.pt' --exclude='events.*' -czf "$OUT/grid.tar.gz" -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
  ls -la "$OUT"
}
trap pack EXIT
run_one() {
  name=$1; shift
  start=$(date +%s)
  python3 train_agent.py "$@" --data-dir "$DATA" --threads 1 --progress false \
    --run-dir "$RUNS/$name" >"$RUNS/$name.log" 2>&1
  echo "$name rc=$? $(( $(date +%s) - start )) s: $(grep -E '^test ' "$RUNS/$name.log" | tr -s ' ')" \
    | tee -a "$OUT/grid.txt"
}
export -f run_one
export DATA OUT RUNS
grep -v '^\s*#' "$GRID" | grep -v '^\s*$' \
  | timeout "$LIMIT" xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _
echo "grid done (or stopped at ${LIMIT} s)"
