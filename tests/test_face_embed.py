"""Face recognition embedders, embed_batch statuses and the embedding cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from madpad.errors import FaceNotFoundError, UnknownComponentError, UsageError
from madpad.face import (
    EmbeddingCache,
    embed_batch,
    get_embedder,
    list_embedders,
    similarity_matrix,
)
from madpad.io import file_sha256, read_image

SUBJECTS = ["001", "004", "007", "011", "017", "020"]


@pytest.fixture(scope="module")
def dlib_embedder():
    return get_embedder("dlib")


@pytest.fixture(scope="module")
def sample_embeddings(sample_dir, dlib_embedder):
    neutral = [sample_dir / "neutral" / f"{s}_03.jpg" for s in SUBJECTS]
    smiling = [sample_dir / "smiling" / f"{s}_08.jpg" for s in SUBJECTS]
    return dlib_embedder.embed(neutral), dlib_embedder.embed(smiling)


def test_registry_names_and_unknown():
    assert set(list_embedders()) >= {"dlib", "arcface_onnx", "open_clip"}
    with pytest.raises(UnknownComponentError, match="Did you mean 'dlib'"):
        get_embedder("dlb")


def test_dlib_embeddings_are_unit_norm_float32(sample_embeddings, dlib_embedder):
    N, _ = sample_embeddings
    assert N.shape == (len(SUBJECTS), 128) and N.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(N, axis=1), 1.0, atol=1e-5)
    assert dlib_embedder.dim == 128


def test_dlib_same_subject_scores_higher_than_other_subjects(sample_embeddings):
    N, S = sample_embeddings
    M = similarity_matrix(N, S)  # rows: neutral reference, columns: smiling probe
    genuine = np.diag(M)
    for i, s in enumerate(SUBJECTS):
        impostors = np.delete(M[i], i)
        # the same person (other expression) beats every other person by a clear margin
        assert genuine[i] > impostors.max() + 0.03, (s, genuine[i], impostors.max())
    assert genuine.min() > 0.95


def test_dlib_embedder_rejects_non_dlib_landmarks():
    with pytest.raises(ValueError, match="landmarker must be 'dlib68' or 'dlib5'"):
        get_embedder("dlib", landmarker="mediapipe_mesh")


@pytest.mark.parametrize("params", [{"padding": -0.1}, {"padding": float("nan")}, {"num_jitters": -1}])
def test_dlib_embedder_rejects_settings_dlib_would_abort_on(params):
    # dlib's own check fires only at the first embedding, as a multi-line C++ assertion
    with pytest.raises(ValueError, match=r"num_jitters >= 0 and a finite padding >= 0"):
        get_embedder("dlib", **params)
    assert get_embedder("dlib", padding=0.0).padding == 0.0  # the edge itself is dlib's valid range


def test_dlib5_landmarks_give_close_embedding(sample_dir, sample_embeddings):
    e5 = get_embedder("dlib", landmarker="dlib5")
    v = e5.embed([sample_dir / "neutral" / "001_03.jpg"])
    N, _ = sample_embeddings
    assert float(v[0] @ N[0]) > 0.97


def test_embed_raises_naming_the_image(dlib_embedder, sample_dir):
    with pytest.raises(FaceNotFoundError, match="image 1: no face detected"):
        dlib_embedder.embed([sample_dir / "neutral" / "001_03.jpg", np.zeros((100, 100, 3), np.uint8)])


def test_embed_batch_statuses_and_cache(tmp_path, sample_dir, dlib_embedder, monkeypatch):
    good = sample_dir / "neutral" / "004_03.jpg"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG garbage")
    blank = np.full((300, 300, 3), 90, np.uint8)
    calls = []
    original = type(dlib_embedder).embed_one

    def counting(self, image):
        calls.append(image)
        return original(self, image)

    monkeypatch.setattr(type(dlib_embedder), "embed_one", counting)
    cache = EmbeddingCache(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing created until used
    items = [good, bad, blank, tmp_path / "missing.jpg", read_image(good)]
    b1 = embed_batch(items, dlib_embedder, cache=cache)
    assert b1.status == ["ok", "unreadable", "no_face", "unreadable", "ok"]
    assert "broken.png" in b1.error[1] and "missing.jpg" in b1.error[3]
    assert np.all(np.isnan(b1.embeddings[1:4])) and not np.any(np.isnan(b1.embeddings[[0, 4]]))
    np.testing.assert_allclose(b1.embeddings[0], b1.embeddings[4], atol=1e-6)  # same pixels, same embedding
    n_first = len(calls)
    assert n_first == 4  # all but the missing file, which already fails while hashing
    assert b1.cached == [False] * 5

    b2 = embed_batch(items, dlib_embedder, cache=cache)
    assert len(calls) == n_first + 2  # only the broken file and the blank image again (failures are not cached)
    assert b2.cached == [True, False, False, False, True]
    np.testing.assert_array_equal(b2.embeddings[0], b1.embeddings[0])
    assert b2.status == b1.status
    files = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 2  # file-bytes hash and array hash
    model_json = next((tmp_path / "cache").rglob("model.json"))
    assert json.loads(model_json.read_text())["model_id"] == dlib_embedder.id

    # a different model id does not hit the other model's entries
    other = get_embedder("dlib", num_jitters=1)
    assert other.id != dlib_embedder.id
    assert cache.get(file_sha256(good), dlib_embedder.id) is not None
    assert cache.get(file_sha256(good), other.id) is None


def test_embedding_cache_needs_a_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MADPAD_CACHE", raising=False)
    with pytest.raises(UsageError, match="MADPAD_CACHE"):
        EmbeddingCache()
    monkeypatch.setenv("MADPAD_CACHE", str(tmp_path / "c"))
    c = EmbeddingCache()
    assert c.directory == tmp_path / "c" / "embeddings" and not c.directory.exists()
    with pytest.raises(ValueError, match="hex digest"):
        c.get("../../etc", "m")


def test_error_if_multiple_policy_status(sample_dir, tmp_path):
    img = read_image(sample_dir / "neutral" / "007_03.jpg")
    two = np.concatenate([img, img], axis=1)
    b = embed_batch([two], get_embedder("dlib", policy="error_if_multiple"))
    assert b.status == ["multiple_faces"] and "2 faces" in b.error[0]
    b = embed_batch([two], get_embedder("dlib"))  # largest (equal sizes: the first)
    assert b.status == ["ok"]


# --------------------------------------------------------------------------- ArcFace ONNX
@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 32),
    ).eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny_arcface.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 112, 112),), str(path), dynamo=False, input_names=["data"],
                      output_names=["embedding"], dynamic_axes={"data": {0: "n"}, "embedding": {0: "n"}})
    return path, net


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_arcface_onnx_runs_the_exported_model(tiny_onnx, sample_dir):
    import torch

    path, net = tiny_onnx
    emb = get_embedder("arcface_onnx", model_path=path)
    assert emb.dim == 32 and emb.input_size == 112
    img_path = sample_dir / "neutral" / "011_03.jpg"
    v = emb.embed([img_path])
    assert v.shape == (1, 32) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v), 1.0, atol=1e-5)
    # same numbers as running the torch net on the ArcFace-aligned, (x-127.5)/127.5 scaled RGB crop
    a = emb.analyze(img_path)
    crop = emb.align(a.image, a)
    x = torch.from_numpy(((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None].copy())
    ref = net(x).detach().numpy()[0]
    np.testing.assert_allclose(v[0], ref / np.linalg.norm(ref), atol=1e-4)
    # BGR option changes the input and so the output; embed_aligned batch path agrees with embed
    bgr = get_embedder("arcface_onnx", model_path=path, color="BGR")
    assert bgr.id != emb.id
    assert not np.allclose(bgr.embed([img_path]), v, atol=1e-4)
    np.testing.assert_allclose(emb.embed_aligned([crop, crop]), np.vstack([v, v]), atol=1e-5)


def test_arcface_onnx_needs_model_path(tmp_path):
    with pytest.raises(Exception, match="model_path"):
        get_embedder("arcface_onnx")
    with pytest.raises(FileNotFoundError, match="none.onnx"):
        get_embedder("arcface_onnx", model_path=tmp_path / "none.onnx")


# --------------------------------------------------------------------------- open_clip
def test_open_clip_hook_with_tiny_random_config(tmp_path, sample_dir):
    pytest.importorskip("open_clip")
    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1},
    }
    (tmp_path / "madpad-tiny-clip.json").write_text(json.dumps(cfg))
    emb = get_embedder("open_clip", model_name="madpad-tiny-clip", model_config=tmp_path / "madpad-tiny-clip.json")
    v = emb.embed([sample_dir / "neutral" / "017_03.jpg", sample_dir / "smiling" / "017_08.jpg"])
    assert v.shape == (2, 16) and emb.dim == 16
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert emb.id.startswith("open_clip:madpad-tiny-clip:random-init")
    whole = get_embedder("open_clip", model_name="madpad-tiny-clip", crop="none")
    assert whole.embed([np.zeros((50, 50, 3), np.uint8)]).shape == (1, 16)  # no face needed
