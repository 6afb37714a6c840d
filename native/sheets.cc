#include "sheets.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#if defined(__SSSE3__) && defined(__SSE4_1__)
#include <immintrin.h>
#define XPOLE_HALF_SIMD 1
#endif

namespace xpole {
namespace {

// JavaScript's Math.round (halves up), exactly: v - floor(v) is exact for |v| < 2^52.
inline int64_t jsRound(double v) {
  double f = std::floor(v);
  return int64_t(v - f >= 0.5 ? f + 1 : f);
}

template <typename T>
double stripeMean(const T* p, int W, int H, const Affine& m, double x0, double x1, double y0, double y1, int smooth) {
  const double sx = std::max(1.0, (x1 - x0) / 64);
  const double sy = std::max(1.0, (y1 - y0) / 64);
  const double d = 2;
  const int half = (smooth - 1) / 2;
  // The mean of `smooth` pixels centred on canonical (xc, yc), stepping (ux, uy) frame px per
  // canonical px; clamped to the frame where the run leaves it.
  auto run = [&](double xc, double yc, int64_t ux, int64_t uy) -> double {
    const int64_t x = jsRound(m.ox + m.exx * xc + m.eyx * yc);
    const int64_t y = jsRound(m.oy + m.exy * xc + m.eyy * yc);
    const int64_t xa = x - half * ux, ya = y - half * uy, xb = x + half * ux, yb = y + half * uy;
    // An integer sum: exact, so the double it becomes is the one the TypeScript summed.
    int64_t s = 0;
    if (std::min(xa, xb) >= 0 && std::max(xa, xb) < W && std::min(ya, yb) >= 0 && std::max(ya, yb) < H) {
      const int64_t step = uy * W + ux;
      const T* q = p + (ya * W + xa);
      for (int k = 0; k < smooth; k++, q += step) s += *q;
    } else {
      for (int k = -half; k <= half; k++) {
        const int64_t yy = std::min<int64_t>(H - 1, std::max<int64_t>(0, y + k * uy));
        const int64_t xx = std::min<int64_t>(W - 1, std::max<int64_t>(0, x + k * ux));
        s += p[yy * W + xx];
      }
    }
    return double(s) / smooth;
  };
  const int64_t ax = int64_t(m.exx), ay = int64_t(m.exy), bx = int64_t(m.eyx), by = int64_t(m.eyy);
  double sum = 0;
  double n = 0;
  for (double yc = y0; yc <= y1; yc += sy) {
    for (double xc = x0; xc <= x1; xc += sx) {
      sum += std::abs(run(xc, yc + d, ax, ay) - run(xc, yc - d, ax, ay)) - std::abs(run(xc + d, yc, bx, by) - run(xc - d, yc, bx, by));
      n++;
    }
  }
  return n > 0 ? sum / n : 0;
}

// 32-bit sums are exact: a side is at most 65536 px (the addon refuses more), 65536 * 65535 < 2^32.
// 32-bit lanes and a loop bound that cannot overflow (x < end, not x <= x1) let the compiler vectorize.
template <typename T>
void rectSums(const T* p, int W, int x0, int y0, int x1, int y1, bool byRow, double* out) {
  if (byRow) {
    for (int y = y0; y <= y1; y++) {
      const T* row = p + size_t(y) * size_t(W);
      uint32_t s = 0;
      for (int x = x0, end = x1 + 1; x < end; x++) s += row[x];
      out[y - y0] = double(s);
    }
    return;
  }
  // Per column: rows are added in turn, so the frame is still read row by row.
  std::vector<uint32_t> s(size_t(x1 - x0 + 1), 0);
  for (int y = y0; y <= y1; y++) {
    const T* row = p + size_t(y) * size_t(W) + x0;
    for (size_t x = 0; x < s.size(); x++) s[x] += row[x];
  }
  for (size_t i = 0; i < s.size(); i++) out[i] = double(s[i]);
}

template <typename T>
void greyRange(const T* p, size_t n, size_t step, int out[2]) {
  std::vector<uint32_t> counts(sizeof(T) == 1 ? 256 : 65536, 0);
  size_t taken = 0;
  for (size_t i = 0; i < n; i += step, taken++) counts[p[i]]++;
  auto at = [&](double q) {
    const size_t rank = std::min(taken - 1, size_t(std::floor(q * double(taken))));
    size_t seen = 0;
    for (size_t v = 0; v < counts.size(); v++) {
      seen += counts[v];
      if (seen > rank) return int(v);
    }
    return int(counts.size() - 1);
  };
  out[0] = at(0.005);
  out[1] = at(0.995);
}

// The rounded mean of out[x]'s 2 x 2 pixels, from column `from` of the output row on.
template <typename T>
void halfRowScalar(const T* a, const T* b, T* o, int from, int w) {
  for (int x = from; x < w; x++) o[x] = T((unsigned(a[2 * x]) + a[2 * x + 1] + b[2 * x] + b[2 * x + 1] + 2) >> 2);
}

// One output row from input rows a and b: 16 outputs a step where SSE4.1 is there, the rest scalar.
void halfRow(const uint8_t* a, const uint8_t* b, uint8_t* o, int w) {
  int x = 0;
#ifdef XPOLE_HALF_SIMD
  const __m128i ones = _mm_set1_epi8(1), two = _mm_set1_epi16(2);
  // maddubs: each byte pair summed into 16 bits; the 2 x 2 sum is at most 1020.
  auto sums = [&](const uint8_t* pa, const uint8_t* pb) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pa));
    const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb));
    const __m128i s = _mm_add_epi16(_mm_maddubs_epi16(va, ones), _mm_maddubs_epi16(vb, ones));
    return _mm_srli_epi16(_mm_add_epi16(s, two), 2);
  };
  for (; x + 16 <= w; x += 16) {
    const __m128i lo = sums(a + 2 * x, b + 2 * x), hi = sums(a + 2 * x + 16, b + 2 * x + 16);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + x), _mm_packus_epi16(lo, hi));
  }
