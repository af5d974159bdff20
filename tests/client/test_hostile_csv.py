"""What `zoo predict` withstands (issue 13, item 10): a CSV that would give wrong answers
silently. Each is refused with exit 2, the row named, and no output file left behind.
The server side is in tests/serving/test_hostile.py, training and export in tests/test_hostile.py."""

from __future__ import annotations

import pytest

from tests.client.test_predict_csv import _run


def _broken(wine_csv, tmp_path, row: int, edit) -> tuple:
    path, frame = wine_csv
    lines = path.read_bytes().split(b"\n")
    lines[row] = edit(lines[row])  # line `row` is data row `row` (line 0 is the header)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_bytes(b"\n".join(lines))
    return bad_csv, frame


def _refused(server, capsys, bad_csv, tmp_path, via="grpc") -> str:
    output = tmp_path / "out" / "predictions.csv"
    address = server.grpc_address if via == "grpc" else server.rest_address
    code, _, err = _run(capsys, "predict", "dnn-regressor", "--input", str(bad_csv), "--output", str(output),
                        "--server", address, "--via", via, "--batch-size", "700")
    assert code == 2, err
    assert not output.exists() and not any(output.parent.glob("*")) if output.parent.exists() else True
    return err


def test_a_row_with_a_stray_comma_is_refused_not_shifted(server, wine_csv, tmp_path, capsys):
    # "7.4" -> "7,4" in the second value: 14 fields for 13 columns
    def stray_comma(line):
        fields = line.split(b",")
        fields[2] = fields[2].replace(b".", b",", 1) if b"." in fields[2] else fields[2] + b",0"
        return b",".join(fields)
    bad_csv, frame = _broken(wine_csv, tmp_path, 1234, stray_comma)
    err = _refused(server, capsys, bad_csv, tmp_path)
    assert f"row 1234 has {len(frame.columns) + 1} fields, the header {len(frame.columns)} (a stray comma?)" in err


def test_a_row_with_two_extra_fields_is_refused_with_its_row(server, wine_csv, tmp_path, capsys):
    bad_csv, frame = _broken(wine_csv, tmp_path, 2000, lambda line: line + b",1,2")
    err = _refused(server, capsys, bad_csv, tmp_path, via="rest")
    assert f"row 2000 has {len(frame.columns) + 2} fields, the header {len(frame.columns)}" in err


@pytest.mark.parametrize("cell", ["1e400", "-1e400", "inf"])
def test_a_number_too_big_for_a_double_is_refused_not_predicted_empty(server, wine_csv, tmp_path, capsys, cell):
    def infinite(line):
        fields = line.split(b",")
        fields[-1] = cell.encode()
        return b",".join(fields)
    bad_csv, frame = _broken(wine_csv, tmp_path, 3001, infinite)
    err = _refused(server, capsys, bad_csv, tmp_path)
    assert f"row 3001, column '{frame.columns[-1]}': expected a finite number, got '{cell}'" in err


def test_a_row_cut_short_is_refused(server, wine_csv, tmp_path, capsys):
    bad_csv, frame = _broken(wine_csv, tmp_path, 4999, lambda line: line[: line.rindex(b",")])
    err = _refused(server, capsys, bad_csv, tmp_path)
    assert f"row 4999 has {len(frame.columns) - 1} fields, the header {len(frame.columns)} (a row cut short?)" in err


def test_a_quoted_file_is_checked_with_its_quotes(server, wine_csv, tmp_path, capsys):
    """A comma inside quotes is not a field separator; one outside is."""
    def quoted_key_and_stray_comma(line):
        key, rest = line.split(b",", 1)
        return b'"' + key + b',x",' + rest + b",0"
    bad_csv, frame = _broken(wine_csv, tmp_path, 10, quoted_key_and_stray_comma)
    err = _refused(server, capsys, bad_csv, tmp_path)
    assert f"row 10 has {len(frame.columns) + 1} fields, the header {len(frame.columns)}" in err


def test_an_unterminated_quote_names_its_row(server, wine_csv, tmp_path, capsys):
    bad_csv, _ = _broken(wine_csv, tmp_path, 42, lambda line: line.replace(b",", b',"', 1))
    err = _refused(server, capsys, bad_csv, tmp_path)
    assert "a quoted field that starts in row 42 is never closed" in err and "Traceback" not in err


def test_text_that_is_not_utf8_names_its_row(server, wine_csv, tmp_path, capsys):
    bad_csv, _ = _broken(wine_csv, tmp_path, 77, lambda line: b"caf\xe9" + line[line.index(b","):])
    err = _refused(server, capsys, bad_csv, tmp_path)
    assert "row 77 is not UTF-8 text (byte 0xe9" in err and "Traceback" not in err
