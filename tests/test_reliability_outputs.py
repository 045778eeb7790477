"""Output locations (issue 13, part A): an --out that is a file where a folder is expected (or
the reverse), a path under a file, or a folder that cannot be written is refused by every entry
point BEFORE any work, with one line naming the path and exit code 2; OS errors that still
happen become the same one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from madpad.cli import check_output_dir, check_output_file, run_main
from madpad.errors import UsageError

EXAMPLES = Path(__file__).resolve().parents[1] / "madpad" / "report" / "examples"


@pytest.fixture
def a_file(tmp_path) -> Path:
    p = tmp_path / "taken.txt"
    p.write_text("not a folder\n")
    return p


# --------------------------------------------------------------------------- the helpers
def test_check_output_dir(tmp_path, a_file):
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_output_dir(tmp_path) == tmp_path
    assert check_output_dir(None) is None
    with pytest.raises(UsageError, match=r"^--out .*taken.txt exists and is not a folder"):
        check_output_dir(a_file)
    with pytest.raises(UsageError, match=r"taken.txt is a file, not a folder"):
        check_output_dir(a_file / "sub" / "dir", option="--workdir")
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_check_output_file(tmp_path, a_file):
    assert check_output_file(a_file) == a_file  # an existing file is overwritten
    assert check_output_file(tmp_path / "new" / "x.csv") == tmp_path / "new" / "x.csv"
    with pytest.raises(UsageError, match="is a directory; give a file path"):
        check_output_file(tmp_path)
    with pytest.raises(UsageError, match="taken.txt is a file, not a folder"):
        check_output_file(a_file / "x.csv")


def test_unwritable_folder_is_refused(tmp_path, monkeypatch):
    # as root, chmod 0555 does not stop writes: simulate the answer of a read-only folder
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    with pytest.raises(UsageError, match=r"cannot write there: .* is not writable"):
        check_output_dir(tmp_path / "out")
    with pytest.raises(UsageError, match="is not writable"):
        check_output_file(tmp_path / "scores.csv")


def test_unwritable_existing_folder_found_by_a_real_write(tmp_path, monkeypatch):
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".probe"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(UsageError, match="is not writable"):
        check_output_dir(tmp_path)


@pytest.mark.parametrize("exc", [
    PermissionError(13, "Permission denied", "/ro/out/report.json"),
    FileExistsError(17, "File exists", "/data/out"),
    IsADirectoryError(21, "Is a directory", "/data/scores.csv"),
    NotADirectoryError(20, "Not a directory", "/data/file.txt/x"),
    OSError(28, "No space left on device", "/data/out/m1.png"),
])
def test_run_main_turns_os_errors_into_one_line_exit_2(exc, capsys):
    def body():
        raise exc

    assert run_main(body, prog="prog") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"prog: error: {exc.filename}: {exc.strerror}")


def test_run_main_keeps_other_errors_as_bugs():
    def body():
        raise OSError("no file involved")

    with pytest.raises(OSError):
        run_main(body, prog="prog")


# --------------------------------------------------------------------------- every entry point
def _one_line_exit_2(rc, capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_generate_out_is_a_file_or_under_a_file(tmp_path, a_file, capsys):
    from madpad.generate import main

    (tmp_path / "pairs.csv").write_text("a,b\nx.png,y.png\n")
    for out in (a_file, a_file / "morphs"):
        rc = main(["--method", "landmark", "--pairs", str(tmp_path / "pairs.csv"), "--out", str(out)])
        _one_line_exit_2(rc, capsys, "--out", "taken.txt")


def test_generate_compare_out_is_a_folder_or_under_a_file(tmp_path, a_file, capsys):
    from madpad.generate import main

    for out in (tmp_path, a_file / "cmp.csv"):
        rc = main(["compare", "--morphs", "nowhere.csv", "--probes", "nowhere.csv", "--out", str(out)])
        _one_line_exit_2(rc, capsys, "--out", str(out))


def test_detect_score_checks_out_before_loading_anything(tmp_path, a_file, capsys):
    from madpad.detect import main

    for out in (tmp_path, a_file / "s.csv"):
        rc = main(["score", "--model", "no_model", "--pairs", "no_pairs.csv", "--out", str(out)])
        _one_line_exit_2(rc, capsys, "--out")


def test_detect_train_out_under_a_file(a_file, capsys):
    from madpad.detect import main

    rc = main(["train", "--set", "detector=embedding_distance", "--set", f"out={a_file / 'ck'}",
               "--set", "data.train=nowhere.csv"])
    _one_line_exit_2(rc, capsys, "checkpoint directory", "taken.txt is a file")


def test_detect_tshirt_out_is_a_folder(tmp_path, capsys):
    from madpad.detect import main

    rc = main(["tshirt", "--images", "no_images.csv", "--out", str(tmp_path)])
    _one_line_exit_2(rc, capsys, "is a directory")


@pytest.mark.parametrize("command", ["pad", "vulnerability", "compare"])
def test_report_out_is_a_file_or_under_a_file(command, a_file, capsys):
    from madpad.report.__main__ import main

    scores = {"pad": ["--scores", str(EXAMPLES / "pad_scores_example.csv")],
              "compare": ["--scores", str(EXAMPLES / "pad_scores_example.csv"),
                          str(EXAMPLES / "pad_scores_example.csv")],
              "vulnerability": ["--scores", str(EXAMPLES / "comparisons_example.csv")]}[command]
    for out in (a_file, a_file / "report"):
        rc = main([command, *scores, "--out", str(out)])
        _one_line_exit_2(rc, capsys, "--out", "taken.txt")


def test_report_write_error_after_the_check_is_one_line(tmp_path, capsys, monkeypatch):
    """A folder that turns unwritable after the check (or a full disk) still ends in one line."""
    from madpad import io as mio
    from madpad.report.__main__ import main

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(mio, "atomic_write_bytes", refuse)
    rc = main(["pad", "--scores", str(EXAMPLES / "pad_scores_example.csv"), "--out", str(tmp_path / "r")])
    _one_line_exit_2(rc, capsys, "Permission denied", str(tmp_path / "r"))


def test_demo_out_under_a_file(a_file, capsys):
    from madpad.demo import main

    rc = main(["--out", str(a_file / "demo")])
    _one_line_exit_2(rc, capsys, "--out", "taken.txt is a file")


def test_weights_verify_json_is_a_folder(tmp_path, capsys):
    from madpad.weights.__main__ import main

    rc = main(["verify", str(tmp_path), "--json", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--json" in err and "is a directory" in err and len(err.splitlines()) == 1


def test_pipeline_run_workdir_is_a_file_is_refused_before_any_stage(tmp_path, a_file, capsys):
    from madpad.pipeline.__main__ import main

    repo = Path(__file__).resolve().parents[1]
    rc = main(["run", str(repo / "pipelines" / "example_small.yaml"), "--workdir", str(a_file), "--no-progress"])
    _one_line_exit_2(rc, capsys, "--workdir", "taken.txt")
    assert a_file.read_text() == "not a folder\n"  # nothing was written over it
    rc = main(["run", str(repo / "pipelines" / "example_small.yaml"), "--workdir", str(a_file / "w"),
               "--no-progress"])
    _one_line_exit_2(rc, capsys, "--workdir", "taken.txt")
