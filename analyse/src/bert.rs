//! Vigie's own forward pass of a BERT sentence encoder, on tch, over the same
//! `model.safetensors` that rust-bert loads: the [`Runtime`]s `f32`, `f16` and `int8`.
//!
//! rust-bert's BERT spells GELU and attention out op by op; this one uses libtorch's fused
//! `gelu` and `scaled_dot_product_attention`, and one matrix product for the query, key and
//! value. Each runtime changes one thing more than the one before:
//! - `f32`: the model as it is;
//! - `f16`: the word-embedding table kept in f16 (e5's is 250,037 x 384: 384 MB in f32, 192 MB
//!   in f16); the rows a batch needs are read back to f32;
//! - `int8`: that, and the linear layers of the encoder on int8 weights through fbgemm — the
//!   attention's query, key, value and output projections and the feed-forward's first layer,
//!   two thirds of the work on a tweet: each weight matrix is quantised once at load (one scale
//!   and zero point per matrix, as PyTorch's dynamic quantisation does) and each input is
//!   quantised on the fly per call. The feed-forward's second layer stays in f32: its input,
//!   after GELU, has the widest range, and quantising it too cost 0.005 of average precision
//!   on unseen crises against 0.001 without it (measured in `docs/classifier.md`).
//!
//! LayerNorms, attention, GELU and pooling stay in f32 in all three.
//!
//! Guarantees: `f32` gives rust-bert's vectors to 1e-4 (the embedding-reference test checks
//! both against Python); `int8` changes them a little (cosine above 0.99 to Python's on the
//! reference texts of both models, tested), and what that does to the scores is measured
//! (`vigie bench classify`, `docs/classifier.md`). Mean pooling over the attended pieces, then
//! L2 normalisation when the directory's `modules.json` has a `Normalize` module, as
//! sentence-transformers does.

use crate::AnalyseError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Kind, Scalar, Tensor};

/// How the encoder runs the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// rust-bert's `SentenceEmbeddingsModel` (the reference implementation).
    RustBert,
    /// Vigie's forward pass in f32.
    F32,
    /// Vigie's forward pass, the word-embedding table in f16.
    F16,
    /// Vigie's forward pass, the word-embedding table in f16 and most linear layers on int8
    /// weights (fbgemm): the default, 1.7 times the Python encoder's speed at the same average
    /// precision (docs/classifier.md).
    #[default]
    Int8,
}

impl Runtime {
    /// The name used in the configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::RustBert => "rust-bert",
            Runtime::F32 => "f32",
            Runtime::F16 => "f16",
            Runtime::Int8 => "int8",
        }
    }

    /// What the embedding cache keys vectors by: the name, and a version that changes when
    /// what the runtime computes does (int8's second version keeps the feed-forward's second
    /// layer in f32).
    pub fn cache_tag(self) -> &'static str {
        match self {
            Runtime::Int8 => "int8/2",
            other => other.as_str(),
        }
    }

    /// Every runtime, in the order benchmarks list them.
    pub const ALL: [Runtime; 4] = [Runtime::RustBert, Runtime::F32, Runtime::F16, Runtime::Int8];
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The fields of `config.json` the forward pass needs.
#[derive(Deserialize)]
struct BertConfig {
    hidden_size: i64,
    num_attention_heads: i64,
    num_hidden_layers: usize,
    layer_norm_eps: f64,
    #[serde(default)]
    hidden_act: Option<String>,
}

/// A linear layer: `x W^T + b`, on f32 or int8 weights.
enum Linear {
    /// f32 weights, `(out, in)`.
    F32 { weight: Tensor, bias: Tensor },
    /// int8 weights quantised at load (`q = round(w / scale) + zero_point`), fbgemm-packed.
    Int8 {
        weight: Tensor,
        packed: Tensor,
        col_offsets: Tensor,
        scale: f64,
        zero_point: i64,
        bias: Tensor,
    },
}

