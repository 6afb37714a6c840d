#include "crop.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace xpole {
namespace {

// Each sample's frame position is (ox + xc*exx) + yc*eyx, (oy + xc*exy) + yc*eyy, added in that
// order: the column terms per (u, i) and the row terms per (v, j) once, not per sample.
struct Terms {
  std::vector<double> colX, colY, rowX, rowY;
  explicit Terms(const CropSpec& c) : colX(size_t(c.outW) * c.s), colY(colX.size()), rowX(size_t(c.outH) * c.s), rowY(rowX.size()) {
    const double cellW = c.box[2] / c.outW, cellH = c.box[3] / c.outH;
    for (int u = 0; u < c.outW; u++) {
      for (int i = 0; i < c.s; i++) {
        const double xc = c.box[0] + (u + (i + 0.5) / c.s) * cellW;
        colX[size_t(u) * c.s + i] = c.a.ox + xc * c.a.exx;
        colY[size_t(u) * c.s + i] = c.a.oy + xc * c.a.exy;
      }
    }
    for (int v = 0; v < c.outH; v++) {
      for (int j = 0; j < c.s; j++) {
        const double yc = c.box[1] + (v + (j + 0.5) / c.s) * cellH;
        rowX[size_t(v) * c.s + j] = yc * c.a.eyx;
        rowY[size_t(v) * c.s + j] = yc * c.a.eyy;
      }
    }
  }
};

template <typename T>
void crop(const T* base, const CropSpec& c, float* dst) {
  const size_t stride = size_t(c.width);
  const size_t first = size_t(c.firstRow);
  const Terms t(c);
  const int W = c.outW, H = c.outH, s = c.s;
  const double maxX = c.width - 1, maxY = c.height - 1;
  const double inv = 1.0 / double(s * s);
  const size_t n = size_t(W) * size_t(H);
  double sum = 0;
  for (int v = 0; v < H; v++) {
    for (int u = 0; u < W; u++) {
      double acc = 0;
      for (int j = 0; j < s; j++) {
        const double ryx = t.rowX[size_t(v) * s + j], ryy = t.rowY[size_t(v) * s + j];
        for (int i = 0; i < s; i++) {
          double x = t.colX[size_t(u) * s + i] + ryx;
          double y = t.colY[size_t(u) * s + i] + ryy;
          // Clamping the point to the edge pixel centres = sampling with edge replication.
          x = x < 0 ? 0 : x > maxX ? maxX : x;
          y = y < 0 ? 0 : y > maxY ? maxY : y;
          const double fx0 = std::floor(x), fy0 = std::floor(y);
          const double fx = x - fx0, fy = y - fy0;
          const size_t x0 = size_t(fx0), y0 = size_t(fy0);
          const size_t x1 = fx0 < maxX ? x0 + 1 : x0;
          const size_t r0 = (y0 - first) * stride;
          const size_t r1 = ((fy0 < maxY ? y0 + 1 : y0) - first) * stride;
          const double p00 = base[r0 + x0], p01 = base[r0 + x1], p10 = base[r1 + x0], p11 = base[r1 + x1];
          const double top = p00 + (p01 - p00) * fx;
          const double bot = p10 + (p11 - p10) * fx;
          acc += top + (bot - top) * fy;
        }
      }
      const double val = acc * inv;
      dst[size_t(v) * W + u] = float(val);
      sum += val;
    }
  }
  // z-score; a second pass for the variance: the one-pass form cancels badly on bright 16-bit crops.
  const double mean = sum / double(n);
  double ss = 0;
  for (size_t k = 0; k < n; k++) {
    const double d = double(dst[k]) - mean;
    ss += d * d;
  }
  const double sd = std::max(std::sqrt(ss / double(n)), 1e-6);
  const double k1 = 1 / sd;
  for (size_t k = 0; k < n; k++) dst[k] = float((double(dst[k]) - mean) * k1);
}

}  // namespace

RowSpan cropRows(const CropSpec& c) {
  const Terms t(c);
  // A sample's y is colY + rowY, and rounding is monotonic in each term: the smallest and largest
  // sums are those of the smallest and largest terms, to the bit.
  const auto [cLo, cHi] = std::minmax_element(t.colY.begin(), t.colY.end());
  const auto [rLo, rHi] = std::minmax_element(t.rowY.begin(), t.rowY.end());
  const double maxY = c.height - 1;
  const double lo = std::clamp(*cLo + *rLo, 0.0, maxY), hi = std::clamp(*cHi + *rHi, 0.0, maxY);
  const int last = int(std::floor(hi));
  return {int(std::floor(lo)), last < c.height - 1 ? last + 1 : last};
}

void cropForModel8(const uint8_t* p, const CropSpec& c, float* out) { crop(p, c, out); }
void cropForModel16(const uint16_t* p, const CropSpec& c, float* out) { crop(p, c, out); }

}  // namespace xpole
