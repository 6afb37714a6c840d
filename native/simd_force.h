// XPOLE_SIMD names a narrower instruction set than the CPU has (sse2, generic: the portable or
// scalar code an ARM build runs), so that tests can check every copy of a loop on one machine.
#pragma once
#include <cstdlib>
#include <cstring>

namespace xpole {

inline bool simdForced(const char* name) {
  const char* force = std::getenv("XPOLE_SIMD");
  return force != nullptr && std::strcmp(force, name) == 0;
}

}  // namespace xpole