impl Linear {
    /// The layer on f32 weights, or on int8 ones; `Err` with libtorch's words when fbgemm
    /// cannot pack them (a CPU without AVX2).
    fn new(weight: Tensor, bias: Tensor, int8: bool) -> Result<Linear, String> {
        if !int8 {
            return Ok(Linear::F32 { weight, bias });
        }
        // fbgemm's choice of parameters for int8 (-128..127) over [min(w, 0), max(w, 0)].
        let lo = weight.min().double_value(&[]).min(0.0);
        let hi = weight.max().double_value(&[]).max(0.0);
        let scale = if hi > lo { (hi - lo) / 255.0 } else { 0.1 };
        let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i64;
        let q = (&weight / scale)
            .round()
            .g_add_scalar(zero_point)
            .clamp(-128, 127)
            .to_kind(Kind::Int8);
        let k = weight.size()[1];
        // Per output: the sum of its quantised weights, less the zero point's share.
        let col_offsets = (q.to_kind(Kind::Int).sum_dim_intlist(1, false, Kind::Int)
            - zero_point * k)
            .to_kind(Kind::Int);
        let packed = q
            .f_fbgemm_pack_quantized_matrix()
            .map_err(|e| e.to_string())?;
        Ok(Linear::Int8 {
            weight: q,
            packed,
            col_offsets,
            scale,
            zero_point,
            bias,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Linear::F32 { weight, bias } => x.linear(weight, Some(bias)),
            Linear::Int8 {
                weight,
                packed,
                col_offsets,
                scale,
                zero_point,
                bias,
            } => x.fbgemm_linear_int8_weight_fp32_activation(
                weight,
                packed,
                col_offsets,
                Scalar::float(*scale),
                Scalar::int(*zero_point),
                bias,
            ),
        }
    }
}

/// A LayerNorm's weight and bias.
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

/// One transformer layer (the model's, or a trainable copy of it).
pub struct Layer {
    /// Query, key and value in one product: `(3 * hidden, hidden)`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The tensors of a weights file, taken out by name as the layers are built.
struct Weights<'a> {
    tensors: HashMap<String, Tensor>,
    dir: &'a Path,
    int8: bool,
}

impl Weights<'_> {
    /// The f32 tensor `name`, or an error that names it.
    fn take(&mut self, name: &str) -> Result<Tensor, AnalyseError> {
        self.tensors
            .remove(name)
            .map(|t| t.to_kind(Kind::Float))
            .ok_or_else(|| AnalyseError::Model {
                dir: self.dir.to_path_buf(),
                message: format!("model.safetensors has no tensor `{name}`"),
            })
    }

    /// `{prefix}.weight` and `{prefix}.bias`.
    fn pair(&mut self, prefix: &str) -> Result<(Tensor, Tensor), AnalyseError> {
        Ok((
            self.take(&format!("{prefix}.weight"))?,
            self.take(&format!("{prefix}.bias"))?,
        ))
    }

    /// The linear layer `prefix`, quantised when the runtime is int8.
    fn linear(&mut self, prefix: &str) -> Result<Linear, AnalyseError> {
        let (weight, bias) = self.pair(prefix)?;
        self.quantised(weight, bias)
    }

    /// The linear layer `prefix`, in f32 whatever the runtime.
    fn exact(&mut self, prefix: &str) -> Result<Linear, AnalyseError> {
        let (weight, bias) = self.pair(prefix)?;
        Ok(Linear::F32 { weight, bias })
    }

    /// A linear layer of `weight` and `bias`, quantised when the runtime is int8.
    fn quantised(&self, weight: Tensor, bias: Tensor) -> Result<Linear, AnalyseError> {
        Linear::new(weight, bias, self.int8).map_err(|e| AnalyseError::Model {
            dir: self.dir.to_path_buf(),
            message: format!(
                "the int8 runtime needs fbgemm, which this CPU does not run ({e}); set \
                 encoder_runtime = \"f16\""
            ),
        })
    }

    /// The LayerNorm `{prefix}.LayerNorm`.
    fn norm(&mut self, prefix: &str) -> Result<LayerNorm, AnalyseError> {
        let (weight, bias) = self.pair(&format!("{prefix}.LayerNorm"))?;
        Ok(LayerNorm { weight, bias })
    }
}

/// A BERT encoder's weights, ready for [`Bert::embed`].
pub struct Bert {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: i64,
    hidden: i64,
    eps: f64,
}

