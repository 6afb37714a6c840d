#include "crop.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace xpole {
namespace {

// One axis of the bilinear sampling: where a canonical coordinate lands on a frame axis (clamped
// to the edge pixel centres, which replicates the edge), as two taps and their weights.
struct Tap {
  int i0, i1;
  double w0, w1;
};

Tap tapAt(double x, int size) {
  const double max = size - 1;
  x = x < 0 ? 0 : x > max ? max : x;
  const double f0 = std::floor(x);
  const double f = x - f0;
  const int i0 = int(f0);
  return {i0, f0 < max ? i0 + 1 : i0, 1 - f, f};
}

// The s samples of each of n cells along one frame axis: n x s taps, cell k's at [k * s, k * s + s).
// `origin + t * step` is the frame coordinate of canonical t along that axis.
std::vector<Tap> cellTaps(int n, int s, double start, double cell, double origin, double step, int size) {
  std::vector<Tap> taps(size_t(n) * s);
  for (int k = 0; k < n; k++)
    for (int i = 0; i < s; i++) taps[size_t(k) * s + i] = tapAt(origin + (start + (k + (i + 0.5) / s) * cell) * step, size);
  return taps;
}

// The crop's taps along frame columns and frame rows. The orientations map canonical axes onto
// frame axes: canonical x (the output's columns u) runs along frame x when exx != 0, else along
// frame y, and canonical y the other way.
struct CropTaps {
  bool uAlongX;
  int nCols, nRows;               // cells picking frame columns (colTaps) and frame rows (rowTaps)
  std::vector<Tap> colTaps, rowTaps;
  int firstRow, lastRow;          // the frame rows the crop reads

  explicit CropTaps(const CropSpec& c) : uAlongX(c.a.exx != 0) {
    const double cellW = c.box[2] / c.outW, cellH = c.box[3] / c.outH;
    std::vector<Tap> u = uAlongX ? cellTaps(c.outW, c.s, c.box[0], cellW, c.a.ox, c.a.exx, c.width)
                                 : cellTaps(c.outW, c.s, c.box[0], cellW, c.a.oy, c.a.exy, c.height);
    std::vector<Tap> v = uAlongX ? cellTaps(c.outH, c.s, c.box[1], cellH, c.a.oy, c.a.eyy, c.height)
                                 : cellTaps(c.outH, c.s, c.box[1], cellH, c.a.ox, c.a.eyx, c.width);
    colTaps = std::move(uAlongX ? u : v);
    rowTaps = std::move(uAlongX ? v : u);
    nCols = uAlongX ? c.outW : c.outH;
    nRows = uAlongX ? c.outH : c.outW;
    firstRow = c.height;
    lastRow = -1;
    for (const Tap& t : rowTaps) {
      firstRow = std::min(firstRow, t.i0);
      lastRow = std::max(lastRow, t.i1);
    }
  }
};

// The mean of s x s bilinear samples over a cell is separable: a weighted sum along frame rows,
// then one across them. Pass 1 filters each frame row the crop reads into one value per cell
// column; pass 2 combines those rows. About (rows + cells across) x (s + 1) taps instead of
// 4 s^2 reads per cell.
template <typename T>
void crop(const T* base, const CropSpec& c, float* dst) {
  const int W = c.outW, H = c.outH, s = c.s;
  const CropTaps taps(c);
  const std::vector<Tap>& colTaps = taps.colTaps;
  const std::vector<Tap>& rowTaps = taps.rowTaps;
  const int nCols = taps.nCols, nRows = taps.nRows, lo = taps.firstRow, hi = taps.lastRow;
  const bool uAlongX = taps.uAlongX;
  // Pass 1: row r of the frame, filtered: filtered[(r - lo) * nCols + k] = sum over cell k's taps.
  const size_t stride = size_t(c.width);
  std::vector<double> filtered(size_t(hi - lo + 1) * nCols);
  for (int r = lo; r <= hi; r++) {
    const T* row = base + size_t(r - c.firstRow) * stride;
    double* out = &filtered[size_t(r - lo) * nCols];
    for (int k = 0; k < nCols; k++) {
      const Tap* t = &colTaps[size_t(k) * s];
      double acc = 0;
      for (int i = 0; i < s; i++) acc += row[t[i].i0] * t[i].w0 + row[t[i].i1] * t[i].w1;
      out[k] = acc;
    }
  }
  // Pass 2: across the rows, into the output cell (u, v).
  const double inv = 1.0 / double(s * s);
  const size_t n = size_t(W) * size_t(H);
  double sum = 0;
  for (int j = 0; j < nRows; j++) {
    const Tap* t = &rowTaps[size_t(j) * s];
    for (int k = 0; k < nCols; k++) {
      double acc = 0;
      for (int i = 0; i < s; i++)
        acc += filtered[size_t(t[i].i0 - lo) * nCols + k] * t[i].w0 + filtered[size_t(t[i].i1 - lo) * nCols + k] * t[i].w1;
      const double val = acc * inv;
      // (u, v) = (k, j) when canonical x runs along frame x, else (j, k).
      dst[uAlongX ? size_t(j) * W + k : size_t(k) * W + j] = float(val);
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

// The polisher's patches, sampled point by point as vision/sample.ts does: one tap per axis.
template <typename T>
void patches(const T* p, int width, int height, const Affine& a, const double* x, const double* y, size_t n, int side,
             size_t stride, float* out) {
  const double half = (side - 1) / 2.0;
  for (size_t k = 0; k < n; k++) {
    float* dst = out + k * stride;
    for (int r = 0; r < side; r++) {
      const double v = r - half;
      for (int c = 0; c < side; c++) {
        const double u = c - half;
        const Tap tx = tapAt(x[k] + u * a.exx + v * a.eyx, width);
        const Tap ty = tapAt(y[k] + u * a.exy + v * a.eyy, height);
        const T* r0 = p + size_t(ty.i0) * size_t(width);
        const T* r1 = p + size_t(ty.i1) * size_t(width);
        const double top = r0[tx.i0] * tx.w0 + r0[tx.i1] * tx.w1;
        const double bottom = r1[tx.i0] * tx.w0 + r1[tx.i1] * tx.w1;
        dst[size_t(r) * side + c] = float(top * ty.w0 + bottom * ty.w1);
      }
    }
  }
}

}  // namespace

RowSpan cropRows(const CropSpec& c) {
  const CropTaps taps(c);
  return {taps.firstRow, taps.lastRow};
}

void samplePatches8(const uint8_t* p, int width, int height, const Affine& a, const double* x, const double* y, size_t n,
                    int side, size_t stride, float* out) {
  patches(p, width, height, a, x, y, n, side, stride, out);
}
void samplePatches16(const uint16_t* p, int width, int height, const Affine& a, const double* x, const double* y, size_t n,
                     int side, size_t stride, float* out) {
  patches(p, width, height, a, x, y, n, side, stride, out);
}

void cropForModel8(const uint8_t* p, const CropSpec& c, float* out) { crop(p, c, out); }
void cropForModel16(const uint16_t* p, const CropSpec& c, float* out) { crop(p, c, out); }

}  // namespace xpole
