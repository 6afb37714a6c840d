// PNG decoding for grey frames (PNG spec §9 filters), the hot part of decoding a 16-bit frame:
// libdeflate inflates about 1.7x faster than zlib, and one pass undoes the filters and the
// big-endian byte order. Chunk parsing and header checks stay in TypeScript (src/frame/png-format.ts).
#include "png.h"
#include "simd_force.h"

#include <libdeflate.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__SSSE3__)
#include <tmmintrin.h>
#endif

namespace xpole {
namespace {

// Row filters (PNG spec §9.2) for BPP bytes a pixel, 1 or 2 for grey frames. A byte's filter
// reads the byte BPP back in its own row, so each row holds BPP independent chains. Sub is a
// prefix sum along those chains, 16 bytes at a time. Average and Paeth stay serial; Paeth chooses
// without branches, which mispredicted on noisy X-ray rows (60 of 83 ms for a 2048² 16-bit frame).
#if defined(__SSSE3__)
// XPOLE_SIMD=generic takes the scalar loops an ARM build runs.
const bool kScalarOnly = simdForced("generic");

// Sub over the whole 16-byte blocks of a row (n >= 16); returns where the scalar tail starts.
template <size_t BPP>
size_t unfilterSubBlocks(uint8_t* cur, size_t n) {
  // Prefix sums within a block by shifts of BPP, 2 BPP, ...; then the previous block's last
  // pixel, broadcast, carries in. Byte adds wrap mod 256 as the filter does.
  const __m128i last = BPP == 1 ? _mm_set1_epi8(15) : _mm_set_epi8(15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14);
  __m128i carry = _mm_setzero_si128();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(cur + i));
    if (BPP == 1) x = _mm_add_epi8(x, _mm_slli_si128(x, 1));
    x = _mm_add_epi8(x, _mm_slli_si128(x, 2));
    x = _mm_add_epi8(x, _mm_slli_si128(x, 4));
    x = _mm_add_epi8(x, _mm_slli_si128(x, 8));
    x = _mm_add_epi8(x, carry);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(cur + i), x);
    carry = _mm_shuffle_epi8(x, last);
  }
  return i;
}
#endif

template <size_t BPP>
void unfilterSub(uint8_t* cur, size_t n) {
  size_t i = BPP;
#if defined(__SSSE3__)
  if (!kScalarOnly && n >= 16) i = unfilterSubBlocks<BPP>(cur, n);
#endif
  for (; i < n; i++) cur[i] = uint8_t(cur[i] + cur[i - BPP]);
}

// Average and Paeth keep the left pixel (a) and the upper-left one (c) in registers: read back
// from the row just written, each byte would wait on a store-to-load forward.
template <size_t BPP>
void unfilterAverage(uint8_t* cur, const uint8_t* prev, size_t n) {
  unsigned a[BPP];
  for (size_t k = 0; k < BPP; k++) a[k] = 0;
  for (size_t i = 0; i + BPP <= n; i += BPP) {
    for (size_t k = 0; k < BPP; k++) {
      a[k] = uint8_t(cur[i + k] + ((a[k] + prev[i + k]) >> 1));
      cur[i + k] = uint8_t(a[k]);
    }
  }
}

inline unsigned paethPredictor(int a, int b, int c) {
  // |p - a|, |p - b|, |p - c| with p = a + b - c; ties go to a, then b (the spec's order).
  const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
  const int bc = pb <= pc ? b : c;
  return unsigned(pa <= pb && pa <= pc ? a : bc);
}

template <size_t BPP>
void unfilterPaeth(uint8_t* cur, const uint8_t* prev, size_t n) {
  int a[BPP], c[BPP];
  for (size_t k = 0; k < BPP; k++) a[k] = c[k] = 0;  // left of the row: paeth(0, b, 0) = b
  for (size_t i = 0; i + BPP <= n; i += BPP) {
    for (size_t k = 0; k < BPP; k++) {
      const int b = prev[i + k];
      a[k] = uint8_t(cur[i + k] + paethPredictor(a[k], b, c[k]));
      cur[i + k] = uint8_t(a[k]);
      c[k] = b;
    }
  }
}

