"""The dual-identity attention processor against diffusers' own processors and a hand computation."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from diffusers.models.attention_processor import Attention, AttnProcessor2_0, IPAdapterAttnProcessor2_0  # noqa: E402

from madpad.morph.dcmorph.attention import IdentityCondition, morph_condition, processor_class  # noqa: E402

HIDDEN, CROSS, HEADS, DIM_HEAD = 16, 12, 2, 8


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    attn = Attention(query_dim=HIDDEN, cross_attention_dim=CROSS, heads=HEADS, dim_head=DIM_HEAD).eval()
    ours = processor_class()(HIDDEN, CROSS)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 10, HIDDEN, generator=g)
    text = torch.randn(2, 5, CROSS, generator=g)
    tok_a = torch.randn(2, 4, CROSS, generator=g)
    tok_b = torch.randn(2, 4, CROSS, generator=g)
    return attn, ours, x, text, tok_a, tok_b


def _diffusers_ip(ours, scale):
    ref = IPAdapterAttnProcessor2_0(hidden_size=HIDDEN, cross_attention_dim=CROSS, num_tokens=(4,), scale=scale)
    with torch.no_grad():
        ref.to_k_ip[0].weight.copy_(ours.to_k_ip.weight)
        ref.to_v_ip[0].weight.copy_(ours.to_v_ip.weight)
    return ref


@pytest.mark.parametrize("scale", [1.0, 0.6])
def test_all_weight_on_one_identity_equals_diffusers_single_identity_exactly(setup, scale):
    attn, ours, x, text, tok_a, tok_b = setup
    ref = _diffusers_ip(ours, scale)
    with torch.no_grad():
        # paper's alpha = 1 (all weight on A) is madpad's alpha = 0 (alpha = weight of B)
        got_a = ours(attn, x, text, identity=morph_condition(tok_a, tok_b, 0.0, scale=scale))
        want_a = ref(attn, x, (text, [tok_a]))
        got_b = ours(attn, x, text, identity=morph_condition(tok_a, tok_b, 1.0, scale=scale))
        want_b = ref(attn, x, (text, [tok_b]))
    assert torch.equal(got_a, want_a)
    assert torch.equal(got_b, want_b)
    assert not torch.allclose(got_a, got_b)  # the identities matter


def test_mixture_matches_hand_computed_attention(setup):
    attn, ours, x, text, tok_a, tok_b = setup
    alpha, scale = 0.3, 0.8

    def heads(t):
        return t.view(t.shape[0], -1, HEADS, DIM_HEAD).transpose(1, 2)

    def attend(q, k, v):
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(DIM_HEAD), dim=-1)
        return (w @ v).transpose(1, 2).reshape(x.shape[0], -1, HEADS * DIM_HEAD)

    with torch.no_grad():
        q = heads(attn.to_q(x))
        text_part = attend(q, heads(attn.to_k(text)), heads(attn.to_v(text)))
        ip_a = attend(q, heads(ours.to_k_ip(tok_a)), heads(ours.to_v_ip(tok_a)))
        ip_b = attend(q, heads(ours.to_k_ip(tok_b)), heads(ours.to_v_ip(tok_b)))
        mixed = text_part + scale * ((1 - alpha) * ip_a + alpha * ip_b)
        want = attn.to_out[1](attn.to_out[0](mixed))
        got = ours(attn, x, text, identity=morph_condition(tok_a, tok_b, alpha, scale=scale))
    assert torch.allclose(got, want, atol=1e-5)


def test_swapping_identities_and_alpha_gives_the_same_output(setup):
    attn, ours, x, text, tok_a, tok_b = setup
    with torch.no_grad():
        for alpha in (0.25, 0.5):  # exact in binary: identical weights, identical output
            assert torch.equal(ours(attn, x, text, identity=morph_condition(tok_a, tok_b, alpha)),
                               ours(attn, x, text, identity=morph_condition(tok_b, tok_a, 1 - alpha)))
        got = ours(attn, x, text, identity=morph_condition(tok_a, tok_b, 0.3))
        swapped = ours(attn, x, text, identity=morph_condition(tok_b, tok_a, 0.7))
    assert torch.allclose(got, swapped, atol=1e-6)


def test_text_path_unchanged_without_identity_or_at_scale_zero(setup):
    attn, ours, x, text, tok_a, tok_b = setup
    with torch.no_grad():
        want = AttnProcessor2_0()(attn, x, text)
        assert torch.equal(ours(attn, x, text), want)
        assert torch.equal(ours(attn, x, text, identity=None), want)
        assert torch.equal(ours(attn, x, text, identity=morph_condition(tok_a, tok_b, 0.5, scale=0.0)), want)
        # self-attention (no encoder states): identity tokens are ignored
        self_attn = Attention(query_dim=HIDDEN, heads=HEADS, dim_head=DIM_HEAD).eval()
        assert torch.equal(ours(self_attn, x, identity=morph_condition(tok_a, tok_b, 0.5)),
                           AttnProcessor2_0()(self_attn, x))
        # identity scale 0 != identity scale 1: the test above is not vacuous
        assert not torch.allclose(ours(attn, x, text, identity=morph_condition(tok_a, tok_b, 0.5)), want)


def test_processor_without_identity_weights_is_plain_attention(setup):
    attn, _, x, text, tok_a, tok_b = setup
    plain = processor_class()()
    assert not plain.has_identity_weights
    with torch.no_grad():
        assert torch.equal(plain(attn, x, text, identity=morph_condition(tok_a, tok_b, 0.5)),
                           AttnProcessor2_0()(attn, x, text))


def test_attention_slicing_gives_the_same_result(setup):
    attn, ours, x, text, tok_a, tok_b = setup
    cond = morph_condition(tok_a, tok_b, 0.4)
    with torch.no_grad():
        full = ours(attn, x, text, identity=cond)
        ours.slice_size = 3
        try:
            sliced = ours(attn, x, text, identity=cond)
        finally:
            ours.slice_size = None
    assert torch.allclose(full, sliced, atol=1e-6)


def test_bad_identity_inputs_raise(setup):
    attn, ours, x, text, tok_a, tok_b = setup
    with pytest.raises(ValueError, match="weights"):
        IdentityCondition(tokens=(tok_a, tok_b), weights=(1.0,))
    with pytest.raises(ValueError, match="alpha must be in"):
        morph_condition(tok_a, tok_b, 1.5)
    with pytest.raises(TypeError, match="identity=IdentityCondition"):
        ours(attn, x, (text, [tok_a]))
    with pytest.raises(ValueError, match="batch"):
        ours(attn, x, text, identity=morph_condition(tok_a[:1], tok_b[:1], 0.5))
