#!/usr/bin/python3
"""Times OpenCV's FAST (TYPE_9_16, nonmax), single-threaded, on raw 8-bit frames.

Usage: corners_opencv.py FILE WIDTH HEIGHT THRESHOLD REPEATS -> JSON {"ms": [...], "count": n, "version"}
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
json.dump({"ms": times, "count": len(kps), "version": cv2.__version__}, sys.stdout)
