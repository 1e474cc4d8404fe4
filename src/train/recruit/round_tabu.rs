//! Candidates rejected within one round sit out the rest of it. An accepted try clears the tabu
//! list (the map changed), and so does a quiet first try on a model still learning; within a
//! round that tries on (a small text, `SMALL_TEXT_QUIET_TRIES`) the model has trained only a
//! second look's few steps since, so a candidate rejected a try ago came straight back (on a
//! 200-document corpus `ward·dose` was rejected three times in one round, once after each
//! accept). Across rounds the list behaves as before: what a clearing removed, the next round
//! may try again.

use crate::train::recruit::recruiter::Recruiter;

/// This round's rejections, and the entries put back on the tabu list for the rest of it.
#[derive(Default)]
pub(super) struct RoundTabu {
    rejected: Vec<(Vec<u32>, usize)>,
    put_back: Vec<Vec<u32>>,
}

impl RoundTabu {
    /// After a try that began with `before` on the tabu list: note the entries it added (its
    /// rejections), and put back any rejection of this round that the try cleared.
    pub(super) fn after_try(&mut self, rec: &mut Recruiter, before: &[Vec<u32>]) {
        for (key, &at) in rec.tabu.iter().zip(&rec.tabu_steps) {
            if !before.contains(key) && !self.rejected.iter().any(|(k, _)| k == key) {
                self.rejected.push((key.clone(), at));
            }
        }
        for (key, at) in &self.rejected {
            if !rec.tabu.contains(key) {
                rec.add_tabu(key.clone(), *at);
                self.put_back.push(key.clone());
            }
        }
    }

    /// At the round's end: take off the entries put back, so that the clearing stands for the
    /// rounds after.
    pub(super) fn release(self, rec: &mut Recruiter) {
        let steps = std::mem::take(&mut rec.tabu_steps);
        (rec.tabu, rec.tabu_steps) = std::mem::take(&mut rec.tabu)
            .into_iter()
            .zip(steps)
            .filter(|(k, _)| !self.put_back.contains(k))
            .unzip();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::recruit::RecruitConfig;

    #[test]
    fn a_rejection_sits_out_the_rest_of_its_round_and_the_clearing_stands_after() {
        let mut rec = Recruiter::new(RecruitConfig::default());
        rec.add_tabu(vec![7], 25); // from an earlier round, still sitting out
        let mut held = RoundTabu::default();
        // The first try rejects [1, 2].
        let before = rec.tabu.clone();
        rec.add_tabu(vec![1, 2], 50);
        held.after_try(&mut rec, &before);
        assert_eq!(rec.tabu, vec![vec![7], vec![1, 2]]);
        // The next try accepts a move, which clears the list: [1, 2] is put back for this
        // round, [7] is not (this round did not reject it).
        let before = rec.tabu.clone();
        rec.clear_tabu();
        held.after_try(&mut rec, &before);
        assert_eq!(
            (rec.tabu.clone(), rec.tabu_steps.clone()),
            (vec![vec![1, 2]], vec![50])
        );
        // At the round's end the clearing stands.
        held.release(&mut rec);
        assert!(rec.tabu.is_empty() && rec.tabu_steps.is_empty());
    }

    #[test]
    fn a_round_whose_list_was_not_cleared_keeps_it_as_it_is() {
        let mut rec = Recruiter::new(RecruitConfig::default());
        let mut held = RoundTabu::default();
        let before = rec.tabu.clone();
        rec.add_tabu(vec![3], 50);
        held.after_try(&mut rec, &before);
        held.release(&mut rec);
        assert_eq!((rec.tabu, rec.tabu_steps), (vec![vec![3]], vec![50]));
    }
}
