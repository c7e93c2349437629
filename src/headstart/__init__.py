"""headstart: adapt a pretrained network to your own labelled images or texts, honestly
evaluated.

import headstart
run = headstart.train(headstart.TrainConfig(data="path/to/images"))    # frozen backbone
clf = headstart.ImageClassifier(backbone="DenseNet121").fit(X, y)      # scikit-learn style
clf = headstart.TextClassifier().fit(texts, y)                          # on lists of strings
run = headstart.load_run("runs/...")                                    # predict later
"""

from headstart.errors import BackboneError, ConfigError, DataError, HeadstartError, RunError

__version__ = "0.1.0"

_LAZY = {  # heavy parts (numpy, scikit-learn, torch, timm) load on first use, so the
    # command line answers `--help` and argument errors at once
    "from_arrays": ("headstart.modalities.image.data.sources", "from_arrays"),
    "from_texts": ("headstart.modalities.text.sources", "from_texts"),
    "inspect_source": ("headstart.core.data", "inspect_source"),
    "load_data": ("headstart.core.data", "load_data"),
    "load_source": ("headstart.core.data", "load_source"),
    "ImageClassifier": ("headstart.modalities.image.estimator", "ImageClassifier"),
    "TextClassifier": ("headstart.modalities.text.estimator", "TextClassifier"),
    "TrainConfig": ("headstart.core.config", "TrainConfig"),
    "train": ("headstart.api", "train"),
    "load_run": ("headstart.core.runs", "load_run"),
    "Run": ("headstart.core.runs", "Run"),
    "create_backbone": ("headstart.modalities.image.backbones", "create_backbone"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'headstart' has no attribute {name!r}")


__all__ = [
    "BackboneError",
    "ConfigError",
    "DataError",
    "HeadstartError",
    "ImageClassifier",
    "Run",
    "RunError",
    "TextClassifier",
    "TrainConfig",
    "__version__",
    "create_backbone",
    "from_arrays",
    "from_texts",
    "inspect_source",
    "load_data",
    "load_run",
    "load_source",
    "train",
]
