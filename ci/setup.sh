#!/usr/bin/env bash
# Set up a fresh Debian machine (as root) for windl: system tools, a virtualenv with
# every Python dependency, and a git identity for the commits DataLad makes.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v git-annex >/dev/null || need_apt+=(git-annex)
command -v git >/dev/null || need_apt+=(git)
command -v gpg >/dev/null || need_apt+=(gnupg)   # encrypted stores of the individuals scope
# the catalog's tests run on a real PostgreSQL (a throwaway cluster each, started by the tests)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || need_apt+=(postgresql)
# the portal's and reports' tests drive Debian's headless Chromium (Playwright, executablePath)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v storescu >/dev/null || need_apt+=(dcmtk)   # receive tests' sender, benchmark baseline
# the portal's production set-up is tested behind a real nginx (X-Accel-Redirect, proxy headers)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
# release builds and the audit OCR images that may carry burned-in text (windl.deid.pixels)
command -v tesseract >/dev/null || need_apt+=(tesseract-ocr tesseract-ocr-eng)
# `convert --executor slurm` is tested on a real single-node Slurm (started by the tests)
[ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] || need_apt+=(slurm-wlm)
[ -x /usr/sbin/munged ] || need_apt+=(munge)
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        # Debian's own python3 needs python3-venv for ensurepip
        rm -rf .venv
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3-venv
        "$PYTHON" -m venv .venv
    fi
fi
stamp=.venv/.windl-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    touch "$stamp"
fi

git config --global user.name >/dev/null || git config --global user.name "windl"
git config --global user.email >/dev/null || git config --global user.email "windl@localhost"
