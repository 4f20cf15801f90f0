#!/bin/sh
# Builds the addon for every platform the npm package ships a prebuilt binary
# for — linux-x64 and linux-arm64, glibc — into prebuilds/, where
# node-gyp-build finds it at install and at load time, so that installing the
# package needs no C/C++ compiler on those platforms. Runs before `npm pack`
# and `npm publish` (prepack). The arm64 build is a cross build: it needs
# Debian's g++-aarch64-linux-gnu (apt-get install g++-aarch64-linux-gnu).
#
# Both builds go through build/, so the host's own build is made again at
# the end: a cross build must not stay where the tests load the addon from.
set -eu
cd "$(dirname "$0")/.."
rm -rf prebuilds
npx prebuildify --napi --strip --tag-libc --arch x64
if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
  echo "build_prebuilds: aarch64-linux-gnu-g++ is missing (apt-get install g++-aarch64-linux-gnu)" >&2
  exit 1
fi
CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ \
  npx prebuildify --napi --strip --tag-libc --arch arm64 --strip-bin aarch64-linux-gnu-strip
npx node-gyp rebuild
ls -l prebuilds/*/
