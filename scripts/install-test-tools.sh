#!/usr/bin/env bash
# Installs the system tools that some tests use: a JDK and Debian's OkHttp for the Android
# client stub, Node.js and npm for the JavaScript socket.io-client test and the widget's
# and inbox's build checks, Debian's Chromium for the browser tests (Playwright drives it;
# it never downloads a browser of its own). Tests whose tool is
# missing skip with a reason (or fail under PARLEY_REQUIRE_SERVICES=1).
# Needs root (or sudo) and Debian/Ubuntu's apt; elsewhere, install the equivalents yourself.
set -euo pipefail
missing=()
command -v javac >/dev/null || missing+=(default-jdk-headless)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v chromium >/dev/null || missing+=(chromium)
for p in libokhttp-java libokio-java libandroid-json-java; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install-test-tools: no apt-get here; install ${missing[*]} yourself" >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
