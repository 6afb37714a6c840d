// The model's input from a 16- or 8-bit frame (src/vision/preprocess.ts, the model contract):
// the ROI resampled in canonical orientation, then z-scored.
#pragma once
#include <cstdint>

namespace xpole {

// Canonical -> frame: f = (ox, oy) + xc * (exx, exy) + yc * (eyx, eyy).
struct Affine {
  double ox, oy, exx, exy, eyx, eyy;
};

// out[v * outW + u] = the mean of s x s bilinear samples (edge pixels replicated) over cell (u, v)
// of the canonical box (bx, by, bw, bh), then z-scored over all cells (population std, at least
// 1e-6). The same arithmetic, in the same order, as the TypeScript it replaced: equal to the bit.
void cropForModel8(const uint8_t* p, int width, int height, const Affine& a, const double box[4], int outW, int outH, int s, float* out);
void cropForModel16(const uint16_t* p, int width, int height, const Affine& a, const double box[4], int outW, int outH, int s, float* out);

}  // namespace xpole
