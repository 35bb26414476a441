"""``--model auto``: the CAE bitrate for an acquisition, by a rule fitted on train crops.

The rule is data, not code: a small JSON table (``weights/auto_rule.json``) of tuned settings,
each an acquisition (decimation, MTF at Nyquist, noise std at the scene's mean level) and the
shipped model that restored it best on *train* crops (MAP-z PSNR, the tuning step of
``examples/vble_satellite_eval.py``, which writes the table with ``--write-auto-rule``). A new
acquisition takes the model of the nearest tuned setting: same decimation (else the nearest),
then the smallest :math:`|\\Delta\\log_{10}\\sigma| + |\\Delta\\,\\mathrm{MTF}|/0.15`.

The default restoration options (:func:`default_options`) are VBLE-xz with the exact Gaussian
conditional (``VBLEOptions(conditional="exact")``), the CLI's default.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sciml_inverse import check_int, check_number

from ._posterior import VBLEOptions

__all__ = ["AutoRule", "default_options", "load_auto_rule", "select_model"]

_RULE_FILE = "auto_rule.json"


@dataclass(frozen=True)
class AutoRule:
    """Tuned settings and their best model.

    Parameters
    ----------
    entries : tuple of dict
        Each with ``"decimation"`` (int), ``"mtf"`` (float), ``"noise_std"`` (float, normalized
        units, at the mean level of the train crops) and ``"model"`` (a shipped model name).
    source : str
        Where the table came from (command, data).
    """

    entries: tuple[dict, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("AutoRule needs at least one entry")
        for e in self.entries:
            missing = {"decimation", "mtf", "noise_std", "model"} - set(e)
            if missing:
                raise ValueError(f"AutoRule entry {e} lacks {sorted(missing)}")
            if not (isinstance(e["noise_std"], (int, float)) and e["noise_std"] > 0):
                raise ValueError(f"AutoRule entry {e}: noise_std must be > 0")

    def to_dict(self) -> dict:
        return {"format": "sciml-inverse/vble-auto-rule", "format_version": 1,
                "source": self.source, "entries": list(self.entries)}

    @classmethod
    def from_dict(cls, d: dict) -> AutoRule:
        if not isinstance(d, dict) or d.get("format") != "sciml-inverse/vble-auto-rule":
            raise ValueError("not a sciml-inverse VBLE auto-rule table")
        return cls(entries=tuple(d["entries"]), source=str(d.get("source", "")))


def load_auto_rule(path: str | os.PathLike | None = None) -> AutoRule:
    """The rule table at ``path``, or the shipped one (``inverse/vble/weights/auto_rule.json``).

    Raises
    ------
    FileNotFoundError, ValueError
        No file, or not a rule table.
    """
    if path is None:
        text = resources.files("inverse.vble").joinpath("weights", _RULE_FILE).read_text()
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"no auto-rule table at {p}")
        text = p.read_text()
    try:
        d = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"auto-rule table is not JSON: {err}") from err
    return AutoRule.from_dict(d)


def select_model(noise_std: float, decimation: int, mtf: float,
                 rule: AutoRule | None = None) -> str:
    """The shipped model name (e.g. ``"high"``) for an acquisition.

    Parameters
    ----------
    noise_std : float
        Noise standard deviation at the scene's mean level, normalized units
        (:math:`\\sqrt{a + b\\,\\bar y}` for Poisson-Gaussian noise).
    decimation : int
    mtf : float
        MTF at Nyquist.
    rule : AutoRule, optional
        Default: :func:`load_auto_rule`.

    Raises
    ------
    ValueError
        Non-positive ``noise_std`` or ``decimation``.

    Examples
    --------
    >>> from inverse.vble import AutoRule, select_model
    >>> rule = AutoRule(({"decimation": 1, "mtf": 0.1, "noise_std": 1e-3, "model": "high"},
    ...                  {"decimation": 1, "mtf": 0.1, "noise_std": 1e-2, "model": "low"}))
    >>> select_model(2e-3, 1, 0.1, rule), select_model(2e-2, 1, 0.1, rule)
    ('high', 'low')
    """
    check_number("noise_std", noise_std)
    check_int("decimation", decimation, 1)
    rule = load_auto_rule() if rule is None else rule
    d_best = min(abs(e["decimation"] - decimation) for e in rule.entries)
    cands = [e for e in rule.entries if abs(e["decimation"] - decimation) == d_best]

    def dist(e: dict) -> float:
        return (abs(math.log10(noise_std) - math.log10(e["noise_std"]))
                + abs(mtf - e["mtf"]) / 0.15)

    return min(cands, key=dist)["model"]


def default_options(**overrides) -> VBLEOptions:
    """The CLI's default restoration options: VBLE-xz with the exact Gaussian conditional,
    the stopping rule at ``stop_rtol=0.05`` and ``precision="auto"`` (bfloat16 decoder passes,
    optimization and samples, where the device has native bfloat16).

    Keyword arguments override fields of :class:`VBLEOptions`.
    """
    base = {"method": "vble_xz", "conditional": "exact", "stop_rtol": 0.05, "precision": "auto"}
    base.update(overrides)
    return VBLEOptions(**base)
