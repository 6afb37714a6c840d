// FAST-9 on the 16-pixel Bresenham circle, bit-compatible with OpenCV's FAST_t<16> (fast.cpp):
// the same 3-pixel border, the same score (cornerScore<16>) and the same strict 3x3 suppression
// over three row buffers. Harris ranking and intensity-centroid angle follow ORB (orb.cpp).
#include "fast.h"
#include "simd_force.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace xpole {
namespace {

// Circle offsets (x, y) in OpenCV's order; index k and k + 16 name the same pixel.
constexpr int kCircle[16][2] = {{0, 3},  {1, 3},   {2, 2},   {3, 1},   {3, 0},  {3, -1},  {2, -2}, {1, -3},
                                {0, -3}, {-1, -3}, {-2, -2}, {-3, -1}, {-3, 0}, {-3, 1}, {-2, 2}, {-1, 3}};
constexpr int kArc = 9;             // contiguous pixels that make a corner
constexpr int kRing = 16 + kArc;    // 25 offsets: the circle plus the wrap-around
constexpr int kHarrisBlock = 7;     // ORB's blockSize
constexpr float kHarrisK = 0.04f;   // ORB's HARRIS_K
constexpr int kHalfPatch = 15;      // ORB's patchSize 31 / 2

template <typename T>
struct Plane {
  const T* px;
  int w, h;
  ptrdiff_t stride;
  const T* row(int y) const { return px + y * stride; }
};

struct Keypoint {
  int x, y, score;
};

void makeOffsets(ptrdiff_t stride, ptrdiff_t pixel[kRing]) {
  for (int k = 0; k < 16; k++) pixel[k] = kCircle[k][0] + kCircle[k][1] * stride;
  for (int k = 16; k < kRing; k++) pixel[k] = pixel[k - 16];
}

// OpenCV's cornerScore<16>: the largest threshold at which p is still a corner, minus one.
template <typename T>
int cornerScore(const T* ptr, const ptrdiff_t pixel[kRing], int threshold) {
  int v = ptr[0];
  int d[kRing];
  for (int k = 0; k < kRing; k++) d[k] = v - int(ptr[pixel[k]]);
  int a0 = threshold;
  for (int k = 0; k < 16; k += 2) {
    int a = std::min(d[k + 1], d[k + 2]);
    a = std::min(a, d[k + 3]);
    if (a <= a0) continue;
    a = std::min(a, d[k + 4]);
    a = std::min(a, d[k + 5]);
    a = std::min(a, d[k + 6]);
    a = std::min(a, d[k + 7]);
    a = std::min(a, d[k + 8]);
    a0 = std::max(a0, std::min(a, d[k]));
    a0 = std::max(a0, std::min(a, d[k + 9]));
  }
  int b0 = -a0;
  for (int k = 0; k < 16; k += 2) {
    int b = std::max(d[k + 1], d[k + 2]);
    b = std::max(b, d[k + 3]);
    b = std::max(b, d[k + 4]);
    b = std::max(b, d[k + 5]);
    if (b >= b0) continue;
    b = std::max(b, d[k + 6]);
    b = std::max(b, d[k + 7]);
    b = std::max(b, d[k + 8]);
    b0 = std::min(b0, std::max(b, d[k]));
    b0 = std::min(b0, std::max(b, d[k + 9]));
  }
  return -b0 - 1;
}

#if defined(__SSE2__)
// The same score for 8-bit pixels, all 16 arcs at once (OpenCV's SIMD form): for a corner the best
// arc's min |difference| always exceeds the threshold, so starting from it changes nothing.
inline int cornerScore8(const uint8_t* ptr, const ptrdiff_t pixel[kRing]) {
  alignas(16) int16_t d[kRing + 7];
  int v = ptr[0];
  for (int k = 0; k < kRing; k++) d[k] = int16_t(v - ptr[pixel[k]]);
  __m128i q0 = _mm_set1_epi16(-1000), q1 = _mm_set1_epi16(1000);
  for (int k = 0; k < 16; k += 8) {
    auto at = [&](int i) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + k + i)); };
    __m128i a = _mm_min_epi16(at(1), at(2)), b = _mm_max_epi16(at(1), at(2));
    for (int i = 3; i <= 8; i++) {
      a = _mm_min_epi16(a, at(i));
      b = _mm_max_epi16(b, at(i));
    }
    q0 = _mm_max_epi16(q0, _mm_min_epi16(a, at(0)));
    q1 = _mm_min_epi16(q1, _mm_max_epi16(b, at(0)));
    q0 = _mm_max_epi16(q0, _mm_min_epi16(a, at(9)));
    q1 = _mm_min_epi16(q1, _mm_max_epi16(b, at(9)));
  }
  q0 = _mm_max_epi16(q0, _mm_sub_epi16(_mm_setzero_si128(), q1));
  q0 = _mm_max_epi16(q0, _mm_srli_si128(q0, 8));
  q0 = _mm_max_epi16(q0, _mm_srli_si128(q0, 4));
  q0 = _mm_max_epi16(q0, _mm_srli_si128(q0, 2));
  return int(int16_t(_mm_cvtsi128_si32(q0))) - 1;
}
#endif

