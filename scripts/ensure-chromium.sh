#!/usr/bin/env bash
# Make sure Debian's headless-capable chromium is at /usr/bin/chromium, then
# print its path on stdout (progress goes to stderr).
#
# The browser tests drive this system chromium through Playwright's driver;
# Playwright's own browser download (`playwright install`) is never used, so
# the only network this needs is the Debian apt mirror, and only once.
# Override the binary with CHROMIUM (then nothing is installed).
set -euo pipefail

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$chromium" ]]; then
    echo "$chromium"
    exit 0
fi
if [[ -n "${CHROMIUM:-}" ]]; then
    echo "ensure-chromium: CHROMIUM=$CHROMIUM is not an executable" >&2
    exit 1
fi
if [[ "$(id -u)" != "0" ]]; then
    sudo="sudo"
else
    sudo=""
fi
# One installer at a time: a second caller waits for the first one's lock.
lock="${TMPDIR:-/tmp}/overseer-ensure-chromium.lock"
exec 9>"$lock"
flock 9
if [[ ! -x "$chromium" ]]; then
    echo "ensure-chromium: installing Debian's chromium (apt-get)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends chromium >&2
fi
if [[ ! -x "$chromium" ]]; then
    echo "ensure-chromium: apt-get finished but $chromium is missing" >&2
    exit 1
fi
echo "$chromium"