impl Bert {
    /// Loads `dir`'s `config.json` and `model.safetensors`, quantising the linear layers when
    /// `runtime` is [`Runtime::Int8`].
    pub fn load(dir: &Path, runtime: Runtime) -> Result<Bert, AnalyseError> {
        let config: BertConfig = crate::classifier::read_json(&dir.join("config.json"))?;
        let invalid = |message: String| AnalyseError::Model {
            dir: dir.to_path_buf(),
            message,
        };
        if let Some(act) = config.hidden_act.as_deref().filter(|a| *a != "gelu") {
            return Err(invalid(format!(
                "hidden_act {act:?}: Vigie's runtimes know BERT's exact \"gelu\" only; use \
                 encoder_runtime = \"rust-bert\""
            )));
        }
        let file = dir.join("model.safetensors");
        let tensors = Tensor::read_safetensors(&file)
            .map_err(|e| invalid(format!("{}: {e}", file.display())))?
            .into_iter()
            // rust-bert accepts both `bert.`-prefixed and bare names.
            .map(|(name, t)| (name.trim_start_matches("bert.").to_string(), t))
            .collect();
        let mut w = Weights {
            tensors,
            dir,
            int8: runtime == Runtime::Int8,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let (qw, qb) = w.pair(&format!("{p}.attention.self.query"))?;
            let (kw, kb) = w.pair(&format!("{p}.attention.self.key"))?;
            let (vw, vb) = w.pair(&format!("{p}.attention.self.value"))?;
            layers.push(Layer {
                qkv: w.quantised(Tensor::cat(&[qw, kw, vw], 0), Tensor::cat(&[qb, kb, vb], 0))?,
                attention_out: w.linear(&format!("{p}.attention.output.dense"))?,
                attention_norm: w.norm(&format!("{p}.attention.output"))?,
                intermediate: w.linear(&format!("{p}.intermediate.dense"))?,
                // Its input, after GELU, has the widest range of all: one int8 scale for a
                // whole batch of it lost 0.005 of AP (docs/classifier.md); kept in f32.
                output: w.exact(&format!("{p}.output.dense"))?,
                output_norm: w.norm(&format!("{p}.output"))?,
            });
        }
        let mut word = w.take("embeddings.word_embeddings.weight")?;
        if matches!(runtime, Runtime::F16 | Runtime::Int8) {
            word = word.to_kind(Kind::Half);
        }
        Ok(Bert {
            word,
            position: w.take("embeddings.position_embeddings.weight")?,
            token_type: w.take("embeddings.token_type_embeddings.weight")?,
            embeddings_norm: w.norm("embeddings")?,
            layers,
            heads: config.num_attention_heads,
            hidden: config.hidden_size,
            eps: config.layer_norm_eps,
        })
    }

    fn layer_norm(&self, x: &Tensor, n: &LayerNorm) -> Tensor {
        x.layer_norm(
            [self.hidden],
            Some(&n.weight),
            Some(&n.bias),
            self.eps,
            false,
        )
    }

    /// The mean-pooled last hidden states of `ids` (`(batch, length)`, padded) over the pieces
    /// `mask` keeps (1) — one `(batch, hidden)` tensor.
    pub fn embed(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        tch::no_grad(|| {
            self.pool(
                &self.through(&self.layers, self.embeddings(ids), mask),
                mask,
            )
        })
    }

    /// The hidden size: the length of the vectors it gives.
    pub fn width(&self) -> usize {
        self.hidden as usize
    }

    /// How many transformer layers the model has.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The hidden states of `ids` after the embeddings and the first `n` layers, `(batch,
    /// length, hidden)`, without gradients: what the layers above read.
    pub fn hidden(&self, ids: &Tensor, mask: &Tensor, n: usize) -> Tensor {
        let n = n.min(self.layers.len());
        tch::no_grad(|| self.through(&self.layers[..n], self.embeddings(ids), mask))
    }

    /// `layers` (the model's last ones, or [`Bert::trainable_top`]'s copies) over hidden states
    /// `x`, then mean pooling over `mask`: `(batch, hidden)`, with gradients when the layers'
    /// weights require them.
    pub fn pooled_through(&self, layers: &[Layer], x: Tensor, mask: &Tensor) -> Tensor {
        self.pool(&self.through(layers, x, mask), mask)
    }

