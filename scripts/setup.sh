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
    # Services (nginx, coturn) are installed, never started: the tests start their own, on
    # ports of their own, and a daemon left on port 80 would be nobody's.
    local no_start=/usr/sbin/policy-rc.d
    if [ ! -e "$no_start" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$no_start" >/dev/null
        $sudo chmod +x "$no_start"
    else
        no_start=""
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
    [ -z "$no_start" ] || $sudo rm -f "$no_start"
}

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Switchboard needs Python 3.11 or newer ($PYTHON is older)" >&2; exit 1; }

command -v redis-server >/dev/null || apt_install redis-server

# The browser test drives Debian's chromium (never a downloaded browser); the demo page
# (/demo) runs palava-client from npm. npm may come from elsewhere than Debian: keep it.
debian_missing=()
# Only the tests need the browser (scripts/test sets SWITCHBOARD_SETUP_FOR_TESTS).
if [ "${SWITCHBOARD_SETUP_FOR_TESTS:-0}" = 1 ]; then
    [ -x /usr/bin/chromium ] || debian_missing+=(chromium)
    # The reverse proxy the README's configuration is tested with (tests/e2e/test_proxy.py).
    [ -x /usr/sbin/nginx ] || debian_missing+=(nginx)
    [ -x /usr/bin/turnserver ] || debian_missing+=(coturn)
fi
command -v npm >/dev/null || debian_missing+=(nodejs npm)
[ "${#debian_missing[@]}" = 0 ] || apt_install "${debian_missing[@]}"

# The npm packages of package.json: as package-lock.json pins them (npm ci), or with
# SWITCHBOARD_LATEST=1 (scripts/test --latest) the newest releases its ranges allow.
NPM_STAMP="$ROOT/node_modules/.switchboard-installed"
if [ "${SWITCHBOARD_LATEST:-0}" = 1 ]; then
    echo "installing the newest npm packages package.json allows into $ROOT/node_modules" >&2
    (cd "$ROOT" && npm install --no-package-lock --no-audit --no-fund --loglevel=error) >&2
    echo latest >"$NPM_STAMP"
elif [ ! -f "$ROOT/node_modules/palava-client/palava.bundle.js" ] || [ ! -f "$NPM_STAMP" ] ||
     [ "$(cat "$NPM_STAMP")" != locked ] || [ "$ROOT/package-lock.json" -nt "$NPM_STAMP" ]; then
    echo "installing the npm packages of package-lock.json into $ROOT/node_modules" >&2
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error) >&2
    echo locked >"$NPM_STAMP"
fi

# Python: a virtualenv with what requirements/dev.lock pins, hashes checked, and the
# project itself (editable). With SWITCHBOARD_LATEST=1, another virtualenv with the newest
# releases pyproject.toml's ranges allow, upgraded on every run.
if [ "${SWITCHBOARD_LATEST:-0}" = 1 ]; then
    VENV="$ROOT/.venv-latest"
fi
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi

pip_install() {
    # pip_install ARG...: quietly, its log shown only when it fails.
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" \
            >"$VENV/install.log" 2>&1; then
        cat "$VENV/install.log" >&2
        exit 1
    fi
}

STAMP="$VENV/.switchboard-installed"
if [ "${SWITCHBOARD_LATEST:-0}" = 1 ]; then
    echo "installing the newest Python releases pyproject.toml allows into $VENV" >&2
    pip_install --upgrade --upgrade-strategy eager -e "$ROOT[test,bench]"
    "$VENV/bin/python" -m pip list --disable-pip-version-check --format=freeze \
        >"$VENV/installed.txt"
    echo "versions installed: $VENV/installed.txt" >&2
elif [ ! -f "$STAMP" ] || [ "$ROOT/requirements/dev.lock" -nt "$STAMP" ] ||
     [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    echo "installing the Python packages of requirements/dev.lock into $VENV" >&2
    pip_install --require-hashes -r "$ROOT/requirements/dev.lock"
    # Its dependencies are all in the lock, and so is its build backend.
    pip_install --no-deps --no-build-isolation -e "$ROOT"
    touch "$STAMP"
fi
