# podman.sh - sourced (after deps.sh) by scripts/images and
# tests/containers/run: the container tools, podman's settings, the cache
# directory, and the Debian mirror that this machine's apt sources name.

JM_CONTAINER_PACKAGES=(podman buildah runc debootstrap)
JM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# jm_ensure_container_tools [PKG...] installs podman, buildah, runc,
# debootstrap and the extra PKGs from Debian when any is missing. Only those:
# the empty local JM_PACKAGES hides deps.sh's build packages from
# jm_ensure_packages (bash's dynamic scoping).
jm_ensure_container_tools() {
    local JM_PACKAGES=()
    jm_ensure_packages "${JM_CONTAINER_PACKAGES[@]}" "$@"
}

# jm_podman_env points podman at scripts/lib/containers.conf unless the
# caller already chose a CONTAINERS_CONF.
jm_podman_env() {
    if [ -z "${CONTAINERS_CONF:-}" ]; then
        export CONTAINERS_CONF="$JM_LIB_DIR/containers.conf"
    fi
}

# jm_podman_usable: podman is installed and answers (with jm_podman_env's
# settings).
jm_podman_usable() {
    command -v podman >/dev/null 2>&1 || return 1
    ( jm_podman_env; podman info >/dev/null 2>&1 )
}

# jm_cache_dir prints (and creates) where the base root filesystems are kept
# between runs: JOBMILL_CACHE_DIR, else /var/cache/jobmill for root and
# ~/.cache/jobmill for anyone else.
jm_cache_dir() {
    local d=${JOBMILL_CACHE_DIR:-}
    if [ -z "$d" ]; then
        if [ "$(id -u)" -eq 0 ]; then d=/var/cache/jobmill; else d=${XDG_CACHE_HOME:-$HOME/.cache}/jobmill; fi
    fi
    mkdir -p "$d" && (cd "$d" && pwd)
}

# jm_apt_uri SUITE prints the first URI that the apt sources (one-line
# sources.list files and deb822 .sources files) give to "deb" entries of
# SUITE; nothing when none does.
jm_apt_uri() {
    local files=() f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    awk -v want="$1" '
        function emit(u) { if (!found) { found = 1; print u } }
        function flush(   n, s, m, u, i, j) {
            if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
                n = split(suites, s, /[ \t]+/)
                for (i = 1; i <= n; i++) {
                    if (s[i] != want) continue
                    m = split(uris, u, /[ \t]+/)
                    for (j = 1; j <= m; j++) if (u[j] != "") { emit(u[j]); break }
                }
            }
            types = uris = suites = enabled = ""
        }
        FNR == 1 { flush(); deb822 = FILENAME ~ /\.sources$/ }
        /^[ \t]*#/ { next }
        deb822 && /^[ \t]*$/ { flush(); next }
        deb822 {
            key = tolower($1); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
            if (key == "types:") types = val
            else if (key == "uris:") uris = val
            else if (key == "suites:") suites = val
            else if (key == "enabled:") enabled = val
            next
        }
        $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == want) emit($i)
        }
        END { flush() }
    ' "${files[@]}"
}

# jm_host_codename prints this machine's release codename (bookworm, ...).
jm_host_codename() {
    (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
}

# jm_debian_mirror prints the Debian mirror to debootstrap from:
# JOBMILL_DEBIAN_MIRROR when set, else the URI the apt sources give to this
# machine's release. Fails with a message when there is none.
jm_debian_mirror() {
    if [ -n "${JOBMILL_DEBIAN_MIRROR:-}" ]; then
        echo "$JOBMILL_DEBIAN_MIRROR"
        return 0
    fi
    local codename uri
    codename=$(jm_host_codename)
    uri=$(jm_apt_uri "${codename:-bookworm}")
    if [ -z "$uri" ]; then
        echo "jobmill: no Debian mirror for \"${codename:-bookworm}\" in the apt sources; set JOBMILL_DEBIAN_MIRROR" >&2
        return 1
    fi
    echo "$uri"
}
