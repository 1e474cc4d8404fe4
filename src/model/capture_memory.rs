//! How much memory a capture needs, checked before anything is allocated.
//!
//! A capture keeps every layer's and head's T×T attention and biased scores, twice (candle's
//! tensors and the plain copy the metrics read), plus the dial's per-layer T×T biases and the
//! T×T relevance mask: memory grows with T². 8,192 tokens on a 30-layer, 9-head model need
//! about 300 GB, and such a capture used to die part-way when the allocator gave up. Here the
//! need is estimated first and refused above a limit with what it needs and what fits.

/// The limit when `LOCALIST_CAPTURE_LIMIT_GIB` is not set: 4 GiB.
pub const DEFAULT_LIMIT_BYTES: u64 = 4 << 30;

/// The environment variable that raises (or lowers) the limit, in GiB.
pub const LIMIT_ENV: &str = "LOCALIST_CAPTURE_LIMIT_GIB";

const GIB: f64 = (1u64 << 30) as f64;

/// A capture that would need more memory than the limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a capture of {tokens} tokens needs about {need_gib:.1} GiB of memory ({layers} layers × \
     {heads} heads × {tokens}² attention weights and scores, plus the dial's masks); the limit \
     is {limit_gib:.1} GiB: use a shorter text (at most {max_tokens} tokens fit), or raise the \
     limit with {LIMIT_ENV}",
    need_gib = *need_bytes as f64 / GIB,
    limit_gib = *limit_bytes as f64 / GIB
)]
pub struct CaptureTooBig {
    /// Sequence length T asked for.
    pub tokens: usize,
    /// Layers L.
    pub layers: usize,
    /// Heads per layer H.
    pub heads: usize,
    /// Estimated bytes.
    pub need_bytes: u64,
    /// The limit in bytes.
    pub limit_bytes: u64,
    /// The longest sequence that fits under the limit.
    pub max_tokens: usize,
}

/// Bytes per T² cell of one sequence: attention and scores as tensors and as plain copies
/// (4 × L·H floats), the dial's bias rows, bias tensor and mixture (3 × L floats), one mask byte.
fn bytes_per_cell(layers: usize, heads: usize) -> u128 {
    let (l, h) = (layers as u128, heads as u128);
    l.saturating_mul(h)
        .saturating_mul(16)
        .saturating_add(l.saturating_mul(12))
        .saturating_add(1)
}

/// Estimated bytes to capture `sequences` sequences of `tokens` tokens at once.
pub fn capture_bytes(layers: usize, heads: usize, tokens: usize, sequences: usize) -> u64 {
    let t = tokens as u128;
    let need = t
        .saturating_mul(t)
        .saturating_mul(sequences as u128)
        .saturating_mul(bytes_per_cell(layers, heads));
    u64::try_from(need).unwrap_or(u64::MAX)
}

/// The longest sequence whose capture fits in `limit_bytes`.
pub fn max_tokens(layers: usize, heads: usize, limit_bytes: u64) -> usize {
    let cells = u128::from(limit_bytes) / bytes_per_cell(layers, heads);
    // Integer square root: the largest t with t² ≤ cells.
    let mut t = (cells as f64).sqrt() as u128;
    while t * t > cells {
        t -= 1;
    }
    while (t + 1) * (t + 1) <= cells {
        t += 1;
    }
    usize::try_from(t).unwrap_or(usize::MAX)
}

/// The limit in bytes: `LOCALIST_CAPTURE_LIMIT_GIB` when it is a positive finite number, else
/// [`DEFAULT_LIMIT_BYTES`].
pub fn limit_bytes() -> u64 {
    std::env::var(LIMIT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|g| g.is_finite() && *g > 0.0)
        .map_or(DEFAULT_LIMIT_BYTES, |g| {
            (g * GIB).min(u64::MAX as f64) as u64
        })
}

