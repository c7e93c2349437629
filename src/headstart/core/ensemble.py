"""Ensembles of what ``--strategy auto``'s ladder trained: Caruana et al.'s ensemble selection.

Caruana, Niculescu-Mizil, Crew & Ksikes, "Ensemble selection from libraries of models" (ICML
2004), AutoGluon's final step in every fit: start from the best single candidate, then add,
with replacement, the candidate whose probabilities averaged into the ensemble's score best on
validation, for a handful of rounds; keep the round that scored best. The weights are how often
each candidate was added.

Selecting and scoring on the same validation examples flatters the ensemble (it was chosen to
fit them). So the decision is cross-fitted: validation is split in two stratified halves, the
ensemble *and* the best single candidate are each selected on one half and scored on the
other, and the ensemble is kept only when its cross-fitted accuracy beats the single
candidate's by more than the paired noise (the ladder's rule), and beats the model the ladder
kept the same way (on ELPV an ensemble that beat the cross-fitted single candidate still
scored below the kept first candidate). The record says how optimistic
the plain validation score of the ensemble was (its score where it was selected, minus its
cross-fitted score).

The members are frozen candidates: each reads columns of the same every-depth features (the
lesson head the max-pooled last features, the probe the average-pooled ones, the every-depth
heads all of them), of one backbone or of several side by side
(:mod:`headstart.modalities.image.backbones.stack`), so the ensemble costs one forward pass
per backbone at prediction time, shared by every member that reads it. Its head
(``headstart.core.heads.EnsembleHead``, a head kind like the others) averages the members'
probabilities with the selected weights and returns their logarithm, so the run's
usual softmax gives the ensemble's probabilities everywhere (predict, evaluate, ONNX, serve).
"""

from __future__ import annotations

import numpy as np

from headstart.core.statistics import paired_noise
from headstart.core.tasks import combine

#: The name of the ensemble candidate in ``--strategy auto``'s account.
ENSEMBLE_NAME = "ensemble of the frozen candidates"
#: Rounds of greedy selection with replacement (Caruana et al. used up to a few hundred over
#: thousands of models; a ladder has a handful of candidates, and weights settle in a few).
ENSEMBLE_ROUNDS = 10
#: Validation halves of the cross-fitted decision, and the split's seed.
CROSS_FIT_FOLDS = 2


