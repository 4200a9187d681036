#!/usr/bin/env bash
# Prove what a user gets from `pip install .`: build the wheel from a clean copy of the tree
# (no dev build to ship by accident), install it into a fresh virtualenv, and check that
# JupyterLab sees the prebuilt labextension and the server extension, both enabled and OK.
set -euo pipefail

python=${1:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "check-wheel: copying the tracked tree to $work/src"
mkdir -p "$work/src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard) |
  (cd "$root" && xargs -0 cp --parents -t "$work/src" 2>/dev/null || true)
test -f "$work/src/pyproject.toml"

echo "check-wheel: building the wheel (the build hook builds the frontend)"
"$python" -m pip wheel --quiet --no-deps -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/canfar_jlab-*.whl)
# (listed to a file first: `grep -q` in a pipe would stop reading early, and under pipefail the
# writer's SIGPIPE fails the script at random)
unzip -l "$wheel" > "$work/wheel-contents.txt"
grep -q "share/jupyter/labextensions/canfar-jlab/static/style.js" "$work/wheel-contents.txt"
grep -q "etc/jupyter/jupyter_server_config.d/canfar_jlab.json" "$work/wheel-contents.txt"

echo "check-wheel: installing $(basename "$wheel") into a fresh virtualenv"
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$wheel" "jupyterlab==4.6.6"

# A prebuilt extension needs no Node or jlpm at install or run time: list from the venv alone.
# (without the colour codes Jupyter puts around "enabled" and "OK")
plain() { sed 's/\x1b\[[0-9;]*m//g'; }
labext=$("$work/venv/bin/jupyter" labextension list 2>&1 | plain)
serverext=$("$work/venv/bin/jupyter" server extension list 2>&1 | plain)
echo "$labext" | grep -E "canfar-jlab v[0-9.]+ enabled OK" ||
  { echo "$labext"; echo "check-wheel: labextension canfar-jlab not enabled OK"; exit 1; }
echo "$serverext" | grep -E "canfar_jlab [0-9.]+ OK" ||
  { echo "$serverext"; echo "check-wheel: server extension canfar_jlab not OK"; exit 1; }
"$work/venv/bin/canfar-jlab" --version
echo "check-wheel: OK"
