//! The Llama model: `Config` from GGUF metadata, `Weights` borrowed from the file, a `Session`
//! (llama2.c's `RunState`: every buffer allocated once) and one top-to-bottom `forward`.
//!
//! Shapes below use `dim` (embedding width), `n_heads`/`n_kv_heads` (query and key/value heads,
//! GQA when fewer KV heads), `head_dim = dim / n_heads`, `kv_dim = n_kv_heads * head_dim`,
//! `ffn` (hidden width of the SwiGLU MLP), `vocab`, `ctx` (the context the session was created
//! with, *not* the model's trained maximum). Matrices are GGUF/ggml row-major with `ne[0]` the
//! row length: a `[rows x cols]` matrix has `rows` output features of `cols` weights each.
//!
//! Numerics follow candle's `quantized_llama` (the reference the golden tests compare with):
//! RMSNorm `x / sqrt(mean(x^2) + eps) * w`; RoPE on *adjacent* pairs `(x[2i], x[2i+1])` (ggml's
//! "normal" mode, which is what the GGUF converter's Q/K permutation expects for LLAMA), with
//! `freq_i = theta^(-2i / head_dim)`; softmax attention with `1/sqrt(head_dim)` scaling;
//! `silu(gate) * up`; activations quantized per product like candle (see `kernels`). Output
//! logits come from `output.weight`, or from `token_embd.weight` when the file ties them.
//!
//! Nothing in `forward` allocates: it only writes the session's buffers.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::gguf::{Gguf, GgufError, TensorInfo};
use crate::kernels::{self, ActivationKind, Activations, ScaleExponents};
use crate::limits;
use crate::parallel::{par_chunks, par_ranges_batch, with_parts, Parallel, MAX_PARTS};
use crate::quant::{dequantize_row, GgmlType};

/// Why a model could not be loaded or a forward step could not run.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelError {
    /// The GGUF file itself is invalid, or a required key/tensor is missing.
    Gguf(GgufError),
    /// `general.architecture` is not one the engine runs.
    UnsupportedArchitecture {
        /// The architecture named in the file.
        found: String,
    },
    /// A hyperparameter from metadata is out of range or inconsistent.
    BadConfig {
        /// The metadata key (or derived quantity).
        key: &'static str,
        /// The offending value.
        value: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tensor's shape is not what the config implies.
    TensorShape {
        /// The tensor.
        name: String,
        /// Expected `[ne0, ne1]`.
        expected: [usize; 2],
        /// Found dimensions.
        found: [usize; 4],
    },
    /// A tensor has a type the engine cannot use in its role (e.g. a quantized norm).
    TensorType {
        /// The tensor.
        name: String,
        /// Its type.
        ggml_type: GgmlType,
    },
    /// A session asked for a context of zero or above [`limits::MAX_CONTEXT`].
    BadContext {
        /// The requested context.
        requested: usize,
    },
    /// A token id outside the vocabulary.
    TokenOutOfRange {
        /// The token.
        token: u32,
        /// Vocabulary size.
        vocab: usize,
    },
    /// A batch of no tokens, or of more than [`limits::MAX_BATCH`].
    BadBatch {
        /// Tokens in the batch.
        tokens: usize,
    },
    /// A position at or past the session's context.
    ContextFull {
        /// The position.
        pos: usize,
        /// The session's context.
        ctx: usize,
    },
}

impl From<GgufError> for ModelError {
    fn from(e: GgufError) -> Self {
        ModelError::Gguf(e)
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Gguf(e) => write!(f, "{e}"),
            ModelError::UnsupportedArchitecture { found } => {
                write!(f, "unsupported model architecture '{found}' (need llama)")
            }
            ModelError::BadConfig { key, value, reason } => {
                write!(f, "model config {key} = {value}: {reason}")
            }
            ModelError::TensorShape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor '{name}' has shape {:?}, expected {expected:?}",
                &found[..]
            ),
            ModelError::TensorType { name, ggml_type } => {
                write!(
                    f,
                    "tensor '{name}' has type {ggml_type}, not usable in its role"
                )
            }
            ModelError::BadContext { requested } => write!(
                f,
                "context {requested} out of range (1..={})",
                limits::MAX_CONTEXT
            ),
            ModelError::TokenOutOfRange { token, vocab } => {
                write!(f, "token {token} outside the vocabulary of {vocab}")
            }
            ModelError::BadBatch { tokens } => write!(
                f,
                "a batch of {tokens} tokens (1..={} per forward pass)",
                limits::MAX_BATCH
            ),
            ModelError::ContextFull { pos, ctx } => {
                write!(f, "position {pos} is past the context of {ctx}")
            }
        }
    }
}

/// Hyperparameters, from the `llama.*` metadata keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Embedding width (`llama.embedding_length`).
    pub dim: usize,
    /// Transformer blocks (`llama.block_count`).
    pub n_layers: usize,
    /// Query heads (`llama.attention.head_count`).
    pub n_heads: usize,
    /// Key/value heads (`llama.attention.head_count_kv`, default `n_heads`).
    pub n_kv_heads: usize,
    /// Width of one head: `dim / n_heads`.
    pub head_dim: usize,
    /// Width of the key/value projections: `n_kv_heads * head_dim`.
    pub kv_dim: usize,
    /// Hidden width of the MLP (`llama.feed_forward_length`).
    pub ffn_dim: usize,
    /// Vocabulary size (rows of `token_embd.weight`).
    pub vocab_size: usize,
    /// Context the model was trained for (`llama.context_length`).
    pub trained_context: usize,
    /// RoPE base frequency (`llama.rope.freq_base`, default 10000).
    pub rope_theta: f32,
    /// RMSNorm epsilon (`llama.attention.layer_norm_rms_epsilon`, default 1e-5).
    pub rms_eps: f32,
    /// True when there is no `output.weight` and the embedding doubles as the output matrix.
    pub tied_embeddings: bool,
}

