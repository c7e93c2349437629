"""One training loop for every strategy: a head on cached features, a suffix on a cached
prefix, or a whole network on images decoded on the fly.

The lesson's settings are the defaults: Adam, cross-entropy on logits, batch 32, up to 30
epochs, early stopping on validation accuracy with patience 5, best weights restored.
Pretrained layers get their own, lower learning rate (1e-5, the tutorials' fine-tuning rate).
A text encoder that trains is fitted as transformers are: AdamW with decoupled weight decay
on weight matrices only, a linear warm-up then a linear decay to 0, a text learning rate and a
few epochs (the recipes: :mod:`headstart.core.recipe`).
Every epoch ends with an atomic checkpoint (weights, optimizer, random-number state, history),
so an interrupted run resumes exactly where it stopped and finishes as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from headstart.core import distributed
from headstart.core.distributed import SINGLE, Group
from headstart.core.fitsettings import FitSettings
from headstart.core.inputs import batch_slices, inference_positions
from headstart.core.recipe import warmup_steps
from headstart.core.strategies import frozen_modules_to_eval
from headstart.core.tasks import task_of
from headstart.io import atomic_write_json, atomic_write_with
from headstart.progress import progress_bar


@dataclass
class History:
    """Per-epoch loss / accuracy / val_loss / val_accuracy, as Keras' ``History.history``."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    #: training samples left out of an epoch's step, summed over epochs: a batch of one with
    #: BatchNorm training cannot step. The batching never forms one (a single last sample
    #: joins the batch before); it happens only when unreadable images shrink a batch to one.
    skipped_samples: int = 0
    #: training ended early at its deadline (``fit(deadline=...)``): before an epoch that would
    #: not finish in time, or in the middle of one (that epoch is dropped, unvalidated)
    out_of_time: bool = False

    def column(self, name: str) -> list[float]:
        return [row[name] for row in self.epochs]

    def to_dict(self) -> dict:
        return asdict(self)


def param_groups(module: nn.Module, head: nn.Module, settings: FitSettings) -> list[dict]:
    """The head learns at ``lr``; any trainable pretrained layer at ``backbone_lr``. Weight
    decay never applies to biases or normalisation weights (every 1-D parameter). With Adam
    (the lesson's) it is an L2 penalty on the head's weight matrices alone, as in logistic
    regression; with AdamW it is decoupled and applies to every trained weight matrix, the
    pretrained layers' too, as transformers fine-tune (their ``no_decay`` of biases and
    LayerNorm weights). Every group states its weight decay."""
    head_ids = {id(p) for p in head.parameters()}
    head_params = [p for p in head.parameters() if p.requires_grad]
    body = [p for p in module.parameters() if p.requires_grad and id(p) not in head_ids]
    parts = [("head", head_params, settings.lr)]
    if settings.optimizer == "adamw":
        parts.append(("backbone", body, settings.backbone_lr))
    groups = []
    for name, params, lr in parts:
        groups.append(
            {
                "params": [p for p in params if p.ndim <= 1],
                "lr": lr,
                "weight_decay": 0.0,
                "name": name,
            }
        )
        decayed = [p for p in params if p.ndim > 1]
        if decayed:
            groups.append(
                {
                    "params": decayed,
                    "lr": lr,
                    "weight_decay": settings.weight_decay,
                    "name": f"{name}-weights",
                }
            )
    if settings.optimizer != "adamw" and body:
        groups.append(
            {"params": body, "lr": settings.backbone_lr, "weight_decay": 0.0, "name": "backbone"}
        )
    return [g for g in groups if g["params"] or g["name"] == "head"]


def make_optimizer(module: nn.Module, head: nn.Module, settings: FitSettings):
    """torch's Adam (with Keras' epsilon, as the lesson) or AdamW (torch's epsilon, as
    transformers), over :func:`param_groups`."""
    groups = param_groups(module, head, settings)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(groups, eps=1e-8)
    return torch.optim.Adam(groups, eps=1e-7)


