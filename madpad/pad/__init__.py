"""T-shirt presentation attack detection (PAD).

An attacker wears a T-shirt printed with another person's face; face detectors find the printed
face and face recognition matches it. :mod:`madpad.pad` combines a face detector
(:mod:`madpad.face`) with a person detector (:mod:`madpad.pad.persons`) and checks the spatial
layout (:mod:`madpad.pad.spatial`): a genuine face sits in the head region of a person, above the
shoulder line. Scores: **higher = more likely a presentation attack**; classify attack when
``score >= threshold``.

* :func:`get_person_detector` / :data:`PERSON_DETECTORS` (interface :class:`PersonDetector`):
  ``nanodet`` (default), ``centernet`` (every person; :mod:`madpad.pad.person_onnx`),
  ``mediapipe_pose``, ``mediapipe_selfie``, ``hog``, ``yolo``;
* :func:`assess` + :class:`RuleConfig`: the rule-based score with its explanation;
* :class:`LearnedScorer` / :func:`fit_scorer`: logistic regression over the same features;
* :class:`TshirtDetector`: everything together for one image;
* :mod:`madpad.pad.synth`: synthetic T-shirt attack generator (``python -m madpad.pad synth``);
  its image composition (canvas, torso, print, occluders, pairs) is :mod:`madpad.pad.synth_scene`.

Nothing heavy is imported here; backends import their libraries on first use.
"""

from madpad.pad.tshirt import TshirtDetector, parse_component
from madpad.pad.learned import LearnedScorer, fit_scorer
from madpad.pad.persons import (
                                PERSON_DETECTORS,
                                POSE_KEYPOINT_NAMES,
                                PersonDetection,
                                PersonDetector,
                                get_person_detector,
                                list_person_detectors,
)
from madpad.pad.spatial import FEATURE_NAMES, RULES, RuleConfig, SpatialResult, assess

__all__ = [
                                "FEATURE_NAMES",
                                "PERSON_DETECTORS",
                                "POSE_KEYPOINT_NAMES",
                                "RULES",
                                "LearnedScorer",
                                "PersonDetection",
                                "PersonDetector",
                                "RuleConfig",
                                "SpatialResult",
                                "TshirtDetector",
                                "assess",
                                "fit_scorer",
                                "get_person_detector",
                                "list_person_detectors",
                                "parse_component",
]
