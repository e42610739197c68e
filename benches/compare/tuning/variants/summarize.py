"""Compact cross-variant summary of compare.py outputs (DATA/<PREFIX>_<name>.txt, one per
variant, as written by `run.sh ... > v_<name>.txt`). Usage: DATA=dir [PREFIX=v] summarize.py name ..."""
import os, re, sys
names = sys.argv[1:]
cells, data = [], {}
for n in names:
    rows = {}
    for line in open(os.path.join(os.environ.get("DATA", "."), os.environ.get("PREFIX", "v") + f"_{n}.txt")):
        c = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(c) == 13 and c[1].isdigit():
            key = f"{c[0]}@{c[1]}"
            if key not in cells: cells.append(key)
            rows[key] = dict(ro=float(c[5]), rv=float(c[6]), rr=float(c[7]), pb=float(c[9]), p=float(c[10]), ok=c[11] == "yes", rnd=c[12] == "yes")
        m = re.search(r"blocks where vigil is no worse everywhere: (\d+) of (\d+)", line)
        if m: rows["blocks"] = m.group(1) + "/" + m.group(2)
    data[n] = rows
print("| cell | Optuna regret | " + " | ".join(names) + " |")
print("|---|---|" + "---|" * len(names))
for k in cells:
    out = []
    for n in names:
        r = data[n][k]
        out.append(f"{r['rv']:.4g} ({r['pb']:.2f}, p={r['p']:.2g}){'' if r['ok'] else ' ✗'}")
    print(f"| {k} | {data[names[0]][k]['ro']:.4g} | " + " | ".join(out) + " |")
print("| cells no worse (median) | | " + " | ".join(f"{sum(data[n][k]['ok'] for k in cells)}/15" for n in names) + " |")
print("| 20-seed blocks no worse in all 15 | | " + " | ".join(data[n].get("blocks", "-") for n in names) + " |")
print("| < random at 50 & 100 (all) | | " + " | ".join("yes" if all(data[n][k]['rnd'] for k in cells if not k.endswith('@20')) else "NO" for n in names) + " |")
print("| mean P(beats Optuna) | | " + " | ".join(f"{sum(data[n][k]['pb'] for k in cells)/len(cells):.3f}" for n in names) + " |")
print("| min P / cells with p<0.05 against | | " + " | ".join(f"{min(data[n][k]['pb'] for k in cells):.2f} / {sum(data[n][k]['p']<0.05 and data[n][k]['pb']<0.5 for k in cells)}" for n in names) + " |")
def bcount(n, b):
    for line in open(os.path.join(os.environ.get("DATA", "."), os.environ.get("PREFIX", "v") + f"_{n}.txt")):
        if line.startswith(f"- mixed @ {b}:"):
            o, v = re.findall(r"(\d+/\d+/\d+)", line)
            return o, v
o = bcount(names[0], 100)[0]
print(f"| mixed: runs with best in A/B/C at 100 (Optuna {o}) | | " + " | ".join(bcount(n, 100)[1] for n in names) + " |")
