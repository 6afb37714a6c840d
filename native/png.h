// Grey PNG pixel data: zlib inflate (libdeflate) and the five PNG row filters, off the event loop.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace xpole {

// Inflates the concatenated IDAT data `z` of a non-interlaced grey PNG (1 sample per pixel,
// `depth` 8 or 16) and undoes the row filters into `out`: width * height samples, 16-bit ones
// in the machine's byte order. Returns an empty string on success, else what is wrong with the data.
std::string decodeGreyPng(const uint8_t* z, size_t zBytes, int width, int height, int depth, void* out);

}  // namespace xpole
