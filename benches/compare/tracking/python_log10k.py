"""MLflow's own Python client logging the same N values (one key, steps 0..N)
to the same server, two ways: one `log_batch` per 1000 values (its fastest
normal path) and one `log_metric` call per value (timed on a sample and
extrapolated: all 10,000 would take minutes). Also the server's own floor: the
same N values as raw `runs/log-batch` requests of 1000 over keep-alive HTTP with
no client library at all, sequential and 4 at a time.

usage: python_log10k.py <tracking-uri> [n=10000] [single_sample=200]
"""
import http.client
import json
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from mlflow import MlflowClient
from mlflow.entities import Metric


def raw_log_batches(uri, run_id, n, parallel):
    """POST log-batch bodies of 1000 metrics with http.client (keep-alive, one
    connection per worker): what any client must at least wait for."""
    host = urllib.parse.urlparse(uri)
    now = int(time.time() * 1000)
    bodies = [
        json.dumps({"run_id": run_id, "metrics": [
            {"key": "loss", "value": 1.0 / (s + 1), "timestamp": now, "step": s}
            for s in range(start, min(n, start + 1000))]}).encode()
        for start in range(0, n, 1000)
    ]

    def send(chunk):
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        for body in chunk:
            conn.request("POST", "/api/2.0/mlflow/runs/log-batch", body,
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
        conn.close()

    chunks = [bodies[i::parallel] for i in range(parallel)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(send, chunks))
    return time.perf_counter() - t0


def main():
    uri = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    sample = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("vigil-bench-tracking")
    exp_id = exp.experiment_id if exp else client.create_experiment("vigil-bench-tracking")

    run = client.create_run(exp_id, run_name="python-log_batch")
    t0 = time.perf_counter()
    now = int(time.time() * 1000)
    for start in range(0, n, 1000):
        batch = [Metric("loss", 1.0 / (s + 1), now, s) for s in range(start, min(n, start + 1000))]
        client.log_batch(run.info.run_id, metrics=batch)
    client.set_terminated(run.info.run_id)
    batch_s = time.perf_counter() - t0
    assert len(client.get_metric_history(run.info.run_id, "loss")) == n

    run = client.create_run(exp_id, run_name="python-log_metric")
    t0 = time.perf_counter()
    for s in range(sample):
        client.log_metric(run.info.run_id, "loss", 1.0 / (s + 1), step=s)
    single_s = time.perf_counter() - t0
    client.set_terminated(run.info.run_id)

    raw = {}
    for parallel in (1, 4):
        run = client.create_run(exp_id, run_name=f"raw-log-batch-{parallel}")
        raw[parallel] = raw_log_batches(uri, run.info.run_id, n, parallel)
        assert len(client.get_metric_history(run.info.run_id, "loss")) == n
        client.set_terminated(run.info.run_id)
    print(json.dumps({
        "client": "mlflow-python",
        "n": n,
        "log_batch_s": round(batch_s, 4),
        "log_metric_per_call_s": round(single_s / sample, 5),
        "log_metric_extrapolated_s": round(single_s / sample * n, 1),
        "raw_log_batch_sequential_s": round(raw[1], 4),
        "raw_log_batch_4_parallel_s": round(raw[4], 4),
    }))


if __name__ == "__main__":
    main()
