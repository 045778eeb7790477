"""YAML staged pipelines with a content-addressed stage cache and local/Ray executors.

>>> from madpad.pipeline import load_pipeline, run_pipeline          # doctest: +SKIP
>>> spec = load_pipeline("pipelines/example_small.yaml", workdir="runs/example_small")  # doctest: +SKIP
>>> summary = run_pipeline(spec, executor="local", workers=2)          # doctest: +SKIP

Command line: ``python -m madpad.pipeline run|show|status PIPELINE.yaml`` (``docs/pipelines.md``).
A stage function is ``fn(ctx: StageContext) -> dict | None``; see :class:`StageContext`.
"""

from madpad.pipeline.executors import EXECUTORS, ItemFailure, LocalExecutor, RayExecutor, SerialExecutor, make_executor
from madpad.pipeline.runner import (
    RunSummary,
    StageContext,
    StageFailed,
    StageResult,
    pipeline_status,
    run_pipeline,
    select_stages,
)
from madpad.pipeline.spec import PipelineSpec, StageSpec, load_pipeline, pipeline_from_dict, topological_order

__all__ = [
    "EXECUTORS",
    "ItemFailure",
    "LocalExecutor",
    "PipelineSpec",
    "RayExecutor",
    "RunSummary",
    "SerialExecutor",
    "StageContext",
    "StageFailed",
    "StageResult",
    "StageSpec",
    "load_pipeline",
    "make_executor",
    "pipeline_from_dict",
    "pipeline_status",
    "run_pipeline",
    "select_stages",
    "topological_order",
]
