"""Accuracy and speed of vigil-forest next to scikit-learn, LightGBM and isotree.

Every model sees the same arrays in the same run. vigil-forest runs through the
`forest_compare` driver (benches/src/bin/forest_compare.rs), which writes its
predictions back; every model's predictions are scored by the same scikit-learn
metric code. Run through run.sh (it builds the driver and sets up the venv).

Data: breast_cancer, wine, digits (shipped with scikit-learn), and
make_classification(n_samples=200000, n_features=40, n_informative=12,
random_state=0), each split stratified 75/25 (seed = split seed = model seed); and
"telemetry": the reference pipeline's data, i.e. vigil-features' simulator, its 42
rolling-window features and failure label, split 80/20 in time order with the label
horizon as an embargo, written by the forest_telemetry_csv driver (see
load_telemetry). Accuracy uses 4 machines x 3 days (~91k rows); speed uses the
simulator's default fleet (10 machines x 7 days) and its first 400k training rows.
"""
import argparse, json, multiprocessing, os, platform, queue, resource, subprocess, tempfile, time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine, load_digits, make_classification
from sklearn.ensemble import RandomForestClassifier, IsolationForest
from sklearn.metrics import roc_auc_score, f1_score
from sklearn.model_selection import train_test_split


def load_telemetry(csv_driver, workdir, machines, days, seed=42):
    """The reference pipeline's data: vigil-features' simulator, its 42 features and
    failure label, and its time-ordered split (training rows end one label horizon
    before the test cut-off), written by the forest_telemetry_csv driver
    (benches/src/bin/forest_telemetry_csv.rs). Returns (Xtr, Xte, ytr, yte, info)."""
    import pandas as pd
    path = os.path.join(workdir, f"telemetry_m{machines}_d{days}_s{seed}.csv")
    info = json.loads(subprocess.run([csv_driver, path, "--machines", str(machines), "--days", str(days),
                                      "--seed", str(seed)], check=True, capture_output=True, text=True).stdout)
    df = pd.read_csv(path)
    features = [c for c in df.columns if c not in ("time_us", "machine", "split", "failure")]
    assert len(features) == 42, features
    tr, te = df[df.split == "train"], df[df.split == "test"]
    info["feature_names"] = features
    return (tr[features].to_numpy(np.float64), te[features].to_numpy(np.float64),
            tr.failure.to_numpy(np.int64), te.failure.to_numpy(np.int64), info)


def datasets(args):
    """(name, split) pairs; `split(seed)` gives (Xtr, Xte, ytr, yte). The shipped
    sets are split stratified 75/25 per seed; telemetry has one time-ordered split
    (the seed varies only the models)."""
    want = set(args.only.split(",")) if args.only else None
    out = []

    def stratified(X, y):
        return lambda seed: train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)

    for name, loader in (("breast_cancer", load_breast_cancer), ("wine", load_wine), ("digits", load_digits)):
        if want is None or name in want:
            d = loader()
            out.append((name, stratified(d.data.astype(float), d.target)))
    if (want is None and not args.quick) or (want and "make_classification_200k" in want):
        X, y = make_classification(n_samples=200000, n_features=40, n_informative=12, random_state=0)
        out.append(("make_classification_200k", stratified(X, y)))
    if want is None or "telemetry" in want:
        Xtr, Xte, ytr, yte, info = load_telemetry(args.csv_driver, args.workdir, args.telemetry_machines,
                                                  args.telemetry_days)
        print(json.dumps({k: v for k, v in info.items() if k != "feature_names"}), flush=True)
        out.append(("telemetry", lambda seed: (Xtr, Xte, ytr, yte)))
    return out


def mean_filled(Xtr, Xte):
    """Both matrices with NaN replaced by the training column means (scikit-learn's
    IsolationForest takes no missing values)."""
    fill = np.nanmean(Xtr, axis=0)
    return np.where(np.isnan(Xtr), fill, Xtr), np.where(np.isnan(Xte), fill, Xte)