// Full segment test on one pixel: 9 contiguous circle pixels all darker than v - t or all brighter than v + t.
template <typename T>
bool isCorner(const T* ptr, const ptrdiff_t pixel[kRing], int t) {
  int v = ptr[0], lo = v - t, hi = v + t;
  // Any 9-arc covers two neighbouring compass points (0, 4, 8, 12): a cheap necessary condition.
  auto cls = [&](int k) { int x = ptr[pixel[k]]; return (x < lo ? 1 : 0) | (x > hi ? 2 : 0); };
  int c0 = cls(0), c4 = cls(4), c8 = cls(8), c12 = cls(12);
  if (((c0 & c4) | (c4 & c8) | (c8 & c12) | (c12 & c0)) == 0) return false;
  int dark = 0, bright = 0;
  for (int k = 0; k < kRing; k++) {
    int x = ptr[pixel[k]];
    dark = x < lo ? dark + 1 : 0;
    bright = x > hi ? bright + 1 : 0;
    if (dark >= kArc || bright >= kArc) return true;
  }
  return false;
}

#if defined(__SSE2__)
namespace sse2 {
#include "fast_simd.inc"
}  // namespace sse2
#pragma GCC push_options
#pragma GCC target("avx2")
#define XPOLE_SIMD_256 1
namespace avx2 {
#include "fast_simd.inc"
}  // namespace avx2
#undef XPOLE_SIMD_256
#pragma GCC pop_options
#endif
#define XPOLE_SIMD_GENERIC 1
namespace generic {
#include "fast_simd.inc"
}  // namespace generic
#undef XPOLE_SIMD_GENERIC

// The widest instruction set this CPU has; XPOLE_SIMD=sse2|generic forces a narrower one, so tests
// can check every copy on one machine.
enum class Simd { Generic, Sse2, Avx2 };
Simd pickSimd() {
  if (simdForced("generic")) return Simd::Generic;
#if defined(__SSE2__)
  if (simdForced("sse2") || !__builtin_cpu_supports("avx2")) return Simd::Sse2;
  return Simd::Avx2;
#else
  return Simd::Generic;
#endif
}
const Simd kSimd = pickSimd();

// Scores one row (y) into `scores` and lists the corner columns in `cols`. On entry `scores` is zero
// except at the columns `cols` lists (the row this buffer held before).
template <typename T, typename S>
void scoreRow(const Plane<T>& img, int y, int t, const ptrdiff_t pixel[kRing], S* scores, std::vector<int>& cols) {
  for (int j : cols) scores[j] = 0;
  cols.clear();
  if (y < 3 || y > img.h - 4) return;
  const T* row = img.row(y);
  int j = 3;
  constexpr int lanes = (sizeof(T) == 1 ? 32 : 16);  // the widest vector; narrower rows go scalar
  if (img.w - 6 >= lanes) {
    if constexpr (sizeof(T) == 1) {
      auto row8 = generic::row8;
#if defined(__SSE2__)
      if (kSimd != Simd::Generic) row8 = kSimd == Simd::Avx2 ? avx2::row8 : sse2::row8;
#endif
      row8(row, j, img.w - 3, t, pixel, scores, cols);
    } else {
      auto row16 = generic::row16;
#if defined(__SSE2__)
      if (kSimd != Simd::Generic) row16 = kSimd == Simd::Avx2 ? avx2::row16 : sse2::row16;
#endif
      row16(row, j, img.w - 3, t, pixel, scores, cols);
    }
    return;
  }
  for (; j < img.w - 3; j++) {
    const T* p = row + j;
    if (isCorner(p, pixel, t)) {
      cols.push_back(j);
      scores[j] = S(cornerScore(p, pixel, t));
    }
  }
}

