// oFAST: FAST-9 corners (as OpenCV's cv::FAST, TYPE_9_16, nonmax) ranked and oriented as ORB does.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace xpole {

struct CornerParams {
  int threshold = 20;   // in the image's own units
  int maxCorners = 0;   // 0: every corner after NMS; N: ORB's retainBest by Harris
  int border = 0;       // drop corners closer than this to an edge (ORB's edgeThreshold); FAST keeps 3 anyway
  int threads = 1;      // row bands run in parallel
  bool describe = true; // compute Harris response and angle; without, N best by FAST score, harris/angle 0
};

struct CornerSet {
  std::vector<float> x, y, score, harris, angle;
  size_t size() const { return x.size(); }
};

// pixels: rows of `stride` elements (stride >= width).
void detectCorners8(const uint8_t* pixels, int width, int height, size_t stride, const CornerParams& p, CornerSet& out);
void detectCorners16(const uint16_t* pixels, int width, int height, size_t stride, const CornerParams& p, CornerSet& out);

}  // namespace xpole