def steps_per_epoch(n_train: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps an epoch of ``n_train`` examples takes (what a schedule plans with)."""
    return max(1, len(batch_slices(n_train, batch_size, world_size)))


def schedule_factor(settings: FitSettings, steps: int):
    """The learning rates' multiplier after ``step`` optimizer steps, as a function (what
    ``LambdaLR`` calls), for ``steps`` steps an epoch: a linear warm-up over the first
    ``warmup_epochs`` (the warm-up's k-th step at k / warm-up steps), then constant (none),
    a linear decay to 0 at the last planned step (linear: transformers'
    ``get_linear_schedule_with_warmup``) or a cosine decay to 0 (cosine)."""
    total = max(1, settings.epochs * steps)
    warm = warmup_steps(settings.warmup_epochs, steps)

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if settings.schedule == "cosine":
            progress = (step - warm) / max(1, total - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if settings.schedule == "linear":
            return max(0.0, (total - step) / max(1, total - warm))
        return 1.0

    return factor


def make_scheduler(optimizer, settings: FitSettings, steps: int):
    """torch's ``LambdaLR`` stepped once per optimizer step by :func:`schedule_factor`, or
    None when the rates stay constant (no schedule, no warm-up)."""
    if settings.schedule == "none" and not warmup_steps(settings.warmup_epochs, steps):
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(settings, steps))


def to_device(x, device: torch.device):
    """A batch's inputs on ``device``: a tensor, or a tuple of them (text: ids and mask)."""
    if isinstance(x, tuple | list):
        return tuple(t.to(device, non_blocking=True) for t in x)
    return x.to(device, non_blocking=True)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batches(inputs, rng, batch_size: int, group: Group):
    """``inputs.epoch``: this rank's share of each batch in a distributed run (inputs without
    a ``part`` argument serve one process)."""
    if group.distributed:
        return inputs.epoch(rng, batch_size, group.part)
    return inputs.epoch(rng, batch_size)


#: Examples per inference batch.
INFERENCE_BATCH = 256


def _share_logits(
    module: nn.Module, inputs, device: torch.device, group: Group
) -> tuple[np.ndarray, np.ndarray | None]:
    """(labels, float32 logits or None when empty) of this rank's share of ``inputs``, in
    inference mode (one process: all of them)."""
    module.eval()
    ys, out = [], []
    with torch.no_grad(), _autocast(device):
        for x, y in _batches(inputs, None, INFERENCE_BATCH, group):
            out.append(module(to_device(x, device)).float().cpu().numpy())
            ys.append(y.numpy())
    y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
    return y, np.concatenate(out) if out else None


def predict_logits(
    module: nn.Module, inputs, device: torch.device, group: Group = SINGLE
) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, logits as float32) of ``module`` over ``inputs``, in inference mode and
    in the examples' order. In a distributed run (``group``) each rank computes its share and
    every rank gets all of them."""
    y, logits = _share_logits(module, inputs, device, group)
    if not group.distributed:
        return y, logits if logits is not None else np.zeros((0, 0), np.float32)
    pieces = group.all_gather((y, logits))
    n = len(inputs)
    width = next((lg.shape[1] for _, lg in pieces if lg is not None), 0)
    shape = next((yr.shape[1:] for yr, _ in pieces if len(yr)), ())  # (labels: a row each)
    all_y, all_logits = np.zeros((n, *shape), np.int64), np.zeros((n, width), np.float32)
    for rank, (yr, lr) in enumerate(pieces):
        pos = inference_positions(n, INFERENCE_BATCH, (rank, group.world_size))
        all_y[pos] = yr
        if lr is not None:
            all_logits[pos] = lr
    return all_y, all_logits


def predict_scores(
    module: nn.Module, inputs, device: torch.device, *, mirrored=None, group: Group = SINGLE
) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, logits) as a run's held-out splits are scored: with ``mirrored`` (the
    same rows' mirror-image inputs), each example's logits averaged with its mirror image's
    (test-time augmentation on cached inputs)."""
    y, logits = predict_logits(module, inputs, device, group)
    if len(y) and mirrored is not None:
        logits = (logits + predict_logits(module, mirrored, device, group)[1]) / 2
    return y, logits


