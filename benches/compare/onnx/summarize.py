"""Prints the tables of compare/onnx/run.sh's results.json (the RESULTS.md tables).

    python summarize.py results.json
"""
import json
import statistics
import sys

r = json.load(open(sys.argv[1]))
v, s = r["vigil_sizes"], r["sklearn_sizes"]
print(f"commit {r['commit'][:12]}, {r['cpu']}, {r['pairs']} pairs, load "
      f"{min(t['load'] for t in r['timings'])}-{max(t['load'] for t in r['timings'])}")
print(f"versions: {s['versions']}")
print()
print("| format | bytes | nodes | bytes per node |")
print("| --- | --- | --- | --- |")
for name, key in [("Vigil postcard (Random Forest)", "rf_postcard_bytes"),
                  ("Vigil ONNX, exact double thresholds", "rf_onnx_exact_bytes"),
                  ("Vigil ONNX, default export", "rf_onnx_double_bytes")]:
    print(f"| {name} | {v[key]:,} | {v['rf_nodes']:,} | {v[key] / v['rf_nodes']:.1f} |")
print(f"| skl2onnx (scikit-learn forest, float) | {s['sk_onnx_bytes']:,} | {s['sk_nodes']:,} | "
      f"{s['sk_onnx_bytes'] / s['sk_nodes']:.1f} |")
print(f"| scikit-learn pickle | {s['sk_pickle_bytes']:,} | {s['sk_nodes']:,} | "
      f"{s['sk_pickle_bytes'] / s['sk_nodes']:.1f} |")
print(f"\nmodel.onnx (both forests, the model folder's file): {v['model_onnx_bytes']:,} bytes; "
      f"skl2onnx vs scikit-learn max |Δp| {s['sk_onnx_max_abs_diff']:.3g}")

groups = {}
for t in r["timings"]:
    key = (t["result"]["mode"], t["forests"], t["result"]["side"])
    groups.setdefault(key, {})[t["pair"]] = t["result"]["us_per_row"]
for mode in ("batch", "row"):
    rows = {t["result"]["rows"] for t in r["timings"] if t["result"]["mode"] == mode}
    unit = "µs per row" if mode == "batch" else "µs per call"
    print(f"\n{mode} ({sorted(rows)} rows{', 2 threads' if mode == 'batch' else ', 1 thread'}): "
          f"median {unit}, and each side ÷ Vigil per pair (min–max)")
    print(f"| forests | side | {unit} | ÷ Vigil |")
    print("| --- | --- | --- | --- |")
    for forests in ("rf", "both"):
        base = groups.get((mode, forests, "vigil"), {})
        for (m, f, side), per_pair in groups.items():
            if m != mode or f != forests:
                continue
            ratios = [per_pair[p] / base[p] for p in per_pair if p in base]
            med = statistics.median(per_pair.values())
            print(f"| {forests} | {side} | {med:.3f} | {min(ratios):.2f}–{max(ratios):.2f} |")
