"""Run a pipeline: content-addressed stage cache, atomic outputs, per-item resume, run summary.

Workdir layout (``WORKDIR`` = the pipeline's ``workdir``)::

    WORKDIR/<stage>/                  the stage's outputs (moved into place on success only)
    WORKDIR/<stage>/.madpad-stage.json  cache record: key, fn, code hash, params, input and output hashes
    WORKDIR/.madpad/tmp/<stage>-*/    a running stage's outputs (removed on failure)
    WORKDIR/.madpad/cache/<stage>/<key>/  per-item results of ctx.map (kept until the stage succeeds;
                                      JSON + npz without pickles, see :func:`encode_cached`)
    WORKDIR/.madpad/hashes.json       file-hash memo keyed by (path, size, mtime)
    WORKDIR/logs/<stage>.log          per-stage log (appended on every run of the stage)
    WORKDIR/run_summary.json          the last run: stage, status, seconds, items, error

A stage is **skipped** when its record's key equals the key computed now - SHA-256 over the
function name, the source of the function's module, the resolved params, the declared outputs
and the content hashes of every input file or folder - and every declared output exists.
Stage functions must therefore be deterministic functions of their inputs and params.

Nothing in the workdir is unpickled (work folders may be shared, e.g. on a Ray cluster): the
per-item cache holds JSON and numpy arrays (``allow_pickle=False``); a result that cannot be
represented that way is simply not cached. A run starts by removing what a killed run left
(``.madpad/tmp/`` stage folders, madpad's temporary files in the stage folders) and says so.
A stage that raises :class:`UsageError` / :class:`ManifestError` (bad input) is ``failed`` with
``bad_input`` set: the CLI exits 2 for it, 1 for other failures.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madpad.errors import ManifestError, UsageError
from madpad.io import (
    atomic_write_bytes,
    atomic_write_json,
    remove_stale_temporaries,
    test_kill_point,
)
from madpad.pipeline.executors import ItemFailure, SerialExecutor, make_executor
from madpad.pipeline.fingerprint import (
    RECORD_NAME,
    RECORD_VERSION,
    HashMemo,
    StageFailed,
    _canonical,
    _sha,
    import_stage_fn,
    read_record,
    stage_fingerprint,
    stale_reasons,
)
from madpad.pipeline.item_cache import CACHE_SUFFIX, decode_cached, encode_cached
from madpad.pipeline.spec import PipelineSpec, StageSpec


#: what a stage's run can end as (StageResult.status)
STATUSES = ("ran", "skipped", "failed", "blocked", "interrupted")


# --------------------------------------------------------------------------- stage context
@dataclass
class ItemCounts:
    total: int = 0
    cached: int = 0
    failed: int = 0


class StageContext:
    """What a stage function receives (``fn(ctx) -> dict | None``).

    Attributes: ``name``; ``inputs`` (name -> absolute Path); ``outputs`` (name -> Path inside
    ``stage_dir``, a temporary folder moved into place atomically when the stage succeeds;
    outputs declared with a trailing ``/`` are created as folders, for files the parent folder
    exists); ``params`` (dict); ``stage_dir`` (the temporary stage folder: anything written
    there is published with the outputs); ``final_dir`` (where it will be); ``log`` (logger
    writing ``WORKDIR/logs/<stage>.log``); ``cache_dir`` (resumable per-item scratch space, kept
    when the stage fails, removed when it succeeds); ``workdir``; ``executor`` name.
    """

    def __init__(self, *, name: str, inputs: dict, outputs: dict, params: dict, stage_dir: Path, final_dir: Path,
                 cache_dir: Path, workdir: Path, log: logging.Logger, executor: Any, progress: bool = True):
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.params = params
        self.stage_dir = stage_dir
        self.final_dir = final_dir
        self.cache_dir = cache_dir
        self.workdir = workdir
        self.log = log
        self._executor = executor
        self.executor = executor.name
        self.progress = progress
        self.items = ItemCounts()

    def map(self, fn: Callable, items: Iterable, *, key: Callable[[Any], Any] | None = None,
            desc: str | None = None, cache: bool = True) -> list:
        """Run a top-level picklable ``fn(item)`` over ``items`` on the run's executor.

        Returns results in item order; an item whose ``fn`` raised gives an
        :class:`ItemFailure` (recorded in the log and the run summary; the others go on).
        Successful results are cached in ``cache_dir`` under ``key(item)`` (default: the item's
        canonical JSON, when it has one), so a rerun after a failure or interruption computes
        only the missing items. Failures are not cached: they are retried on the next run.
        """
        items = list(items)
        n = len(items)
        results: list = [None] * n
        files: list = [None] * n
        fname = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', 'fn')}"
        folder = self.cache_dir / "map" / _sha(fname)[:16]
        todo = []
        for i, item in enumerate(items):
            k = _item_key(item, key) if cache else None
            if k is not None:
                files[i] = folder / f"{_sha(k)[:40]}{CACHE_SUFFIX}"
                if files[i].is_file():
                    try:
                        results[i] = decode_cached(files[i])
                        self.items.cached += 1
                        continue
                    except (OSError, ValueError):  # unreadable or not our format: recompute
                        pass
            todo.append(i)
        self.items.total += n
        if self.items.cached and todo != list(range(n)):
            self.log.info("%s: %d of %d items cached from an earlier run", desc or fname, n - len(todo), n)
        # one pending item: no point starting local worker processes (Ray still gets it: it may
        # need a cluster node's resources)
        executor = SerialExecutor() if len(todo) <= 1 and self.executor == "local" else self._executor
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=n - len(todo), desc=desc or self.name, unit="item", leave=False,
                   disable=not self.progress, file=sys.stderr)
        try:
            sub = [items[i] for i in todo]
            for j, out in executor.map_unordered(fn, sub):
                i = todo[j]
                results[i] = out
                if isinstance(out, ItemFailure):
                    self.items.failed += 1
                    self.log.warning("item %d failed: %s", i, out.error)
                    self.log.debug("%s", out.traceback)
                elif files[i] is not None:
                    data = encode_cached(out)
                    if data is not None:  # not representable without pickle: recomputed next time
                        files[i].parent.mkdir(parents=True, exist_ok=True)
                        atomic_write_bytes(files[i], data)
                    test_kill_point("pipeline.item")
                bar.update(1)
        finally:
            bar.close()
        return results

    def progress_bar(self, iterable: Iterable, *, desc: str | None = None, total: int | None = None):
        """tqdm over ``iterable`` for in-stage loops (disabled with the run's progress option)."""
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc or self.name, total=total, leave=False, disable=not self.progress,
                    file=sys.stderr)


