//! The weights of our transformer as plain f32 vectors, one per named parameter, and the same
//! shape for their gradients: what the native forward and backward read and write.

use crate::model::config::ModelConfig;
use crate::model::native::NativeError;
use crate::model::transformer::LocalistModel;

/// One layer's parameters (or their gradients), PyTorch layouts: Linear weights [out, in].
#[derive(Clone, Debug, Default)]
pub struct LayerSet {
    /// LayerNorm before attention: gain, bias [d].
    pub ln1_w: Vec<f32>,
    /// LayerNorm before attention: bias [d].
    pub ln1_b: Vec<f32>,
    /// q|k|v projection [3d, d].
    pub qkv_w: Vec<f32>,
    /// q|k|v bias [3d].
    pub qkv_b: Vec<f32>,
    /// Attention output projection [d, d].
    pub proj_w: Vec<f32>,
    /// Its bias [d].
    pub proj_b: Vec<f32>,
    /// LayerNorm before the MLP: gain [d].
    pub ln2_w: Vec<f32>,
    /// LayerNorm before the MLP: bias [d].
    pub ln2_b: Vec<f32>,
    /// MLP in [f, d].
    pub fc1_w: Vec<f32>,
    /// MLP in bias [f].
    pub fc1_b: Vec<f32>,
    /// MLP out [d, f].
    pub fc2_w: Vec<f32>,
    /// MLP out bias [d].
    pub fc2_b: Vec<f32>,
}

/// Every parameter of the model except the anchor keys (which the native path does not
/// train: it runs only when the anchor loss is off).
#[derive(Clone, Debug, Default)]
pub struct ParamSet {
    /// Token embeddings [V, d] (also the head when it is tied).
    pub tok: Vec<f32>,
    /// Position embeddings [P, d].
    pub pos: Vec<f32>,
    /// Final LayerNorm gain [d].
    pub ln_f_w: Vec<f32>,
    /// Final LayerNorm bias [d].
    pub ln_f_b: Vec<f32>,
    /// Output head [V, d]; empty when tied to `tok`.
    pub head_w: Vec<f32>,
    /// Output head bias [V].
    pub head_b: Vec<f32>,
    /// Per layer.
    pub layers: Vec<LayerSet>,
    /// Per layer, the anchor keys' gradient [H, K, d_h] (empty when the anchor loss is off).
    pub anchors: Vec<Vec<f32>>,
}

/// One layer's weights borrowed in place (see [`ParamRefs`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerRefs<'a> {
    /// LayerNorm 1 gain [d].
    pub ln1_w: &'a [f32],
    /// LayerNorm 1 bias [d].
    pub ln1_b: &'a [f32],
    /// q|k|v projection [3d, d].
    pub qkv_w: &'a [f32],
    /// q|k|v bias [3d].
    pub qkv_b: &'a [f32],
    /// Output projection [d, d].
    pub proj_w: &'a [f32],
    /// Its bias [d].
    pub proj_b: &'a [f32],
    /// LayerNorm 2 gain [d].
    pub ln2_w: &'a [f32],
    /// LayerNorm 2 bias [d].
    pub ln2_b: &'a [f32],
    /// MLP in [f, d].
    pub fc1_w: &'a [f32],
    /// MLP in bias [f].
    pub fc1_b: &'a [f32],
    /// MLP out [d, f].
    pub fc2_w: &'a [f32],
    /// MLP out bias [d].
    pub fc2_b: &'a [f32],
}

/// The weights the native passes read, borrowed: from a [`ParamSet`] or, without a copy, from
/// the model's own tensors ([`with_model_refs`]).
#[derive(Clone, Debug, Default)]
pub struct ParamRefs<'a> {
    /// Token embeddings [V, d].
    pub tok: &'a [f32],
    /// Position embeddings [P, d].
    pub pos: &'a [f32],
    /// Final LayerNorm gain [d].
    pub ln_f_w: &'a [f32],
    /// Final LayerNorm bias [d].
    pub ln_f_b: &'a [f32],
    /// Output head [V, d]; empty when tied.
    pub head_w: &'a [f32],
    /// Output head bias [V].
    pub head_b: &'a [f32],
    /// Per layer.
    pub layers: Vec<LayerRefs<'a>>,
}

