"""T-shirt presentation attack detector: face detector + person detector + spatial scorer.

>>> pad = TshirtDetector.from_names()     # nanodet persons (+ pose, mask) and the union face finder  # doctest: +SKIP
>>> result = pad.analyze(image)          # SpatialResult: score (higher = attack), status, fired rules
>>> result.score >= 0.5                  # attack when score >= threshold                 # doctest: +SKIP

Default detector set (:data:`DEFAULT_PERSON_DETECTOR`, :data:`DEFAULT_FACE_DETECTOR`): ``nanodet``
(every person in the scene, BlazePose per person box, selfie mask; its ONNX model comes from
``model_path=`` or ``$MADPAD_SHARED/models/person``) and ``union`` (dlib HOG + BlazeFace + MTCNN
upright, BlazeFace at ±15 and ±30 degrees; :mod:`madpad.face.finder`). The lighter
single-person set of earlier versions is ``person="mediapipe_pose", face="dlib_hog"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from madpad.cli import parse_component_spec
from madpad.errors import UsageError
from madpad.io import as_rgb_uint8
from madpad.pad.spatial import RuleConfig, SpatialResult, assess

DEFAULT_PERSON_DETECTOR = "nanodet"
DEFAULT_FACE_DETECTOR = "union"


def parse_component(spec: str, *, what: str) -> tuple[str, dict]:
    """``"yolo:weights=/m/y.pt,conf=0.3"`` -> ``("yolo", {"weights": "/m/y.pt", "conf": 0.3})``
    (see :func:`madpad.cli.parse_component_spec`)."""
    return parse_component_spec(spec, what=what)


@dataclass
class TshirtDetector:
    """Runs ``face_detector`` and ``person_detector`` on an image and scores the spatial layout.

    ``scorer``: None for the rules (score = rule score), or a :class:`madpad.pad.learned.LearnedScorer`
    (score = its attack probability over the same features). Scores: higher = attack.
    """

    person_detector: Any
    face_detector: Any
    rules: RuleConfig = field(default_factory=RuleConfig)
    scorer: Any = None

    @classmethod
    def from_names(cls, *, person: str = DEFAULT_PERSON_DETECTOR, face: str = DEFAULT_FACE_DETECTOR,
                   rules: RuleConfig | dict | None = None, scorer: Any = None) -> TshirtDetector:
        from madpad.face import get_detector
        from madpad.pad.persons import get_person_detector

        pname, pparams = parse_component(person, what="--person-detector")
        fname, fparams = parse_component(face, what="--face-detector")
        try:
            pdet = get_person_detector(pname, **pparams)
            fdet = get_detector(fname, **fparams)
        except TypeError as exc:  # unknown keyword for a backend
            raise UsageError(f"bad detector parameter: {exc}") from None
        if isinstance(rules, dict) or rules is None:
            rules = RuleConfig.from_dict(rules)
        return cls(person_detector=pdet, face_detector=fdet, rules=rules, scorer=scorer)

    def analyze(self, image) -> SpatialResult:
        img = as_rgb_uint8(image)
        faces = self.face_detector.detect(img)
        persons = self.person_detector.detect(img)
        res = assess(faces, persons, image_shape=img.shape[:2], config=self.rules)
        if self.scorer is not None and res.status == "ok":
            res.score = float(self.scorer.score(res.features[None, :])[0])
        return res

    def close(self) -> None:
        """Release the detectors' models (they reload on next use)."""
        for d in (self.person_detector, self.face_detector):
            c = getattr(d, "close", None)
            if c is not None:
                c()

    def score(self, images) -> np.ndarray:
        """PAD scores (float64, (n,)), higher = attack; NaN for a failure to acquire (a person but
        no face, ``rules.person_no_face_score``) and for an image without face and person when
        ``rules.no_face_score`` is NaN."""
        return np.array([self.analyze(im).score for im in images], dtype=np.float64)
