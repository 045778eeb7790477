"""Stage functions of the pipelines in ``pipelines/`` (``fn(ctx) -> dict | None``, see
``docs/CONTRACTS.md``, "Pipelines — stage contract").

* :mod:`madpad.pipeline.stages.segmentation` (one module per stage) — ``pipelines/segmentation_study.yaml``;
* :mod:`madpad.pipeline.stages.morph_generation` — ``pipelines/morph_generation.yaml``;
* :mod:`madpad.pipeline.stages.dmad` — ``pipelines/dmad_train_eval.yaml``.
* :mod:`madpad.pipeline.stages.demo` (one module per demo step) — ``pipelines/demo.yaml``
  (``python -m madpad.demo``).

Shared helpers: :mod:`madpad.pipeline.stages._common`. Stages call library functions, never a
command line's ``main``. Importing this package imports nothing heavy.
"""
