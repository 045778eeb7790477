"""``verify_paths``: check downloaded weight files and folders before any GPU work, and render the report."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from madpad.errors import UsageError

from .common import WeightCheck, human_size, new_row
from .diffusers_folder import BaseModel, check_pipeline_folder, is_pipeline_folder
from .onnx_models import check_onnx
from .torch_files import check_safetensors_file, check_torch_file, parse_arch

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx")


def _expand(path: Path) -> list[Path]:
    """A file, a diffusers pipeline folder, or a folder of weight files (searched recursively; the
    files of a pipeline folder found inside are checked as part of that folder)."""
    if path.is_file() or is_pipeline_folder(path):
        return [path]
    if not path.is_dir():
        raise UsageError(f"{path}: no such file or folder")
    entries = [p for p in sorted(path.rglob("*")) if not any(x.startswith(".") for x in p.relative_to(path).parts)]
    pipelines = [p for p in entries if is_pipeline_folder(p)]
    files = [p for p in entries if p.is_file() and p.suffix in WEIGHT_SUFFIXES
             and not any(f in p.parents for f in pipelines)]
    return pipelines + files


def verify_paths(paths: Iterable[str | Path], *, base_model: str | Path | None = None, arch: str | None = None,
                 hash_files: bool = True) -> list[WeightCheck]:
    """Check every file (or folder) in ``paths``; returns one :class:`WeightCheck` per file.

    ``base_model``: a diffusers SD1.5/SDXL folder that FaceID checkpoints must fit (default: the
    one pipeline folder among ``paths``, if exactly one). ``arch``: ``open_clip:NAME`` or
    ``timm:NAME`` for open_clip/timm checkpoints. ``hash_files``: compute sha256 of every file.
    """
    arch_spec = parse_arch(arch)
    targets: list[Path] = []
    for p in paths:
        found = _expand(Path(p).expanduser())
        if not found:
            raise UsageError(f"{p}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) or diffusers folders in it")
        targets += [t for t in found if t not in targets]
    rows: list[WeightCheck] = []
    bases: list[BaseModel] = []
    folders = [t for t in targets if t.is_dir()]
    if base_model is not None and Path(base_model).expanduser() not in folders:
        folders.insert(0, Path(base_model).expanduser())
        if not is_pipeline_folder(folders[0]):
            raise UsageError(f"--base-model {base_model}: not a diffusers folder (no model_index.json)")
    for folder in folders:
        r, base = check_pipeline_folder(folder, hash_files=hash_files)
        rows += r
        if base is not None:
            bases.append(base)
    chosen = None
    if base_model is not None:
        chosen = next((b for b in bases if Path(b.path) == Path(base_model).expanduser()), None)
    elif len(bases) == 1:
        chosen = bases[0]
    for f in (t for t in targets if t.is_file()):
        row = new_row(f, hash_files=hash_files)
        rows.append(row)
        if f.suffix == ".onnx":
            check_onnx(row, f)
        elif f.suffix == ".safetensors":
            check_safetensors_file(row, f, base=chosen, arch=arch_spec)
        elif f.suffix in (".bin", ".pt", ".pth", ".ckpt"):
            check_torch_file(row, f, base=chosen, arch=arch_spec)
        else:
            row.kind = "not a weights file"
            row.problems.append(f"unknown file type {f.suffix!r} (expected one of {', '.join(WEIGHT_SUFFIXES)})")
        if len(bases) > 1 and base_model is None and row.kind.startswith("IP-Adapter FaceID"):
            row.notes.append("several base folders given: pass --base-model to choose the one it must fit")
    return rows


def render_table(rows: list[WeightCheck], *, root: Path | None = None) -> str:
    """A Markdown table (file, what it is, sizes, dtypes, sha256, licence, verdict) plus notes."""
    def rel(p: str) -> str:
        if root is not None:
            try:
                return str(Path(p).resolve().relative_to(root.resolve()))
            except ValueError:
                pass
        return p

    head = "| file | what it is | sizes | dtypes | sha256 | licence | verdict |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        size = human_size(r.size_bytes) if r.size_bytes else ""
        sizes = ", ".join(x for x in (size, r.summary) if x)
        cells = [rel(r.path), r.kind, sizes, r.dtypes, r.sha256 or "", r.licence, r.verdict]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    details = []
    for r in rows:
        for p in r.problems[1:]:
            details.append(f"- {rel(r.path)}: {p}")
        for n in r.notes:
            details.append(f"- {rel(r.path)} (note): {n}")
    if details:
        lines += ["", *details]
    return "\n".join(lines)


def failure_line(rows: list[WeightCheck]) -> str | None:
    """One line saying why the check failed (None when every file fits)."""
    bad = [r for r in rows if not r.ok]
    if not bad:
        return None
    first = bad[0]
    more = f" (and {len(bad) - 1} more file(s) refused)" if len(bad) > 1 else ""
    return f"{first.path}: {first.problems[0]}{more}"


__all__ = ["verify_paths", "render_table", "failure_line", "WEIGHT_SUFFIXES"]