def write(dirname, Xtr, ytr, Xte):
    np.ascontiguousarray(Xtr, dtype="<f8").tofile(os.path.join(dirname, "x_train.f64"))
    np.ascontiguousarray(ytr, dtype="<f8").tofile(os.path.join(dirname, "y_train.f64"))
    np.ascontiguousarray(Xte, dtype="<f8").tofile(os.path.join(dirname, "x_test.f64"))
    with open(os.path.join(dirname, "meta.json"), "w") as f:
        json.dump({"n_train": len(Xtr), "n_test": len(Xte), "n_features": Xtr.shape[1]}, f)


def vigil(driver, dirname, model, seed, n_estimators, threads=2, extra=()):
    out = os.path.join(dirname, "pred.f64")
    cmd = [driver, "--dir", dirname, "--model", model, "--seed", str(seed), "--threads", str(threads),
           "--n-estimators", str(n_estimators), "--out", out, *extra]
    t = time.perf_counter()
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    res["wall_s"] = time.perf_counter() - t
    return res, np.fromfile(out, dtype="<f8")


def scores(y, proba):
    if proba.shape[1] == 2:
        auc = roc_auc_score(y, proba[:, 1])
        f1 = f1_score(y, proba.argmax(1))
    else:
        auc = roc_auc_score(y, proba, multi_class="ovr")
        f1 = f1_score(y, proba.argmax(1), average="macro")
    return auc, f1


def reference_scores(name, seed, Xtr, Xte, ytr, yte, binary):
    """scikit-learn RF (AUC, F1), scikit-learn IF AUC and isotree AUC for one split."""
    out = {}
    m = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=seed).fit(Xtr, ytr)
    out["rf"] = scores(yte, m.predict_proba(Xte))
    if binary:
        # scikit-learn's IsolationForest refuses NaN: it gets mean-imputed columns.
        Xtr_f, Xte_f = mean_filled(Xtr, Xte)
        m = IsolationForest(n_estimators=100, random_state=seed, n_jobs=2).fit(Xtr_f)
        out["if"] = roc_auc_score(yte, -m.score_samples(Xte_f))
        try:
            from isotree import IsolationForest as IsoTree
            it = IsoTree(ndim=1, ntrees=100, sample_size=256, nthreads=2, random_seed=seed).fit(Xtr)
            out["isotree"] = roc_auc_score(yte, it.predict(Xte))
        except Exception as e:  # noqa: BLE001 - report, don't hide
            print(f"isotree failed on {name}: {e}")
    return out


def accuracy(args, results):
    # The reference models' scores depend only on the data and the seed: with
    # --reference-cache they are computed once and reused while vigil changes.
    cache = {}
    if args.reference_cache and os.path.exists(args.reference_cache):
        with open(args.reference_cache) as f:
            cache = json.load(f)
    rows = []
    for name, split in datasets(args):
        Xtr, Xte, ytr, yte = split(0)
        classes = np.unique(np.concatenate([ytr, yte]))
        n, n_features = len(Xtr) + len(Xte), Xtr.shape[1]
        binary = len(classes) == 2
        acc = {"sklearn": [], "vigil": []}
        iso = {"sklearn": [], "vigil": [], "isotree": []}
        for seed in range(args.seeds):
            Xtr, Xte, ytr, yte = split(seed)
            key = f"{name}/{n}x{n_features}/{len(Xte)}/seed{seed}"
            if key not in cache:
                cache[key] = reference_scores(name, seed, Xtr, Xte, ytr, yte, binary)
                if args.reference_cache:
                    with open(args.reference_cache, "w") as f:
                        json.dump(cache, f, indent=1)
            ref = cache[key]
            acc["sklearn"].append(tuple(ref["rf"]))
            if "if" in ref:
                iso["sklearn"].append(ref["if"])
            if "isotree" in ref:
                iso["isotree"].append(ref["isotree"])
            with tempfile.TemporaryDirectory() as d:
                write(d, Xtr, ytr, Xte)
                _, p = vigil(args.driver, d, "rf", seed, 100)
                acc["vigil"].append(scores(yte, p.reshape(len(Xte), len(classes))))
                if binary:
                    _, s = vigil(args.driver, d, "if", seed, 100)
                    iso["vigil"].append(roc_auc_score(yte, -s))
            print(json.dumps({"dataset": name, "seed": seed, "sklearn": acc["sklearn"][-1],
                              "vigil": acc["vigil"][-1]}), flush=True)
        row = {"dataset": name, "n": n, "features": n_features, "classes": len(classes), "seeds": args.seeds}
        for k, v in acc.items():
            row[f"{k}_auc"] = float(np.mean([a for a, _ in v]))
            row[f"{k}_f1"] = float(np.mean([f for _, f in v]))
        for k, v in iso.items():
            if v:
                row[f"if_{k}_auc"] = float(np.mean(v))
        rows.append(row)
        print(json.dumps(row), flush=True)
    results["accuracy"] = rows


