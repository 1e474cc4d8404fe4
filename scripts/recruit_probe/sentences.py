# Make a gen.py corpus look written by a person: sentences of 6-14 words with a capital first
# word and a full stop, a comma after a word now and then (8%), CRLF line ends. The truth file
# stays as it is (lower-case words). Usage: python3 sentences.py IN.txt OUT.txt SEED
import random, sys
src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = random.Random(seed)
out = []
for line in open(src, encoding="utf-8"):
    ws = line.split()
    if not ws: continue
    res = []; i = 0
    while i < len(ws):
        n = r.randint(6, 14); sent = ws[i:i+n]; i += n
        sent[0] = sent[0][:1].upper() + sent[0][1:]
        for j in range(1, len(sent) - 1):
            if r.random() < 0.08: sent[j] += ","
        res.append(" ".join(sent) + ".")
    out.append(" ".join(res))
open(dst, "w", encoding="utf-8", newline="").write("\r\n".join(out) + "\r\n")
