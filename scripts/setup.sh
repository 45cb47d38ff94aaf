#!/usr/bin/env bash
# Idempotent machine set-up for valbox: everything the build and the tests need.
#
# - Debian packages: clang/lld/llvm 19 and wasi-libc (QuickJS is C compiled for
#   wasm32-wasip1 by the guest build), redis-server (queue tests), postgresql
#   (store tests start their own cluster), wrk (HTTP bench), prometheus (its
#   promtool checks /metrics and the deploy/ rules), curl (413 test),
#   python3-aiosmtpd (the SMTP server the email delivery tests start).
# - The Rust target wasm32-wasip1.
# - A wasi-sdk-shaped folder of links under build/wasi-sdk (see guest-js/README.md).
#
# Each step says what failed and how to fix it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

fail() { echo "setup: $1" >&2; echo "setup: fix: $2" >&2; exit 1; }

packages=(clang-19 lld-19 llvm-19 libclang-19-dev libclang-rt-19-dev-wasm32 wasi-libc redis-server postgresql wrk prometheus curl python3-aiosmtpd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq >/dev/null || fail "apt-get update failed" "check network access to the Debian mirrors"
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed" "run it by hand to see apt's message"
fi

if ! rustup target list --installed | grep -qx wasm32-wasip1; then
  echo "setup: adding rust target wasm32-wasip1"
  rustup target add wasm32-wasip1 || fail "rustup target add wasm32-wasip1 failed" "check access to static.rust-lang.org"
fi

# QuickJS (rquickjs-sys) wants a wasi-sdk; Debian's clang + wasi-libc stand in for it.
sdk="$root/build/wasi-sdk"
mkdir -p "$sdk/bin" "$sdk/share/wasi-sysroot/include" "$sdk/share/wasi-sysroot/lib"
ln -sfn /usr/bin/clang-19 "$sdk/bin/clang"
ln -sfn /usr/bin/llvm-ar-19 "$sdk/bin/ar"
for triple in wasm32-wasi wasm32-wasip1; do
  ln -sfn /usr/include/wasm32-wasi "$sdk/share/wasi-sysroot/include/$triple"
  ln -sfn /usr/lib/wasm32-wasi "$sdk/share/wasi-sysroot/lib/$triple"
done
[ -x "$sdk/bin/clang" ] || fail "clang-19 not found at /usr/bin/clang-19" "apt-get install clang-19"
[ -d /usr/lib/wasm32-wasi ] || fail "wasi-libc not found at /usr/lib/wasm32-wasi" "apt-get install wasi-libc"
echo "setup: ok"
