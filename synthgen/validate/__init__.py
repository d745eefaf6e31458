"""Detector validation: defect-size sweeps, probability-of-detection (POD) curves, a report.

    synthgen validate scenes/capped_bottle_validate.yaml --detector runs/unet \
        --sweep bulge.height=0.05:2:12 --per-size 10 --good 20 -o out/pod

The modules, in pipeline order: `sweep` (parse ``defect.param=low:high:n``, render K views per
size with the defect guaranteed visible), `detectors` (a trainer run folder, a Python
callable or a command that scores images), `pod` (the hit/miss logistic fit of
MIL-HDBK-1823A, with a50, a90 and a90/95), `study` (the three composed) and `report`
(HTML, PNG and JSON). Heavy packages (pyrender, torch, matplotlib) are imported inside the
functions that need them.
"""
