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
};

// The frame pixels a crop reads: columns x0..x1, rows y0..y1 (inclusive, inside the frame).
struct PixelRect {
  int x0, y0, x1, y1;
};
PixelRect cropFootprint(const CropSpec& c);

// out[v * outW + u] = the mean of s x s bilinear samples (edge pixels replicated) over cell (u, v)
// of the canonical box, then z-scored over all cells (population std, at least 1e-6). `p` holds
// the footprint's pixels, row after row of `stride` samples, starting at (r.x0, r.y0). The same
// arithmetic, in the same order, as the TypeScript it replaced: equal to the bit.
void cropForModel8(const uint8_t* p, size_t stride, const PixelRect& r, const CropSpec& c, float* out);
void cropForModel16(const uint16_t* p, size_t stride, const PixelRect& r, const CropSpec& c, float* out);

}  // namespace xpole
