// The model's input from a 16- or 8-bit frame (src/vision/preprocess.ts, the model contract):
// the ROI resampled in canonical orientation, then z-scored.
#pragma once
#include <cstddef>
#include <cstdint>

#include "affine.h"

namespace xpole {

// The crop's geometry: the frame's size, the canonical box (bx, by, bw, bh), the output grid and
// s x s samples per cell.
struct CropSpec {
  int width, height;
  Affine a;
  double box[4];
  int outW, outH, s;
  // The frame row that `p` starts at: a caller may hand in only the rows cropRows() names.
  int firstRow = 0;
};

// The first and last frame rows the crop reads (bilinear neighbours included, edges clamped as
// the crop clamps them): what a caller must copy to crop from a copy of part of the frame.
struct RowSpan {
  int first, last;
};
RowSpan cropRows(const CropSpec& c);

// out[v * outW + u] = the mean of s x s bilinear samples (edge pixels replicated) over cell (u, v)
// of the canonical box, then z-scored over all cells (population std, at least 1e-6). `p` holds
// the frame's pixels, width x height, row after row, from row c.firstRow on. The affine must map
// each canonical axis onto one frame axis (the orientations do): the sampling is done as two 1D
// passes, equal to sampling point by point up to rounding (about 1e-12 relative).
void cropForModel8(const uint8_t* p, const CropSpec& c, float* out);
void cropForModel16(const uint16_t* p, const CropSpec& c, float* out);

// The polisher's patches (src/vision/polish.ts): out[k * stride + r * side + c] = the frame
// sampled bilinearly (coordinates clamped to the edge pixel centres) at
// (x[k], y[k]) + (c - h) * (exx, exy) + (r - h) * (eyx, eyy), h = (side - 1) / 2, for k < n.
// The same arithmetic, in the same order, as the TypeScript it replaced (vision/sample.ts).
void samplePatches8(const uint8_t* p, int width, int height, const Affine& a, const double* x, const double* y, size_t n,
                    int side, size_t stride, float* out);
void samplePatches16(const uint16_t* p, int width, int height, const Affine& a, const double* x, const double* y, size_t n,
                     int side, size_t stride, float* out);

}  // namespace xpole