// Corners of the output rows [y0, y1) with strict 3x3 suppression (rows y0-1 and y1 are scored too,
// so row bands give exactly the whole-frame result).
template <typename T>
void fastBand(const Plane<T>& img, int t, int y0, int y1, std::vector<Keypoint>& out) {
  using S = std::conditional_t<sizeof(T) == 1, uint8_t, uint16_t>;
  ptrdiff_t pixel[kRing];
  makeOffsets(img.stride, pixel);
  std::vector<S> buf(size_t(img.w) * 3, 0);
  std::vector<int> cols[3];
  S* rows[3] = {buf.data(), buf.data() + img.w, buf.data() + 2 * img.w};
  // rows[0] = y-1, rows[1] = y, rows[2] = y+1
  scoreRow(img, y0 - 1, t, pixel, rows[0], cols[0]);
  scoreRow(img, y0, t, pixel, rows[1], cols[1]);
  for (int y = y0; y < y1; y++) {
    scoreRow(img, y + 1, t, pixel, rows[2], cols[2]);
    const S *prev = rows[0], *cur = rows[1], *next = rows[2];
    for (int j : cols[1]) {
      int s = cur[j];
      if (s > cur[j - 1] && s > cur[j + 1] && s > prev[j - 1] && s > prev[j] && s > prev[j + 1] && s > next[j - 1] &&
          s > next[j] && s > next[j + 1])
        out.push_back({j, y, s});
    }
    std::rotate(rows, rows + 1, rows + 3);
    std::rotate(cols, cols + 1, cols + 3);
  }
}

// OpenCV's borderInterpolate(BORDER_REFLECT_101), the border ORB pads its pyramid with.
int reflect101(int p, int len) {
  if (len == 1) return 0;
  while (p < 0 || p >= len) p = p < 0 ? -p : 2 * len - p - 2;
  return p;
}

// ORB's HarrisResponses on one point; get(dx, dy) reads the pixel at the offset from the point.
template <typename T, typename Get>
float harrisAt(Get get) {
  using Acc = std::conditional_t<sizeof(T) == 1, int32_t, int64_t>;
  constexpr int r = kHarrisBlock / 2;
  Acc a = 0, b = 0, c = 0;
  for (int dy = -r; dy <= r; dy++) {
    for (int dx = -r; dx <= r; dx++) {
      Acc ix = (Acc(get(dx + 1, dy)) - get(dx - 1, dy)) * 2 + (Acc(get(dx + 1, dy - 1)) - get(dx - 1, dy - 1)) +
               (Acc(get(dx + 1, dy + 1)) - get(dx - 1, dy + 1));
      Acc iy = (Acc(get(dx, dy + 1)) - get(dx, dy - 1)) * 2 + (Acc(get(dx - 1, dy + 1)) - get(dx - 1, dy - 1)) +
               (Acc(get(dx + 1, dy + 1)) - get(dx + 1, dy - 1));
      a += ix * ix;
      b += iy * iy;
      c += ix * iy;
    }
  }
  if constexpr (sizeof(T) == 1) {
    // ORB's float arithmetic, operation for operation, so responses match OpenCV's.
    float scale = 1.f / ((1 << 2) * kHarrisBlock * 255.f);
    float scale_sq_sq = scale * scale * scale * scale;
    return ((float)a * b - (float)c * c - kHarrisK * ((float)a + b) * ((float)a + b)) * scale_sq_sq;
  } else {
    // Same formula scaled to the 16-bit range; double because the sums exceed float's exact range.
    double scale = 1.0 / ((1 << 2) * kHarrisBlock * 65535.0);
    double s4 = scale * scale * scale * scale;
    double A = double(a), B = double(b), C = double(c);
    return float((A * B - C * C - double(kHarrisK) * (A + B) * (A + B)) * s4);
  }
}

