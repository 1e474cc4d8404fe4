//! `model::native::awake::with_pool_awake`: a pass runs on a pool thread with the others kept
//! awake, returns its value, lets the others take its parallel parts, and ends its spinners
//! however it ends (a value, a panic, a nested pass, a pool of one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use localist::model::native::awake::with_pool_awake;
use rayon::prelude::*;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// A pass of many small forks with serial work between, then a fork whose two halves must
/// run at the same time (each waits, up to 10 s, for the other to start): its value, its
/// thread, and whether the halves met.
fn forking_pass() -> (u64, Option<usize>, bool) {
    with_pool_awake(|| {
        let mut sum = 0u64;
        for round in 0..200u64 {
            sum += (0..64u64)
                .into_par_iter()
                .map(|i| std::hint::black_box(i * round))
                .sum::<u64>();
        }
        let (a, b) = (AtomicBool::new(false), AtomicBool::new(false));
        let meet = |mine: &AtomicBool, other: &AtomicBool| {
            mine.store(true, Ordering::Release);
            let start = Instant::now();
            while !other.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(10) {
                std::hint::spin_loop();
            }
            other.load(Ordering::Acquire)
        };
        let (x, y) = rayon::join(|| meet(&a, &b), || meet(&b, &a));
        (sum, rayon::current_thread_index(), x && y)
    })
}

#[test]
fn a_pass_runs_on_the_pool_and_its_parts_side_by_side() {
    // From inside a pool of 3, and from outside any pool (the worker thread's case) on the
    // global pool when it has several threads.
    let mut runs = vec![pool(3).install(forking_pass)];
    if rayon::current_num_threads() > 1 {
        runs.push(forking_pass());
    }
    for (sum, home, met) in runs {
        // 64·63/2 = 2016 per unit of round; Σ round over 0..200 = 19900.
        assert_eq!(sum, 2016 * 19_900);
        assert!(home.is_some(), "the pass ran on a pool thread");
        assert!(met, "the two halves of a fork never ran at the same time");
    }
}

#[test]
fn a_panicking_pass_ends_its_spinners_and_the_pool_goes_on() {
    let p = pool(2);
    let r = p.install(|| std::panic::catch_unwind(|| with_pool_awake(|| panic!("pass failed"))));
    assert!(r.is_err());
    // The pool is free again: the spinner did not outlive the pass.
    assert_eq!(p.install(|| with_pool_awake(|| 7)), 7);
    assert_eq!(
        p.install(|| (0..1000).into_par_iter().sum::<i32>()),
        499_500
    );
}

#[test]
fn nested_passes_and_a_pool_of_one_are_plain_calls() {
    let p = pool(2);
    let inner = p.install(|| {
        with_pool_awake(|| {
            let outer = rayon::current_thread_index();
            with_pool_awake(|| (outer, rayon::current_thread_index()))
        })
    });
    assert_eq!(inner.0, inner.1, "the nested pass stays on its thread");
    let one = pool(1);
    assert_eq!(one.install(|| with_pool_awake(|| 5)), 5);
}
