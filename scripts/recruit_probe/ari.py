# ARI of a checkpoint's blocks against a truth file (word<TAB>topic), over the truth's words
# that are in the vocabulary. Usage: python3 ari.py CHECKPOINT_DIR TRUTH.tsv
import json, sys
from collections import Counter
from math import comb
d, truth = sys.argv[1], sys.argv[2]
cfg = json.load(open(f"{d}/config.json")); bl = json.load(open(f"{d}/blocks.json"))
vocab = {w: i for i, w in enumerate(cfg["tokenizer"]["vocab"]) if isinstance(w, str)}
tb = bl["token_block"]
found, want = [], []
for line in open(truth):
    w, t = line.rstrip("\n").split("\t")
    if w not in vocab: continue
    found.append(tb[vocab[w]]); want.append(t)
n = len(found)
ct = Counter(zip(found, want)); a = Counter(found); b = Counter(want)
s = sum(comb(v, 2) for v in ct.values()); sa = sum(comb(v, 2) for v in a.values()); sb = sum(comb(v, 2) for v in b.values())
e = sa * sb / comb(n, 2); m = (sa + sb) / 2
print(f"ARI {(s - e) / (m - e) if m != e else 1.0:.3f} over {n} words, blocks {len(bl['names'])-1}")
