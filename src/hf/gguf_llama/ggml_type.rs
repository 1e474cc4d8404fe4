//! The ggml tensor types of a GGUF file's tensor table: those candle reads, and for the others
//! (llama.cpp's IQ, ternary and FP4 quantizations) a sentence naming the type and what to use.

use candle_core::quantized::GgmlDType;

/// The ggml type with number `t`, as candle reads it.
pub(super) fn ggml_dtype(t: u32) -> Result<GgmlDType, String> {
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
    const NAMES: [(u32, &str); 18] = [
        (16, "IQ2_XXS"),
        (17, "IQ2_XS"),
        (18, "IQ3_XXS"),
        (19, "IQ1_S"),
        (20, "IQ4_NL"),
        (21, "IQ3_S"),
        (22, "IQ2_S"),
        (23, "IQ4_XS"),
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
             reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K to Q8_K); use a \
             Q4_K_M, Q5_K_M, Q8_0 or F16 file of the same model"
        ),
        None => format!("has unknown ggml type {t}"),
    }
}
