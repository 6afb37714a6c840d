#!/bin/sh
# Prints 1 when libdeflate's header and library are there (Debian: libdeflate-dev), else 0:
# binding.gyp then builds the addon without the fast PNG path and decoding stays with sharp.
printf '#include <libdeflate.h>\nint main(void){libdeflate_free_decompressor(libdeflate_alloc_decompressor());return 0;}\n' |
  ${CC:-cc} -x c - -o /dev/null -ldeflate >/dev/null 2>&1 && echo 1 || echo 0
