"""Runs the `>>>` examples in every module's docstrings (doctest), on CPU."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import jaxsched

# Every module of the package, and the package itself. None is skipped: all import on CPU.
MODULES = sorted(
    ["jaxsched"] + [info.name for info in pkgutil.walk_packages(jaxsched.__path__, "jaxsched.")]
)
# Modules whose public functions (or the package docstring) must carry examples.
WITH_EXAMPLES = {
    "jaxsched",
    "jaxsched.schedules",
    "jaxsched.batch_schedules",
    "jaxsched.optimizers",
    "jaxsched.augment",
    "jaxsched.range_test",
    "jaxsched.find",
    "jaxsched.eggholder",
    "jaxsched.shape_grid",
}


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} has no examples"


@pytest.mark.parametrize("name", sorted(WITH_EXAMPLES - {"jaxsched"}) + ["jaxsched.losses"])
def test_every_public_function_has_examples(name):
    module = importlib.import_module(name)
    public = [
        obj
        for attr, obj in vars(module).items()
        if not attr.startswith("_")
        and inspect.isfunction(obj)
        and obj.__module__ == module.__name__
    ]
    assert public
    missing = [f.__name__ for f in public if "Examples:" not in (f.__doc__ or "")]
    assert not missing, f"{name}: no Examples: section in {missing}"


def test_the_top_level_functions_have_examples():
    names = [n for n in jaxsched.__all__ if inspect.isfunction(getattr(jaxsched, n, None))]
    assert set(names) == {"cyclic_lr", "one_cycle_lr", "fit", "fit_grid", "lr_find"} | {
        "batch_size_find"
    }
    assert all("Examples:" in getattr(jaxsched, n).__doc__ for n in names)
