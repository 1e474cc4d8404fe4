//! The routing table of a pool as Markdown: for each document, its bits under every
//! specialist and where it is routed.

use crate::train::specialists::documents::Document;
use crate::train::specialists::pool::Pool;

impl Pool {
    /// The routing table: for each document, bits under each specialist and where it goes.
    pub fn routing_table(&self, docs: &[Document]) -> String {
        let mut s = String::from("| document | tokens |");
        for sp in &self.specialists {
            s.push_str(&format!(" {} (bits) |", sp.name));
        }
        s.push_str(" routed to |\n|---|---|");
        for _ in &self.specialists {
            s.push_str("---|");
        }
        s.push_str("---|\n");
        for (d, doc) in docs.iter().enumerate() {
            s.push_str(&format!("| {} | {} |", doc.name, doc.ids.len()));
            for b in self.bits.get(d).into_iter().flatten() {
                s.push_str(&format!(" {b:.0} |"));
            }
            let to = self
                .assignment
                .get(d)
                .and_then(|&j| self.specialists.get(j))
                .map(|s| s.name.as_str())
                .unwrap_or("?");
            s.push_str(&format!(" {to} |\n"));
        }
        s
    }
}
