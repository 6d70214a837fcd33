"""AWD-LSTM (Merity et al. 2017) as fastai builds it, in Flax NNX: the language model and the text classifier.

Dropouts follow fastai (fastai_facts.md section 1.2): embedding dropout zeroes whole word rows of the embedding
matrix, locked ("variational") dropout uses one mask per sequence for all time steps, and weight-drop
(DropConnect) masks each layer's raw hidden-to-hidden matrix once per forward call. Every forward call samples
fresh masks from the one ``dropout`` key it is given; modules never store PRNG state.

Shapes: the recurrence runs time-major (T, B, features) internally; the public calls take and return
batch-major arrays, like fastai's ``batch_first=True`` LSTMs. The recurrent state (``carry``) is a tuple of
``(h, c)`` pairs, one per layer, each (B, n_hid_l).

Parameter names mirror fastai's state dict so the weight import is a transpose per tensor:
``encoder.embedding`` (V, emb) is ``0.encoder.weight``; ``encoder.rnns.l.weight_ih`` (in, 4h) is
``0.rnns.l.module.weight_ih_l0`` transposed; ``weight_hh_raw`` is ``weight_hh_l0_raw`` transposed; both LSTM
biases are kept (as PyTorch does) so weights round-trip exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from learner_jax.frozen_backward import backward_if, trainable_below
from learner_jax.model_io import ModelOutput
from ulmfit_jax.lm_head import vocab_projection
from ulmfit_jax.lstm import lstm_layer

Carry = tuple[tuple[jax.Array, jax.Array], ...]
LAST_CHUNK_PARTS = 4  # the classifier's final chunk runs 1/4, 2/4, 3/4 or all of its positions, as needed

awd_lstm_lm_config: dict[str, Any] = dict(
    emb_sz=400, n_hid=1152, n_layers=3, pad_token=1, bidir=False, output_p=0.1, hidden_p=0.15, input_p=0.25,
    embed_p=0.02, weight_p=0.2, tie_weights=True, out_bias=True)
awd_lstm_clas_config: dict[str, Any] = dict(
    emb_sz=400, n_hid=1152, n_layers=3, pad_token=1, bidir=False, output_p=0.4, hidden_p=0.3, input_p=0.4,
    embed_p=0.05, weight_p=0.5)


def dropout_mask(key: jax.Array, shape: tuple[int, ...], p: float) -> jax.Array:
    """fastai's ``dropout_mask``: Bernoulli(1-p) values scaled by 1/(1-p) (inverted dropout)."""
    keep = jax.random.bernoulli(key, 1.0 - p, shape)
    return keep.astype(jnp.float32) / (1.0 - p)


def locked_dropout(x: jax.Array, p: float, key: jax.Array | None) -> jax.Array:
    """fastai's ``RNNDropout`` on a time-major (T, B, F) array: one mask per sequence, shared over time."""
    if key is None or p == 0.0:
        return x
    return x * dropout_mask(key, (1,) + x.shape[1:], p)


def _uniform(key: jax.Array, shape: tuple[int, ...], bound: float) -> jax.Array:
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class WeightDropLSTM(nnx.Module):
    """One single-layer LSTM with DropConnect on its hidden-to-hidden weights (fastai's ``WeightDropout``)."""

    compute_dtype = None  # matmul input dtype (learner_jax.precision); None: float32

    def __init__(self, n_in: int, n_hid: int, weight_p: float, *, rngs: nnx.Rngs, unroll: int = 1):
        bound = 1.0 / math.sqrt(n_hid)  # PyTorch's LSTM init, which fastai keeps
        self.weight_ih = nnx.Param(_uniform(rngs.params(), (n_in, 4 * n_hid), bound))
        self.weight_hh_raw = nnx.Param(_uniform(rngs.params(), (n_hid, 4 * n_hid), bound))
        self.bias_ih = nnx.Param(_uniform(rngs.params(), (4 * n_hid,), bound))
        self.bias_hh = nnx.Param(_uniform(rngs.params(), (4 * n_hid,), bound))
        self.n_in, self.n_hid, self.weight_p, self.unroll = n_in, n_hid, float(weight_p), int(unroll)

    def __call__(self, x: jax.Array, carry: tuple[jax.Array, jax.Array], w_mask: jax.Array | None = None,
                 need_backward: jax.Array | None = None):
        """``x`` (T, B, n_in) -> outputs (T, B, n_hid) and the final ``(h, c)``; ``w_mask`` (n_hid, 4 n_hid) is the
        DropConnect mask on the raw hidden-to-hidden weights (one per forward call, as fastai's WeightDropout).
        ``need_backward`` (traced scalar): 0 skips this layer's backward at run time (a frozen layer with nothing
        trainable below it)."""
        w_hh = self.weight_hh_raw[...]
        if w_mask is not None:
            w_hh = w_hh * w_mask
        args = (x, self.weight_ih[...], self.bias_ih[...] + self.bias_hh[...], w_hh, carry[0], carry[1])
        # the input projection for all time steps at once is inside lstm_layer, outside the recurrence
        if need_backward is None:
            return lstm_layer(*args, self.unroll, self.compute_dtype)
        return backward_if(need_backward, lambda *a: lstm_layer(*a, self.unroll, self.compute_dtype), *args)