fn dim_key(g: &Gguf<'_>, key: &'static str, max: usize) -> Result<usize, ModelError> {
    let v = g.get_u64(key)?;
    if v == 0 || v > max as u64 {
        return Err(ModelError::BadConfig {
            key,
            value: v,
            reason: "zero or above the limit",
        });
    }
    Ok(v as usize)
}

impl Config {
    /// Reads and checks the hyperparameters of a `llama` GGUF file.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Config, ModelError> {
        let arch = g.get_str("general.architecture")?;
        if arch != "llama" {
            return Err(ModelError::UnsupportedArchitecture {
                found: arch.to_string(),
            });
        }
        let dim = dim_key(g, "llama.embedding_length", limits::MAX_MODEL_DIM)?;
        let n_layers = dim_key(g, "llama.block_count", limits::MAX_LAYERS)?;
        let n_heads = dim_key(g, "llama.attention.head_count", limits::MAX_HEADS)?;
        let n_kv_heads = match g.get("llama.attention.head_count_kv") {
            Some(_) => dim_key(g, "llama.attention.head_count_kv", limits::MAX_HEADS)?,
            None => n_heads,
        };
        let ffn_dim = dim_key(g, "llama.feed_forward_length", limits::MAX_MODEL_DIM)?;
        let trained_context = match g.get("llama.context_length") {
            Some(_) => g.get_u64("llama.context_length")? as usize,
            None => 2048,
        };
        let rope_theta = match g.get("llama.rope.freq_base") {
            Some(_) => g.get_f32("llama.rope.freq_base")?,
            None => 10_000.0,
        };
        let rms_eps = match g.get("llama.attention.layer_norm_rms_epsilon") {
            Some(_) => g.get_f32("llama.attention.layer_norm_rms_epsilon")?,
            None => 1e-5,
        };
        if dim % n_heads != 0 || (dim / n_heads) % 2 != 0 {
            return Err(ModelError::BadConfig {
                key: "llama.attention.head_count",
                value: n_heads as u64,
                reason: "does not divide the embedding into even-width heads",
            });
        }
        if n_heads % n_kv_heads != 0 {
            return Err(ModelError::BadConfig {
                key: "llama.attention.head_count_kv",
                value: n_kv_heads as u64,
                reason: "does not divide the query heads",
            });
        }
        if dim % 32 != 0 || ffn_dim % 32 != 0 {
            return Err(ModelError::BadConfig {
                key: "llama.embedding_length",
                value: dim as u64,
                reason: "embedding and FFN widths must be multiples of 32",
            });
        }
        if !(rope_theta.is_finite() && rope_theta > 1.0) {
            return Err(ModelError::BadConfig {
                key: "llama.rope.freq_base",
                value: rope_theta as u64,
                reason: "must be a finite number above 1",
            });
        }
        if !(rms_eps.is_finite() && rms_eps > 0.0 && rms_eps < 1.0) {
            return Err(ModelError::BadConfig {
                key: "llama.attention.layer_norm_rms_epsilon",
                value: 0,
                reason: "must be in (0, 1)",
            });
        }
        let embd = g.require_tensor("token_embd.weight")?;
        let vocab_size = embd.rows();
        if vocab_size == 0 || vocab_size > limits::MAX_VOCAB {
            return Err(ModelError::BadConfig {
                key: "token_embd.weight rows",
                value: vocab_size as u64,
                reason: "vocabulary empty or above the limit",
            });
        }
        let head_dim = dim / n_heads;
        Ok(Config {
            dim,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            kv_dim: n_kv_heads * head_dim,
            ffn_dim,
            vocab_size,
            trained_context,
            rope_theta,
            rms_eps,
            tied_embeddings: g.tensor("output.weight").is_none(),
        })
    }
}

/// A weight matrix `[rows x cols]` used in place: row `i` is `row_bytes` bytes at
/// `i * row_bytes` of the tensor's data.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    /// Tensor name (for messages).
    pub name: &'a str,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Output features.
    pub rows: usize,
    /// Input features (row length).
    pub cols: usize,
    row_bytes: usize,
    data: &'a [u8],
    /// The largest exponents of the block scales (the fixed-point kernels' reference).
    scales: ScaleExponents,
}

impl<'a> Matrix<'a> {
    fn from_tensor(t: &TensorInfo<'a>, rows: usize, cols: usize) -> Result<Matrix<'a>, ModelError> {
        if t.n_dims > 2 || t.dims[0] != cols || t.dims[1] != rows {
            return Err(ModelError::TensorShape {
                name: t.name.to_string(),
                expected: [cols, rows],
                found: t.dims,
            });
        }
        // Validated by the parser: whole blocks, in bounds.
        let row_bytes = t.ggml_type.row_bytes(cols).unwrap_or(0);
        if row_bytes * rows != t.data.len() {
            return Err(ModelError::TensorShape {
                name: t.name.to_string(),
                expected: [cols, rows],
                found: t.dims,
            });
        }
        Ok(Matrix {
            name: t.name,
            ggml_type: t.ggml_type,
            rows,
            cols,
            row_bytes,
            data: t.data,
            scales: ScaleExponents::of(t.ggml_type, t.data),
        })
    }

    /// The bytes of row `i` (empty when out of range).
    #[inline]
    pub fn row(&self, i: usize) -> &'a [u8] {
        self.data
            .get(i * self.row_bytes..(i + 1) * self.row_bytes)
            .unwrap_or(&[])
    }