def accuracy_of(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The share of examples predicted exactly (a multi-label example: its whole label set)."""
    right = np.asarray(y_true) == np.asarray(y_pred)
    if right.ndim == 2:
        right = right.all(axis=1)
    return int(right.sum()) / max(1, len(y_true))


def evaluate_inputs(
    module: nn.Module, inputs, device: torch.device, group: Group = SINGLE
) -> tuple[float, float]:
    """(mean loss, accuracy) of ``module`` over ``inputs``, in inference mode, as the labels'
    task counts them (:mod:`headstart.core.tasks`). In a distributed run each rank scores its
    share and the sums are added over ranks: every example counted once, the same result on
    every rank."""
    task = task_of(inputs.labels)
    y, logits = _share_logits(module, inputs, device, group)
    loss, correct, units = 0.0, 0, 0
    if logits is not None:
        loss, correct, units = task.loss_sum(logits, y), task.correct(logits, y), task.units(y)
    loss, correct, seen, units = group.sum([loss, correct, len(y), units])
    return loss / max(1, seen), correct / max(1, units)


class Checkpoint:
    """``checkpoint/`` in the run directory: written atomically after every epoch.

    ``layout`` says which module the weights belong to (``head``, ``suffix`` with its cut, or
    ``full``), so an interrupted run can be rebuilt and loaded from the checkpoint alone.
    """

    def __init__(self, folder: str | Path, layout: dict | None = None):
        self.folder = Path(folder)
        self.layout = layout or {}

    def exists(self) -> bool:
        return (self.folder / "state.json").is_file()

    def weights_file(self) -> Path:
        """The weights that go with state.json. Each epoch's weights get a file of their own,
        named in state.json, which is written after them: a kill between the two writes
        leaves the previous, matching pair (one shared file name once paired epoch k's state
        with epoch k+1's weights)."""
        state = json.loads((self.folder / "state.json").read_text())
        return self.folder / state.get("weights_file", "weights.safetensors")

    def save(
        self, module, optimizer, scheduler, best_state, history, rng, counters, rng_states
    ) -> None:
        """``rng_states``: torch's random state of each rank (one for a single process)."""
        from safetensors.torch import save_file

        tensors = {
            f"model.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()
        }
        if best_state is not None:
            tensors.update(
                {f"best.{k}": v.detach().cpu().contiguous() for k, v in best_state.items()}
            )
        opt = optimizer.state_dict()
        for idx, st in opt["state"].items():
            for name, v in st.items():
                t = v if isinstance(v, torch.Tensor) else torch.tensor(v)
                tensors[f"opt.{idx}.{name}"] = t.detach().cpu().contiguous()
        tensors["torch_rng"] = rng_states[0]
        for rank, state in enumerate(rng_states[1:], 1):  # a distributed run's other ranks
            tensors[f"torch_rng.{rank}"] = state
        name = f"weights-{len(history.epochs)}.safetensors"
        atomic_write_with(self.folder / name, lambda tmp: save_file(tensors, str(tmp)))
        atomic_write_json(
            self.folder / "state.json",
            {
                "history": history.to_dict(),
                "numpy_rng": rng.bit_generator.state,
                "param_groups": [
                    {k: v for k, v in g.items() if k != "params"} for g in opt["param_groups"]
                ],
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "has_best": best_state is not None,
                "layout": self.layout,
                "weights_file": name,
                **counters,
            },
        )
        for old in self.folder.glob("weights*.safetensors"):  # earlier epochs' weights
            if old.name != name:
                old.unlink(missing_ok=True)

    def load(self, module, optimizer, scheduler, rng):
        from safetensors.torch import load_file

        state = json.loads((self.folder / "state.json").read_text())
        tensors = load_file(str(self.weights_file()))
        module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        best = (
            {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
            if state["has_best"]
            else None
        )
        opt_state: dict = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, name = k.split(".", 2)
                opt_state.setdefault(int(idx), {})[name] = v
        optimizer.load_state_dict(
            {
                "state": opt_state,
                "param_groups": [
                    {**g, "params": og["params"]}
                    for g, og in zip(state["param_groups"], optimizer.state_dict()["param_groups"])
                ],
            }
        )
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        # each rank continues its own dropout stream (a rank the checkpoint did not know,
        # when resumed on more processes, continues rank 0's, offset by its rank)
        rank = distributed.current().rank
        own = tensors.get(f"torch_rng.{rank}" if rank else "torch_rng")
        torch.set_rng_state(own if own is not None else tensors["torch_rng"])
        if own is None:
            torch.manual_seed(int(torch.randint(2**31, ())) + rank)
        rng.bit_generator.state = state["numpy_rng"]
        history = History(**state["history"])
        return history, best, state


def fit(
    module: nn.Module,
    head: nn.Module,
    train_inputs,
    val_inputs,
    settings: FitSettings,
    *,
    device: str | torch.device = "cpu",
    class_weights: np.ndarray | None = None,
    checkpoint: Checkpoint | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    deadline: float | None = None,
) -> History:
    """Train ``module`` (whose last part is ``head``) in place; it ends with the best weights.

    In a distributed run (:mod:`headstart.core.distributed`) the module trains wrapped in
    ``DistributedDataParallel``: every rank draws the same global batches and takes its share;
    the loss is scaled so the gradient DDP averages is the whole batch's, as on one process.
    Validation is reduced over ranks, so every rank decides early stopping alike; only rank 0
    writes the checkpoint.

    ``stop_after`` ends after that many epochs of this call without finishing, as an
    interruption would (used to test resuming). ``deadline`` (a ``time.perf_counter()``
    reading) ends training with the best weights so far: before an epoch that would not finish
    by then (judged from the slowest epoch so far) and, in one process, after the batch that
    passes it (the unfinished epoch is dropped unvalidated); ``history.out_of_time`` says so.
    The first epoch always finishes: without one there are no validated weights to keep.
    """
    t = _Training.start(module, head, train_inputs, settings, device, class_weights)
    elapsed, start_epoch = 0.0, 0
    if resume and checkpoint is not None and checkpoint.exists():
        t.history, t.best_state, state = checkpoint.load(module, t.optimizer, t.scheduler, t.rng)
        t.best_acc, t.since_best = state["best_acc"], state["since_best"]
        start_epoch, elapsed = len(t.history.epochs), t.history.seconds
        module.to(t.device)
    history, group = t.history, t.group
    start = time.perf_counter() - elapsed
    bar = progress_bar(
        range(start_epoch, settings.epochs),
        desc="training",
        unit="epoch",
        initial=start_epoch,
        total=settings.epochs,
    )
    slowest = 0.0
    for ran, epoch in enumerate([] if history.stopped_early else bar, start=1):
        epoch_start = time.perf_counter()
        sums = t.train_epoch(train_inputs, deadline)
        if sums is None:  # at the deadline mid-epoch: the best epoch's weights are restored below
            history.out_of_time = True
            break
        row = t.end_epoch(epoch, sums, val_inputs)
        history.seconds = time.perf_counter() - start
        bar.set_postfix(
            acc=f"{row['accuracy']:.3f}",
            val_acc=f"{row['val_accuracy']:.3f}",
            val_loss=f"{row['val_loss']:.3f}",
            best=f"epoch {history.best_epoch}",
        )
        if checkpoint is not None:
            t.save(checkpoint)
        if history.stopped_early:
            break
        slowest = max(slowest, time.perf_counter() - epoch_start)
        if deadline is not None and group.broadcast(
            time.perf_counter() + slowest > deadline
        ):  # rank 0's clock decides for all
            history.out_of_time = epoch + 1 < settings.epochs
            break
        if stop_after is not None and ran >= stop_after:
            bar.close()
            raise KeyboardInterrupt(f"stopped after {ran} epoch(s) as asked")
    bar.close()
    if t.best_state is not None:
        module.load_state_dict(t.best_state)
    module.eval()
    history.seconds = time.perf_counter() - start
    return history


@dataclass
class _Training:
    """One call of :func:`fit`: what its epochs share, and the best weights so far."""

    module: nn.Module
    head: nn.Module
    trainer: nn.Module  # the module, or DistributedDataParallel around it
    optimizer: torch.optim.Optimizer
    scheduler: object
    task: object
    loss_fn: object
    cpu_weight: torch.Tensor | None
    device: torch.device
    group: Group
    rng: np.random.Generator
    settings: FitSettings
    history: History = field(default_factory=lambda: History())
    best_state: dict | None = None
    best_acc: float = -math.inf
    since_best: int = 0

    @classmethod
    def start(cls, module, head, train_inputs, settings: FitSettings, device, class_weights):
        device = torch.device(device)
        group = distributed.current()
        module.to(device)
        if device.type == "cuda":  # faster convolutions with tensor cores
            module.to(memory_format=torch.channels_last)
        # rank 0 draws as a single process does; the other ranks their own dropout masks
        torch.manual_seed(settings.seed + 1_000_003 * group.rank)
        rng = np.random.default_rng(settings.seed)  # the batches: the same on every rank
        trainer = module
        if group.distributed:
            from torch.nn.parallel import DistributedDataParallel

            trainer = DistributedDataParallel(
                module, device_ids=[device.index] if device.type == "cuda" else None
            )
        optimizer = make_optimizer(module, head, settings)
        steps = steps_per_epoch(len(train_inputs), settings.batch_size, group.world_size)
        cpu_weight = (
            torch.as_tensor(class_weights, dtype=torch.float32)
            if class_weights is not None
            else None
        )  # on the CPU too: each batch's weight is summed from the labels, before they move
        weight = cpu_weight.to(device) if cpu_weight is not None else None
        # summed, then divided by the whole batch's weight (its size without class weights):
        # the mean loss, also when the batch is spread over ranks; the labels' task says which
        # loss (cross-entropy; binary cross-entropy for several labels per example)
        task = task_of(train_inputs.labels)
        return cls(
            module=module,
            head=head,
            trainer=trainer,
            optimizer=optimizer,
            scheduler=make_scheduler(optimizer, settings, steps),
            task=task,
            loss_fn=task.loss_fn(weight, settings.label_smoothing),
            cpu_weight=cpu_weight,
            device=device,
            group=group,
            rng=rng,
            settings=settings,
        )

    def train_epoch(self, train_inputs, deadline: float | None) -> list | None:
        """One pass over the training inputs: [loss sum, correct, examples, units] over
        every rank, or None when the deadline passed mid-epoch (one process only)."""
        module, group, settings, device = self.module, self.group, self.settings, self.device
        module.train()
        frozen_modules_to_eval(module, settings.bn, new=self.head)
        batchnorm_trains = any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in module.modules()
        )
        channels_last = device.type == "cuda"
        total_loss, correct, seen, units = 0.0, 0, 0, 0
        for x, y in _batches(train_inputs, self.rng, settings.batch_size, group):
            if (
                deadline is not None
                and self.history.epochs
                and not group.distributed  # (ranks agree only between epochs)
                and time.perf_counter() > deadline
            ):
                return None
            w = self.cpu_weight
            denom = float(w[y].sum()) if w is not None else float(len(y))
            size = len(y)
            if group.distributed:  # the whole batch's weight and size, over ranks
                denom, size = group.sum([denom, len(y)])
            if size // group.world_size < 2 and batchnorm_trains:
                self.history.skipped_samples += int(size)  # BatchNorm cannot train on one
                continue
            x, y = to_device(x, device), y.to(device, non_blocking=True)
            if channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device):
                logits = self.trainer(x)
            batch_loss = self.loss_fn(logits.float(), self.task.target(y)) / max(denom, 1e-12)
            self.optimizer.zero_grad(set_to_none=True)
            # DDP averages the ranks' gradients: each rank's share of the sum, times ranks
            (batch_loss * group.world_size).backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            total_loss += batch_loss.item() * size
            correct += self.task.correct(logits, y)
            units += self.task.units(y)
            seen += len(y)
        return group.sum([total_loss, correct, seen, units])

    def end_epoch(self, epoch: int, sums: list, val_inputs) -> dict:
        """Validate (every rank on rank 0's model), record the epoch, keep the best weights
        and count towards early stopping. Returns the history's row."""
        total_loss, correct, seen, units = sums
        self.group.sync_buffers(self.module)  # every rank validates, and keeps, rank 0's model
        val_loss, val_acc = evaluate_inputs(self.module, val_inputs, self.device, self.group)
        row = {
            "epoch": epoch + 1,
            "loss": total_loss / max(1, seen),
            "accuracy": correct / max(1, units),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "processes": self.group.world_size,  # (a resumed run may change it)
        }
        self.history.epochs.append(row)
        score = self.task.selection_score(val_loss, val_acc)
        if score > self.best_acc:
            self.best_acc, self.since_best = score, 0
            self.best_state = copy.deepcopy(self.module.state_dict())
            self.history.best_epoch = epoch + 1
        else:
            self.since_best += 1
            if self.settings.patience and self.since_best >= self.settings.patience:
                self.history.stopped_early = True
        return row

    def save(self, checkpoint: Checkpoint) -> None:
        """Rank 0 writes the epoch's checkpoint (every rank's random state in it)."""
        group = self.group
        rng_states = group.all_gather(torch.get_rng_state())
        if group.is_main:
            checkpoint.save(
                self.module,
                self.optimizer,
                self.scheduler,
                self.best_state,
                self.history,
                self.rng,
                {"best_acc": self.best_acc, "since_best": self.since_best, **group.record()},
                rng_states,
            )
        group.barrier()  # a rank that died before this epoch's checkpoint is noticed here
