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
          "sources": ["native/stub.cc"],
          "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES" },
          "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } }
        }]
      ]
    }
  ]
}
