#!/usr/bin/env python3
"""Write tests/fixtures/rope_scaling.json: for each RoPE scaling a LLaMA-family config may
name (linear, dynamic, yarn with its options, longrope, llama3, and Phi-3's partial
rotation), the inverse frequencies and the factor on cos and sin that transformers computes
(`modeling_rope_utils.ROPE_INIT_FUNCTIONS`, and the model's own rotary embedding), for the
studio's test `rope_scaling_matches_transformers` to reproduce.

    ~/.cache/localist-torch-venv/bin/python scripts/make_rope_fixture.py

Made with transformers 5.25.0 (the version is written into the file).
"""

import json
import os

import torch
import transformers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "rope_scaling.json")

BASE = dict(vocab_size=64, hidden_size=128, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
            bos_token_id=0, eos_token_id=0, pad_token_id=0)

CASES = [
    ("llama", "linear", {"rope_scaling": {"type": "linear", "factor": 2.0}}),
    ("llama", "dynamic", {"rope_scaling": {"type": "dynamic", "factor": 3.0}}),
    ("llama", "yarn", {"rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                                        "original_max_position_embeddings": 1024}}),
    ("qwen2", "yarn, Qwen2.5's long-context settings", {
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "yarn", "factor": 4.0,
                         "original_max_position_embeddings": 1024}}),
    ("llama", "yarn, betas, truncate off", {
        "rope_scaling": {"rope_type": "yarn", "factor": 8.0, "beta_fast": 16.0,
                         "beta_slow": 2.0, "truncate": False,
                         "original_max_position_embeddings": 1024}}),
    ("llama", "yarn, DeepSeek's mscale", {
        "rope_scaling": {"rope_type": "yarn", "factor": 40.0, "mscale": 0.707,
                         "mscale_all_dim": 0.707, "original_max_position_embeddings": 1024}}),
    ("llama", "yarn, mscale over a different mscale_all_dim", {
        "rope_scaling": {"rope_type": "yarn", "factor": 40.0, "mscale": 1.0,
                         "mscale_all_dim": 0.5, "original_max_position_embeddings": 1024}}),
    ("llama", "yarn, attention_factor", {
        "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "attention_factor": 0.8,
                         "original_max_position_embeddings": 1024}}),
    ("llama", "llama3", {"rope_scaling": {"rope_type": "llama3", "factor": 32.0,
                                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                          "original_max_position_embeddings": 8192},
                         "rope_theta": 500000.0}),
    ("phi3", "longrope, Phi-3.5-mini's form", {
        "original_max_position_embeddings": 1024,
        "rope_scaling": {"type": "longrope",
                         "short_factor": [1.0 + 0.1 * i for i in range(16)],
                         "long_factor": [2.0 + 0.3 * i for i in range(16)]}}),
    ("phi3", "longrope with a factor and partial rotation, Phi-4-mini's form", {
        "original_max_position_embeddings": 1024, "partial_rotary_factor": 0.75,
        "rope_scaling": {"type": "longrope", "factor": 2.0,
                         "short_factor": [1.0 + 0.05 * i for i in range(12)],
                         "long_factor": [3.0 for _ in range(12)]}}),
    ("phi3", "su (Phi-3's first name for longrope)", {
        "original_max_position_embeddings": 4096, "max_position_embeddings": 131072,
        "rope_scaling": {"type": "su", "short_factor": [1.5] * 16, "long_factor": [4.0] * 16}}),
    ("phi3", "partial rotation, no scaling", {"partial_rotary_factor": 0.5}),
]

CONFIGS = {
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
    "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
    "phi3": (transformers.Phi3Config, transformers.Phi3ForCausalLM),
}


def main():
    out = []
    for model_type, name, extra in CASES:
        cfg_cls, model_cls = CONFIGS[model_type]
        cfg = cfg_cls(**{**BASE, **extra})
        model = model_cls(cfg)
        rot = model.model.rotary_emb
        # What the config.json a user brings says: the arguments, as the older top-level form.
        config = {"model_type": model_type, "rms_norm_eps": 1e-5, **BASE, **extra}
        out.append({
            "name": name,
            "config": config,
            "inv_freq": rot.inv_freq.tolist(),
            "attention": float(rot.attention_scaling),
        })
        rope = cfg.rope_parameters
        if rope.get("rope_type") == "longrope":
            # A pass one position past the original context: transformers switches every
            # position to the long factors (`longrope_frequency_update`).
            original = int(rope["original_max_position_embeddings"])
            rot(torch.zeros(1, dtype=torch.float32), torch.arange(original + 1)[None])
            out[-1]["original"] = original
            out[-1]["inv_freq_long"] = rot.inv_freq.tolist()
        print(name, len(out[-1]["inv_freq"]), out[-1]["attention"])
    with open(OUT, "w") as f:
        json.dump({"transformers": transformers.__version__, "cases": out}, f, indent=1)


if __name__ == "__main__":
    main()
