#!/usr/bin/env bash
# Runs CI as a fresh machine of this kind would, on a developer's own
# machine: removes what scripts/install-deps.sh installs and the account the
# sandbox creates, clears the Go build cache, then runs .ci/run in a fresh
# clone of this repository's HEAD. A green CI on a machine that kept what an
# earlier run installed can hide a missing install step; this shows it.
#
# It uninstalls packages system-wide (as root): run it only on a
# disposable or CI-like machine.
set -euo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=${1:-$(mktemp -d /tmp/wgbot-fresh-ci.XXXXXX)}

if ((EUID != 0)); then
	echo "simulate-fresh-ci: run as root (it removes packages and users)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "simulate-fresh-ci: removing what install-deps installs"
apt-get remove -y -qq wireguard-tools iputils-ping chromium fonts-noto-color-emoji >/dev/null
apt-get autoremove -y -qq >/dev/null
pkill -u wgbot-sandbox 2>/dev/null || true
sleep 1
userdel wgbot-sandbox 2>/dev/null || true
groupdel wgbot-sandbox 2>/dev/null || true
go clean -cache

echo "simulate-fresh-ci: cloning $repo into $work/wgbot"
git clone -q "$repo" "$work/wgbot"
cd "$work/wgbot"
CI=true bash .ci/run </dev/null
