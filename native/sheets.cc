#include "sheets.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

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
    double s = 0;
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
    return s / smooth;
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

template <typename T>
void rectSums(const T* p, int W, int x0, int y0, int x1, int y1, bool byRow, double* out) {
  if (byRow) {
    for (int y = y0; y <= y1; y++) {
      const T* row = p + size_t(y) * size_t(W);
      uint64_t s = 0;
      for (int x = x0; x <= x1; x++) s += row[x];
      out[y - y0] = double(s);
    }
    return;
  }
  // Per column: rows are added in turn, so the frame is still read row by row.
  std::vector<uint64_t> s(size_t(x1 - x0 + 1), 0);
  for (int y = y0; y <= y1; y++) {
    const T* row = p + size_t(y) * size_t(W) + x0;
    for (int x = 0; x <= x1 - x0; x++) s[x] += row[x];
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

template <typename T>
void halfSize(const T* p, int W, int H, T* out) {
  const int w = W >> 1, h = H >> 1;
  for (int y = 0; y < h; y++) {
    const T* a = p + size_t(2 * y) * size_t(W);
    const T* b = a + W;
    T* o = out + size_t(y) * size_t(w);
    for (int x = 0; x < w; x++) o[x] = T((unsigned(a[2 * x]) + a[2 * x + 1] + b[2 * x] + b[2 * x + 1] + 2) >> 2);
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
