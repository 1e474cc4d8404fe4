//! Screenshots of every tab of the real studio, drawn by egui_kittest's wgpu renderer (the
//! WGSL heatmaps included) at 1024 × 700 and 1600 × 1000 in the dark and light themes, on the
//! clinical sample with the example rules in force; plus the first-start Tour, the audit's
//! pass/fail over a test set, and a heatmap PNG being exported through the built-in file
//! browser. Writes `OUT/tabs/TAB_WxH_THEME.png` and a few named ones beside:
//!
//! ```text
//! cargo run --example studio_screenshots -- assets/screenshots
//! ```
//!
//! The PNGs are written at full colour; `convert -colors 256` makes them small.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use localist::engine::figures::head_png;
use localist::engine::protocol::Command;
use localist::studio::app::StudioApp;
use localist::studio::gpu_heatmap;
use localist::studio::state::Tab;

const TABS: [(Tab, &str); 9] = [
    (Tab::Attention, "attention"),
    (Tab::Theory, "theory"),
    (Tab::Blocks, "blocks"),
    (Tab::Compare, "compare"),
    (Tab::Rules, "rules"),
    (Tab::Generate, "generate"),
    (Tab::Recruitment, "recruitment"),
    (Tab::Specialists, "specialists"),
    (Tab::Audit, "audit"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn harness(size: egui::Vec2, theme: egui::Theme, tour: bool) -> Harness<'static, StudioApp> {
    let ck = root().join("sample_models/tiny-clinical");
    Harness::builder()
        .with_size(size)
        .with_theme(theme)
        .wgpu()
        .build_eframe(move |cc| {
            gpu_heatmap::register(&cc.egui_ctx, cc.wgpu_render_state.as_ref());
            cc.egui_ctx.set_theme(theme);
            let app = StudioApp::new(&cc.egui_ctx, Some(ck));
            if tour {
                app.with_storage(None)
            } else {
                app
            }
        })
}

fn step_until(h: &mut Harness<'static, StudioApp>, what: &str, done: impl Fn(&StudioApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while !done(h.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(2));
    }
    h.run_steps(3);
}

fn save(h: &mut Harness<'static, StudioApp>, path: &Path) {
    let img = h.render().expect("a rendered frame");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), img.width(), img.height());
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(img.as_raw())
        .unwrap();
    println!("wrote {}", path.display());
}

/// The clinical sample settled on its own text, with the example rules in force.
fn settled(h: &mut Harness<'static, StudioApp>) {
    step_until(h, "the model's own text and λ*", |app| {
        let st = &app.state;
        st.capture
            .as_ref()
            .is_some_and(|(_, t)| t.first().is_some_and(|w| w == "note" || w == "txn"))
            && st.threshold.is_some()
    });
    let rules =
        std::fs::read_to_string(root().join("assets/rules/clinical_payments.rules")).unwrap();
    h.state_mut().state.rules.editor = rules.clone();
    h.state_mut().state.apply_rules(rules, Vec::new());
    step_until(h, "the rules in force", |app| {
        !app.state.rules.resolved.is_empty()
            && app.state.stale_reports().is_none()
            && !app.state.rules.reports.is_empty()
    });
}

/// What a tab needs before its picture: its worker answers.
fn prepare(h: &mut Harness<'static, StudioApp>, tab: Tab) {
    h.state_mut().state.tab = tab;
    h.run_steps(3);
    match tab {
        Tab::Compare => step_until(h, "both sides", |app| {
            app.state.compare.views.is_some() && !app.state.compare.pending
        }),
        Tab::Theory => step_until(h, "the theory curve", |app| {
            app.state.theory.is_some() && !app.state.theory_pending
        }),
        Tab::Generate if h.state().state.generate.last.is_none() => {
            h.state_mut().state.generate.pending = true;
            h.state_mut().state.send(Command::Generate(8));
            step_until(h, "a generation", |app| app.state.generate.last.is_some());
        }
        Tab::Audit if h.state().state.rules.test_audit.is_none() => {
            h.state_mut().state.audit_test_set();
            step_until(h, "the audit over held-out windows", |app| {
                app.state.rules.test_audit.is_some()
            });
        }
        Tab::Specialists if h.state().pool.is_none() => {
            h.get_by_label("pool-clinical-payments").click_accesskit();
            step_until(h, "the sample pool", |app| app.pool.is_some());
        }
        _ => {}
    }
    h.run_steps(4);
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "screenshots".into()),
    );
    for (w, hgt) in [(1024.0, 700.0), (1600.0, 1000.0)] {
        for (theme, tname) in [(egui::Theme::Dark, "dark"), (egui::Theme::Light, "light")] {
            let mut h = harness(egui::vec2(w, hgt), theme, false);
            settled(&mut h);
            for (tab, name) in TABS {
                prepare(&mut h, tab);
                save(
                    &mut h,
                    &out.join(format!("tabs/{name}_{w}x{hgt}_{tname}.png")),
                );
            }
            if w > 1500.0 && tname == "dark" {
                // The difference view of Compare.
                h.state_mut().state.tab = Tab::Compare;
                h.state_mut().state.compare.difference = true;
                h.run_steps(4);
                save(&mut h, &out.join("compare_difference.png"));
                h.state_mut().state.compare.difference = false;
                // The heads table with PF and an enlarged head.
                h.state_mut().state.tab = Tab::Attention;
                h.state_mut().state.focus = Some((1, 2));
                h.run_steps(3);
                h.get_by_label("table").click_accesskit();
                h.run_steps(4);
                save(&mut h, &out.join("heads_table_pf.png"));
            }
        }
    }
    // The first start: the Tour.
    let mut h = harness(egui::vec2(1024.0, 700.0), egui::Theme::Dark, true);
    settled(&mut h);
    h.state_mut().state.tab = Tab::Attention;
    h.run_steps(4);
    save(&mut h, &out.join("tour_1024x700.png"));
    // A heatmap PNG exported through the built-in file browser.
    std::env::set_var("LOCALIST_FILE_DIALOG", "builtin");
    let mut h = harness(egui::vec2(1600.0, 1000.0), egui::Theme::Dark, false);
    settled(&mut h);
    let png = {
        let st = &h.state().state;
        let (cap, _) = st.capture.as_ref().unwrap();
        head_png(cap, cap.head(0, 0).unwrap(), st.colormap, false, 8).unwrap()
    };
    h.state_mut().state.focus = Some((0, 0));
    h.state_mut().state.pending_export = Some(("attention-l0-h0.png".into(), png));
    h.run_steps(6);
    save(&mut h, &out.join("export_heatmap_builtin_browser.png"));
}
