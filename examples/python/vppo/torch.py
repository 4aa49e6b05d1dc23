"""vppo.torch - VPPO's loss with torch autograd (CPU tensors; CUDA tensors with the CUDA build).

    import torch, vppo, vppo.torch as vt
    logp, entropy = vt.logprobs(logits, ids)            # backward into the logits
    loss, info = vt.step(logp, logp_old, logp_aug, adv_seq, mask=response_mask)
    loss.backward()                                      # d loss / d logits

Every function takes padded [B, L] per-token tensors (B responses of L positions, `mask`
the response mask) or flat [N] ones with explicit `offsets` (B+1 integers, a packed
batch). Gradients are the library's analytic ones (vppo_policy_loss's dlogp,
vppo_logprobs_backward's dlogits), computed in the forward pass and scaled by the
incoming gradient in the backward pass.

Devices: CPU tensors go through vppo.h; CUDA tensors through vppo_cuda (vppo.cuda_lib,
built by pip when nvcc was found) on the tensor's current stream, each call synchronous
with that stream. All tensors of one call must be on one device.

Conversions (nothing is rounded behind your back): float inputs must be float32 or a type
that widens to it exactly (float16, bfloat16; float64 only when every value is exactly a
float32, else ValueError); token ids any integer type (int64 -> int32 when every id fits);
masks any type, nonzero = 1. Logits are passed as they are (float32, float16, bfloat16).
Outputs: per-token tensors float32; the loss is a 0-dim tensor of logp's dtype (the exact
double values are in the returned dict); gradients take each input's dtype (the float32
gradient rounded, as autograd does, for bfloat16/float16 inputs).
"""
import ctypes

import numpy as np
import torch

import vppo as _v

__all__ = ["logprobs", "policy_loss", "step", "prepare", "rollout_correction", "dependency_sampled"]

_F = ctypes.c_float
_LOGITS_DTYPES = {torch.float32: _v.F32, torch.bfloat16: _v.BF16, torch.float16: _v.F16}


def _ptr(t, ctype):
    return None if t is None else ctypes.cast(t.data_ptr(), ctypes.POINTER(ctype))


def _device_of(*tensors):
    devs = {t.device for t in tensors if isinstance(t, torch.Tensor)}
    if len(devs) != 1:
        raise ValueError("vppo.torch: the tensors of one call must be on one device, got %s" % sorted(map(str, devs)))
    dev = devs.pop()
    if dev.type == "cuda" and _v.cuda_lib is None:
        raise RuntimeError("vppo.torch: CUDA tensors need the CUDA library, which is %s" % _v.cuda_error)
    if dev.type not in ("cpu", "cuda"):
        raise TypeError("vppo.torch: tensors on %s are not supported (CPU or CUDA)" % dev)
    return dev


def _stream(dev):
    return ctypes.c_void_p(torch.cuda.current_stream(dev).cuda_stream)


def _call(dev, name, *args):
    if dev.type == "cuda":
        _v._call_cuda(name, *args, _stream(dev))
    else:
        _v._call(name, *args)


def _f32(x, name, dev, n=None):
    """x as a contiguous flat float32 tensor on dev, converted only when exact (None stays None)."""
    if x is None:
        return None
    if not isinstance(x, torch.Tensor):
        x = torch.from_numpy(_v._flat(x, np.float32, name).copy())
    x = x.detach()
    if x.dtype != torch.float32:
        if not x.is_floating_point() and x.dtype != torch.bool:
            y = x.to(torch.float32)
            if not torch.equal(y.to(x.dtype), x):
                raise ValueError("vppo.torch: %s (%s) is not exactly float32" % (name, x.dtype))
            x = y
        elif x.dtype in (torch.float16, torch.bfloat16, torch.bool):
            x = x.to(torch.float32)
        else:
            y = x.to(torch.float32)
            if not torch.equal(torch.nan_to_num(y.to(x.dtype), nan=0.5), torch.nan_to_num(x, nan=0.5)):
                raise ValueError("vppo.torch: %s (%s) is not exactly float32; cast it yourself if the rounding is "
                                 "intended" % (name, x.dtype))
            x = y
    x = x.to(dev).contiguous().reshape(-1)
    if n is not None and x.numel() < n:
        raise ValueError("vppo.torch: %s has %d elements, the sequences need %d" % (name, x.numel(), n))
    return x


