"""Pipeline YAML: parsing, key checks, ``${...}`` references and dependency order.

A pipeline file (see ``docs/pipelines.md``)::

    name: example_small
    description: ...                     # optional
    workdir: ../runs/example_small       # relative to the YAML file unless absolute
    params: {manifest: ../madpad/sample_data/frll24/images.csv}
    stages:
      stats:
        fn: madpad.pipeline.examples:stats_stage     # "module:function"
        inputs: {manifest: ${params.manifest}}       # files/dirs or ${stages.S.outputs.NAME}
        outputs: {table: stats.csv}                  # relative to the stage's output dir
        params: {fail_ids: []}
        after: []                                    # optional extra ordering, no data passed

References, resolved once at load time:

* ``${params.NAME}`` (dotted for nested values) - a pipeline parameter. A string that is *only*
  a reference keeps the parameter's type (list, number, ...); inside a longer string it is
  formatted as text;
* ``${stages.S.outputs.NAME}`` - the final path of another stage's output; this also makes
  the stage depend on S;
* ``${env.NAME}`` or ``${env.NAME:-default}`` - an environment variable (for data and model
  locations, never written into a pipeline).

Relative input paths are taken relative to the YAML file's folder.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madpad.cli import check_keys, deep_merge, load_yaml, parse_set_items
from madpad.errors import UsageError

TOP_KEYS = {"name": "", "description": "", "workdir": "", "params": {}, "stages": {}}
STAGE_KEYS = {"fn": "", "description": "", "inputs": {}, "outputs": {}, "params": {}, "after": []}
_REF = re.compile(r"\$\{([^}]*)\}")
_STAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_FN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class StageSpec:
    """One resolved stage: ``inputs`` name -> absolute Path, ``outputs`` name -> relative path
    inside the stage directory, ``params`` with references substituted, ``deps`` the stages
    it depends on (through references or ``after``)."""

    name: str
    fn: str
    inputs: dict
    outputs: dict
    params: dict
    deps: list
    description: str = ""
    input_refs: dict = field(default_factory=dict)  # input name -> (stage, output) for stage references


@dataclass
class PipelineSpec:
    """A loaded pipeline: stages in dependency (execution) order."""

    name: str
    path: Path | None
    workdir: Path
    params: dict
    stages: dict  # name -> StageSpec, in execution order
    description: str = ""

    @property
    def order(self) -> list[str]:
        return list(self.stages)

    def stage_dir(self, name: str) -> Path:
        return self.workdir / name

    def output_path(self, stage: str, output: str) -> Path:
        return self.stage_dir(stage) / self.stages[stage].outputs[output]

    def check_stage(self, name: str, *, option: str) -> str:
        if name not in self.stages:
            close = difflib.get_close_matches(name, self.order, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"{option}: unknown stage {name!r}; valid stages: {self.order}.{hint}")
        return name


def _lookup(tree: Mapping, dotted: str, *, what: str, where: str) -> Any:
    node: Any = tree
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            known = sorted(map(str, node)) if isinstance(node, Mapping) else []
            close = difflib.get_close_matches(part, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            name = ".".join(parts[: i + 1])
            raise UsageError(f"{where}: unknown {what} {name!r} in ${{{what}s.{dotted}}}; known: {known}.{hint}")
        node = node[part]
    return node


class _Resolver:
    def __init__(self, params: Mapping, stage_outputs: Mapping[str, Mapping[str, str]], workdir: Path):
        self.params = params
        self.stage_outputs = stage_outputs
        self.workdir = workdir
        self.deps: list = []
        self.refs: list = []

    def ref(self, expr: str, where: str) -> Any:
        expr = expr.strip()
        kind, _, rest = expr.partition(".")
        if kind == "params" and rest:
            return _lookup(self.params, rest, what="param", where=where)
        if kind == "env" and rest:
            var, sep, default = rest.partition(":-")
            val = os.environ.get(var, "")
            if val:
                return val
            if sep:
                return default
            raise UsageError(f"{where}: environment variable {var} is not set (used as ${{env.{var}}}); "
                             f"set it or write ${{env.{var}:-DEFAULT}}")
        if kind == "stages":
            m = re.fullmatch(r"([^.]+)\.outputs\.([^.]+)", rest)
            if not m:
                raise UsageError(f"{where}: bad reference ${{{expr}}}; write ${{stages.STAGE.outputs.NAME}}")
            stage, out = m.groups()
            if stage not in self.stage_outputs:
                close = difflib.get_close_matches(stage, list(self.stage_outputs), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise UsageError(f"{where}: ${{{expr}}} names unknown stage {stage!r}; stages: "
                                 f"{list(self.stage_outputs)}.{hint}")
            outs = self.stage_outputs[stage]
            if out not in outs:
                close = difflib.get_close_matches(out, list(outs), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise UsageError(f"{where}: stage {stage!r} has no output {out!r}; its outputs: {list(outs)}.{hint}")
            self.deps.append(stage)
            self.refs.append((stage, out))
            return str(self.workdir / stage / outs[out])
        raise UsageError(f"{where}: unknown reference ${{{expr}}}; use ${{params.NAME}}, "
                         f"${{stages.STAGE.outputs.NAME}} or ${{env.NAME}}")

    def value(self, v: Any, where: str) -> Any:
        if isinstance(v, str):
            m = _REF.fullmatch(v.strip())
            if m:
                return copy.deepcopy(self.ref(m.group(1), where))
            return _REF.sub(lambda mm: str(self.ref(mm.group(1), where)), v)
        if isinstance(v, Mapping):
            return {k: self.value(x, f"{where}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]
        return v


def _check_rel(rel: Any, where: str) -> str:
    if not isinstance(rel, str) or not rel.strip():
        raise UsageError(f"{where}: an output must be a relative path inside the stage directory; got {rel!r}")
    p = Path(rel.rstrip("/"))
    if p.is_absolute() or ".." in p.parts or str(p) in ("", "."):
        raise UsageError(f"{where}: output path {rel!r} must stay inside the stage directory "
                         f"(relative, no '..')")
    return rel


def _resolve_params_refs(params: dict, where: str) -> dict:
    """Pipeline params may use ${env.*} (and ${params.*} of earlier keys)."""
    r = _Resolver(params, {}, Path("."))
    return r.value(params, where)


def topological_order(deps: Mapping[str, Sequence[str]], *, where: str = "stages") -> list[str]:
    """Kahn's algorithm, ties broken by declaration order; a cycle raises UsageError naming it."""
    names = list(deps)
    indeg = {n: 0 for n in names}
    users: dict = {n: [] for n in names}
    for n, ds in deps.items():
        for d in dict.fromkeys(ds):
            indeg[n] += 1
            users[d].append(n)
    ready = [n for n in names if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for u in users[n]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
                ready.sort(key=names.index)
    if len(order) != len(names):
        left = [n for n in names if n not in order]
        cycle = _find_cycle({n: [d for d in deps[n] if d in left] for n in left})
        raise UsageError(f"{where}: dependency cycle {' -> '.join(cycle)}; a stage cannot (indirectly) use its "
                         f"own outputs")
    return order


def _find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
    for start in graph:
        path, seen = [start], {start}
        node = start
        while graph[node]:
            node = graph[node][0]
            if node in seen:
                return path[path.index(node):] + [node]
            path.append(node)
            seen.add(node)
    return list(graph)


def load_pipeline(path: str | os.PathLike, *, set_items: Sequence[str] | None = None,
                  workdir: str | os.PathLike | None = None, cwd: str | os.PathLike | None = None) -> PipelineSpec:
    """Load and validate a pipeline YAML.

    ``set_items`` are ``--set`` overrides (``params.NAME=VALUE`` or ``stages.S.params.NAME=VALUE``;
    the keys must exist in the YAML). A string override that names an existing path relative to
    ``cwd`` (default: the current directory) is made absolute, so command-line paths mean what
    the shell means. ``workdir`` overrides the YAML's ``workdir``.
    """
    p = Path(path)
    raw = load_yaml(p)
    return pipeline_from_dict(raw, path=p, set_items=set_items, workdir=workdir, cwd=cwd)


def pipeline_from_dict(raw: Mapping, *, path: Path | None = None, set_items: Sequence[str] | None = None,
                       workdir: str | os.PathLike | None = None, cwd: str | os.PathLike | None = None
                       ) -> PipelineSpec:
    where = str(path) if path else "pipeline"
    base = path.resolve().parent if path else Path.cwd()
    check_keys(raw, TOP_KEYS, where=where)
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, Mapping) or not stages_raw:
        raise UsageError(f"{where}: 'stages' must be a mapping of stage name -> stage; got {stages_raw!r}")
    params = raw.get("params") or {}
    if not isinstance(params, Mapping):
        raise UsageError(f"{where}: 'params' must be a mapping; got {type(params).__name__}")
    raw = dict(raw)
    raw["params"] = dict(params)
    if set_items:
        overrides = parse_set_items(set_items)
        allowed = {"params": {k: {} for k in params},
                   "stages": {s: {"params": {k: {} for k in (st or {}).get("params") or {}}}
                              for s, st in stages_raw.items()}}
        _check_overrides(overrides, allowed)
        overrides = _absolutize(overrides, Path(cwd) if cwd else Path.cwd())
        raw = deep_merge(raw, overrides)
        stages_raw = raw["stages"]
    name = str(raw.get("name") or (path.stem if path else "pipeline"))
    params = _resolve_params_refs(dict(raw.get("params") or {}), f"{where}: params")
    if workdir is not None:
        wd = Path(workdir).resolve()
    elif raw.get("workdir"):
        wd_raw = _Resolver(params, {}, Path(".")).value(str(raw["workdir"]), f"{where}: workdir")
        wd = Path(wd_raw)
        wd = (wd if wd.is_absolute() else base / wd).resolve()
    else:
        wd = (Path.cwd() / "runs" / name).resolve()

    # first pass: names, keys, outputs
    outputs_of: dict = {}
    for sname, st in stages_raw.items():
        sw = f"{where}: stages.{sname}"
        if not _STAGE_NAME.match(str(sname)):
            raise UsageError(f"{sw}: stage names use letters, digits, '_' and '-' (got {sname!r})")
        if not isinstance(st, Mapping):
            raise UsageError(f"{sw}: a stage must be a mapping with 'fn', 'inputs', 'outputs', 'params'")
        check_keys(st, STAGE_KEYS, where=sw)
        fn = st.get("fn")
        if not isinstance(fn, str) or not _FN.match(fn.strip()):
            raise UsageError(f"{sw}.fn: expected 'package.module:function'; got {fn!r}")
        outs = st.get("outputs") or {}
        if not isinstance(outs, Mapping):
            raise UsageError(f"{sw}.outputs: must be a mapping of name -> relative path")
        outputs_of[str(sname)] = {str(k): _check_rel(v, f"{sw}.outputs.{k}") for k, v in outs.items()}
        seen_paths: dict = {}
        for k, v in outputs_of[str(sname)].items():
            key = v.rstrip("/")
            if key in seen_paths:
                raise UsageError(f"{sw}.outputs: {k!r} and {seen_paths[key]!r} both write {v!r}")
            seen_paths[key] = k

    # second pass: resolve references
    specs: dict = {}
    deps: dict = {}
    for sname, st in stages_raw.items():
        sname = str(sname)
        sw = f"{where}: stages.{sname}"
        r = _Resolver(params, outputs_of, wd)
        inputs_raw = st.get("inputs") or {}
        if not isinstance(inputs_raw, Mapping):
            raise UsageError(f"{sw}.inputs: must be a mapping of name -> path")
        inputs: dict = {}
        input_refs: dict = {}
        for k, v in inputs_raw.items():
            n_before = len(r.refs)
            val = r.value(v, f"{sw}.inputs.{k}")
            if not isinstance(val, (str, os.PathLike)) or not str(val).strip():
                raise UsageError(f"{sw}.inputs.{k}: an input must be a file or folder path; got {val!r}")
            pth = Path(os.path.expanduser(str(val)))
            inputs[str(k)] = (pth if pth.is_absolute() else base / pth).resolve()
            if len(r.refs) > n_before:
                input_refs[str(k)] = r.refs[-1]
        sparams = r.value(dict(st.get("params") or {}), f"{sw}.params")
        after = st.get("after") or []
        if isinstance(after, str):
            after = [after]
        for a in after:
            if a not in outputs_of:
                close = difflib.get_close_matches(str(a), list(outputs_of), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise UsageError(f"{sw}.after: unknown stage {a!r}; stages: {list(outputs_of)}.{hint}")
        d = list(dict.fromkeys([*r.deps, *map(str, after)]))
        if sname in d:
            raise UsageError(f"{sw}: a stage cannot use its own outputs")
        deps[sname] = d
        specs[sname] = StageSpec(name=sname, fn=st["fn"].strip(), inputs=inputs, outputs=outputs_of[sname],
                                 params=sparams, deps=d, description=str(st.get("description") or ""),
                                 input_refs=input_refs)
    order = topological_order(deps, where=f"{where}: stages")
    return PipelineSpec(name=name, path=path.resolve() if path else None, workdir=wd, params=params,
                        stages={n: specs[n] for n in order}, description=str(raw.get("description") or ""))


def _check_overrides(overrides: Mapping, allowed: Mapping) -> None:
    for key, val in overrides.items():
        if key not in allowed:
            raise UsageError(f"--set: {key!r} cannot be overridden; use --set params.NAME=VALUE or "
                             f"--set stages.STAGE.params.NAME=VALUE")
        if key == "params":
            check_keys(val, allowed["params"], where="--set params")
        else:
            check_keys(val, allowed["stages"], where="--set stages")
            for s, sv in val.items():
                check_keys(sv, {"params": {}}, where=f"--set stages.{s}")
                check_keys(sv.get("params") or {}, allowed["stages"][s]["params"], where=f"--set stages.{s}.params")


def _absolutize(v: Any, cwd: Path) -> Any:
    if isinstance(v, dict):
        return {k: _absolutize(x, cwd) for k, x in v.items()}
    if isinstance(v, str) and v and not _REF.search(v):
        p = Path(os.path.expanduser(v))
        if not p.is_absolute() and (cwd / p).exists():
            return str((cwd / p).resolve())
    return v
