"""headstart: adapt a pretrained network to your own labelled images, honestly evaluated."""

from headstart.data import from_arrays, inspect_source, load_data, load_source
from headstart.errors import BackboneError, ConfigError, DataError, HeadstartError, RunError

__version__ = "0.1.0"

__all__ = [
    "BackboneError",
    "ConfigError",
    "DataError",
    "HeadstartError",
    "RunError",
    "__version__",
    "from_arrays",
    "inspect_source",
    "load_data",
    "load_source",
]
