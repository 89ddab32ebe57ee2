#!/usr/bin/env python3
"""Reference fixtures for `src/stats`, computed with gbstats, scipy and statsmodels.

Regenerate (from the repository root):

    python3 -m venv /tmp/sluice-stats-venv
    /tmp/sluice-stats-venv/bin/pip install -r scripts/stats/requirements.txt
    /tmp/sluice-stats-venv/bin/python scripts/stats/generate_fixtures.py

Writes tests/fixtures/stats/{compare,one_sided,srm,correction,ratio,cuped,capped,power}.json.
The output is deterministic (seeded simulations, no timestamps): a regeneration with
the pinned versions gives the same cases and numbers, identical but for the last bit
or two of a few of them on another machine (at most 5e-15 relative, seen on
compare.json), far inside the tests' 1e-6.

Where a number comes from:
- compare.json: gbstats.frequentist.tests.TwoSidedTTest (relative and absolute),
  SequentialTwoSidedTTest and gbstats.bayesian.tests.EffectBayesianABTest (flat prior);
  the absolute p-values are cross-checked against scipy.stats.ttest_ind_from_stats.
- one_sided.json: gbstats OneSidedTreatment{Lesser,Greater}TTest for the p-value; the
  bound is t.ppf directly (gbstats 0.8.0's Lesser interval subtracts the half width,
  which is a bug, see BUGS below). The sequential one-sided test is not in gbstats 0.8.0
  (the newest on PyPI): its half width is transcribed from GrowthBook's later
  `sequentialIntervalHalfwidthOneSided` and its p-value is the alpha where the bound
  touches 0, solved with scipy.optimize.brentq; GrowthBook's own 100-step bisection
  (tolerance 1e-6 on the bound, clamped to [1e-5, 0.4999]) is recorded beside it.
- ratio.json: the same tests as compare.json on gbstats.models.statistics.RatioStatistic
  (mean sum(x)/sum(y), delta-method variance with the covariance from sum(x*y)); for
  sample-mean components the variance is cross-checked against numpy's sample variance
  of x - R*y over mean(y)^2.
- cuped.json: the same tests on RegressionAdjustedStatistic, theta from compute_theta
  as gbstats' BaseABTest sets it (both arms pooled; theta 0 falls back to the
  unadjusted statistics). theta is cross-checked against numpy.polyfit on the pooled
  per-user values and each arm's adjusted variance against numpy's variance of
  x - theta*y. variance_reduction is API.md's 1 - adjusted/unadjusted variance of the
  relative effect (TwoSidedTTest.variance); gbstats 0.8.0 has no such figure, and no
  CUPED for ratio metrics (no RegressionAdjustedRatioStatistic), so there is no
  cuped_ratio.json.
- capped.json: compare.json's tests on per-user values capped with numpy.minimum; the
  raw values and the cap are in each case for end-to-end tests to replay.
- srm.json: scipy.stats.chisquare and gbstats.utils.check_srm.
- correction.json: statsmodels.stats.multitest.multipletests 'holm' and 'fdr_bh'.
- power.json: statsmodels.stats.power.NormalIndPower (ratio 1, two-sided): its
  `power`, and its inverses found with brentq to 1e-15 (statsmodels' own solve_power
  answers are recorded too; they stop early, up to ~1e-3 off for the effect size).
"""

import json
import math
import os
import platform
import sys
from importlib.metadata import version

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import (
    FrequentistConfig,
    OneSidedTreatmentGreaterTTest,
    OneSidedTreatmentLesserTTest,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    compute_theta,
)
from gbstats.utils import check_srm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "stats")
SEQ_TUNINGS = [1000.0, 5000.0, 50000.0]

HEADER = {
    "generator": "scripts/stats/generate_fixtures.py",
    "regenerate": "python3 -m venv /tmp/sluice-stats-venv && "
    "/tmp/sluice-stats-venv/bin/pip install -r scripts/stats/requirements.txt && "
    "/tmp/sluice-stats-venv/bin/python scripts/stats/generate_fixtures.py",
    "python": platform.python_version(),
    "versions": {
        p: version(p) for p in ["gbstats", "scipy", "statsmodels", "numpy", "pandas"]
    },
    "tolerance": "compare with |got - want| <= 1e-6 * |want| + 1e-12",
}


# --- inputs ---------------------------------------------------------------------


def arm_from_values(values):
    v = np.asarray(values, dtype=float)
    return {"n": int(v.size), "sum": float(v.sum()), "sum_squares": float((v * v).sum())}


def conversion_arm(n, conversions):
    return {"n": int(n), "sum": float(conversions), "sum_squares": float(conversions)}


def mean_arm(n, mean, variance):
    """Sufficient statistics of n values with this mean and sample variance."""
    s = mean * n
    return {"n": int(n), "sum": s, "sum_squares": variance * (n - 1) + s * s / n}


def gb_stat(metric_type, arm):
    if metric_type == "proportion":
        return ProportionStatistic(n=arm["n"], sum=arm["sum"])
    return SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_squares"])


