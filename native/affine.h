// Canonical (tips to +x) -> frame coordinates, shared by the addon's pixel loops.
#pragma once

namespace xpole {

// f = (ox, oy) + xc * (exx, exy) + yc * (eyx, eyy); the coefficients are -1, 0 or 1 (the four
// orientations are rotations and mirrors of the frame).
struct Affine {
  double ox, oy, exx, exy, eyx, eyy;
};

}  // namespace xpole
