"""flowprior's enhanced run against cobaya's MCMC on a cobaya ΛCDM model: camb and a mock CMB temperature likelihood.

The model is stated the way cobaya states it: camb as the theory code (at
low accuracy, so a call takes a few hundredths of a second), five ΛCDM
parameters with uniform priors (ombh2, omch2, theta_MC_100, logA, ns; tau
fixed; As, H0 and omegam derived), and a mock temperature likelihood, a
cobaya likelihood class that requests C_ℓ^TT from camb: a Gaussian in each
C_ℓ, ℓ = 2..lmax, with the Knox variance of an experiment with white noise,
a Gaussian beam and a sky fraction.  The mock data are the fiducial
spectrum itself (computed once with the same camb settings), so the
posterior sits around the fiducial parameters.  The default lmax is 700:
temperature alone up to ℓ ~ 200 leaves these five parameters nearly
degenerate; to 700, with the noise here, each is measured to a few times
Planck's error bar and the posterior stays well inside the priors.

The same input is run (a) through flowprior's enhanced run with dynesty
(``flowprior.integrations.cobaya.enhanced_run``: a low-resolution run, a
flow trained on its posterior, a high-resolution run with the flow as prior
and the likelihood repartitioned) and (b) through cobaya's own MCMC
(``cobaya.run``, stopping at Gelman-Rubin R-1 < ``--rminus1``).  It prints,
for each sampled parameter and two derived ones, both runs' means and
widths, their differences in units of the MCMC's σ and the Monte Carlo
error expected of that difference; then the likelihood calls (counted
inside the likelihood, the same way for both runs), camb's computations of
transfer functions (cobaya's timers), wall times and the enhanced run's
evidence.  cobaya's MCMC oversamples the fast parameters (logA, ns), whose
calls reuse camb's transfer functions, so its calls are cheaper on average
than the nested sampler's, every one of which moves all five parameters:
the transfer-function count and the wall times compare the costs.

    python demos/cobaya_lcdm.py [--nlive 500] [--seed 0] [--rminus1 0.01] [--outdir DIR]
    python demos/cobaya_lcdm.py --quick        # logA and ns only, lower nlive: a smoke test

Needs cobaya and camb (``pip install cobaya camb``).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from cobaya.likelihood import Likelihood

from flowprior.integrations import cobaya as fpc

#: Fiducial parameters, each sampled one's uniform prior (about ±6σ of this posterior) and LaTeX label.
FIDUCIAL = {"ombh2": 0.0224, "omch2": 0.120, "theta_MC_100": 1.0411, "logA": 3.045, "ns": 0.965}
PRIORS = {"ombh2": (0.018, 0.027), "omch2": (0.085, 0.155), "theta_MC_100": (1.022, 1.060),
          "logA": (2.95, 3.15), "ns": (0.85, 1.08)}
LATEX = {"ombh2": r"\Omega_\mathrm{b} h^2", "omch2": r"\Omega_\mathrm{c} h^2", "theta_MC_100": r"100\theta_\mathrm{MC}",
         "logA": r"\log(10^{10} A_\mathrm{s})", "ns": r"n_\mathrm{s}"}
#: Rough posterior widths: cobaya's starting proposal and the spread of the MCMC's starting point.
WIDTH = {"ombh2": 7e-4, "omch2": 5e-3, "theta_MC_100": 2.5e-3, "logA": 0.015, "ns": 0.02}
TAU = 0.055
DERIVED = ["H0", "omegam"]
#: --quick samples the fast parameters only (camb reuses its transfer functions); As is the derived one that varies.
QUICK_SAMPLED, QUICK_DERIVED = ["logA", "ns"], ["As"]
#: camb at low accuracy: no lensing, massless neutrinos, coarse ℓ and k sampling.  AccuracyBoost < 1
#: makes C_ℓ jump as the parameters move (steps of many units of log L); these settings keep it smooth.
CAMB_ACCURACY = {"lens_potential_accuracy": 0, "DoLensing": False, "num_massive_neutrinos": 0, "mnu": 0.0,
                 "lAccuracyBoost": 0.5, "Accuracy.SourcekAccuracyBoost": 0.6,
                 "Accuracy.AccuratePolarization": False, "Accuracy.AccurateReionization": False}
QUIET = 30  # cobaya's "debug": warnings and errors only


class MockTT(Likelihood):
    """A Gaussian in each C_ℓ^TT around ``cl_data``, with the Knox variance of a noisy experiment.

    Options: ``cl_data`` (µK², from ℓ = 0), ``lmax``, ``noise`` (white noise,
    µK-arcmin), ``beam`` (FWHM, arcmin) and ``fsky``.  ``MockTT.calls``
    counts the calls of :meth:`logp` of every instance, and
    ``MockTT.camb_runs`` holds the count of camb's transfer-function
    computations in the model of the latest call (cobaya's timer of camb's
    helper theory, ``"timing": True``): cobaya's camb computes the transfer
    functions (slow) and the spectra from them (fast) apart, and a call that
    changes only logA or ns reuses the transfer functions of the point before.
    """

    cl_data = None
    lmax: int = 700
    noise: float = 40.0
    beam: float = 20.0
    fsky: float = 0.3
    calls = 0
    camb_runs = 0

    def initialize(self):
        ell = np.arange(2, self.lmax + 1)
        self.data = np.asarray(self.cl_data, dtype=float)[2:self.lmax + 1]
        sigma_beam = np.radians(self.beam / 60) / np.sqrt(8 * np.log(2))
        noise_cl = np.radians(self.noise / 60) ** 2 * np.exp(ell * (ell + 1) * sigma_beam**2)
        self.var = 2 / ((2 * ell + 1) * self.fsky) * (self.data + noise_cl) ** 2

    def initialize_with_provider(self, provider):
        super().initialize_with_provider(provider)
        self.transfers = next(c for c in provider.model.components if c.get_name() == "camb.transfers")

    def get_requirements(self):
        return {"Cl": {"tt": self.lmax}}

    def logp(self, **params_values):
        MockTT.calls += 1
        MockTT.camb_runs = self.transfers.timer.n
        cl = self.provider.get_Cl(units="muK2")["tt"][2:self.lmax + 1]
        return -0.5 * float(np.sum((cl - self.data) ** 2 / self.var))


def params_block(sampled) -> dict:
    """cobaya's ``params``: ``sampled`` with uniform priors, the others fixed at the fiducial, tau fixed, derived."""
    params = {}
    for name, value in FIDUCIAL.items():
        params[name] = ({"prior": dict(zip(("min", "max"), PRIORS[name])), "proposal": WIDTH[name] / 2,
                         "ref": {"dist": "norm", "loc": value, "scale": WIDTH[name]}, "latex": LATEX[name]}
                        if name in sampled else {"value": value, "latex": LATEX[name]})
    params["theta_MC_100"]["drop"] = params["logA"]["drop"] = True  # camb reads cosmomc_theta and As
    params["cosmomc_theta"] = {"value": "lambda theta_MC_100: 1.e-2 * theta_MC_100", "derived": False}
    params["As"] = {"value": "lambda logA: 1.e-10 * np.exp(logA)", "latex": r"A_\mathrm{s}"}
    params["tau"] = TAU
    params["H0"] = {"latex": "H_0"}
    params["omegam"] = {"latex": r"\Omega_\mathrm{m}"}
    return params