def _score(proba: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy, minus log loss): the larger the better, accuracy first."""
    acc = float(np.mean(proba.argmax(1) == y)) if len(y) else 0.0
    p = np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)
    return acc, float(np.mean(np.log(p))) if len(y) else 0.0


def select(probas: list[np.ndarray], y: np.ndarray, rounds: int = ENSEMBLE_ROUNDS) -> dict:
    """Ensemble selection over ``probas`` (each (examples, classes), the candidates'
    validation probabilities) against labels ``y``. Returns ``weights`` (summing to 1; the best
    round's counts), ``best_single`` (its index), ``trace`` (each round's pick and score)."""
    scores = [_score(p, y) for p in probas]
    single = int(max(range(len(probas)), key=lambda i: (scores[i], -i)))
    counts = np.zeros(len(probas))
    counts[single] = 1
    current, size = probas[single].astype(np.float64), 1
    best, best_counts = scores[single], counts.copy()
    trace = [{"added": single, "accuracy": best[0], "log_loss": -best[1]}]
    for _ in range(rounds - 1):
        tried = [_score((current * size + p) / (size + 1), y) for p in probas]
        pick = int(max(range(len(probas)), key=lambda i: (tried[i], -i)))
        current = (current * size + probas[pick]) / (size + 1)
        size += 1
        counts[pick] += 1
        trace.append({"added": pick, "accuracy": tried[pick][0], "log_loss": -tried[pick][1]})
        if tried[pick] > best:
            best, best_counts = tried[pick], counts.copy()
    return {
        "weights": (best_counts / best_counts.sum()).tolist(),
        "best_single": single,
        "trace": trace,
    }


def cross_fitted(probas: list[np.ndarray], y: np.ndarray, seed: int = 0) -> dict:
    """Select on one half of validation, predict the other, both ways: the ensemble's and the
    best single candidate's cross-fitted predictions (every validation example predicted by a
    choice made without it)."""
    from sklearn.model_selection import StratifiedKFold

    n = len(y)
    ens, single = np.zeros(n, np.int64), np.zeros(n, np.int64)
    _, counts = np.unique(y, return_counts=True)
    if n < 2 * CROSS_FIT_FOLDS or counts.min() < CROSS_FIT_FOLDS:
        folds = [(np.arange(n), np.arange(n))]  # too few to split: no cross-fitting
        honest = False
    else:
        kf = StratifiedKFold(CROSS_FIT_FOLDS, shuffle=True, random_state=seed)
        folds = list(kf.split(np.zeros(n), y))
        honest = True
    for fit_rows, score_rows in folds:
        chosen = select([p[fit_rows] for p in probas], y[fit_rows])
        held = [p[score_rows] for p in probas]
        ens[score_rows] = combine(held, chosen["weights"]).argmax(1)
        single[score_rows] = held[chosen["best_single"]].argmax(1)
    return {"ensemble": ens, "single": single, "cross_fitted": honest}


def decide(
    probas: list[np.ndarray],
    y: np.ndarray,
    names: list[str],
    reference: np.ndarray | None = None,
    seed: int = 0,
) -> dict:
    """The ensemble selected on all of validation, and whether to keep it: its cross-fitted
    accuracy against the cross-fitted best single candidate's, beyond the paired noise, and
    beyond ``reference`` (the validation predictions of the model kept so far) the same way;
    the record's difference and noise are the closer of the two comparisons."""
    full = select(probas, y)
    xfit = cross_fitted(probas, y, seed)
    diff, noise = paired_noise(y, xfit["ensemble"], xfit["single"])
    compared = "the best single candidate"
    beats_reference, kept_acc = True, None
    if reference is not None:
        r_diff, r_noise = paired_noise(y, xfit["ensemble"], reference)
        beats_reference = r_diff > r_noise and r_diff > 0
        kept_acc = round(float(np.mean(reference == y)), 4)
        if r_diff - r_noise < diff - noise:  # the closer comparison decides and is shown
            diff, noise, compared = r_diff, r_noise, "the model kept so far"
    ens_val = float(np.mean(combine(probas, full["weights"]).argmax(1) == y))
    xfit_acc = float(np.mean(xfit["ensemble"] == y))
    members = [i for i, w in enumerate(full["weights"]) if w > 0]
    # (too few validation examples to cross-fit: nothing honest to decide on, never kept)
    keep = (
        len(members) > 1 and diff > noise and diff > 0 and beats_reference and xfit["cross_fitted"]
    )
    return {
        "weights": full["weights"],
        "members": [
            {"candidate": names[i], "weight": round(full["weights"][i], 4)} for i in members
        ],
        "val_accuracy": ens_val,
        "cross_fitted_val_accuracy": round(xfit_acc, 4),
        "cross_fitted_single_val_accuracy": round(float(np.mean(xfit["single"] == y)), 4),
        "kept_model_val_accuracy": kept_acc,
        "cross_fitted": xfit["cross_fitted"],
        "optimism": round(ens_val - xfit_acc, 4),
        "difference": round(diff, 4),
        "noise": round(noise, 4),
        "compared_with": compared,
        "kept": bool(keep),
        "rounds": len(full["trace"]),
        "trace": full["trace"],
        "best_single": names[full["best_single"]],
    }


def verdict_words(record: dict) -> str:
    """One line on what the ensemble selection found and decided."""
    members = (
        " + ".join(f"{m['candidate']} ({m['weight']:.0%})" for m in record["members"]) or "nothing"
    )
    how = "cross-fitted" if record["cross_fitted"] else "not cross-fitted (too few examples)"
    against = f"{record['cross_fitted_single_val_accuracy']:.1%} for the best single candidate"
    if record.get("kept_model_val_accuracy") is not None:
        against += f" selected the same way, {record['kept_model_val_accuracy']:.1%} for the "
        against += "model kept so far"
    head = (
        f"ensemble of {len(record['members'])}: {members}; validation "
        f"{record['val_accuracy']:.1%} where selected, {record['cross_fitted_val_accuracy']:.1%} "
        f"{how}, against {against} ({record['difference'] * 100:+.1f} points vs "
        f"{record.get('compared_with', 'the best single candidate')}, noise "
        f"{record['noise'] * 100:.1f})"
    )
    if len(record["members"]) < 2:
        return f"{head}; not kept: the selection kept one candidate"
    if record["kept"]:
        return f"{head}; kept"
    return f"{head}; {'not kept: within the noise' if record['difference'] > 0 else 'not kept'}"


