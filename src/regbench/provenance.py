"""Where results came from: package versions, git commit, device, config hash and
each table's checksum. Written beside results/tables and shown in the ledger; never
a rule param, so a new commit alone reruns nothing."""
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("numpy", "pandas", "scikit-learn", "torch", "torchvision", "snakemake", "matplotlib")


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def config_hash(cfg: dict) -> str:
    """Hash of the validated config's content (defaults filled), independent of key order."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def git_state(where) -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, check=True).stdout.strip()
    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown (not a git checkout)", "dirty": None}


def device(requested: str) -> str:
    import torch
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def collect(cfg: dict, tables, where=".") -> dict:
    """Provenance of a set of result tables (paths), as plain data."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"versions": versions, "git": git_state(where), "device": device(cfg.get("device", "auto")),
            "config_hash": config_hash(cfg), "root_seed": cfg["seed"],
            "tables": {Path(t).stem: sha256(t) for t in sorted(tables)}}


def to_markdown(meta: dict) -> str:
    git = meta["git"]
    dirty = " (uncommitted changes)" if git["dirty"] else ""
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    return (f"Provenance: commit {git['commit'][:12]}{dirty}; device {meta['device']}; config hash {meta['config_hash']}; "
            f"{versions}. Table checksums: results/tables/metadata.json.\n")