    /// Trainable f32 copies of the last `n` layers, as variables under `path`; an error when
    /// the model was loaded on int8 weights (fine-tuning needs `f32`).
    pub fn trainable_top(&self, path: &tch::nn::Path, n: usize) -> Result<Vec<Layer>, String> {
        let first = self.layers.len().saturating_sub(n);
        let copy = |name: String, l: &Linear| match l {
            Linear::F32 { weight, bias } => Ok(Linear::F32 {
                weight: path.var_copy(&format!("{name}_weight"), weight),
                bias: path.var_copy(&format!("{name}_bias"), bias),
            }),
            Linear::Int8 { .. } => Err("fine-tuning needs the f32 runtime's weights".to_string()),
        };
        let norm = |name: String, n: &LayerNorm| LayerNorm {
            weight: path.var_copy(&format!("{name}_weight"), &n.weight),
            bias: path.var_copy(&format!("{name}_bias"), &n.bias),
        };
        self.layers[first..]
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let p = format!("layer{}", first + i);
                // Variable names are joined by dots: theirs must have none.
                Ok(Layer {
                    qkv: copy(format!("{p}_qkv"), &l.qkv)?,
                    attention_out: copy(format!("{p}_attention_out"), &l.attention_out)?,
                    attention_norm: norm(format!("{p}_attention_norm"), &l.attention_norm),
                    intermediate: copy(format!("{p}_intermediate"), &l.intermediate)?,
                    output: copy(format!("{p}_output"), &l.output)?,
                    output_norm: norm(format!("{p}_output_norm"), &l.output_norm),
                })
            })
            .collect()
    }

    /// The embedding layer's output for `ids`, normalised.
    fn embeddings(&self, ids: &Tensor) -> Tensor {
        let (batch, length) = ids.size2().unwrap_or((0, 0));
        let positions = Tensor::arange(length, (Kind::Int64, ids.device()));
        let words = self.word.index_select(0, &ids.flatten(0, 1));
        let x = words
            .to_kind(Kind::Float)
            .view([batch, length, self.hidden])
            + self.position.index_select(0, &positions).unsqueeze(0)
            + self.token_type.get(0);
        self.layer_norm(&x, &self.embeddings_norm)
    }

    /// `layers` in turn over `x`, attention looking at the pieces `mask` keeps only.
    fn through(&self, layers: &[Layer], mut x: Tensor, mask: &Tensor) -> Tensor {
        let (batch, length) = mask.size2().unwrap_or((0, 0));
        // (batch, 1, 1, length), true = kept.
        let keep = mask.to_kind(Kind::Bool).view([batch, 1, 1, length]);
        let head = self.hidden / self.heads;
        for layer in layers {
            let qkv = layer
                .qkv
                .forward(&x)
                .view([batch, length, 3, self.heads, head])
                .permute([2, 0, 3, 1, 4]);
            let context = Tensor::scaled_dot_product_attention(
                &qkv.get(0),
                &qkv.get(1),
                &qkv.get(2),
                Some(&keep),
                0.0,
                false,
                None,
            )
            .transpose(1, 2)
            .reshape([batch, length, self.hidden]);
            let attended = layer.attention_out.forward(&context) + &x;
            x = self.layer_norm(&attended, &layer.attention_norm);
            let inner = layer.intermediate.forward(&x).gelu("none");
            let out = layer.output.forward(&inner) + &x;
            x = self.layer_norm(&out, &layer.output_norm);
        }
        x
    }

    /// The mean of `x` over the pieces `mask` keeps.
    fn pool(&self, x: &Tensor, mask: &Tensor) -> Tensor {
        let weights = mask.to_kind(Kind::Float).unsqueeze(-1);
        let summed = (x * &weights).sum_dim_intlist(1, false, Kind::Float);
        summed
            / weights
                .sum_dim_intlist(1, false, Kind::Float)
                .clamp_min(1e-9)
    }
}

/// The rows of a `(n, dim)` tensor of f32, as vectors.
pub fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>, tch::TchError> {
    let dim = t.size().get(1).copied().unwrap_or(0) as usize;
    let values = Vec::<f32>::try_from(t.flatten(0, -1))?;
    Ok(values.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_are_named_as_the_configuration_writes_them() {
        for runtime in Runtime::ALL {
            let json = serde_json::to_string(&runtime).unwrap();
            assert_eq!(json, format!("\"{runtime}\""));
            assert_eq!(serde_json::from_str::<Runtime>(&json).unwrap(), runtime);
        }
        assert!(serde_json::from_str::<Runtime>("\"fp8\"").is_err());
        assert_eq!(Runtime::default(), Runtime::Int8);
    }

    #[test]
    fn an_int8_linear_layer_computes_what_the_f32_one_does_within_its_rounding() {
        tch::manual_seed(7);
        let weight = Tensor::randn([96, 48], (Kind::Float, tch::Device::Cpu)) * 0.05;
        let bias = Tensor::randn([96], (Kind::Float, tch::Device::Cpu)) * 0.01;
        // A batch of sequences, as the encoder calls it: (batch, length, in).
        let x = Tensor::randn([3, 5, 48], (Kind::Float, tch::Device::Cpu));
        let exact = Linear::new(weight.shallow_clone(), bias.shallow_clone(), false)
            .unwrap()
            .forward(&x);
        let int8 = Linear::new(weight, bias, true).unwrap();
        assert!(matches!(int8, Linear::Int8 { .. }));
        let rounded = int8.forward(&x);
        assert_eq!(rounded.size(), [3, 5, 96]);
        let error = (&rounded - &exact).norm().double_value(&[]) / exact.norm().double_value(&[]);
        assert!(error < 0.03, "relative error {error}");
        // Not a copy of the f32 result: the weights were rounded.
        assert!(error > 0.0);
    }
}
