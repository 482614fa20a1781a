"""The fine-tuning recipe of the document's Problem 3 (N17) as an ablation: a small
CNN pretrained on digits 0-4 and fine-tuned on few images of digits 5-9, with
warmup, AdamW, label smoothing, early stopping, clipping and layer-wise lr decay
switched on and off."""
