"""Production traffic for the loop's walkthrough: a dataset's test rows, optionally shifted,
sent to a model server the way a service would, and the ground truth that arrives later.

    python -m zoo.loop.demo_traffic --model dnn-regressor --shift alcohol=2 --truth truth.csv

sends the test split of the model's dataset, `--rows-per-request` rows a request, over TF
Serving's gRPC API (the official stubs) or REST, each request with its own X-Request-Id;
`--shift NAME=K` moves a feature by K training standard deviations first. `--truth` writes
the rows' labels keyed by request_id and row: what `zoo logs --labels` joins.
"""

from __future__ import annotations

import argparse
import http.client
import json
from pathlib import Path

import numpy as np
import pandas as pd

ROWS_PER_REQUEST = 8


def shifted_rows(data, shifts: dict[str, float]) -> dict[str, np.ndarray]:
    """The test split's features, each named feature moved by K training standard deviations."""
    rows = {name: values.astype(np.float32) for name, values in data.test.features.items()}
    for name, k in shifts.items():
        if name not in rows:
            raise SystemExit(f"--shift: no feature '{name}'; the features are: {', '.join(rows)}")
        rows[name] = rows[name] + np.float32(k * float(data.train.features[name].std()))
    return rows


def send(address: str, model: str, rows: dict[str, np.ndarray], *, prefix: str, via: str = "grpc",
         rows_per_request: int = ROWS_PER_REQUEST) -> list[str]:
    """Every row, `rows_per_request` a request; each request's id is `<prefix>-<n>`. Returns the ids."""
    count = len(next(iter(rows.values())))
    ids = [f"{prefix}-{n}" for n in range((count + rows_per_request - 1) // rows_per_request)]
    parts = [({k: v[start:start + rows_per_request] for k, v in rows.items()}, request_id)
             for start, request_id in zip(range(0, count, rows_per_request), ids)]
    if via == "grpc":
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        with grpc.insecure_channel(address) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for part, request_id in parts:
                request = predict_pb2.PredictRequest()
                request.model_spec.name = model
                for name, values in part.items():
                    request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
                stub.Predict(request, timeout=30, metadata=[("x-request-id", request_id)])
        return ids
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for part, request_id in parts:
            instances = [{k: v[i].item() for k, v in part.items()} for i in range(len(next(iter(part.values()))))]
            connection.request("POST", f"/v1/models/{model}:predict", json.dumps({"instances": instances}),
                               {"Content-Type": "application/json", "X-Request-Id": request_id})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise SystemExit(f"{address} answered {response.status}: {body[:300]!r}")
    finally:
        connection.close()
    return ids


def truth(ids: list[str], target: np.ndarray, target_name: str,
          rows_per_request: int = ROWS_PER_REQUEST) -> pd.DataFrame:
    """The labels of the rows sent, keyed by request_id and row, in no particular order (as
    ground truth arrives)."""
    positions = np.arange(len(target))
    frame = pd.DataFrame({"request_id": [ids[p // rows_per_request] for p in positions],
                          "row": positions % rows_per_request, target_name: target})
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    """Send the (shifted) test rows and write their truth."""
    parser = argparse.ArgumentParser(prog="python -m zoo.loop.demo_traffic", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--server", help="host:port (default localhost:8500, or localhost:8501 with --via rest)")
    parser.add_argument("--via", choices=("grpc", "rest"), default="grpc")
    parser.add_argument("--shift", action="append", default=[], metavar="FEATURE=K",
                        help="move a feature by K training standard deviations")
    parser.add_argument("--id-prefix", default="req", help="request ids are <prefix>-<n>")
    parser.add_argument("--truth", type=Path, help="write the rows' labels here (CSV), keyed by request_id and row")
    args = parser.parse_args(argv)
    from zoo.datasets import load_dataset
    from zoo.registry import model_info

    info = model_info(args.model)
    data = load_dataset(info.dataset, task=info.task, **info.dataset_options)
    shifts = {}
    for item in args.shift:
        name, _, k = item.partition("=")
        shifts[name] = float(k)
    rows = shifted_rows(data, shifts)
    server = args.server or ("localhost:8500" if args.via == "grpc" else "localhost:8501")
    ids = send(server, args.model, rows, prefix=args.id_prefix, via=args.via)
    print(f"{len(data.test)} rows in {len(ids)} requests to {args.model} at {server}"
          + (f", shifted: {', '.join(f'{k} {v:+g} sd' for k, v in shifts.items())}" if shifts else ""))
    if args.truth:
        target = data.test.target
        if data.class_names:  # labels as the classes are named, not as their ids
            target = np.asarray(data.class_names, dtype=object)[target]
        truth(ids, target, data.target_name).to_csv(args.truth, index=False)
        print(f"labels: {args.truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