def in_child(name, fn, timeout):
    """Runs fn() in a forked process: its peak RSS is measured on its own (it
    includes the training data the parent already holds) and a model that stalls is
    killed after `timeout` seconds and reported as such instead of hanging the run."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()

    def target():
        try:
            out = fn()
            out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            q.put(out)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            q.put({"error": repr(e)})

    p = ctx.Process(target=target)
    t = time.perf_counter()
    p.start()
    try:
        out = q.get(timeout=timeout)
    except queue.Empty:
        p.kill()
        out = {"timed_out_after_s": timeout}
    p.join()
    out["wall_incl_startup_s"] = time.perf_counter() - t
    out["loadavg_after"] = os.getloadavg()
    print(json.dumps({name: out}), flush=True)
    return out


def timed(fn):
    t = time.perf_counter()
    v = fn()
    return v, time.perf_counter() - t


def speed(args, results):
    # The simulator's default fleet (10 machines x 7 days, ~555k rows after the
    # embargo) split as the pipeline splits it; the first --speed-rows training rows
    # in time order, and every test row.
    Xtr, Xte, ytr, yte, info = load_telemetry(args.csv_driver, args.workdir, args.speed_machines, args.speed_days)
    if len(Xtr) < args.speed_rows:
        raise SystemExit(f"only {len(Xtr)} training rows; raise --speed-days")
    Xtr, ytr = Xtr[:args.speed_rows], ytr[:args.speed_rows]
    d = Xtr.shape[1]
    out = {"rows": len(Xtr), "test_rows": len(Xte), "features": d, "trees": 100, "threads": 2,
           "positives": float(ytr.mean()), "loadavg_before": os.getloadavg()}
    print(json.dumps(out), flush=True)
    only = set(args.speed_models.split(","))

    def latency(predict_row, n=200):
        lat = []
        for i in range(n):
            t = time.perf_counter()
            predict_row(Xte[i:i + 1])
            lat.append(time.perf_counter() - t)
        return float(np.median(lat) * 1e6)

    with tempfile.TemporaryDirectory() as tmp:
        write(tmp, Xtr, ytr, Xte)
        if "vigil" in only:
            r, p = vigil(args.driver, tmp, "rf", 0, 100)
            out["vigil_rf"] = {**r, "auc": roc_auc_score(yte, p.reshape(len(Xte), 2)[:, 1])}
            print(json.dumps({"vigil_rf": out["vigil_rf"]}), flush=True)
            r, s = vigil(args.driver, tmp, "if", 0, 100)
            out["vigil_if"] = {**r, "auc": roc_auc_score(yte, -s)}
            print(json.dumps({"vigil_if": out["vigil_if"]}), flush=True)

    if "lightgbm" in only:
        import lightgbm as lgb

        def lightgbm_rf():
            # rf mode needs bagging every iteration; 0.632 of the rows (a bootstrap's
            # share of distinct rows), sqrt(d) features per node as a random forest
            # draws, and leaves allowed to grow small as fully grown trees' do.
            params = dict(boosting_type="rf", n_estimators=100, bagging_freq=1, bagging_fraction=0.632,
                          feature_fraction_bynode=np.sqrt(d) / d, num_leaves=args.lightgbm_leaves,
                          min_child_samples=1, min_child_weight=1e-3, max_depth=-1, n_jobs=2, verbose=-1,
                          random_state=0)
            m, fit = timed(lambda: lgb.LGBMClassifier(**params).fit(Xtr, ytr))
            p, pred = timed(lambda: m.predict_proba(Xte)[:, 1])
            return {"fit_s": fit, "predict_s": pred, "auc": roc_auc_score(yte, p),
                    "params": {k: (float(v) if isinstance(v, np.floating) else v) for k, v in params.items()}}
        out["lightgbm_rf"] = in_child("lightgbm_rf", lightgbm_rf, args.lightgbm_timeout)

    if "isotree" in only:
        def isotree():
            from isotree import IsolationForest as IsoTree
            m, fit = timed(lambda: IsoTree(ndim=1, ntrees=100, sample_size=256, nthreads=2, random_seed=0).fit(Xtr))
            s, score = timed(lambda: m.predict(Xte))
            return {"fit_s": fit, "score_s": score, "auc": roc_auc_score(yte, s)}
        out["isotree"] = in_child("isotree", isotree, 600)

    if "sklearn_if" in only:
        def sklearn_if():
            Xtr_f, Xte_f = mean_filled(Xtr, Xte)
            m, fit = timed(lambda: IsolationForest(n_estimators=100, random_state=0, n_jobs=2).fit(Xtr_f))
            s, score = timed(lambda: m.score_samples(Xte_f))
            return {"fit_s": fit, "score_s": score, "auc": roc_auc_score(yte, -s)}
        out["sklearn_if"] = in_child("sklearn_if", sklearn_if, 600)

    if "sklearn_rf" in only:
        def sklearn_rf():
            m, fit = timed(lambda: RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0).fit(Xtr, ytr))
            p, pred = timed(lambda: m.predict_proba(Xte)[:, 1])
            return {"fit_s": fit, "predict_s": pred, "row_median_us": latency(m.predict_proba, 50),
                    "auc": roc_auc_score(yte, p), "n_nodes": int(sum(e.tree_.node_count for e in m.estimators_))}
        out["sklearn_rf"] = in_child("sklearn_rf", sklearn_rf, args.sklearn_timeout)

    if args.paired_rf_fits:
        # vigil's and scikit-learn's RF fits alternated, so that each pair shares the
        # machine's state of the moment (this VM's speed drifts by tens of percent
        # within minutes, which a single vigil-then-scikit-learn run cannot separate
        # from the libraries' difference).
        def sklearn_rf_fit():
            _, fit = timed(lambda: RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0).fit(Xtr, ytr))
            return {"fit_s": fit}
        pairs = []
        with tempfile.TemporaryDirectory() as tmp:
            write(tmp, Xtr, ytr, Xte)
            for i in range(args.paired_rf_fits):
                r, _ = vigil(args.driver, tmp, "rf", 0, 100)
                sk = in_child(f"sklearn_rf_pair{i}", sklearn_rf_fit, args.sklearn_timeout)
                pair = {"vigil_fit_s": r["fit_s"], "sklearn_fit_s": sk.get("fit_s")}
                if pair["sklearn_fit_s"]:
                    pair["ratio"] = pair["sklearn_fit_s"] / pair["vigil_fit_s"]
                pairs.append(pair)
                print(json.dumps({"rf_fit_pair": pair}), flush=True)
        out["paired_rf_fits"] = pairs

    if args.paired_predictions:
        # The same protocol for prediction and for the Isolation Forest: one
        # scikit-learn RF fit, then N rounds of (vigil batch predict_proba,
        # scikit-learn batch predict_proba) on the test rows with the two fitted
        # models, then N rounds of (vigil IF fit + score, scikit-learn IF fit + score).
        n = args.paired_predictions
        Xtr_f, Xte_f = mean_filled(Xtr, Xte)
        with tempfile.TemporaryDirectory() as tmp:
            write(tmp, Xtr, ytr, Xte)
            model = os.path.join(tmp, "rf.bin")
            vigil(args.driver, tmp, "rf", 0, 100, extra=("--save-model", model))

            def rounds():
                m = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0).fit(Xtr, ytr)
                predict = []
                for _ in range(n):
                    r, _ = vigil(args.driver, tmp, "rf", 0, 100, extra=("--load-model", model))
                    _, sk = timed(lambda: m.predict_proba(Xte))
                    predict.append({"vigil_predict_s": r["predict_s"], "sklearn_predict_s": sk,
                                    "ratio": sk / r["predict_s"]})
                    print(json.dumps({"predict_pair": predict[-1]}), flush=True)
                isolation = []
                for _ in range(n):
                    r, _ = vigil(args.driver, tmp, "if", 0, 100)
                    m_if, fit = timed(lambda: IsolationForest(n_estimators=100, random_state=0, n_jobs=2).fit(Xtr_f))
                    _, score = timed(lambda: m_if.score_samples(Xte_f))
                    isolation.append({"vigil_fit_s": r["fit_s"], "vigil_score_s": r["score_s"],
                                      "sklearn_fit_s": fit, "sklearn_score_s": score,
                                      "ratio": (fit + score) / (r["fit_s"] + r["score_s"])})
                    print(json.dumps({"isolation_pair": isolation[-1]}), flush=True)
                return {"predict": predict, "isolation_forest": isolation}
            out["paired_predictions"] = in_child("paired_predictions", rounds, args.sklearn_timeout + 120 * n)
    out["loadavg_after"] = os.getloadavg()
    results["speed"] = out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="skip the 200k make_classification set")
    ap.add_argument("--only", help="comma-separated dataset names to run")
    ap.add_argument("--reference-cache", help="JSON file caching the reference models' accuracy scores")
    ap.add_argument("--csv-driver", required=True, help="the forest_telemetry_csv binary")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "vigil-forest-compare"))
    ap.add_argument("--telemetry-machines", type=int, default=4)
    ap.add_argument("--telemetry-days", type=float, default=3.0)
    ap.add_argument("--speed-machines", type=int, default=10)
    ap.add_argument("--speed-days", type=float, default=7.0)
    ap.add_argument("--speed-rows", type=int, default=400000)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--speed-models", default="vigil,lightgbm,isotree,sklearn_if,sklearn_rf",
                    help="comma-separated models to time")
    ap.add_argument("--lightgbm-leaves", type=int, default=4095)
    ap.add_argument("--lightgbm-timeout", type=float, default=300)
    ap.add_argument("--sklearn-timeout", type=float, default=900)
    ap.add_argument("--paired-rf-fits", type=int, default=0,
                    help="after the speed models, alternate N vigil and scikit-learn RF fits (100 trees)")
    ap.add_argument("--paired-predictions", type=int, default=0,
                    help="alternate N vigil and scikit-learn RF batch predictions (one scikit-learn fit),"
                         " then N vigil and scikit-learn IF fit + score rounds")
    ap.add_argument("--out", help="write everything to this file instead of the benchmarks' own files"
                                   " (see default_outputs); use it for partial runs (--only, --speed-models)")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    import sklearn, lightgbm
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "sklearn": sklearn.__version__, "lightgbm": lightgbm.__version__,
                           "loadavg_at_start": os.getloadavg()}}
    if not args.skip_accuracy:
        accuracy(args, results)
    if not args.skip_speed:
        speed(args, results)
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    outputs = {args.out: results} if args.out else default_outputs(args, results)
    for path, content in outputs.items():
        with open(path, "w") as f:
            json.dump(content, f, indent=1)


def default_outputs(args, results):
    """One current file per benchmark, overwritten by the next run of it: the
    accuracy section goes to results_accuracy.json (results_accuracy_<N>seeds.json
    when --seeds is not 5), the speed section to results_paired_predict.json,
    results_paired_rf_fits.json or results_speed.json after its mode."""
    here = os.path.dirname(os.path.abspath(__file__))
    outputs = {}
    if "accuracy" in results:
        name = "results_accuracy.json" if args.seeds == 5 else f"results_accuracy_{args.seeds}seeds.json"
        outputs[os.path.join(here, name)] = {"machine": results["machine"], "accuracy": results["accuracy"]}
    if "speed" in results:
        if args.paired_predictions:
            name = "results_paired_predict.json"
        elif args.paired_rf_fits:
            name = "results_paired_rf_fits.json"
        else:
            name = "results_speed.json"
        outputs[os.path.join(here, name)] = {"machine": results["machine"], "speed": results["speed"]}
    return outputs


if __name__ == "__main__":
    main()