def experiments():
    """(name, metric_type, arms, weights, settings) with arms[0] the control."""
    rng = np.random.default_rng(20240611)
    out = []
    d = {"alpha": 0.05, "higher_is_better": True}

    out.append(("conv_2arm_1k", "proportion",
                [conversion_arm(1000, 100), conversion_arm(1000, 118)], [1, 1], d))
    out.append(("conv_tiny_n10", "proportion",
                [conversion_arm(10, 3), conversion_arm(10, 5)], [1, 1], d))
    out.append(("conv_huge_n1e9", "proportion",
                [conversion_arm(1_000_000_000, 50_000_000),
                 conversion_arm(1_000_000_000, 50_010_000)], [1, 1], d))
    out.append(("conv_3arm_unequal_weights", "proportion",
                [conversion_arm(5012, 498), conversion_arm(2480, 262),
                 conversion_arm(2551, 221)], [0.5, 0.25, 0.25], d))
    out.append(("conv_4arm_srm", "proportion",
                [conversion_arm(10000, 1203), conversion_arm(10321, 1297),
                 conversion_arm(9702, 1105), conversion_arm(10150, 1350)],
                [1, 1, 1, 1], d))
    out.append(("conv_unequal_n_alpha10", "proportion",
                [conversion_arm(1000, 312), conversion_arm(200, 49)], [5, 1],
                {"alpha": 0.10, "higher_is_better": True}))
    out.append(("conv_huge_effect", "proportion",
                [conversion_arm(1_000_000, 100_000), conversion_arm(1_000_000, 120_000)],
                [1, 1], d))
    out.append(("conv_lower_is_better_alpha01", "proportion",
                [conversion_arm(20000, 900), conversion_arm(20000, 830)], [1, 1],
                {"alpha": 0.01, "higher_is_better": False}))

    # Revenue per user: 92% zeros, lognormal spend otherwise (heavy right tail).
    def revenue(n, mu):
        buy = rng.random(n) < 0.08
        return np.where(buy, rng.lognormal(mean=mu, sigma=1.4, size=n), 0.0)

    out.append(("revenue_4arm_lognormal", "mean",
                [arm_from_values(revenue(2000, 3.0)), arm_from_values(revenue(2000, 3.1)),
                 arm_from_values(revenue(2000, 2.9)), arm_from_values(revenue(1960, 3.3))],
                [1, 1, 1, 1], d))
    out.append(("revenue_tiny_n10", "mean",
                [arm_from_values(revenue(10, 3.0) + [0, 0, 0, 0, 0, 0, 0, 0, 0, 12.5]),
                 arm_from_values(revenue(10, 3.0) + [0, 0, 0, 0, 0, 0, 0, 3.0, 7.0, 0])],
                [1, 1], d))
    out.append(("revenue_50k", "mean",
                [arm_from_values(revenue(50000, 3.0)), arm_from_values(revenue(50000, 3.05))],
                [1, 1], d))
    out.append(("count_poisson_3arm", "mean",
                [arm_from_values(rng.poisson(2.0, 5000)),
                 arm_from_values(rng.poisson(2.05, 5000)),
                 arm_from_values(rng.poisson(1.9, 5000))], [1, 1, 1], d))
    out.append(("mean_huge_n1e9", "mean",
                [mean_arm(1_000_000_000, 1.7, 25.0), mean_arm(999_990_000, 1.7003, 25.2)],
                [1, 1], d))
    out.append(("mean_negative_values", "mean",
                [arm_from_values(rng.normal(-0.5, 2.0, 300)),
                 arm_from_values(rng.normal(-0.2, 2.5, 320))], [1, 1], d))

    # Degenerate inputs: gbstats returns its default output with an error message.
    out.append(("degenerate_zero_conversions_both", "proportion",
                [conversion_arm(500, 0), conversion_arm(500, 0)], [1, 1], d))
    out.append(("degenerate_zero_conversions_control", "proportion",
                [conversion_arm(500, 0), conversion_arm(500, 4)], [1, 1], d))
    out.append(("degenerate_zero_conversions_treatment", "proportion",
                [conversion_arm(500, 7), conversion_arm(500, 0)], [1, 1], d))
    out.append(("degenerate_all_converted", "proportion",
                [conversion_arm(50, 50), conversion_arm(50, 40)], [1, 1], d))
    out.append(("degenerate_n1", "mean",
                [arm_from_values([4.0]), arm_from_values([1.0, 2.0, 3.0])], [1, 1], d))
    out.append(("degenerate_n0_control", "mean",
                [{"n": 0, "sum": 0.0, "sum_squares": 0.0}, arm_from_values([1.0, 2.0, 3.0])],
                [1, 1], d))
    out.append(("degenerate_constant_values", "mean",
                [arm_from_values([3.0] * 40), arm_from_values([3.0] * 35)], [1, 1], d))
    out.append(("degenerate_control_mean_zero", "mean",
                [arm_from_values([0.0] * 40), arm_from_values([0.0] * 30 + [2.0] * 10)],
                [1, 1], d))
    return out


# --- expected reason, by the documented precedence in src/stats/mod.rs ----------


def sluice_variance(metric_type, arm):
    n = arm["n"]
    if metric_type == "proportion":
        p = arm["sum"] / n
        return p * (1 - p)
    return (arm["sum_squares"] - arm["sum"] ** 2 / n) / (n - 1)


def expected_reasons(metric_type, c, t):
    """(absolute reason, relative reason) or None, as `Reason::as_str` spells them."""
    if c["n"] < 2 or t["n"] < 2:
        return "TOO_FEW_UNITS", "TOO_FEW_UNITS"
    zero_var = sluice_variance(metric_type, c) <= 0 or sluice_variance(metric_type, t) <= 0
    abs_reason = "ZERO_NEGATIVE_VARIANCE" if zero_var else None
    if c["sum"] == 0:
        rel_reason = "ZERO_NEGATIVE_BASELINE_VARIATION"
    else:
        rel_reason = abs_reason
    return abs_reason, rel_reason


# --- compare.json -----------------------------------------------------------------


def fnum(x):
    x = float(x)
    if math.isnan(x):
        raise ValueError("NaN in a fixture")
    return x


