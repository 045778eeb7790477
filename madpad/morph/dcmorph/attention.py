"""Decoupled cross-attention with two identities passed explicitly (the identity stream).

Every cross-attention layer of the UNet computes, for query ``q`` from the image features,
text tokens ``c`` and the identity tokens ``a`` (identity A) and ``b`` (identity B)::

    out = attn(q, K(c), V(c)) + scale * ((1 - alpha) * attn(q, K_ip(a), V_ip(a))
                                         + alpha * attn(q, K_ip(b), V_ip(b)))

with madpad's convention **alpha = weight of B** (the same as the landmark morphs; the DCMorph
paper writes the weight of A as alpha -- at the default 0.5 the two agree).
``K_ip`` / ``V_ip`` are the IP-Adapter's own key/value projections of that layer
(``to_k_ip`` / ``to_v_ip``, loaded from the FaceID checkpoint). The identities travel in an
:class:`IdentityCondition` (token sets + explicit weights) given to the UNet as
``cross_attention_kwargs={"identity": cond}``: nothing is inferred from the token count of
``encoder_hidden_states`` (no "77 + 4 + 4 = 85 tokens means morph" rule). With
``identity=None`` or ``scale == 0`` the layer is plain text cross-attention, the same
computation as diffusers' ``AttnProcessor2_0``; with one identity of weight 1 it is the same
computation as diffusers' ``IPAdapterAttnProcessor2_0`` with that identity (both are tested).

Self-attention layers get :class:`DualIdentityAttnProcessor` objects without identity weights,
so the ``identity`` keyword is accepted everywhere (diffusers passes cross_attention_kwargs to
every attention layer). ``slice_size`` computes the attention in chunks of query rows (attention
slicing for small GPUs; diffusers' own ``set_attention_slice`` would replace these processors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from madpad.io import optional_import


@dataclass(frozen=True)
class IdentityCondition:
    """Identity tokens for one UNet call.

    ``tokens``: one tensor (batch, n_tokens, cross_attention_dim) per identity (already
    projected, e.g. FaceID's 4 tokens); ``weights``: the mixing weight of each identity
    (``(1 - alpha, alpha)`` for a morph of A and B); ``scale``: the IP-Adapter scale multiplying
    the weighted sum.
    """

    tokens: tuple
    weights: tuple
    scale: float = 1.0

    def __post_init__(self):
        if len(self.tokens) != len(self.weights):
            raise ValueError(f"IdentityCondition: {len(self.tokens)} token sets but {len(self.weights)} weights")
        if len(self.tokens) == 0:
            raise ValueError("IdentityCondition needs at least one identity (use identity=None for none)")


def morph_condition(tokens_a, tokens_b, alpha: float, *, scale: float = 1.0) -> IdentityCondition:
    """The dual-identity condition ``(1 - alpha) * A + alpha * B`` (alpha = weight of B)."""
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    return IdentityCondition(tokens=(tokens_a, tokens_b), weights=(1.0 - alpha, alpha), scale=float(scale))


def _torch_modules():
    torch = optional_import("torch", extra="torch", purpose="DCMorph attention")
    return torch, torch.nn, torch.nn.functional


def _sdpa(F, query, key, value, attn_mask, slice_size: int | None):
    if not slice_size or query.shape[2] <= slice_size:
        return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, dropout_p=0.0, is_causal=False)
    import torch

    chunks = []
    for start in range(0, query.shape[2], slice_size):
        q = query[:, :, start:start + slice_size]
        m = None
        if attn_mask is not None:
            m = attn_mask[:, :, start:start + slice_size] if attn_mask.shape[2] > 1 else attn_mask
        chunks.append(F.scaled_dot_product_attention(q, key, value, attn_mask=m, dropout_p=0.0, is_causal=False))
    return torch.cat(chunks, dim=2)


def _make_processor_class():
    torch, nn, F = _torch_modules()

    class DualIdentityAttnProcessor(nn.Module):
        """Attention processor: text attention plus weighted identity attentions.

        ``hidden_size``/``cross_attention_dim`` None -> a processor without identity weights
        (self-attention layers, or cross-attention before an adapter is loaded).
        """

        def __init__(self, hidden_size: int | None = None, cross_attention_dim: int | None = None,
                     *, slice_size: int | None = None):
            super().__init__()
            self.hidden_size = hidden_size
            self.cross_attention_dim = cross_attention_dim
            self.slice_size = slice_size
            if hidden_size is not None and cross_attention_dim is not None:
                self.to_k_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
                self.to_v_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
            else:
                self.to_k_ip = None
                self.to_v_ip = None

        @property
        def has_identity_weights(self) -> bool:
            return self.to_k_ip is not None

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                     identity: IdentityCondition | None = None, **kwargs):
            if kwargs:
                unknown = sorted(kwargs)
                raise TypeError(f"DualIdentityAttnProcessor got unexpected keyword arguments {unknown}")
            if isinstance(encoder_hidden_states, tuple):
                raise TypeError("DualIdentityAttnProcessor takes identities via identity=IdentityCondition, "
                                "not as a tuple in encoder_hidden_states")
            residual = hidden_states
            if attn.spatial_norm is not None:
                hidden_states = attn.spatial_norm(hidden_states, temb)
            input_ndim = hidden_states.ndim
            if input_ndim == 4:
                batch_size, channel, height, width = hidden_states.shape
                hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
            batch_size, sequence_length, _ = (
                hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
            )
            if attention_mask is not None:
                attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
                attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])
            if attn.group_norm is not None:
                hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

            query = attn.to_q(hidden_states)
            is_cross = encoder_hidden_states is not None
            if encoder_hidden_states is None:
                encoder_hidden_states = hidden_states
            elif attn.norm_cross:
                encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
            key = attn.to_k(encoder_hidden_states)
            value = attn.to_v(encoder_hidden_states)
            inner_dim = key.shape[-1]
            head_dim = inner_dim // attn.heads

            def heads(x):
                return x.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)

            def merge(x):
                return x.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim).to(query.dtype)

            query = heads(query)
            key, value = heads(key), heads(value)
            if attn.norm_q is not None:
                query = attn.norm_q(query)
            if attn.norm_k is not None:
                key = attn.norm_k(key)
            hidden_states = merge(_sdpa(F, query, key, value, attention_mask, self.slice_size))

            if identity is not None and is_cross and self.has_identity_weights and float(identity.scale) != 0.0:
                mixed = None
                for tokens, weight in zip(identity.tokens, identity.weights):
                    weight = float(weight)
                    if weight == 0.0:
                        continue
                    if tokens.shape[0] != batch_size:
                        raise ValueError(f"identity tokens have batch {tokens.shape[0]}, hidden states {batch_size}")
                    tokens = tokens.to(dtype=query.dtype)
                    ip = merge(_sdpa(F, query, heads(self.to_k_ip(tokens)), heads(self.to_v_ip(tokens)), None,
                                     self.slice_size))
                    term = ip if weight == 1.0 else weight * ip
                    mixed = term if mixed is None else mixed + term
                if mixed is not None:
                    hidden_states = hidden_states + float(identity.scale) * mixed

            hidden_states = attn.to_out[0](hidden_states)
            hidden_states = attn.to_out[1](hidden_states)
            if input_ndim == 4:
                hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
            if attn.residual_connection:
                hidden_states = hidden_states + residual
            return hidden_states / attn.rescale_output_factor

    return DualIdentityAttnProcessor


_PROCESSOR_CLASS = None


def processor_class():
    """The :class:`DualIdentityAttnProcessor` class (built on first use: torch is imported lazily)."""
    global _PROCESSOR_CLASS
    if _PROCESSOR_CLASS is None:
        _PROCESSOR_CLASS = _make_processor_class()
    return _PROCESSOR_CLASS


def _hidden_size(unet, name: str) -> int:
    cfg = unet.config
    if name.startswith("mid_block"):
        return cfg.block_out_channels[-1]
    if name.startswith("up_blocks"):
        block_id = int(name[len("up_blocks."):].split(".")[0])
        return list(reversed(cfg.block_out_channels))[block_id]
    if name.startswith("down_blocks"):
        block_id = int(name[len("down_blocks."):].split(".")[0])
        return cfg.block_out_channels[block_id]
    raise ValueError(f"cannot tell the hidden size of attention layer {name!r}")


def install_identity_processors(unet, *, slice_size: int | None = None) -> dict[str, Any]:
    """Give every attention layer of ``unet`` a :class:`DualIdentityAttnProcessor`.

    Cross-attention layers (``...attn2.processor``) get identity key/value projections,
    initialised randomly here and overwritten by :func:`madpad.morph.dcmorph.faceid.load_faceid`.
    Returns the processors by layer name, in ``unet.attn_processors`` order (the order the
    FaceID checkpoint numbers its layers in).
    """
    cls = processor_class()
    cross_dim = unet.config.cross_attention_dim
    if isinstance(cross_dim, (list, tuple)):
        raise ValueError("UNets with a per-block cross_attention_dim are not supported")
    procs = {}
    for name in unet.attn_processors.keys():
        if name.endswith("attn1.processor"):
            procs[name] = cls(slice_size=slice_size)
        else:
            procs[name] = cls(_hidden_size(unet, name), cross_dim, slice_size=slice_size)
    unet.set_attn_processor(procs)
    for proc in procs.values():  # new weights follow the UNet's device and dtype
        if proc.has_identity_weights:
            proc.to(device=unet.device, dtype=unet.dtype)
    return dict(unet.attn_processors)


def set_slice_size(unet, slice_size: int | None) -> None:
    """Set attention slicing (query rows per chunk; None = off) on our processors."""
    for proc in unet.attn_processors.values():
        if hasattr(proc, "slice_size"):
            proc.slice_size = slice_size


def identity_layers(unet) -> list[tuple[str, Any]]:
    """(name, processor) of the layers that carry identity weights, in checkpoint order."""
    return [(n, p) for n, p in unet.attn_processors.items() if getattr(p, "has_identity_weights", False)]


__all__ = ["IdentityCondition", "morph_condition", "processor_class", "install_identity_processors",
           "set_slice_size", "identity_layers"]

