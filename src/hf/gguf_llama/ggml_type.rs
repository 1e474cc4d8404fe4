//! The ggml tensor types of a GGUF file's tensor table: those candle reads, llama.cpp's 4-bit
//! non-linear ones we dequantize ourselves (IQ4_NL, IQ4_XS: `iq4.rs`), and for the others (its
//! other IQ, ternary and FP4 quantizations) a sentence naming the type and what to use.

use candle_core::quantized::GgmlDType;

/// A tensor's element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorType {
    /// A type candle reads.
    Candle(GgmlDType),
    /// llama.cpp's IQ4_NL: blocks of 32, an f16 scale and 4-bit indices into a non-linear table.
    Iq4Nl,
    /// llama.cpp's IQ4_XS: super-blocks of 256 with a 6-bit scale for each 32.
    Iq4Xs,
}

impl TensorType {
    /// Elements of one block.
    pub fn block_size(self) -> usize {
        match self {
            Self::Candle(d) => d.block_size(),
            Self::Iq4Nl => 32,
            Self::Iq4Xs => 256,
        }
    }

    /// Bytes of one block.
    pub fn type_size(self) -> usize {
        match self {
            Self::Candle(d) => d.type_size(),
            Self::Iq4Nl => 18,
            Self::Iq4Xs => 136,
        }
    }

    /// Whether candle's reader reads it.
    pub fn candle(self) -> Option<GgmlDType> {
        match self {
            Self::Candle(d) => Some(d),
            _ => None,
        }
    }
}

impl std::fmt::Display for TensorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Candle(d) => write!(f, "{d:?}"),
            Self::Iq4Nl => f.write_str("IQ4_NL"),
            Self::Iq4Xs => f.write_str("IQ4_XS"),
        }
    }
}

/// The type with ggml number `t`.
pub(super) fn tensor_type(t: u32) -> Result<TensorType, String> {
    match t {
        20 => Ok(TensorType::Iq4Nl),
        23 => Ok(TensorType::Iq4Xs),
        t => ggml_dtype(t).map(TensorType::Candle),
    }
}

/// The ggml type with number `t`, as candle reads it.
fn ggml_dtype(t: u32) -> Result<GgmlDType, String> {
    Ok(match t {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        9 => GgmlDType::Q8_1,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        15 => GgmlDType::Q8K,
        30 => GgmlDType::BF16,
        t => return Err(unread_type(t)),
    })
}

/// Why ggml type `t` is not read: llama.cpp's name for it where it has one, and what to use.
fn unread_type(t: u32) -> String {
    const NAMES: [(u32, &str); 16] = [
        (16, "IQ2_XXS"),
        (17, "IQ2_XS"),
        (18, "IQ3_XXS"),
        (19, "IQ1_S"),
        (21, "IQ3_S"),
        (22, "IQ2_S"),
        (24, "I8"),
        (25, "I16"),
        (26, "I32"),
        (27, "I64"),
        (28, "F64"),
        (29, "IQ1_M"),
        (34, "TQ1_0"),
        (35, "TQ2_0"),
        (39, "MXFP4"),
        (40, "NVFP4"),
    ];
    match NAMES.iter().find(|(n, _)| *n == t) {
        Some((_, name)) => format!(
            "is stored as {name} (ggml type {t}), a quantization this build does not read (it \
             reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q8_K, IQ4_NL and \
             IQ4_XS); use a Q4_K_M, IQ4_XS, Q8_0 or F16 file of the same model"
        ),
        None => format!("has unknown ggml type {t}"),
    }
}
