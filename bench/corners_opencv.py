#!/usr/bin/python3
"""Times OpenCV's FAST (TYPE_9_16, nonmax) and one-level ORB keypoints (FAST + Harris + angle, N = 512),
single-threaded, on a raw 8-bit frame.

Usage: corners_opencv.py FILE WIDTH HEIGHT THRESHOLD REPEATS
  -> JSON {"ms": [...], "count": n, "orbMs": [...], "orbCount": n, "version"}
"""
import json
import sys
import time

import cv2
import numpy as np

cv2.setNumThreads(1)
cv2.setUseOptimized(True)
f, w, h, t, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
img = np.fromfile(f, dtype=np.uint8).reshape(h, w)
det = cv2.FastFeatureDetector_create(t, True, cv2.FAST_FEATURE_DETECTOR_TYPE_9_16)
times = []
for _ in range(n):
    t0 = time.perf_counter()
    kps = det.detect(img, None)
    times.append((time.perf_counter() - t0) * 1000)
orb = cv2.ORB_create(nfeatures=512, nlevels=1, edgeThreshold=31, patchSize=31, fastThreshold=t,
                     scoreType=cv2.ORB_HARRIS_SCORE)
orb_times = []
for _ in range(n):
    t0 = time.perf_counter()
    orb_kps = orb.detect(img, None)
    orb_times.append((time.perf_counter() - t0) * 1000)
json.dump({"ms": times, "count": len(kps), "orbMs": orb_times, "orbCount": len(orb_kps), "version": cv2.__version__},
          sys.stdout)
