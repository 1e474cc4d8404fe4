//! Does SmolLM2's largest bf16 weight product (1536×576 · 576×64, the MLP's gate or up rows)
//! scale with threads, and what does a sleeping partner thread cost? Each product is timed
//! back to back, then after G µs of serial work (as a pass's norms and packing come between
//! its products), at one and two threads, and at two with the pool kept awake
//! (`model::native::awake`). Needs AVX-512 BF16 (else the products run the slow reference).
//! Run: `cargo run --release --example bf16_scaling`.

use std::time::Instant;

use anyhow::Result;
use localist::model::native::awake::with_pool_awake;
use localist::model::native::bf16::{available, Bf16Matrix, Packed};
use localist::model::native::gemm::View;

fn main() -> Result<()> {
    if !available() {
        println!("no AVX-512 BF16 on this CPU: the bf16 products would run the reference");
        return Ok(());
    }
    let (rows, k, t) = (1536usize, 576usize, 64usize);
    let w: Vec<f32> = (0..rows * k)
        .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
        .collect();
    let a: Vec<f32> = (0..k * t)
        .map(|i| ((i * 104_729) % 1000) as f32 * 1e-3 - 0.5)
        .collect();
    let m = Bf16Matrix::new(&w, k);
    let mut p = Packed::default();
    p.pack(View::full(&a, k, t));
    let mut dst = vec![0f32; rows * t];
    // Mean µs of one product after `gap` µs of serial work, over 1,000 products.
    let mut timed = |gap: u128| -> Result<f64> {
        let mut spent = 0.0;
        for _ in 0..1000 {
            let g = Instant::now();
            while g.elapsed().as_micros() < gap {
                std::hint::spin_loop();
            }
            let q = Instant::now();
            m.product(&mut dst, &p, false)?;
            spent += q.elapsed().as_secs_f64();
        }
        Ok(spent * 1e3)
    };
    for gap in [0u128, 20, 50, 200] {
        let mut line = format!("serial work before each {gap:>3} µs:");
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()?;
            let us = pool.install(|| timed(gap))?;
            line += &format!("  {threads} thread(s) {us:6.1} µs");
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
        let us = pool.install(|| with_pool_awake(|| timed(gap)))?;
        line += &format!("  2 kept awake {us:6.1} µs");
        println!("{line}");
    }
    Ok(())
}
