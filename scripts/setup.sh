#!/usr/bin/env bash
# Installs everything irm and its lab need on a fresh Debian machine, as root: the Debian packages
# (iproute2, nftables, openssh, python3-venv) and the project's virtualenv. Idempotent and quick when
# everything is already there. Used by `make setup` (and so by `make demo` and `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need_apt+=(nftables)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v sysctl >/dev/null 2>&1 || need_apt+=(procps)
[ -x /usr/bin/python3 ] || need_apt+=(python3)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)  # the crisis report's HTML is rendered headless in tests
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)  # the live board is driven in headless Chromium
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: $PYTHON is missing or older than 3.11; installing Debian's python3" >&2
  need_apt+=(python3 python3-venv)
  PYTHON=/usr/bin/python3
fi
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages (${need_apt[*]}); run as root" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stamp="$VENV/.irm-installed"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing irm and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -m pip install -q -e '.[dev,lab]' 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -c 'import orchestrator.cli, ansible_runner, ansible_collections.cisco.ios' \
    || { echo "setup: the virtualenv is incomplete" >&2; exit 1; }
  touch "$stamp"
fi
echo "setup: ready ($("$VENV/bin/python" --version), $("$VENV/bin/ansible" --version | head -1))"