// ORB's circular patch: half-widths of each row of a disc of radius 15, made symmetric as ORB does.
struct PatchRows {
  int umax[kHalfPatch + 2];
  PatchRows() {
    int vmax = int(std::floor(kHalfPatch * std::sqrt(2.f) / 2 + 1));
    int vmin = int(std::ceil(kHalfPatch * std::sqrt(2.f) / 2));
    for (int v = 0; v <= vmax; ++v) umax[v] = int(std::lround(std::sqrt(double(kHalfPatch) * kHalfPatch - v * v)));
    for (int v = kHalfPatch, v0 = 0; v >= vmin; --v) {
      while (umax[v0] == umax[v0 + 1]) ++v0;
      umax[v] = v0;
      ++v0;
    }
  }
};
const PatchRows kPatch;

// ORB's IC_Angle: direction of the intensity centroid, degrees in [0, 360).
template <typename Get>
float angleAt(Get get) {
  int64_t m01 = 0, m10 = 0;
  for (int u = -kHalfPatch; u <= kHalfPatch; ++u) m10 += int64_t(u) * get(u, 0);
  for (int v = 1; v <= kHalfPatch; ++v) {
    int64_t vsum = 0;
    int d = kPatch.umax[v];
    for (int u = -d; u <= d; ++u) {
      int64_t plus = get(u, v), minus = get(u, -v);
      vsum += plus - minus;
      m10 += u * (plus + minus);
    }
    m01 += v * vsum;
  }
  double a = std::atan2(double(m01), double(m10)) * (180.0 / M_PI);
  if (a < 0) a += 360.0;
  return a >= 360.0 ? 0.f : float(a);
}

// Harris response and angle of one corner; points near an edge read a reflect-101 border as ORB's padded pyramid.
template <typename T>
void describe(const Plane<T>& img, int x, int y, float* harris, float* angle) {
  constexpr int m = kHalfPatch + 1;
  if (x >= m && y >= m && x < img.w - m && y < img.h - m) {
    const T* c = img.row(y) + x;
    ptrdiff_t s = img.stride;
    auto get = [c, s](int dx, int dy) { return int(c[dy * s + dx]); };
    if (harris) *harris = harrisAt<T>(get);
    if (angle) *angle = angleAt(get);
  } else {
    auto get = [&img, x, y](int dx, int dy) {
      return int(img.row(reflect101(y + dy, img.h))[reflect101(x + dx, img.w)]);
    };
    if (harris) *harris = harrisAt<T>(get);
    if (angle) *angle = angleAt(get);
  }
}

// Runs fn(begin, end, band) over [0, n) split into `threads` contiguous parts.
template <typename Fn>
void parallelFor(int n, int threads, Fn fn) {
  threads = std::max(1, std::min(threads, n / 64 > 0 ? n / 64 : 1));
  if (threads == 1) {
    fn(0, n, 0);
    return;
  }
  std::vector<std::thread> pool;
  for (int b = 1; b < threads; b++) pool.emplace_back(fn, int(int64_t(n) * b / threads), int(int64_t(n) * (b + 1) / threads), b);
  fn(0, int(int64_t(n) / threads), 0);
  for (auto& th : pool) th.join();
}

// ORB's KeyPointsFilter::retainBest: the n best by response plus every point tied with the n-th.
void retainBest(std::vector<uint32_t>& idx, const std::vector<float>& response, size_t n) {
  if (idx.size() <= n) return;
  auto greater = [&](uint32_t a, uint32_t b) { return response[a] > response[b]; };
  std::nth_element(idx.begin(), idx.begin() + (n - 1), idx.end(), greater);
  float boundary = response[idx[n - 1]];
  auto end = std::partition(idx.begin() + n, idx.end(), [&](uint32_t i) { return response[i] >= boundary; });
  idx.resize(end - idx.begin());
}