    /// The matrix's bytes in the file.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }
}

/// A weight vector (norm weights, `[dim]`), F32 or F16, read in place.
#[derive(Clone, Copy, Debug)]
pub struct Vector<'a> {
    ggml_type: GgmlType,
    data: &'a [u8],
}

impl<'a> Vector<'a> {
    fn from_tensor(t: &TensorInfo<'a>, len: usize) -> Result<Vector<'a>, ModelError> {
        if t.n_dims != 1 || t.dims[0] != len {
            return Err(ModelError::TensorShape {
                name: t.name.to_string(),
                expected: [len, 1],
                found: t.dims,
            });
        }
        if !matches!(t.ggml_type, GgmlType::F32 | GgmlType::F16) {
            return Err(ModelError::TensorType {
                name: t.name.to_string(),
                ggml_type: t.ggml_type,
            });
        }
        Ok(Vector {
            ggml_type: t.ggml_type,
            data: t.data,
        })
    }

    #[inline]
    fn get(&self, i: usize) -> f32 {
        match self.ggml_type {
            GgmlType::F16 => self.data.get(2 * i..2 * i + 2).map_or(0.0, |b| {
                crate::quant::f16_to_f32(u16::from_le_bytes([b[0], b[1]]))
            }),
            _ => self
                .data
                .get(4 * i..4 * i + 4)
                .map_or(0.0, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        }
    }
}

/// One transformer block's weights.
#[derive(Clone, Debug)]
pub struct Layer<'a> {
    /// `attn_norm.weight` `[dim]`.
    pub attn_norm: Vector<'a>,
    /// `attn_q.weight` `[dim x dim]`.
    pub wq: Matrix<'a>,
    /// `attn_k.weight` `[kv_dim x dim]`.
    pub wk: Matrix<'a>,
    /// `attn_v.weight` `[kv_dim x dim]`.
    pub wv: Matrix<'a>,
    /// `attn_output.weight` `[dim x dim]`.
    pub wo: Matrix<'a>,
    /// `ffn_norm.weight` `[dim]`.
    pub ffn_norm: Vector<'a>,
    /// `ffn_gate.weight` `[ffn x dim]`.
    pub w_gate: Matrix<'a>,
    /// `ffn_up.weight` `[ffn x dim]`.
    pub w_up: Matrix<'a>,
    /// `ffn_down.weight` `[dim x ffn]`.
    pub w_down: Matrix<'a>,
}

/// All weights, borrowed from the GGUF file (nothing copied).
#[derive(Clone, Debug)]
pub struct Weights<'a> {
    /// `token_embd.weight` `[vocab x dim]`: one row per token.
    pub token_embd: Matrix<'a>,
    /// The blocks, in order.
    pub layers: Vec<Layer<'a>>,
    /// `output_norm.weight` `[dim]`.
    pub output_norm: Vector<'a>,
    /// `output.weight` `[vocab x dim]`, or `token_embd.weight` when tied.
    pub output: Matrix<'a>,
}

/// Load progress reported to the caller (for a progress bar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Tensors resolved and checked so far.
    pub done: usize,
    /// Tensors to resolve in total.
    pub total: usize,
}

/// A loaded model: config and weights borrowed from the file.
#[derive(Clone, Debug)]
pub struct Model<'a> {
    config: Config,
    /// The weights.
    pub weights: Weights<'a>,
    /// The parsed file (metadata for the tokenizer and chat template).
    pub gguf: Gguf<'a>,
}

