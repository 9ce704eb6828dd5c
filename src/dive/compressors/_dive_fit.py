"""Torch side of DIVE's fit (imported only when fitting; see `dive.compressors.dive`).

One fit is one idea: a model (`DiveNet`, `dive.compressors._dive_net`), a step's loss
(`Run`, `dive.compressors._dive_run`) and a number of steps, with the choices this module makes
through `dive.training.selection` on every labelled query:
1. the start: PCA axes with mu = 0, or the corpus mean when that ranks the labelled queries
   better by at least `min_gain_z` standard errors (neither start saw them, so all of them
   score both honestly);
2. the arm and its length: every arm of the grid trains from the start once per fold, on the
   other folds (cross-fitting over the pooled training and validation queries, or the
   validation set alone as a holdout when it holds `holdout_min` queries or more), and its
   checkpoints are scored on the queries it did not see; a leading arm still rising at its
   last check runs on (doubling, up to `max_steps`); the best (arm, step) is kept only if
   its paired per-query gain over the start is at least `min_gain_z` standard errors (or,
   with `nested_gain`, the gain of a choice made without each query);
3. the kept model: after a cross-fitted choice, the mean weights of the kept arm's fold runs
   at the kept step (`soup`; each run keeps its weights at its arm's best check so far);
   after a holdout choice (or with `soup=False`) a refit of the kept arm on every labelled
   query for the kept number of steps (the label-reading arms' refits train ahead, during
   the race, on workers it leaves idle; the model is bit for bit the same); with `shrink` its
   weights move only 1 - 1/z^2 of the way from the start; or, without real evidence of a
   gain, the fit returns the start itself, as it does when the kept model (not the one the
   choice scored) scores below the start on the queries the choice was made on.
Left out: GPUs and mixed precision (CPU fits of seconds), learned centres (mu is fixed at its
start value), early stopping inside a run (every fold must check at the same steps; runs are
extended across folds in lockstep instead).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import torch

from dive.compressors._dive_net import DiveNet, initial_heads, state_of
from dive.compressors._dive_run import FitContext, Run, pooled_labels
from dive.compressors.base import PROGRESS_LOGGER, FitSummary, Summarise, TrainingData
from dive.compressors.dive import Arm, DiveConfig
from dive.compressors.pca import principal_axes_and_variances, settle_null_axes
from dive.compressors.runtime import Runtime
from dive.training.gate import log_rank_scores
from dive.training.labels import Labels
from dive.training.seeding import seeded
from dive.training.selection import Choice, Curve, Folds, choose, out_of_fold, shrinkage

logger = logging.getLogger(__name__)
progress = logging.getLogger(PROGRESS_LOGGER)  # a line per stage of a fit (`dive fit` shows it)


def fit_dive(
    corpus: np.ndarray, train: TrainingData | None, *, dim: int, seed: int, config: DiveConfig,
    name: str = "dive",
) -> tuple[Runtime, dict[str, Any], Summarise]:
    """Fit DIVE; return its runtime, the diagnostics for the results record and its typed
    summary given the fit's seconds. `name` (the registered method: dive, dive-plus) starts
    each progress line."""
    with seeded(seed, threads=config.threads) as rng:
        return _fit(corpus, train, dim, seed, config, rng, name)


def _folds(n: int, validation_rows: np.ndarray, seed: int, config: DiveConfig) -> Folds:
    """A validation set of `holdout_min`+ queries is trusted alone; else cross-fit on all."""
    if validation_rows.size >= config.holdout_min and validation_rows.size < n:
        return Folds.holdout(n, validation_rows)
    return Folds.cross_fit(n, config.folds, seed)


@dataclass
class _Start:
    """The chosen start: its centre, its corpus outputs and every candidate's label scores."""

    name: str
    center: np.ndarray
    corpus_z: np.ndarray
    scores: dict[str, np.ndarray]  # per labelled query, for each start tried (empty: no labels)