def _item_key(item: Any, key: Callable | None) -> str | None:
    if key is not None:
        k = key(item)
        return k if isinstance(k, str) else _canonical(k)
    try:
        return json.dumps(item, sort_keys=True, separators=(",", ":"), default=_path_only)
    except (TypeError, ValueError):
        return None  # not JSON (e.g. arrays): no per-item cache unless a key function is given


def _path_only(o: Any) -> str:
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


# --------------------------------------------------------------------------- run
@dataclass
class StageResult:
    stage: str
    status: str
    seconds: float = 0.0
    error: str = ""
    reason: str = ""
    items: dict = field(default_factory=dict)
    result: Any = None
    log: str = ""
    bad_input: bool = False  # failed with UsageError / ManifestError (the CLI exits 2)

    def as_dict(self) -> dict:
        return {"stage": self.stage, "status": self.status, "seconds": round(self.seconds, 3), "reason": self.reason,
                "error": self.error, "items": self.items, "result": self.result, "log": self.log,
                "bad_input": self.bad_input}


@dataclass
class RunSummary:
    pipeline: str
    workdir: Path
    executor: str
    stages: list
    seconds: float = 0.0
    started_at: str = ""

    @property
    def ok(self) -> bool:
        return all(s.status in ("ran", "skipped") for s in self.stages)

    @property
    def bad_input(self) -> bool:
        """A stage failed because of bad input (:class:`UsageError` / :class:`ManifestError`)."""
        return any(s.status == "failed" and s.bad_input for s in self.stages)

    def status_of(self, stage: str) -> str:
        return next(s.status for s in self.stages if s.stage == stage)

    def as_dict(self) -> dict:
        return {"pipeline": self.pipeline, "workdir": str(self.workdir), "executor": self.executor,
                "started_at": self.started_at, "seconds": round(self.seconds, 3), "ok": self.ok,
                "stages": [s.as_dict() for s in self.stages]}

    def table(self) -> str:
        rows = [("stage", "status", "seconds", "items (failed/cached)", "note")]
        for s in self.stages:
            it = s.items
            items = f"{it.get('total', 0)} ({it.get('failed', 0)}/{it.get('cached', 0)})" if it.get("total") else "-"
            note = s.error or s.reason
            rows.append((s.stage, s.status, f"{s.seconds:.2f}", items, note[:100]))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
        return "\n".join(line.rstrip() for line in lines)


