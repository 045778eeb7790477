"""Check weight files a user downloaded, before any GPU work: ``python -m madpad.weights verify PATH...``.

Recognised: SD1.5 / SDXL diffusers folders (components, configs, keys and shapes, dtypes, the
UNet's cross-attention width), IP-Adapter FaceID ``.bin``/``.safetensors`` (token count,
widths, LoRA rank, every key accounted for against the base model's UNet), ArcFace-family ONNX
recognisers (112x112 in, 512-D out for dcmorph), rembg ONNX matte models, open_clip and timm
checkpoints (architecture named, missing/unexpected keys), ultralytics YOLO ``.pt`` files
(pickle globals checked against an allow-list). Nothing is unpickled: ``.safetensors`` headers
are parsed, torch files are read with ``torch.load(weights_only=True)``, YOLO pickles are only
scanned. See docs/weights.md.

Python API: :func:`verify_paths` -> list of :class:`WeightCheck` rows; :func:`render_table`.
"""

from __future__ import annotations

from .common import LICENCES, WeightCheck
from .verify import failure_line, render_table, verify_paths

__all__ = ["LICENCES", "WeightCheck", "failure_line", "render_table", "verify_paths"]
