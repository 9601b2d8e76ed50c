"""experiments.depth_vs_width end to end at its smoke size: results, figures, reuse, resume."""

import json

import numpy as np
import pytest

from experiments import depth_vs_width
from experiments.configs.depth_vs_width import DEFAULT, SMOKE

pytestmark = pytest.mark.slow


def test_defaults_are_the_notebooks():
    assert len(DEFAULT.nets) == 143
    assert (DEFAULT.num_examples, DEFAULT.noise_std, DEFAULT.limit) == (100_000, 0.3, 512)
    assert (DEFAULT.optimizer, DEFAULT.preset, DEFAULT.learning_rate) == ("nadam", "keras", 1e-3)
    assert (DEFAULT.batch_size, DEFAULT.patience, DEFAULT.test_fraction) == (1000, 20, 0.2)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dvw") / "out"
    assert depth_vs_width.main(["--smoke", "--quiet", "--out", str(out), "--strategy", "all"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_smoke_writes_one_row_per_net_and_the_figures(smoke_run):
    out, doc = smoke_run
    assert doc["status"] == "done"
    rows = doc["runs"]
    assert [r["widths"] for r in rows] == [list(w) for w in SMOKE.nets]
    for row in rows:
        assert row["key"] == depth_vs_width.member_key(row["widths"], 0)
        assert row["layers"] == len(row["widths"]) and row["units"] == sum(row["widths"])
        assert row["status"] in ("done", "stopped")
        assert 1 <= row["epochs_trained"] <= SMOKE.epochs
        assert row["best_val_rmse"] == min(row["history"]["val_rmse"])
        assert row["seconds"] > 0
    summary = doc["summary"]
    assert summary["strategy"] == "all"
    best = {d: b["best_val_rmse"] for d, b in summary["best_per_depth"].items()}
    for depth in ("1", "2"):
        assert best[depth] == min(r["best_val_rmse"] for r in rows if r["layers"] == int(depth))
    # three nets of depth 2: a fitted line with its band, the band around the line
    fit = summary["fits"]["rmse_vs_units.png"]["2"]
    assert np.all(np.array(fit["lo"]) <= np.array(fit["fit"]))
    assert np.all(np.array(fit["fit"]) <= np.array(fit["hi"]))
    for name in depth_vs_width.FIGURES:
        assert (out / name).stat().st_size > 10_000
    assert doc["environment"]["jaxsched"] and doc["config"]["epochs"] == SMOKE.epochs


def test_a_finished_run_is_reused_and_an_interrupted_one_resumes(smoke_run, capsys):
    out, doc = smoke_run
    argv = ["--smoke", "--quiet", "--out", str(out), "--strategy", "all"]
    assert depth_vs_width.main(argv) == 0
    assert "reusing the complete" in capsys.readouterr().out
    # cut it back to a run interrupted after its first nets
    partial = dict(doc, status="running", runs=doc["runs"][:2])
    (out / "results.json").write_text(json.dumps(partial))
    assert depth_vs_width.main(argv) == 0
    assert "resuming: 2 nets finished earlier are kept" in capsys.readouterr().out
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["status"] == "done"
    assert resumed["runs"][:2] == doc["runs"][:2]  # kept as they were
    for new, old in zip(resumed["runs"][2:], doc["runs"][2:], strict=True):
        np.testing.assert_allclose(
            new["history"]["val_rmse"], old["history"]["val_rmse"], rtol=1e-5
        )


def test_another_config_does_not_overwrite(smoke_run, capsys):
    out, _ = smoke_run
    with pytest.raises(SystemExit) as exit_info:
        depth_vs_width.main(["--smoke", "--quiet", "--out", str(out), "--epochs", "3"])
    assert exit_info.value.code == 2
    assert "another run" in capsys.readouterr().err
