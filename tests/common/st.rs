//! Safetensors files taken apart and written again by the tests: tensors rewritten, dropped or
//! dealt out into shards as `save_pretrained` writes them.

use std::path::Path;

/// A safetensors file's header and data.
pub fn read_safetensors(file: &Path) -> (serde_json::Map<String, serde_json::Value>, Vec<u8>) {
    let bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

/// A tensor of a safetensors file: (name, dtype, shape, bytes).
pub type RawTensor = (String, serde_json::Value, serde_json::Value, Vec<u8>);

/// The tensors of a safetensors file, in its header's order.
pub fn raw_tensors(file: &Path) -> Vec<RawTensor> {
    let (header, data) = read_safetensors(file);
    header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let [a, b] = [0, 1].map(|j| v["data_offsets"][j].as_u64().unwrap() as usize);
            (
                k.clone(),
                v["dtype"].clone(),
                v["shape"].clone(),
                data[a..b].to_vec(),
            )
        })
        .collect()
}

/// Write a safetensors file of these tensors.
pub fn write_safetensors(file: &Path, tensors: &[RawTensor]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut head = serde_json::to_vec(&header).unwrap();
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend(head);
    out.extend(data);
    std::fs::write(file, out).unwrap();
}

/// Split `dir`'s model.safetensors into `n` shards and an index, as `save_pretrained` writes
/// a model over its shard size (tensors dealt out in name order); model.safetensors removed.
pub fn split_into_shards(dir: &Path, n: usize) {
    let mut tensors = raw_tensors(&dir.join("model.safetensors"));
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let per = tensors.len().div_ceil(n);
    let mut map = serde_json::Map::new();
    for (i, chunk) in tensors.chunks(per).enumerate() {
        let file = format!("model-{:05}-of-{n:05}.safetensors", i + 1);
        for t in chunk {
            map.insert(t.0.clone(), file.clone().into());
        }
        write_safetensors(&dir.join(&file), chunk);
    }
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_vec_pretty(&index).unwrap(),
    )
    .unwrap();
}
