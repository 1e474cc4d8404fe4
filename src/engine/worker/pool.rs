//! Growing a pool of specialists from the studio: the same search as `localist specialists`
//! (SPEC §10), run as a cancellable job whose status line follows the moves, then saved and
//! read back for the Specialists tab.

use anyhow::{Context, Result};

use super::Worker;
use crate::engine::jobs::specialists::{GrowPool, PoolRun};
use crate::engine::protocol::Event;
use crate::engine::views::read_pool;

impl Worker {
    /// Grow the pool `g` describes, save it in `g.out` and send it as [`Event::Pool`] (or
    /// why it failed). A cancelled growth keeps the moves accepted so far and is saved too.
    pub(super) fn grow_pool(&mut self, g: GrowPool) {
        let result = self.grown(&g).and_then(|note| {
            let pool = read_pool(&g.out)
                .with_context(|| format!("reading back the pool saved in {}", g.out.display()))?;
            Ok((pool, note))
        });
        match result {
            Ok((pool, note)) => {
                self.sink.emit(Event::Status(note));
                self.sink.emit(Event::Pool(Ok(Box::new(pool))));
            }
            Err(e) => self
                .sink
                .emit(Event::Pool(Err(format!("growing the pool failed: {e:#}")))),
        }
    }

    /// Open, grow and save; returns the line that says how it ended.
    fn grown(&self, g: &GrowPool) -> Result<String> {
        // A pool never overwrites what is there (the studio's form asks the same).
        crate::engine::outputs::check_new_or_empty(&g.out)
            .map_err(|m| anyhow::anyhow!("{}: {m}", g.out.display()))?;
        let _lock = crate::engine::out_lock::OutLock::take(&g.out)
            .map_err(|m| anyhow::anyhow!("{}: {m}", g.out.display()))?;
        let mut run = PoolRun::open(g.job.clone())?;
        let start = run.dl_total_bits();
        // Said as the pool starts, and again with the line it ends on (the status moves on).
        let notes = run.notes();
        for note in &notes {
            self.sink.job_status(format!("growing the pool: {note}"));
        }
        let _cancellable = self.sink.cancellable();
        let sink = &self.sink;
        let (mut moves, mut accepted) = (0usize, 0usize);
        run.grow(
            |m| {
                moves += 1;
                accepted += usize::from(m.accepted);
                sink.job_status(format!(
                    "growing the pool: round {}, {} ({}; {moves} move{}, {accepted} accepted)",
                    m.round,
                    m.what,
                    if m.accepted { "accepted" } else { "rejected" },
                    if moves == 1 { "" } else { "s" }
                ));
            },
            |line| {
                sink.job_status(format!("growing the pool: {line}"));
            },
            &|| sink.cancelled(),
        )?;
        let stopped = sink.cancelled();
        run.save(&g.out)
            .with_context(|| format!("saving the pool in {}", g.out.display()))?;
        Ok(format!(
            "pool {}: {} specialists over {} documents, DL_total {start:.0} -> {:.0} bits; saved \
             in {}",
            if stopped {
                "stopped by the user (the moves accepted so far are kept)"
            } else {
                "grown"
            },
            run.specialists(),
            run.documents(),
            run.dl_total_bits(),
            g.out.display()
        ) + &notes.iter().map(|n| format!(" ({n})")).collect::<String>())
    }
}
