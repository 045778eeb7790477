"""Fault injection: ``kill -9`` of ``python -m madpad.generate`` and ``python -m madpad.pipeline
run`` at points chosen by the test-only hook ``MADPAD_TEST_KILL_AT=EVENT:N``
(:func:`madpad.io.test_kill_point`: the process SIGKILLs itself the N-th time it reaches EVENT),
then resume: the outputs are byte-identical to an uninterrupted run, no temporary file or folder
is left, and no process of the killed run (pool workers, resource tracker) outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from madpad.io import is_madpad_temporary, write_image

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process checks read /proc (Linux only)")

REPO = Path(__file__).resolve().parents[1]
TOKEN_VAR = "MADPAD_FAULT_TEST_TOKEN"


def _run(args: list[str], *, token: str, kill_at: str | None = None, cwd: Path | None = None):
    env = {k: v for k, v in os.environ.items() if k != "MADPAD_TEST_KILL_AT"}
    env[TOKEN_VAR] = token  # inherited by every process the command starts: found in /proc/*/environ
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if kill_at:
        env["MADPAD_TEST_KILL_AT"] = kill_at
    # output to files, not pipes: a process that outlives the killed run must not hold up the test
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        rc = subprocess.run([sys.executable, "-m", *args], stdout=out, stderr=err, env=env, cwd=cwd,
                            timeout=120, check=False).returncode
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(args, rc, out.read(), err.read())


def _processes_with(token: str) -> list[int]:
    """Pids of live processes whose environment holds ``TOKEN_VAR=token`` (zombies excluded)."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if needle in (d / "environ").read_bytes().split(b"\0"):
                state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(d.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def _assert_no_processes_left(token: str, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while (left := _processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:  # do not leave them behind even when the test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"processes of the killed run still alive after {within_s} s: {left}"


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if is_madpad_temporary(p)]


def _tree(folder: Path, names: list[str] | None = None) -> dict[str, bytes]:
    files = names or sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return {n: (folder / n).read_bytes() for n in files}


# ------------------------------------------------------------------------------- generate
def test_generate_killed_mid_write_and_after_an_item_resumes_to_identical_outputs(tmp_path, sample_dir):
    pytest.importorskip("dlib")
    s = sample_dir / "neutral"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("id,a,b\n" + "".join(f"m{i},{s / a}_03.jpg,{s / b}_03.jpg\n" for i, (a, b) in
                                          enumerate([("001", "004"), ("007", "011"), ("017", "020")], 1)))

    def generate(out: Path, token: str, kill_at: str | None = None):
        return _run(["madpad.generate", "--method", "landmark", "--pairs", str(pairs), "--out", str(out),
                     "--no-progress"], token=token, kill_at=kill_at)

    ref = generate(tmp_path / "uninterrupted", "ref")
    assert ref.returncode == 0, ref.stderr
    out, token = tmp_path / "out", uuid.uuid4().hex
    # 1) killed while the second morph's temporary PNG is complete but not yet renamed
    r = generate(out, token, kill_at="atomic.replace.png:2")
    assert r.returncode == -signal.SIGKILL, r.stderr
    (tmp,) = _temporaries(out)
    assert tmp.name.startswith(".m2.png.") and tmp.suffix == ".png" and (out / "m1.png").is_file()
    keep = out / "notes.tmp.png"  # not madpad's temp pattern: a user's file stays
    keep.write_bytes(b"user data")
    # 2) resumed, and killed again right after the next finished item
    r = generate(out, token, kill_at="generate.item:1")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert "removed 1 temporary file(s)" in r.stderr and not tmp.exists()
    assert (out / "m2.png").is_file() and not (out / "m3.png").exists()
    # 3) resumed to the end
    r = generate(out, token)
    assert r.returncode == 0, r.stderr
    assert "3 morph(s) requested: 1 made, 2 already done" in r.stderr
    assert keep.read_bytes() == b"user data"
    keep.unlink()
    assert _tree(out) == _tree(tmp_path / "uninterrupted")
    assert not _temporaries(out)
    _assert_no_processes_left(token)


# ------------------------------------------------------------------------------- pipeline
TOY = """
name: toy
workdir: {workdir}
params: {{manifest: data/images.csv, root: data}}
stages:
  stats:
    fn: madpad.pipeline.examples:stats_stage
    inputs: {{manifest: "${{params.manifest}}", root: "${{params.root}}"}}
    outputs: {{table: stats.csv}}
  summary:
    fn: madpad.pipeline.examples:summary_stage
    inputs: {{table: "${{stages.stats.outputs.table}}"}}
    outputs: {{summary: summary.json}}
"""


def test_pipeline_killed_with_workers_running_resumes_and_leaves_nothing_behind(tmp_path):
    import json

    rng = np.random.default_rng(0)
    lines = ["id,path,subject,label,species,capture,source"]
    for s in range(3):
        for cap in ("enrolment", "probe"):
            write_image(tmp_path / "data" / f"img/{s}_{cap}.png", rng.integers(0, 256, (24, 20, 3), dtype=np.uint8))
            lines.append(f"{s}_{cap},img/{s}_{cap}.png,{s:03d},bona_fide,,{cap},toy")
    (tmp_path / "data" / "images.csv").write_text("\n".join(lines) + "\n")
    for name in ("ref", "run"):
        (tmp_path / f"{name}.yaml").write_text(TOY.format(workdir=name))

    def run(name: str, token: str, kill_at: str | None = None):
        return _run(["madpad.pipeline", "run", f"{name}.yaml", "--executor", "local", "--workers", "2",
                     "--no-progress"], token=token, kill_at=kill_at, cwd=tmp_path)

    ref = run("ref", "ref")
    assert ref.returncode == 0, ref.stderr
    token = uuid.uuid4().hex
    r = run("run", token, kill_at="pipeline.item:3")  # after the third item's result is cached
    assert r.returncode == -signal.SIGKILL, r.stderr
    wd = tmp_path / "run"
    assert [p.name.split("-")[0] for p in (wd / ".madpad" / "tmp").iterdir()] == ["stats"]  # what the kill left
    assert len(list((wd / ".madpad" / "cache" / "stats").rglob("*.npz"))) == 3
    _assert_no_processes_left(token)  # the pool workers and the resource tracker died with the run
    token2 = uuid.uuid4().hex
    r = run("run", token2)
    assert r.returncode == 0, r.stderr
    assert "cleaned up after an interrupted run: removed 1 stale temporary file(s)/folder(s): .madpad/tmp/stats-" \
        in r.stderr
    summary = json.loads((wd / "run_summary.json").read_text())
    assert summary["stages"][0]["items"] == {"total": 6, "cached": 3, "failed": 0}  # resumed, not recomputed
    names = ["stats/stats.csv", "summary/summary.json"]
    assert _tree(wd, names) == _tree(tmp_path / "ref", names)
    assert list((wd / ".madpad" / "tmp").iterdir()) == [] and not _temporaries(wd)
    _assert_no_processes_left(token2)
