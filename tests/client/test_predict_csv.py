"""`zoo predict`: a CSV in, predictions out, over REST or gRPC, all or nothing."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest

from tests.client.conftest import ROWS
from zoo.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("via", ["rest", "grpc"])
@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_zoo_predict_matches_model_predict_for_thousands_of_rows(via, protocol, server, repository, wine_csv, tmp_path,
                                                                 capsys):
    path, frame = wine_csv
    address = server.rest_address if via == "rest" else server.grpc_address
    output = tmp_path / "predictions.csv"
    code, out, err = _run(capsys, "predict", "dnn-regressor", "--input", str(path), "--output", str(output),
                          "--via", via, "--protocol", protocol, "--server", address, "--batch-size", "700")
    assert code == 0, err
    assert f"{ROWS} predictions" in out and f"{ROWS}/{ROWS} rows (100%)" in err
    written = pd.read_csv(output)
    assert list(written.columns) == ["wine_id", "prediction"]
    assert written["wine_id"].tolist() == frame["wine_id"].tolist()
    model = repository.zoo_models["dnn-regressor"].model
    expected = model.predict({k: frame[k].to_numpy(np.float32) for k in frame.columns[1:]}, verbose=0)["prediction"]
    np.testing.assert_allclose(written["prediction"], expected[:, 0], rtol=1e-5, atol=1e-5)


def test_a_bad_row_is_named_and_no_output_is_left(server, wine_csv, tmp_path, capsys):
    path, frame = wine_csv
    broken = frame.astype(object)
    broken.loc[3499, "pH"] = "n/a"  # data row 3500
    bad_csv = tmp_path / "bad.csv"
    broken.to_csv(bad_csv, index=False)
    output = tmp_path / "out" / "predictions.csv"
    code, _, err = _run(capsys, "predict", "dnn-regressor", "--input", str(bad_csv), "--output", str(output),
                        "--via", "rest", "--server", server.rest_address, "--batch-size", "1000")
    assert code == 2
    assert "row 3500, column 'pH': expected a number, got 'n/a'" in err
    assert list(output.parent.iterdir()) == []  # neither the output nor its partial file


@pytest.mark.parametrize("cell, said", [("", "an empty cell"), ("nan", "'nan'"), ("1,5", "'1,5'")])
def test_a_cell_that_is_not_a_number_is_named_as_written(server, wine_csv, tmp_path, capsys, cell, said):
    path, frame = wine_csv
    text = path.read_text().splitlines()
    fields = text[2500].split(",")  # data row 2500 (line 0 is the header)
    fields[frame.columns.get_loc("alcohol")] = f'"{cell}"' if "," in cell else cell
    text[2500] = ",".join(fields)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("\n".join(text) + "\n")
    output = tmp_path / "out.csv"
    code, _, err = _run(capsys, "predict", "dnn-regressor", "--input", str(bad_csv), "--output", str(output),
                        "--server", server.grpc_address, "--batch-size", "600")
    assert code == 2 and f"row 2500, column 'alcohol': expected a number, got {said}" in err
    assert not output.exists()


def test_key_columns_are_copied_exactly_as_written(server, wine_csv, tmp_path, capsys):
    path, frame = wine_csv
    text = path.read_text().splitlines()
    alcohol = frame.columns.get_loc("alcohol")
    for line in range(1, 4):  # one wine three times; 9.40, 09.4 and 9.4e0 are one number, three texts
        fields = text[1].split(",")
        fields[alcohol] = ["9.40", "09.4", "9.4e0"][line - 1]
        text[line] = ",".join(fields)
    keyed_csv = tmp_path / "keyed.csv"
    keyed_csv.write_text("\n".join(text) + "\n")
    output = tmp_path / "out.csv"
    code, _, err = _run(capsys, "predict", "dnn-regressor", "--input", str(keyed_csv), "--output", str(output),
                        "--server", server.grpc_address, "--key", "alcohol")
    assert code == 0, err
    written = pd.read_csv(output, dtype=str)
    assert written["alcohol"][:3].tolist() == ["9.40", "09.4", "9.4e0"]
    predictions = written["prediction"][:3].astype(float)
    assert predictions.nunique() == 1  # the model saw the same number three times


def test_a_missing_column_is_named_before_anything_is_sent(server, wine_csv, tmp_path, capsys):
    path, frame = wine_csv
    thin = tmp_path / "thin.csv"
    frame.drop(columns=["alcohol"]).to_csv(thin, index=False)
    code, _, err = _run(capsys, "predict", "dnn-regressor", "--input", str(thin), "--output", str(tmp_path / "o.csv"),
                        "--server", server.grpc_address)
    assert code == 2 and "has no column(s) alcohol" in err
    assert not (tmp_path / "o.csv").exists()


def test_chosen_key_columns_and_a_server_that_is_down(server, wine_csv, tmp_path, capsys):
    path, _ = wine_csv
    output = tmp_path / "keyed.csv"
    code, _, err = _run(capsys, "predict", "dnn-regressor", "--input", str(path), "--output", str(output),
                        "--server", server.grpc_address, "--key", "wine_id", "--key", "alcohol")
    assert code == 0, err
    assert list(pd.read_csv(output, nrows=1).columns) == ["wine_id", "alcohol", "prediction"]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output.unlink()
    code, _, err = _run(capsys, "predict", "dnn-regressor", "--input", str(path), "--output", str(output),
                        "--via", "rest", "--server", f"127.0.0.1:{port}", "--timeout", "2")
    assert code == 2 and f"cannot reach the model server at 127.0.0.1:{port}" in err
    assert not output.exists()