def fiducial_cl(lmax: int) -> np.ndarray:
    """C_ℓ^TT (µK², ℓ = 0..lmax) at the fiducial parameters: camb through cobaya, with the model's settings."""
    from cobaya.model import get_model

    model = get_model({"likelihood": {"one": None}, "theory": {"camb": {"extra_args": CAMB_ACCURACY}},
                       "params": params_block(sampled=()), "debug": QUIET})
    model.add_requirements({"Cl": {"tt": lmax}})
    model.logposterior({})
    return model.provider.get_Cl(units="muK2")["tt"][:lmax + 1]


def model_info(sampled, lmax: int) -> dict:
    """The cobaya input both runs sample: camb, the mock likelihood at the fiducial spectrum, the parameters."""
    return {"theory": {"camb": {"extra_args": CAMB_ACCURACY}},
            "likelihood": {"mock_tt": {"external": MockTT, "cl_data": fiducial_cl(lmax), "lmax": lmax}},
            "params": params_block(sampled), "timing": True, "debug": QUIET}


def run_enhanced(info: dict, args) -> tuple:
    """flowprior's enhanced run of ``info`` with dynesty: (Result, (likelihood calls, camb runs), wall seconds)."""
    MockTT.calls = MockTT.camb_runs = 0
    t0 = time.perf_counter()
    outdir = os.path.join(args.outdir, "enhanced") if args.outdir else None
    res = fpc.enhanced_run(info, sampler="dynesty", nlive=args.nlive, seed=args.seed, outdir=outdir)
    seconds = time.perf_counter() - t0
    if args.outdir:
        fpc.write_chains(res, os.path.join(args.outdir, "enhanced_chains", "lcdm"))
    return res, (MockTT.calls, MockTT.camb_runs), seconds


def run_mcmc(info: dict, args) -> tuple:
    """cobaya's MCMC of ``info``: (getdist MCSamples without the first 30%, (calls, camb runs), wall seconds)."""
    import cobaya

    mcmc = {**info, "sampler": {"mcmc": {"Rminus1_stop": args.rminus1, "seed": args.seed}}}
    if args.outdir:
        mcmc.update(output=os.path.join(args.outdir, "mcmc", "lcdm"), force=True)
    MockTT.calls = MockTT.camb_runs = 0
    t0 = time.perf_counter()
    _, sampler = cobaya.run(mcmc)
    seconds = time.perf_counter() - t0
    return sampler.products(skip_samples=0.3, to_getdist=True)["sample"], (MockTT.calls, MockTT.camb_runs), seconds