def _u8(x, dev):
    if x is None:
        return None
    if not isinstance(x, torch.Tensor):
        x = torch.from_numpy(np.asarray(x))
    return (x.detach() != 0).to(device=dev, dtype=torch.uint8).contiguous().reshape(-1)


class _Seqs:
    """vppo_seqs for a call: offsets from `offsets` (B+1 integers, any array) or from the
    [B, L] shape of `like`; mask as uint8 on the device. Keeps its tensors alive."""

    def __init__(self, like, offsets, mask, dev):
        if offsets is None:
            if like.dim() != 2:
                raise ValueError("vppo.torch: give offsets for a flat batch, or [B, L] tensors (got shape %s)"
                                 % (tuple(like.shape),))
            offsets = _v.offsets_uniform(like.shape[0], like.shape[1])
        elif isinstance(offsets, torch.Tensor):
            offsets = offsets.detach().cpu()   # its last entry is needed here (a sync for a CUDA tensor)
        host = _v._flat(offsets, np.int64, "offsets")
        if host.size < 1:
            raise ValueError("vppo.torch: offsets needs at least one entry (B+1 for B sequences)")
        self.n_seqs, self.end = host.size - 1, int(host[-1])
        self.offsets = torch.from_numpy(host.copy()).to(dev)
        self.mask = _u8(mask, dev)
        if self.mask is not None and self.mask.numel() < self.end:
            raise ValueError("vppo.torch: mask has %d elements, the sequences need %d" % (self.mask.numel(), self.end))
        self.c = _v.Seqs(self.n_seqs, _ptr(self.offsets, ctypes.c_int64), _ptr(self.mask, ctypes.c_uint8))

    @property
    def ref(self):
        return ctypes.byref(self.c)


def _logits_arg(x, temperature):
    if x.dim() != 2:
        raise ValueError("vppo.torch: logits must be 2-D [rows, vocab], not %s" % (tuple(x.shape),))
    if x.dtype not in _LOGITS_DTYPES:
        raise TypeError("vppo.torch: logits dtype %s: use float32, bfloat16 or float16" % x.dtype)
    if x.stride(1) != 1 or (x.shape[0] > 1 and x.stride(0) < x.shape[1]):
        x = x.contiguous()
    stride = x.stride(0) if x.shape[0] > 1 else x.shape[1]
    return _v.Logits(x.data_ptr(), _LOGITS_DTYPES[x.dtype], x.shape[0], x.shape[1], stride, temperature), x


def _ids(ids, rows, dev):
    if not isinstance(ids, torch.Tensor):
        ids = torch.from_numpy(np.asarray(ids))
    if ids.is_floating_point() or ids.dtype == torch.bool:
        raise TypeError("vppo.torch: ids must be integers, not %s" % ids.dtype)
    ids = ids.detach().reshape(-1)
    if ids.numel() != rows:
        raise ValueError("vppo.torch: ids has %d entries for %d rows" % (ids.numel(), rows))
    if ids.dtype != torch.int32:
        if rows and (int(ids.min()) < -2 ** 31 or int(ids.max()) >= 2 ** 31):
            raise ValueError("vppo.torch: a token id does not fit in int32")
        ids = ids.to(torch.int32)
    return ids.to(dev).contiguous()


# ------------------------------------------------------------------ log-probs and entropy


