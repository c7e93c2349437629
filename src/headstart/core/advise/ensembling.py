"""``--strategy auto`` across backbones, and its ensemble (:mod:`headstart.core.advise.auto`).

**Other backbones** (rung 2). Each other backbone (``--ensemble-backbones``; auto: with
pretrained weights, every other one of the data's kind whose weights load offline, as
EfficientNet-Lite1 and Lite2 beside Lite0) costs one forward pass, cached as that backbone's
every-depth features (which hold its last features too), at the first backbone's input so that
all of them read the same pixels (:mod:`headstart.modalities.image.backbones.stack`). Its
estimate is the measured pass of the first backbone times the two networks' ratio of
operations; a backbone whose features a run already cached (``--backbone auto`` ranks every
candidate on every-depth features) costs no pass. On it run the frozen candidates of rung 1
(the lesson head and the probe, on last and on every-depth features); after the last backbone,
the probe on all backbones' last features side by side. Each is a candidate like any other: it
can be kept alone.

**The ensemble** (rung 6, last). Caruana et al.'s selection (:mod:`headstart.core.ensemble`)
over every frozen candidate that ran, each a head on its columns of the backbones' features
side by side; kept only when its cross-fitted validation accuracy beats both the best single
candidate selected the same way and the model the ladder kept, beyond the noise. The record
says what each backbone added: its pass, its best candidate, its share of the ensemble.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np

from headstart.choices import BACKBONE_SEP
from headstart.core.advise.climb import Candidate, Climb, Estimates, warm_every_depth
from headstart.core.config import TrainConfig
from headstart.core.data import Splits
from headstart.core.ensemble import ENSEMBLE_NAME
from headstart.errors import HeadstartError

log = logging.getLogger(__name__)

#: The rung of the other backbones' candidates, and of the ensemble.
BACKBONES_RUNG = 2
ENSEMBLE_RUNG = 6
#: The name of the probe on all backbones' last features side by side.
SIDE_BY_SIDE = "all backbones' last features, linear probe"


def ensemble_backbones(config: TrainConfig, kind) -> list[str]:
    """The other backbones ``auto`` adds (``config.ensemble_backbones``): auto, with
    pretrained weights, every network of ``kind`` whose weights load offline (in the order it
    lists them); none; or the names given. The first backbone itself is left out later, once
    names are resolved."""
    from headstart.core.checks import split_names

    asked = config.ensemble_backbones
    if asked == "none":
        return []
    if asked == "auto":
        return kind.available_encoders() if config.weights == "imagenet" else []
    return split_names(asked, "--ensemble-backbones")


def operations(loaded, size: tuple[int, int]) -> int | None:
    """Floating-point operations of ``loaded``'s network on one image of ``size`` (torch's
    ``FlopCounterMode``): what another backbone's pass costs against the first's is their
    ratio, deterministic where timing a few batches on a busy machine is not (on ELPV and
    digits the passes' measured seconds were 1.1-1.3x Lite0's for Lite1 and Lite2 at 224 px,
    their operations 1.3x and 1.5x). None when they cannot be counted."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    net = loaded.backbone.cpu().eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            net(torch.zeros(1, 3, *size))
    except (RuntimeError, NotImplementedError):  # a network the counter cannot run
        return None
    return counter.get_total_flops() or None


def _pass_cached(loaded, splits: Splits) -> bool:
    from headstart.core.extractors import extractor_for

    ex = extractor_for(loaded)
    return all(ex.cached(images) for images in splits.items().values())


def backbone_rung(
    climb: Climb,
    base: TrainConfig,
    splits: Splits,
    est: Estimates,
    *,
    fit_seconds: float,
    probe_seconds: float,
    multi_probe_seconds: float,
    pooling_asked: str,
    kind,
) -> list[dict]:
    """Rung 2: each other backbone's pass and frozen candidates, then the probe on all
    backbones' last features side by side. Returns what each backbone added so far (the
    ensemble adds its share): name, status, the pass, its best candidate."""
    names = list(dict.fromkeys(ensemble_backbones(base, kind)))  # (each once)
    if not names:
        return []
    start, rows_before = time.perf_counter(), len(climb.rows)
    first_run = climb.trained[0][2]
    rung = _OtherBackbones(
        climb,
        base,
        splits,
        est,
        first_run,
        seconds={"fit": fit_seconds, "probe": probe_seconds, "multi_probe": multi_probe_seconds},
        pooling_asked=pooling_asked,
    )
    for name in names:
        if name != rung.primary:  # (the first backbone itself under another alias is found
            # when it loads)
            rung.attempt(name)
    if rung.ran:  # the probe on every backbone's last features, side by side
        together = replace(
            base,
            backbone=BACKBONE_SEP.join([rung.primary, *rung.ran]),
            image_size=rung.size if base.image_size is None else base.image_size,
            features="last",
            head="linear",
            pooling=pooling_asked,
        ).for_modality(splits.train.modality)
        climb.attempt(
            Candidate(SIDE_BY_SIDE, together, BACKBONES_RUNG),
            est.frozen(probe_seconds * (1 + len(rung.ran))),
        )
    # loading, checking and counting the other backbones: time outside their candidates
    in_rows = sum(r.get("seconds", 0.0) for r in climb.rows[rows_before:])
    climb.backbones_seconds = max(0.0, time.perf_counter() - start - in_rows)
    return rung.records


