//! Tests of `gemm.rs`: strided and transposed products against a plain loop, the parts of a
//! cut product, and views outside their buffers.

#![allow(clippy::unwrap_used)]

use super::*;

/// A plain triple loop, the reference.
fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    out
}

#[test]
fn strided_and_transposed_products_match_a_plain_loop() {
    let (m, k, n) = (5, 7, 3);
    let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
    let want = naive(&a, &b, m, k, n);
    let mut got = vec![0f32; m * n];
    matmul(
        ViewMut::full(&mut got, m, n),
        View::full(&a, m, k),
        View::full(&b, k, n),
        false,
    )
    .unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
    // bᵀ stored [n, k] and read transposed; the result accumulated onto itself doubles it.
    let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
    matmul(
        ViewMut::full(&mut got, m, n),
        View::full(&a, m, k),
        View::full(&bt, n, k).t(),
        true,
    )
    .unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - 2.0 * w).abs() < 1e-5, "{g} vs 2·{w}");
    }
    // A column block of a wider matrix: a's columns 2..5 of rows with stride k.
    let mut sub = vec![0f32; m * n];
    let bsub: Vec<f32> = b[2 * n..5 * n].to_vec();
    matmul(
        ViewMut::full(&mut sub, m, n),
        View::rows(&a, 2, m, 3, k),
        View::full(&bsub, 3, n),
        false,
    )
    .unwrap();
    let want_sub: Vec<f32> = (0..m * n)
        .map(|e| {
            (0..3)
                .map(|p| a[(e / n) * k + 2 + p] * bsub[p * n + e % n])
                .sum()
        })
        .collect();
    for (g, w) in sub.iter().zip(&want_sub) {
        assert!((g - w).abs() < 1e-5);
    }
}

#[test]
fn views_outside_their_buffers_are_refused() {
    let a = vec![0f32; 10];
    let mut out = vec![0f32; 4];
    let err = matmul(
        ViewMut::full(&mut out, 2, 2),
        View::full(&a, 2, 6),
        View::full(&a, 6, 2),
        false,
    );
    assert!(err.is_err(), "a 2×6 view of 10 floats must be refused");
    let err = matmul(
        ViewMut::full(&mut out, 2, 2),
        View::full(&a, 2, 3),
        View::full(&a, 2, 2),
        false,
    );
    assert!(err.is_err(), "mismatched inner sizes must be refused");
}
