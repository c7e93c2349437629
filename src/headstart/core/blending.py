"""The classic baseline beside a model of one class per example (text: TF-IDF + logistic
regression): fitted on the examples the model used and, with ``--blend``, blended in as a mix
with a weight or as one joint model, each chosen on validation."""

from __future__ import annotations

import numpy as np
import torch

from headstart.core.classic import blended, choose_weight, fit_baseline, fit_joint
from headstart.core.loop import accuracy_of
from headstart.core.run_scores import scored_headline
from headstart.core.splits import example_noun
from headstart.core.statistics import paired_comparison


def blend_with_classic(
    config, metrics: dict, scored: dict, logits: dict, sets: dict, features=None
):
    """Fit the classic baseline on the train examples the model used (its setting chosen on
    the validation ones) and, with ``--blend auto``, blend it into the model, choosing on
    validation between a mix with a weight and, where ``features`` gives them (a function
    returning split name -> the head's inputs, :func:`head_inputs`, called only when a joint
    model is fitted), a joint model
    (:func:`~headstart.core.classic.fit_joint`): ``scored`` and the held-out accuracies in
    ``metrics`` become the blend's (``metrics["blend"]`` keeps the model's own). Returns
    (baseline, mix weight, the joint model's network part or None), or (None, 0.0, None) for
    a kind of data without a baseline (``sets``: split name -> the examples the model used;
    ``logits``: split name -> the model's logits on them)."""
    n_classes = len(sets["train"].class_names)
    model = fit_baseline(sets["train"], sets["val"], n_classes)
    if model is None:
        return None, 0.0, None
    for name, (y, _) in scored.items():  # the model's rows are the examples it used, in order
        if not np.array_equal(y, sets[name].labels):
            raise RuntimeError(f"the {name} predictions are not in the order of its examples")
    classic_proba = {n: model.predict_proba(sets[n]) for n in scored}
    metrics["classic_baseline"] = {"name": model.name, "description": model.describe()}
    weight, joint, combined = 0.0, None, None
    if config.blend == "none":
        metrics["blend"] = {"weight": 0.0, "chosen_on": "--blend none"}
    else:
        weight, combined = _mix(metrics, scored, logits, classic_proba)
        wanted = config.blend in ("auto", "joint") and features is not None and len(sets["val"])
        features = features() if wanted else None
        if features is not None:
            chosen = _joint(config.blend, model, sets, features, metrics["blend"], scored)
            if chosen is not None:
                model, joint, combined = chosen
                weight = 0.0
    if combined is not None and (weight > 0 or joint is not None):
        head = classic_proba[metrics["headline"]["split"]]
        _use_blend(metrics, scored, combined, head, model, example_noun(sets["train"]))
    metrics["classic_baseline"].update(
        classic_record(
            model,
            classic_proba,
            scored,
            metrics["headline"]["split"],
            sets,
            this_name="the run (its blend)" if weight > 0 or joint is not None else "the model",
        )
    )
    return model, weight, joint


def _mix(metrics: dict, scored: dict, logits: dict, classic_proba: dict):
    """The model's and the baseline's probabilities averaged, the weight chosen on validation
    (recorded in ``metrics["blend"]``). Returns (weight, split name -> blended probabilities)."""
    model_proba = {n: softmax_of(lg) for n, lg in logits.items()}
    weight, tried = choose_weight(model_proba["val"], classic_proba["val"], scored["val"][0])
    metrics["blend"] = {
        "kind": "mix",
        "weight": weight,
        "chosen_on": "validation accuracy (ties: lower log loss, then the smaller weight)",
        "tried": tried,
        # the model alone, before the blend
        "model_alone": {f"{n}_accuracy": metrics.get(f"{n}_accuracy") for n in scored},
    }
    return weight, {n: blended(model_proba[n], classic_proba[n], weight) for n in scored}


def _joint(asked: str, baseline, sets: dict, features: dict, blend: dict, scored: dict):
    """One logistic regression on both models' features, recorded in ``blend``; chosen over
    the best mix on validation (or as ``--blend joint`` asks). Returns (the joint model, its
    network part, split name -> its probabilities), or None when the mix stays."""
    n_classes = len(sets["train"].class_names)
    joined, part, record = fit_joint(baseline, sets, features, n_classes)
    mix = next(t for t in blend["tried"] if t["weight"] == blend["weight"])
    record["mix_weight"], record["mix_val_accuracy"] = blend["weight"], mix["val_accuracy"]
    blend["joint"] = record
    better = (record["val_accuracy"], -record["val_log_loss"]) > (
        mix["val_accuracy"],
        -mix["val_log_loss"],
    )
    if asked != "joint" and not better:
        return None
    blend.update(
        weight=0.0,
        kind="joint",
        # chosen on validation at equal accuracy (as recorded, to 4 places): the log loss decided
        log_loss_decided=asked != "joint"
        and round(record["val_accuracy"], 4) == mix["val_accuracy"],
        chosen_on="--blend joint"
        if asked == "joint"
        else "validation accuracy against the best mix (ties: lower log loss)",
    )
    combined = {n: softmax_of(features[n] @ part.T + joined.joint_logits(sets[n])) for n in scored}
    return joined, part, combined


def _use_blend(
    metrics: dict, scored: dict, combined: dict, classic_head, baseline, noun: str
) -> None:
    """The blend's predictions become the run's (``scored``, the held-out accuracies, the
    headline); what the model alone scores against the baseline is kept beside."""
    # the question a blend leaves open: does the model alone beat the baseline?
    split = metrics["headline"]["split"]
    y, alone = scored[split]
    metrics["blend"]["model_alone_vs_baseline"] = paired_comparison(
        y,
        alone,
        classic_head.argmax(1),
        this_name="the model alone",
        other_name=baseline.name,
        noun=noun,
    )
    for name, (y, _) in scored.items():
        pred = combined[name].argmax(1)
        scored[name] = (y, pred)
        metrics[f"{name}_accuracy"] = accuracy_of(y, pred)
    head = metrics["headline"]
    head.update(scored_headline(head["split"], *scored[head["split"]]))


def softmax_of(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(np.asarray(logits, np.float32)), dim=1).numpy()


def classic_record(
    model, proba: dict, scored: dict, headline: str, sets: dict, this_name: str = "the model"
) -> dict:
    """What ``metrics.json`` records of the classic baseline: how it was fitted, its accuracy
    on each held-out split (``proba``: its probabilities there), and on the headline split its
    interval and the paired comparison with the run's predictions (``scored``: split name ->
    (true labels, predicted labels), on the same examples)."""
    record = {"fit": model.record}
    for name, p in proba.items():
        record[f"{name}_accuracy"] = float(np.mean(p.argmax(1) == sets[name].labels))
    y_true, y_pred = scored[headline]
    pred = proba[headline].argmax(1)
    record["headline"] = scored_headline(headline, y_true, pred)
    record["paired"] = paired_comparison(
        y_true,
        y_pred,
        pred,
        this_name=this_name,
        other_name=model.name,
        noun=example_noun(sets["train"]),
    )
    return record