class DropMasks(NamedTuple):
    """The dropout masks of one AWD-LSTM forward call (None where a dropout is off or in evaluation).

    emb: (V,) word mask (EmbeddingDropout); inp: (B, emb_sz) per-sequence input mask; hid: per layer but the last,
    (B, n_hid_l) per-sequence masks; w_hh: per layer, the (n_hid_l, 4 n_hid_l) DropConnect mask.
    """

    emb: jax.Array | None = None
    inp: jax.Array | None = None
    hid: tuple[jax.Array, ...] | None = None
    w_hh: tuple[jax.Array, ...] | None = None


class AWD_LSTM(nnx.Module):  # fastai's name
    """The AWD-LSTM encoder: embedding (with embedding dropout) -> input dropout -> LSTM layers with hidden
    dropout between them. Returns the last layer's (undropped) output, as fastai v2 does."""

    initrange = 0.1

    def __init__(self, vocab_sz: int, emb_sz: int, n_hid: int, n_layers: int, pad_token: int = 1,
                 hidden_p: float = 0.2, input_p: float = 0.6, embed_p: float = 0.1, weight_p: float = 0.5,
                 bidir: bool = False, *, rngs: nnx.Rngs, unroll: int = 1):
        if bidir:
            raise ValueError("bidir=True is not supported: ulmfit_jax's AWD_LSTM is unidirectional (use "
                             "backwards=True models and average their predictions for the bidirectional setup)")
        if vocab_sz <= 0 or emb_sz <= 0 or n_hid <= 0 or n_layers <= 0:
            raise ValueError(f"AWD_LSTM sizes must be positive: vocab_sz={vocab_sz}, emb_sz={emb_sz}, "
                             f"n_hid={n_hid}, n_layers={n_layers}")
        self.vocab_sz, self.emb_sz, self.n_hid, self.n_layers = vocab_sz, emb_sz, n_hid, n_layers
        self.pad_token = int(pad_token)
        self.hidden_p, self.input_p, self.embed_p = float(hidden_p), float(input_p), float(embed_p)
        # v2 does not zero the pad row at init (v1 did); padding_idx only blocks its lookup gradient
        self.embedding = nnx.Param(_uniform(rngs.params(), (vocab_sz, emb_sz), self.initrange))
        sizes = [emb_sz] + [n_hid] * (n_layers - 1) + [emb_sz]
        self.rnns = nnx.List([WeightDropLSTM(sizes[i], sizes[i + 1], weight_p, rngs=rngs, unroll=unroll)
                              for i in range(n_layers)])

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(r.n_hid for r in self.rnns)

    def init_carry(self, bs: int) -> Carry:
        """Zero hidden state for a batch of ``bs`` sequences (fastai's ``reset``)."""
        return zero_carry(self.hidden_sizes, bs)

    def sample_masks(self, key: jax.Array | None, bs: int, weights: bool = True) -> DropMasks:
        """Fresh dropout masks for a forward call over ``bs`` sequences (all None when ``key`` is None)."""
        if key is None:
            return DropMasks()
        k = jax.random.split(key, 2 + 2 * self.n_layers)
        sizes = self.hidden_sizes

        def maybe(p, kk, shape):
            return dropout_mask(kk, shape, p) if p > 0.0 else None

        hid = [maybe(self.hidden_p, k[2 + i], (bs, sizes[i])) for i in range(self.n_layers - 1)]
        w_hh = [maybe(r.weight_p, k[2 + self.n_layers + i], r.weight_hh_raw.shape) for i, r in enumerate(self.rnns)]
        return DropMasks(maybe(self.embed_p, k[0], (self.vocab_sz,)), maybe(self.input_p, k[1], (bs, self.emb_sz)),
                         None if self.hidden_p == 0.0 else tuple(hid),
                         None if not weights or all(w is None for w in w_hh) else tuple(w_hh))

    def embed(self, tokens: jax.Array, scale: jax.Array | None = None,
              need_backward: jax.Array | None = None) -> jax.Array:
        """Embedding lookup; ``scale`` (same shape as ``tokens``) is the EmbeddingDropout factor of each token.

        fastai masks whole rows of the embedding matrix; ``mask[tokens]`` gives the same numbers (same word, same
        factor) without multiplying the V x E matrix. ``need_backward`` 0: no gradient scatter (frozen embedding).
        """
        table = self.embedding[...]
        rows = jnp.take(table, tokens, axis=0) if need_backward is None else \
            backward_if(need_backward, lambda t, i: jnp.take(t, i, axis=0), table, tokens)
        if scale is not None:
            rows = rows * scale[..., None]
        # nn.Embedding(padding_idx=...) blocks the pad row's lookup gradient
        return jnp.where((tokens == self.pad_token)[..., None], jax.lax.stop_gradient(rows), rows)

    def run(self, tokens_tm: jax.Array, carry: Carry, masks: DropMasks | None = None,
            emb_scale: jax.Array | None = None, need_backward: jax.Array | None = None) -> tuple[jax.Array, Carry]:
        """Time-major core: ``tokens_tm`` (T, B) -> last-layer output (T, B, emb_sz) and the new carry.

        ``emb_scale`` (T, B) overrides ``masks.emb[tokens]`` (used when rows come from different chunks).
        ``need_backward`` (n_layers + 1,): for the embedding then each layer, 0 where its backward can be skipped
        (``frozen_backward.trainable_below`` of fastai's layer groups)."""
        masks = DropMasks() if masks is None else masks
        need = [None] * (self.n_layers + 1) if need_backward is None else list(need_backward[:self.n_layers + 1])
        if emb_scale is None and masks.emb is not None:
            emb_scale = masks.emb[tokens_tm]
        out = self.embed(tokens_tm, emb_scale, need[0])
        if masks.inp is not None:
            out = out * masks.inp[None]  # locked dropout: one mask per sequence, all time steps
        new_carry = []
        for i, rnn in enumerate(self.rnns):
            out, hc = rnn(out, carry[i], None if masks.w_hh is None else masks.w_hh[i], need[i + 1])
            new_carry.append(hc)
            if i != self.n_layers - 1 and masks.hid is not None:
                out = out * masks.hid[i][None]
        return out, tuple(new_carry)

    def __call__(self, tokens: jax.Array, carry: Carry | None = None, *, train: bool = False,
                 rngs: nnx.Rngs | None = None) -> tuple[jax.Array, Carry]:
        """``tokens`` (B, T) int -> output (B, T, emb_sz) and the new carry (zeros when ``carry`` is None)."""
        carry = self.init_carry(tokens.shape[0]) if carry is None else carry
        masks = self.sample_masks(_dropout_key(train, rngs), tokens.shape[0])
        out, carry = self.run(tokens.T, carry, masks)
        return out.transpose(1, 0, 2), carry