template <size_t BPP>
bool unfilterRowOf(uint8_t filter, uint8_t* cur, const uint8_t* prev, size_t n) {
  switch (filter) {
    case 0:
      return true;
    case 1:
      unfilterSub<BPP>(cur, n);
      return true;
    case 2:
      for (size_t i = 0; i < n; i++) cur[i] = uint8_t(cur[i] + prev[i]);
      return true;
    case 3:
      unfilterAverage<BPP>(cur, prev, n);
      return true;
    case 4:
      unfilterPaeth<BPP>(cur, prev, n);
      return true;
    default:
      return false;
  }
}

// Undoes one row's filter in place; `prev` is the previous row's unfiltered bytes (zeros for the first).
bool unfilterRow(uint8_t filter, uint8_t* cur, const uint8_t* prev, size_t n, size_t bpp) {
  return bpp == 1 ? unfilterRowOf<1>(filter, cur, prev, n) : unfilterRowOf<2>(filter, cur, prev, n);
}

// 16-bit samples from the file's big-endian order to host order, moved to `dst` at or before
// `src`: each block is loaded before its store, which lands only on bytes already read.
void moveBigEndian16(uint8_t* dst, const uint8_t* src, size_t samples) {
  size_t x = 0;
#if defined(__SSSE3__)
  if (!kScalarOnly) {
    const __m128i swap = _mm_set_epi8(14, 15, 12, 13, 10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1);
    for (; x + 8 <= samples; x += 8) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * x));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * x), _mm_shuffle_epi8(v, swap));
    }
  }
#endif
  for (; x < samples; x++) {
    const uint16_t v = uint16_t((src[2 * x] << 8) | src[2 * x + 1]);
    std::memcpy(dst + 2 * x, &v, 2);
  }
}

struct Decompressor {
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  ~Decompressor() { libdeflate_free_decompressor(d); }
};

}  // namespace

std::string decodeGreyPng(const uint8_t* z, size_t zBytes, int width, int height, int depth, uint8_t* buf) {
  const size_t bpp = size_t(depth / 8);
  const size_t rowBytes = size_t(width) * bpp;
  const size_t stride = rowBytes + 1;  // each row starts with its filter type
  const size_t rawBytes = stride * size_t(height);
  // One decompressor per worker thread: allocated once, reused frame after frame.
  thread_local Decompressor dec;
  if (!dec.d) return "cannot allocate a decompressor";
  size_t inUsed = 0;
  size_t got = 0;
  libdeflate_result r = libdeflate_zlib_decompress_ex(dec.d, z, zBytes, buf, rawBytes, &inUsed, &got);
  if (r == LIBDEFLATE_BAD_DATA) return "the compressed pixel data (IDAT) is corrupt";
  if (r == LIBDEFLATE_INSUFFICIENT_SPACE) return "the pixel data (IDAT) holds more than " + std::to_string(rawBytes) + " bytes, the size its header gives";
  if (r != LIBDEFLATE_SUCCESS) return "the compressed pixel data (IDAT) cannot be inflated";
  if (got != rawBytes) {
    return "the pixel data (IDAT) ends after " + std::to_string(got) + " of " + std::to_string(rawBytes) + " bytes (truncated)";
  }
  // One pass, a row at a time while it is in cache: undo its filter, keep its bytes for the next
  // row's filter (which reads the row above as decoded), then close it up over the filter bytes
  // in host order. Row y moves y + 1 bytes toward the start, over bytes already read.
  std::vector<uint8_t> above(rowBytes, 0);
  for (int y = 0; y < height; y++) {
    uint8_t* row = buf + size_t(y) * stride;
    if (!unfilterRow(row[0], row + 1, above.data(), rowBytes, bpp)) {
      return "row " + std::to_string(y) + " has filter type " + std::to_string(row[0]) + " (PNG knows 0 to 4)";
    }
    // Only Up, Average and Paeth read the row above; the next row's filter byte is still in place.
    if (y + 1 < height && row[stride] >= 2) std::memcpy(above.data(), row + 1, rowBytes);
    uint8_t* dst = buf + size_t(y) * rowBytes;
    if (depth == 8) {
      std::memmove(dst, row + 1, rowBytes);
    } else {
      moveBigEndian16(dst, row + 1, size_t(width));
    }
  }
  return "";
}

}  // namespace xpole
