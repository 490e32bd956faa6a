import random

from memlens.core.trend import assess_trend, mann_kendall, theil_sen, window_minima


def test_theil_sen_ignores_outliers():
    xs = list(range(50))
    ys = [2.0 * x + 1 for x in xs]
    ys[10] = 1e9
    ys[30] = -1e9
    slope, intercept = theil_sen(xs, ys)
    assert abs(slope - 2.0) < 1e-9
    assert abs(intercept - 1.0) < 1e-6


def test_mann_kendall_detects_and_rejects():
    rng = random.Random(7)
    up = [x + rng.gauss(0, 3) for x in range(60)]
    flat = [rng.gauss(0, 3) for _ in range(60)]
    assert mann_kendall(up).p_increasing < 1e-6
    assert mann_kendall(flat).p_increasing > 0.01


def test_autocorrelation_correction_reduces_confidence():
    # A random walk looks trending to the plain test; the corrected one is wary.
    rng = random.Random(3)
    walk, v = [], 0.0
    for _ in range(120):
        v += rng.gauss(0, 1)
        walk.append(v)
    plain = mann_kendall(walk, autocorrelation=False)
    corrected = mann_kendall(walk)
    assert corrected.variance_correction >= 1.0
    assert corrected.p_two_sided >= plain.p_two_sided


def test_window_minima_drop_spikes():
    ts = [i * 0.1 for i in range(100)]
    ys = [100.0 + (1000.0 if i % 7 == 0 else 0.0) for i in range(100)]
    wt, wy = window_minima(ts, ys, 1.0)
    assert len(wt) == 10
    assert set(wy) == {100.0}


def test_growth_plateau_and_noise():
    rng = random.Random(1)
    xs = list(range(100))
    growing = assess_trend(xs, [1000 * x + rng.gauss(0, 5000) for x in xs])
    assert growing.growing()
    assert 900 < growing.slope < 1100
    plateau = assess_trend(xs, [1000 * min(x, 40) + rng.gauss(0, 300) for x in xs])
    assert plateau.plateaued and not plateau.growing()
    noise = assess_trend(xs, [rng.gauss(0, 5000) for _ in xs])
    assert not noise.growing()
    slow = assess_trend(xs, [1000 * x + rng.gauss(0, 100) for x in xs])
    assert not slow.growing(min_slope=5000)