def zero_carry(hidden_sizes: tuple[int, ...], bs: int) -> Carry:
    """Zero ``(h, c)`` per layer; a pure function of the sizes, usable as the engine's ``init_carry``."""
    return tuple((jnp.zeros((bs, h), jnp.float32), jnp.zeros((bs, h), jnp.float32)) for h in hidden_sizes)


def _dropout_key(train: bool, rngs: nnx.Rngs | None) -> jax.Array | None:
    if not train:
        return None
    if rngs is None:
        raise ValueError("train=True needs rngs with a 'dropout' stream")
    return rngs.dropout()


def ar_tar(dropped: jax.Array, raw: jax.Array, alpha: float, beta: float, cols: jax.Array | None = None) -> jax.Array:
    """fastai's RNNRegularizer: alpha * mean(dropped^2) (AR) + beta * mean((raw_t - raw_{t-1})^2) (TAR).

    Time-major inputs (T, B, F). fastai's TAR checks ``len(h) > 1`` on a batch-major tensor, i.e. the batch size.
    ``cols`` (T,) bool, a contiguous window: the means run over those positions only (a classifier batch padded
    wider than fastai's exact width: its extra whole pad chunks would otherwise dilute both terms and add a
    zero-to-text jump to TAR).
    """
    loss = jnp.float32(0.0)
    if cols is None:
        if alpha:
            loss = loss + alpha * jnp.mean(jnp.square(dropped.astype(jnp.float32)))
        if beta and raw.shape[1] > 1 and raw.shape[0] > 1:
            loss = loss + beta * jnp.mean(jnp.square((raw[1:] - raw[:-1]).astype(jnp.float32)))
        return loss
    w = cols.astype(jnp.float32)
    per_col = raw.shape[1] * raw.shape[2]
    if alpha:
        sq = jnp.square(dropped.astype(jnp.float32)).sum(axis=(1, 2))
        loss = loss + alpha * (sq * w).sum() / (jnp.maximum(w.sum(), 1.0) * per_col)
    if beta and raw.shape[1] > 1 and raw.shape[0] > 1:
        pairs = w[1:] * w[:-1]
        sq = jnp.square((raw[1:] - raw[:-1]).astype(jnp.float32)).sum(axis=(1, 2))
        loss = loss + beta * (sq * pairs).sum() / (jnp.maximum(pairs.sum(), 1.0) * per_col)
    return loss


