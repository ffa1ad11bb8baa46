# deps.sh - sourced by scripts/up and scripts/test: installs the Debian
# packages jobmill needs, by name, when any is missing.
JM_PACKAGES=(build-essential clang clang-format libclang-rt-14-dev cmake pkg-config valgrind libhiredis-dev libcivetweb-dev libjansson-dev
             libyaml-dev libcriterion-dev redis-server redis-tools python3 curl prometheus tzdata
             nodejs)

jm_missing_packages() {
    local missing=() p
    for p in "${JM_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    echo "${missing[@]:-}"
}

jm_ensure_packages() {
    local missing
    missing=$(jm_missing_packages "$@")
    [ -z "$missing" ] && return 0
    echo "jobmill: installing missing packages: $missing" >&2
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "jobmill: run as root or install these packages first: $missing" >&2
            return 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
    # shellcheck disable=SC2086
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >&2
}
