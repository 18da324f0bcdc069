"""Where the Hydra config tree lives: `pdebench/conf` of an installed wheel, else `conf/` of the source checkout.

The configs live in `conf/` at the repository root; a regular (non-editable) install ships them as package data
under `pdebench/conf` (see pyproject.toml), while a checkout or an editable install has no such directory next to
the code and reads the repository's `conf/` directly. Hydra needs a real directory, so a zipped install is not
supported. The commands compose from here, and the data layer reads a PDE's presets from here for its hints.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _config_dir() -> str:
    packaged = Path(str(resources.files("pdebench") / "conf"))
    if packaged.is_dir():
        return str(packaged)
    return str(Path(__file__).resolve().parents[2] / "conf")


CONFIG_DIR = _config_dir()