class LinearDecoder(nnx.Module):
    """fastai's LinearDecoder: output dropout then a linear map to the vocabulary. When tied, the weight is the
    encoder's embedding matrix (passed at call time) and only the bias lives here."""

    initrange = 0.1
    compute_dtype = None  # matmul input dtype (learner_jax.precision); None: float32

    def __init__(self, n_out: int, n_hid: int, output_p: float = 0.1, tie_weights: bool = True,
                 bias: bool = True, *, rngs: nnx.Rngs):
        self.output_p, self.tied, self.has_bias = float(output_p), bool(tie_weights), bool(bias)
        self.weight = None if self.tied else nnx.Param(_uniform(rngs.params(), (n_out, n_hid), self.initrange))
        self.bias = nnx.Param(jnp.zeros((n_out,), jnp.float32)) if self.has_bias else None

    def __call__(self, x_tm: jax.Array, tied_weight: jax.Array, key: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        """Time-major (T, B, n_hid) -> batch-major logits (B, T, n_out) and the dropped input (for AR)."""
        dropped = locked_dropout(x_tm, self.output_p, key)
        weight = tied_weight if self.tied else self.weight[...]
        t, b, h = dropped.shape
        flat = dropped.transpose(1, 0, 2).reshape(b * t, h)  # batch-major rows: the logits need no transpose
        bias = self.bias[...] if self.has_bias else jnp.zeros((weight.shape[0],), weight.dtype)
        return vocab_projection(flat, weight, bias, self.compute_dtype).reshape(b, t, -1), dropped


class LanguageModel(nnx.Module):
    """fastai's ``SequentialRNN(AWD_LSTM, LinearDecoder)``, called as the engine's stateful model:
    ``model(x, carry, *, train, rngs) -> ModelOutput(logits, carry, aux_loss)`` with AR/TAR in ``aux_loss``."""

    def __init__(self, encoder: AWD_LSTM, decoder: LinearDecoder, alpha: float = 2.0, beta: float = 1.0):
        self.encoder, self.decoder = encoder, decoder
        self.alpha, self.beta = float(alpha), float(beta)

    def init_carry(self, bs: int) -> Carry:
        return self.encoder.init_carry(bs)

    def __call__(self, x: jax.Array, carry: Carry | None = None, *, train: bool = False,
                 rngs: nnx.Rngs | None = None) -> ModelOutput:
        key = _dropout_key(train, rngs)
        k_enc, k_dec = (None, None) if key is None else tuple(jax.random.split(key))
        carry = self.init_carry(x.shape[0]) if carry is None else carry
        raw, carry = self.encoder.run(x.T, carry, self.encoder.sample_masks(k_enc, x.shape[0]))
        logits, dropped = self.decoder(raw, self.encoder.embedding[...], k_dec)
        aux = ar_tar(dropped, raw, self.alpha, self.beta) if train else jnp.float32(0.0)
        return ModelOutput(logits, carry, aux)


def _chunk_layout(seq_len: int, bptt: int, max_len: int | None) -> tuple[int, int]:
    """(number of chunks, index of the first chunk whose outputs are kept): fastai keeps chunk i if
    ``sl - i*bptt <= max_len``."""
    n_chunks = -(-seq_len // bptt)
    if max_len is None:
        return n_chunks, 0
    first = max(0, -(-(seq_len - max_len) // bptt))
    return n_chunks, min(first, n_chunks - 1)


class SentenceEncoder(nnx.Module):
    """fastai's SentenceEncoder: run the AWD-LSTM over a padded document batch in chunks of ``bptt`` tokens, the
    hidden state carried (and detached) between chunks, keeping the outputs of the last ``max_len`` tokens.

    Batches use fastai's ``pad_input_chunk`` layout (whole pad chunks in front, the remainder at the end), so a
    document starts on a chunk boundary. fastai feeds only the rows already started (``real_bs``, relying on a
    length-sorted batch); with static shapes we run every row and instead zero the hidden state and outputs of
    rows whose chunk starts with padding -- the same numbers, for any row order. The chunks are a ``lax.scan``:
    those before the kept window run forward only (no gradient reaches them in fastai either), the kept ones are
    differentiated chunk by chunk; every chunk draws fresh dropout masks, as fastai's per-chunk forward calls do.
    A chunk holding only padding (the whole pad chunks in front of every row, or width rounding by the loader's
    length buckets) is skipped at run time, as fastai never feeds it; the batch's final chunk runs only the
    quarters of it that hold real tokens (fastai's last chunk is exactly as long as the batch's tail).
    (Running the kept chunks side by side as one large batch after a forward-only pass was measured slower: the
    extra forward costs more than the larger matmuls gain.)
    """

    def __init__(self, bptt: int, module: AWD_LSTM, pad_idx: int = 1, max_len: int | None = None):
        if bptt <= 0:
            raise ValueError(f"seq_len (bptt) must be positive, got {bptt}")
        self.bptt, self.module, self.pad_idx = int(bptt), module, int(pad_idx)
        self.max_len = None if max_len is None else int(max_len)

    def _chunk(self, carry: Carry, tokens_tm: jax.Array, masks: DropMasks, need_backward: jax.Array | None = None):
        """One chunk as fastai runs it: returns (detached state after it, its outputs (bptt, B, emb_sz))."""
        started = tokens_tm[0] != self.pad_idx  # (B,): rows fastai would feed this chunk
        out, new_carry = self.module.run(tokens_tm, _only_rows(carry, started), masks, need_backward=need_backward)
        out = jnp.where(started[None, :, None], out, 0.0)
        return jax.lax.stop_gradient(_only_rows(new_carry, started)), out

    def __call__(self, tokens: jax.Array, key: jax.Array | None = None,
                 need_backward: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """``tokens`` (B, L) -> time-major outputs (T, B, emb_sz) of the kept tokens and their pad mask (B, T).
        ``need_backward``: as ``AWD_LSTM.run``'s."""
        bs, seq_len = tokens.shape
        n_chunks, first = _chunk_layout(seq_len, self.bptt, self.max_len)
        n_kept, kept = n_chunks - first, seq_len - first * self.bptt
        padded = jnp.pad(tokens, ((0, 0), (0, n_chunks * self.bptt - seq_len)), constant_values=self.pad_idx)
        chunks = padded.T.reshape(n_chunks, self.bptt, bs)  # (n, bptt, B), time-major per chunk
        if key is None:
            masks = DropMasks()
            per_chunk = jnp.zeros((n_chunks,), jnp.int32)  # nothing to draw; a placeholder to scan over
        else:  # fresh embedding/input/hidden masks per chunk; the weight-drop mask once per batch
            k_chunks, k_w = jax.random.split(key)
            per_chunk = jax.vmap(lambda k: self.module.sample_masks(k, bs, weights=False))(
                jax.random.split(k_chunks, n_chunks))
            masks = DropMasks(w_hh=self.module.sample_masks(k_w, bs).w_hh)

        def run(carry, chunk, m):
            m = masks if key is None else m._replace(w_hh=masks.w_hh)
            return self._chunk(carry, chunk, m, need_backward)

        def skip(carry, chunk, m):  # a chunk of padding only (whole pad chunks, bucket rounding): no work
            zeros = jnp.zeros((self.bptt, bs, self.module.emb_sz), jnp.float32)
            return jax.tree.map(jnp.zeros_like, carry), zeros

        def body(carry, inp):
            chunk, m = inp
            return jax.lax.cond(jnp.any(chunk != self.pad_idx), run, skip, carry, chunk, m)

        def part(a, sl):
            return jax.tree.map(lambda v: v[sl], a)

        def last_chunk(carry, chunk, m):
            """The final chunk holds the batch's tail: run only its first k*q positions, k from the data."""
            q = -(-self.bptt // LAST_CHUNK_PARTS)
            lengths = [min(k * q, self.bptt) for k in range(1, LAST_CHUNK_PARTS + 1)]
            is_real = chunk != self.pad_idx
            end = jnp.max(jnp.where(is_real, jnp.arange(1, self.bptt + 1)[:, None], 0))  # last real position + 1
            k = (end + q - 1) // q

            def branch(n):
                def f(c, ch, mm):
                    new, out = run(c, ch[:n], mm)
                    return new, jnp.pad(out, ((0, self.bptt - n), (0, 0), (0, 0)))
                return f

            return jax.lax.switch(k, [skip] + [branch(n) for n in lengths], carry, chunk, m)

        carry = self.module.init_carry(bs)
        if first:  # forward only: these outputs are dropped and the state is detached after each chunk
            prefix = (chunks[:first], part(per_chunk, slice(None, first)))
            carry = jax.lax.stop_gradient(jax.lax.scan(lambda c, i: (body(c, i)[0], None), carry, prefix)[0])
        outs = []
        if n_kept > 1:
            mid = (chunks[first:-1], part(per_chunk, slice(first, n_chunks - 1)))
            carry, mids = jax.lax.scan(body, carry, mid)
            outs.append(mids.reshape((n_kept - 1) * self.bptt, bs, -1))
        outs.append(last_chunk(carry, chunks[-1], part(per_chunk, -1))[1])
        mask = tokens[:, first * self.bptt:] == self.pad_idx
        return jnp.concatenate(outs)[:kept], mask


def _only_rows(carry: Carry, rows: jax.Array) -> Carry:
    """The carry with the rows not in ``rows`` (bool (B,)) zeroed."""
    return tuple((jnp.where(rows[:, None], h, 0.0), jnp.where(rows[:, None], c, 0.0)) for h, c in carry)


def masked_concat_pool(out_tm: jax.Array, mask: jax.Array) -> jax.Array:
    """[last, max, mean] over the non-pad positions of time-major ``out_tm`` (T, B, F); ``mask`` (B, T) is True at pads.

    "last" is each row's last real token. fastai counts the pads of the last ``bptt`` positions instead, which
    picks a pad row for a document shorter than the batch remainder (fastai_facts.md section 0 item 7): a fix.
    Rows with no real token pool to zeros.
    """
    out = out_tm.transpose(1, 0, 2)  # (B, T, F)
    real = ~mask
    n_real = real.sum(axis=1)
    safe_n = jnp.maximum(n_real, 1).astype(out.dtype)[:, None]
    avg = jnp.where(real[..., None], out, 0.0).sum(axis=1) / safe_n
    mx = jnp.where(real[..., None], out, -jnp.inf).max(axis=1)
    mx = jnp.where(n_real[:, None] > 0, mx, 0.0)
    t = mask.shape[1]
    last_idx = t - 1 - jnp.argmax(real[:, ::-1], axis=1)
    last = jnp.take_along_axis(out, last_idx[:, None, None], axis=1)[:, 0]
    last = jnp.where(n_real[:, None] > 0, last, 0.0)
    return jnp.concatenate([last, mx, avg], axis=-1)


class LinBnDrop(nnx.Module):
    """fastai v2 ``LinBnDrop(bn=True, lin_first=False)``: BatchNorm1d -> Dropout(p) -> Linear without bias
    (-> ReLU unless last). BatchNorm starts at weight 1, bias 1e-3 as fastai's ``_get_norm``; flax momentum 0.9 is
    PyTorch's 0.1. Running variance uses the biased batch variance (PyTorch: unbiased), a negligible difference."""

    def __init__(self, n_in: int, n_out: int, p: float, act: bool, *, rngs: nnx.Rngs):
        self.bn = nnx.BatchNorm(n_in, momentum=0.9, epsilon=1e-5, bias_init=nnx.initializers.constant(1e-3),
                                rngs=rngs)
        bound = 1.0 / math.sqrt(n_in)  # PyTorch's default Linear init (kaiming_uniform a=sqrt(5))
        self.linear = nnx.Linear(n_in, n_out, use_bias=False, rngs=rngs,
                                 kernel_init=lambda k, s, d=jnp.float32: _uniform(k, s, bound))
        self.p, self.act = float(p), bool(act)

    def __call__(self, x: jax.Array, *, train: bool, key: jax.Array | None) -> jax.Array:
        x = self.bn(x, use_running_average=not train)
        if key is not None and self.p > 0.0:
            x = x * dropout_mask(key, x.shape, self.p)
        x = self.linear(x)
        return jax.nn.relu(x) if self.act else x


class PoolingLinearClassifier(nnx.Module):
    """Concat pooling then the LinBnDrop blocks (``dims`` = [3*emb] + lin_ftrs + [n_out]); optional ``y_range``."""

    def __init__(self, dims: list[int], ps: list[float], y_range: tuple[float, float] | None = None, *,
                 rngs: nnx.Rngs):
        if len(ps) != len(dims) - 1:
            raise ValueError(f"Number of layers and dropout values do not match: {len(dims) - 1} layers, "
                             f"{len(ps)} dropout values (ps={list(ps)})")
        n = len(dims) - 1
        self.layers = nnx.List([LinBnDrop(dims[i], dims[i + 1], ps[i], act=i < n - 1, rngs=rngs) for i in range(n)])
        self.y_range = None if y_range is None else (float(y_range[0]), float(y_range[1]))

    def __call__(self, pooled: jax.Array, *, train: bool, key: jax.Array | None) -> jax.Array:
        keys = [None] * len(self.layers) if key is None else list(jax.random.split(key, len(self.layers)))
        x = pooled
        for layer, k in zip(self.layers, keys):
            x = layer(x, train=train, key=k)
        if self.y_range is not None:  # fastai's SigmoidRange
            lo, hi = self.y_range
            x = jax.nn.sigmoid(x) * (hi - lo) + lo
        return x


class TextClassifier(nnx.Module):
    """fastai's ``SequentialRNN(SentenceEncoder, PoolingLinearClassifier)``: ``model(x, *, train, rngs)`` ->
    ``ModelOutput(logits, None, aux_loss)``; AR/TAR apply to the encoder output as in fastai v2.

    ``frozen`` (the learner's frozen-groups mask over ``clas_splitter``'s groups: embedding, each LSTM layer,
    head) skips the backward of frozen encoder layers with nothing trainable below them at run time, in the one
    program of the whole gradual-unfreezing chain (learner_jax.frozen_backward)."""

    takes_frozen_groups = True

    def __init__(self, encoder: SentenceEncoder, head: PoolingLinearClassifier, alpha: float = 2.0,
                 beta: float = 1.0):
        self.encoder, self.head = encoder, head
        self.alpha, self.beta = float(alpha), float(beta)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None,
                 frozen: jax.Array | None = None) -> ModelOutput:
        key = _dropout_key(train, rngs)
        k_enc, k_head = (None, None) if key is None else tuple(jax.random.split(key))
        out, mask = self.encoder(x, k_enc, None if frozen is None else trainable_below(frozen))
        logits = self.head(masked_concat_pool(out, mask), train=train, key=k_head)
        # over fastai's exact batch width: the columns where some row has a real token
        aux = ar_tar(out, out, self.alpha, self.beta, ~mask.all(axis=0)) if train else jnp.float32(0.0)
        return ModelOutput(logits, None, aux)


def merge_config(defaults: Mapping[str, Any], config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults updated by a (possibly partial) ``config``; unknown keys are an error naming them.

    fastai's ``get_language_model`` replaces the whole dict (a partial one raises KeyError); we merge in both
    factories, as ``get_text_classifier`` does (fastai_facts.md section 0 item 12).
    """
    cfg = dict(defaults)
    extra = sorted(set(config or {}) - set(defaults) - {"qrnn"})
    if extra:
        raise ValueError(f"unknown AWD_LSTM config keys {extra}; valid keys: {sorted(defaults)}")
    for k, v in (config or {}).items():
        if k == "qrnn":  # fastai v1 configs carry qrnn=False
            if v:
                raise ValueError("qrnn=True is not supported (fastai v2 dropped QRNN too)")
            continue
        cfg[k] = v
    return cfg


def _scaled(config: Mapping[str, Any], drop_mult: float) -> dict[str, Any]:
    """``drop_mult`` multiplies every key ending in ``_p`` (all five dropouts), as fastai does."""
    return {k: (v * drop_mult if k.endswith("_p") else v) for k, v in config.items()}


def _check_arch(arch: Any) -> None:
    if arch is not AWD_LSTM:
        raise ValueError(f"only AWD_LSTM is supported as arch, got {arch!r}")


def get_language_model(arch: type, vocab_sz: int, config: Mapping[str, Any] | None = None,
                       drop_mult: float = 1.0, *, seed: int = 0, alpha: float = 2.0, beta: float = 1.0,
                       unroll: int = 1) -> LanguageModel:
    """fastai's ``get_language_model``: an AWD-LSTM language model for ``vocab_sz`` tokens."""
    _check_arch(arch)
    cfg = _scaled(merge_config(awd_lstm_lm_config, config), drop_mult)
    rngs = nnx.Rngs(params=seed)
    tie, output_p, out_bias = cfg.pop("tie_weights"), cfg.pop("output_p"), cfg.pop("out_bias")
    encoder = AWD_LSTM(vocab_sz, **cfg, rngs=rngs, unroll=unroll)
    decoder = LinearDecoder(vocab_sz, cfg["emb_sz"], output_p, tie_weights=tie, bias=out_bias, rngs=rngs)
    return LanguageModel(encoder, decoder, alpha=alpha, beta=beta)


def get_text_classifier(arch: type, vocab_sz: int, n_class: int, seq_len: int = 72,
                        config: Mapping[str, Any] | None = None, drop_mult: float = 1.0,
                        lin_ftrs: list[int] | None = None, ps: list[float] | None = None, pad_idx: int = 1,
                        max_len: int | None = 72 * 20, y_range: tuple[float, float] | None = None, *,
                        seed: int = 0, alpha: float = 2.0, beta: float = 1.0, unroll: int = 1) -> TextClassifier:
    """fastai's ``get_text_classifier``: chunked AWD-LSTM encoder + concat pooling + LinBnDrop head."""
    _check_arch(arch)
    if n_class <= 0:
        raise ValueError(f"n_class must be positive, got {n_class}")
    cfg = _scaled(merge_config(awd_lstm_clas_config, config), drop_mult)
    lin_ftrs = [50] if lin_ftrs is None else list(lin_ftrs)
    ps = [0.1] * len(lin_ftrs) if ps is None else list(ps)
    dims = [cfg["emb_sz"] * 3] + lin_ftrs + [n_class]
    ps = [cfg.pop("output_p")] + ps
    rngs = nnx.Rngs(params=seed)
    encoder = SentenceEncoder(seq_len, AWD_LSTM(vocab_sz, **cfg, rngs=rngs, unroll=unroll), pad_idx=pad_idx,
                              max_len=max_len)
    head = PoolingLinearClassifier(dims, ps, y_range=y_range, rngs=rngs)
    return TextClassifier(encoder, head, alpha=alpha, beta=beta)


def lm_splitter(n_layers: int):
    """fastai's ``awd_lstm_lm_split`` as a path -> group function: one group per LSTM layer, then the embedding
    and the (tied) decoder together in the last group."""

    def splitter(path: tuple) -> int:
        if len(path) > 2 and path[0] == "encoder" and path[1] == "rnns":
            return int(path[2])
        return n_layers

    return splitter


def clas_splitter(n_layers: int):
    """fastai's ``awd_lstm_clas_split``: [embedding], [rnn 0], ..., [rnn n-1], [head]."""

    def splitter(path: tuple) -> int:
        if path[0] == "head":
            return n_layers + 1
        if len(path) > 3 and path[:3] == ("encoder", "module", "rnns"):
            return int(path[3]) + 1
        return 0

    return splitter
