"""Several capped bottles in a row on a conveyor, occluding each other (a Python scene
script: what YAML cannot say).

    synthgen render scenes/conveyor.py -o out/conveyor
    synthgen preview scenes/conveyor.py -o conveyor.png

A scene script defines `recipe()`, the same mapping a YAML recipe holds, and may define
`arrange(rng, radius)`, which places several objects in each sample: it returns one (4, 4)
pose per object (object → arrangement frame, mm, +Z up), drawn from `rng` only so that
samples stay reproducible. Each object gets its own defects; COCO then also holds one
instance mask per visible bottle (category "capped_bottle"), besides the defect masks.
"""

import numpy as np


def recipe() -> dict:
    return {
        "samples": 100,
        "seed": 0,
        "product": {"type": "capped_bottle", "params": {"rib_count": 40}},
        "good_fraction": 0.5,  # per bottle
        "defects": [
            {"type": "dent", "probability": 0.5, "radius": [6, 12], "depth": [1.5, 3.5],
             "regions": ["body", "shoulder"]},
            {"type": "bulge", "probability": 0.3, "radius": [6, 12], "height": [1.5, 3.0]},
            {"type": "hole", "probability": 0.2, "diameter": [3, 7], "depth": [1, 3]},
        ],
        "scene": {
            "pose": {"mode": "upright", "yaw_deg": [-25, 25], "tilt_deg": 0},
            # Looking along the belt from slightly above: the bottles hide each other.
            "camera": {"yfov_deg": 35, "distance": [0.9, 1.05], "elevation_deg": [10, 30],
                       "azimuth_deg": [-35, 35], "aim_jitter": 0.05},
            "lighting": {"preset": "three_point"},
            "background": {"kind": "gradient", "value": [0.1, 0.5]},
        },
        "render": {"size": [384, 256]},
        "augment": {"preset": "factory"},
        "output": {"formats": ["coco", "mvtec"]},
    }


def arrange(rng: np.random.Generator, radius: float) -> list[np.ndarray]:
    """3 to 5 bottles along the belt (+X), spaced a little more than a bottle's width,
    each turned about its own axis and shifted a few millimetres across the belt."""
    count = int(rng.integers(3, 6))
    spacing = rng.uniform(70.0, 90.0)
    poses = []
    for i in range(count):
        angle = rng.uniform(0.0, 2.0 * np.pi)
        pose = np.eye(4)
        pose[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        pose[:3, 3] = [(i - (count - 1) / 2) * spacing, rng.uniform(-8.0, 8.0), 0.0]
        poses.append(pose)
    return poses
