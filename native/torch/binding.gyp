{
  # Builds the libtorch binding. Debian's libtorch-dev by default (headers in /usr/include, libraries
  # on the default search path); another libtorch (e.g. a CUDA build from pytorch.org) with
  #   npx node-gyp rebuild --directory native/torch --nodedir=/usr --libtorch=/opt/libtorch --cuda=1
  "variables": {
    "libtorch%": "/usr",
    "cuda%": "0"
  },
  "targets": [
    {
      "target_name": "autoprune_torch",
      "sources": ["binding.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<(libtorch)/include",
        "<(libtorch)/include/torch/csrc/api/include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-fno-rtti", "-fno-exceptions", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-frtti", "-fexceptions", "-O2", "-Wno-unused-parameter"],
      "cflags!": ["-fno-exceptions"],
      "conditions": [
        ["libtorch!='/usr'", {
          "libraries": ["-L<(libtorch)/lib", "-Wl,-rpath,<(libtorch)/lib"]
        }],
        ["cuda=='1'", {
          # Without --no-as-needed the linker drops torch_cuda (nothing references it by name) and
          # its kernels never register.
          "libraries": ["-Wl,--no-as-needed", "-ltorch_cuda", "-Wl,--as-needed"]
        }]
      ],
      "libraries": ["-ltorch", "-ltorch_cpu", "-lc10"]
    }
  ]
}