/// The names of one layer's parameters, in [`LayerSet`]'s field order.
const LAYER_FIELDS: [&str; 12] = [
    "ln1.weight",
    "ln1.bias",
    "qkv.weight",
    "qkv.bias",
    "proj.weight",
    "proj.bias",
    "ln2.weight",
    "ln2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
];

/// Every parameter the native passes read under `cfg` (the head weight only when untied),
/// with its length: what [`with_model_refs`] looks up, without allocating a [`ParamSet`].
pub fn param_lengths(cfg: &ModelConfig) -> Vec<(String, usize)> {
    let (d, v, f) = (cfg.d_model, cfg.vocab_size, cfg.mlp_ratio * cfg.d_model);
    let mut out: Vec<(String, usize)> = vec![
        ("tok.weight".into(), v * d),
        ("pos.weight".into(), cfg.max_seq_len * d),
        ("ln_f.weight".into(), d),
        ("ln_f.bias".into(), d),
    ];
    if !cfg.tied_head {
        out.push(("head.weight".into(), v * d));
    }
    out.push(("head.bias".into(), v));
    let layer = [d, d, 3 * d * d, 3 * d, d * d, d, d, d, f * d, f, d * f, d];
    for l in 0..cfg.num_layers {
        for (name, len) in LAYER_FIELDS.iter().zip(layer) {
            out.push((format!("blocks.{l}.{name}"), len));
        }
    }
    out
}

impl LayerSet {
    fn fields_mut(&mut self) -> [(&'static str, &mut Vec<f32>); 12] {
        let [a, b, c, d, e, f, g, h, i, j, k, l] = LAYER_FIELDS;
        [
            (a, &mut self.ln1_w),
            (b, &mut self.ln1_b),
            (c, &mut self.qkv_w),
            (d, &mut self.qkv_b),
            (e, &mut self.proj_w),
            (f, &mut self.proj_b),
            (g, &mut self.ln2_w),
            (h, &mut self.ln2_b),
            (i, &mut self.fc1_w),
            (j, &mut self.fc1_b),
            (k, &mut self.fc2_w),
            (l, &mut self.fc2_b),
        ]
    }
}

impl ParamSet {
    /// The vectors, borrowed.
    pub fn as_refs(&self) -> ParamRefs<'_> {
        ParamRefs {
            tok: &self.tok,
            pos: &self.pos,
            ln_f_w: &self.ln_f_w,
            ln_f_b: &self.ln_f_b,
            head_w: &self.head_w,
            head_b: &self.head_b,
            layers: self
                .layers
                .iter()
                .map(|l| LayerRefs {
                    ln1_w: &l.ln1_w,
                    ln1_b: &l.ln1_b,
                    qkv_w: &l.qkv_w,
                    qkv_b: &l.qkv_b,
                    proj_w: &l.proj_w,
                    proj_b: &l.proj_b,
                    ln2_w: &l.ln2_w,
                    ln2_b: &l.ln2_b,
                    fc1_w: &l.fc1_w,
                    fc1_b: &l.fc1_b,
                    fc2_w: &l.fc2_w,
                    fc2_b: &l.fc2_b,
                })
                .collect(),
        }
    }

    /// Every vector with its parameter name (as in [`crate::model::transformer::expected_shapes`]).
    pub fn named_mut(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        let mut out: Vec<(String, &mut Vec<f32>)> = vec![
            ("tok.weight".into(), &mut self.tok),
            ("pos.weight".into(), &mut self.pos),
            ("ln_f.weight".into(), &mut self.ln_f_w),
            ("ln_f.bias".into(), &mut self.ln_f_b),
            ("head.weight".into(), &mut self.head_w),
            ("head.bias".into(), &mut self.head_b),
        ];
        for (l, layer) in self.layers.iter_mut().enumerate() {
            for (name, v) in layer.fields_mut() {
                out.push((format!("blocks.{l}.{name}"), v));
            }
        }
        for (l, v) in self.anchors.iter_mut().enumerate() {
            out.push((crate::model::transformer::anchor_name(l), v));
        }
        out
    }

