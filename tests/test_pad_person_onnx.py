"""ONNX multi-person detectors (CenterNet, NanoDet): decode against the shared reference decoder,
file lookup and checks, nested persons, per-person masks, real one- and two-person photos."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path

from madpad.errors import MadpadError, UsageError
from madpad.pad import get_person_detector
from madpad.pad.person_onnx import MODELS, letterbox, nested_persons, nms, split_mask

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """The shared person models; $MADPAD_SHARED points at their shared folder for the test."""
    d = shared_path("models/person")
    for m in MODELS.values():
        shared_path(f"models/person/{m.file}")
    mp = pytest.MonkeyPatch()
    mp.setenv("MADPAD_SHARED", str(d.parent.parent))
    yield d
    mp.undo()


@pytest.fixture(scope="module")
def portraits(sample_dir):
    import cv2

    from madpad.io import read_image

    a = cv2.resize(read_image(sample_dir / "neutral" / "001_03.jpg"), (450, 450), interpolation=cv2.INTER_AREA)
    b = cv2.resize(read_image(sample_dir / "neutral" / "007_03.jpg"), (450, 450), interpolation=cv2.INTER_AREA)
    return a, np.concatenate([a, b], axis=1)  # one person; two people side by side (900x450)


def test_nms_and_nested_persons_hand_computed():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    # IoU(0, 1) = 81 / 119 = 0.68: the lower-scoring box 0 goes
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.45).tolist() == [1, 2]
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.7).tolist() == [1, 2, 0]
    wearer = [100, 0, 500, 1000]
    print_ = [200, 400, 400, 700]      # inside, area 0.15 of the wearer's, top 40% below its top
    head = [200, 0, 400, 300]          # inside but at the top: the same person's head box, kept
    other = [450, 50, 800, 1000]       # a second person beside, overlapping a little
    assert nested_persons([wearer, print_, head, other]) == [1]
    assert nested_persons([wearer, print_], min_drop=0.5) == []   # 0.4 < 0.5: not "well below"
    assert nested_persons([print_]) == []
    # a head-and-shoulders box has its body below it: a print reaching below the box is still nested
    shoulders = [100, 0, 500, 500]
    low_print = [220, 400, 380, 700]     # 100 of its 300 rows inside the box, all inside its columns
    neighbour = [450, 300, 900, 1000]    # lower in the frame, but mostly beside the box
    assert nested_persons([shoulders, low_print, neighbour]) == [1]


def test_split_mask_gives_each_person_its_own_columns():
    m = np.zeros((100, 100), np.float32)
    m[20:, 5:45] = 1.0   # left person
    m[20:, 55:95] = 1.0  # right person
    m[60:, 40:60] = 1.0  # their bodies touch below
    left, right = split_mask(m, [[10, 20, 40, 60], [60, 20, 90, 60]], margin=0.25)
    # columns up to x = 49 are nearer the left box centre (25) than the right one (75); bands end
    # at 40 + 7.5 = 47.5 and 60 - 7.5 = 52.5
    assert left[:, :48].sum() == m[:, :48].sum() and left[:, 48:].sum() == 0
    assert right[:, 53:].sum() == m[:, 53:].sum() and right[:, :53].sum() == 0
    assert not (left * right).any()
    assert split_mask(m, []) == []


def test_letterbox_scales_into_the_top_left_corner():
    img = np.full((100, 200, 3), 200, np.uint8)
    x, s = letterbox(img, 512)
    assert s == pytest.approx(2.56) and x.shape == (512, 512, 3) and x.dtype == np.float32
    assert x[:256, :512].min() == pytest.approx(200) and x[256:].max() == 0.0


@pytest.mark.parametrize("key", sorted(MODELS))
def test_boxes_match_the_shared_reference_decoder(key, models_dir, portraits, load_script):
    tools = models_dir / "tools"
    if not (tools / "decode_reference.py").is_file():
        pytest.skip("reference decoder not in the shared folder")
    ref_mod = load_script(tools / "decode_reference.py")
    ref = (ref_mod.CenterNetPersons if key == "centernet" else ref_mod.NanoDetPersons)(str(models_dir / MODELS[key].file))
    det = get_person_detector(key, pose=False, segment=False, drop_nested=False)
    one, two = portraits
    for img, n in ((one, 1), (two, 2)):
        got, want = det.boxes(img), ref(img)
        assert len(got) == len(want) == n
        np.testing.assert_allclose(got, want, atol=0.5)  # our cv2 resize vs the reference's numpy bilinear
    assert [len(b) for b in det.boxes_batch([one, two, one])] == [1, 2, 1]


def test_two_people_get_own_boxes_keypoints_and_masks(models_dir, portraits, sample_dir):
    pytest.importorskip("mediapipe")
    _, two = portraits
    people = get_person_detector("nanodet").detect(two)
    assert [p.detector for p in people] == ["nanodet", "nanodet"]
    people = sorted(people, key=lambda p: p.box[0])
    for p, (x0, x1) in zip(people, ((0, 450), (450, 900))):
        cx = (p.box[0] + p.box[2]) / 2
        assert x0 <= cx <= x1
        nose = p.keypoint("nose")
        assert nose is not None and p.box[0] <= nose[0] <= p.box[2]  # its own pose, not the neighbour's
        assert p.mask is not None and p.mask.shape == two.shape[:2] and p.mask[:, x0:x1].sum() > 0.9 * p.mask.sum()
    assert not (people[0].mask * people[1].mask).any()


def test_model_file_lookup_and_checks(tmp_path, monkeypatch, portraits):
    monkeypatch.delenv("MADPAD_SHARED", raising=False)
    det = get_person_detector("nanodet", pose=False, segment=False)
    with pytest.raises(UsageError, match="model_path=FILE.*MADPAD_SHARED"):
        det.detect(portraits[0])
    with pytest.raises(UsageError, match="model_path file not found"):
        get_person_detector("centernet", model_path=str(tmp_path / "none.onnx")).detect(portraits[0])
    fake = tmp_path / "nanodet_coco.onnx"
    fake.write_bytes(b"not an onnx model")
    with pytest.raises(MadpadError, match="sha256") as exc:
        get_person_detector("nanodet", model_path=str(fake)).detect(portraits[0])
    assert "\n" not in str(exc.value)
    with pytest.raises(MadpadError, match="cannot load"):  # verify=false skips the hash, not the loading
        get_person_detector("nanodet", model_path=str(fake), verify=False).detect(portraits[0])
    with pytest.raises(UsageError, match="score_threshold"):
        get_person_detector("nanodet", score_threshold=2.0)


def test_pose_per_box_maps_keypoints_back_and_drops_a_neighbours_pose():
    from madpad.pad.persons import PersonDetection

    class FakePose:
        """Returns fixed keypoints in the coordinates of the crop it is given."""

        def __init__(self, pts):
            self.pts, self.crops = pts, []

        def detect(self, crop):
            self.crops.append(crop.shape[:2])
            return [PersonDetection(box=[0, 0, 1, 1], score=1.0,
                                    keypoints={k: (x, y, 0.9) for k, (x, y) in self.pts.items()})]

    det = get_person_detector("nanodet", segment=False)
    img = np.zeros((400, 600, 3), np.uint8)
    box = np.array([200.0, 100.0, 300.0, 300.0])  # crop with 25 % margins: x 175..325, y 50..350
    det._pose = FakePose({"nose": (75, 100), "left_shoulder": (40, 200), "right_shoulder": (110, 200)})
    kps = det._keypoints(img, box)
    assert det._pose.crops == [(300, 150)]
    assert kps["nose"] == (250.0, 150.0, 0.9) and kps["left_shoulder"] == (215.0, 250.0, 0.9)
    det._pose = FakePose({"nose": (5, 5), "left_shoulder": (2, 40), "right_shoulder": (140, 290)})
    assert det._keypoints(img, box) is None  # most visible keypoints outside the person's box
