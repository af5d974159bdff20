"""The trainer benchmark in its smoke mode: both sides train and a ratio comes out."""

from bench.training import run


def test_smoke_mode_times_the_trainer_against_a_bare_fit(tmp_path):
    report = run(smoke=True, out_dir=str(tmp_path))
    assert report["epochs"] == 2
    assert report["bare_epoch_ms"] > 0 and report["trainer_epoch_ms"] > 0 and report["ratio"] > 0
    assert list(tmp_path.iterdir()) == []