class _LogProbs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, ids, temperature, inplace):
        dev = _device_of(logits, ids)
        x, xt = _logits_arg(logits.detach(), temperature)
        ids32 = _ids(ids, x.n_rows, dev)
        n = x.n_rows
        logp, lse, ent = (torch.empty(n, dtype=torch.float32, device=dev) for _ in range(3))
        _call(dev, "vppo_logprobs", ctypes.byref(x), _ptr(ids32, ctypes.c_int32), _ptr(logp, _F), _ptr(lse, _F),
              _ptr(ent, _F))
        if inplace and (xt.dtype != torch.float32 or xt.data_ptr() != logits.data_ptr()):
            raise ValueError("vppo.torch: an in-place backward needs float32 logits with unit column stride")
        ctx.save_for_backward(xt, ids32, lse, ent)
        ctx.temperature, ctx.inplace, ctx.shape = temperature, inplace, logits.shape
        ctx.mark_non_differentiable(lse)
        return logp, ent

    @staticmethod
    def backward(ctx, g_logp, g_ent):
        xt, ids32, lse, ent = ctx.saved_tensors
        dev = xt.device
        x, _ = _logits_arg(xt, ctx.temperature)
        if ctx.inplace:
            grad = xt                                  # the logits' own storage, overwritten
            stride = x.row_stride
        else:
            grad = torch.empty(x.n_rows, x.vocab, device=dev,
                               dtype=torch.bfloat16 if xt.dtype == torch.bfloat16 else torch.float32)
            stride = x.vocab
        out_dtype = _v.BF16 if grad.dtype == torch.bfloat16 else _v.F32
        g = _v.GradOut(grad.data_ptr(), out_dtype, stride)
        gl = None if g_logp is None else _f32(g_logp, "dlogp", dev)
        ge = None if g_ent is None else _f32(g_ent, "dentropy", dev)
        _call(dev, "vppo_logprobs_backward", ctypes.byref(x), _ptr(ids32, ctypes.c_int32), _ptr(lse, _F),
              _ptr(ent, _F), _ptr(gl, _F), _ptr(ge, _F), ctypes.byref(g))
        if xt.dtype == torch.float16:
            grad = grad.to(torch.float16)
        return grad, None, None, None


def logprobs(logits, ids, temperature=1.0, inplace_backward=False):
    """(logp, entropy) per row of logits [N, V] (float32, bfloat16 or float16) for the sampled
    ids [N]; both float32 [N] and differentiable: the backward is vppo_logprobs_backward
    into the logits (bf16 logits get a bf16 gradient, rounded to nearest even).
    inplace_backward=True (float32 logits only) writes the gradient into the logits'
    own storage and returns it: no second [N, V] buffer, but the logits' values are gone
    after backward (use it for the lm_head output, never for a tensor you read again)."""
    return _LogProbs.apply(logits, ids, float(temperature), bool(inplace_backward))


def dependency_sampled(logp, logp_aug, offsets=None, mask=None, estimator=_v.EST_K3):
    """§2.1 token dependency from the sampled token's log-probs with and without the
    perturbed image (no gradient): float32 tensor shaped like logp."""
    dev = _device_of(logp, logp_aug)
    s = _Seqs(logp, offsets, mask, dev)
    a, b = _f32(logp, "logp", dev, s.end), _f32(logp_aug, "logp_aug", dev, s.end)
    dep = torch.zeros(a.numel(), dtype=torch.float32, device=dev)
    _call(dev, "vppo_dependency_sampled", s.ref, _ptr(a, _F), _ptr(b, _F), int(estimator), _ptr(dep, _F))
    return dep.reshape(logp.shape)


# ------------------------------------------------------------------ the loss


class _PolicyLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, holder, logp, logp_old, adv, offsets, mask, cfg, logp_ref, select, weight):
        dev = _device_of(logp, *(t for t in (logp_old, adv, logp_ref, select, weight) if t is not None))
        s = _Seqs(logp, offsets, mask, dev)
        lp = _f32(logp, "logp", dev, s.end)
        old, a = _f32(logp_old, "logp_old", dev, s.end), _f32(adv, "adv", dev, s.end)
        ref, w = _f32(logp_ref, "logp_ref", dev, s.end), _f32(weight, "weight", dev, s.end)
        sel = _u8(select, dev)
        if sel is not None and sel.numel() < s.end:
            raise ValueError("vppo.torch: select has %d elements, the sequences need %d" % (sel.numel(), s.end))
        dlogp = torch.zeros(lp.numel(), dtype=torch.float32, device=dev)
        out = _v.LossOut()
        _call(dev, "vppo_policy_loss", ctypes.byref(cfg), s.ref, _ptr(lp, _F), _ptr(old, _F), _ptr(ref, _F),
              _ptr(a, _F), _ptr(sel, ctypes.c_uint8), _ptr(w, _F), _ptr(dlogp, _F), ctypes.byref(out))
        ctx.save_for_backward(dlogp.reshape(logp.shape))
        holder["info"] = _v._struct_dict(out)
        return torch.tensor(out.loss, dtype=logp.dtype, device=dev)

    @staticmethod
    def backward(ctx, g):
        (dlogp,) = ctx.saved_tensors
        return (None, dlogp * g) + (None,) * 8


