# Sourced by the other scripts: make sure .venv exists and has this project installed.
# Reinstalls only when pyproject.toml changed since the last install, so it is cheap to call.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON_BIN="${PYTHON:-python3}"
STAMP="$VENV/.zoo-installed"

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV" >&2
  "$PYTHON_BIN" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  echo "installing keras-zoo and its dependencies into $VENV (about a minute)" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  # The beam extra too: CI runs the Beam tests (a user's plain install stays without it).
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev,beam]" >&2
  touch "$STAMP"
fi
# The project's offline reference data, when it sits beside the checkout (CI, developers).
if [ -z "${ZOO_DATA_DIR:-}" ] && [ -d "$ROOT/../shared/datasets" ]; then
  export ZOO_DATA_DIR="$(cd "$ROOT/../shared/datasets" && pwd)"
fi
