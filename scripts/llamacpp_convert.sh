#!/bin/bash
# Write tests/fixtures/llamacpp/*.gguf with llama.cpp's own converter (convert_hf_to_gguf.py),
# from the tiny folders of tests/fixtures/families/: the check that our GGUF reader reads what
# llama.cpp writes, not only the layout scripts/make_gguf_fixture.py reproduces.
#
# llama.cpp's source comes from the sdist of llama-cpp-python on PyPI (it vendors llama.cpp;
# 0.3.36 made the committed files), so only PyPI has to be reachable. Needs a Python with
# torch, transformers, sentencepiece and numpy (the converter's gguf-py is the vendored one).
#
# Two things are set around the converter, as a user converting these folders would have to:
#  - the tiny byte-level tokenizers are not among the pre-tokenizers the converter recognises
#    by hash, so its get_vocab_base_pre is answered with the pre-tokenizer each folder uses
#    (qwen2 for the Qwen folders, llama-bpe for the others: on these texts GPT-2's split);
#  - its Phi-3 reader takes a SentencePiece tokenizer.model unless tokenizer_config.json names
#    GPT2Tokenizer (as Phi-4's does), so the Phi-3 folder is converted from a copy that does;
#    the SentencePiece folder (llama_spm) is converted with its tokenizer.model, trained again
#    by scripts/make_spm_gguf_fixture.py (deterministic);
#  - its Gemma readers take a SentencePiece tokenizer.model (Gemma's own is one); the tiny Gemma
#    folders' byte-level BPE is written as a BPE vocabulary instead (BPE_VOCAB);
#  - its Phi-2, StarCoder and Falcon readers write feed_forward_length as 4 × the width (every
#    Phi, StarCoder and Falcon-7B/40B release has that MLP), where the tiny folders' is 96 of 64
#    and 48: the folder's own (intermediate_size, n_inner, ffn_hidden_size) is written instead
#    (FF_FROM_CONFIG);
#  - the converter reads configs through transformers (5 here), which names GPT-NeoX's rotary
#    share rope_parameters.partial_rotary_factor where the converter reads rotary_pct (Pythia's
#    own name), and gives every Falcon config num_kv_heads (the query heads) where falcon-7b's
#    own has none, which the converter takes for one key and value shared by all (multi_query):
#    both are put back as the models' own configs have them (HF5_CONFIGS, always on);
#  - its GPT-2 reader takes the context from n_ctx, which the configs of GPT-2's own releases
#    have and transformers 5 no longer writes: the GPT-2 folder is converted from a copy that
#    has it (n_positions);
#  - the Phi-2 files most downloaded (converted in 2023, from phi-2's first release with q, k
#    and v in one `Wqkv`) hold one `attn_qkv` per layer where this converter writes three; the
#    second Phi-2 file is written so, q, k and v joined in that order (FUSED_QKV).
# Usage: PYTHON=/path/to/python scripts/llamacpp_convert.sh [VERSION=0.3.36]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
VERSION="${1:-0.3.36}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
url=$("$PY" - "$VERSION" <<'PY'
import json, sys, urllib.request
v = sys.argv[1]
d = json.load(urllib.request.urlopen("https://pypi.org/pypi/llama-cpp-python/json"))
files = d.get("releases", {}).get(v) or (d["urls"] if d["info"]["version"] == v else [])
u = next(u["url"] for u in files if u["packagetype"] == "sdist")
# The index may answer with a path relative to itself.
print(u if u.startswith("http") else "https://files.pythonhosted.org/packages/" + u.split("/packages/")[-1])
PY
)
curl -sfL -o "$WORK/src.tgz" "$url"
tar xzf "$WORK/src.tgz" -C "$WORK"
L="$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp)"
cat > "$WORK/run.py" <<PY
import os, sys, runpy
sys.path.insert(0, "$L/gguf-py"); sys.path.insert(0, "$L")
import conversion.base as b
import conversion.gemma as g
pre = os.environ["PRE"]
for n in dir(b):
    c = getattr(b, n)
    if isinstance(c, type) and "get_vocab_base_pre" in c.__dict__:
        c.get_vocab_base_pre = lambda self, tok: pre
# Gemma's readers want a SentencePiece tokenizer.model; the tiny folders' vocabulary is a
# byte-level BPE, written as such.
if os.environ.get("BPE_VOCAB"):
    for c in (g.GemmaModel, g.Gemma2Model, g.Gemma3Model):
        c.set_vocab = lambda self: self._set_vocab_gpt2()
# Phi-2's and StarCoder's readers write 4 × the width as the MLP's; the tiny folders' is their own.
if os.environ.get("FF_FROM_CONFIG"):
    import conversion.phi as phi
    import conversion.starcoder as starcoder
    import conversion.falcon as falcon
    def own_ff(model):
        params = model.set_gguf_parameters
        def set_params(self):
            add = self.gguf_writer.add_feed_forward_length
            own = self.hparams.get("intermediate_size") or self.hparams.get("n_inner") \
                or self.hparams.get("ffn_hidden_size")
            self.gguf_writer.add_feed_forward_length = lambda n: add(own or n)
            params(self)
        model.set_gguf_parameters = set_params
    own_ff(phi.Phi2Model)
    own_ff(starcoder.StarCoderModel)
    own_ff(falcon.FalconModel)
