"""slerp of noise latents: endpoints, unit-norm behaviour, symmetry, parallel fallback, errors."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from madpad.morph.dcmorph.slerp import PARALLEL_EPS, lerp, mix_latents, slerp, slerp_rows  # noqa: E402


def _unit(v):
    return v / v.norm()


def test_endpoints_return_the_inputs():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)


def test_hand_computed_quarter_circle():
    # a=(1,0), b=(0,1): omega = pi/2, slerp(t) = (cos(t pi/2), sin(t pi/2))
    a, b = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    for t in (0.25, 0.5, 0.8):
        expected = torch.tensor([math.cos(t * math.pi / 2), math.sin(t * math.pi / 2)], dtype=torch.float64)
        assert torch.allclose(slerp(a, b, t), expected, atol=1e-12)
    # lerp of the same pair at 0.5 has norm 1/sqrt(2): slerp keeps 1
    assert lerp(a, b, 0.5).norm().item() == pytest.approx(1 / math.sqrt(2))


def test_unit_vectors_stay_on_the_unit_sphere():
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        a = _unit(torch.randn(256, generator=g, dtype=torch.float64))
        b = _unit(torch.randn(256, generator=g, dtype=torch.float64))
        for t in (0.1, 0.5, 0.9):
            assert slerp(a, b, t).norm().item() == pytest.approx(1.0, abs=1e-12)
            # and the angle to a is t * omega
            omega = torch.arccos((a * b).sum())
            angle = torch.arccos((slerp(a, b, t) * a).sum().clamp(-1, 1)).item()
            assert angle == pytest.approx(t * omega.item(), abs=1e-9)


def test_symmetry():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    for t in (0.0, 0.3, 0.5, 0.71, 1.0):
        assert torch.allclose(slerp(a, b, t), slerp(b, a, 1.0 - t), atol=1e-6)


def test_nearly_parallel_falls_back_to_lerp():
    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    b = a * 2.0 + 1e-9  # parallel: slerp's sin(omega) ~ 0
    out = slerp(a, b, 0.25)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, lerp(a, b, 0.25), atol=1e-12)
    # just outside the threshold: proper slerp, finite and different from lerp
    c = torch.tensor([1.0, 0.0], dtype=torch.float64)
    angle = math.acos(1 - 10 * PARALLEL_EPS)
    d = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)
    s = slerp(c, d, 0.5)
    assert s.norm().item() == pytest.approx(1.0, abs=1e-12)
    assert lerp(c, d, 0.5).norm().item() < 1.0


def test_per_item_batch_dim():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(3, 16, generator=g), torch.randn(3, 16, generator=g)
    out = slerp(a, b, 0.4, batch_dim=0)
    for i in range(3):
        assert torch.allclose(out[i], slerp(a[i], b[i], 0.4), atol=1e-6)


def test_dtype_is_kept():
    a, b = torch.randn(8).half(), torch.randn(8).half()
    assert slerp(a, b, 0.5).dtype == torch.float16


def test_bad_inputs_raise_clear_errors():
    a = torch.ones(4)
    with pytest.raises(ValueError, match="shapes differ"):
        slerp(a, torch.ones(5), 0.5)
    with pytest.raises(ValueError, match="opposite directions"):
        slerp(a, -a, 0.5)
    with pytest.raises(ValueError, match="zero vector"):
        slerp(a, torch.zeros(4), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        slerp(a, torch.tensor([1.0, float("nan"), 0.0, 0.0]), 0.5)
    with pytest.raises(TypeError):
        slerp([1.0], [0.0], 0.5)


def test_row_slerp_hand_computed_per_row():
    """Each row of the last dimension gets its own angle; parallel, opposite and zero rows are lerped."""
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-2.0, 0.0], [0.0, 3.0], [1.0, 1.0]], dtype=torch.float64)
    out = slerp_rows(a, b, 0.5)
    h = math.sqrt(0.5)
    # row 0: quarter circle -> (cos 45, sin 45); row 1: identical -> itself; row 2: opposite -> lerp -> 0;
    # row 3: 90 degrees, norms 1 and 3 -> sin(45)/sin(90) * (a + b); row 4: zero row -> lerp
    want = torch.tensor([[h, h], [1.0, 0.0], [0.0, 0.0], [h, 3 * h], [0.5, 0.5]], dtype=torch.float64)
    assert torch.allclose(out, want, atol=1e-12)
    # the flat slerp of the same 10 numbers is one great circle, a different answer
    flat = slerp(a + 0.1, b + 0.1, 0.5)
    assert not torch.allclose(slerp_rows(a + 0.1, b + 0.1, 0.5), flat, atol=1e-3)


def test_row_and_flat_modes_of_mix_latents():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 4, 16, 16, generator=g)
    assert torch.equal(mix_latents(a, b, 0.3, mode="flat"), slerp(a, b, 0.3))
    rows = mix_latents(a, b, 0.3, mode="rows")
    assert torch.allclose(rows[0, 2, 5], slerp(a[0, 2, 5], b[0, 2, 5], 0.3), atol=1e-6)  # one row = one vector
    assert torch.allclose(mix_latents(a, b, 0.0, mode="rows"), a, atol=1e-6)
    assert rows.dtype == a.dtype
    with pytest.raises(ValueError, match="slerp mode"):
        mix_latents(a, b, 0.5, mode="columns")
