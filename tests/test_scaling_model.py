"""jaxsched.scaling: the ring all-reduce and data-parallel step-time model, in closed form."""

import math

import numpy as np
import pytest

from jaxsched import scaling

DEVICES = [1, 2, 4, 8, 16, 32, 64]
BYTES = 4 * 270_000  # ResNet-44's ~270k float32 gradients


def test_ring_allreduce_closed_form():
    bw, lat = 10e9, 3e-6
    t = scaling.ring_allreduce_seconds(BYTES, DEVICES, bw, lat)
    n = np.array(DEVICES, float)
    np.testing.assert_allclose(t, 2 * (n - 1) / n * BYTES / bw + 2 * (n - 1) * lat, rtol=1e-12)
    assert t[0] == 0.0
    # N = 2: each device sends half the buffer twice, with two latencies.
    assert scaling.ring_allreduce_seconds(BYTES, 2, bw, lat) == pytest.approx(
        BYTES / bw + 2 * lat, rel=1e-12
    )
    # The bandwidth term tends to 2 * bytes / bandwidth.
    big = scaling.ring_allreduce_seconds(BYTES, 10**6, bw, 0.0)
    assert big == pytest.approx(2 * BYTES / bw, rel=1e-5)


@pytest.mark.parametrize("mode", scaling.MODES)
@pytest.mark.parametrize("link", list(scaling.INTERCONNECTS))
def test_one_device_is_ideal_and_efficiency_never_rises(mode, link):
    p = scaling.predict(0.05, BYTES, DEVICES, link, mode)
    assert p.comm_s[0] == 0.0 and p.speedup[0] == 1.0 and p.efficiency[0] == 1.0
    assert np.all(np.diff(p.efficiency) <= 1e-15)
    assert np.all((p.efficiency > 0) & (p.efficiency <= 1))
    np.testing.assert_allclose(p.efficiency, p.speedup / np.array(DEVICES), rtol=1e-12)
    np.testing.assert_allclose(p.step_s, p.compute_s + p.comm_s, rtol=1e-12)


def test_strong_and_weak_closed_forms():
    compute, link = 0.08, scaling.INTERCONNECTS["pcie4_x16"]
    comm4 = 2 * 3 / 4 * BYTES / link.bandwidth_bytes_per_s + 2 * 3 * link.latency_s
    strong = scaling.predict(compute, BYTES, 4, link, "strong")
    assert strong.compute_s == pytest.approx(compute / 4)
    assert strong.step_s == pytest.approx(compute / 4 + comm4)
    assert strong.speedup == pytest.approx(compute / (compute / 4 + comm4))
    assert strong.efficiency == pytest.approx(strong.speedup / 4)
    weak = scaling.predict(compute, BYTES, 4, link, "weak")
    assert weak.compute_s == pytest.approx(compute)
    assert weak.efficiency == pytest.approx(compute / (compute + comm4))
    assert weak.speedup == pytest.approx(4 * compute / (compute + comm4))
    # The same link costs strong scaling more: its compute per device shrinks.
    assert strong.efficiency < weak.efficiency


@pytest.mark.parametrize("mode", scaling.MODES)
def test_infinite_bandwidth_and_no_latency_is_ideal(mode):
    p = scaling.predict(0.01, 1e12, DEVICES, (math.inf, 0.0), mode)
    np.testing.assert_array_equal(p.comm_s, 0.0)
    np.testing.assert_allclose(p.speedup, DEVICES, rtol=1e-12)
    np.testing.assert_allclose(p.efficiency, 1.0, rtol=1e-12)


def test_faster_links_predict_higher_efficiency():
    effs = {
        name: scaling.predict(0.02, 4 * 20_000_000, 64, name, "strong").efficiency
        for name in scaling.INTERCONNECTS
    }
    assert effs["nvlink3"] > effs["pcie4_x16"] > effs["ethernet_100g"]


def test_presets_are_the_documented_nominal_figures():
    assert scaling.INTERCONNECTS["pcie4_x16"] == (25e9, 5e-6)
    assert scaling.INTERCONNECTS["nvlink3"] == (300e9, 2e-6)
    assert scaling.INTERCONNECTS["ethernet_100g"] == (12.5e9, 15e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(devices=0), r"devices must be integers >= 1, got 0"),
        (dict(devices=[1, 2.5]), r"devices must be integers >= 1"),
        (dict(devices=[]), r"devices must be integers >= 1"),
        (dict(compute_s_single=0.0), r"compute_s_single must be finite and > 0, got 0.0"),
        (dict(compute_s_single=math.nan), r"compute_s_single must be finite and > 0"),
        (dict(param_bytes=-1), r"num_bytes must be finite and >= 0, got -1"),
        (dict(link="infiniband"), r"interconnect must be one of \('pcie4_x16', 'nvlink3'"),
        (dict(link=(0.0, 1e-6)), r"bandwidth_bytes_per_s must be in \(0, inf\], got 0.0"),
        (dict(link=(1e9, -1e-6)), r"latency_s must be finite and >= 0, got -1e-06"),
        (dict(mode="medium"), r"mode must be one of \('strong', 'weak'\), got 'medium'"),
    ],
)
def test_bad_arguments_name_the_parameter_and_range(kwargs, message):
    args = dict(compute_s_single=0.1, param_bytes=BYTES, devices=4, link="nvlink3", mode="weak")
    with pytest.raises(ValueError, match=message):
        scaling.predict(**{**args, **kwargs})
