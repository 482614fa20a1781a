"""Experiment runners: each turns (params, data, root seed) into a tidy table.

Tidy schema: one row per measured number, with columns
    experiment, seed, metric, value
plus whatever identifies the row inside the experiment (method, lam, l1_ratio,
feature, sweep keys, p, ...). Everything downstream is pandas over this shape.
"""