def _choose_start(
    fit: FitContext, heads: np.ndarray, mean: np.ndarray, labels: Labels | None
) -> tuple[_Start, Choice | None]:
    """PCA axes with mu = 0, or the corpus mean where the labelled queries show it is better.

    Uncentred is the default start (SPEC 4.5); centred replaces it only when its paired
    per-query gain in nDCG@`start_depth` (10 by default; the arms are always scored at 10),
    or with `start_score="log-rank"` in mean -log(rank) of the relevant documents
    (`log_rank_scores`), on every labelled query is at least `min_gain_z` standard errors, the
    rule that also guards every trained arm (neither start saw the labels, so all of them
    score both honestly). Returns the start and the evidence (None: nothing was compared).
    """
    centers = {"uncentered": np.zeros_like(mean), "centered": mean}
    names = ["uncentered", "centered"] if fit.config.start == "select" else [fit.config.start]
    if not fit.config.select:  # nothing chosen on the labels: the default start, as recorded
        names = names[:1]
    corpus_z: dict[str, np.ndarray] = {}
    scores: dict[str, np.ndarray] = {}  # nDCG@10, recorded (the race's base)
    compared: dict[str, np.ndarray] = {}  # what the choice reads (`start_score`)
    depth = fit.config.start_depth
    for name in names:
        candidate = fit.new_net(heads, centers[name])
        corpus_z[name] = candidate.encode(fit.corpus)
        if labels is not None:
            scores[name] = fit.scores(candidate, corpus_z[name], labels)
            if fit.config.start_score == "log-rank":
                compared[name] = log_rank_scores(candidate.encode(labels.embeddings),
                                                 corpus_z[name], labels.relevant, labels.exclude)
            elif depth == 10:
                compared[name] = scores[name]
            else:
                compared[name] = fit.scores(candidate, corpus_z[name], labels, depth)
    name, choice = names[0], None
    if len(compared) == 2:
        centred = Curve((0,), compared["centered"][None])
        choice = choose(compared["uncentered"], [centred], fit.config.min_gain_z)
        name = "centered" if choice.candidate == 0 else "uncentered"
    return _Start(name, centers[name], corpus_z[name], scores), choice


