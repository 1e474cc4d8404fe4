//! GFLOP/s of candle's f32 matrix products at the shapes of issue 14's table, one thread
//! unless CANDLE_NUM_THREADS says otherwise: `cargo run --release --example matmul_speed`.
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

fn main() -> candle_core::Result<()> {
    for (m, k, n) in [
        (1024, 1024, 1024),
        (64, 576, 1536),
        (64, 576, 49152),
        (2048, 128, 512),
    ] {
        let a = Tensor::ones((m, k), DType::F32, &Device::Cpu)?;
        let b = Tensor::ones((k, n), DType::F32, &Device::Cpu)?;
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t0 = Instant::now();
            a.matmul(&b)?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        let gflops = 2.0 * (m * k * n) as f64 / best / 1e9;
        println!("{m}x{k}x{n}: {gflops:.1} GFLOP/s ({:.2} ms)", best * 1e3);
    }
    Ok(())
}
