#!/bin/sh
# npm run test:package: packs the package (prepack builds the prebuilt
# addons, tools/build_prebuilds.sh) and installs the tarball into an empty
# project on a PATH with no C/C++ compiler, make or python — as on a
# node:20-slim image — then uses it from ESM and CommonJS. Needs the npm
# registry for the dependencies, and g++-aarch64-linux-gnu for the arm64
# prebuild. Not part of npm test: it takes minutes and the network.
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
tar -tzf "$work/$tarball" | grep -E 'prebuilds/linux-(x64|arm64)/ringstore.glibc.node' || { echo "no prebuilt addons in $tarball" >&2; exit 1; }
# A PATH with a shell, node and npm only: no cc, c++, g++, make, python3.
mkdir "$work/bin"
for tool in sh node npm npx; do ln -s "$(command -v "$tool")" "$work/bin/$tool"; done
for tool in cc c++ gcc g++ make python3; do
  ! PATH="$work/bin" command -v "$tool" >/dev/null || { echo "$tool is still on PATH" >&2; exit 1; }
done
mkdir "$work/app"
cd "$work/app"
echo '{ "name": "app", "version": "1.0.0", "private": true }' > package.json
PATH="$work/bin" npm install --no-audit --no-fund "$work/$tarball"
test ! -d node_modules/ringstore/build || { echo "the addon was built from source, not taken prebuilt" >&2; exit 1; }
PATH="$work/bin" node --input-type=module -e "
  import { BlockStore } from 'ringstore';
  const db = await BlockStore.open('$work/app/store', { create: true, sizeBytes: 4 << 20 });
  await db.put('k', { ok: true });
  console.log('esm:', JSON.stringify(await db.get('k')));
  await db.close();"
PATH="$work/bin" node -e "
  const { BlockStore } = require('ringstore');
  BlockStore.open('$work/app/store').then(async (db) => { console.log('cjs:', JSON.stringify(await db.get('k'))); await db.close(); });"
echo "test:package: ok"