template <typename T>
void detect(const T* pixels, int width, int height, size_t stride, const CornerParams& p, CornerSet& out) {
  Plane<T> img{pixels, width, height, ptrdiff_t(stride)};
  out = CornerSet();
  if (width < 7 || height < 7) return;  // no pixel has the full circle inside
  int rows = height - 6;                 // keypoint rows 3 .. height-4
  int threads = std::max(1, p.threads);
  std::vector<std::vector<Keypoint>> bands(size_t(std::max(1, std::min(threads, rows))));
  parallelFor(rows, threads, [&](int b, int e, int band) { fastBand(img, p.threshold, 3 + b, 3 + e, bands[band]); });

  std::vector<Keypoint> kps;
  for (auto& band : bands) kps.insert(kps.end(), band.begin(), band.end());
  if (p.border > 3) {
    int e = p.border;
    kps.erase(std::remove_if(kps.begin(), kps.end(),
                             [&](const Keypoint& k) { return k.x < e || k.y < e || k.x >= width - e || k.y >= height - e; }),
              kps.end());
  }

  size_t n = kps.size();
  std::vector<float> harris(n, 0.f), angle(n, 0.f);
  std::vector<uint32_t> keep(n);
  for (size_t i = 0; i < n; i++) keep[i] = uint32_t(i);

  auto describeAll = [&](bool wantHarris, bool wantAngle) {
    parallelFor(int(keep.size()), threads, [&](int b, int e, int) {
      for (int i = b; i < e; i++) {
        uint32_t k = keep[i];
        describe(img, kps[k].x, kps[k].y, wantHarris ? &harris[k] : nullptr, wantAngle ? &angle[k] : nullptr);
      }
    });
  };

  if (p.maxCorners > 0 && p.describe) {
    // As ORB: keep 2N by FAST score, rank those by Harris, keep N, then orient the survivors.
    std::vector<float> fastScore(n);
    for (size_t i = 0; i < n; i++) fastScore[i] = float(kps[i].score);
    retainBest(keep, fastScore, 2 * size_t(p.maxCorners));
    describeAll(true, false);
    retainBest(keep, harris, size_t(p.maxCorners));
    describeAll(false, true);
    std::sort(keep.begin(), keep.end(), [&](uint32_t a, uint32_t b) {
      if (harris[a] != harris[b]) return harris[a] > harris[b];
      return a < b;  // row-major among equals
    });
  } else if (p.maxCorners > 0) {
    // Without Harris, ORB ranks by FAST score (its FAST_SCORE mode).
    std::vector<float> fastScore(n);
    for (size_t i = 0; i < n; i++) fastScore[i] = float(kps[i].score);
    retainBest(keep, fastScore, size_t(p.maxCorners));
    std::sort(keep.begin(), keep.end(), [&](uint32_t a, uint32_t b) {
      if (kps[a].score != kps[b].score) return kps[a].score > kps[b].score;
      return a < b;
    });
  } else if (p.describe) {
    describeAll(true, true);
  }

  out.x.reserve(keep.size());
  for (uint32_t k : keep) {
    out.x.push_back(float(kps[k].x));
    out.y.push_back(float(kps[k].y));
    out.score.push_back(float(kps[k].score));
    out.harris.push_back(harris[k]);
    out.angle.push_back(angle[k]);
  }
}

}  // namespace

void detectCorners8(const uint8_t* pixels, int width, int height, size_t stride, const CornerParams& p, CornerSet& out) {
  CornerParams q = p;
  q.threshold = std::min(std::max(p.threshold, 0), 255);
  detect(pixels, width, height, stride, q, out);
}

void detectCorners16(const uint16_t* pixels, int width, int height, size_t stride, const CornerParams& p, CornerSet& out) {
  CornerParams q = p;
  q.threshold = std::min(std::max(p.threshold, 0), 65535);
  detect(pixels, width, height, stride, q, out);
}

}  // namespace xpole
