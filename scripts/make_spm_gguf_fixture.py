#!/usr/bin/env python3
"""Write tests/fixtures/spm.gguf: a LLaMA-architecture GGUF whose vocabulary is SentencePiece's
(`tokenizer.ggml.model` "llama"), as llama.cpp's converter writes TinyLlama's, LLaMA-2's and
Mistral's files: the pieces, their scores and types (normal, unknown, control, byte), BOS added,
a space prefix; and tests/fixtures/spm.json: the ids SentencePiece itself gives for a set of
texts (the ground truth llama.cpp's tokenizer reproduces), BOS first.

The SentencePiece model is a BPE of 512 pieces trained here on the first 200 KB of the bundled
Shakespeare with LLaMA's settings (identity normalisation, no whitespace removal, a dummy prefix,
digits split, byte fallback; character coverage 0.995, so rare characters fall back to bytes).
The layers are the tiny LLaMA folder's (tests/fixtures/families/llama, q/k permuted for
llama.cpp's interleaved RoPE); the embedding and the output head are drawn anew (seeded, σ 0.25)
for the 512 pieces.

    python3 -m pip install sentencepiece gguf safetensors numpy
    python3 scripts/make_spm_gguf_fixture.py

Also writes tests/hostile/gguf-spm-scores-missing/model.gguf: the same without
tokenizer.ggml.scores (a SentencePiece vocabulary merges by them); and
tests/fixtures/families/llama_spm/: a LLaMA folder (transformers, random weights, seeded) whose
tokenizer.json is the SentencePiece model as Hugging Face's LlamaConverter writes TinyLlama's
(legacy: a Prepend("▁") and Replace(" ", "▁") normalizer, no pre-tokenizer, byte fallback, the
merges from transformers' own `generate_merges` ranked by score, a decoder that strips the
first space, BOS by a template).
Made with sentencepiece 0.2.3 and gguf 0.19.0.
"""
import json
import pathlib
import sys
import tempfile

import gguf
import numpy as np
import sentencepiece as spm

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_gguf_fixture import add_hparams, add_weights, read_folder  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
LLAMA = ROOT / "tests/fixtures/families/llama"
VOCAB = 512
TEXTS = [
    "ROMEO: But soft, what light through yonder window breaks? It is the east, and Juliet is the sun.",
    "  two  leading spaces, then\ttab and\nnewline\n\ndouble",
    "Digits 1234567 and 3.14159; «Ünïcode» — naïve café, 日本語, emoji 🙂.",
    "To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer",
    "",
    " ",
    "trailing space ",
    "KING HENRY V. O for a Muse of fire, that would ascend the brightest heaven of invention!",
]


def train(workdir):
    corpus = (ROOT / "assets/corpora/shakespeare_1mb.txt").read_text(encoding="utf-8")[:200_000]
    path = pathlib.Path(workdir) / "train.txt"
    path.write_text(corpus, encoding="utf-8")
    prefix = str(pathlib.Path(workdir) / "m")
    spm.SentencePieceTrainer.train(
        input=str(path), model_prefix=prefix, vocab_size=VOCAB, model_type="bpe",
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, allow_whitespace_only_pieces=True,
        character_coverage=0.995, unk_id=0, bos_id=1, eos_id=2, num_threads=1, minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def token_type(sp, i):
    """llama.cpp's converter: unknown 2, control 3, unused 5, byte 6, else normal 1."""
    if sp.is_unknown(i):
        return gguf.TokenType.UNKNOWN
    if sp.is_control(i):
        return gguf.TokenType.CONTROL
    if sp.is_unused(i):
        return gguf.TokenType.UNUSED
    if sp.is_byte(i):
        return gguf.TokenType.BYTE
    return gguf.TokenType.NORMAL


def write(out, sp, scores=True):
    cfg, weights, *_ = read_folder(LLAMA)
    rng = np.random.default_rng(5)
    d = cfg["hidden_size"]
    weights = dict(weights)
    weights["model.embed_tokens.weight"] = (0.25 * rng.standard_normal((VOCAB, d))).astype(np.float32)
    weights["lm_head.weight"] = (0.25 * rng.standard_normal((VOCAB, d))).astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name("tiny llama fixture with a SentencePiece vocabulary")
    add_hparams(w, cfg)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    n = sp.get_piece_size()
    w.add_token_list([sp.id_to_piece(i) for i in range(n)])
    if scores:
        w.add_token_scores([sp.get_score(i) for i in range(n)])
    w.add_token_types([token_type(sp, i) for i in range(n)])
    w.add_unk_token_id(sp.unk_id())
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    add_weights(w, weights, cfg, permute_qk=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {out} ({out.stat().st_size} bytes, {n} pieces)")


def spm_folder(sp, out):
    """A LLaMA folder whose tokenizer.json is `sp` converted as transformers converts TinyLlama's."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, normalizers, processors
    from transformers.tokenization_utils_base import generate_merges

    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(n)}
    skip = {sp.id_to_piece(i) for i in range(n) if sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i)}
    merges = generate_merges(vocab, scores, skip_tokens=skip)
    tk = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                    decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", sp.bos_id())])
    tk.add_special_tokens(["<unk>", "<s>", "</s>"])
    torch.manual_seed(37)
    cfg = transformers.LlamaConfig(
        vocab_size=n, initializer_range=0.25, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5,
        tie_word_embeddings=False, bos_token_id=sp.bos_id(), eos_token_id=sp.eos_id(),
        attn_implementation="eager",
    )
    model = transformers.LlamaForCausalLM(cfg).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tk.save(str(out / "tokenizer.json"))
    for case in TEXTS:
        assert tk.encode(case).ids == [sp.bos_id()] + sp.encode(case), case
    print(f"wrote {out} ({len(merges)} merges; its tokenizer gives SentencePiece's ids on every text)")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        sp = train(tmp)
        spm_folder(sp, ROOT / "tests/fixtures/families/llama_spm")
        write(ROOT / "tests/fixtures/spm.gguf", sp)
        write(ROOT / "tests/hostile/gguf-spm-scores-missing/model.gguf", sp, scores=False)
        cases = [
            {"text": t, "ids": [sp.bos_id()] + sp.encode(t), "pieces": sp.encode(t, out_type=str)}
            for t in TEXTS
        ]
        merged = sum(1 for i in range(sp.get_piece_size()) if len(sp.id_to_piece(i)) > 1
                     and not sp.is_byte(i) and not sp.is_control(i) and not sp.is_unknown(i))
        data = {"made_with": {"sentencepiece": spm.__version__, "gguf": "0.19.0"},
                "pieces_longer_than_one_character": merged, "cases": cases}
        out = ROOT / "tests/fixtures/spm.json"
        out.write_text(json.dumps(data, ensure_ascii=False, indent=1))
        print(f"wrote {out}: {len(cases)} texts, {merged} merged pieces")


if __name__ == "__main__":
    main()
