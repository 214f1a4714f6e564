#!/usr/bin/env bash
# `make run`: builds wgbot, saying what it is doing (a first build on a
# fresh machine downloads the modules and compiles everything, which takes a
# minute or two, and a silent terminal looks hung), then serves the real bot
# when a BOT_TOKEN is set (in the environment or .env) and opens the sandbox
# otherwise.
#
# GO is the go command (default go), WGBOT_BIN the binary (default
# bin/wgbot).
set -euo pipefail

go=${GO:-go}
bin=${WGBOT_BIN:-bin/wgbot}
log() { printf 'make run: %s\n' "$*" >&2; }

if [[ -x $bin ]]; then
	log "building $bin…"
else
	log "building $bin (the first build downloads modules and compiles everything: a minute or two)…"
fi
start=$SECONDS
count=$(mktemp)
trap 'rm -f "$count"' EXIT
# go build -v names each package as it compiles it; those lines are counted
# and a progress line is printed every few seconds. Everything else it says
# (downloads, errors) is passed through.
set +e
"$go" build -v -o "$bin" ./cmd/wgbot 2>&1 | {
	compiled=0 last=$SECONDS
	while IFS= read -r line; do
		if [[ $line =~ ^[[:alnum:]._~/+-]+$ ]]; then
			compiled=$((compiled + 1))
		else
			printf '%s\n' "$line" >&2
		fi
		if ((SECONDS - last >= ${WGBOT_PROGRESS_EVERY:-5})); then
			log "… $compiled packages compiled ($((SECONDS - start)) s)"
			last=$SECONDS
		fi
	done
	echo "$compiled" >"$count"
}
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
	log "the build failed (exit status $status)"
	exit "$status"
fi
compiled=$(<"$count")
if ((compiled == 1)); then
	log "built $bin in $((SECONDS - start)) s (1 package compiled)"
elif ((compiled > 1)); then
	log "built $bin in $((SECONDS - start)) s ($compiled packages compiled)"
fi

if [[ -n ${BOT_TOKEN:-} ]] || grep -Eqs '^[[:space:]]*(export[[:space:]]+)?BOT_TOKEN[[:space:]]*=[[:space:]]*[^[:space:]#]' .env; then
	rm -f "$count"
	exec "$bin" serve
fi
rm -f "$count"
exec "$bin" sandbox
