"""Data augmentation on small images with a batched CNN (N14): label-preserving
transforms (affine, flips where the classes allow), mixup and CutMix, and a
label-changing flip as a negative control, on sklearn's digits and procedural
shapes, across training-set sizes."""