class _OtherBackbones:
    """Rung 2's state: the first backbone's run, what each other one added (``records``) and
    the ones whose pass ran (``ran``)."""

    def __init__(self, climb, base, splits, est, first_run, *, seconds, pooling_asked):
        self.climb, self.base, self.splits, self.est = climb, base, splits, est
        self.first_run, self.seconds, self.pooling_asked = first_run, seconds, pooling_asked
        self.primary = first_run.backbone_name
        self.size = first_run.preprocessing.input_size[0]
        self.primary_ops: int | None = 0  # (0: not counted yet; None: cannot be counted)
        # a fit costs about what the same one on the first backbone did
        self.fits = {
            r["candidate"]: r["seconds"] for r in climb.rows if r["rung"] == 1 and "seconds" in r
        }
        self.records: list[dict] = []
        self.ran: list[str] = []

    def load(self, name: str):
        """The backbone ``name`` with every-depth features, once it is known to read the first
        one's pixels; None (recorded) when it is left out."""
        import torch

        from headstart.core.model import backbone_for

        multi = replace(self.base, backbone=name, image_size=self.size, features="multi")
        try:
            torch.manual_seed(self.base.seed)
            loaded = backbone_for(multi)
            if loaded.timm_name == self.primary:
                return None  # the first backbone itself
            # can it read the first one's pixels? (refused if not; the check needs the two
            # networks' preprocessing, not their weights)
            pair = BACKBONE_SEP.join([self.primary, name])
            backbone_for(replace(self.base, backbone=pair, weights="none"))
        except HeadstartError as e:
            self.records.append({"backbone": name, "status": "skipped", "reason": str(e)})
            log.info(f"auto: left out {name}: {e}")
            return None
        return loaded

    def relative_cost(self, loaded) -> float:
        """Its forward pass's operations against the first backbone's (1 if uncountable)."""
        from headstart.core.model import backbone_for

        size = self.first_run.preprocessing.input_size
        if self.primary_ops == 0:  # counted once (the network's shape, not its weights)
            first_net = backbone_for(replace(self.base, features="multi", weights="none"))
            self.primary_ops = operations(first_net, size)
        ops = operations(loaded, size)
        return ops / self.primary_ops if ops and self.primary_ops else 1.0

    def attempt(self, name: str) -> None:
        """One other backbone: its pass (with its first candidate) and rung 1's candidates."""
        climb, est = self.climb, self.est
        if climb.stopped:  # (said once, when it stopped; its first candidate is listed)
            reason = "validation can no longer rank candidates"
            self.records.append({"backbone": name, "status": "skipped", "reason": reason})
            cfg = replace(self.base, backbone=name, image_size=self.size, head="linear")
            climb.skip(
                Candidate(f"{name}: last features, linear probe", cfg, BACKBONES_RUNG), reason
            )
            return
        loaded = self.load(name)
        if loaded is None:
            return
        timm_name = loaded.timm_name
        record = {"backbone": timm_name, "status": "skipped"}
        self.records.append(record)
        ratio = self.relative_cost(loaded)
        record["relative_cost"] = round(ratio, 2)
        pass_estimate = 0.0 if _pass_cached(loaded, self.splits) else est.extraction(ratio)
        multi = replace(self.base, backbone=timm_name, image_size=self.size, features="multi")
        done: dict = {}

        def warm() -> dict:
            p = warm_every_depth(multi, self.splits, named=True)
            done.update(seconds=round(p.seconds, 1), computed=p.computed)
            return {"pass_seconds": round(p.seconds, 1)}

        runs = []
        for i, (what, cfg, seconds) in enumerate(self.candidates(multi)):
            first, cand_name = i == 0, f"{timm_name}: {what}"
            run = climb.attempt(
                Candidate(cand_name, cfg, BACKBONES_RUNG),
                est.frozen(self.fits.get(what, seconds)) + (pass_estimate if first else 0.0),
                prepare=warm if first else None,
            )
            if run is None and first:
                record["reason"] = climb.rows[-1].get("reason", "")
                break  # no pass, no candidate on it
            if run is not None:
                runs.append((cand_name, run))
                record.setdefault("candidates", []).append(cand_name)
        if done:
            record.update(status="tried", pass_seconds=done["seconds"], computed=done["computed"])
            self.ran.append(timm_name)
        if runs:
            best_name, best_run = max(runs, key=lambda r: r[1].metrics["val_accuracy"])
            record.update(
                best_candidate=best_name, best_val_accuracy=best_run.metrics["val_accuracy"]
            )

    def candidates(self, multi) -> list[tuple]:
        """Rung 1's candidates on another backbone: (what, configuration, estimated fit)."""
        probe = replace(multi, features="last", head="linear", pooling=self.pooling_asked)
        probe = probe.for_modality(self.splits.train.modality)
        fit, seconds = self.seconds["fit"], self.seconds
        return [
            ("last features, linear probe", probe, seconds["probe"]),
            ("last features, lesson head", replace(multi, features="last"), fit),
            (
                "every-depth features, linear probe",
                replace(multi, head="linear"),
                seconds["multi_probe"],
            ),
            ("every-depth features, lesson head", multi, fit),
        ]


