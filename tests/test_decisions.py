"""jaxsched.decisions: the per-machine store of measured choices."""

import json

import pytest

from jaxsched import decisions


def test_key_depends_on_program_fields_and_kind():
    k = decisions.key("fit_grid.strategy", "module @a", members=3)
    assert k == decisions.key("fit_grid.strategy", "module @a", members=3)
    assert k.startswith("fit_grid.strategy:")
    others = {
        decisions.key("fit_grid.strategy", "module @b", members=3),
        decisions.key("fit_grid.strategy", "module @a", members=4),
        decisions.key("other", "module @a", members=3),
    }
    assert k not in others and len(others) == 3


def test_remember_then_recall_and_machine_recorded(tmp_path):
    store = tmp_path / "sub" / "d.json"
    assert decisions.recall("k", store) is None  # no store yet
    decisions.remember("k", {"strategy": "vmap", "timings": {"vmap": 0.1}}, store)
    decisions.remember("j", {"strategy": "sequential"}, store)
    got = decisions.recall("k", store)
    assert got["strategy"] == "vmap" and got["timings"] == {"vmap": 0.1}
    assert got["machine"] == json.loads(json.dumps(decisions.machine()))
    assert decisions.recall("j", store)["strategy"] == "sequential"
    assert decisions.recall("missing", store) is None
    assert [p.name for p in store.parent.iterdir()] == ["d.json"]  # atomic: no temp files left


def test_unreadable_store_is_ignored_with_a_warning(tmp_path):
    store = tmp_path / "d.json"
    store.write_text("[1, 2")
    with pytest.warns(UserWarning, match="unreadable decision store"):
        assert decisions.recall("k", store) is None
    store.write_text("[1, 2]")  # valid JSON, not a store
    assert decisions.recall("k", store) is None


def test_off_disables_both(tmp_path, monkeypatch):
    monkeypatch.setenv(decisions.ENV, "off")
    assert decisions.default_path() is None
    decisions.remember("k", {"strategy": "vmap"})
    assert decisions.recall("k") is None
    monkeypatch.setenv(decisions.ENV, str(tmp_path / "x.json"))
    decisions.remember("k", {"strategy": "vmap"})
    assert decisions.recall("k")["strategy"] == "vmap"
