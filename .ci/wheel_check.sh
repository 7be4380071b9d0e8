#!/usr/bin/env bash
# The package as a new user gets it: build the wheel, install it into a fresh virtual
# environment (same torch pin as .ci/run), and from a temporary folder outside the checkout
# run `oversight demo`, `oversight constitution validate` on a built-in by name, and the
# README's ten-line Python example (its first Python block), on the real default model.
#
#   .ci/wheel_check.sh            (PYTHON=python3.X to choose the interpreter)
#
# The model cache (~/.cache/oversight, or OVERSIGHT_CACHE) is shared with the caller, so the
# default model is fetched and converted at most once.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
case "$WORK" in "$ROOT"/*) echo "wheel check: temp folder inside the checkout" >&2; exit 1;; esac

echo "== build the wheel"
"$PYTHON" -m pip wheel -q --no-deps "$ROOT" -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/oversight-*.whl)"
echo "$WHEEL"

echo "== install it into a fresh virtual environment"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "torch==2.13.0" "$WHEEL"

mkdir "$WORK/user"
cd "$WORK/user"
export PATH="$WORK/venv/bin:$PATH"
unset PYTHONPATH
# The package must come from the wheel, not from the checkout.
python - "$ROOT" <<'PY'
import sys, pathlib, oversight
where = pathlib.Path(oversight.__file__).resolve()
root = pathlib.Path(sys.argv[1]).resolve()
assert root not in where.parents, f"oversight imported from the checkout: {where}"
print("oversight from", where.parent)
PY

echo "== oversight constitution validate harmlessness (by name)"
oversight constitution validate harmlessness helpfulness honesty

echo "== oversight demo"
oversight demo

echo "== the README's ten-line Python example"
"$PYTHON" "$ROOT/tests/readme_blocks.py" "$ROOT/README.md" first-python > example.py
cat example.py
time python example.py
test -f runs/hh/judgments.sqlite || test -f runs/hh
echo "wheel check: ok"
