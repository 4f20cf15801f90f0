#!/bin/sh
# `npm run test:asan`: the native tests against an AddressSanitizer build of
# the addon.
#
# The addon is built with -fsanitize=address (binding.gyp's ringstore_asan
# variable) in its own directory, build/asan/, so the default build in
# build/Release stays what `npm install` made. Node itself is not
# instrumented, so libasan is LD_PRELOADed: its malloc then tracks every heap
# block of the process (V8's ArrayBuffers included), and its interceptors check
# the buffers of preadv/pwritev that the thread-pool backend passes to the
# kernel. IO the kernel does through io_uring is invisible to it; freed memory
# that io_uring writes into shows up later as a corrupted heap block or
# redzone.
#
# detect_leaks=0: Node does not free everything at exit (V8's heap, its
# platform threads, per-isolate data of terminated workers), so LeakSanitizer
# would report thousands of blocks that are not ours. Leaks of our own fds are
# checked by the tests themselves (worker_termination_stress.test.ts).
#
# Arguments: test files to run instead of every dist/test/native/*.test.js.
# RINGSTORE_ASAN_SKIP_BUILD=1 reuses an existing build/asan.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
asan_dir="$root/build/asan"
if [ "${RINGSTORE_ASAN_SKIP_BUILD:-0}" != 1 ] || [ ! -f "$asan_dir/build/Release/ringstore.node" ]; then
  mkdir -p "$asan_dir"
  cp "$root/binding.gyp" "$asan_dir/binding.gyp"
  ln -sfn "$root/native" "$asan_dir/native"
  # The Node headers `npm install` built with (npm's nodedir, when set).
  nodedir=${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}
  case "$nodedir" in ""|undefined|null) nodedir_arg="" ;; *) nodedir_arg="--nodedir=$nodedir" ;; esac
  (cd "$asan_dir" && "$root/node_modules/.bin/node-gyp" rebuild --ringstore_asan=1 $nodedir_arg >"$asan_dir/build.log" 2>&1) || {
    cat "$asan_dir/build.log" >&2
    exit 1
  }
fi
libasan=$(${CC:-gcc} -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "test:asan: libasan.so not found (install gcc's AddressSanitizer runtime)" >&2
  exit 1
fi
if [ "$#" -eq 0 ]; then set -- "$root"/dist/test/native/*.test.js; fi
export RINGSTORE_ADDON_PATH="$asan_dir/build/Release/ringstore.node"
export LD_PRELOAD="$libasan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:print_summary=1:${ASAN_OPTIONS:-}"
exec node "$root/node_modules/mocha/bin/mocha.js" --no-config --timeout 120000 "$@"
