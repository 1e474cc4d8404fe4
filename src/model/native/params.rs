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
}

impl LayerSet {
    fn fields_mut(&mut self) -> [(&'static str, &mut Vec<f32>); 12] {
        [
            ("ln1.weight", &mut self.ln1_w),
            ("ln1.bias", &mut self.ln1_b),
            ("qkv.weight", &mut self.qkv_w),
            ("qkv.bias", &mut self.qkv_b),
            ("proj.weight", &mut self.proj_w),
            ("proj.bias", &mut self.proj_b),
            ("ln2.weight", &mut self.ln2_w),
            ("ln2.bias", &mut self.ln2_b),
            ("fc1.weight", &mut self.fc1_w),
            ("fc1.bias", &mut self.fc1_b),
            ("fc2.weight", &mut self.fc2_w),
            ("fc2.bias", &mut self.fc2_b),
        ]
    }
}

impl ParamSet {
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
        out
    }

    /// The model's current weights (a copy, about 1.7 MB for the tiny preset).
    pub fn from_model(model: &LocalistModel) -> Result<Self, NativeError> {
        let cfg = &model.config;
        let mut set = Self {
            layers: vec![LayerSet::default(); cfg.num_layers],
            ..Self::default()
        };
        for (name, v) in set.named_mut() {
            if name == "head.weight" && cfg.tied_head {
                continue;
            }
            *v = model.params.get(&name)?.flatten_all()?.to_vec1::<f32>()?;
        }
        set.check(cfg)?;
        Ok(set)
    }

    /// Zero gradients shaped like the parameters of `cfg`.
    pub fn zeros(cfg: &ModelConfig) -> Self {
        let (d, v, f) = (cfg.d_model, cfg.vocab_size, cfg.mlp_ratio * cfg.d_model);
        let layer = LayerSet {
            ln1_w: vec![0.0; d],
            ln1_b: vec![0.0; d],
            qkv_w: vec![0.0; 3 * d * d],
            qkv_b: vec![0.0; 3 * d],
            proj_w: vec![0.0; d * d],
            proj_b: vec![0.0; d],
            ln2_w: vec![0.0; d],
            ln2_b: vec![0.0; d],
            fc1_w: vec![0.0; f * d],
            fc1_b: vec![0.0; f],
            fc2_w: vec![0.0; d * f],
            fc2_b: vec![0.0; d],
        };
        Self {
            tok: vec![0.0; v * d],
            pos: vec![0.0; cfg.max_seq_len * d],
            ln_f_w: vec![0.0; d],
            ln_f_b: vec![0.0; d],
            head_w: if cfg.tied_head {
                Vec::new()
            } else {
                vec![0.0; v * d]
            },
            head_b: vec![0.0; v],
            layers: vec![layer; cfg.num_layers],
        }
    }

    /// Every vector has the length `cfg` implies.
    pub fn check(&mut self, cfg: &ModelConfig) -> Result<(), NativeError> {
        let mut want = Self::zeros(cfg);
        for ((name, have), (_, need)) in self.named_mut().into_iter().zip(want.named_mut()) {
            if have.len() != need.len() {
                return Err(NativeError::Shape(format!(
                    "'{name}' has {} values, the config needs {}",
                    have.len(),
                    need.len()
                )));
            }
        }
        Ok(())
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
