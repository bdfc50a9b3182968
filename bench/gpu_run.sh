#!/usr/bin/env bash
# One GPU device run of bench/train_throughput.py (the anchors' protocol: YOLO11n, 4,000 + 250
# generated images at 640 px, equal wall time per configuration). Results land in $OUT:
# gpu.txt, bench.log, train_throughput_gpu.json and one log per configuration.
#
# On the device (wheels carried in .whl/, see bench/README.md):
#   run(command="bash bench/gpu_run.sh", carry=[".whl"], timeout_s=540)
# Locally, to try the script itself on CPU in seconds:
#   OUT=/tmp/gpu-out PY=.venv/bin/python SKIP_WHEELS=1 BENCH_ARGS="--quick" bash bench/gpu_run.sh
set -uo pipefail
OUT=${OUT:?set OUT to a folder for the results}
PY=${PY:-python3}
BENCH_ARGS=${BENCH_ARGS:---gpu-protocol --seconds 75 --with-big --deadline 400}
mkdir -p "$OUT"
if [ -z "${SKIP_WHEELS:-}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"; nproc; free -g; } > "$OUT/gpu.txt"
"$PY" -c "import ultralytics, torch, numpy, cv2; print('ultralytics', ultralytics.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__, 'cv2', cv2.__version__)" | tee -a "$OUT/gpu.txt"
export PYTHONUNBUFFERED=1
# shellcheck disable=SC2086
timeout "${BENCH_TIMEOUT:-480}" "$PY" bench/train_throughput.py $BENCH_ARGS --work /tmp/yolopipe-bench \
    --json "$OUT/train_throughput_gpu.json" 2>&1 | tee "$OUT/bench.log"
status=$?
[ -n "${SKIP_EVAL:-}" ] && exit $status
# The processing step on the GPU too: score the model our defaults trained (val split: no test here).
PYTHONPATH="functions/shared${PYTHONPATH:+:$PYTHONPATH}" timeout 60 "$PY" training_code/evaluate.py \
    --model /tmp/yolopipe-bench/ours/model --data /tmp/yolopipe-bench/dataset --output "$OUT" 2>&1 | tail -n 3
for log in /tmp/yolopipe-bench/*.log; do
    [ -f "$log" ] && tail -c 300000 "$log" > "$OUT/$(basename "$log")"
done
exit $status