impl<'a> Model<'a> {
    /// Parses `file` (in place), reads the config and resolves every weight, calling
    /// `progress` after each tensor.
    pub fn load(
        file: &'a [u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Model<'a>, ModelError> {
        let gguf = Gguf::parse(file)?;
        let c = Config::from_gguf(&gguf)?;
        let total = 3 + 9 * c.n_layers;
        let mut done = 0;
        let mut step = |progress: &mut dyn FnMut(Progress)| {
            done += 1;
            progress(Progress { done, total });
        };
        let mat = |name: &str, rows: usize, cols: usize| -> Result<Matrix<'a>, ModelError> {
            let t = gguf.require_tensor(name)?;
            Matrix::from_tensor(t, rows, cols)
        };
        let vector = |name: &str, len: usize| -> Result<Vector<'a>, ModelError> {
            Vector::from_tensor(gguf.require_tensor(name)?, len)
        };
        let token_embd = mat("token_embd.weight", c.vocab_size, c.dim)?;
        step(progress);
        let mut layers = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            let n = |suffix: &str| alloc::format!("blk.{l}.{suffix}");
            let attn_norm = vector(&n("attn_norm.weight"), c.dim)?;
            step(progress);
            let wq = mat(&n("attn_q.weight"), c.dim, c.dim)?;
            step(progress);
            let wk = mat(&n("attn_k.weight"), c.kv_dim, c.dim)?;
            step(progress);
            let wv = mat(&n("attn_v.weight"), c.kv_dim, c.dim)?;
            step(progress);
            let wo = mat(&n("attn_output.weight"), c.dim, c.dim)?;
            step(progress);
            let ffn_norm = vector(&n("ffn_norm.weight"), c.dim)?;
            step(progress);
            let w_gate = mat(&n("ffn_gate.weight"), c.ffn_dim, c.dim)?;
            step(progress);
            let w_up = mat(&n("ffn_up.weight"), c.ffn_dim, c.dim)?;
            step(progress);
            let w_down = mat(&n("ffn_down.weight"), c.dim, c.ffn_dim)?;
            step(progress);
            layers.push(Layer {
                attn_norm,
                wq,
                wk,
                wv,
                wo,
                ffn_norm,
                w_gate,
                w_up,
                w_down,
            });
        }
        let output_norm = vector("output_norm.weight", c.dim)?;
        step(progress);
        let output = if c.tied_embeddings {
            token_embd
        } else {
            mat("output.weight", c.vocab_size, c.dim)?
        };
        step(progress);
        Ok(Model {
            config: c,
            weights: Weights {
                token_embd,
                layers,
                output_norm,
                output,
            },
            gguf,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes of weights (used in place in the file).
    pub fn weight_bytes(&self) -> usize {
        let w = &self.weights;
        let mut n = w.token_embd.bytes() + w.output_norm.data.len();
        if !self.config.tied_embeddings {
            n += w.output.bytes();
        }
        for l in &w.layers {
            n += l.attn_norm.data.len() + l.ffn_norm.data.len();
            for m in [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down] {
                n += m.bytes();
            }
        }
        n
    }

    /// Number of parameters (elements of all weights).
    pub fn parameter_count(&self) -> usize {
        self.gguf.tensors().iter().map(|t| t.elements()).sum()
    }

    /// Creates a session with a KV cache for `context` positions.
    pub fn session(&self, context: usize) -> Result<Session<'_, 'a>, ModelError> {
        Session::new(self, context)
    }
}

/// The run state of one conversation (llama2.c's `RunState`): every buffer the forward pass
/// needs, allocated once here for a batch of up to [`limits::MAX_BATCH`] tokens, plus the KV
/// cache for `context` positions. Per-token buffers hold one row per token of the batch.
pub struct Session<'m, 'a> {
    model: &'m Model<'a>,
    context: usize,
    /// Residual stream `[batch x dim]`.
    x: Vec<f32>,
    /// Normed input / attention output `[batch x dim]`.
    xb: Vec<f32>,
    /// Projection output `[batch x dim]`.
    xb2: Vec<f32>,
    /// Fused q|k|v `[batch x (dim + 2 kv_dim)]`.
    qkv: Vec<f32>,
    /// Fused gate|up `[batch x 2 ffn]`, then `silu(gate) * up` in the first half of each row.
    hb: Vec<f32>,
    /// Attention scratch `[batch x n_heads x (context + head_dim)]`: per token and head the
    /// scores, then the head's output.
    att: Vec<f32>,
    /// Quantized activations, one per token of a batch (capacity `max(dim, ffn)`).
    acts: Vec<Activations>,
    /// Logits `[vocab]` of the last token of the last batch.
    logits: Vec<f32>,
    /// Keys `[n_layers x context x kv_dim]`.
    key_cache: Vec<f32>,
    /// Values `[n_layers x context x kv_dim]`.
    value_cache: Vec<f32>,
    /// RoPE cosines `[context x head_dim/2]`.
    rope_cos: Vec<f32>,
    /// RoPE sines `[context x head_dim/2]`.
    rope_sin: Vec<f32>,
}

fn rms_norm(out: &mut [f32], x: &[f32], w: &Vector<'_>, eps: f32) {
    // Written as candle writes it (`x / rms * w`, sequential sum): the activations are
    // quantized right after, and matching the reference's rounding keeps the two close.
    let ss: f32 = x.iter().map(|v| v * v).sum::<f32>();
    let rms = libm::sqrtf(ss / x.len() as f32 + eps);
    for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        *o = v / rms * w.get(i);
    }
}

fn rope(v: &mut [f32], cos: &[f32], sin: &[f32]) {
    for ((pair, &c), &s) in v.chunks_exact_mut(2).zip(cos).zip(sin) {
        let (a, b) = (pair[0], pair[1]);
        pair[0] = a * c - b * s;
        pair[1] = a * s + b * c;
    }
}

