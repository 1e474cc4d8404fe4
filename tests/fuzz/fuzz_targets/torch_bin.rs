//! A `pytorch_model.bin` (a zip archive written by torch.save): its state dict read
//! weights-only and every tensor gathered from its storage, as a folder's weights are loaded.
#![no_main]

use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use localist::hf::torch_bin;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::file("pytorch_model.bin", data);
    let _ = torch_bin::load(&path, &Device::Cpu, |_| true);
});
