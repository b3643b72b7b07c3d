# Sourced by scripts/serve and scripts/test: install what is missing, idempotently.
# Works on a fresh Debian machine as root (apt-get), or anywhere the tools already exist.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

apt_install() {
    # apt_install PACKAGE...: install Debian packages, as root or through sudo.
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "need root (or sudo) to install: $*" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "installing Debian packages: $*" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Switchboard needs Python 3.11 or newer ($PYTHON is older)" >&2; exit 1; }

command -v redis-server >/dev/null || apt_install redis-server

# The browser test drives Debian's chromium (never a downloaded browser); the demo page
# (/demo) runs palava-client from npm. npm may come from elsewhere than Debian: keep it.
debian_missing=()
# Only the tests need the browser (scripts/test sets SWITCHBOARD_SETUP_FOR_TESTS).
if [ "${SWITCHBOARD_SETUP_FOR_TESTS:-0}" = 1 ] && [ ! -x /usr/bin/chromium ]; then
    debian_missing+=(chromium)
fi
command -v npm >/dev/null || debian_missing+=(nodejs npm)
[ "${#debian_missing[@]}" = 0 ] || apt_install "${debian_missing[@]}"

# palava-client as package.json asks, into node_modules/ (neither it nor a lock is committed).
NPM_STAMP="$ROOT/node_modules/.switchboard-installed"
if [ ! -f "$ROOT/node_modules/palava-client/palava.bundle.js" ] || [ ! -f "$NPM_STAMP" ] ||
   [ "$ROOT/package.json" -nt "$NPM_STAMP" ]; then
    echo "installing palava-client from npm into $ROOT/node_modules" >&2
    (cd "$ROOT" && npm install --no-audit --no-fund --no-package-lock --loglevel=error) >&2
    touch "$NPM_STAMP"
fi

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi

# Reinstall only when the project's dependencies changed.
STAMP="$VENV/.switchboard-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    echo "installing Python dependencies into $VENV" >&2
    if ! { "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip &&
           "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test]"; \
         } >"$VENV/install.log" 2>&1; then
        cat "$VENV/install.log" >&2
        exit 1
    fi
    touch "$STAMP"
fi
