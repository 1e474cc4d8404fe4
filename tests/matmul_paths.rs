//! candle's matrix products on whichever gemm kernel this CPU gets (AVX-512 since we turn on
//! gemm's `x86-v4` feature, else AVX2/FMA, else scalar), against a plain f64 product.
//!
//! `.ci/run` runs this file a second time under `qemu-x86_64 -cpu Haswell`, a CPU without
//! AVX-512, with `LOCALIST_EXPECT_NO_AVX512=1`: the fallback kernel is checked on every CI run,
//! and the test fails if the emulated CPU did report AVX-512 (then nothing would be checked).

#![allow(clippy::unwrap_used)]

use candle_core::{Device, Tensor};

/// Deterministic values in [-1, 1) (a small LCG), so a failure reproduces.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `a` [b, m, k] times `b` [b, k, n] in f64.
fn plain(a: &[f32], b: &[f32], (batch, m, k, n): (usize, usize, usize, usize)) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for p in 0..batch {
        for i in 0..m {
            for j in 0..n {
                out[(p * m + i) * n + j] = (0..k)
                    .map(|q| a[(p * m + i) * k + q] as f64 * b[(p * k + q) * n + j] as f64)
                    .sum();
            }
        }
    }
    out
}

#[test]
fn matmul_matches_a_plain_product_on_this_cpus_kernel() {
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        if std::env::var_os("LOCALIST_EXPECT_NO_AVX512").is_some() {
            assert!(
                !avx512,
                "the CPU reports AVX-512: the fallback kernel is not being tested"
            );
        }
        eprintln!(
            "avx512f: {avx512}, fma: {}",
            std::arch::is_x86_feature_detected!("fma")
        );
    }
    // Edges of the kernels' tiles, the tiny model's training shapes (batched attention and
    // projections) and SmolLM2's MLP rows.
    let shapes = [
        (1, 1, 1, 1),
        (1, 7, 13, 5),
        (1, 17, 31, 49),
        (4, 64, 32, 64),
        (2, 64, 64, 32),
        (1, 128, 128, 512),
        (1, 64, 576, 200),
        (3, 33, 100, 257),
    ];
    for (s, &(batch, m, k, n)) in shapes.iter().enumerate() {
        let a = values(batch * m * k, 2 * s as u64);
        let b = values(batch * k * n, 2 * s as u64 + 1);
        let ta = Tensor::from_vec(a.clone(), (batch, m, k), &Device::Cpu).unwrap();
        let tb = Tensor::from_vec(b.clone(), (batch, k, n), &Device::Cpu).unwrap();
        let got: Vec<f32> = ta
            .matmul(&tb)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let want = plain(&a, &b, (batch, m, k, n));
        // f32 accumulation over k terms of size ≤ 1: error well under 1e-5 · k.
        let tol = 1e-5 * k as f64;
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= tol,
                "shape {batch}x{m}x{k}x{n}, element {i}: {g} against {w}"
            );
        }
        // A transposed operand (what attention's K^T and the backward pass give gemm).
        let tbt = tb
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .transpose(1, 2)
            .unwrap();
        let got_t: Vec<f32> = ta
            .matmul(&tbt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (i, (g, w)) in got_t.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= tol,
                "shape {batch}x{m}x{k}x{n} (transposed), element {i}: {g} against {w}"
            );
        }
    }
}

/// The vectorised exp behind every softmax, on whichever path this CPU takes (AVX-512, AVX2 or
/// portable; under qemu's Haswell, AVX2): rows of scores, one of them all −∞ but the first
/// and one with a NaN, against an f64 softmax.
#[test]
fn softmax_matches_a_plain_softmax_on_this_cpus_exp() {
    let (rows, n) = (7usize, 77usize);
    let mut x: Vec<f32> = values(rows * n, 3).iter().map(|v| v * 30.0).collect();
    for v in &mut x[n + 1..2 * n] {
        *v = f32::NEG_INFINITY;
    }
    x[3 * n + 5] = f32::NAN;
    let t = Tensor::from_vec(x.clone(), (rows, n), &Device::Cpu).unwrap();
    for got in [
        localist::model::fused::softmax_rows(&t).unwrap(),
        localist::model::fused::softmax_last(&t).unwrap(),
    ] {
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (r, (row, out)) in x.chunks(n).zip(got.chunks(n)).enumerate() {
            if r == 3 {
                assert!(out.iter().all(|v| v.is_nan()), "NaN must stay NaN");
                continue;
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for (j, (&o, &w)) in out.iter().zip(&e).enumerate() {
                let want = w / sum;
                assert!(
                    (o as f64 - want).abs() <= 2e-6 * want.max(1e-30) + 1e-12,
                    "row {r} key {j}: {o} against {want}"
                );
            }
        }
        assert_eq!(&got[n..n + 2], &[1.0, 0.0]);
    }
}
