//! The routing table of a pool as Markdown: for each document, its bits under every
//! specialist and where it is routed.

use crate::train::specialists::documents::Document;
use crate::train::specialists::pool::Pool;
use crate::train::specialists::table::routing_markdown;

impl Pool {
    /// The routing table: for each document, bits under each specialist and where it goes.
    pub fn routing_table(&self, docs: &[Document]) -> String {
        routing_markdown(&self.names(), docs, &self.bits, &self.assignment)
    }
}
