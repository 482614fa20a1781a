"""Dropout with the batched MLP engine: train/inference expectations of standard,
inverted and the document's Problem 2 dropout (N1), weight scaling vs the mask
ensemble (N2), the best rate by layer and training-set size (N3), and MC dropout's
uncertainty (N4)."""
