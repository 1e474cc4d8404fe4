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
//! another runs as a plain call. The pass starts once its partners have taken their jobs (or
//! after [`ARRIVAL_WAIT`]); a job taken later returns at once, because it may have been taken
//! inside a part of the pass (see [`with_pool_awake`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

thread_local! {
    /// True on a thread while it runs a pass under [`with_pool_awake`].
    static IN_PASS: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread runs a pass under [`with_pool_awake`] with partners kept awake.
pub fn in_pass() -> bool {
    IN_PASS.with(Cell::get)
}

/// How long a pass waits for its partners to take their keep-awake jobs before it starts
/// (an idle partner takes its job in microseconds; one woken from sleep in a virtual machine
/// in tens of them). A partner that comes later is not kept awake.
const ARRIVAL_WAIT: Duration = Duration::from_micros(200);

/// One pass's state, shared with its partners' jobs.
struct Pass {
    /// Set when the pass has ended: the spinners stop.
    done: AtomicBool,
    /// Set just before the pass starts: a job taken after it returns at once.
    began: AtomicBool,
    /// Partners spinning.
    arrived: AtomicUsize,
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
///
/// A partner must take its keep-awake job *before* the pass forks. rayon runs a thread's
/// broadcast job wherever that thread next looks for work, also while it waits on a join
/// inside a part of the pass it stole; a job that then spun until the pass ended would sit on
/// top of that part, and the pass would wait for the part forever (`tests/awake.rs`,
/// `a_partner_that_joins_a_pass_late_does_not_hold_it_up`: two threads hung in 4 runs of 5
/// before this; so did a 2-thread capture benchmark whose first fork was its heads). So the
/// pass waits up to [`ARRIVAL_WAIT`] for its partners, then starts, and a job taken after
/// that returns at once.
pub fn with_pool_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let threads = rayon::current_num_threads();
    if threads < 2 || IN_PASS.with(Cell::get) {
        return f();
    }
    let pass = Pass {
        done: AtomicBool::new(false),
        began: AtomicBool::new(false),
        arrived: AtomicUsize::new(0),
    };
    let shared = &pass;
    // From outside the pool, `scope` runs its body on a pool thread; inside, on this one.
    rayon::scope(|s| {
        let home = rayon::current_thread_index();
        // One job on each thread of the pool (not stealable: a spinner taken by the pass's
        // own thread while it waits would be lost to the others).
        s.spawn_broadcast(move |_, ctx| keep_awake(shared, home, ctx.index()));
        let deadline = Instant::now() + ARRIVAL_WAIT;
        while shared.arrived.load(Ordering::SeqCst) < threads - 1 && Instant::now() < deadline {
            std::hint::spin_loop();
        }
        shared.began.store(true, Ordering::SeqCst);
        IN_PASS.with(|p| p.set(true));
        let _done = Done(&shared.done);
        f()
    })
}

/// Run the pool's pending work, spinning while there is none, until the pass is done (returns
/// at once on the pass's own thread, `home`, and when taken after the pass began).
fn keep_awake(pass: &Pass, home: Option<usize>, here: usize) {
    if home == Some(here) {
        return;
    }
    pass.arrived.fetch_add(1, Ordering::SeqCst);
    if pass.began.load(Ordering::SeqCst) {
        return;
    }
    while !pass.done.load(Ordering::Acquire) {
        if !matches!(rayon::yield_now(), Some(rayon::Yield::Executed)) {
            std::hint::spin_loop();
        }
    }
}