/// Refuse a capture of `tokens` tokens on a model of `layers` × `heads` above `limit`.
pub fn check_with_limit(
    layers: usize,
    heads: usize,
    tokens: usize,
    limit: u64,
) -> Result<(), CaptureTooBig> {
    let need_bytes = capture_bytes(layers, heads, tokens, 1);
    if need_bytes <= limit {
        return Ok(());
    }
    Err(CaptureTooBig {
        tokens,
        layers,
        heads,
        need_bytes,
        limit_bytes: limit,
        max_tokens: max_tokens(layers, heads, limit),
    })
}

/// [`check_with_limit`] under the limit of [`limit_bytes`].
pub fn check_capture_memory(
    layers: usize,
    heads: usize,
    tokens: usize,
) -> Result<(), CaptureTooBig> {
    check_with_limit(layers, heads, tokens, limit_bytes())
}

/// How many sequences of `tokens` tokens fit in one batch under the limit (at most `wanted`);
/// an error when not even one does.
pub fn batch_that_fits(
    layers: usize,
    heads: usize,
    tokens: usize,
    wanted: usize,
) -> Result<usize, CaptureTooBig> {
    let limit = limit_bytes();
    check_with_limit(layers, heads, tokens, limit)?;
    let one = capture_bytes(layers, heads, tokens, 1).max(1);
    let fit = usize::try_from(limit / one).unwrap_or(usize::MAX);
    Ok(wanted.max(1).min(fit.max(1)))
}

/// Bytes a dense capture spends on block masses: every head's every query row over `blocks`
/// blocks, held as the capture's f32 rows, the metrics' copies and the output built from them
/// (16 bytes a value, measured: SmolLM2 with a map of 49,152 blocks peaked at 4.8 GB for 21
/// tokens).
pub fn block_mass_bytes(layers: usize, heads: usize, tokens: usize, blocks: usize) -> u64 {
    let need = [layers, heads, tokens, blocks, 16]
        .iter()
        .fold(1u128, |a, &x| a.saturating_mul(x as u128));
    u64::try_from(need).unwrap_or(u64::MAX)
}

/// Refuse a dense capture whose block masses pass the limit, naming the block map: a map of
/// one block per token (49,152 on SmolLM2) passed the T² estimate and aborted on memory.
pub fn check_block_masses(
    layers: usize,
    heads: usize,
    tokens: usize,
    blocks: usize,
) -> Result<(), String> {
    let limit = limit_bytes();
    let need = block_mass_bytes(layers, heads, tokens, blocks)
        .saturating_add(capture_bytes(layers, heads, tokens, 1));
    if need <= limit {
        return Ok(());
    }
    let most = (1..=tokens)
        .rev()
        .find(|&t| {
            block_mass_bytes(layers, heads, t, blocks)
                .saturating_add(capture_bytes(layers, heads, t, 1))
                <= limit
        })
        .unwrap_or(0);
    Err(format!(
        "the block map has {blocks} blocks: a capture of {tokens} tokens keeps each of the \
         {layers} × {heads} heads' mass on every block for every query, about {:.1} GiB with \
         its attention; the limit is {:.1} GiB: use a map of fewer blocks, or at most {most} \
         tokens (or raise the limit with {LIMIT_ENV})",
        need as f64 / GIB,
        limit as f64 / GIB
    ))
}

/// The shape of a streamed capture ([`crate::model::capture_stream`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamShape {
    /// Layers L.
    pub layers: usize,
    /// Heads per layer H.
    pub heads: usize,
    /// Sequence length T.
    pub tokens: usize,
    /// Heads whose attention grid is kept.
    pub kept_heads: usize,
    /// Each kept grid's rows and columns.
    pub grid: (usize, usize),
    /// Blocks K.
    pub blocks: usize,
    /// Rows of block masses kept per head.
    pub block_rows: usize,
}

/// The working set of one chunk of query rows is held under this (256 MiB).
const CHUNK_BUDGET: u128 = 256 << 20;

