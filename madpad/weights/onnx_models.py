"""Check an ONNX model: an ArcFace-family face recogniser (the dcmorph identity encoder, the
``arcface_onnx`` embedder) or a background-removal model for rembg.

Read with ``onnx.load(..., load_external_data=False)`` (the graph only; nothing runs), or with an
onnxruntime session when the ``onnx`` package is absent. Recogniser: a 4-D image input of 112x112
(NCHW or NHWC) and a 2-D (N, D) output; D = 512 fits IP-Adapter FaceID. rembg model: a 4-D image
input and a single-channel map of the same size as (first) output; rembg finds it as
``<U2NET_HOME>/<name>.onnx``.
"""

from __future__ import annotations

from pathlib import Path

from madpad.io import optional_import

from .common import INSIGHTFACE_STEMS, LICENCES, WeightCheck

REMBG_NAMES = ("u2net", "u2netp", "u2net_human_seg", "u2net_cloth_seg", "silueta", "isnet-general-use",
               "isnet-anime", "sam", "birefnet-general", "birefnet-general-lite", "birefnet-portrait",
               "birefnet-dis", "birefnet-hrsod", "birefnet-cod", "birefnet-massive", "bria-rmbg")


def _dims(shape) -> list:
    return [d if isinstance(d, int) and d > 0 else "?" for d in shape]


def io_shapes(path: Path) -> tuple[list[tuple[str, list]], list[tuple[str, list]], str]:
    """([(input name, dims)], [(output name, dims)], opset text)."""
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        model = onnx.load(str(path), load_external_data=False)
        init = {i.name for i in model.graph.initializer}

        def shape(v):
            return _dims([d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim])

        ins = [(v.name, shape(v)) for v in model.graph.input if v.name not in init]
        outs = [(v.name, shape(v)) for v in model.graph.output]
        opset = next((str(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), "?")
        return ins, outs, opset
    ort = optional_import("onnxruntime", extra="face", purpose="reading ONNX models")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return ([(i.name, _dims(i.shape)) for i in sess.get_inputs()],
            [(o.name, _dims(o.shape)) for o in sess.get_outputs()], "?")


def _image_hw(dims: list):
    if len(dims) != 4:
        return None
    if dims[1] in (1, 3):
        return dims[2], dims[3]
    if dims[3] in (1, 3):
        return dims[1], dims[2]
    return None


def check_onnx(row: WeightCheck, path: Path) -> WeightCheck:
    try:
        ins, outs, opset = io_shapes(path)
    except Exception as exc:  # noqa: BLE001 - protobuf/onnxruntime parse errors: an unreadable file
        row.kind = "ONNX model (unreadable)"
        row.problems.append(f"not a readable ONNX model ({' '.join(str(exc).split())[:200]})")
        return row
    shown = "; ".join(f"{n} {d}" for n, d in outs[:2]) + (f" (+{len(outs) - 2} more)" if len(outs) > 2 else "")
    row.summary = "in " + "; ".join(f"{n} {d}" for n, d in ins) + " -> out " + shown + f", opset {opset}"
    row.licence = LICENCES["onnx"]
    hw = _image_hw(ins[0][1]) if len(ins) == 1 else None
    out0 = outs[0][1] if outs else []
    stem = path.stem
    if hw == (112, 112) and len(out0) == 2:
        dim = out0[1]
        row.kind = f"face recognition ONNX, 112x112 -> {dim}-D"
        if dim == 512:
            row.kind = "ArcFace-family face recogniser ONNX, 112x112 -> 512-D (fits the dcmorph identity encoder)"
        else:
            row.notes.append(f"{dim}-D embeddings: usable with arcface_onnx, not as the dcmorph identity encoder "
                             f"(IP-Adapter FaceID needs 512-D ArcFace embeddings)")
        if stem in INSIGHTFACE_STEMS:
            row.licence = LICENCES["insightface"]
        return row
    if hw is not None and len(out0) == 4 and (_image_hw(out0) in (hw, None)) and (out0[1] == 1 or out0[3] == 1):
        row.kind = f"background-removal (rembg-style) ONNX, {hw[0]}x{hw[1]} -> 1-channel matte"
        row.licence = LICENCES["rembg"]
        if stem in REMBG_NAMES:
            row.notes.append(f"rembg loads it as session {stem!r} when U2NET_HOME names this folder")
        else:
            row.notes.append("not one of rembg's model names; load it with rembg's u2net_custom session "
                             "(model_path=...) or rename it to the session name")
        return row
    if stem in REMBG_NAMES:
        row.kind = "rembg model (unexpected input/output shapes)"
        row.problems.append(f"named like rembg's {stem!r} but its input/output shapes are not an image -> matte")
        return row
    row.kind = "ONNX model (not a face recogniser or a rembg matte model)"
    return row


__all__ = ["check_onnx", "io_shapes", "REMBG_NAMES"]
