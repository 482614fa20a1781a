"""One job = one experiment x one chunk of its grid, with every seed of it.

A runner (regbench.studies.<study>.runners) gets a Job, never the whole config:
its params, the root seed, its device, the chunk's grid points, the stored
datasets it reads, the designs and teachers it may name, and seed helpers
already keyed by its experiment, so that no runner spells its own stream keys
and results do not depend on job order or on how a grid is chunked.

Tidy schema of what a runner returns: one row per measured number, with columns
    experiment, seed, metric, value
plus whatever identifies the row inside the experiment (method, lam, feature,
sweep keys, epoch, ...). Everything downstream is pandas over this shape.
"""
import dataclasses
import sys
import time
import traceback

import pandas as pd

from regbench import seeds, studies, teacher
from regbench.config import chunk_points


@dataclasses.dataclass(frozen=True)
class Job:
    experiment: str
    params: dict
    root: int
    device: object = "cpu"      # a torch.device for studies that import torch, else the config's string
    chunk: int = 0
    points: list = dataclasses.field(default_factory=list)  # the chunk's sweep points ([] without a sweep)
    data: dict | None = None    # stored datasets of the design it reads (seeds trimmed to params["seeds"])
    designs: dict = dataclasses.field(default_factory=dict)
    teachers: dict = dataclasses.field(default_factory=dict)
    stream: tuple = ()          # stream-key prefix; (experiment,) unless the study says otherwise
    started: float = dataclasses.field(default_factory=time.monotonic, compare=False, repr=False)

    @property
    def seeds(self) -> int:
        return self.params["seeds"]

    @property
    def design(self) -> dict:
        """The design the params name (under `designs`)."""
        return self.designs[self.params["design"]]

    @property
    def teacher(self) -> dict:
        """The classification teacher the params name (under `teachers`)."""
        return teacher.classification_spec(self.teachers, self.params["teacher"])

    def draw(self, n_train: int, i: int) -> dict:
        """Seed i's teacher data: train / val with label noise, clean test and ood."""
        return teacher.sample(self.teacher, self.params["teacher"], n_train, i, self.root)

    def progress(self, what: str) -> None:
        """One line in the job's log (results/logs/<study>/<experiment>/chunk<k>.log):
        time since the job started and where it is. A runner calls it at each grid
        point, seed or block of epochs, so a long job is never silent."""
        print(f"[{time.monotonic() - self.started:8.1f} s] {self.experiment} chunk {self.chunk}: {what}", flush=True)

    def rng(self, *keys):
        """numpy Generator for this experiment's stream (*keys)."""
        return seeds.rng(self.root, *self.stream, *keys)

    def int_seed(self, *keys) -> int:
        """63-bit integer seed (torch.Generator) for this experiment's stream (*keys)."""
        return seeds.int_seed(self.root, *self.stream, *keys)


def make(name: str, cfg: dict, chunk: int = 0, data: dict | None = None, device=None) -> Job:
    """The job for one chunk of an experiment of a validated config."""
    params = cfg["experiments"][name]
    if data is not None:  # the stored design may hold more seeds than this experiment uses
        data = {k: (v[: params["seeds"]] if k.startswith(("X_", "y_")) else v) for k, v in data.items()}
    return Job(experiment=name, params=params, root=cfg["seed"], device=device or cfg.get("device", "cpu"), chunk=chunk,
               points=chunk_points(params, chunk) if "sweep" in params else [], data=data,
               designs=cfg.get("designs", {}), teachers=cfg.get("teachers", {}), stream=studies.stream(name))


def run(name: str, cfg: dict, chunk: int = 0, data: dict | None = None) -> pd.DataFrame:
    """Run one chunk of one experiment; returns its tidy table.

    Device and threads are set up here, once per job: a study that imports torch
    gets one torch thread per job unless configured (jobs run side by side) and
    its device resolved ("auto": CUDA when present)."""
    fn = studies.runner(name)
    device = None
    if "torch" in sys.modules:
        from regbench.device import resolve_device
        sys.modules["torch"].set_num_threads(cfg["threads"])
        device = resolve_device(cfg.get("device", "auto"))
    table = fn(make(name, cfg, chunk, data, device))
    if "experiment" not in table:
        table.insert(0, "experiment", name)
    return table.reset_index(drop=True)


def log_to(path) -> None:
    """Send a job script's output to its log, line by line (watch it with tail -f),
    and its error, if it fails, to the console as well: a log that cannot be
    written (a full disk) must not swallow the reason the job failed."""
    console = sys.__stderr__
    log = open(path, "w", buffering=1)
    sys.stdout = sys.stderr = log

    def report(kind, value, tb):
        text = "".join(traceback.format_exception(kind, value, tb))
        for stream in (log, console):
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                pass

    sys.excepthook = report


def seeds_needed(cfg: dict) -> dict:
    """Per design: the most seeds any experiment reads from its stored datasets."""
    out = {}
    for name, params in cfg["experiments"].items():
        design = studies.stored_design(name, params)
        if design:
            out[design] = max(out.get(design, 0), params["seeds"])
    return out