/// `outs[t] = [m0 x acts[t] | m1 x acts[t] | ...]` for every token `t`: the products of several
/// matrices over one input per token, fused into one parallel run (one barrier instead of
/// several), each worker taking the same rows of every token's output.
fn matvec_batch(
    par: &dyn Parallel,
    ms: &[&Matrix<'_>],
    acts: &[&Activations],
    outs: &mut [&mut [f32]],
) {
    par_ranges_batch(par, outs, &|first, parts| {
        // This worker's rows `first..first + rows` of the stacked matrices.
        let rows = parts.first().map_or(0, |part| part.len());
        let mut offset = 0; // first stacked row of the current matrix
        let mut done = 0; // rows of the share filled so far
        for m in ms {
            let start = first + done;
            if done < rows && start < offset + m.rows {
                let n = (offset + m.rows - start).min(rows - done);
                with_parts(parts, done..done + n, |sub| {
                    kernels::dot_rows_batch(
                        m.ggml_type,
                        m.data,
                        m.row_bytes,
                        start - offset,
                        m.scales,
                        acts,
                        sub,
                    );
                });
                done += n;
            }
            offset += m.rows;
        }
    });
}

/// `gate[t] = silu(w_gate x acts[t]) * (w_up x acts[t])` for every token `t`, in one parallel
/// run: each worker takes the same rows of both matrices and applies the SwiGLU product to
/// its own rows at once (one `expf` per row), so the activation function runs on every core
/// instead of after the barrier on one. `ups[t]` holds the up products.
fn gated_matvec_batch(
    par: &dyn Parallel,
    (w_gate, w_up): (&Matrix<'_>, &Matrix<'_>),
    acts: &[&Activations],
    (gates, ups): (&mut [&mut [f32]], &mut [&mut [f32]]),
) {
    let n = gates.len();
    let mut outs: [&mut [f32]; MAX_PARTS] = Default::default();
    for (slot, out) in outs.iter_mut().zip(gates.iter_mut()) {
        *slot = &mut **out;
    }
    for (slot, out) in outs[n..].iter_mut().zip(ups.iter_mut()) {
        *slot = &mut **out;
    }
    par_ranges_batch(par, &mut outs[..2 * n], &|first, parts| {
        let (gates, ups) = parts.split_at_mut(n);
        kernels::dot_rows_batch(
            w_gate.ggml_type,
            w_gate.data,
            w_gate.row_bytes,
            first,
            w_gate.scales,
            acts,
            gates,
        );
        kernels::dot_rows_batch(
            w_up.ggml_type,
            w_up.data,
            w_up.row_bytes,
            first,
            w_up.scales,
            acts,
            ups,
        );
        for (gate, up) in gates.iter_mut().zip(ups.iter()) {
            for (g, &u) in gate.iter_mut().zip(up.iter()) {
                *g = *g / (1.0 + libm::expf(-*g)) * u;
            }
        }
    });
}

/// Whether any of `ms` needs the 32-element and the Q8_K activation forms.
fn needs(ms: &[&Matrix<'_>]) -> (bool, bool) {
    let mut q32 = false;
    let mut qk = false;
    for m in ms {
        match ActivationKind::for_weights(m.ggml_type) {
            ActivationKind::Q8x32 => q32 = true,
            ActivationKind::Q8K => qk = true,
            ActivationKind::Float => {}
        }
    }
    (q32, qk)
}

/// The first `n` rows of `len` elements of `buffer`, as one slice each (no allocation).
fn rows_of(buffer: &mut [f32], len: usize, n: usize) -> [&mut [f32]; limits::MAX_BATCH] {
    let mut rows: [&mut [f32]; limits::MAX_BATCH] = Default::default();
    for (row, chunk) in rows
        .iter_mut()
        .zip(buffer.chunks_exact_mut(len.max(1)))
        .take(n)
    {
        *row = chunk;
    }
    rows
}

impl<'m, 'a> Session<'m, 'a> {
    fn new(model: &'m Model<'a>, context: usize) -> Result<Session<'m, 'a>, ModelError> {
        let c = &model.config;
        if context == 0 || context > limits::MAX_CONTEXT {
            return Err(ModelError::BadContext { requested: context });
        }
        let half = c.head_dim / 2;
        let mut rope_cos = vec![0f32; context * half];
        let mut rope_sin = vec![0f32; context * half];
        for i in 0..half {
            // candle: 1 / theta^(2i / head_dim), angle = pos * freq, all in f32.
            let freq = 1.0 / libm::powf(c.rope_theta, (2 * i) as f32 / c.head_dim as f32);
            for pos in 0..context {
                let angle = pos as f32 * freq;
                rope_cos[pos * half + i] = libm::cosf(angle);
                rope_sin[pos * half + i] = libm::sinf(angle);
            }
        }
        let cache = c.n_layers * context * c.kv_dim;
        let batch = limits::MAX_BATCH;
        Ok(Session {
            model,
            context,
            x: vec![0.0; batch * c.dim],
            xb: vec![0.0; batch * c.dim],
            xb2: vec![0.0; batch * c.dim],
            qkv: vec![0.0; batch * (c.dim + 2 * c.kv_dim)],
            hb: vec![0.0; batch * 2 * c.ffn_dim],
            att: vec![0.0; batch * c.n_heads * (context + c.head_dim)],
            acts: (0..batch)
                .map(|_| Activations::new(c.dim.max(c.ffn_dim)))
                .collect(),
            logits: vec![0.0; c.vocab_size],
            key_cache: vec![0.0; cache],
            value_cache: vec![0.0; cache],
            rope_cos,
            rope_sin,
        })
    }

    /// The session's context (KV cache length in positions).
    pub fn context(&self) -> usize {
        self.context
    }

    /// The model.
    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }

    /// Bytes this session allocated (KV cache and every scratch buffer).
    pub fn memory_bytes(&self) -> usize {
        let f = core::mem::size_of::<f32>();
        (self.x.len()
            + self.xb.len()
            + self.xb2.len()
            + self.qkv.len()
            + self.hb.len()
            + self.att.len()
            + self.logits.len()
            + self.key_cache.len()
            + self.value_cache.len()
            + self.rope_cos.len()
            + self.rope_sin.len())
            * f
            + self.acts.iter().map(Activations::heap_bytes).sum::<usize>()
    }

    /// Bytes of the KV cache alone.
    pub fn kv_cache_bytes(&self) -> usize {
        (self.key_cache.len() + self.value_cache.len()) * core::mem::size_of::<f32>()
    }

    /// Forgets the conversation (positions restart at 0). The KV cache needs no clearing:
    /// position `p` only ever reads cache entries `0..=p`, all written by this conversation.
    pub fn reset(&mut self) {
        self.logits.fill(0.0);
    }

    /// The logits of the last forward step.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Runs `token` at position `pos` through the model and returns the next-token logits
    /// `[vocab]`. Positions must be fed in order from 0 (after `reset`). Allocation-free.
    pub fn forward(
        &mut self,
        token: u32,
        pos: usize,
        par: &dyn Parallel,
    ) -> Result<&[f32], ModelError> {
        self.forward_batch(&[token], pos, par)
    }

    /// Runs `tokens` (1 to [`limits::MAX_BATCH`]) at positions `start..start + tokens.len()`
    /// through the model in one pass and returns the logits after the *last* of them: what a
    /// prompt needs, since only the last prompt token's prediction is used. Every weight block
    /// is read once for up to four tokens, and the output matrix only for the last. The
    /// results for each token are exactly those of feeding the tokens one by one with
    /// [`Session::forward`]. Allocation-free.
    pub fn forward_batch(
        &mut self,
        tokens: &[u32],
        start: usize,
        par: &dyn Parallel,
    ) -> Result<&[f32], ModelError> {
        let model = self.model;
        let c = &model.config;
        let w = &model.weights;
        let n = tokens.len();
        if n == 0 || n > limits::MAX_BATCH {
            return Err(ModelError::BadBatch { tokens: n });
        }
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(ModelError::TokenOutOfRange {
                token,
                vocab: c.vocab_size,
            });
        }
        let end = start.saturating_add(n);
        if end > self.context {
            return Err(ModelError::ContextFull {
                pos: end - 1,
                ctx: self.context,
            });
        }
        let (dim, kv_dim, hd, ctx) = (c.dim, c.kv_dim, c.head_dim, self.context);
        let (ffn, heads) = (c.ffn_dim, c.n_heads);
        let half = hd / 2;
        let heads_per_kv = heads / c.n_kv_heads;
        let qkv_len = dim + 2 * kv_dim;

        // x[t] [dim] = token_embd[tokens[t]]
        for (x, &token) in self.x.chunks_exact_mut(dim).zip(tokens) {
            dequantize_row(w.token_embd.ggml_type, w.token_embd.row(token as usize), x);
        }

        for (l, layer) in w.layers.iter().enumerate() {
            // ---- attention ----
            // xb[t] [dim] = rmsnorm(x[t]) * attn_norm
            let qkv_ms = [&layer.wq, &layer.wk, &layer.wv];
            let (q32, qk) = needs(&qkv_ms);
            for t in 0..n {
                let (x, xb) = (&self.x[t * dim..][..dim], &mut self.xb[t * dim..][..dim]);
                rms_norm(xb, x, &layer.attn_norm, c.rms_eps);
                self.acts[t].set(xb, q32, qk);
            }
            // qkv[t] [dim | kv_dim | kv_dim] = [wq; wk; wv] x xb[t]
            {
                let acts: [&Activations; limits::MAX_BATCH] =
                    core::array::from_fn(|t| &self.acts[t.min(n - 1)]);
                let mut outs = rows_of(&mut self.qkv, qkv_len, n);
                matvec_batch(par, &qkv_ms, &acts[..n], &mut outs[..n]);
            }
            // RoPE on every query and key head; key_cache[l][pos], value_cache[l][pos] = k, v
            let layer_base = l * ctx * kv_dim;
            for t in 0..n {
                let pos = start + t;
                let cos = &self.rope_cos[pos * half..(pos + 1) * half];
                let sin = &self.rope_sin[pos * half..(pos + 1) * half];
                let (q, kv) = self.qkv[t * qkv_len..][..qkv_len].split_at_mut(dim);
                let (k, v) = kv.split_at_mut(kv_dim);
                for head in q.chunks_exact_mut(hd) {
                    rope(head, cos, sin);
                }
                for head in k.chunks_exact_mut(hd) {
                    rope(head, cos, sin);
                }
                let slot = layer_base + pos * kv_dim;
                self.key_cache[slot..slot + kv_dim].copy_from_slice(k);
                self.value_cache[slot..slot + kv_dim].copy_from_slice(v);
            }

            // Per token t and head h (causal: positions 0..=start + t):
            // att [pos+1] = softmax(q_h . k_s / sqrt(hd)), out_h [hd] = sum att_s v_s.
            let qkv: &[f32] = &self.qkv;
            let key_cache = &self.key_cache[layer_base..layer_base + ctx * kv_dim];
            let value_cache = &self.value_cache[layer_base..layer_base + ctx * kv_dim];
            let scale = 1.0 / libm::sqrtf(hd as f32);
            let scratch_len = ctx + hd;
            par_chunks(
                par,
                &mut self.att[..n * heads * scratch_len],
                scratch_len,
                &|unit, scratch| {
                    let (t, h) = (unit / heads, unit % heads);
                    let pos = start + t;
                    let (scores, out) = scratch.split_at_mut(ctx);
                    let qh = &qkv[t * qkv_len + h * hd..][..hd];
                    let kv_off = (h / heads_per_kv) * hd;
                    let mut max = f32::NEG_INFINITY;
                    for (s, score) in scores[..=pos].iter_mut().enumerate() {
                        let ks = &key_cache[s * kv_dim + kv_off..][..hd];
                        *score = qh.iter().zip(ks).map(|(a, b)| a * b).sum::<f32>() * scale;
                        max = max.max(*score);
                    }
                    let mut sum = 0.0;
                    for score in scores[..=pos].iter_mut() {
                        *score = libm::expf(*score - max);
                        sum += *score;
                    }
                    out.fill(0.0);
                    for (s, &score) in scores[..=pos].iter().enumerate() {
                        let vs = &value_cache[s * kv_dim + kv_off..][..hd];
                        let a = score / sum;
                        for (o, &vv) in out.iter_mut().zip(vs) {
                            *o += a * vv;
                        }
                    }
                },
            );
            // xb[t] [dim] = concat of the heads' outputs of token t
            for t in 0..n {
                for (h, out) in self.xb[t * dim..][..dim].chunks_exact_mut(hd).enumerate() {
                    let base = (t * heads + h) * scratch_len + ctx;
                    out.copy_from_slice(&self.att[base..base + hd]);
                }
            }
            // xb2[t] [dim] = wo x xb[t]; x[t] += xb2[t]
            let (q32, qk) = needs(&[&layer.wo]);
            for t in 0..n {
                self.acts[t].set(&self.xb[t * dim..][..dim], q32, qk);
            }
            {
                let acts: [&Activations; limits::MAX_BATCH] =
                    core::array::from_fn(|t| &self.acts[t.min(n - 1)]);
                let mut outs = rows_of(&mut self.xb2, dim, n);
                matvec_batch(par, &[&layer.wo], &acts[..n], &mut outs[..n]);
            }
            for (x, &d) in self.x[..n * dim].iter_mut().zip(&self.xb2[..n * dim]) {
                *x += d;
            }

            // ---- feed-forward (SwiGLU) ----
            // xb[t] [dim] = rmsnorm(x[t]) * ffn_norm
            let (q32, qk) = needs(&[&layer.w_gate, &layer.w_up]);
            for t in 0..n {
                let (x, xb) = (&self.x[t * dim..][..dim], &mut self.xb[t * dim..][..dim]);
                rms_norm(xb, x, &layer.ffn_norm, c.rms_eps);
                self.acts[t].set(xb, q32, qk);
            }
            // hb[t] [ffn | ffn] = [w_gate; w_up] x xb[t], then hb[t][..ffn] = silu(gate) * up
            {
                let acts: [&Activations; limits::MAX_BATCH] =
                    core::array::from_fn(|t| &self.acts[t.min(n - 1)]);
                let mut gates: [&mut [f32]; limits::MAX_BATCH] = Default::default();
                let mut ups: [&mut [f32]; limits::MAX_BATCH] = Default::default();
                for ((gate, up), row) in gates
                    .iter_mut()
                    .zip(ups.iter_mut())
                    .zip(self.hb.chunks_exact_mut(2 * ffn))
                    .take(n)
                {
                    (*gate, *up) = row.split_at_mut(ffn);
                }
                gated_matvec_batch(
                    par,
                    (&layer.w_gate, &layer.w_up),
                    &acts[..n],
                    (&mut gates[..n], &mut ups[..n]),
                );
            }
            let (q32, qk) = needs(&[&layer.w_down]);
            for t in 0..n {
                self.acts[t].set(&self.hb[t * 2 * ffn..][..ffn], q32, qk);
            }
            // xb[t] [dim] = w_down x hb[t]; x[t] += xb[t]
            {
                let acts: [&Activations; limits::MAX_BATCH] =
                    core::array::from_fn(|t| &self.acts[t.min(n - 1)]);
                let mut outs = rows_of(&mut self.xb, dim, n);
                matvec_batch(par, &[&layer.w_down], &acts[..n], &mut outs[..n]);
            }
            for (x, &d) in self.x[..n * dim].iter_mut().zip(&self.xb[..n * dim]) {
                *x += d;
            }
        }

        // logits [vocab] = output x rmsnorm(x[last]) * output_norm
        let last = (n - 1) * dim;
        rms_norm(
            &mut self.xb[..dim],
            &self.x[last..last + dim],
            &w.output_norm,
            c.rms_eps,
        );
        let (q32, qk) = needs(&[&w.output]);
        self.acts[0].set(&self.xb[..dim], q32, qk);
        {
            let mut outs = [&mut self.logits[..]];
            matvec_batch(par, &[&w.output], &[&self.acts[0]], &mut outs);
        }
        Ok(&self.logits)
    }
}

