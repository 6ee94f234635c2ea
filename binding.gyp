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
          # Load on glibc 2.28 (Node 20's floor): the glibc 2.32/2.33 symbols used
          # by the sources and by libstdc++'s headers resolve to native/compat.cc.
          "defines": ["__libc_single_threaded=pagewise_single_threaded"],
          "ldflags": ["-Wl,--wrap=fstat64,--wrap=stat64,--wrap=lstat64,--wrap=fstatat64"],
          "sources": [
            "native/addon.cc",
            "native/compat.cc",
            "native/errors.cc",
            "native/fadvise.cc",
            "native/limits.cc",
            "native/madvise.cc",
            "native/mapping.cc",
            "native/memfd.cc",
            "native/mincore.cc",
            "native/mlock.cc",
            "native/mprotect.cc",
            "native/msync.cc",
            "native/pagemap.cc",
            "native/prctl.cc",
            "native/pressure.cc",
            "native/process_madvise.cc",
            "native/read.cc",
            "native/userfaultfd.cc",
            "native/cli/cli.cc",
            "native/cli/stat_batch.cc",
            "native/cli/stat_text.cc"
          ]
        }, {
          # Other systems: nothing to build (lib/native.ts uses the simulator there).
          "type": "none"
        }]
      ]
    }
  ]
}
