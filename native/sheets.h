// Pixel loops of the ROI stage (src/vision/roi.ts): how much a region looks like horizontal
// sheets, the row profile its pointers step on, and the 2 x 2 binned frame its second scale searches.
#pragma once
#include <cstddef>
#include <cstdint>

#include "affine.h"

namespace xpole {

// Mean of |dI/dy| - |dI/dx| (over 4 px) in the canonical window [x0, x1] x [y0, y1], sampled on
// an up to 64 x 64 grid, each derivative taken on the frame averaged over `smooth` (odd) px across
// it. The same arithmetic, in the same order, as the TypeScript it replaced: equal to the bit.
double stripeMean8(const uint8_t* p, int width, int height, const Affine& m, double x0, double x1, double y0, double y1, int smooth);
double stripeMean16(const uint16_t* p, int width, int height, const Affine& m, double x0, double x1, double y0, double y1, int smooth);

// Sums of the frame rectangle [x0, x1] x [y0, y1] (inside the frame): per row (byRow, out has
// y1 - y0 + 1 entries) or per column (x1 - x0 + 1). Exact for sides up to 65536 px (the addon's limit).
void rectSums8(const uint8_t* p, int width, int x0, int y0, int x1, int y1, bool byRow, double* out);
void rectSums16(const uint16_t* p, int width, int x0, int y0, int x1, int y1, bool byRow, double* out);

// The 0.5th and 99.5th percentile of `n` samples taken every `step` (a counting sort), as
// sorting them and taking positions floor(q * count) would give.
void greyRange8(const uint8_t* p, size_t n, size_t step, int out[2]);
void greyRange16(const uint16_t* p, size_t n, size_t step, int out[2]);

// out[y * (width/2) + x] = rounded mean of the 2 x 2 pixels at (2x, 2y); odd last row/column dropped.
void halfSize8(const uint8_t* p, int width, int height, uint8_t* out);
void halfSize16(const uint16_t* p, int width, int height, uint16_t* out);

}  // namespace xpole
