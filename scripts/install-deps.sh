#!/usr/bin/env bash
# Installs the system tools wgbot's WireGuard code and tests need: wg
# (wireguard-tools), ip (iproute2) and ping (iputils-ping), and the headless
# browser the sandbox's browser test drives (Debian's chromium; the test never
# downloads a browser), and gcc, which `go test -race` needs (cgo). Safe to run again
# and again: it installs only what is missing and runs `apt-get update` at
# most once. wireguard-go itself is a Go tool dependency in go.mod, not a
# system package.
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*"; }

# command:package pairs. A command that exists but whose Debian package is
# not installed (another implementation, e.g. busybox ping) is replaced too,
# because the tests rely on the options of these exact tools.
wanted=(wg:wireguard-tools ip:iproute2 ping:iputils-ping chromium:chromium gcc:gcc)

missing=()
for pair in "${wanted[@]}"; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	if ! command -v "$cmd" >/dev/null 2>&1; then
		log "$cmd not found: will install $pkg"
		missing+=("$pkg")
	elif command -v dpkg-query >/dev/null 2>&1 &&
		! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		log "$cmd found but package $pkg is not installed: will install it"
		missing+=("$pkg")
	else
		log "$cmd present ($pkg)"
	fi
done

# Packages without a command of their own. The emoji font makes the bot's
# buttons legible in the browser test's screenshots.
for pkg in fonts-noto-color-emoji; do
	if command -v dpkg-query >/dev/null 2>&1 &&
		! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		log "will install $pkg"
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} > 0)); then
	sudo=()
	if ((EUID != 0)); then
		if ! command -v sudo >/dev/null 2>&1; then
			log "need root to install ${missing[*]}; run this script as root"
			exit 1
		fi
		sudo=(sudo)
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		log "apt-get not found: install ${missing[*]} with this system's package manager"
		exit 1
	fi
	log "apt-get update"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	log "apt-get install -y ${missing[*]}"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# wireguard-go needs a TUN device. It is part of the kernel, not a package,
# so we can only report it; the tests fail with the same message.
if [[ ! -c /dev/net/tun ]]; then
	log "warning: /dev/net/tun is missing; wireguard-go cannot create interfaces (try: modprobe tun)"
fi
log "done"
