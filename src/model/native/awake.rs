//! A pass with rayon's threads kept awake between its parallel parts.
//!
//! **Why.** A native pass forks a few times per layer (q ∥ k, v; the heads; the MLP's rows),
//! with short serial stretches between (norms, packing, RoPE). rayon puts an idle thread to
//! sleep after a few dozen empty searches, microseconds, and the next fork must wake it. In a
//! virtual machine a wake-up is an interrupt to another virtual CPU: measured on a 2-vCPU Zen 4
//! (`examples/bf16_scaling.rs`), SmolLM2's 1536×576·576×64 bf16 product took 251 µs at two
//! threads back to back, 280–300 µs with 50–200 µs of serial work before each (the partner
//! asleep), and 249–255 µs with the partner kept awake. A SmolLM2 pass forks about 150 times.
//!
//! **How.** [`with_pool_awake`] runs the pass on a pool thread and gives every other pool
//! thread a job (one each, by `spawn_broadcast`) that keeps asking the pool for work
//! ([`rayon::yield_now`], which runs a stolen part at once) until the pass ends; between parts
//! they spin (`spin_loop`), as OpenMP's active wait does. So the pass uses every pool thread's CPU for its duration, and none after:
//! the spinners end with it, also when it panics (a drop guard sets the flag). The pass's own
//! thread's job returns at once, so it can never hold the pass up; a pass started inside
//! another runs as a plain call.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// True on a thread while it runs a pass under [`with_pool_awake`].
    static IN_PASS: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread runs a pass under [`with_pool_awake`] with partners kept awake.
pub fn in_pass() -> bool {
    IN_PASS.with(Cell::get)
}

/// Sets the flag when dropped, and clears this thread's [`IN_PASS`]: the spinners end even if
/// the pass panics.
struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
        IN_PASS.with(|p| p.set(false));
    }
}

/// `f` on a thread of rayon's current pool, with the pool's other threads kept awake (taking
/// the pass's parallel parts as they appear) until it returns. With one thread, or inside
/// another such pass, `f` alone.
pub fn with_pool_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let threads = rayon::current_num_threads();
    if threads < 2 || IN_PASS.with(Cell::get) {
        return f();
    }
    let done = AtomicBool::new(false);
    let flag = &done;
    // From outside the pool, `scope` runs its body on a pool thread; inside, on this one.
    rayon::scope(|s| {
        let home = rayon::current_thread_index();
        // One job on each thread of the pool (not stealable: a spinner taken by the pass's
        // own thread while it waits would be lost to the others).
        s.spawn_broadcast(move |_, ctx| keep_awake(flag, home, ctx.index()));
        IN_PASS.with(|p| p.set(true));
        let _done = Done(flag);
        f()
    })
}

/// Run the pool's pending work, spinning while there is none, until `done` (returns at once on
/// the pass's own thread, `home`).
fn keep_awake(done: &AtomicBool, home: Option<usize>, here: usize) {
    if home == Some(here) {
        return;
    }
    while !done.load(Ordering::Acquire) {
        if !matches!(rayon::yield_now(), Some(rayon::Yield::Executed)) {
            std::hint::spin_loop();
        }
    }
}
