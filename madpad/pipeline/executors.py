"""Executors that run a top-level function over items: serial, local process pool, Ray.

Every executor has ``map_unordered(fn, items) -> iterator of (index, outcome)`` where the
outcome is the function's result or an :class:`ItemFailure` (an exception raised by one item
never stops the others), and ``close()``. :meth:`StageContext.map` puts the outcomes back in
item order, so every executor gives the same ordered results.

* ``serial`` - in this process (debugging, tiny jobs);
* ``local`` - :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method
  (safe with threaded libraries such as torch and onnxruntime), ``workers`` processes
  (default ``min(2, cpu count)``); workers end when the run's process dies, even by ``kill -9``
  (Linux parent-death signal, and a watchdog thread that polls the parent's pid everywhere);
* ``ray`` - ``ray.remote`` over the same function; ``ray.init(address=...)`` joins an existing
  cluster (``auto`` or ``ray://host:10001``), otherwise a local Ray is started with
  ``num_cpus=workers``. The function must be importable on every node (install madpad there).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from madpad.errors import UsageError

EXECUTORS = ("local", "serial", "ray")


@dataclass
class ItemFailure:
    """One item whose function raised: ``item`` (as given), ``error`` (``"Type: message"``)
    and the formatted ``traceback``. Returned in place of the item's result."""

    item: Any
    error: str
    traceback: str = ""

    def __bool__(self) -> bool:  # a failure is falsy, so ``[r for r in results if r]`` keeps the ok ones
        return False


def _call(fn: Callable, item: Any):
    """Run ``fn(item)`` and capture an exception as a picklable ItemFailure (top-level: picklable)."""
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 - per-item failures are recorded, not raised
        return ItemFailure(item=item, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())


def _end_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Worker initializer: this process ends when ``parent_pid`` (the run) does, even when the
    run was killed with SIGKILL and could not shut its pool down. Linux: ``prctl(PR_SET_PDEATHSIG,
    SIGKILL)``; everywhere: a daemon thread that polls ``os.getppid()``."""
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # best effort: the watchdog still runs
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="madpad-parent-watchdog", daemon=True).start()


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _check_picklable(fn: Callable) -> None:
    try:
        pickle.dumps(fn)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"ctx.map needs a top-level (importable, picklable) function to send to worker processes; "
                         f"{getattr(fn, '__qualname__', fn)!r} is not ({exc})") from None


class SerialExecutor:
    name = "serial"
    workers = 1

    def map_unordered(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, Any]]:
        for i, item in enumerate(items):
            yield i, _call(fn, item)

    def close(self) -> None:
        pass


class LocalExecutor:
    """A process pool started on first use and reused by every stage of a run."""

    name = "local"

    def __init__(self, *, workers: int | None = None):
        self.workers = int(workers) if workers else default_workers()
        if self.workers < 1:
            raise UsageError(f"--workers must be >= 1; got {workers}")
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_end_with_parent, initargs=(os.getpid(),))
        return self._pool

    def map_unordered(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, Any]]:
        if not items:
            return
        _check_picklable(fn)
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        pool = self._get_pool()
        pending = {}
        it = iter(enumerate(items))
        limit = self.workers * 4  # bounded number of items in flight
        try:
            for i, item in it:
                pending[pool.submit(_call, fn, item)] = i
                if len(pending) >= limit:
                    break
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    exc = fut.exception()
                    if isinstance(exc, BrokenProcessPool):
                        raise exc
                    if exc is not None:  # e.g. the result could not be pickled
                        yield i, ItemFailure(item=items[i], error=f"{type(exc).__name__}: {exc}")
                    else:
                        yield i, fut.result()
                    nxt = next(it, None)
                    if nxt is not None:
                        pending[pool.submit(_call, fn, nxt[1])] = nxt[0]
        except BrokenProcessPool:
            self._pool = None  # the next stage gets a fresh pool
            pool.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError("a worker process died (out of memory, or a crash in native code); the items that "
                               "finished are cached: rerun to resume, with fewer --workers if memory ran out") from None
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Ray tasks over the same top-level function; a local Ray is started (and stopped by
    :meth:`close`) when no address is given and Ray is not already initialised."""

    name = "ray"

    def __init__(self, *, workers: int | None = None, address: str | None = None):
        self.workers = int(workers) if workers else default_workers()
        self.address = address
        self._ray = None
        self._started = False
        self._remote = None

    def _init(self):
        if self._ray is None:
            from madpad.io import optional_import

            ray = optional_import("ray", extra="ray", purpose="--executor ray")
            if not ray.is_initialized():
                import logging

                kw: dict = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
                if self.address:
                    ray.init(address=self.address, **kw)
                else:
                    ray.init(num_cpus=self.workers, **kw)
                self._started = True
            self._ray = ray
            self._remote = ray.remote(num_cpus=1)(_call)
        return self._ray

    def map_unordered(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, Any]]:
        if not items:
            return
        _check_picklable(fn)
        ray = self._init()
        fn_ref = ray.put(fn)
        refs = {self._remote.remote(fn_ref, item): i for i, item in enumerate(items)}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    i = refs.pop(ref)
                    try:
                        yield i, ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - worker crash: record, carry on
                        yield i, ItemFailure(item=items[i], error=f"{type(exc).__name__}: {exc}")
        finally:
            for ref in refs:
                with contextlib.suppress(Exception):  # best effort on interruption
                    ray.cancel(ref)

    def close(self) -> None:
        if self._ray is not None and self._started:
            self._ray.shutdown()
        self._ray = None
        self._started = False


def make_executor(name: str = "local", *, workers: int | None = None, address: str | None = None):
    """``"local"`` (default), ``"serial"`` or ``"ray"``."""
    if name == "local":
        return LocalExecutor(workers=workers)
    if name == "serial":
        return SerialExecutor()
    if name == "ray":
        return RayExecutor(workers=workers, address=address)
    raise UsageError(f"--executor: unknown executor {name!r}; choose one of {list(EXECUTORS)}")
