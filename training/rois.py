"""Reads the ROI stage's dump (bench/roi.ts --dump): the box it found per image, frame pixels as delivered."""
import json


def load_rois(path):
    """-> {file_name: [x, y, w, h]}; frames where the ROI stage failed are left out."""
    with open(path) as f:
        data = json.load(f)
    if isinstance(data, dict) and not any(k in data for k in ('rois', 'images', 'results')):
        items = data.items()
    else:
        rows = data if isinstance(data, list) else data.get('rois') or data.get('images') or data.get('results')
        items = []
        for r in rows:
            name = r.get('file_name') or r.get('file') or r.get('frame') or r.get('image')
            items.append((name, r.get('box') or r.get('roi') or r.get('bbox')))
    out = {}
    for name, box in items:
        if isinstance(box, dict):
            box = box.get('box')
        if name and isinstance(box, list) and len(box) == 4:
            out[name.split('/')[-1]] = [float(v) for v in box]
    return out