    /// Zero gradients shaped like the parameters of `cfg` (the lengths of [`param_lengths`]; a
    /// tied head's weight stays empty).
    pub fn zeros(cfg: &ModelConfig) -> Self {
        let lengths: std::collections::HashMap<String, usize> =
            param_lengths(cfg).into_iter().collect();
        let mut set = Self {
            layers: vec![LayerSet::default(); cfg.num_layers],
            ..Self::default()
        };
        for (name, v) in set.named_mut() {
            *v = vec![0.0; lengths.get(&name).copied().unwrap_or(0)];
        }
        set
    }

    /// Whether the vectors have the lengths `cfg` implies (a kept gradient set still fits).
    pub fn fits(&self, cfg: &ModelConfig) -> bool {
        let (d, v, f) = (cfg.d_model, cfg.vocab_size, cfg.mlp_ratio * cfg.d_model);
        let head = if cfg.tied_head { 0 } else { v * d };
        self.tok.len() == v * d
            && self.pos.len() == cfg.max_seq_len * d
            && self.head_w.len() == head
            && self.head_b.len() == v
            && self.layers.len() == cfg.num_layers
            && self.layers.iter().all(|l| {
                l.qkv_w.len() == 3 * d * d && l.fc1_w.len() == f * d && l.fc2_w.len() == d * f
            })
    }

    /// self += other, vector by vector (gradients of two shards).
    pub fn add(&mut self, other: &mut Self) {
        for ((_, a), (_, b)) in self.named_mut().into_iter().zip(other.named_mut()) {
            for (x, y) in a.iter_mut().zip(b.iter()) {
                *x += y;
            }
        }
    }
}

/// Runs `f` on the model's weights read in place (no copy): each parameter's storage is held
/// for reading while `f` runs, so nothing may update the weights meanwhile. Shapes are checked
/// against the config first.
pub fn with_model_refs<R>(
    model: &LocalistModel,
    f: impl FnOnce(&ParamRefs<'_>) -> Result<R, NativeError>,
) -> Result<R, NativeError> {
    let cfg = &model.config;
    let wanted = param_lengths(cfg);
    let tensors: Vec<candle_core::Tensor> = wanted
        .iter()
        .map(|(n, _)| model.params.get(n))
        .collect::<candle_core::Result<_>>()?;
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices: std::collections::HashMap<&str, &[f32]> = std::collections::HashMap::new();
    for (((name, len), (storage, layout)), _) in wanted.iter().zip(&guards).zip(&tensors) {
        let candle_core::Storage::Cpu(cpu) = &**storage else {
            return Err(NativeError::Shape(
                "the native pass reads CPU weights".into(),
            ));
        };
        let data = crate::model::fused::slice(cpu, layout, "native weights")?;
        if data.len() != *len {
            return Err(NativeError::Shape(format!(
                "'{name}' has {} values, the config needs {len}",
                data.len()
            )));
        }
        slices.insert(name.as_str(), data);
    }
    let get = |n: &str| slices.get(n).copied().unwrap_or(&[]);
    let refs = ParamRefs {
        tok: get("tok.weight"),
        pos: get("pos.weight"),
        ln_f_w: get("ln_f.weight"),
        ln_f_b: get("ln_f.bias"),
        head_w: get("head.weight"),
        head_b: get("head.bias"),
        layers: (0..cfg.num_layers)
            .map(|l| {
                let g = |n: &str| get(&format!("blocks.{l}.{n}"));
                LayerRefs {
                    ln1_w: g("ln1.weight"),
                    ln1_b: g("ln1.bias"),
                    qkv_w: g("qkv.weight"),
                    qkv_b: g("qkv.bias"),
                    proj_w: g("proj.weight"),
                    proj_b: g("proj.bias"),
                    ln2_w: g("ln2.weight"),
                    ln2_b: g("ln2.bias"),
                    fc1_w: g("fc1.weight"),
                    fc1_b: g("fc1.bias"),
                    fc2_w: g("fc2.weight"),
                    fc2_b: g("fc2.bias"),
                }
            })
            .collect(),
    };
    f(&refs)
}