def compare_case(name, metric_type, c, t, settings, index):
    abs_reason, rel_reason = expected_reasons(metric_type, c, t)
    want = comparison_want(
        name, lambda: (gb_stat(metric_type, c), gb_stat(metric_type, t)), settings,
        abs_reason, rel_reason,
    )
    return {
        "name": f"{name}/variant{index}",
        "metric_type": metric_type,
        "settings": settings,
        "control": c,
        "treatment": t,
        "want": want,
    }


def comparison_want(name, make_stats, settings, abs_reason, rel_reason):
    """The `want` of a comparison in compare.json's schema. make_stats() returns a fresh
    (control, treatment) pair of gbstats statistics for each test, since gbstats' tests
    set theta on RegressionAdjustedStatistic objects in place."""
    alpha = settings["alpha"]
    rel = TwoSidedTTest(*make_stats(),
                        FrequentistConfig(alpha=alpha, difference_type="relative"))
    rel_r = rel.compute_result()
    ab = TwoSidedTTest(*make_stats(),
                       FrequentistConfig(alpha=alpha, difference_type="absolute"))
    ab_r = ab.compute_result()
    bay = EffectBayesianABTest(
        *make_stats(),
        EffectBayesianConfig(alpha=alpha, inverse=not settings["higher_is_better"])
    ).compute_result()
    want = {
        "abs_reason": abs_reason,
        "rel_reason": rel_reason,
        "gbstats_error": rel_r.error_message,
        "gbstats_abs_error": ab_r.error_message,
        "gbstats_bayes_error": bay.error_message,
    }
    if ab_r.error_message is None and abs_reason is None:
        want["abs_effect"] = fnum(ab_r.expected)
        want["abs_ci"] = [fnum(x) for x in ab_r.ci]
        want["abs_p_value"] = fnum(ab_r.p_value)
        want["abs_dof"] = fnum(ab.dof)
        # Cross-check: scipy's Welch test from the same summary statistics (the
        # statistics as the test holds them: adjusted, for CUPED).
        sa, sb = ab.stat_a, ab.stat_b
        sp = stats.ttest_ind_from_stats(
            sb.mean, math.sqrt(sb.variance), sb.n, sa.mean, math.sqrt(sa.variance), sa.n,
            equal_var=False,
        )
        assert math.isclose(sp.pvalue, ab_r.p_value, rel_tol=1e-9, abs_tol=1e-15), name
    if rel_r.error_message is None and rel_reason is None:
        want["rel_effect"] = fnum(rel_r.expected)
        want["rel_ci"] = [fnum(x) for x in rel_r.ci]
        want["p_value"] = fnum(rel_r.p_value)
        want["rel_stddev"] = fnum(rel_r.uplift.stddev)
        want["significant"] = bool(rel_r.p_value < alpha)
        seq = {}
        for n_star in SEQ_TUNINGS:
            s = SequentialTwoSidedTTest(
                *make_stats(),
                SequentialConfig(alpha=alpha, sequential_tuning_parameter=n_star)
            ).compute_result()
            seq[str(int(n_star))] = {
                "seq_rel_ci": [fnum(x) for x in s.ci],
                "seq_p_value": fnum(s.p_value),
            }
        want["sequential"] = seq
        assert bay.error_message is None, name
        want["chance_to_win"] = fnum(bay.chance_to_win)
        want["risk"] = fnum(bay.risk[1])
        want["risk_control"] = fnum(bay.risk[0])
        want["credible_interval"] = [fnum(x) for x in bay.ci]
    return want


# --- ratio.json -------------------------------------------------------------------