class _Race:
    """Every arm of the grid trained from the start once per fold, resumable per arm.

    `curves()` gives each arm's held-out curve (`dive.training.selection.out_of_fold`) at its
    current horizon; `extend(arm, steps)` lets that arm's runs go on from where they stopped.
    An arm without a triplet term never reads a label: one run scored on every labelled
    query is as honest as one run per fold, at a fraction of the cost. `refit(arm, steps)`
    gives the chosen arm trained on every labelled query; with `ahead`, the refits of the
    label-reading arms train while the race runs, on workers it leaves idle (three folds on
    two cores leave one idle for a third of the race), so the refit is often done when the
    choice is made.
    """

    def __init__(
        self,
        fit: FitContext,
        new_net: Callable[[], DiveNet],
        start_z: np.ndarray,
        arms: list[Arm],
        labels: Labels,
        folds: Folds,
        ahead: bool = False,
        soup: bool = False,
    ) -> None:
        self.fit, self.new_net, self.start_z = fit, new_net, start_z
        self.arms, self.labels, self.folds = arms, labels, folds
        self.keep_states = soup  # every run keeps its weights at its arm's best check so far
        self.horizon = [fit.config.steps] * len(arms)
        self.runs: dict[tuple[int, int], Run] = {}
        # the refits of the label-reading arms, trained ahead on workers the race leaves idle
        self.ahead = [c for c, arm in enumerate(arms) if ahead and arm.triplet_weight > 0]
        self.refits: dict[int, _Refit] = {}

    def extend(self, candidate: int, steps: int) -> None:
        self.horizon[candidate] = steps

    def curves(self) -> list[Curve]:
        self._train_all()
        curves = out_of_fold(self.folds, len(self.arms), self._curve)
        if self.keep_states:
            self._keep_best(curves)
        return curves

    def _keep_best(self, curves: list[Curve]) -> None:
        """Drop every run's weights but those at its arm's best check so far (the first best,
        as `choose` breaks ties): a later choice of that arm keeps this check or a later one."""
        for candidate, curve in enumerate(curves):
            best = curve.steps[int(np.argmax(curve.scores.mean(axis=1)))]
            for run in self._runs_of(candidate):
                for step in [s for s in run.states if s != best]:
                    del run.states[step]

    def _runs_of(self, candidate: int) -> list[Run]:
        """`candidate`'s runs in fold order (one for a label-free arm)."""
        keys = sorted({self._key(candidate, f) for f in range(len(self.folds.held_out))})
        return [self._run(candidate, max(key[1], 0)) for key in keys]

    def _key(self, candidate: int, fold: int) -> tuple[int, int]:
        """(candidate, fold), the fold -1 for a label-free arm's one run."""
        return candidate, -1 if self.arms[candidate].triplet_weight == 0 else fold

    def _run(self, candidate: int, fold: int) -> Run:
        """The run of `candidate` holding out fold `fold` (one run for a label-free arm)."""
        key = self._key(candidate, fold)
        if key not in self.runs:
            arm, seed, labels = self.arms[candidate], self.fit.seed, self.labels
            if key[1] < 0:
                rng, train, held = np.random.default_rng([seed, candidate]), None, labels
            else:
                first = int(self.folds.held_out[fold][0])  # runs are seeded by their fold's
                rng = np.random.default_rng([seed, candidate, first])  # first held-out row
                train = labels.subset(self.folds.training(fold))
                held = labels.subset(self.folds.held_out[fold])
            # built here, one at a time: building a net seeds torch's global generator
            self.runs[key] = Run(
                self.fit, self.new_net(), arm, train, held, rng, self.start_z, self.keep_states
            )
        return self.runs[key]

    def replay(self, candidate: int, fold: int, steps: int) -> Run:
        """`candidate`'s run on `fold` again from the start, to `steps`: bit for bit the
        checkpoint the selection scored (a run is a function of its seed and its rows)."""
        self.runs.pop(self._key(candidate, fold))
        return self._run(candidate, fold).train_to(steps)

    def soup(self, candidate: int, steps: int) -> tuple[DiveNet, list[dict[str, float]]]:
        """The mean weights of `candidate`'s runs at `steps`, kept at that check (the models
        whose held-out scores made the choice; one run for a label-free arm), and the log of
        the first up to then."""
        runs = self._runs_of(candidate)
        states = [run.states[steps] for run in runs]
        net = self.new_net()
        net.load_state_dict({k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]})
        return net, [entry for entry in runs[0].log if entry["step"] <= steps]

    def _train_all(self) -> None:
        """Bring every run to its arm's horizon, `workers` runs at a time.

        Runs share nothing they write (each has its net, optimiser and generator, and torch
        runs every op on the calling thread with one intra-op thread), so the result is the
        same bitwise with one worker or several; torch releases the GIL inside its kernels.
        """
        jobs = [
            (self._run(c, f), self.horizon[c])
            for c in range(len(self.arms))
            for f in range(len(self.folds.held_out))
        ]
        jobs = list({id(run): (run, h) for run, h in jobs}.values())  # label-free: one run
        workers = min(self.fit.config.workers or _cpus(), len(jobs) + len(self.ahead))
        if workers <= 1:
            for run, horizon in jobs:
                run.train_to(horizon)
            return
        for candidate in self.ahead:
            self._refit(candidate)  # built here, one at a time: building a net seeds torch
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                race = [pool.submit(run.train_to, horizon, stop) for run, horizon in jobs]
                # submitted last, so a refit only starts on a worker the race no longer needs
                spare = [pool.submit(self._train_ahead, c, race, stop) for c in self.ahead]
                for done in race + spare:
                    done.result()
            except BaseException:
                # Ctrl-C or SIGTERM lands here, in the waiting thread; the pool's exit waits
                # for its workers, which trained on to their horizons (minutes, or for ever
                # with a large `steps`). Told to stop, each does at its next check.
                stop.set()
                raise

    def _train_ahead(self, candidate: int, race: list[Future[Run]],
                     stop: threading.Event) -> None:
        """Train `candidate`'s refit check by check, up to its horizon, while the race runs."""
        refit = self.refits[candidate]
        while not stop.is_set() and not all(job.done() for job in race) and \
                refit.advance(self.horizon[candidate]):
            pass

    def _refit(self, candidate: int) -> _Refit:
        if candidate not in self.refits:
            rng = np.random.default_rng([self.fit.seed, candidate, len(self.labels)])
            arm, labels = self.arms[candidate], self.labels
            run = Run(self.fit, self.new_net(), arm, labels, None, rng, self.start_z)
            self.refits[candidate] = _Refit(run, self.new_net)
        return self.refits[candidate]

    def refit(self, candidate: int, steps: int) -> tuple[DiveNet, list[dict[str, float]]]:
        """`candidate` trained on every labelled query for `steps` steps, and its log: bit
        for bit the same whether its refit trained ahead or not."""
        refit = self._refit(candidate)
        if not refit.reaches(steps):  # trained past `steps` without keeping it: start again
            del self.refits[candidate]
            refit = self._refit(candidate)
        return refit.at(steps)

    def _curve(self, candidate: int, train_rows: np.ndarray, held_rows: np.ndarray) -> Curve:
        fold = next(f for f, rows in enumerate(self.folds.held_out) if rows[0] == held_rows[0])
        curve = self._run(candidate, fold).curve()
        if self.arms[candidate].triplet_weight == 0:
            return Curve(curve.steps, curve.scores[:, held_rows])
        return curve


