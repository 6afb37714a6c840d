#include "crop.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace xpole {
namespace {

template <typename T>
void crop(const T* px, int fw, int fh, const Affine& a, const double box[4], int W, int H, int s, float* dst) {
  const double bx = box[0], by = box[1], bw = box[2], bh = box[3];
  const double maxX = fw - 1, maxY = fh - 1;
  const double cellW = bw / W, cellH = bh / H;
  const double inv = 1.0 / double(s * s);
  const size_t n = size_t(W) * size_t(H);
  // Each sample's frame position is (ox + xc*exx) + yc*eyx, (oy + xc*exy) + yc*eyy, added in
  // that order: the column terms per (u, i) and the row terms per (v, j) once, not per sample.
  std::vector<double> colX(size_t(W) * s), colY(size_t(W) * s), rowX(size_t(H) * s), rowY(size_t(H) * s);
  for (int u = 0; u < W; u++) {
    for (int i = 0; i < s; i++) {
      const double xc = bx + (u + (i + 0.5) / s) * cellW;
      colX[size_t(u) * s + i] = a.ox + xc * a.exx;
      colY[size_t(u) * s + i] = a.oy + xc * a.exy;
    }
  }
  for (int v = 0; v < H; v++) {
    for (int j = 0; j < s; j++) {
      const double yc = by + (v + (j + 0.5) / s) * cellH;
      rowX[size_t(v) * s + j] = yc * a.eyx;
      rowY[size_t(v) * s + j] = yc * a.eyy;
    }
  }
  double sum = 0;
  for (int v = 0; v < H; v++) {
    for (int u = 0; u < W; u++) {
      double acc = 0;
      for (int j = 0; j < s; j++) {
        const double ryx = rowX[size_t(v) * s + j], ryy = rowY[size_t(v) * s + j];
        for (int i = 0; i < s; i++) {
          double x = colX[size_t(u) * s + i] + ryx;
          double y = colY[size_t(u) * s + i] + ryy;
          // Clamping the point to the edge pixel centres = sampling with edge replication.
          x = x < 0 ? 0 : x > maxX ? maxX : x;
          y = y < 0 ? 0 : y > maxY ? maxY : y;
          const double fx0 = std::floor(x), fy0 = std::floor(y);
          const double fx = x - fx0, fy = y - fy0;
          const size_t x0 = size_t(fx0), y0 = size_t(fy0);
          const size_t x1 = fx0 < maxX ? x0 + 1 : x0;
          const size_t r0 = y0 * size_t(fw);
          const size_t r1 = (fy0 < maxY ? y0 + 1 : y0) * size_t(fw);
          const double p00 = px[r0 + x0], p01 = px[r0 + x1], p10 = px[r1 + x0], p11 = px[r1 + x1];
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

void cropForModel8(const uint8_t* p, int w, int h, const Affine& a, const double box[4], int outW, int outH, int s, float* out) {
  crop(p, w, h, a, box, outW, outH, s, out);
}
void cropForModel16(const uint16_t* p, int w, int h, const Affine& a, const double box[4], int outW, int outH, int s, float* out) {
  crop(p, w, h, a, box, outW, outH, s, out);
}

}  // namespace xpole