/// Query rows a chunk holds at most, whatever the budget allows: a chunk of a decoder's rows
/// computes every key up to its last row, so smaller chunks waste less of the causal half,
/// and their tables stay in cache. Measured on SmolLM2 at 2,048 tokens, two threads, the
/// native streamed forward: 64–128 rows 3.3–3.6 s, 256 rows 3.8 s, 364 rows 4.1–4.3 s.
const PREFERRED_CHUNK: usize = 128;

/// Query rows per chunk of a streamed capture: one chunk's scores, bias, attention and their
/// plain copies (about ten H×rows×T tables of f32) stay under 256 MiB, and at most
/// [`PREFERRED_CHUNK`] rows.
pub fn stream_chunk_rows(heads: usize, tokens: usize) -> usize {
    let per_row = (heads.max(1) as u128) * (tokens.max(1) as u128) * 40;
    usize::try_from(CHUNK_BUDGET / per_row)
        .unwrap_or(usize::MAX)
        .min(PREFERRED_CHUNK)
        .clamp(16, tokens.max(16))
}

/// At most this many bytes of the dial's bias are kept between the layers of a streamed
/// capture (a causal layer's bias is 2·T² bytes: every layer's at 2,048 tokens, 8 MiB).
pub const BIAS_CACHE_BYTES: usize = 64 << 20;

/// Estimated bytes of a streamed capture: what it keeps (grids, block masses, three summaries
/// per query per head), the masks (T² bytes), one chunk's working set, the biases kept between
/// layers ([`BIAS_CACHE_BYTES`]) and the forward's activations (64 KiB per token: SmolLM2's
/// layer holds about 38 KiB per token at once).
pub fn stream_bytes(s: &StreamShape) -> u64 {
    let u = |x: usize| x as u128;
    let heads = u(s.layers).saturating_mul(u(s.heads));
    let kept = u(s.kept_heads)
        .saturating_mul(u(s.grid.0))
        .saturating_mul(u(s.grid.1));
    let summaries = heads.saturating_mul(
        u(s.tokens)
            .saturating_mul(3)
            .saturating_add(u(s.block_rows).saturating_mul(u(s.blocks))),
    );
    let chunk = u(stream_chunk_rows(s.heads, s.tokens))
        .saturating_mul(u(s.heads))
        .saturating_mul(u(s.tokens))
        .saturating_mul(40);
    let masks = u(s.tokens).saturating_mul(u(s.tokens));
    let need = kept
        .saturating_add(summaries)
        .saturating_mul(4)
        .saturating_add(chunk)
        .saturating_add(masks)
        .saturating_add(u(BIAS_CACHE_BYTES).min(masks.saturating_mul(4)))
        .saturating_add(u(s.tokens).saturating_mul(65536));
    u64::try_from(need).unwrap_or(u64::MAX)
}