class _Refit:
    """One arm's refit on every labelled query, trainable ahead of the choice.

    A run is a function of its seed and its rows, and a check without held-out queries only
    logs, so a refit trained in pieces that end at check steps, with its state kept at each,
    holds the model (and log) a refit trained straight to any of those steps would give.
    """

    def __init__(self, run: Run, new_net: Callable[[], DiveNet]) -> None:
        self.run, self.new_net = run, new_net
        self.states: dict[int, dict[str, torch.Tensor]] = {}

    def advance(self, horizon: int) -> bool:
        """Train to the next check step if it is within `horizon`; whether it was."""
        every = self.run.fit.config.eval_every
        step = (self.run.loop.step // every + 1) * every
        if step > horizon:
            return False
        self.run.train_to(step)
        self.states[step] = state_of(self.run.net)
        return True

    def reaches(self, steps: int) -> bool:
        return self.run.loop.step <= steps or steps in self.states

    def at(self, steps: int) -> tuple[DiveNet, list[dict[str, float]]]:
        """The refit after `steps` steps (see `reaches`) and its log up to then."""
        run = self.run
        if run.loop.step <= steps:
            run.train_to(steps)
            return run.net, run.log
        net = self.new_net()
        net.load_state_dict(self.states[steps])
        return net, [entry for entry in run.log if entry["step"] <= steps]


def _cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _race(
    race: _Race, base: np.ndarray, config: DiveConfig, groups: tuple[np.ndarray, ...] | None,
    name: str,
) -> tuple[Choice, list[Curve]]:
    """Choose the (arm, step); while the leader peaks late in its runs, let it run longer.

    A curve still rising at its horizon says the arm stopped too early (typical with hundreds
    of labels), so the leading arm's runs are doubled, up to `max_steps` (never below
    `steps`), and the choice is made again on the longer curves. "Late" is at the last check
    (`extend_at=1`), or, for a holdout choice, at or past that share of the horizon: a curve
    that still trends up often dips at its last check. A cross-fitted choice (fewer than
    `holdout_min` validation queries) extends only from its last check: on tens of queries a
    longer race mostly adds candidates to a noisy argmax (docs/methods.md).
    """
    cap = max(config.steps, config.max_steps)
    holdout = race.folds.scheme == "holdout"
    while True:
        curves = race.curves()
        choice = choose(base, curves, config.min_gain_z, groups, config.gain_flips)
        leader, step = choice.best
        progress.info("%s: arms trained to %s steps; best (%s) at step %d: held-out gain "
                      "%+.4f (s.e. %.4f) over the start's nDCG@10 %.4f on %d queries",
                      name, _in_words(race.horizon),
                      race.arms[leader].describe() if leader >= 0 else "none", step,
                      choice.gain, choice.stderr, choice.base_score, choice.n_queries)
        if leader < 0 or not config.runs_on(step, race.horizon[leader], holdout=holdout):
            return choice, curves
        race.extend(leader, min(2 * race.horizon[leader], cap))


def _in_words(numbers: Sequence[int]) -> str:
    """`[80, 5, 5]` as "80, 5 and 5": each arm's length ("80/5" read as 80 of 5)."""
    shown = [str(n) for n in numbers]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _fit(
    corpus: np.ndarray,
    train: TrainingData | None,
    dim: int,
    seed: int,
    config: DiveConfig,
    rng: np.random.Generator,
    name: str,
) -> tuple[Runtime, dict[str, Any], Summarise]:
    t0 = time.perf_counter()
    labels, validation_rows = pooled_labels(train, corpus.shape[0])
    n = len(labels) if labels is not None else 0
    fit = FitContext(corpus, seed, config, n)
    mean, axes, variances = principal_axes_and_variances(corpus, dim)
    axes, _, _ = settle_null_axes(axes, variances, mean, corpus.shape[0])  # as pca's
    heads = initial_heads(corpus, axes, config, rng)
    if config.select and config.start == "select":
        progress.info("%s: choosing the start on %d labelled queries (%d corpus rows)", name,
                      n, corpus.shape[0])
    start, start_choice = _choose_start(fit, heads, mean, labels)
    diag: dict[str, Any] = {"n_labelled": n, "query_batch": fit.query_batch, "start": start.name}
    if start.scores:
        diag["start_ndcg@10"] = {k: round(float(v.mean()), 6) for k, v in start.scores.items()}
    if start_choice is not None:
        diag["start_choice"] = start_choice.as_record()

    def start_net() -> DiveNet:
        return fit.new_net(heads, start.center)

    choice: Choice | None = None
    curves: list[Curve] = []
    race: _Race | None = None
    validated = False  # the holdout run is kept as is (refit=False)
    soup = False  # the kept arm's cross-fitted runs are averaged (soup=True)
    if labels is None or n < 2 or not config.select or config.steps == 0:
        # Nothing to choose on (or told not to): the configured weights train `steps` steps
        # (without labels, only the label-free losses).
        arm: Arm | None = (
            None if config.steps == 0  # nothing trains: the start, recorded without an arm
            else config.arm() if labels is not None else Arm(0.0, config.lr, config.loss, 0.0)
        )
        diag["selection"] = "unsupervised" if labels is None else "none"
        steps = config.steps
    else:
        arms = config.arms()
        folds = _folds(n, validation_rows, seed, config)
        validated = folds.scheme == "holdout" and not config.refit
        soup = config.soup and folds.scheme == "cross-fit"
        ahead = not validated and not soup
        race = _Race(fit, start_net, start.corpus_z, arms, labels, folds, ahead, soup)
        base = start.scores[start.name][folds.scored]
        groups = None  # with nested_gain: groups of the scored queries, dealt by the seed
        if config.nested_gain:
            groups = Folds.cross_fit(base.size, config.folds, seed).held_out
        choice, curves = _race(race, base, config, groups, name)
        arm = arms[choice.candidate] if choice.candidate is not None else None
        steps = choice.step
        diag.update(selection=folds.scheme, folds=len(folds.held_out), choice=choice.as_record())
        diag["curves"] = [
            {
                "arm": a.as_record(),
                "steps": list(c.steps),
                "ndcg@10": [round(float(v), 6) for v in c.scores.mean(axis=1)],
            }
            for a, c in zip(arms, curves, strict=True)
        ]

    # The kept arm trains from the start on every labelled query (or, with refit=False after
    # a holdout choice, the validated run itself is kept); no arm: the start itself.
    progress.info("%s: start %s PCA; %s", name, start.name,
                  f"keeping the {arm.describe()} arm for {steps} steps" if arm is not None
                  else "kept as it is (steps=0: nothing trains)" if config.steps == 0
                  else "kept as it is (no arm showed a real gain)")
    net, log = start_net(), None
    if arm is not None and race is not None and choice is not None:
        kept = choice.candidate or 0
        if validated:
            final = race.replay(kept, 0, steps)
            net, log = final.net, final.log
        elif soup:
            net, log = race.soup(kept, steps)
        else:
            net, log = race.refit(kept, steps)
        diag["final"] = "holdout run" if validated else "fold soup" if soup else "refit"
    elif arm is not None:
        refit_rng = np.random.default_rng([seed, 0])
        final = Run(fit, net, arm, labels, None, refit_rng, start.corpus_z).train_to(steps)
        net, log = final.net, final.log

    if config.shrink and choice is not None and choice.candidate is not None:
        weight = shrinkage(choice)
        _pull_toward(net, start_net(), weight)
        diag["shrinkage"] = round(weight, 6)
    final_z = net.encode(fit.corpus)
    if arm is not None and race is not None and choice is not None:
        # The kept model is not the one the choice scored (a soup of the fold runs, or a
        # refit on every label): below its start on the very queries it was chosen with, it
        # is no model to keep, and the start is returned instead. The score is in-sample (those
        # queries trained the fold runs or the refit): a guard against a broken soup or
        # refit, not an estimate of the gain (docs/methods.md, step 7).
        final = fit.scores(net, final_z, race.labels)[race.folds.scored]
        diag["final_check"] = {"score": round(float(final.mean()), 6),
                               "base_score": round(float(base.mean()), 6)}
        if final.mean() < base.mean():
            progress.info("%s: the kept model scores below its start on the queries it was "
                          "chosen with; keeping the start", name)
            net, log, arm, steps = start_net(), None, None, 0
            final_z = start.corpus_z
            diag["final"] = "start (the kept model scored below it)"
            # what is kept is the start: its score is the one recorded (the choice's own
            # record, in diag["choice"], still says what it chose)
            choice = replace(choice, candidate=None, step=0, score=choice.base_score)
    # `steps=0` keeps a start chosen on the labelled queries: scored on them, as the summary says
    start_scores = _kept_start_scores(start if start_choice is not None else None, steps)
    n_scored, score = 0, None
    if choice is not None:
        n_scored, score = choice.n_queries, round(choice.score, 6)
    elif start_scores is not None:
        n_scored, score = start_scores.size, round(float(start_scores.mean()), 6)
    diag["selected"] = {
        "start": start.name,
        "arm": arm.as_record() if arm is not None else None,
        "step": steps,
        "n_queries": n_scored,
        "validation_ndcg@10": score,
    }
    # mean distance between the start's and the fitted model's outputs over the corpus
    diag["drift"] = round(float(np.linalg.norm(final_z - start.corpus_z, axis=1).mean()), 6)
    if log is not None:
        diag["log"] = [{k: round(v, 6) for k, v in e.items()} for e in log]
        diag["active_triplets"] = [
            round(e["active_triplets"], 4) for e in log if "active_triplets" in e
        ]
    diag["train_seconds"] = round(time.perf_counter() - t0, 4)
    selected = {"start": start.name, "arm": arm.as_record() if arm is not None else None}
    return net.to_runtime(), diag, _summary(choice, curves, steps, selected, start_scores)


def _kept_start_scores(chosen_start: _Start | None, steps: int) -> np.ndarray | None:
    """The labelled queries' scores of a start chosen on them, when it is the model kept
    untrained (`steps=0`; no choice among arms was made), else None."""
    if chosen_start is None or steps:
        return None
    return chosen_start.scores.get(chosen_start.name)


def _pull_toward(net: DiveNet, start: DiveNet, weight: float) -> None:
    """Set every weight of `net` to start + weight * (net - start), in place."""
    with torch.no_grad():
        for p, p0 in zip(net.parameters(), start.parameters(), strict=True):
            p.copy_(p0 + weight * (p - p0))


def _summary(
    choice: Choice | None, curves: list[Curve], steps: int, selected: dict[str, Any],
    kept: np.ndarray | None,
) -> Summarise:
    """The typed summary: the leading arm's out-of-fold curve, the start's score as its step 0
    (what the choice compared against), and the kept step (0: the start); without a choice,
    the configured arm trained `steps` steps, and a start chosen on the labelled queries and
    kept untrained (`kept`: its scores there, `_kept_start_scores`) is the kept model."""
    if choice is None:
        if kept is None:
            return partial(FitSummary, (), steps, steps, selected, 0, None, None)
        score = float(kept.mean())
        return partial(FitSummary, ((0, score),), 0, 0, selected, kept.size, score, score)
    leader = curves[choice.best[0]] if choice.best[0] >= 0 else Curve((), np.empty((0, 0)))
    curve = ((0, choice.base_score),
             *zip(leader.steps, (float(v) for v in leader.scores.mean(axis=1)), strict=True))
    return partial(FitSummary, curve, choice.step, curve[-1][0], selected, choice.n_queries,
                   choice.score, choice.base_score)
