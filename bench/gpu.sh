#!/usr/bin/env bash
# Everything that needs a GPU, in one run of at most 8 minutes, printing each figure:
#   1. the trainer bench on CUDA (ours vs torchvision transforms + DataLoader, and the ceiling);
#   2. a whole search (`hpsearch run`) of the CIFAR-shaped `shapes` spec on CUDA;
#   3. `hpsearch serve` with `hpsearch worker --devices all` (one process per GPU) finishing the
#      digits study.
# Run it from the repository root with the project installed: `bash bench/gpu.sh`. Without a
# GPU it stops at once with one `error:` line. Put what it prints in docs/PERFORMANCE.md.
set -uo pipefail

PYTHON=${PYTHON:-python}
if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "error: bench/gpu.sh needs a CUDA GPU: torch.cuda.is_available() is False on this machine" >&2
  exit 2
fi

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "== GPUs"
"$PYTHON" -c 'import torch; [print(i, torch.cuda.get_device_name(i)) for i in range(torch.cuda.device_count())]'

echo "== 1. trainer bench on CUDA (python bench/trainer.py --device cuda --train-images 40000)"
timeout 150 "$PYTHON" bench/trainer.py --device cuda --train-images 40000 \
  || echo "trainer bench: exit $?"

echo "== 2. a search of the shapes spec on CUDA (hpsearch run --spec shapes --device cuda)"
began=$(date +%s)
timeout 180 hpsearch run --spec shapes --device cuda --storage "sqlite:///$work/shapes.db" --json \
  > "$work/shapes.json" || echo "shapes search: exit $?"
tail -n 1 "$work/shapes.json" | "$PYTHON" -c '
import json, sys
try:
    s = json.loads(sys.stdin.read())
except ValueError:
    sys.exit("shapes search: no result")
best = s.get("best") or {}
spent = sum(c["trial_epochs"] for c in s["compute"].values())
print("state", s["state"], "| val accuracy", best.get("val_accuracy"),
      "| test accuracy", best.get("test_accuracy"), "| trial-epochs", spent)
'
echo "shapes search: $(( $(date +%s) - began )) s"

echo "== 3. hpsearch worker --devices all on one server (digits)"
export HPSEARCH_ADMIN_TOKEN=gpu-admin HPSEARCH_WORKER_TOKEN=gpu-worker
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
HPSEARCH_ARTIFACT_DIR="$work/artifacts" HPSEARCH_DATA_DIR="$work/data" \
  hpsearch serve --storage "sqlite:///$work/serve.db" --port "$port" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 60); do curl -sf "$url/healthz" > /dev/null && break; sleep 1; done
began=$(date +%s)
hpsearch launch --spec digits --server "$url" --token gpu-admin
timeout 120 hpsearch worker --server "$url" --devices all --burst --spool "$work/spool" \
  || echo "workers: exit $?"
hpsearch status digits --server "$url" --token gpu-admin
echo "digits on every GPU: $(( $(date +%s) - began )) s"
