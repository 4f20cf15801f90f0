{
  "targets": [
    {
      "target_name": "ringstore",
      "sources": [
        "native/addon.cc",
        "native/actor.cc",
        "native/aligned_buffer.cc",
        "native/command.cc",
        "native/crc32c.cc",
        "native/file_ops.cc",
        "native/ring.cc",
        "native/ring_client.cc",
        "native/thread_pool_actor.cc",
        "native/uring_actor.cc"
      ],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-O2"],
      "conditions": [
        ["OS!='linux'", { "sources": [], "type": "none" }]
      ]
    }
  ]
}