def select_stages(spec: PipelineSpec, *, from_stage: str | None = None, only: str | None = None) -> list[str]:
    """``only``: that stage; ``from_stage``: it and every stage after it in execution order."""
    if from_stage and only:
        raise UsageError("--from and --only cannot be combined")
    if only:
        return [spec.check_stage(only, option="--only")]
    if from_stage:
        spec.check_stage(from_stage, option="--from")
        return spec.order[spec.order.index(from_stage):]
    return spec.order


@contextlib.contextmanager
def _stage_logger(name: str, log_path: Path, verbose: bool):
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"madpad.pipeline.stage.{name}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = verbose
    handler = logging.FileHandler(log_path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()


def _echo(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _jsonable(obj: Any) -> Any:
    try:
        return json.loads(json.dumps(obj, default=str))
    except (TypeError, ValueError):
        return repr(obj)


def run_pipeline(spec: PipelineSpec, *, from_stage: str | None = None, only: str | None = None,
                 executor: str = "local", workers: int | None = None, address: str | None = None,
                 force: bool = False, progress: bool = True, quiet: bool = False,
                 verbose: bool = False) -> RunSummary:
    """Run the selected stages in dependency order and return the run summary.

    A stage whose cache key is unchanged and whose outputs exist is skipped (``force``
    reruns every selected stage and drops its per-item cache). A failing stage is recorded
    (``failed``, with the error) and the stages that depend on it are ``blocked``; independent
    stages still run. The summary is printed (unless ``quiet``) and written to
    ``WORKDIR/run_summary.json``. Bad pipeline input raises :class:`UsageError`.
    """
    selected = select_stages(spec, from_stage=from_stage, only=only)
    fns = {name: import_stage_fn(spec.stages[name]) for name in selected}
    wd = spec.workdir
    meta = wd / ".madpad"
    meta.mkdir(parents=True, exist_ok=True)
    with _workdir_lock(meta / "lock"):
        cleaned = clean_stale_run_files(spec)
        if cleaned:
            _echo(f"cleaned up after an interrupted run: {_cleaned_text(cleaned, wd)}", quiet)
        return _run_selected(spec, selected, fns, executor=executor, workers=workers, address=address, force=force,
                             progress=progress, quiet=quiet, verbose=verbose)


def clean_stale_run_files(spec: PipelineSpec) -> list[Path]:
    """Remove what a killed run left in the workdir: every entry of ``.madpad/tmp/`` (running
    stages' folders; call only while holding the workdir lock, so no run is using them) and
    madpad's temporary files (:func:`madpad.io.is_madpad_temporary`) in the workdir, its stage
    folders and ``.madpad/``. Returns what was removed."""
    wd = spec.workdir
    removed: list[Path] = []
    tmp_root = wd / ".madpad" / "tmp"
    if tmp_root.is_dir():
        for p in sorted(tmp_root.iterdir()):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            removed.append(p)
    removed += remove_stale_temporaries(wd)
    folders = {wd / ".madpad"} | {spec.stage_dir(n) for n in spec.stages}
    for d in sorted(folders):
        if d.is_dir() and wd in d.parents:
            removed += remove_stale_temporaries(d, recursive=True)
    return removed


def _cleaned_text(paths: list[Path], wd: Path) -> str:
    shown = [os.path.relpath(p, wd) for p in paths[:5]]
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return f"removed {len(paths)} stale temporary file(s)/folder(s): {', '.join(shown)}{more}"


@contextlib.contextmanager
def _workdir_lock(path: Path):
    """One run per workdir at a time (POSIX advisory lock, released when the process ends)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"another pipeline run is using {path.parent.parent}; wait for it to finish "
                             f"or choose another --workdir") from None
        yield


def _run_selected(spec: PipelineSpec, selected: list, fns: dict, *, executor: str, workers: int | None,
                  address: str | None, force: bool, progress: bool, quiet: bool, verbose: bool) -> RunSummary:
    wd = spec.workdir
    meta = wd / ".madpad"
    memo = HashMemo(meta / "hashes.json")
    ex = make_executor(executor, workers=workers, address=address)
    started = time.time()
    summary = RunSummary(pipeline=spec.name, workdir=wd, executor=executor, stages=[],
                         started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    bad: set = set()  # stages that failed or were blocked in this run
    _echo(f"pipeline {spec.name}: {len(selected)} stage(s) in {wd} (executor {executor})", quiet)
    try:
        for name in selected:
            st = spec.stages[name]
            blockers = [d for d in st.deps if d in bad]
            if blockers:
                bad.add(name)
                summary.stages.append(StageResult(name, "blocked", reason=f"upstream failed: {blockers}"))
                _echo(f"[{name}] blocked (upstream failed: {', '.join(blockers)})", quiet)
                continue
            res = _run_stage(spec, st, fns[name], memo=memo, executor=ex, force=force, progress=progress,
                             quiet=quiet, verbose=verbose)
            summary.stages.append(res)
            if res.status == "failed":
                bad.add(name)
            memo.save()
    except KeyboardInterrupt:
        done = {s.stage for s in summary.stages}
        for name in selected:
            if name not in done:
                summary.stages.append(StageResult(name, "interrupted"))
                break
        raise
    finally:
        ex.close()
        memo.save()
        summary.seconds = time.time() - started
        atomic_write_json(wd / "run_summary.json", summary.as_dict())
        _echo(summary.table(), quiet)
    return summary


def _run_stage(spec: PipelineSpec, st: StageSpec, fn: Callable, *, memo: HashMemo, executor: Any, force: bool,
               progress: bool, quiet: bool, verbose: bool) -> StageResult:
    t0 = time.time()
    final = spec.stage_dir(st.name)
    log_path = spec.workdir / "logs" / f"{st.name}.log"
    try:
        fp = stage_fingerprint(st, fn, memo)
    except StageFailed as exc:
        _echo(f"[{st.name}] failed: {exc}", quiet)
        return StageResult(st.name, "failed", time.time() - t0, error=str(exc), log=str(log_path))
    record = read_record(final)
    reasons = stale_reasons(record, fp, st, final)
    if not reasons and not force:
        _echo(f"[{st.name}] skipped (up to date)", quiet)
        return StageResult(st.name, "skipped", time.time() - t0, reason="up to date",
                           items=record.get("items") or {}, result=record.get("result"), log=str(log_path))
    reason = "forced" if force else "; ".join(reasons)
    cache_dir = spec.workdir / ".madpad" / "cache" / st.name / fp["key"][:16]
    if force and cache_dir.parent.exists():
        shutil.rmtree(cache_dir.parent, ignore_errors=True)
    tmp_root = spec.workdir / ".madpad" / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{st.name}-", dir=tmp_root))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; the published stage folder is an ordinary folder
    outputs = {}
    for oname, rel in st.outputs.items():
        p = tmp / rel.rstrip("/")
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
        outputs[oname] = p
    _echo(f"[{st.name}] running ({reason})", quiet)
    with _stage_logger(st.name, log_path, verbose) as log:
        log.info("=== run of stage %s (%s); fn %s; key %s", st.name, reason, st.fn, fp["key"][:16])
        log.info("inputs: %s", {k: str(v) for k, v in st.inputs.items()})
        log.info("params: %s", _canonical(st.params))
        ctx = StageContext(name=st.name, inputs=dict(st.inputs), outputs=outputs, params=json.loads(_canonical(st.params)),
                           stage_dir=tmp, final_dir=final, cache_dir=cache_dir, workdir=spec.workdir, log=log,
                           executor=executor, progress=progress)
        try:
            ret = fn(ctx)
            missing = [f"{n} ({st.outputs[n]})" for n, p in outputs.items() if not p.exists()]
            if missing:
                raise StageFailed(f"stage {st.name!r} finished without writing declared output(s): {missing}")
            items = {"total": ctx.items.total, "cached": ctx.items.cached, "failed": ctx.items.failed}
            _publish(tmp, final)
            # The record is written last: a crash before it only means the stage runs again.
            record = {"version": RECORD_VERSION, **fp, "items": items, "result": _jsonable(ret),
                      "output_hashes": {o: memo.tree(final / rel.rstrip("/")) for o, rel in st.outputs.items()},
                      "seconds": round(time.time() - t0, 3),
                      "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
            atomic_write_json(final / RECORD_NAME, record)
            shutil.rmtree(cache_dir.parent, ignore_errors=True)
            log.info("stage %s done in %.2f s; items %s", st.name, time.time() - t0, items)
            _echo(f"[{st.name}] done in {time.time() - t0:.2f} s", quiet)
            return StageResult(st.name, "ran", time.time() - t0, reason=reason, items=items, result=record["result"],
                               log=str(log_path))
        except KeyboardInterrupt:
            log.error("interrupted; per-item results kept in %s", cache_dir)
            raise
        except Exception as exc:  # noqa: BLE001 - a stage failure is recorded; the run goes on
            msg = str(exc) if isinstance(exc, (StageFailed, UsageError, ManifestError)) else f"{type(exc).__name__}: {exc}"
            log.error("stage failed: %s\n%s", msg, traceback.format_exc())
            _echo(f"[{st.name}] failed: {msg} (log: {log_path})", quiet)
            items = {"total": ctx.items.total, "cached": ctx.items.cached, "failed": ctx.items.failed}
            return StageResult(st.name, "failed", time.time() - t0, error=msg, items=items, log=str(log_path),
                               bad_input=isinstance(exc, (UsageError, ManifestError)))
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` with renames only (same filesystem): the old folder is
    moved aside first, so at every moment ``final`` is either the old or the new complete set."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = final.parent / ".madpad" / "tmp" / f"{final.name}-old-{os.getpid()}-{time.time_ns()}"
        old.parent.mkdir(parents=True, exist_ok=True)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def pipeline_status(spec: PipelineSpec) -> list[dict]:
    """Per stage: ``up to date``, or ``stale`` with the reasons, or ``waiting`` when an input
    (e.g. an upstream output) does not exist yet. Imports the stage modules, runs nothing."""
    memo = HashMemo(spec.workdir / ".madpad" / "hashes.json")
    out = []
    for name, st in spec.stages.items():
        fn = import_stage_fn(st)
        final = spec.stage_dir(name)
        try:
            fp = stage_fingerprint(st, fn, memo)
        except StageFailed as exc:
            out.append({"stage": name, "state": "waiting", "why": [str(exc)]})
            continue
        rec = read_record(final)
        why = stale_reasons(rec, fp, st, final)
        out.append({"stage": name, "state": "up to date" if not why else "stale", "why": why,
                    "finished_at": (rec or {}).get("finished_at", "")})
    return out
