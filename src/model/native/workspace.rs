//! Every buffer a native training step needs, allocated once for a batch shape and reused
//! step after step: the activations the backward pass reads, and its scratch.

use crate::model::config::ModelConfig;

/// Sizes of one step: batch, positions, and the model's dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Sequences B.
    pub b: usize,
    /// Positions T.
    pub t: usize,
    /// Model width d.
    pub d: usize,
    /// Heads H.
    pub h: usize,
    /// Head width d_h.
    pub dh: usize,
    /// MLP width f.
    pub f: usize,
    /// Vocabulary V.
    pub v: usize,
    /// Layers L.
    pub layers: usize,
}

impl Dims {
    /// The dimensions of `cfg` for a batch of `b` sequences of `t` positions.
    pub fn new(cfg: &ModelConfig, b: usize, t: usize) -> Self {
        Self {
            b,
            t,
            d: cfg.d_model,
            h: cfg.num_heads,
            dh: cfg.head_dim(),
            f: cfg.mlp_ratio * cfg.d_model,
            v: cfg.vocab_size,
            layers: cfg.num_layers,
        }
    }

    /// Rows N = B·T.
    pub fn n(&self) -> usize {
        self.b * self.t
    }
}

/// One layer's saved activations.
#[derive(Debug)]
pub struct LayerActs {
    /// The residual stream into the layer [N, d].
    pub hin: Vec<f32>,
    /// LayerNorm 1 output [N, d].
    pub a1: Vec<f32>,
    /// q|k|v [N, 3d].
    pub qkv: Vec<f32>,
    /// Attention weights [B, H, T, T].
    pub att: Vec<f32>,
    /// Attention output, heads side by side [N, d].
    pub y: Vec<f32>,
    /// The residual stream after attention [N, d].
    pub hmid: Vec<f32>,
    /// LayerNorm 2 output [N, d].
    pub a2: Vec<f32>,
    /// MLP activation [N, f].
    pub g: Vec<f32>,
    /// The activation's slope at u [N, f] (the backward multiplies by it).
    pub slope: Vec<f32>,
}

/// Activations and scratch for one shard of a step.
#[derive(Debug)]
pub struct Workspace {
    /// The sizes these buffers were made for.
    pub dims: Dims,
    /// Per layer.
    pub layers: Vec<LayerActs>,
    /// The residual stream after the last layer [N, d].
    pub h_last: Vec<f32>,
    /// Final LayerNorm output [N, d].
    pub af: Vec<f32>,
    /// Logits, then their softmax, then the logits' gradient [N, V].
    pub probs: Vec<f32>,
    /// Scores of one head [T, T].
    pub scores: Vec<f32>,
    /// One row of scaled scores [T].
    pub z: Vec<f32>,
    /// Gradient of the residual stream [N, d].
    pub dh: Vec<f32>,
    /// Gradient into a LayerNorm's output [N, d].
    pub da: Vec<f32>,
    /// Gradient of the attention output [N, d].
    pub dy: Vec<f32>,
    /// Gradient of q|k|v [N, 3d].
    pub dqkv: Vec<f32>,
    /// The MLP's pre-activation in the forward (scratch: the backward reads the slope), then the
    /// gradient of the MLP activation and pre-activation [N, f].
    pub du: Vec<f32>,
    /// Gradient of one layer's attention weights [B, H, T, T].
    pub datt: Vec<f32>,
}

impl Workspace {
    /// Buffers for `dims`.
    pub fn new(dims: Dims) -> Self {
        let Dims {
            b, t, d, h, f, v, ..
        } = dims;
        let n = dims.n();
        let layer = || LayerActs {
            hin: vec![0.0; n * d],
            a1: vec![0.0; n * d],
            qkv: vec![0.0; n * 3 * d],
            att: vec![0.0; b * h * t * t],
            y: vec![0.0; n * d],
            hmid: vec![0.0; n * d],
            a2: vec![0.0; n * d],
            g: vec![0.0; n * f],
            slope: vec![0.0; n * f],
        };
        Self {
            dims,
            layers: (0..dims.layers).map(|_| layer()).collect(),
            h_last: vec![0.0; n * d],
            af: vec![0.0; n * d],
            probs: vec![0.0; n * v],
            scores: vec![0.0; t * t],
            z: vec![0.0; t],
            dh: vec![0.0; n * d],
            da: vec![0.0; n * d],
            dy: vec![0.0; n * d],
            dqkv: vec![0.0; n * 3 * d],
            du: vec![0.0; n * f],
            datt: vec![0.0; b * h * t * t],
        }
    }
}
