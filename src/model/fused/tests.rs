//! The fused ops against the composed candle ops: values and gradients agree.

use super::*;
use candle_core::{Device, Tensor, Var, D};

fn var(shape: (usize, usize), seed: u64) -> Var {
    let mut rng = crate::analysis::rng::SplitMix64::new(seed);
    let data: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| rng.normal() as f32)
        .collect();
    Var::from_vec(data, shape, &Device::Cpu).unwrap_or_else(|_| unreachable!())
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .unwrap_or(f32::INFINITY)
}

/// Compare value and gradients of the fused and composed versions of one function.
fn check(f_fused: impl Fn(&[Tensor]) -> Tensor, f_ref: impl Fn(&[Tensor]) -> Tensor, vars: &[Var]) {
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let weights = var((vars[0].dims()[0], vars[0].dims()[1]), 99);
    let loss = |y: Tensor| {
        (y * weights.as_tensor())
            .and_then(|t| t.sum_all())
            .unwrap_or_else(|_| unreachable!())
    };
    let (yf, yr) = (f_fused(&ts), f_ref(&ts));
    assert!(
        max_diff(&yf, &yr) < 1e-5,
        "forward differs by {}",
        max_diff(&yf, &yr)
    );
    let (gf, gr) = (loss(yf).backward(), loss(yr).backward());
    let (gf, gr) = (
        gf.unwrap_or_else(|_| unreachable!()),
        gr.unwrap_or_else(|_| unreachable!()),
    );
    for v in vars {
        let (a, b) = (gf.get(v.as_tensor()), gr.get(v.as_tensor()));
        let (Some(a), Some(b)) = (a, b) else {
            panic!("missing gradient")
        };
        assert!(
            max_diff(a, b) < 1e-4,
            "gradient differs by {}",
            max_diff(a, b)
        );
    }
}

#[test]
fn fused_ops_match_composed_candle_ops_and_their_gradients() {
    let x = var((6, 16), 1);
    check(
        |t| softmax_last(&t[0]).unwrap_or_else(|_| unreachable!()),
        |t| candle_nn::ops::softmax(&t[0], D::Minus1).unwrap_or_else(|_| unreachable!()),
        std::slice::from_ref(&x),
    );
    let w = Var::from_tensor(
        &(var((1, 16), 2)
            .as_tensor()
            .flatten_all()
            .unwrap_or_else(|_| unreachable!())
            + 1.0)
            .unwrap_or_else(|_| unreachable!()),
    )
    .unwrap_or_else(|_| unreachable!());
    let b = Var::from_tensor(
        &var((1, 16), 3)
            .as_tensor()
            .flatten_all()
            .unwrap_or_else(|_| unreachable!()),
    )
    .unwrap_or_else(|_| unreachable!());
    check(
        |t| layer_norm(&t[0], &t[1], &t[2], 1e-5).unwrap_or_else(|_| unreachable!()),
        |t| {
            let x = &t[0];
            let mean = x.mean_keepdim(D::Minus1).unwrap_or_else(|_| unreachable!());
            let xc = x.broadcast_sub(&mean).unwrap_or_else(|_| unreachable!());
            let var = xc
                .sqr()
                .and_then(|v| v.mean_keepdim(D::Minus1))
                .unwrap_or_else(|_| unreachable!());
            let xn = xc
                .broadcast_div(
                    &(var + 1e-5)
                        .and_then(|v| v.sqrt())
                        .unwrap_or_else(|_| unreachable!()),
                )
                .unwrap_or_else(|_| unreachable!());
            xn.broadcast_mul(&t[1])
                .and_then(|v| v.broadcast_add(&t[2]))
                .unwrap_or_else(|_| unreachable!())
        },
        &[x.clone(), w, b.clone()],
    );
    check(
        |t| add_bias(&t[0], &t[1]).unwrap_or_else(|_| unreachable!()),
        |t| t[0].broadcast_add(&t[1]).unwrap_or_else(|_| unreachable!()),
        &[x, b],
    );
}

#[test]
fn a_row_of_nan_scores_stays_nan_and_a_row_with_nothing_visible_stays_zero() {
    // Row 0: every score NaN (an overflow upstream); row 1: nothing visible; row 2: ordinary.
    let n = 4;
    let ninf = f32::NEG_INFINITY;
    let s = [f32::NAN; 4]
        .into_iter()
        .chain([1.0, 2.0, 3.0, 4.0])
        .chain([0.5, 0.0, -0.5, 1.0])
        .collect::<Vec<f32>>();
    let bias = [0.0, 0.0, ninf, ninf]
        .into_iter()
        .chain([ninf; 4])
        .chain([0.0, 0.0, 0.0, ninf])
        .collect::<Vec<f32>>();
    let (mut z, mut out) = (vec![0f32; n], vec![7f32; 3 * n]);
    attention::biased_softmax_rows(&s, &bias, n, 1.0, 1.0, &mut z, &mut out);
    assert!(out[..n].iter().all(|a| a.is_nan()), "{out:?}");
    assert_eq!(&out[n..2 * n], &[0.0; 4]);
    let sum: f32 = out[2 * n..].iter().sum();
    assert!((sum - 1.0).abs() < 1e-6 && out[3 * n - 1] == 0.0, "{out:?}");
}