/// Index of the largest logit (the greedy choice; the first on ties, like candle's argmax).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::writer::{write, WTensor, WValue};
    use crate::parallel::Sequential;
    use crate::quant::quantize_row;
    use alloc::string::ToString;

    /// A 1-layer Llama with dim 64, 2 heads (1 KV head), FFN 64, vocab 8: Q8_0 and Q4_1
    /// matrices, F32 norms, tied embeddings.
    fn tiny(skip: Option<&str>, arch: &str) -> Vec<u8> {
        let (dim, ffn, vocab, kv) = (64usize, 64usize, 8usize, 32usize);
        let mut seed = 7u32;
        let mut m = |name: &str, rows: usize, cols: usize, ty: GgmlType| {
            let mut data = Vec::new();
            let x: Vec<f32> = (0..rows * cols)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.5
                })
                .collect();
            assert!(quantize_row(ty, &x, &mut data));
            WTensor {
                name: name.to_string(),
                dims: vec![cols as u64, rows as u64],
                ggml_type: ty,
                data,
            }
        };
        let norm = |name: &str| WTensor {
            name: name.to_string(),
            dims: vec![dim as u64],
            ggml_type: GgmlType::F32,
            data: (0..dim).flat_map(|_| 1.0f32.to_le_bytes()).collect(),
        };
        let tensors = vec![
            m("token_embd.weight", vocab, dim, GgmlType::Q8_0),
            norm("blk.0.attn_norm.weight"),
            m("blk.0.attn_q.weight", dim, dim, GgmlType::Q4_1),
            m("blk.0.attn_k.weight", kv, dim, GgmlType::Q4_1),
            m("blk.0.attn_v.weight", kv, dim, GgmlType::Q8_0),
            m("blk.0.attn_output.weight", dim, dim, GgmlType::Q4_0),
            norm("blk.0.ffn_norm.weight"),
            m("blk.0.ffn_gate.weight", ffn, dim, GgmlType::Q4_1),
            m("blk.0.ffn_up.weight", ffn, dim, GgmlType::F16),
            m("blk.0.ffn_down.weight", dim, ffn, GgmlType::Q8_0),
            norm("output_norm.weight"),
        ];
        let tensors: Vec<WTensor> = tensors
            .into_iter()
            .filter(|t| Some(t.name.as_str()) != skip)
            .collect();
        let md = vec![
            (
                "general.architecture".to_string(),
                WValue::Str(arch.to_string()),
            ),
            (
                "llama.embedding_length".to_string(),
                WValue::U32(dim as u32),
            ),
            ("llama.block_count".to_string(), WValue::U32(1)),
            ("llama.attention.head_count".to_string(), WValue::U32(2)),
            ("llama.attention.head_count_kv".to_string(), WValue::U32(1)),
            (
                "llama.feed_forward_length".to_string(),
                WValue::U32(ffn as u32),
            ),
            ("llama.rope.freq_base".to_string(), WValue::F32(10000.0)),
        ];
        write(&md, &tensors)
    }

    #[test]
    fn tiny_model_loads_and_runs() {
        let file = tiny(None, "llama");
        let mut calls = 0;
        let model = Model::load(&file, &mut |p| {
            calls += 1;
            assert!(p.done <= p.total);
        })
        .unwrap();
        assert_eq!(calls, 3 + 9);
        let c = model.config();
        assert_eq!((c.dim, c.head_dim, c.kv_dim, c.vocab_size), (64, 32, 32, 8));
        assert!(c.tied_embeddings);
        assert_eq!(c.rms_eps, 1e-5);
        let mut s = model.session(4).unwrap();
        let a = s.forward(3, 0, &Sequential).unwrap().to_vec();
        assert!(a.iter().all(|v| v.is_finite()));
        let b = s.forward(5, 1, &Sequential).unwrap().to_vec();
        assert_ne!(a, b);
        // Same inputs after reset, on two threads: identical logits.
        s.reset();
        let a2 = s
            .forward(3, 0, &crate::parallel::ThreadScope { workers: 2 })
            .unwrap()
            .to_vec();
        assert_eq!(a, a2);
        assert_eq!(
            s.forward(8, 1, &Sequential),
            Err(ModelError::TokenOutOfRange { token: 8, vocab: 8 })
        );
        assert_eq!(
            s.forward(0, 4, &Sequential),
            Err(ModelError::ContextFull { pos: 4, ctx: 4 })
        );
        assert!(matches!(
            model.session(0),
            Err(ModelError::BadContext { requested: 0 })
        ));
        assert!(model.session(limits::MAX_CONTEXT + 1).is_err());
    }

    #[test]
    fn a_batch_gives_exactly_the_logits_of_its_tokens_one_by_one() {
        let file = tiny(None, "llama");
        let model = Model::load(&file, &mut |_| {}).unwrap();
        let tokens = [3u32, 5, 1, 7, 2, 0, 6, 4, 1, 3];
        let mut one = model.session(16).unwrap();
        let mut singles = Vec::new();
        for (pos, &t) in tokens.iter().enumerate() {
            singles.push(one.forward(t, pos, &Sequential).unwrap().to_vec());
        }
        for split in [1usize, 2, 3, 4, 5, 8] {
            let mut batched = model.session(16).unwrap();
            let mut start = 0;
            while start < tokens.len() {
                let end = (start + split).min(tokens.len());
                let logits = batched
                    .forward_batch(
                        &tokens[start..end],
                        start,
                        &crate::parallel::ThreadScope { workers: 3 },
                    )
                    .unwrap()
                    .to_vec();
                assert_eq!(
                    logits,
                    singles[end - 1],
                    "batches of {split}, ending at {end}"
                );
                start = end;
            }
        }
        let mut s = model.session(4).unwrap();
        assert_eq!(
            s.forward_batch(&[], 0, &Sequential),
            Err(ModelError::BadBatch { tokens: 0 })
        );
        assert_eq!(
            s.forward_batch(&[1; limits::MAX_BATCH + 1], 0, &Sequential),
            Err(ModelError::BadBatch {
                tokens: limits::MAX_BATCH + 1
            })
        );
        assert_eq!(
            s.forward_batch(&[1, 2, 3], 2, &Sequential),
            Err(ModelError::ContextFull { pos: 4, ctx: 4 })
        );
        assert_eq!(
            s.forward_batch(&[1, 9], 0, &Sequential),
            Err(ModelError::TokenOutOfRange { token: 9, vocab: 8 })
        );
    }

    #[test]
    fn load_errors_name_what_is_wrong() {
        let e = Model::load(&tiny(Some("blk.0.ffn_up.weight"), "llama"), &mut |_| {}).unwrap_err();
        assert_eq!(
            e,
            ModelError::Gguf(GgufError::MissingTensor {
                name: "blk.0.ffn_up.weight".to_string()
            })
        );
        let e = Model::load(&tiny(None, "gpt2"), &mut |_| {}).unwrap_err();
        assert_eq!(
            e,
            ModelError::UnsupportedArchitecture {
                found: "gpt2".to_string()
            }
        );
        let e = Model::load(&tiny(Some("output_norm.weight"), "llama"), &mut |_| {}).unwrap_err();
        assert!(alloc::format!("{e}").contains("output_norm.weight"));
    }

    #[test]
    fn position_zero_does_not_depend_on_the_context_size() {
        // Position 0 reads only its own cache entry: sessions with different contexts (and
        // so different cache layouts) give identical logits.
        let file = tiny(None, "llama");
        let model = Model::load(&file, &mut |_| {}).unwrap();
        let mut s1 = model.session(2).unwrap();
        let mut s2 = model.session(3).unwrap();
        assert_eq!(
            s1.forward(2, 0, &Sequential).unwrap().to_vec(),
            s2.forward(2, 0, &Sequential).unwrap().to_vec()
        );
    }

    #[test]
    fn rope_rotates_adjacent_pairs() {
        let mut v = [1.0f32, 0.0, 0.0, 1.0];
        let (c, s) = (libm::cosf(0.5), libm::sinf(0.5));
        rope(&mut v, &[c, 1.0], &[s, 0.0]);
        assert_eq!(v, [c, s, 0.0, 1.0]);
    }
}
