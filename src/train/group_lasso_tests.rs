//! The fused group lasso against the composed ops and against finite differences, and the
//! fused biased softmax against its composed version.

use candle_core::{Device, Tensor, Var, D};

use crate::analysis::rng::SplitMix64;
use crate::model::blocks::SequenceMasks;
use crate::train::penalty::{group_lasso, group_lasso_composed, GroupWeights, PenaltyTensors};

fn random(shape: &[usize], seed: u64, positive: bool) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let n: usize = shape.iter().product();
    (0..n)
        .map(|_| {
            let v = rng.normal() as f32;
            if positive {
                v.abs() * 0.3
            } else {
                v
            }
        })
        .collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .unwrap_or(f32::INFINITY)
}

/// The fused group lasso of `a` against the composed ops: the value within 1e-5, the gradient
/// within `grad_tol`. Returns the fused gradient.
fn fused_against_composed(a: &Var, pt: &PenaltyTensors, grad_tol: f32) -> Tensor {
    let fused = group_lasso(a.as_tensor(), pt, 1e-6).unwrap_or_else(|e| panic!("{e}"));
    let composed = group_lasso_composed(a.as_tensor(), pt, 1e-6).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        max_diff(&fused, &composed) < 1e-5,
        "value differs by {}",
        max_diff(&fused, &composed)
    );
    let gf = fused.backward().unwrap_or_else(|e| panic!("{e}"));
    let gc = composed.backward().unwrap_or_else(|e| panic!("{e}"));
    let (Some(gf), Some(gc)) = (gf.get(a.as_tensor()), gc.get(a.as_tensor())) else {
        panic!("no gradient")
    };
    assert!(
        max_diff(gf, gc) < grad_tol,
        "gradient differs by {}",
        max_diff(gf, gc)
    );
    gf.clone()
}

/// Two sequences of 7 positions over 3 blocks, one of them with an isolated block.
fn masks() -> Vec<SequenceMasks> {
    let a = SequenceMasks::new(vec![0, 1, 1, 2, 0, 2, 1], vec![0, 1, 1, 2, 0, 2, 1], 3);
    let mut b = SequenceMasks::new(vec![2, 2, 0, 1, 1, 0, 2], vec![1, 2, 0, 1, 1, 0, 2], 3);
    b.isolated = Some(0);
    vec![a, b]
}

#[test]
fn fused_group_lasso_matches_the_composed_ops_and_finite_differences() {
    let dev = Device::Cpu;
    for (weights, exempt) in [
        (GroupWeights::Unit, false),
        (GroupWeights::SqrtSize, false),
        (GroupWeights::SqrtSize, true),
    ] {
        let pt = PenaltyTensors::new(&masks(), 3, weights, exempt, &dev)
            .unwrap_or_else(|e| panic!("{e}"));
        let shape = [2, 3, 7, 7];
        let data = random(&shape, 5, true);
        let a = Var::from_vec(data.clone(), &shape[..], &dev).unwrap_or_else(|e| panic!("{e}"));
        let gf = fused_against_composed(&a, &pt, 1e-5);
        // Central differences on a few entries, in f64 arithmetic on the f32 op.
        let g = gf
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .unwrap_or_default();
        let value = |d: &[f32]| -> f64 {
            let t = Tensor::from_slice(d, &shape[..], &dev).unwrap_or_else(|e| panic!("{e}"));
            let v = group_lasso(&t, &pt, 1e-6).unwrap_or_else(|e| panic!("{e}"));
            f64::from(v.to_scalar::<f32>().unwrap_or(f32::NAN))
        };
        for idx in [8usize, 15, 30, 49 + 7 * 3 + 2, 200, 290] {
            let h = 1e-2f32;
            let (mut up, mut down) = (data.clone(), data.clone());
            up[idx] += h;
            down[idx] -= h;
            let numeric = (value(&up) - value(&down)) / (2.0 * f64::from(h));
            assert!(
                (numeric - f64::from(g[idx])).abs() < 2e-4 + 1e-2 * numeric.abs(),
                "entry {idx}: finite difference {numeric}, gradient {}",
                g[idx]
            );
        }
    }
}

#[test]
fn long_runs_of_one_block_sum_like_the_composed_ops() {
    // Runs of 9, 20 and 11 keys: the run sums' 8 lanes and their tails, and a row that ends
    // inside a run.
    let dev = Device::Cpu;
    let t = 40;
    let blocks: Vec<usize> = (0..t)
        .map(|j| match j {
            0..=8 => 0,
            9..=28 => 1,
            _ => 2,
        })
        .collect();
    let m = vec![
        SequenceMasks::new(
            blocks.clone(),
            blocks.iter().map(|b| (b + 1) % 3).collect(),
            3,
        ),
        SequenceMasks::new(blocks.iter().rev().copied().collect(), blocks.clone(), 3),
    ];
    for exempt in [false, true] {
        let pt = PenaltyTensors::new(&m, 3, GroupWeights::SqrtSize, exempt, &dev)
            .unwrap_or_else(|e| panic!("{e}"));
        let shape = [2, 2, t, t];
        let a = Var::from_vec(random(&shape, 9, true), &shape[..], &dev)
            .unwrap_or_else(|e| panic!("{e}"));
        fused_against_composed(&a, &pt, 1e-6);
    }
}

#[test]
fn fused_biased_softmax_matches_the_composed_ops() {
    let dev = Device::Cpu;
    let (b, h, t) = (2, 3, 6);
    let s = Var::from_vec(random(&[b, h, t, t], 1, false), (b, h, t, t), &dev)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut bias = random(&[b, 1, t, t], 2, false);
    for (n, v) in bias.iter_mut().enumerate() {
        if n % t > (n / t) % t {
            *v = f32::NEG_INFINITY; // causal
        }
    }
    let bias = Tensor::from_vec(bias, (b, 1, t, t), &dev).unwrap_or_else(|e| panic!("{e}"));
    let w = Tensor::from_vec(random(&[b, h, t, t], 3, false), (b, h, t, t), &dev)
        .unwrap_or_else(|e| panic!("{e}"));
    for tau in [1.0, 0.7] {
        let scale = 0.35;
        let fused = crate::model::fused::biased_softmax(s.as_tensor(), &bias, scale, tau)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("the fused path applies to f32 CPU tensors"));
        let composed = (s.as_tensor() * scale)
            .and_then(|z| z.broadcast_add(&bias))
            .and_then(|z| z / tau)
            .and_then(|z| candle_nn::ops::softmax(&z, D::Minus1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(max_diff(&fused, &composed) < 1e-6);
        let loss = |a: &Tensor| {
            (a * &w)
                .and_then(|x| x.sum_all())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let gf = loss(&fused).backward().unwrap_or_else(|e| panic!("{e}"));
        let gc = loss(&composed).backward().unwrap_or_else(|e| panic!("{e}"));
        let (Some(gf), Some(gc)) = (gf.get(s.as_tensor()), gc.get(s.as_tensor())) else {
            panic!("no gradient")
        };
        assert!(
            max_diff(gf, gc) < 1e-5,
            "gradient differs by {}",
            max_diff(gf, gc)
        );
    }
}