def policy_loss(logp, logp_old, adv, mask=None, offsets=None, cfg=None, logp_ref=None, select=None, weight=None):
    """vppo_policy_loss: (loss, info). loss is differentiable in logp; adv is per token
    (broadcast a per-response advantage yourself, or use step); cfg a vppo.LossConfig
    (default vppo.config_default().loss); select/weight: TGF mask and token weights (e.g.
    the rollout-correction weight). info: the vppo_loss_out fields as Python numbers."""
    cfg = _v.config_default().loss if cfg is None else cfg
    holder = {}
    loss = _PolicyLoss.apply(holder, logp, logp_old, adv, offsets, mask, cfg, logp_ref, select, weight)
    return loss, holder["info"]


def _prepared(n, b, dev):
    t = {k: torch.zeros(n, dtype=torch.float32, device=dev) for k in ("dep", "adv")}
    t["select"] = torch.zeros(n, dtype=torch.uint8, device=dev)
    t.update({k: torch.zeros(b, dtype=torch.float32, device=dev) for k in ("traj_dep", "scale")})
    t["count"] = torch.zeros(b, dtype=torch.int64, device=dev)
    c = _v.Prepared(_ptr(t["dep"], _F), _ptr(t["traj_dep"], _F), _ptr(t["count"], ctypes.c_int64),
                    _ptr(t["scale"], _F), _ptr(t["adv"], _F), _ptr(t["select"], ctypes.c_uint8))
    return t, c


def _prepared_result(t, c, shape):
    out = {k: (v.reshape(shape) if k in ("dep", "adv", "select") else v) for k, v in t.items()}
    out["stats"], out["topk"] = _v._struct_dict(c.stats), _v._struct_dict(c.topk)
    return out


