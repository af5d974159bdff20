"""Batch predictions on Beam's DirectRunner against `zoo predict` on the same rows.

The reference is `zoo predict` (itself checked against model.predict): for each handler
(in-process SavedModel, a served model over gRPC and REST) the Beam pipeline must give the
same predictions row for row, and a file with bad rows its dead letters and the good rows'
predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("apache_beam")

from tests.client.conftest import ROWS, wine_csv  # noqa: E402,F401  (shared fixtures)
from tests.serving.conftest import repository, server  # noqa: E402,F401
from zoo.beam.pipeline import main as beam_main  # noqa: E402
from zoo.cli import main as zoo_main  # noqa: E402


def _zoo_predict(model, path, output, server):  # noqa: F811
    assert zoo_main(["predict", model, "--input", str(path), "--output", str(output), "--via", "grpc",
                     "--server", server.grpc_address]) == 0
    return pd.read_csv(output)


def _shards(prefix):
    files = sorted(prefix.parent.glob(prefix.name + "-[0-9]*-of-*"))
    assert files, f"no shards at {prefix}"
    if files[0].suffix == ".parquet":
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def _handler_args(handler, model, repository, server):  # noqa: F811
    if handler == "saved-model":
        return ["--saved-model", str(repository.root / model / "1")]
    via, _, protocol = handler.partition("-")  # "grpc-v2": the Open Inference Protocol over gRPC
    address = server.grpc_address if via == "grpc" else server.rest_address
    return ["--via", via, "--server", address, "--protocol", protocol or "v1"]


@pytest.mark.parametrize("handler", ["saved-model", "grpc", "rest", "grpc-v2", "rest-v2"])
def test_beam_gives_zoo_predicts_predictions_row_for_row(handler, server, repository, wine_csv, tmp_path):  # noqa: F811
    path, _ = wine_csv
    expected = _zoo_predict("dnn-regressor", path, tmp_path / "zoo.csv", server)
    code = beam_main(["dnn-regressor", "--input", str(path), "--output", str(tmp_path / "beam" / "predictions"),
                      "--batch-size", "700", *_handler_args(handler, "dnn-regressor", repository, server)])
    assert code == 0
    written = _shards(tmp_path / "beam" / "predictions")
    assert list(written.columns) == list(expected.columns) == ["wine_id", "prediction"]
    written = written.sort_values("wine_id").reset_index(drop=True)
    assert written["wine_id"].tolist() == expected["wine_id"].tolist()  # every row once, none lost or doubled
    np.testing.assert_allclose(written["prediction"], expected["prediction"], rtol=1e-6, atol=1e-6)
    assert _shards(tmp_path / "beam" / "predictions-errors").empty  # the errors output has its header only


def test_vector_and_text_outputs_are_written_as_zoo_predict_writes_them(server, repository, wine_csv, tmp_path):  # noqa: F811
    path, _ = wine_csv
    model = "wine-quality-classifier"
    expected = _zoo_predict(model, path, tmp_path / "zoo.csv", server)
    assert beam_main([model, "--input", str(path), "--output", str(tmp_path / "p"),
                      *_handler_args("saved-model", model, repository, server)]) == 0
    written = _shards(tmp_path / "p").sort_values("wine_id").reset_index(drop=True)
    assert list(written.columns) == list(expected.columns)  # wine_id, class_id, label, probabilities_0..k
    assert any(c.startswith("probabilities_") for c in written.columns)
    assert written["label"].astype(str).tolist() == expected["label"].astype(str).tolist()
    probabilities = [c for c in written.columns if c.startswith("probabilities_")]
    np.testing.assert_allclose(written[probabilities], expected[probabilities], rtol=1e-5, atol=1e-6)


def test_bad_rows_become_dead_letters_and_the_good_rows_are_predicted(server, repository, wine_csv, tmp_path):  # noqa: F811
    path, frame = wine_csv
    lines = path.read_text().splitlines()
    header, rows = lines[0], lines[1:301]
    first_input = header.split(",")[1]
    bad = {  # data row number -> (the line as written, the column named, words of the reason)
        5: (rows[4] + ",7", "", "fields, the header"),  # a stray comma: every value would shift
        9: (rows[8].rsplit(",", 1)[0], "", "a row cut short"),
        12: (rows[11].replace(rows[11].split(",")[1], "twelve", 1), first_input, "expected a number, got 'twelve'"),
        20: (rows[19].replace(rows[19].split(",")[1], "nan", 1), first_input, "expected a number, got 'nan'"),
        33: (rows[32].replace(rows[32].split(",")[1], "", 1), first_input, "expected a number, got ''"),
    }
    broken = [bad[i + 1][0] if i + 1 in bad else line for i, line in enumerate(rows)]
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "part-0.csv").write_text("\n".join([header, *broken]) + "\n")
    (inputs / "part-1.csv").write_text("\n".join([header, *lines[301:501]]) + "\n")  # a clean second file
    code = beam_main(["dnn-regressor", "--input", str(inputs / "*.csv"), "--output", str(tmp_path / "out" / "p"),
                      *_handler_args("grpc", "dnn-regressor", repository, server)])
    assert code == 1  # some rows could not be predicted: said in the exit status
    errors = _shards(tmp_path / "out" / "p-errors").fillna("")
    assert sorted(errors["row"]) == sorted(bad)
    for _, letter in errors.iterrows():
        _, column, words = bad[letter["row"]]
        assert letter["file"].endswith("part-0.csv") and letter["column"] == column and words in letter["reason"]
    written = _shards(tmp_path / "out" / "p").set_index("wine_id")
    good_ids = [frame["wine_id"][i] for i in range(500) if i + 1 not in bad]
    assert sorted(written.index) == sorted(good_ids)  # every good row, none of the bad ones
    clean = tmp_path / "clean.csv"
    frame.iloc[:500].to_csv(clean, index=False)
    expected = _zoo_predict("dnn-regressor", clean, tmp_path / "zoo.csv", server).set_index("wine_id")
    np.testing.assert_allclose(written.loc[good_ids, "prediction"], expected.loc[good_ids, "prediction"],
                               rtol=1e-6, atol=1e-6)  # no good row took a neighbour's values


def test_parquet_in_parquet_out(server, repository, wine_csv, tmp_path):  # noqa: F811
    path, frame = wine_csv
    source = tmp_path / "wines.parquet"
    frame.iloc[:400].to_parquet(source, index=False)
    assert beam_main(["dnn-regressor", "--input", str(source), "--output", str(tmp_path / "p"), "--format", "parquet",
                      *_handler_args("saved-model", "dnn-regressor", repository, server)]) == 0
    written = _shards(tmp_path / "p").sort_values("wine_id").reset_index(drop=True)
    clean = tmp_path / "clean.csv"
    frame.iloc[:400].to_csv(clean, index=False)
    expected = _zoo_predict("dnn-regressor", clean, tmp_path / "zoo.csv", server)
    assert written["wine_id"].tolist() == expected["wine_id"].tolist()
    assert written["prediction"].dtype == np.float32  # typed from the signature, not text
    np.testing.assert_allclose(written["prediction"], expected["prediction"], rtol=1e-6, atol=1e-6)


def test_zoo_predict_runs_the_beam_pipeline_with_beam_options_after_the_double_dash(repository, wine_csv, tmp_path):  # noqa: F811
    path, frame = wine_csv
    code = zoo_main(["predict", "dnn-regressor", "--input", str(path), "--output", str(tmp_path / "p"), "--runner", "beam",
                     "--saved-model", str(repository.root / "dnn-regressor" / "1"),
                     "--", "--runner=DirectRunner", "--direct_num_workers=1"])
    assert code == 0
    assert sorted(_shards(tmp_path / "p")["wine_id"]) == sorted(frame["wine_id"])


def test_the_local_runner_refuses_beam_only_flags(wine_csv, tmp_path, capsys):  # noqa: F811
    path, _ = wine_csv
    assert zoo_main(["predict", "dnn-regressor", "--input", str(path), "--output", str(tmp_path / "p.csv"),
                     "--format", "parquet"]) == 2
    assert "need --runner beam" in capsys.readouterr().err


def test_a_batch_the_server_refuses_sends_each_of_its_rows_to_the_dead_letters(server, wine_csv, tmp_path):  # noqa: F811
    import apache_beam as beam

    from zoo.beam.handlers import ServedModelHandler
    from zoo.beam.pipeline import Job, build

    path, frame = wine_csv
    source = tmp_path / "wines.csv"
    frame.iloc[:50].to_csv(source, index=False)
    signature = ServedModelHandler(server.grpc_address, "dnn-regressor").signature()
    # A version the server does not have: NOT_FOUND is not retried, and no row may vanish.
    missing = ServedModelHandler(server.grpc_address, "dnn-regressor", version=99)
    job = Job(input=str(source), output=str(tmp_path / "p"), handler=missing, chunk_rows=16)
    with beam.Pipeline() as pipeline:
        build(pipeline, job, signature)
    assert _shards(tmp_path / "p").empty
    errors = _shards(tmp_path / "p-errors")
    assert sorted(errors["row"]) == list(range(1, 51))  # every row, once, in chunks of 16
    assert errors["reason"].str.contains("prediction failed: .*not found", regex=True).all()
