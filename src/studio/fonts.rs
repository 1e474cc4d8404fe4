//! Fallback fonts for scripts egui's bundled fonts do not cover.
//!
//! egui ships Latin, Greek and Cyrillic (Ubuntu, Hack) and emoji. A word tokenizer fitted on
//! Chinese, Arabic or Hindi text names its tokens, blocks and rules in those scripts, which the
//! bundled fonts draw as empty boxes. At start-up the studio adds, after the bundled fonts (used
//! only for characters they lack), the first readable file of each group in [`CANDIDATES`]
//! (common locations on Linux, macOS and Windows), and every file named in `LOCALIST_FONTS`
//! (paths separated by `:`; `;` on Windows). Nothing is downloaded; a missing font is skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
use egui::{FontData, FontFamily};

/// Largest font file read (a full Noto CJK collection is about 20 MB).
const MAX_FONT_BYTES: u64 = 64 << 20;

/// Groups of font files by the scripts they add; the first readable file of each group is used.
pub const CANDIDATES: [&[&str]; 5] = [
    // Chinese, Japanese, Korean.
    &[
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/System/Library/Fonts/Hiragino Sans GB.ttc",
        "/Library/Fonts/Arial Unicode.ttf",
        "C:\\Windows\\Fonts\\msyh.ttc",
    ],
    // Arabic, Hebrew, Armenian, Georgian and many symbols.
    &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
    ],
    // Devanagari.
    &[
        "/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf",
        "/usr/share/fonts/noto/NotoSansDevanagari-Regular.ttf",
        "/usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf",
        "/System/Library/Fonts/Supplemental/DevanagariMT.ttc",
        "C:\\Windows\\Fonts\\Nirmala.ttf",
    ],
    // Thai.
    &[
        "/usr/share/fonts/truetype/noto/NotoSansThai-Regular.ttf",
        "/usr/share/fonts/noto/NotoSansThai-Regular.ttf",
        "/usr/share/fonts/truetype/tlwg/Garuda.ttf",
        "/System/Library/Fonts/Supplemental/Thonburi.ttc",
        "C:\\Windows\\Fonts\\leelawad.ttf",
    ],
    // Everything else a system may have.
    &[
        "/usr/share/fonts/truetype/unifont/unifont.ttf",
        "/usr/share/fonts/opentype/unifont/unifont.otf",
    ],
];

/// The font files to add: `LOCALIST_FONTS`' files first, then the first readable file of each
/// group of [`CANDIDATES`].
pub fn fallback_files(env: Option<&str>) -> Vec<PathBuf> {
    let separator = if cfg!(windows) { ';' } else { ':' };
    let mut files: Vec<PathBuf> = env
        .unwrap_or_default()
        .split(separator)
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from)
        .filter(|p| readable_font(p))
        .collect();
    for group in CANDIDATES {
        if let Some(p) = group.iter().map(Path::new).find(|p| readable_font(p)) {
            files.push(p.to_path_buf());
        }
    }
    files
}

fn readable_font(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_FONT_BYTES)
}

/// Add the fallback fonts to `ctx`, after the bundled ones in both families. Returns the files
/// added (a file that cannot be read, or is not a font, is left out and named on stderr).
pub fn add_fallbacks(ctx: &egui::Context) -> Vec<PathBuf> {
    let env = std::env::var("LOCALIST_FONTS").ok();
    add_files(ctx, &fallback_files(env.as_deref()))
}

/// Add `files` to `ctx` as fallback fonts of both families; returns those added.
pub fn add_files(ctx: &egui::Context, files: &[PathBuf]) -> Vec<PathBuf> {
    let mut added = Vec::new();
    for path in files {
        // The same file named twice (in LOCALIST_FONTS and among the candidates) is added once.
        if added.contains(path) {
            continue;
        }
        let path = path.clone();
        let bytes = match crate::engine::files::read_bytes(&path, MAX_FONT_BYTES, "a font") {
            Ok(b) if looks_like_font(&b) => b,
            Ok(_) => {
                eprintln!(
                    "font {}: not a TrueType/OpenType file; skipped",
                    path.display()
                );
                continue;
            }
            Err(e) => {
                eprintln!("font: {e}; skipped");
                continue;
            }
        };
        let families = [FontFamily::Proportional, FontFamily::Monospace]
            .into_iter()
            .map(|family| InsertFontFamily {
                family,
                priority: FontPriority::Lowest,
            })
            .collect();
        let name = format!("fallback:{}", path.display());
        let data = FontData::from_blob(Arc::new(bytes), 0);
        ctx.add_font(FontInsert::new(&name, data, families));
        added.push(path);
    }
    added
}

/// True when `bytes` start like a TrueType, OpenType or font collection file (a broken file
/// would otherwise fail deep inside the font rasterizer).
pub fn looks_like_font(bytes: &[u8]) -> bool {
    matches!(
        bytes.get(..4),
        Some([0, 1, 0, 0] | b"OTTO" | b"ttcf" | b"true")
    )
}