def paired_arm(x, y):
    """Sufficient statistics of per-user pairs (x, y), as src/stats' PairedMoments."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return {"n": int(x.size), "sum_x": float(x.sum()), "sum_squares_x": float((x * x).sum()),
            "sum_y": float(y.sum()), "sum_squares_y": float((y * y).sum()),
            "sum_products": float((x * y).sum())}


def paired_arm_from_moments(n, mean_x, var_x, mean_y, var_y, cov):
    """Sufficient statistics of n pairs with these means, sample variances, covariance."""
    sx, sy = mean_x * n, mean_y * n
    return {"n": int(n), "sum_x": sx, "sum_squares_x": var_x * (n - 1) + sx * sx / n,
            "sum_y": sy, "sum_squares_y": var_y * (n - 1) + sy * sy / n,
            "sum_products": cov * (n - 1) + sx * sy / n}


def side(arm, axis):
    """The plain moments of one side ("x" or "y") of a paired arm."""
    return {"n": arm["n"], "sum": arm[f"sum_{axis}"], "sum_squares": arm[f"sum_squares_{axis}"]}


def ratio_stat(num_type, den_type, arm):
    return RatioStatistic(
        n=arm["n"],
        m_statistic=gb_stat(num_type, side(arm, "x")),
        d_statistic=gb_stat(den_type, side(arm, "y")),
        m_d_sum_of_products=arm["sum_products"],
    )


def stat_reasons(sa, sb):
    """(absolute, relative) reason from gbstats statistics, in src/stats' order: zero
    baseline (relative only; adjusted or unadjusted mean), then zero variance."""
    abs_reason = "ZERO_NEGATIVE_VARIANCE" if sa.variance <= 0 or sb.variance <= 0 else None
    baseline_zero = sa.mean == 0 or sa.unadjusted_mean == 0
    return abs_reason, "ZERO_NEGATIVE_BASELINE_VARIATION" if baseline_zero else abs_reason


def ratio_experiments():
    """(name, numerator type, denominator type, arms, settings, raw pairs or None)."""
    rng = np.random.default_rng(20240612)
    d = {"alpha": 0.05, "higher_is_better": True}
    out = []

    def orders_revenue(n, rate, aov_mu):
        orders = rng.poisson(rate, n)
        revenue = np.array([rng.lognormal(aov_mu, 0.8, k).sum() for k in orders])
        return np.round(revenue, 2), orders

    def sessions_orders(n, p):
        sessions = 1 + rng.poisson(3.0, n)
        return rng.binomial(sessions, p), sessions

    def add(name, num, den, pairs, settings=d):
        out.append((name, num, den, [paired_arm(x, y) for x, y in pairs], settings, pairs))

    add("revenue_per_order_3arm", "mean", "mean",
        [orders_revenue(3000, 0.4, 3.5), orders_revenue(3000, 0.4, 3.56),
         orders_revenue(2950, 0.42, 3.45)])
    add("orders_per_session", "mean", "mean",
        [sessions_orders(5000, 0.05), sessions_orders(5000, 0.056)])
    # Numerator a 0/1 conversion metric (ProportionStatistic), denominator a count.
    conv = []
    for p in [0.10, 0.115]:
        sessions = 1 + rng.poisson(2.0, 4000)
        conv.append(((rng.random(4000) < p * np.sqrt(sessions)).astype(float), sessions))
    add("conversions_per_session", "proportion", "mean", conv)
    # Denominator a 0/1 conversion metric: revenue per buyer.
    buyers = []
    for mu in [3.0, 3.08]:
        bought = rng.random(3000) < 0.09
        buyers.append((np.where(bought, np.round(rng.lognormal(mu, 1.1, 3000), 2), 0.0),
                       bought.astype(float)))
    add("revenue_per_buyer", "mean", "proportion", buyers)
    # Profit per order can be negative.
    profit = []
    for shift in [0.5, 1.5]:
        orders = rng.poisson(0.8, 1500)
        profit.append((np.round(orders * rng.normal(shift, 6.0, 1500), 2), orders))
    add("profit_per_order_negative", "mean", "mean", profit)
    add("cost_per_conversion_lower_is_better_alpha10", "mean", "mean",
        [(np.round(rng.gamma(2.0, 5.0, 2500), 2), rng.poisson(0.3, 2500)),
         (np.round(rng.gamma(2.0, 5.0, 2500), 2), rng.poisson(0.33, 2500))],
        {"alpha": 0.10, "higher_is_better": False})
    add("ratio_tiny_n10", "mean", "mean",
        [(np.array([0, 12.5, 3, 0, 0, 8, 1, 0, 4, 2.5]),
          np.array([0, 2, 1, 0, 1, 2, 1, 0, 1, 1])),
         (np.array([5, 0, 0, 9, 2, 0, 7.5, 1, 0, 3]),
          np.array([1, 0, 1, 2, 1, 0, 2, 1, 0, 1]))])
    out.append(("ratio_huge_n1e8", "mean", "mean",
                [paired_arm_from_moments(100_000_000, 2.0, 30.0, 0.5, 0.6, 3.0),
                 paired_arm_from_moments(100_010_000, 2.002, 30.5, 0.5001, 0.6, 3.05)],
                d, None))
    # Degenerate inputs.
    add("degenerate_n1", "mean", "mean",
        [(np.array([4.0]), np.array([1.0])),
         (np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 2.0]))])
    add("degenerate_zero_denominator_control", "mean", "mean",
        [(np.zeros(20), np.zeros(20)), (np.arange(20.0), np.arange(20) % 3)])
    add("degenerate_zero_denominator_treatment", "mean", "mean",
        [(np.arange(20.0), np.arange(20) % 3), (np.zeros(20), np.zeros(20))])
    add("degenerate_zero_numerator_control", "mean", "mean",
        [(np.zeros(30), np.arange(30) % 4), (np.arange(30.0), np.arange(30) % 4)])
    return out


def check_ratio_variance(name, num_type, den_type, stat, pairs):
    """Cross-check gbstats' delta-method variance: for sample-mean components it is the
    sample variance of x - R*y over mean(y)^2, R = sum(x)/sum(y)."""
    if pairs is None or num_type != "mean" or den_type != "mean" or stat.n < 2:
        return
    x, y = (np.asarray(v, dtype=float) for v in pairs)
    if y.sum() == 0:
        return
    direct = np.var(x - x.sum() / y.sum() * y, ddof=1) / y.mean() ** 2
    assert math.isclose(direct, stat.variance, rel_tol=1e-9, abs_tol=1e-15), name


def ratio_cases():
    cases = []
    for name, num, den, arms, settings, raw in ratio_experiments():
        c = arms[0]
        for i, t in enumerate(arms[1:], start=1):
            sa, sb = ratio_stat(num, den, c), ratio_stat(num, den, t)
            if raw is not None:
                check_ratio_variance(name, num, den, sa, raw[0])
                check_ratio_variance(name, num, den, sb, raw[i])
            if c["n"] < 2 or t["n"] < 2:
                reasons = ("TOO_FEW_UNITS", "TOO_FEW_UNITS")
            elif c["sum_y"] == 0 or t["sum_y"] == 0:
                reasons = ("ZERO_DENOMINATOR", "ZERO_DENOMINATOR")
            else:
                reasons = stat_reasons(sa, sb)
            want = comparison_want(
                name, lambda: (ratio_stat(num, den, c), ratio_stat(num, den, t)), settings,
                *reasons)
            cases.append({
                "name": f"{name}/variant{i}",
                "numerator_type": num,
                "denominator_type": den,
                "settings": settings,
                "control": c,
                "treatment": t,
                "want": want,
            })
    return cases


# --- cuped.json -------------------------------------------------------------------


def cuped_stat(metric_type, arm):
    return RegressionAdjustedStatistic(
        n=arm["n"],
        post_statistic=gb_stat(metric_type, side(arm, "x")),
        pre_statistic=gb_stat(metric_type, side(arm, "y")),
        post_pre_sum_of_products=arm["sum_products"],
        theta=0,  # set by gbstats' tests from compute_theta
    )


def cuped_experiments():
    """(name, metric type, arms, settings, raw pairs or None); x is the metric after
    exposure, y its value over the lookback window before it."""
    rng = np.random.default_rng(20240614)
    d = {"alpha": 0.05, "higher_is_better": True}
    out = []

    def add(name, metric_type, pairs, settings=d):
        out.append((name, metric_type, [paired_arm(x, y) for x, y in pairs], settings, pairs))

    def revenue(n, lift):
        rate = rng.gamma(0.5, 1.0, n)  # a user's propensity to buy, in both periods
        spend = lambda k: np.array([rng.lognormal(3.0, 0.9, j).sum() for j in k])  # noqa: E731
        pre, post = rng.poisson(rate), rng.poisson(rate * lift)
        return np.round(spend(post), 2), np.round(spend(pre), 2)

    add("revenue_3arm", "mean", [revenue(4000, 1.0), revenue(4000, 1.04), revenue(3900, 0.97)])

    def conversion(n, lift):
        p = rng.beta(0.3, 3.0, n)
        return ((rng.random(n) < p * lift).astype(float), (rng.random(n) < p).astype(float))

    add("conversion", "proportion", [conversion(5000, 1.0), conversion(5000, 1.08)])

    def count(n, lift):
        rate = rng.gamma(2.0, 1.0, n)
        return rng.poisson(rate * lift), rng.poisson(rate)

    add("count_lower_is_better_alpha01", "mean", [count(3000, 1.0), count(3000, 0.96)],
        {"alpha": 0.01, "higher_is_better": False})
    # A covariate unrelated to the metric: θ near 0, no reduction (or a slight loss).
    add("weak_covariate", "mean",
        [(rng.poisson(2.0, 2000), rng.poisson(2.0, 2000)),
         (rng.poisson(2.1, 2000), rng.poisson(2.0, 2000))])

    def normal(n, shift):
        pre = rng.normal(-0.5, 2.0, n)
        return 0.6 * pre + rng.normal(shift, 1.6, n), pre

    add("negative_values", "mean", [normal(300, -0.2), normal(320, 0.1)])
    add("cuped_tiny_n10", "mean",
        [(np.array([0, 12.5, 3, 0, 0, 8, 1, 0, 4, 2.5]),
          np.array([1, 10, 0, 0, 2, 5, 1, 0, 6, 2])),
         (np.array([5, 0, 0, 9, 2, 0, 7.5, 1, 0, 3]),
          np.array([4, 0, 1, 7, 2, 0, 5, 0, 0, 3]))])
    out.append(("cuped_huge_n1e8", "mean",
                [paired_arm_from_moments(100_000_000, 1.7, 25.0, 1.6, 24.0, 15.0),
                 paired_arm_from_moments(99_990_000, 1.7003, 25.2, 1.6001, 24.0, 15.1)],
                d, None))
    # The treatment's users are all new (no pre-exposure activity), the control's not.
    add("treatment_all_new_users", "mean",
        [revenue(1500, 1.0), (revenue(1500, 1.0)[0], np.zeros(1500))])
    # Degenerate inputs: θ undefined, so gbstats (and src/stats) analyse unadjusted.
    add("all_new_users_zero_covariate", "mean",
        [(revenue(1500, 1.0)[0], np.zeros(1500)), (revenue(1500, 1.05)[0], np.zeros(1500))])
    add("constant_covariate", "mean",
        [(rng.poisson(2.0, 800), np.ones(800)), (rng.poisson(2.2, 800), np.ones(800))])
    add("degenerate_n1", "mean",
        [(np.array([4.0]), np.array([3.0])),
         (np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]))])
    add("degenerate_constant_metric", "mean",
        [(np.full(40, 3.0), np.arange(40.0)), (np.full(35, 3.0), np.arange(35.0))])
    return out


def check_cuped(name, metric_type, test, pairs):
    """Cross-checks for a sample-mean metric with raw values: gbstats' theta is the
    slope of the pooled least-squares fit of x on y, and an arm's adjusted variance is
    the sample variance of x - theta*y."""
    reverted = not isinstance(test.stat_a, RegressionAdjustedStatistic)
    too_few = min(test.stat_a.n, test.stat_b.n) < 2
    if pairs is None or metric_type != "mean" or reverted or too_few:
        return
    x = np.concatenate([np.asarray(p[0], dtype=float) for p in pairs])
    y = np.concatenate([np.asarray(p[1], dtype=float) for p in pairs])
    theta = test.stat_a.theta
    assert math.isclose(np.polyfit(y, x, 1)[0], theta, rel_tol=1e-9, abs_tol=1e-12), name
    for stat, (xa, ya) in zip([test.stat_a, test.stat_b], pairs):
        direct = np.var(np.asarray(xa, float) - theta * np.asarray(ya, float), ddof=1)
        assert math.isclose(direct, stat.variance, rel_tol=1e-9), name


def cuped_case(name, metric_type, c, t, settings, pairs):
    make = lambda: (cuped_stat(metric_type, c), cuped_stat(metric_type, t))  # noqa: E731
    joint = lambda axis: gb_stat(metric_type, {  # noqa: E731
        k: side(c, axis)[k] + side(t, axis)[k] for k in ["n", "sum", "sum_squares"]})
    gb_theta = compute_theta(*make())
    if joint("x").variance <= 0:
        theta_reason = "ZERO_NEGATIVE_VARIANCE"
    elif joint("y").variance <= 0:
        theta_reason = "ZERO_COVARIATE_VARIANCE"
    else:
        theta_reason = None
    adjusted = TwoSidedTTest(*make(), FrequentistConfig(difference_type="relative"))
    check_cuped(name, metric_type, adjusted, pairs)
    unadjusted = TwoSidedTTest(gb_stat(metric_type, side(c, "x")),
                               gb_stat(metric_type, side(t, "x")),
                               FrequentistConfig(difference_type="relative"))
    if c["n"] < 2 or t["n"] < 2:
        reasons = unadjusted_rel_reason = ("TOO_FEW_UNITS", "TOO_FEW_UNITS")
    else:
        # The statistics as gbstats' test holds them: theta set, or reverted to the
        # unadjusted ones where theta is 0.
        reasons = stat_reasons(adjusted.stat_a, adjusted.stat_b)
        unadjusted_rel_reason = stat_reasons(unadjusted.stat_a, unadjusted.stat_b)
    want = comparison_want(name, make, settings, *reasons)
    cuped_reason = theta_reason or reasons[1] or unadjusted_rel_reason[1]
    want["theta"] = None if theta_reason else fnum(gb_theta)
    want["variance_reduction"] = (
        None if cuped_reason else fnum(1 - adjusted.variance / unadjusted.variance))
    want["cuped_reason"] = cuped_reason
    want["gbstats_theta"] = fnum(gb_theta)
    return want


def cuped_cases():
    cases = []
    for name, metric_type, arms, settings, raw in cuped_experiments():
        c = arms[0]
        for i, t in enumerate(arms[1:], start=1):
            pairs = None if raw is None else [raw[0], raw[i]]
            cases.append({
                "name": f"{name}/variant{i}",
                "metric_type": metric_type,
                "settings": settings,
                "control": c,
                "treatment": t,
                "want": cuped_case(name, metric_type, c, t, settings, pairs),
            })
    return cases


# --- capped.json ------------------------------------------------------------------


def capped_cases():
    """Mean and count metrics whose per-user values are capped before the sums (API.md,
    "cap"): each case carries the raw per-user values, the cap, the capped moments
    and the comparison of the capped values, for end-to-end tests to replay."""
    rng = np.random.default_rng(20240615)
    d = {"alpha": 0.05, "higher_is_better": True}

    def revenue(n, mu, whales=0):
        v = np.where(rng.random(n) < 0.15, rng.lognormal(mu, 1.3, n), 0.0)
        v[rng.choice(n, whales, replace=False)] = rng.uniform(5000, 20000, whales)
        return np.round(v, 2)

    def events(n, rate, bots):
        v = rng.poisson(rate, n).astype(float)
        v[rng.choice(n, bots, replace=False)] = rng.integers(50, 300, bots)
        return v

    exps = [
        ("revenue_cap500", 500.0, [revenue(400, 4.5), revenue(400, 4.6)], d),
        ("revenue_cap500_3arm_whales", 500.0,
         [revenue(300, 4.4, 3), revenue(300, 4.5, 1), revenue(300, 4.4, 5)], d),
        ("count_cap5_bots", 5.0, [events(500, 1.2, 10), events(500, 1.3, 12)], d),
        ("cap_not_binding", 1000.0,
         [np.round(rng.gamma(2.0, 10.0, 250), 2), np.round(rng.gamma(2.0, 11.0, 250), 2)], d),
        ("cap1_binds_most_buyers", 1.0, [revenue(600, 2.0), revenue(600, 2.1)], d),
        ("tickets_cap3_lower_is_better_alpha10", 3.0,
         [events(450, 0.5, 5), events(450, 0.42, 4)],
         {"alpha": 0.10, "higher_is_better": False}),
    ]
    cases = []
    for name, cap, arms, settings in exps:
        capped = [arm_from_values(np.minimum(v, cap)) for v in arms]
        for i in range(1, len(arms)):
            case = compare_case(name, "mean", capped[0], capped[i], settings, i)
            case["cap"] = cap
            case["control_values"] = [float(x) for x in arms[0]]
            case["treatment_values"] = [float(x) for x in arms[i]]
            cases.append(case)
    return cases


# --- one_sided.json ---------------------------------------------------------------


def seq_rho(alpha, n_star, two_sided):
    # eq 161 in Waudby-Smith et al.; one-sided tests plug in 2 * alpha (GrowthBook).
    a = alpha if two_sided else 2 * alpha
    return math.sqrt((-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / n_star)


def seq_halfwidth_one_sided(s2, n, rho, alpha):
    # Transcribed from GrowthBook's sequentialIntervalHalfwidthOneSided (not in 0.8.0).
    part2 = 2 * (n * rho**2 + 1) / (n * rho) ** 2
    part3 = math.log(1 + math.sqrt(n * rho**2 + 1) / (2 * alpha))
    return math.sqrt(s2 * part2 * part3)


def seq_one_sided(pe, var, n, rho, alpha, lesser):
    s2 = var * n
    hw = seq_halfwidth_one_sided(s2, n, rho, alpha)
    bound = pe + hw if lesser else pe - hw

    def edge(a):
        h = seq_halfwidth_one_sided(s2, n, rho, a)
        return pe + h if lesser else pe - h

    # Exact p-value: the alpha at which the bound touches 0, capped at 1. The bound
    # moves monotonically toward 0 as alpha grows, so a root in log(alpha) is bracketed.
    toward = pe < 0 if lesser else pe > 0

    def far_side(x):  # bound still excludes the "treatment is lesser/greater" claim
        return x > 0 if lesser else x < 0

    if not toward:
        exact = 1.0
    else:
        f = lambda la: edge(math.exp(la))  # noqa: E731
        if far_side(f(0.0)):
            exact = 1.0
        elif not far_side(f(-700.0)):
            exact = 0.0
        else:
            exact = math.exp(optimize.brentq(f, -700.0, 0.0, xtol=1e-14, rtol=1e-15))

    # GrowthBook's bisection, for the record.
    lo_a, hi_a, tol = 1e-5, 0.4999, 1e-6
    if (edge(lo_a) < 0) if lesser else (edge(lo_a) > 0):
        bis = lo_a
    elif (edge(hi_a) > 0) if lesser else (edge(hi_a) < 0):
        bis = hi_a
    else:
        a = 0.5 * (lo_a + hi_a)
        bis = None
        for i in range(100):
            diff = edge(a)
            if (diff > 0) if lesser else (diff < 0):
                lo_a = a
            else:
                hi_a = a
            a = 0.5 * (lo_a + hi_a)
            if abs(diff) < tol:
                bis = a
                break
    return bound, exact, bis


def one_sided_cases(exps):
    cases = []
    for name, metric_type, arms, _w, settings in exps:
        if name.startswith("degenerate"):
            continue
        c = arms[0]
        for i, t in enumerate(arms[1:], start=1):
            alpha = settings["alpha"]
            sa, sb = gb_stat(metric_type, c), gb_stat(metric_type, t)
            for diff_type in ["relative", "absolute"]:
                cfg = FrequentistConfig(alpha=alpha, difference_type=diff_type)
                lesser = OneSidedTreatmentLesserTTest(sa, sb, cfg)
                greater = OneSidedTreatmentGreaterTTest(sa, sb, cfg)
                lr, gr = lesser.compute_result(), greater.compute_result()
                pe, var, dof = lesser.point_estimate, lesser.variance, lesser.dof
                width = stats.t.ppf(1 - alpha, dof) * math.sqrt(var)
                want = {
                    "effect": fnum(pe),
                    "lesser_p_value": fnum(lr.p_value),
                    "lesser_upper": fnum(pe + width),
                    "greater_p_value": fnum(gr.p_value),
                    "greater_lower": fnum(gr.ci[0]),
                    "sequential": {},
                }
                n = c["n"] + t["n"]
                for n_star in SEQ_TUNINGS:
                    rho = seq_rho(alpha, n_star, two_sided=False)
                    lb, lp, lbis = seq_one_sided(pe, var, n, rho, alpha, lesser=True)
                    gb, gp, gbis = seq_one_sided(pe, var, n, rho, alpha, lesser=False)
                    want["sequential"][str(int(n_star))] = {
                        "lesser_upper": fnum(lb),
                        "lesser_p_value": fnum(lp),
                        "lesser_p_value_growthbook_bisection": lbis,
                        "greater_lower": fnum(gb),
                        "greater_p_value": fnum(gp),
                        "greater_p_value_growthbook_bisection": gbis,
                    }
                cases.append({
                    "name": f"{name}/variant{i}/{diff_type}",
                    "metric_type": metric_type,
                    "difference": diff_type,
                    "settings": settings,
                    "control": c,
                    "treatment": t,
                    "want": want,
                })
    return cases


# --- srm.json, correction.json, power.json ----------------------------------------


def srm_case(name, users, weights):
    total_w = sum(weights)
    expected = [w / total_w * sum(users) for w in weights]
    sp = stats.chisquare(users, expected)
    gb = check_srm(users, weights)
    assert math.isclose(sp.pvalue, gb, rel_tol=1e-12, abs_tol=1e-300), name
    return {"name": name, "users": users, "weights": weights,
            "want": {"p_value": fnum(sp.pvalue), "ok": bool(sp.pvalue >= 0.001),
                     "statistic": fnum(sp.statistic)}}


def srm_cases(exps):
    cases = [srm_case(n, [a["n"] for a in arms], [float(w) for w in ws])
             for n, _m, arms, ws, _s in exps if all(a["n"] > 0 for a in arms)]
    cases += [
        srm_case("balanced_exact", [5000, 5000], [1.0, 1.0]),
        srm_case("api_example", [5012, 4988], [0.5, 0.5]),
        srm_case("tiny", [7, 3], [0.5, 0.5]),
        srm_case("strong_mismatch", [5300, 4700], [0.5, 0.5]),
        srm_case("huge_slight", [500_100_000, 499_900_000], [0.5, 0.5]),
        srm_case("five_arms_uneven_weights", [1010, 2050, 2950, 980, 3010],
                 [0.1, 0.2, 0.3, 0.1, 0.3]),
        srm_case("extreme_mismatch", [9000, 1000], [0.5, 0.5]),
    ]
    return cases


def correction_cases(compare):
    lists = {
        "statsmodels_doc_like": [0.01, 0.02, 0.03, 0.04, 0.05],
        "with_ties": [0.001, 0.02, 0.02, 0.5, 0.02, 1.0],
        "single": [0.03],
        "empty": [],
        "tiny_and_large": [1e-12, 0.9, 0.2, 0.049, 0.0011, 0.7, 0.3],
        "all_ones": [1.0, 1.0, 1.0],
        "zero": [0.0, 0.5],
    }
    by_exp = {}
    for case in compare:
        if "p_value" in case["want"]:
            by_exp.setdefault(case["name"].split("/")[0], []).append(case["want"]["p_value"])
            by_exp.setdefault("all_metrics_x_variants", []).append(case["want"]["p_value"])
    lists.update({f"experiment_{k}": v for k, v in by_exp.items() if len(v) > 1})
    out = []
    for name, ps in lists.items():
        if ps:
            holm = multipletests(ps, method="holm")[1].tolist()
            bh = multipletests(ps, method="fdr_bh")[1].tolist()
        else:
            holm, bh = [], []
        out.append({"name": name, "p_values": ps, "want": {"holm": holm, "fdr_bh": bh}})
    return out


def power_cases():
    power = NormalIndPower()
    out = []
    baselines = [
        ("conversion_10pct", 0.10, 0.10 * 0.90),
        ("conversion_1pct", 0.01, 0.01 * 0.99),
        ("conversion_50pct", 0.50, 0.25),
        ("revenue_heavy_tail", 4.2, 38.0**2),
        ("count", 2.0, 2.0),
    ]
    for bname, mean, var in baselines:
        for mde in [0.01, 0.05, 0.2]:
            for variants in [2, 3, 5]:
                for alpha, pw in [(0.05, 0.8), (0.01, 0.9)]:
                    a = alpha / (variants - 1)
                    d = mde * abs(mean) / math.sqrt(var)
                    n_sm = power.solve_power(effect_size=d, nobs1=None, alpha=a, power=pw,
                                             ratio=1.0, alternative="two-sided")
                    n_sm = float(np.asarray(n_sm).item())
                    # statsmodels' solve_power stops early (its effect-size answers are
                    # off by up to ~1e-3 relative), so the values compared at 1e-6 are
                    # roots of the same NormalIndPower.power found with a tight brentq.
                    z = stats.norm.isf(a / 2) + stats.norm.ppf(pw)
                    n = optimize.brentq(
                        lambda x: power.power(d, x, a, ratio=1.0) - pw,
                        1e-9, 2 * (z / d) ** 2 * 1.01 + 10, xtol=1e-12, rtol=1e-15)
                    assert math.isclose(n, n_sm, rel_tol=1e-4), (n, n_sm)
                    # Power and MDE at a round sample size near the answer.
                    n_round = float(max(10, round(n, -1)))
                    achieved = float(power.power(d, n_round, a, ratio=1.0,
                                                 alternative="two-sided"))
                    d_sm = power.solve_power(effect_size=None, nobs1=n_round, alpha=a,
                                             power=pw, ratio=1.0, alternative="two-sided")
                    d_sm = float(np.asarray(d_sm).item())
                    d_at = optimize.brentq(
                        lambda x: power.power(x, n_round, a, ratio=1.0) - pw,
                        1e-12, z / math.sqrt(n_round / 2) * 1.01, xtol=1e-15, rtol=1e-15)
                    assert math.isclose(d_at, d_sm, rel_tol=1e-2), (d_at, d_sm)
                    out.append({
                        "name": f"{bname}/mde{mde}/v{variants}/a{alpha}/p{pw}",
                        "baseline": {"mean": mean, "variance": var},
                        "mde_relative": mde, "alpha": alpha, "power": pw,
                        "variants": variants,
                        "want": {
                            "sample_size_per_variant": fnum(n),
                            "n_round": n_round,
                            "power_at_n_round": fnum(achieved),
                            "mde_relative_at_n_round": fnum(d_at * math.sqrt(var) / abs(mean)),
                            "statsmodels_solve_power_sample_size": n_sm,
                            "statsmodels_solve_power_mde_relative":
                                d_sm * math.sqrt(var) / abs(mean),
                        },
                    })
    return out


def write(name, note, cases):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump({"header": {**HEADER, "note": note, "cases": len(cases)}, "cases": cases},
                  f, indent=1, sort_keys=False, allow_nan=False)
        f.write("\n")
    print(f"{path}: {len(cases)} cases", file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    exps = experiments()
    compare = []
    for name, metric_type, arms, _w, settings in exps:
        for i, t in enumerate(arms[1:], start=1):
            compare.append(compare_case(name, metric_type, arms[0], t, settings, i))
    write("compare.json",
          "gbstats TwoSidedTTest (relative, absolute), SequentialTwoSidedTTest per N*, "
          "EffectBayesianABTest (flat prior); risk = gbstats risk[1] (choosing treatment), "
          "risk_control = risk[0]; both already flipped by gbstats for lower-is-better",
          compare)
    write("one_sided.json",
          "fixed horizon: gbstats OneSidedTreatment{Lesser,Greater}TTest p-values, bounds "
          "from scipy t.ppf; sequential: GrowthBook's later one-sided half width, p-value "
          "solved exactly with brentq (bisection value recorded, not compared at 1e-6)",
          one_sided_cases(exps))
    write("srm.json", "scipy.stats.chisquare (equal to gbstats.utils.check_srm)",
          srm_cases(exps))
    write("correction.json", "statsmodels multipletests holm and fdr_bh",
          correction_cases(compare))
    write("ratio.json",
          "gbstats RatioStatistic (delta-method variance with the numerator-denominator "
          "covariance) in TwoSidedTTest (relative, absolute), SequentialTwoSidedTTest per "
          "N*, EffectBayesianABTest (flat prior); arms are PairedMoments with x the "
          "numerator, y the denominator",
          ratio_cases())
    write("cuped.json",
          "gbstats RegressionAdjustedStatistic with theta from compute_theta (both arms "
          "pooled; 0 reverts to unadjusted) in the same tests as compare.json; x the "
          "metric, y its pre-exposure covariate; variance_reduction = 1 - adjusted / "
          "unadjusted TwoSidedTTest relative variance (API.md; gbstats has no such "
          "figure); theta and variance_reduction are null, with cuped_reason, where "
          "src/stats reports them undefined; gbstats_theta is compute_theta's value",
          cuped_cases())
    write("capped.json",
          "gbstats SampleMeanStatistic on per-user values capped at `cap` "
          "(numpy.minimum), in the same tests as compare.json; the raw values are "
          "*_values",
          capped_cases())
    write("power.json",
          "statsmodels NormalIndPower(ratio=1, two-sided), alpha Bonferroni-split over "
          "variants - 1 comparisons, effect size = mde_relative * |mean| / sqrt(variance)",
          power_cases())


if __name__ == "__main__":
    main()
