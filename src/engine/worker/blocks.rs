//! Block jobs: rename a block of the current model, rebuild an imported model's blocks (k-means
//! or a lexicon), and what follows any change of the block map.

use super::slot::ModelSlot;
use super::Worker;
use crate::engine::protocol::{Event, ImportedBlocks, RecruitView};
use crate::model::blocks::BlockMap;

impl Worker {
    /// After the block map changed: tell the UI, save an imported model's map beside it, check
    /// the rules again and capture.
    fn blocks_changed(&mut self) {
        let Some(blocks) = self.slot.blocks_mut().map(|b| b.clone()) else {
            return;
        };
        self.sink.emit(Event::BlocksChanged(
            blocks.names.clone(),
            blocks.block_sizes(),
        ));
        if let ModelSlot::Imported(i) = &self.slot {
            let path = i.model.blocks_path();
            let written = serde_json::to_vec(&blocks)
                .map_err(|e| e.to_string())
                .and_then(|j| {
                    crate::engine::export::write_atomic(&path, &j).map_err(|e| e.to_string())
                });
            match written {
                Ok(()) => self
                    .sink
                    .emit(Event::Status(format!("blocks saved to {}", path.display()))),
                Err(e) => self.sink.fail(format!(
                    "the blocks could not be saved to {}: {e} (they stay in force for this session)",
                    path.display()
                )),
            }
        }
        self.refit_rules();
        self.recapture();
    }

    /// Rename block `b` of the current model (block 0 keeps its name; names stay unique).
    pub(super) fn rename_block(&mut self, b: usize, name: String) {
        let name = name.trim().to_string();
        let Some(blocks) = self.slot.blocks_mut() else {
            self.sink.fail("no model is loaded");
            return;
        };
        if let Some(p) = rename_problem(blocks, b, &name) {
            self.sink.fail(p);
            return;
        }
        let Some(slot) = blocks.names.get_mut(b) else {
            return;
        };
        let from = std::mem::replace(slot, name.clone());
        // The recruitment log keeps the names it decided under, and the rename.
        if let Some(rec) = self.slot.recruiter_mut() {
            rec.renamed.push(crate::train::recruit::Renamed {
                at: rec.log.len(),
                from,
                to: name,
            });
            let view = RecruitView::from(&*rec);
            self.sink.emit(Event::Recruitment(Box::new(view)));
        }
        self.blocks_changed();
    }

    /// Rebuild an imported model's blocks by k-means or from a lexicon.
    pub(super) fn set_imported_blocks(&mut self, src: &ImportedBlocks) {
        let Some(i) = self.slot.imported_mut() else {
            self.sink
                .fail("blocks by k-means or lexicon are for imported models; open one first");
            return;
        };
        let result = match src {
            ImportedBlocks::KMeans(k) => i
                .model
                .kmeans_blocks(&i.tokenizer, (*k).clamp(2, 256), 0)
                .map_err(|e| format!("k-means blocks failed: {e:#}")),
            ImportedBlocks::Lexicon(path) => crate::data::lexicon::Lexicon::load(path)
                .map_err(|e| e.to_string())
                .and_then(|lex| {
                    crate::hf::lexicon_blocks(&lex, &i.tokenizer).map_err(|e| e.to_string())
                }),
        };
        match result {
            Ok(b) => {
                let note = format!("{} blocks from {}", b.num_blocks(), b.source);
                i.blocks = b;
                self.sink.emit(Event::Status(note));
                self.blocks_changed();
            }
            Err(e) => self.sink.fail(format!("{e}; the blocks are unchanged")),
        }
    }
}

/// Why block `b` cannot be called `name`, if it cannot.
fn rename_problem(blocks: &BlockMap, b: usize, name: &str) -> Option<String> {
    if name.is_empty() {
        Some("a block name cannot be empty".to_string())
    } else if b == 0 {
        Some(format!(
            "block 0 ({}) keeps its name",
            blocks.names.first().map(String::as_str).unwrap_or_default()
        ))
    } else if blocks
        .names
        .iter()
        .enumerate()
        .any(|(k, n)| k != b && n == name)
    {
        Some(format!("another block is already called {name:?}"))
    } else if b >= blocks.names.len() {
        Some(format!("there is no block {b}"))
    } else {
        crate::files::hidden_in_name(name).map(|found| format!("the name holds {found}"))
    }
}