def _ensemble_metrics(template, runs, keep, loaded, proba: dict, record: dict):
    """The ensemble's metrics: its heaviest member's (the split, the baselines, the cache),
    with the held-out scores, the headline, the features and the time replaced by the
    ensemble's. Returns (metrics, split name -> (true, predicted))."""
    import copy

    from headstart.core.model import features_record
    from headstart.core.run_scores import scored_headline
    from headstart.core.splits import score_label

    metrics = copy.deepcopy(template.metrics)
    for key in ("probe", "weight_decay", "fit_recipe", "out_of_time"):
        metrics.pop(key, None)
    predictions = {}
    for name, p in proba.items():
        y = template.predictions[name][0]
        predictions[name] = (y, p.argmax(1))
        metrics[f"{name}_accuracy"] = float(np.mean(y == p.argmax(1)))
    split = "test" if "test" in predictions else "val"
    metrics["headline"] = {
        **scored_headline(split, *predictions[split]),
        "optimistic": split == "val",
        "label": score_label(split),
    }
    timing = metrics.get("timing") or {}
    metrics.update(
        ensemble=record,
        epochs_run=0,
        best_epoch=0,
        stopped_early=False,
        features=features_record(loaded),
        timing={
            "feature_extraction_seconds": timing.get("feature_extraction_seconds", 0.0),
            "training_seconds": round(
                sum(runs[i].metrics["timing"]["training_seconds"] for i in keep), 3
            ),
            "seconds_per_epoch": 0.0,
        },
    )
    return metrics, predictions


def ensemble_run(runs, columns, weights, loaded, config, proba: dict, record: dict):
    """The ensemble as a run like any other: the every-depth features ``loaded`` computes
    (of one backbone, or of several side by side), an ``EnsembleHead`` of the members with
    positive weight, each on its ``columns`` ((start, end) ranges of those features), the
    validation and test scores of ``proba`` (the ensemble's probabilities per split, over the
    examples the members scored). Its metrics start from its heaviest member's (the split,
    the baselines, the cache) and replace what the ensemble changed."""
    from dataclasses import replace

    from headstart.core.heads import ENSEMBLE, HeadSpec, build_head
    from headstart.core.model import TransferModel, weights_record
    from headstart.core.runs import Run

    keep = [i for i, w in enumerate(weights) if w > 0]
    names = [m["candidate"] for m in record["members"]]
    spec = HeadSpec(
        kind=ENSEMBLE,
        members=tuple(
            {
                "head": runs[i].head_spec.to_dict(),
                "columns": [[int(lo), int(hi)] for lo, hi in columns[i]],
                "weight": float(weights[i]),
                "candidate": name,
            }
            for i, name in zip(keep, names)
        ),
    )
    template = runs[max(keep, key=lambda i: weights[i])]
    head = build_head(spec, loaded.backbone.num_features, len(template.class_names))
    for module, i in zip(head.members, keep):
        module.load_state_dict(runs[i].model.head.state_dict())
    model = TransferModel(loaded.backbone, head).eval()
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    metrics, predictions = _ensemble_metrics(template, runs, keep, loaded, proba, record)
    strategy = template.strategy
    run = Run(
        model=model,
        class_names=template.class_names,
        preprocessing=loaded.preprocessing,
        config=replace(config, head=template.config.head),
        backbone_name=loaded.timm_name,
        head_spec=spec,
        history=None,
        metrics=metrics,
        record=template.record,
        split=template.split,
        weights=weights_record(loaded, strategy, model),
        strategy=strategy,
        predictions=predictions,
        data=template.data,
    )
    run.metrics["parameters"] = run.parameter_counts()
    return run
