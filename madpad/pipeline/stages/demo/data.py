"""Stage ``data`` of ``pipelines/demo.yaml``: the images the demo works on.

params: ``data`` (``sample``, ``frll``, an FRLL-layout folder or an image manifest), ``root``
(the FRLL folder for ``frll``, or the folder a manifest's paths are relative to).
outputs: ``images`` (``images.csv``: one enrolment and one probe image per subject, capture
``enrolment``/``probe``, paths relative to the data root, plus each file's size in ``bytes``),
``info`` (``data.json``: description, source, root, manifest, FRLL or not, notes, subjects).

The later stages read both files, so their cache keys change when the chosen images (or their
sizes) change. The demo command reruns this stage on every run (it is quick): a file edited in
place is noticed like the demo always did.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from madpad.pipeline.stages.demo.common import load_data


def select_data(ctx) -> dict:
    from madpad.data import write_images
    from madpad.io import atomic_write_json

    p = ctx.params
    data = load_data(str(p.get("data") or "sample"), p.get("root"))
    rows = []
    for r in [*data.enrolment, *data.probe]:
        size = Path(r.path).stat().st_size if Path(r.path).is_file() else -1
        rows.append(dataclasses.replace(r, extra={**(r.extra or {}), "bytes": size}))
    write_images(ctx.outputs["images"], rows, root=data.root)
    atomic_write_json(ctx.outputs["info"], data.info())
    return {"subjects": len(data.subjects), "source": data.source}