def prepare(logp_old, logp_aug, adv_seq, mask=None, offsets=None, cfg=None, dep_in=None, global_stats=None):
    """vppo_prepare (no gradient): dependency, TAS scales, shaped per-token advantages and
    the TGF selection, as a dict of tensors shaped like logp_old (per token) or [B]."""
    cfg = _v.config_default() if cfg is None else cfg
    like = logp_old if logp_old is not None else dep_in
    dev = _device_of(*(t for t in (logp_old, logp_aug, dep_in) if t is not None))
    s = _Seqs(like, offsets, mask, dev)
    old, aug = _f32(logp_old, "logp_old", dev, s.end), _f32(logp_aug, "logp_aug", dev, s.end)
    dep, a = _f32(dep_in, "dep_in", dev, s.end), _f32(adv_seq, "adv_seq", dev, s.n_seqs)
    t, c = _prepared(like.numel(), s.n_seqs, dev)
    _call(dev, "vppo_prepare", ctypes.byref(cfg), s.ref, _ptr(old, _F), _ptr(aug, _F), _ptr(dep, _F), _ptr(a, _F),
          None if global_stats is None else ctypes.byref(global_stats), ctypes.byref(c))
    return _prepared_result(t, c, like.shape)


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, holder, logp, logp_old, logp_aug, adv_seq, offsets, mask, cfg, logp_ref, weight):
        dev = _device_of(*(t for t in (logp, logp_old, logp_aug, logp_ref, weight) if t is not None))
        s = _Seqs(logp, offsets, mask, dev)
        lp, old = _f32(logp, "logp", dev, s.end), _f32(logp_old, "logp_old", dev, s.end)
        aug, ref = _f32(logp_aug, "logp_aug", dev, s.end), _f32(logp_ref, "logp_ref", dev, s.end)
        a, w = _f32(adv_seq, "adv_seq", dev, s.n_seqs), _f32(weight, "weight", dev, s.end)
        t, c = _prepared(lp.numel(), s.n_seqs, dev)
        dlogp = torch.zeros(lp.numel(), dtype=torch.float32, device=dev)
        out = _v.LossOut()
        if w is None:
            _call(dev, "vppo_step", ctypes.byref(cfg), s.ref, _ptr(lp, _F), _ptr(old, _F), _ptr(aug, _F),
                  _ptr(ref, _F), _ptr(a, _F), ctypes.byref(c), _ptr(dlogp, _F), ctypes.byref(out))
        else:   # vppo_step is prepare + policy_loss without a weight: the same two calls, with it
            _call(dev, "vppo_prepare", ctypes.byref(cfg), s.ref, _ptr(old, _F), _ptr(aug, _F), None, _ptr(a, _F),
                  None, ctypes.byref(c))
            _call(dev, "vppo_policy_loss", ctypes.byref(cfg.loss), s.ref, _ptr(lp, _F), _ptr(old, _F), _ptr(ref, _F),
                  _ptr(t["adv"], _F), _ptr(t["select"], ctypes.c_uint8), _ptr(w, _F), _ptr(dlogp, _F),
                  ctypes.byref(out))
        holder["info"] = _v._struct_dict(out)
        holder["prepared"] = _prepared_result(t, c, logp.shape)
        ctx.save_for_backward(dlogp.reshape(logp.shape))
        return torch.tensor(out.loss, dtype=logp.dtype, device=dev)

    @staticmethod
    def backward(ctx, g):
        (dlogp,) = ctx.saved_tensors
        return (None, dlogp * g) + (None,) * 8


def step(logp, logp_old, logp_aug, adv_seq, mask=None, offsets=None, cfg=None, logp_ref=None, weight=None):
    """One VPPO step (vppo_step: dependency from logp_old/logp_aug, TAS, TGF, the loss):
    (loss, info). loss is differentiable in logp; adv_seq [B] one advantage per response
    (vppo.group_advantages); info: the vppo_loss_out fields, and info["prepared"] the
    vppo_prepared tensors (dep, adv, select, traj_dep, scale, count, stats, topk).
    weight: optional token weights of the loss (e.g. rollout_correction's), which
    vppo_step has no argument for: then vppo_prepare and vppo_policy_loss are called."""
    cfg = _v.config_default() if cfg is None else cfg
    holder = {}
    loss = _Step.apply(holder, logp, logp_old, logp_aug, adv_seq, offsets, mask, cfg, logp_ref, weight)
    info = dict(holder["info"])
    info["prepared"] = holder["prepared"]
    return loss, info


# ------------------------------------------------------------------ rollout correction


def rollout_correction(logp, logp_rollout, mask=None, offsets=None, cfg=None):
    """vppo_rollout_correction (no gradient): (weight, keep, metrics). weight float32 and keep
    uint8, shaped like logp: pass weight as policy_loss's weight and keep as its mask
    (verl's rollout_is_weights and modified response_mask)."""
    cfg = _v.rc_config_default() if cfg is None else cfg
    dev = _device_of(logp, logp_rollout)
    s = _Seqs(logp, offsets, mask, dev)
    a, b = _f32(logp, "logp", dev, s.end), _f32(logp_rollout, "logp_rollout", dev, s.end)
    w = torch.zeros(a.numel(), dtype=torch.float32, device=dev)
    keep = torch.zeros(a.numel(), dtype=torch.uint8, device=dev)
    out = _v.RcOut()
    _call(dev, "vppo_rollout_correction", ctypes.byref(cfg), s.ref, _ptr(a, _F), _ptr(b, _F), _ptr(w, _F),
          _ptr(keep, ctypes.c_uint8), ctypes.byref(out))
    return w.reshape(logp.shape), keep.reshape(logp.shape), _v._struct_dict(out)
