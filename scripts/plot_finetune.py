#!/usr/bin/env python3
"""Perplexity against off-block mass ε: the untuned model under the inference dial, and
fine-tuned models measured at λ_inf = 0 (issue 17, point 3). Reads the log of a
`localist train --from ... --dial-curve ...` run (the dial's points) and the adapter folders'
adapter.json (each fine-tune's held-out point), writes an SVG. No dependencies.

    scripts/plot_finetune.py DIAL.log ADAPTER_DIR... > assets/figures/finetune_vs_dial.svg
"""
import json
import re
import sys


def dial_points(log):
    pat = re.compile(r"untuned under the dial λ_inf = ([\d.]+).*perplexity ([\d.]+).*ε ([\d.]+)")
    out = []
    for line in open(log, encoding="utf-8"):
        m = pat.search(line)
        if m:
            out.append((float(m.group(1)), float(m.group(2)), float(m.group(3))))
    return out


def tuned_point(folder):
    info = json.load(open(f"{folder}/adapter.json", encoding="utf-8"))
    t = info["training"]
    h = t["held_out"]
    # "mass", {"group": "Unit" | "SqrtSize"}, or (older runs) "group_weights" alone.
    pen = t.get("penalty", {"group": t.get("group_weights", "Unit")})
    if isinstance(pen, dict):
        pen = "group √n" if pen.get("group") == "SqrtSize" else "group"
    return (t["lambda_train"], t["eta"], h["perplexity"], h["epsilon"], pen)


def main():
    dial = dial_points(sys.argv[1])
    tuned = [tuned_point(d) for d in sys.argv[2:]]
    w, h, left, right, top, bottom = 780, 460, 70, 150, 50, 60
    eps = [p[2] for p in dial] + [p[3] for p in tuned]
    ppl = [p[1] for p in dial] + [p[2] for p in tuned]
    x0, x1 = 0.0, max(eps) * 1.1
    y0, y1 = 0.0, max(ppl) * 1.1
    sx = lambda e: left + (e - x0) / (x1 - x0) * (w - left - right)
    sy = lambda p: h - bottom - (p - y0) / (y1 - y0) * (h - top - bottom)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
         f'<rect width="{w}" height="{h}" fill="white"/>',
         f'<line x1="{left}" y1="{h-bottom}" x2="{w-right}" y2="{h-bottom}" stroke="black"/>',
         f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h-bottom}" stroke="black"/>']
    for i in range(6):
        e = x0 + (x1 - x0) * i / 5
        o.append(f'<text x="{sx(e):.1f}" y="{h-bottom+16}" text-anchor="middle">{e:.2f}</text>')
        p = y0 + (y1 - y0) * i / 5
        o.append(f'<text x="{left-6}" y="{sy(p)+4:.1f}" text-anchor="end">{p:.0f}</text>')
        o.append(f'<line x1="{left}" y1="{sy(p):.1f}" x2="{w-right}" y2="{sy(p):.1f}" stroke="#ddd"/>')
    o.append(f'<text x="{(w+left)/2}" y="{h-18}" text-anchor="middle">held-out off-block mass ε (lower: more localist)</text>')
    o.append(f'<text x="16" y="{(h)/2}" text-anchor="middle" transform="rotate(-90 16 {h/2})">held-out perplexity</text>')
    pts = " ".join(f"{sx(e):.1f},{sy(p):.1f}" for _, p, e in dial)
    o.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for lam, p, e in dial:
        o.append(f'<circle cx="{sx(e):.1f}" cy="{sy(p):.1f}" r="4" fill="#1f77b4"/>')
        o.append(f'<text x="{sx(e)+6:.1f}" y="{sy(p)-6:.1f}" fill="#1f77b4">λ_inf {lam:g}</text>')
    for lam, eta, p, e, pen in tuned:
        colour = "#d62728" if pen == "mass" or lam == 0 else "#7f7f7f"
        label = "CE only" if lam == 0 else f"{pen}, λ_train {lam:g}, η {eta:g}"
        o.append(f'<rect x="{sx(e)-4:.1f}" y="{sy(p)-4:.1f}" width="8" height="8" fill="{colour}"/>')
        o.append(f'<text x="{sx(e)+6:.1f}" y="{sy(p)+14:.1f}" fill="{colour}" font-size="10">{label}</text>')
    o.append(f'<text x="{left+10}" y="18" fill="#1f77b4">● untuned SmolLM2 under the inference dial (mode A)</text>')
    o.append(f'<text x="{left+10}" y="36" fill="#d62728">■ fine-tuned (LoRA rank 8 on Q/K), measured at λ_inf = 0: off-block mass penalty, and CE only; grey: group lasso</text>')
    o.append("</svg>")
    print("\n".join(o))


if __name__ == "__main__":
    main()
