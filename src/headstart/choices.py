"""The valid values of every option that takes a name, and the rules behind "auto" defaults.

Light on purpose (no imports): the configuration validates against these before any heavy
library loads, so a mistyped option answers at once, and every module that acts on a choice
imports its tuple from here.
"""

#: feature-extraction (frozen backbone, head only), fine-tune (top N stages), freeze-first
#: (all but the first K blocks), full (everything, pretrained start), scratch (random start).
STRATEGIES = ("feature-extraction", "fine-tune", "freeze-first", "full", "scratch")
#: ``auto`` is decided from the data by :mod:`headstart.core.advise`; valid for training commands.
STRATEGY_CHOICES = (*STRATEGIES, "auto")
#: What continues a trained run (``headstart finetune``).
CONTINUATIONS = ("fine-tune", "freeze-first", "full")
#: The kinds of data headstart learns from; ``auto`` (the default) detects it from the data.
MODALITIES = ("image", "text")
#: Pooling of an image backbone's last feature map: the lesson's (Keras ``pooling="max"``), or
#: the average, as timm's networks pool before their own classifier.
POOLINGS = ("max", "avg")
#: An image run's pooling when ``--pooling`` is not given (``auto``): the average. Measured
#: (bench/bench_probe.py, BENCHMARKS.md) with both heads on ELPV, digits and lfw: the lesson
#: head scored 88.4 / 93.6 / 97.5% on average-pooled features against 86.7 / 93.9 / 97.5% on
#: the lesson's max-pooled ones, the probe 87.2 / 93.3 / 97.5 against 86.7 / 94.2 / 97.5.
DEFAULT_IMAGE_POOLING = "avg"
#: Pooling of a text encoder's token states (sentence-transformers models bring their own).
TEXT_POOLINGS = ("mean", "cls", "max")
#: How a text longer than the encoder's window is read: overlapping windows pooled by their
#: mean or maximum, Sun et al.'s head and tail, or its start only (:mod:`...text.windows`).
LONG_TEXTS = ("window", "window-max", "head-tail", "truncate")
#: A text run's reading when ``--long-texts`` is not given (measured: bench/bench_long_texts.py).
DEFAULT_LONG_TEXTS = "window"
#: ``auto``: the modality's default (images: :data:`DEFAULT_IMAGE_POOLING`; text: the
#: encoder's own, else mean).
POOLING_CHOICES = ("auto", "max", "avg", "mean", "cls")
#: last: the pooled output of the last stage (the lesson's features); multi: pooled statistics
#: of several stages' outputs as well (features from every depth, Head2Toe).
FEATURE_KINDS = ("last", "multi")
#: statistics of each stage's output with ``--features multi``.
STAGE_POOLINGS = ("avg+max", "avg+std")
RESIZE_MODES = ("pad", "resize", "crop")
#: What is predicted (``--task``): auto decides from the labels (a label cell holding
#: ``--labels-sep``, or ``--label-columns``, is multi-label; see headstart.core.tasks)
TASKS = ("auto", "single-label", "multi-label")
#: How a multi-label run's thresholds are chosen on validation (``--thresholds``): auto picks
#: between one global threshold and one per label by 5-fold micro-F1 (headstart.core.multilabel)
THRESHOLD_RULES = ("auto", "global", "per-label")
#: What separates the labels of one example in a table's label cell (``--labels-sep``)
DEFAULT_LABELS_SEP = ";"
#: ``--backbone default``: the network of the data's kind (images: EfficientNet-Lite0; text:
#: all-MiniLM-L6-v2), each modality's own default, resolved once the data says which it is.
DEFAULT_NETWORK = "default"
#: Joins backbones read side by side in ``--backbone A+B`` (features concatenated; frozen).
BACKBONE_SEP = "+"
#: what runs a saved model for predict and serve: the run itself, or its ONNX export
ENGINES = ("torch", "onnx")
HEADS = ("lesson", "linear")
#: How ``headstart advise`` ranks candidate backbones (LogME evidence, a probe, a kNN).
RANK_BY = ("logme", "probe", "knn")
#: Learning-rate schedules, per step: none; linear (linear warm-up, then linear decay to 0:
#: transformers' ``get_linear_schedule_with_warmup``); cosine (warm-up, then cosine decay).
#: ``onecycle`` is linear's earlier name (configurations that say it still load).
SCHEDULES = ("none", "linear", "cosine")
#: ``auto``: the fitting recipe's (:mod:`headstart.core.recipe`), as the other auto settings.
SCHEDULE_CHOICES = ("auto", *SCHEDULES)
#: adam: the lesson's (Keras' Adam, L2 on the head's weights); adamw: decoupled weight decay
#: (Loshchilov & Hutter), as transformers fine-tune, none on biases and normalisation weights.
OPTIMIZERS = ("adam", "adamw")
OPTIMIZER_CHOICES = ("auto", *OPTIMIZERS)
#: none; cached (K views per image computed once, sampled per epoch); on-the-fly (fresh views
#: every epoch, so the frozen part runs every step).
AUGMENT_MODES = ("none", "cached", "on-the-fly")
BN_MODES = ("auto", "frozen", "train")