def nested_stats(samples, names) -> tuple:
    """Weighted means, standard deviations and the effective sample size (Kish) of nested ``samples``."""
    frame = samples.drop_labels(axis=1) if samples.islabelled(axis=1) else samples
    w = np.asarray(frame.get_weights(), dtype=float)
    x = frame[names].to_numpy(dtype=float)
    mean = np.average(x, axis=0, weights=w)
    sd = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    return mean, sd, np.full(len(names), w.sum() ** 2 / np.sum(w**2))


def mcmc_stats(mcs, names) -> tuple:
    """Means, standard deviations and effective sample sizes (from the autocorrelation) of a getdist chain."""
    cols = [mcs.index[n] for n in names]
    w = mcs.weights
    x = mcs.samples[:, cols]
    mean = np.average(x, axis=0, weights=w)
    sd = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    return mean, sd, np.array([mcs.getEffectiveSamples(j) for j in cols])


def print_table(names, enh, mc) -> None:
    """Means and widths of both runs; their differences and the Monte Carlo error of the mean difference, in MCMC σ."""
    (m_e, s_e, n_e), (m_m, s_m, n_m) = enh, mc
    err = np.sqrt(1 / n_e + 1 / n_m)  # error of (mean_enhanced - mean_mcmc) / sigma
    print(f"{'parameter':13s} {'MCMC mean ± sd':>22s} {'enhanced mean ± sd':>22s} {'dmean/σ':>8s} {'dsd/σ':>7s} "
          f"{'MC err/σ':>8s} {'ESS mcmc':>8s} {'ESS enh':>8s}")
    for i, n in enumerate(names):
        print(f"{n:13s} {m_m[i]:11.5g} ± {s_m[i]:8.2g} {m_e[i]:11.5g} ± {s_e[i]:8.2g} "
              f"{(m_e[i] - m_m[i]) / s_m[i]:8.3f} {(s_e[i] - s_m[i]) / s_m[i]:7.3f} {err[i]:8.3f} "
              f"{n_m[i]:8.0f} {n_e[i]:8.0f}")
    dm, ds = np.abs(m_e - m_m) / s_m, np.abs(s_e - s_m) / s_m
    print(f"worst |dmean|/σ {dm.max():.3f}, worst |dsd|/σ {ds.max():.3f} (target 0.1; "
          f"Monte Carlo error of dmean up to {err.max():.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nlive", type=int, default=None, help="live points of the enhanced run (500; --quick 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lmax", type=int, default=700, help="highest multipole of the mock likelihood")
    ap.add_argument("--rminus1", type=float, default=0.01, help="cobaya MCMC's Rminus1_stop")
    ap.add_argument("--quick", action="store_true", help="sample logA and ns only, nlive 100: a smoke test")
    ap.add_argument("--outdir", default=None, help="write both runs' chains here (the enhanced run resumes)")
    args = ap.parse_args()
    args.nlive = args.nlive or (100 if args.quick else 500)
    sampled = QUICK_SAMPLED if args.quick else list(FIDUCIAL)
    info = model_info(sampled, args.lmax)

    res, calls_e, t_e = run_enhanced(info, args)
    mcs, calls_m, t_m = run_mcmc(info, args)

    names = sampled + (QUICK_DERIVED if args.quick else DERIVED)
    print(f"cobaya ΛCDM: camb (low accuracy) + mock C_ℓ^TT, ℓ = 2..{args.lmax}; sampled {sampled}, tau = {TAU}; "
          f"enhanced run: dynesty, nlive {args.nlive}, seed {args.seed}; MCMC: Rminus1_stop {args.rminus1}")
    print_table(names, nested_stats(res.samples, names), mcmc_stats(mcs, names))
    print()
    nc = res.ncall
    checks = f", and {nc['fingerprint']} checking --outdir" if nc.get("fingerprint") else ""
    print(f"{'run':9s} {'likelihood calls':>17s} {'camb transfers':>15s} {'wall s':>8s}")
    print(f"{'enhanced':9s} {calls_e[0]:17d} {calls_e[1]:15d} {t_e:8.1f}   (flowprior's count: low {nc['low']} + "
          f"check {nc['check']} + high {nc['high']} = {nc['total']}{checks}); "
          f"logZ = {res.logZ:.3f} ± {res.logZerr:.3f}")
    print(f"{'MCMC':9s} {calls_m[0]:17d} {calls_m[1]:15d} {t_m:8.1f}   ({mcs.numrows} rows kept after 30% burn-in)")
    print(f"enhanced / MCMC: likelihood calls {calls_e[0] / calls_m[0]:.2f}, camb transfers "
          f"{calls_e[1] / calls_m[1]:.2f}, wall time {t_e / t_m:.2f}")


if __name__ == "__main__":
    main()
