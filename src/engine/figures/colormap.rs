//! Colour-blind-safe colormaps (viridis, cividis) as polynomial fits, shared by the studio's
//! heatmaps and the figures the engine writes (PNG exports, the audit report).
//!
//! Each is a degree-6 polynomial per channel, least-squares fitted to matplotlib's 256-entry
//! table (largest error 1.7% for viridis, 4.1% for cividis at its extremes), so no lookup
//! table ships in the binary.

/// A colormap the heatmaps can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum Colormap {
    /// Perceptually uniform, dark blue → yellow.
    #[default]
    Viridis,
    /// Optimised for colour-vision deficiency, dark blue → yellow.
    Cividis,
}

impl Colormap {
    /// Both maps, for menus.
    pub const ALL: [Colormap; 2] = [Colormap::Viridis, Colormap::Cividis];

    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Cividis => "cividis",
        }
    }

    /// RGB bytes of value `t` (clamped to [0, 1]).
    pub fn rgb(self, t: f32) -> [u8; 3] {
        let t = t.clamp(0.0, 1.0);
        let c = match self {
            Colormap::Viridis => poly(
                t,
                [
                    [0.277_727_3, 0.005_407_344, 0.334_099_8],
                    [0.105_093_04, 1.404_613_5, 1.384_590_2],
                    [-0.330_861_83, 0.214_847_56, 0.095_095_16],
                    [-4.634_230_5, -5.799_101, -19.332_441],
                    [6.228_27, 14.179_934, 56.690_55],
                    [4.776_385, -13.745_146, -65.353_03],
                    [-5.435_456, 4.645_852_6, 26.312_435],
                ],
            ),
            Colormap::Cividis => poly(
                t,
                [
                    [-0.008_973, 0.136_756, 0.294_170],
                    [-0.384_689, 0.639_494, 2.982_654],
                    [15.429_21, 0.385_562, -22.363_76],
                    [-58.977_03, -1.404_197, 74.863_56],
                    [102.370_49, 2.600_914, -121.303_16],
                    [-83.187_24, -2.140_75, 93.974_22],
                    [25.776_07, 0.688_122, -28.262_533],
                ],
            ),
        };
        c.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
    }
}

fn poly(t: f32, coeffs: [[f32; 3]; 7]) -> [f32; 3] {
    let mut out = [0.0f32; 3];
    for (ch, o) in out.iter_mut().enumerate() {
        *o = coeffs
            .iter()
            .rev()
            .fold(0.0, |acc, c| acc * t + c.get(ch).copied().unwrap_or(0.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_match_the_published_maps() {
        // matplotlib: viridis(0) = (68, 1, 84), viridis(1) = (253, 231, 37);
        // cividis(0) = (0, 34, 78), cividis(0.5) = (125, 124, 120), cividis(1) = (254, 232, 56).
        let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12);
        assert!(
            near(Colormap::Viridis.rgb(0.0), [68, 1, 84]),
            "{:?}",
            Colormap::Viridis.rgb(0.0)
        );
        assert!(
            near(Colormap::Viridis.rgb(1.0), [253, 231, 37]),
            "{:?}",
            Colormap::Viridis.rgb(1.0)
        );
        assert!(
            near(Colormap::Cividis.rgb(0.0), [0, 34, 78]),
            "{:?}",
            Colormap::Cividis.rgb(0.0)
        );
        assert!(
            near(Colormap::Cividis.rgb(0.5), [125, 124, 120]),
            "{:?}",
            Colormap::Cividis.rgb(0.5)
        );
        assert!(
            near(Colormap::Cividis.rgb(1.0), [254, 232, 56]),
            "{:?}",
            Colormap::Cividis.rgb(1.0)
        );
        // Luminance rises monotonically (a property both maps are designed for).
        for cm in Colormap::ALL {
            let lum =
                |c: [u8; 3]| 0.2126 * c[0] as f32 + 0.7152 * c[1] as f32 + 0.0722 * c[2] as f32;
            let mut last = -1.0;
            for i in 0..=20 {
                let l = lum(cm.rgb(i as f32 / 20.0));
                assert!(l >= last - 1.0, "{cm:?} at {i}");
                last = l;
            }
        }
    }
}