/// Refuse a streamed capture above the limit of [`limit_bytes`]; otherwise the query rows per
/// chunk ([`stream_chunk_rows`]).
pub fn check_stream_memory(s: &StreamShape) -> Result<usize, CaptureTooBig> {
    let limit = limit_bytes();
    let need_bytes = stream_bytes(s);
    if need_bytes > limit {
        return Err(CaptureTooBig {
            tokens: s.tokens,
            layers: s.layers,
            heads: s.heads,
            need_bytes,
            limit_bytes: limit,
            max_tokens: (1..=s.tokens)
                .rev()
                .step_by(s.tokens.div_ceil(64).max(1))
                .find(|&t| {
                    // A shorter text keeps smaller grids too (at full resolution, t × t).
                    stream_bytes(&StreamShape {
                        tokens: t,
                        block_rows: s.block_rows.min(t),
                        grid: (s.grid.0.min(t), s.grid.1.min(t)),
                        ..*s
                    }) <= limit
                })
                .unwrap_or(0),
        });
    }
    Ok(stream_chunk_rows(s.heads, s.tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smollm2_at_its_full_context_is_refused() {
        // SmolLM2-135M: 30 layers × 9 heads; 8,192² cells × (16·270 + 12·30 + 1) bytes
        // = 67,108,864 × 4,681 = 314,136,592,384 bytes ≈ 292.6 GiB.
        let e = check_with_limit(30, 9, 8192, DEFAULT_LIMIT_BYTES).err();
        let e = e.unwrap_or_else(|| panic!("8192 tokens must be refused"));
        assert_eq!(e.need_bytes, 314_136_592_384);
        // ⌊√(4·2³⁰ / 4681)⌋ = ⌊√917,525.4⌋ = 957.
        assert_eq!(e.max_tokens, 957);
        let msg = e.to_string();
        assert!(msg.contains("8192 tokens needs about 292.6 GiB"), "{msg}");
        assert!(msg.contains("30 layers × 9 heads"), "{msg}");
        assert!(msg.contains("the limit is 4.0 GiB"), "{msg}");
        assert!(msg.contains("at most 957 tokens fit"), "{msg}");
        // What fits is accepted, one more token is not.
        assert!(check_with_limit(30, 9, 957, DEFAULT_LIMIT_BYTES).is_ok());
        assert!(check_with_limit(30, 9, 958, DEFAULT_LIMIT_BYTES).is_err());
    }

    #[test]
    fn a_streamed_capture_of_smollm2_at_8192_tokens_fits() {
        // Every head's summaries and a 256×256 grid per head, 16 blocks.
        let s = StreamShape {
            layers: 30,
            heads: 9,
            tokens: 8192,
            kept_heads: 270,
            grid: (256, 256),
            blocks: 16,
            block_rows: 8192,
        };
        let need = stream_bytes(&s);
        assert!(need < 2 << 30, "{need}");
        assert!(need > 67_108_864, "the masks alone are 64 MiB: {need}");
        // A chunk stays under its budget and is at least 16 rows.
        let rows = stream_chunk_rows(9, 8192);
        assert!(
            (16..=8192).contains(&rows) && rows * 9 * 8192 * 40 <= 256 << 20,
            "{rows}"
        );
        assert_eq!(stream_chunk_rows(4, 64), 64);
    }

    #[test]
    fn a_full_resolution_stream_says_how_many_tokens_fit() {
        // Every head at full resolution: the grid shrinks with the text, so shorter texts fit
        // (the search kept the long text's grid and said "at most 0 tokens fit").
        let s = StreamShape {
            layers: 30,
            heads: 9,
            tokens: 3976,
            kept_heads: 270,
            grid: (3976, 3976),
            blocks: 16,
            block_rows: 3976,
        };
        let Err(e) = check_stream_memory(&s) else {
            panic!("16 GiB of grids passed");
        };
        assert!((500..3976).contains(&e.max_tokens), "{}", e.max_tokens);
        let fits = StreamShape {
            tokens: e.max_tokens,
            grid: (e.max_tokens, e.max_tokens),
            block_rows: e.max_tokens,
            ..s
        };
        assert!(stream_bytes(&fits) <= e.limit_bytes);
    }

    #[test]
    fn a_map_of_a_block_per_token_is_refused_before_its_masses_are_allocated() {
        // SmolLM2 with one block per token of its vocabulary, 21 tokens: 4.8 GB measured.
        let Err(e) = check_block_masses(30, 9, 21, 49_152) else {
            panic!("a map of 49,152 blocks passed");
        };
        assert!(e.contains("49152 blocks") && e.contains("at most"), "{e}");
        // Its 16 blocks of k-means fit at its full streamed length's dense cousin, 512 tokens.
        assert!(check_block_masses(30, 9, 512, 16).is_ok());
        assert_eq!(block_mass_bytes(usize::MAX, 2, 2, 2), u64::MAX);
    }

    #[test]
    fn small_models_fit_and_sizes_do_not_overflow() {
        // The sample models: 2 layers × 4 heads × 64 positions.
        assert!(check_with_limit(2, 4, 64, DEFAULT_LIMIT_BYTES).is_ok());
        assert_eq!(
            capture_bytes(usize::MAX, usize::MAX, usize::MAX, 2),
            u64::MAX
        );
        assert_eq!(max_tokens(1, 1, 0), 0);
    }
}
