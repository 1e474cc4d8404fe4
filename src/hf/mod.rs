//! Pretrained models from other ecosystems, run by our own candle forward passes so that their
//! attention can be captured and dialled like ours (issue 6). So far: BERT-family encoders from
//! a Hugging Face folder (`config.json` + `model.safetensors` + `tokenizer.json`), and
//! LLaMA-family decoders from a `.gguf` file with the tokenizer in its metadata.

pub mod bert;
pub mod eval;
pub mod gguf_llama;