def _columns(backbone, run) -> list[tuple[int, int]] | None:
    """Where ``run``'s head finds its inputs in ``backbone``'s features (every-depth features
    of one backbone, or of several side by side)."""
    if hasattr(backbone, "columns_for"):  # backbones side by side
        names = run.backbone_name.split(BACKBONE_SEP)
        return backbone.columns_for(names, run.config.features, run.config.pooling)
    width = backbone.num_features
    if run.config.features == "multi":
        return [(0, width)]
    last = backbone.last_columns(run.config.pooling)
    return None if last is None else [last.indices(width)[:2]]


def ensemble_rung(climb: Climb, base: TrainConfig, splits: Splits, backbones: list[dict]):
    """Caruana's ensemble selection over the frozen candidates that ran (not TTA), each on
    its columns of the every-depth features the passes cached, of one backbone or of several
    side by side (:mod:`headstart.core.ensemble`); the ensemble becomes the best when its
    cross-fitted validation accuracy beats, beyond the noise, both the best single candidate
    selected the same cross-fitted way and the model the ladder kept (the first candidate
    unless another beat it beyond the noise: no selection flatters it). ``backbones``: what
    rung 2 recorded of each other backbone (their shares of the ensemble are added). Returns
    the ensemble's record, or None when fewer than two candidates qualify."""
    import torch

    from headstart.core.ensemble import ENSEMBLE_ROUNDS, decide, verdict_words
    from headstart.core.model import backbone_for

    members = [
        (cand, row, run)
        for cand, row, run in climb.trained
        if cand.rung in (1, BACKBONES_RUNG) and not cand.config.tta and not cand.config.setfit
    ]
    if len(members) < 2:
        return None
    start = time.perf_counter()
    primary = climb.trained[0][2].backbone_name
    first_size = climb.trained[0][2].preprocessing.input_size[0]
    others = [b["backbone"] for b in backbones if b.get("status") == "tried"]
    deep = replace(base, features="multi")
    if others:  # every backbone that ran, side by side, each every-depth
        deep = replace(deep, backbone=BACKBONE_SEP.join([primary, *others]))
    torch.manual_seed(base.seed)  # (random weights: the same networks as the passes)
    loaded = backbone_for(deep)
    probas, used, columns = _member_probabilities(loaded, splits, members, base.batch_size)
    if len(used) < 2:
        return None
    y_val = used[0][2].predictions["val"][0]
    record = decide(  # against the model the ladder keeps, as it predicts validation
        probas["val"],
        y_val,
        [cand.name for cand, _, _ in used],
        reference=climb.best[0].predictions["val"][1],
        seed=base.seed,
    )
    record["seconds"] = round(time.perf_counter() - start, 1)
    record["rounds_asked"] = ENSEMBLE_ROUNDS
    record["backbones"] = _shares(primary, backbones, used, record["weights"])
    needed = _passes(record, used, backbones, [primary, *others])
    row = _ensemble_row(record)
    climb.rows.append(row)
    log.info(f"auto: {verdict_words(record)}")
    if not record["kept"]:
        return record
    weights = record["weights"]
    if needed != [primary, *others]:  # a backbone no selected member reads is left out
        deep = replace(
            base,
            features="multi",
            backbone=BACKBONE_SEP.join(needed),
            image_size=base.image_size if needed[0] == primary else first_size,
        )
        torch.manual_seed(base.seed)
        loaded = backbone_for(deep)
        columns = [
            _columns(loaded.backbone, r) if w > 0 else [(0, 0)]
            for (_, _, r), w in zip(used, weights)
        ]
    from headstart.core.ensemble import ensemble_run

    run = ensemble_run(
        [r for _, _, r in used],
        columns,
        weights,
        loaded,
        deep,
        {name: np.sum([w * p for w, p in zip(weights, ps)], axis=0) for name, ps in probas.items()},
        record,
    )
    climb.best[1]["status"] = "tried"
    row["status"] = "kept"
    climb.best = (run, row, Candidate(ENSEMBLE_NAME, run.config, ENSEMBLE_RUNG))
    return record


