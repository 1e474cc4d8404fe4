//! Rayon pools whose threads are pinned one to a CPU where a pool has a thread for each CPU
//! this process may run on. A pass that keeps its partners awake
//! ([`crate::model::native::awake`]) spins them between its parts, and Linux does not move a
//! thread that never sleeps: in snapshots of four starts of the capture bench, two had both
//! threads of a two-CPU pool on one CPU. The tiny model's 64-token capture at two threads took
//! 0.89 ms with both on one CPU (put there by `taskset`) and 0.54 ms on two, against one
//! thread's 0.80. Captures a frame apart, as a dragged dial sends them, took 0.73–0.87 ms
//! pinned against 1.12–1.25 ms on rayon's own pool (README, Speed). A pool smaller than the
//! CPUs is left to the scheduler: which CPUs share a core is not known here.

/// A pool builder of `n` threads, each pinned to a CPU of its own when `n` is the number of
/// CPUs this process may run on (and more than one).
pub fn pool_builder(n: usize) -> rayon::ThreadPoolBuilder {
    let builder = rayon::ThreadPoolBuilder::new().num_threads(n);
    let cpus = allowed_cpus();
    if n > 1 && cpus.len() == n {
        builder.start_handler(move |i| {
            if let Some(&cpu) = cpus.get(i) {
                pin_to(cpu);
            }
        })
    } else {
        builder
    }
}

/// The CPUs this process may run on (empty where that cannot be read).
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data, zeroed is a valid empty set; sched_getaffinity writes at
    // most its size, which is what it is told; CPU_ISSET reads within it for i < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&i| libc::CPU_ISSET(i, &set))
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Pin the calling thread to `cpu` (a failure leaves it where the scheduler puts it).
#[cfg(target_os = "linux")]
fn pin_to(cpu: usize) {
    // SAFETY: as in `allowed_cpus`; CPU_SET writes within the set for cpu < CPU_SETSIZE (the
    // CPUs come from CPU_ISSET over that range); pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let _ = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_cpu: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread pinned to one of the CPUs this process may use runs only there afterwards.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_pinned_thread_keeps_to_its_cpu() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        let last = *cpus.last().unwrap_or(&0);
        let seen = std::thread::spawn(move || {
            pin_to(last);
            allowed_cpus()
        })
        .join();
        assert_eq!(seen.ok(), Some(vec![last]));
        // The spawning thread keeps its own mask.
        assert_eq!(allowed_cpus(), cpus);
    }

    /// A pool of one thread per CPU has each thread on a CPU of its own; a smaller pool is not
    /// pinned.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_pool_of_one_thread_per_cpu_is_pinned_and_a_smaller_one_is_not() {
        let cpus = allowed_cpus();
        let masks = |n: usize| {
            let pool = pool_builder(n).build().ok();
            pool.map(|p| p.broadcast(|_| allowed_cpus()))
                .unwrap_or_default()
        };
        if cpus.len() > 1 {
            let mut seen: Vec<usize> = masks(cpus.len()).into_iter().flatten().collect();
            seen.sort_unstable();
            assert_eq!(seen, cpus, "one CPU a thread, every CPU once");
        }
        assert!(masks(1).iter().all(|m| *m == cpus));
    }
}