#endif
  halfRowScalar(a, b, o, x, w);
}

void halfRow(const uint16_t* a, const uint16_t* b, uint16_t* o, int w) {
  int x = 0;
#ifdef XPOLE_HALF_SIMD
  const __m128i zero = _mm_setzero_si128(), two = _mm_set1_epi32(2);
  // Four outputs from 8 pixels of each row: column sums in 32 bits, then adjacent pairs (hadd).
  auto quad = [&](const uint16_t* pa, const uint16_t* pb) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pa));
    const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb));
    const __m128i lo = _mm_add_epi32(_mm_unpacklo_epi16(va, zero), _mm_unpacklo_epi16(vb, zero));
    const __m128i hi = _mm_add_epi32(_mm_unpackhi_epi16(va, zero), _mm_unpackhi_epi16(vb, zero));
    return _mm_srli_epi32(_mm_add_epi32(_mm_hadd_epi32(lo, hi), two), 2);
  };
  for (; x + 8 <= w; x += 8) {
    const __m128i q0 = quad(a + 2 * x, b + 2 * x), q1 = quad(a + 2 * x + 8, b + 2 * x + 8);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + x), _mm_packus_epi32(q0, q1));
  }
#endif
  halfRowScalar(a, b, o, x, w);
}

template <typename T>
void halfSize(const T* p, int W, int H, T* out) {
  const int w = W >> 1, h = H >> 1;
  for (int y = 0; y < h; y++) {
    const T* a = p + size_t(2 * y) * size_t(W);
    halfRow(a, a + W, out + size_t(y) * size_t(w), w);
  }
}

}  // namespace

double stripeMean8(const uint8_t* p, int w, int h, const Affine& m, double x0, double x1, double y0, double y1, int smooth) {
  return stripeMean(p, w, h, m, x0, x1, y0, y1, smooth);
}
double stripeMean16(const uint16_t* p, int w, int h, const Affine& m, double x0, double x1, double y0, double y1, int smooth) {
  return stripeMean(p, w, h, m, x0, x1, y0, y1, smooth);
}
void rectSums8(const uint8_t* p, int w, int x0, int y0, int x1, int y1, bool byRow, double* out) {
  rectSums(p, w, x0, y0, x1, y1, byRow, out);
}
void rectSums16(const uint16_t* p, int w, int x0, int y0, int x1, int y1, bool byRow, double* out) {
  rectSums(p, w, x0, y0, x1, y1, byRow, out);
}
void greyRange8(const uint8_t* p, size_t n, size_t step, int out[2]) { greyRange(p, n, step, out); }
void greyRange16(const uint16_t* p, size_t n, size_t step, int out[2]) { greyRange(p, n, step, out); }
void halfSize8(const uint8_t* p, int w, int h, uint8_t* out) { halfSize(p, w, h, out); }
void halfSize16(const uint16_t* p, int w, int h, uint16_t* out) { halfSize(p, w, h, out); }

}  // namespace xpole
