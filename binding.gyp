{
  "targets": [
    {
      "target_name": "xpole_native",
      "sources": [
        "native/addon.cc",
        "native/crop.cc",
        "native/fast.cc",
        "native/notify.cc",
        "native/sheets.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra", "-ffp-contract=off"],
      "conditions": [
        ["target_arch=='x64'", { "cflags_cc": ["-march=x86-64-v2"] }],
        ["<!(sh native/probe-libdeflate.sh)==1", {
          "sources": ["native/png.cc"],
          "libraries": ["-ldeflate"],
          "defines": ["XPOLE_HAVE_LIBDEFLATE"]
        }]
      ]
    }
  ]
}