def _passes(record: dict, used: list, backbones: list[dict], ran: list[str]) -> list[str]:
    """The backbones the selected members read, of those that ran: only they run at
    prediction time; they and their cost against one pass go into ``record``."""
    weighted = [
        r.backbone_name.split(BACKBONE_SEP)
        for (_, _, r), w in zip(used, record["weights"])
        if w > 0
    ]
    needed = [n for n in ran if any(n in names for names in weighted)]
    costs = {b["backbone"]: b.get("relative_cost", 1.0) for b in backbones}
    record["passes"] = needed
    record["relative_cost"] = round(sum(costs.get(n, 1.0) for n in needed), 2)
    return needed


def _member_probabilities(loaded, splits: Splits, members: list, batch_size: int):
    """Each member's probabilities on the held-out splits from its columns of ``loaded``'s
    cached every-depth features; a member whose columns do not give back its own validation
    predictions is left out (a safeguard). Returns (split -> each member's probabilities,
    the members used, their columns)."""
    import torch

    from headstart.core.extractors import extractor_for

    ex = extractor_for(loaded, batch_size=max(batch_size, 32))
    sets = {
        "val": ex.extract(splits.val),
        **({"test": ex.extract(splits.test)} if splits.test is not None else {}),
    }
    probas: dict[str, list[np.ndarray]] = {name: [] for name in sets}
    used, columns = [], []
    for cand, row, run in members:
        cols = _columns(loaded.backbone, run)
        if cols is None:
            continue
        head = run.model.head.eval()
        member = {}
        for name, fs in sets.items():
            rows = np.asarray(fs.features[fs.valid], np.float32)
            x = torch.from_numpy(np.concatenate([rows[:, lo:hi] for lo, hi in cols], axis=1))
            with torch.no_grad():
                member[name] = torch.softmax(head(x), dim=1).numpy().astype(np.float64)
        y, pred = run.predictions["val"]
        if len(pred) != len(member["val"]) or not np.array_equal(member["val"].argmax(1), pred):
            continue  # its features are not these columns (a safeguard): left out
        for name in sets:
            probas[name].append(member[name])
        used.append((cand, row, run))
        columns.append(cols)
    return probas, used, columns


def _ensemble_row(record: dict) -> dict:
    """The ensemble's row among the candidates."""
    return {
        "candidate": ENSEMBLE_NAME,
        "flags": "--strategy auto (its ensemble selection)",
        "rung": ENSEMBLE_RUNG,
        "status": "tried",
        "val_accuracy": record["val_accuracy"],
        "cross_fitted_val_accuracy": record["cross_fitted_val_accuracy"],
        "difference": record["difference"],
        "noise": record["noise"],
        "seconds": record["seconds"],
        "epochs_run": 0,
        "out_of_time": False,
    }


def _shares(primary: str, backbones: list[dict], used, weights) -> list[dict]:
    """What each backbone added: the first one and each other one, with its pass, its best
    candidate and its share of the ensemble's weight (a head on several backbones side by
    side counts for each equally)."""
    share: dict[str, float] = {}
    for (_, _, run), w in zip(used, weights):
        names = run.backbone_name.split(BACKBONE_SEP)
        for n in names:
            share[n] = share.get(n, 0.0) + w / len(names)
    firsts = [(c, r) for c, _, r in used if r.backbone_name == primary]
    best = max(firsts, key=lambda cr: cr[1].metrics["val_accuracy"], default=None)
    out = [
        {
            "backbone": primary,
            "status": "first",
            "candidates": [c.name for c, _ in firsts],
            **(
                {
                    "best_candidate": best[0].name,
                    "best_val_accuracy": best[1].metrics["val_accuracy"],
                }
                if best
                else {}
            ),
        },
        *[dict(b) for b in backbones],
    ]
    for b in out:
        if b.get("status") in ("first", "tried"):
            b["ensemble_weight"] = round(share.get(b["backbone"], 0.0), 4)
    return out
