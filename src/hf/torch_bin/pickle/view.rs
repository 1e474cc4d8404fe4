//! What a state dict's pickle may name and build: torch's typed storages, the tensors viewed on
//! them, and the few callables a weights-only reader accepts.

/// Most dimensions a tensor may have here.
pub(super) const MAX_RANK: usize = 8;

/// A storage as its persistent id names it: an entry `data/KEY` of the archive holding
/// `numel` elements of `dtype` (a safetensors dtype name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    /// The element type, as safetensors names it ("F32", "BF16", "I64", ...).
    pub dtype: &'static str,
    /// The storage's key: its entry is `data/KEY` in the archive.
    pub key: String,
    /// How many elements the pickle says it holds.
    pub numel: u64,
}

/// A tensor as the pickle builds it: a strided view on a storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorView {
    /// The storage it views.
    pub storage: StorageRef,
    /// Its first element's index in the storage.
    pub offset: u64,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its strides, in elements.
    pub stride: Vec<u64>,
}

impl TensorView {
    /// How many elements it has.
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }

    /// Whether its elements lie in row-major order, one after the other.
    pub fn is_contiguous(&self) -> bool {
        let mut want = 1u64;
        for (&d, &s) in self.shape.iter().zip(&self.stride).rev() {
            if d > 1 && s != want {
                return false;
            }
            want = want.saturating_mul(d as u64);
        }
        true
    }
}

/// The names a pickle may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Callable {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(&'static str),
}

/// The safetensors dtype of one of torch's typed storage classes.
fn storage_dtype(class: &str) -> Option<&'static str> {
    Some(match class {
        "FloatStorage" => "F32",
        "HalfStorage" => "F16",
        "BFloat16Storage" => "BF16",
        "DoubleStorage" => "F64",
        "LongStorage" => "I64",
        "IntStorage" => "I32",
        "ShortStorage" => "I16",
        "CharStorage" => "I8",
        "ByteStorage" => "U8",
        "BoolStorage" => "BOOL",
        _ => return None,
    })
}

/// The callable `module.name`, when it is one a weights-only reader accepts.
pub(super) fn allowed(module: &str, name: &str) -> Result<Callable, String> {
    let found = match (module, name) {
        ("collections", "OrderedDict") => Some(Callable::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Callable::RebuildTensor),
        ("torch._utils", "_rebuild_parameter") => Some(Callable::RebuildParameter),
        ("torch", class) => storage_dtype(class).map(Callable::Storage),
        _ => None,
    };
    found.ok_or_else(|| {
        format!(
            "the pickle asks for {module}.{name}, which a weights-only reader never calls (only \
             OrderedDict, torch tensors and their storages are read; nothing in the file is run)"
        )
    })
}

/// One past the last element index a view of a non-empty `shape` reaches, or None on overflow.
pub(super) fn view_end(offset: u64, shape: &[u64], stride: &[u64]) -> Option<u64> {
    let mut end = offset.checked_add(1)?;
    for (&d, &s) in shape.iter().zip(stride) {
        end = end.checked_add((d - 1).checked_mul(s)?)?;
    }
    Some(end)
}