# Phi-2's q, k and v as one attn_qkv, as the converter of 2023 wrote them.
if os.environ.get("FUSED_QKV"):
    import conversion.phi as phi
    import torch
    modify = phi.Phi2Model.modify_tensors
    held = {}
    def fuse(self, data, name, bid):
        for part in ("q_proj", "k_proj", "v_proj"):
            if bid is not None and f"self_attn.{part}." in name:
                kind = name.rsplit(".", 1)[1]
                got = held.setdefault((bid, kind), {})
                got[part] = data
                if len(got) < 3:
                    return []
                qkv = torch.cat([got["q_proj"], got["k_proj"], got["v_proj"]], 0)
                return [(self.format_tensor_name(b.gguf.MODEL_TENSOR.ATTN_QKV, bid, "." + kind), qkv)]
        return modify(self, data, name, bid)
    phi.Phi2Model.modify_tensors = fuse
# transformers 5's reading of GPT-NeoX and Falcon configs, put back as the models' own are.
import conversion.gptneox as gptneox
import conversion.falcon as falcon_conv
def own_config(model):
    init = model.__init__
    def put_back(self, *args, **kwargs):
        init(self, *args, **kwargs)
        h = self.hparams
        share = (h.get("rope_parameters") or {}).get("partial_rotary_factor")
        if "rotary_pct" not in h and share is not None:
            h["rotary_pct"] = share
        if h.get("model_type") == "falcon" and not h.get("new_decoder_architecture"):
            h.pop("num_kv_heads", None)
    model.__init__ = put_back
own_config(gptneox.GPTNeoXModel)
own_config(falcon_conv.FalconModel)
# mpt-7b's config names its class MPTForCausalLM (its own code); transformers' MPT writes
# MptForCausalLM, which the converter does not know: the same class reads both.
import conversion
import conversion.mpt as mpt_conv
conversion.TEXT_MODEL_MAP["MptForCausalLM"] = "mpt"
b.ModelBase.register("MptForCausalLM")(mpt_conv.MPTModel)
sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[1:]
runpy.run_path("$L/convert_hf_to_gguf.py", run_name="__main__")
PY
OUT="$ROOT/tests/fixtures/llamacpp"
mkdir -p "$OUT"
convert() { # FOLDER PRE NAME
  PRE="$2" "$PY" "$WORK/run.py" "$1" --outtype f32 --outfile "$OUT/$3.gguf" > "$WORK/$3.log" 2>&1 \
    || { tail -20 "$WORK/$3.log"; exit 1; }
  echo "wrote $OUT/$3.gguf"
}
F="$ROOT/tests/fixtures/families"
# A copy of folder $1 at $WORK/$2 whose config.json the Python statement $3 edits (as `c`).
patched() {
  cp -r "$1" "$WORK/$2"
  "$PY" - "$WORK/$2/config.json" "$3" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); exec(sys.argv[2]); json.dump(c, open(p, "w"))
PY
}
convert "$F/llama" llama-bpe llama
convert "$F/mistral" llama-bpe mistral
convert "$F/qwen2" qwen2 qwen2
convert "$F/qwen3" qwen2 qwen3
cp -r "$F/phi3" "$WORK/phi3"
"$PY" - "$WORK/phi3/tokenizer_config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["tokenizer_class"] = "GPT2Tokenizer"; json.dump(c, open(p, "w"))
PY
convert "$WORK/phi3" llama-bpe phi3
cp -r "$F/llama_spm" "$WORK/llama_spm"
"$PY" - "$ROOT/scripts" "$WORK/llama_spm/tokenizer.model" <<'PY'
import shutil, sys, tempfile
sys.path.insert(0, sys.argv[1])
from make_spm_gguf_fixture import train
d = tempfile.mkdtemp(); train(d); shutil.copy(d + "/m.model", sys.argv[2])
PY
convert "$WORK/llama_spm" default llama_spm
for n in gemma gemma2 gemma3_text gemma3_vision; do BPE_VOCAB=1 convert "$F/$n" llama-bpe "$n"; done
convert "$F/olmo2" llama-bpe olmo2
convert "$F/smollm3" llama-bpe smollm3
convert "$F/granite" llama-bpe granite
convert "$F/stablelm" llama-bpe stablelm
convert "$F/olmo" llama-bpe olmo
FF_FROM_CONFIG=1 convert "$F/phi" phi-2 phi2
FF_FROM_CONFIG=1 FUSED_QKV=1 convert "$F/phi" phi-2 phi2_fused
patched "$F/gpt2" gpt2 'c["n_ctx"] = c["n_positions"]'
convert "$WORK/gpt2" gpt-2 gpt2
FF_FROM_CONFIG=1 convert "$F/gpt_bigcode" gpt-2 starcoder
convert "$F/gpt_neox" olmo gpt_neox
convert "$F/gpt_neox_sequential" olmo gpt_neox_sequential
convert "$F/bloom" bloom bloom
FF_FROM_CONFIG=1 convert "$F/falcon" falcon falcon
FF_FROM_CONFIG=1 convert "$F/falcon_new" falcon falcon_new
convert "$F/mpt" mpt mpt
convert "$F/starcoder2" starcoder starcoder2
