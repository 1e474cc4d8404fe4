//! The desktop studio (eframe/egui): a worker thread runs the engine, the window shows the
//! dial, heatmaps and training curves. See `app.rs` for the frame loop and `panels/` for the
//! panels, one file each.
//!
//! Imports run one way, top to bottom: `app` (and its parts under `app/`) draws the panels;
//! `panels` draw from the shared state and never import each other or the app; below them sit
//! `state`, `session`, `settings`, `tab`, `text`, `widgets`, `export`, `fonts` and
//! `gpu_heatmap`, which import neither the panels nor the app.

pub mod app;
pub mod export;
pub mod file_browser;
pub mod fonts;
pub mod gpu_heatmap;
pub mod panels;
pub mod session;
pub mod session_marker;
pub mod settings;
pub mod state;
pub mod tab;
pub mod text;
pub mod tour;
pub mod widgets;

use std::path::PathBuf;

use anyhow::{anyhow, Result};

/// Open the studio window, with `checkpoint` (or the bundled sample) loaded. Tries wgpu, then
/// falls back to OpenGL when no wgpu adapter can be created.
pub fn run(checkpoint: Option<PathBuf>) -> Result<()> {
    let mut last_err = None;
    for renderer in [eframe::Renderer::Wgpu, eframe::Renderer::Glow] {
        let options = eframe::NativeOptions {
            renderer,
            viewport: egui::ViewportBuilder::default()
                .with_title("Localist Studio")
                .with_inner_size([1280.0, 820.0]),
            ..Default::default()
        };
        let ck = checkpoint.clone();
        let result = eframe::run_native(
            "Localist Studio",
            options,
            Box::new(move |cc| {
                let gpu = gpu_heatmap::register(&cc.egui_ctx, cc.wgpu_render_state.as_ref());
                eprintln!(
                    "heatmaps: {}",
                    if gpu {
                        "WGSL shader (wgpu paint callback)"
                    } else {
                        "CPU textures (no wgpu render state)"
                    }
                );
                let fonts = fonts::add_fallbacks(&cc.egui_ctx);
                if !fonts.is_empty() {
                    let names: Vec<String> =
                        fonts.iter().map(|p| p.display().to_string()).collect();
                    eprintln!("fallback fonts: {}", names.join(", "));
                }
                let mut app = app::StudioApp::new(&cc.egui_ctx, ck)
                    .with_storage(cc.storage)
                    .with_signals();
                if let Some(dir) = eframe::storage_dir("Localist Studio") {
                    app = app.with_autosave(dir.join("autosave"));
                }
                Ok(Box::new(app))
            }),
        );
        match result {
            Ok(()) => return Ok(()),
            Err(e) => {
                eprintln!("renderer {renderer:?} failed: {e}");
                last_err = Some(e);
            }
        }
    }
    Err(anyhow!(
        "could not open the studio window: {}",
        last_err.map(|e| e.to_string()).unwrap_or_default()
    ))
}
