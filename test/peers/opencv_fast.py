#!/usr/bin/python3
"""OpenCV as the peer for xpole's corner addon.

Usage: opencv_fast.py JOBS.json  (or the JSON on stdin). Each job:
  {"file": raw 8-bit rows, "width", "height", "op": "fast", "threshold"}
  {"file", "width", "height", "op": "orb", "threshold", "nfeatures", "edge"}
Prints a JSON list, one entry per job: {"kp": [[x, y, response, angle], ...]}.
"""
import json
import sys

import cv2
import numpy as np

cv2.setNumThreads(1)


def run(job):
    img = np.fromfile(job["file"], dtype=np.uint8).reshape(job["height"], job["width"])
    if job["op"] == "fast":
        det = cv2.FastFeatureDetector_create(job["threshold"], True, cv2.FAST_FEATURE_DETECTOR_TYPE_9_16)
    elif job["op"] == "orb":
        det = cv2.ORB_create(
            nfeatures=job["nfeatures"], scaleFactor=1.2, nlevels=1, edgeThreshold=job["edge"], firstLevel=0,
            WTA_K=2, scoreType=cv2.ORB_HARRIS_SCORE, patchSize=31, fastThreshold=job["threshold"])
    else:
        raise ValueError("unknown op %r" % job["op"])
    kps = det.detect(img, None)
    return {"kp": [[k.pt[0], k.pt[1], float(k.response), float(k.angle)] for k in kps]}


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    json.dump([run(j) for j in json.loads(text)], sys.stdout)


if __name__ == "__main__":
    main()