#: With ``test_split=None`` (the default) a test set is carved when the data has none: this
#: fraction of train, stratified and seeded, when every class has at least
#: ``AUTO_TEST_MIN_PER_CLASS`` images to split (so each keeps a test, a validation and a
#: training share). The validation split chooses the best epoch (and, with ``auto``, the
#: strategy), so only a split that chose nothing gives an unbiased headline number.
AUTO_TEST_FRACTION = 0.15
AUTO_TEST_MIN_PER_CLASS = 20
#: ... and with several labels per example (rare labels are the rule there), when there are
#: at least this many examples
AUTO_TEST_MIN_MULTI_LABEL = 100
CLASS_WEIGHTS = ("none", "auto")
#: Text: how a run combines its model with the classic baseline (TF-IDF + logistic regression):
#: mix averages their probabilities with a weight chosen on validation (0 keeps the model
#: alone); joint fits one logistic regression on both models' features (TF-IDF's, the encoder's);
#: auto chooses between the two on validation; none never combines.
BLEND_MODES = ("auto", "mix", "joint", "none")
#: A text run's blend when ``--blend`` is not given (measured: bench/bench_text_baseline.py).
DEFAULT_BLEND = "auto"

#: ``--strategy auto`` spends this many minutes (``--budget``): its frozen forward pass, the
#: advice and the candidates that fit (``headstart.core.advise.auto`` says what can run over).
AUTO_BUDGET_MINUTES = 8.0
#: ``--ensemble-backbones``: which other backbones ``--strategy auto`` adds (auto: with
#: pretrained weights, every other one whose weights load offline; none; or A,B).
ENSEMBLE_BACKBONES = "auto"


#: Decompression-bomb guard: an image declaring more pixels than this is refused before a pixel
#: is decoded. Files given to the command line (train, inspect, evaluate, predict) are the
#: user's own and decoded one at a time per worker, so large scans pass: about 16,000 x 16,000
#: (768 MB decoded).
MAX_PIXELS = 256_000_000
#: The same guard in ``headstart serve``, 5x lower: uploads come from anyone, a request holds
#: up to ``SERVE_MAX_FILES`` decoded images at once and several requests run together, so each
#: stays under about 7,000 x 7,000 (150 MB decoded). The model sees a few hundred pixels a side:
#: a client sends a larger photo resized.
SERVE_MAX_PIXELS = 50_000_000

#: ``headstart serve``: the largest image or text accepted, inputs per request, and request
#: batching. On a CPU a forward pass of Lite0 costs more per image at 32 than at 1-8
#: (BENCHMARKS.md, serving), so passes gather at most 8 examples; raise ``--max-batch`` on a GPU.
SERVE_MAX_BYTES = "8MB"
SERVE_MAX_FILES = 64
SERVE_MAX_BATCH = 8
SERVE_MAX_WAIT_MS = 5.0

#: The input sizes (pixels, each side) ``--image-size`` accepts.
IMAGE_SIZE_RANGE = (16, 2048)
