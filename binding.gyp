{
  # ringstore_asan=1 (node-gyp rebuild --ringstore_asan=1, as test/native/asan.sh
  # does in its own build directory) compiles the addon with AddressSanitizer.
  # The default build, and so `npm install`, never sets it.
  "variables": {
    "ringstore_asan%": 0
  },
  "targets": [
    {
      "target_name": "ringstore",
      "sources": [
        "native/addon.cc",
        "native/actor.cc",
        "native/actor_join.cc",
        "native/aligned_buffer.cc",
        "native/bounce_pool.cc",
        "native/command.cc",
        "native/crc32c.cc",
        "native/direct_ring.cc",
        "native/file_ops.cc",
        "native/file_table.cc",
        "native/js_args.cc",
        "native/ring.cc",
        "native/ring_client.cc",
        "native/ring_client_commands.cc",
        "native/ring_client_delivery.cc",
        "native/ring_client_spin.cc",
        "native/ring_client_stats.cc",
        "native/ring_client_submit.cc",
        "native/ring_client_teardown.cc",
        "native/spin_policy.cc",
        "native/thread_pool_actor.cc",
        "native/uring_actor.cc"
      ],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-O2"],
      "conditions": [
        ["OS!='linux'", { "sources": [], "type": "none" }],
        ["ringstore_asan==1", {
          "cflags_cc": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-O1"],
          "ldflags": ["-fsanitize=address"]
        }]
      ]
    }
  ]
}
