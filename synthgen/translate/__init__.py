"""Defect translation: a CycleGAN whose generator also paints the defect's mask.

Learns, from unpaired good images (domain X) and a few defective images with masks (Y), to
turn good images into defective ones and to say where the defect is. Modules: `networks`
(generators, PatchGAN critics), `losses`, `model` (settings, one training step), `data`
(domains, joint transforms), `pool`, `train`, `apply` (writers, render stage), `metrics`
(FID, KID, LPIPS). torch is imported by those modules, not by this package.
"""
