"""Stage functions of ``pipelines/demo.yaml``: the demo (``python -m madpad.demo``) as a pipeline.

One module per demo step, each a ``fn(ctx) -> dict`` stage (``docs/pipelines.md``):

* :mod:`.data` - the images the demo works on (one enrolment and one probe image per subject);
* :mod:`.generate` - landmark (and DCMorph) morphs of same-gender pairs;
* :mod:`.vulnerability` - face-recognition vulnerability (MMPMR, ProdAvg-MMPMR, RMMR);
* :mod:`.detect` - differential MAD: train and evaluate detectors;
* :mod:`.tshirt` - synthetic T-shirt attacks and their detection;
* :mod:`.segmentation` - the demo's summary of the segmentation-study stages
  (the study's own stage functions run as stages ``seg_*`` of the same pipeline);
* :mod:`.report` / :mod:`.report_html` - ``report.json`` and the self-contained ``report.html``;
* :mod:`.pad` - the ISO/IEC 30107-3 figures of the PAD steps (detect, tshirt).

Every step stage writes ``status.json`` (``status`` ok or skipped, the ``reason`` of a skip,
``result``, ``seconds``, ``started``); the report stage reads them. :mod:`.common` holds what
the steps share (step names and titles, the demo data, status files); it imports no other
madpad layer at module level, so a step's cache key (the runner's ``code_hash``) covers only
the library code that step uses. Importing this package imports nothing heavy.
"""

from madpad.pipeline.stages.demo.common import STEP_TITLES, STEPS

__all__ = ["STEPS", "STEP_TITLES"]
