// Grey PNG pixel data: zlib inflate (libdeflate) and the five PNG row filters, off the event loop.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace xpole {

// Bytes decodeGreyPng needs in `buf`: the filtered rows, each with its filter-type byte.
inline size_t greyPngWorkBytes(int width, int height, int depth) {
  return (size_t(width) * size_t(depth / 8) + 1) * size_t(height);
}

// Inflates the concatenated IDAT data `z` of a non-interlaced grey PNG (1 sample per pixel,
// `depth` 8 or 16) into `buf` (greyPngWorkBytes long) and decodes it there, in place: the first
// width * height samples of `buf` become the pixels, 16-bit ones in the machine's byte order.
// Returns an empty string on success, else what is wrong with the data.
std::string decodeGreyPng(const uint8_t* z, size_t zBytes, int width, int height, int depth, uint8_t* buf);

}  // namespace xpole
