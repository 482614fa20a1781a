"""benchmarks/device_check.sh's CPU half runs here, so the script cannot rot before the next
GPU machine: the same steps (equivalence, engine throughput, the tiny workflow with the
declared resources checked) on device cpu, in its quick form."""
import importlib.util
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "device_check.sh"


def _table(stdout: str) -> list[list[str]]:
    rows = [line.strip("|").split(" | ") for line in stdout.splitlines() if line.startswith("| ") and "---" not in line]
    return [[c.strip() for c in r] for r in rows[1:]]  # without the header


@pytest.mark.workflow
def test_cpu_half_runs_every_step_and_every_bound_holds(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu", "--quick", "--cores", "2", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    rows = _table(proc.stdout)
    checks = [r[0] for r in rows]
    for step in ("equivalence", "bench_engine", "workflow"):
        assert step in checks, f"step {step} did not run: {checks}"
    assert any(c.startswith("engine: K together vs torch.nn") for c in checks)
    assert any(c.startswith("cnn: K together vs torch.nn") for c in checks)
    assert any(c.startswith("bench_engine: K = 8") for c in checks)
    assert any(c.startswith("workflow: peak RSS / declared mem_mb") for c in checks)
    assert all(r[1] == "cpu" for r in rows)
    assert all(r[4] in ("yes", "-") for r in rows), rows


def _equivalence():
    spec = importlib.util.spec_from_file_location("equivalence", ROOT / "benchmarks" / "equivalence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_equivalence_fails_when_a_bound_does_not_hold(tmp_path, monkeypatch):
    eq = _equivalence()
    # a bound below float32 rounding: the engine and torch.nn round differently, so this must fail
    monkeypatch.setattr(eq, "ENGINE_ATOL", 1e-12)
    rows = tmp_path / "rows.tsv"
    assert eq.main(["--device", "cpu", "--rows", str(rows)]) == 1
    lines = [line.split("\t") for line in rows.read_text().splitlines()]
    assert any(line[0] == "engine: K together vs torch.nn + torch.optim" and line[4] == "NO" for line in lines)
    assert all(line[4] == "yes" for line in lines if line[0].endswith("(bit for bit)"))


def test_unknown_option_is_refused():
    proc = subprocess.run(["bash", str(SCRIPT), "--gpu"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown option --gpu" in proc.stderr
