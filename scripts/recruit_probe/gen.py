# A topic-corpus generator written apart from src/data/topics.rs (issue 15: recruitment must
# work on corpora it was not built on). Differences from ours: 20 words a topic (real or made
# up), segments of a topic chosen at random (a topic may follow itself), 3-6 segments a
# document, and a fraction TP of topic words from the document's theme, the rest from the whole
# topic (ours: only theme words). Usage:
#   python3 gen.py SEED K DOCS FUNCTION_RATE MARKERS(0|1) THEME SEG_MIN SEG_MAX REAL(0|1) OUT.txt TRUTH.tsv [TP=0.7] [SCRIPT=latin] [UNEQUAL=0]
# SCRIPT (made-up words only) is latin, accented (French-like, with French function words),
# cyrillic (Russian function words) or greek (Greek function words): text users bring is not
# always ASCII. UNEQUAL=1 makes the topics unequally common: a segment is of topic k with weight
# 1/(k+1) (two topics: 2:1), as a user's text seldom spends its words evenly.
import os, random, sys
# NSEG="A B" (environment) draws A-B segments a document instead of 3-6: one segment makes every
# line one topic; 20-40 make long lines that run past the model's context.
NSEG = tuple(int(x) for x in os.environ.get("NSEG", "3 6").split())
SCRIPTS = {
    "accented": (["ké","lò","mî","rü","té","zœ","pà","né","sï","vû","gô","hà","bé","dù","fì","jø","wä","xè","çi","yö"],
                 "le la les de des et à un une du en est qui que pour dans où été".split()),
    "cyrillic": (["ка","ло","ми","ру","те","зо","па","не","си","ву","го","ха","бе","ду","фи","жо","ша","чу","щи","ю"],
                 "и в не на что с как а по за от из у к о же бы до".split()),
    "greek": (["κα","λο","μι","ρυ","τε","ζο","πα","νε","σι","βυ","γο","χα","βε","δυ","φι","ξο","ψα","θε","ωμ","ηρ"],
              "και το να η ο της του σε με για τα των που την από στο θα δεν".split()),
}
def gen(seed, K, docs, fw_rate, markers, theme, seg, real, out, truth, TP=0.7, script="latin", unequal=False):
    r = random.Random(seed)
    syl = ["ka","lo","mi","ru","te","zo","pa","ne","si","vu","go","ha","be","du","fi","jo","wa","xe","qi","yo"]
    real_topics = [
        "apple pear plum grape lemon mango peach cherry melon berry fig lime kiwi date guava olive papaya quince apricot nectarine".split(),
        "hammer saw drill wrench chisel pliers file clamp level ruler screw nail bolt nut rasp vise awl mallet sander lathe".split(),
        "river lake ocean stream creek pond bay lagoon delta marsh swamp brook fjord harbor inlet canal spring rapids estuary reef".split(),
        "violin piano guitar drum flute cello harp oboe trumpet tuba banjo organ bugle lute sitar fiddle horn cymbal gong zither".split(),
        "doctor nurse patient clinic fever tablet dose surgeon ward pulse scan injury therapy vaccine wound bandage syringe ambulance pharmacy illness".split(),
        "robin eagle sparrow falcon heron owl crow finch swan hawk parrot pigeon gull wren dove stork crane raven lark magpie".split(),
        "planet comet star galaxy nebula orbit meteor moon asteroid quasar pulsar cosmos rocket telescope eclipse crater solstice zenith nova vortex".split(),
        "bread cheese butter flour sugar honey salt pepper yeast cream milk egg oil vinegar rice pasta bean soup stew sauce".split(),
    ]
    fws = "the of and a to in is it that with as for on by at from this was".split()
    if script != "latin" and not real:
        syl, fws = SCRIPTS[script]
    topics = []
    used = set()
    for k in range(K):
        if real:
            ws = real_topics[k][:20]
        else:
            ws = []
            while len(ws) < 20:
                w = "".join(r.choice(syl) for _ in range(r.choice([2,3])))
                if w not in used and w not in fws:
                    used.add(w); ws.append(w)
        topics.append(ws)
    mk = [("mk%s" % chr(97+k)) if not real else ("topic%d" % k) for k in range(K)]
    lines = []
    for d in range(docs):
        themes = [r.sample(topics[k], theme) for k in range(K)]
        words = []
        nseg = r.randint(*NSEG)
        for s in range(nseg):
            k = r.choices(range(K), weights=[1/(j+1) for j in range(K)])[0] if unequal else r.randrange(K)
            if markers: words.append(mk[k])
            L = r.randint(*seg)
            for i in range(L):
                if r.random() < fw_rate: words.append(r.choice(fws))
                else: words.append(r.choice(themes[k]) if r.random() < TP else r.choice(topics[k]))
        lines.append(" ".join(words))
    open(out, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    with open(truth, "w", encoding="utf-8") as f:
        for k in range(K):
            for w in topics[k]: f.write(f"{w}\t{k}\n")
            if markers: f.write(f"{mk[k]}\t{k}\n")
if __name__ == "__main__":
    a = sys.argv
    gen(int(a[1]), int(a[2]), int(a[3]), float(a[4]), a[5]=="1", int(a[6]), (int(a[7]), int(a[8])), a[9]=="1", a[10], a[11], float(a[12]) if len(a) > 12 else 0.7, a[13] if len(a) > 13 else "latin", len(a) > 14 and a[14] == "1")
