{
  "targets": [
    {
      "target_name": "pagewise",
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/addon.cc",
            "native/cachestat_batch.cc",
            "native/errors.cc",
            "native/fadvise.cc",
            "native/madvise.cc",
            "native/mapping.cc",
            "native/mincore.cc",
            "native/mlock.cc",
            "native/mprotect.cc",
            "native/msync.cc",
            "native/pressure.cc"
          ]
        }, {
          # Other systems: nothing to build (lib/native.ts uses the simulator there).
          "type": "none"
        }]
      ]
    }
  ]
}
