"""Stage functions of the pipelines in ``pipelines/`` (``fn(ctx) -> dict | None``, see
``docs/CONTRACTS.md``, "Pipelines — stage contract").

* :mod:`madpad.pipeline.stages.segmentation_study` — ``pipelines/segmentation_study.yaml``;
* :mod:`madpad.pipeline.stages.morph_generation` — ``pipelines/morph_generation.yaml``;
* :mod:`madpad.pipeline.stages.dmad` — ``pipelines/dmad_train_eval.yaml``.

Importing this package imports nothing heavy.
"""
