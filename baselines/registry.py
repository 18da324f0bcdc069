"""The model zoo's registry: `model.name` -> the builder of a net (or of a reference stepper) and its typed config.

A model is one file in `baselines/`: its `nn.Module`, a config dataclass deriving from `ModelConfig`, and a
builder decorated with `@register("name", config=NameConfig)`. Every module of the package is imported when
`baselines` is, so registering is all a new model does; Hydra's ConfigStore and the tests loop over `MODELS`.

Kinds of entries:

* ``net`` (default) — a trainable net mapping `x: [B, C_in, *space]` and standardised conditioning
  `cond: [B, n_cond]` to `[B, C_out, *space]`; history and bundled outputs are folded into channels by the
  training code (see `NetSpec`).
* ``stepper`` — a reference row that needs no training (persistence, the numerical solver). Its builder returns
  a Stepper: `(frames [B, C, history, *space], cond [B, P]) -> [B, C, bundle, *space]` in physical units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from omegaconf import MISSING
from torch import nn

from pdebench.config.loading import typed_settings
from pdebench.data.netspec import NetSpec
from pdebench.errors import InvalidSetting
from pdebench.registry import Registry

ENTRY_KINDS = ("net", "stepper")


@dataclass
class ModelConfig:
    """Base of every model's config dataclass; `name` is its key in `MODELS`."""

    name: str = MISSING

    @classmethod
    def tiny(cls) -> ModelConfig:
        """Settings small enough for smoke tests on 32-point grids; the tests build every registry entry with these."""
        return cls()

    def check_target(self, target: str) -> None:
        """Refuse, in one sentence (`InvalidSetting`), an `objective.target` whose decoding this model's output cannot
        serve. Training calls it when the config is loaded, before any data; every target is fine by default."""

    def check_spec(self, spec: NetSpec) -> None:
        """Refuse, in one sentence (`InvalidSetting`), data this model cannot serve at these settings: a grid kind, a
        number of spatial axes, a grid size (too few points for the pooling, the graph's radius), or a history and
        bundle its layout cannot take. A model that adapts to the grid instead (the spectral models keep at most the
        modes the grid holds) says so in its docstring and passes here.

        `build_model` calls it before every build, and training calls it with the `NetSpec` read from the train split's
        header (`pdebench.training.config.check_model_data`), before any data loads; so everything a build would refuse
        for the spec belongs here, not in the builder. Every spec is fine by default."""

    @classmethod
    def published_sizes(cls) -> tuple[PublishedSize, ...]:
        """The paper settings whose parameter count this model reproduces (empty for models without a paper, such as
        the reference rows). `pdebench-models --reference` prints them and a test holds each count."""
        return ()


@dataclass(frozen=True)
class PublishedSize:
    """One paper setting of a model and the parameter count its reference code gives there.

    setting: the setting in words, as the paper names it ("U-Net_mod-64 on NavierStokes2D: 3 fields x 4 history
        frames in, 1 frame out, no conditioning").
    config: our model config at that setting.
    spec: the data the net is built for at that setting (fields, history, bundle, conditioning, grid).
    published: trainable parameters of the reference code's model at that setting, counted by instantiating it.
    source: where `published` comes from: repository and module (and the paper's table where it prints the number).
    """

    setting: str
    config: ModelConfig
    spec: NetSpec
    published: int
    source: str

    def count(self) -> int:
        """Trainable parameters of our net at this setting."""
        return count_parameters(build_model(self.config, self.spec))


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters of `net` (the number every table and `PublishedSize` compares)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


Builder = Callable[[Any, NetSpec], nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    config: type[ModelConfig]
    kind: str

    @property
    def trainable(self) -> bool:
        return self.kind == "net"


MODELS: Registry[ModelEntry] = Registry("model")


def register(name: str, *, config: type[ModelConfig], kind: str = "net") -> Callable[[Builder], Builder]:
    """Decorator adding a builder `(config: <config>, spec: NetSpec) -> nn.Module` to `MODELS` under `name`."""
    if not (isinstance(config, type) and issubclass(config, ModelConfig) and is_dataclass(config)):
        raise TypeError(f"model {name!r}: config must be a dataclass deriving from ModelConfig")
    if kind not in ENTRY_KINDS:
        raise ValueError(f"model {name!r}: kind must be one of {ENTRY_KINDS}, got {kind!r}")
    default_name = next(f.default for f in fields(config) if f.name == "name")
    if default_name != name:
        raise ValueError(f"model {name!r}: {config.__name__}.name defaults to {default_name!r}; it must be {name!r}")

    def wrap(builder: Builder) -> Builder:
        MODELS.add(name, ModelEntry(name, builder, config, kind))
        return builder

    return wrap


def model_entry(name: str) -> ModelEntry:
    """The entry registered as `name` (`UnknownName`, listing the registered models, if there is none)."""
    return MODELS[name]


def model_config(config: Mapping[str, Any] | ModelConfig) -> ModelConfig:
    """The typed config object of a model from its plain settings, rejecting unknown keys and wrong types.

    `config["name"]` picks the entry. Any key its dataclass lacks (e.g. `+model.widht=3` on the command line)
    and any value of the wrong type fails here, naming the key, the model and the valid keys.
    """
    if isinstance(config, ModelConfig):
        return config
    if "name" not in config:
        raise InvalidSetting(f"the model config has no 'name'; registered models: {', '.join(sorted(MODELS))}")
    entry = model_entry(str(config["name"]))
    return typed_settings(entry.config, config, "model", f"model {entry.name}")


def check_model_spec(config: Mapping[str, Any] | ModelConfig, spec: NetSpec) -> None:
    """Refuse, in one sentence, a `spec` (grid, history, bundle) the model named by `config.name` cannot serve
    (`ModelConfig.check_spec`); nothing is built."""
    model_config(config).check_spec(spec)


def build_model(config: Mapping[str, Any] | ModelConfig, spec: NetSpec) -> nn.Module:
    """Build the net (or reference stepper) named by `config.name` for `spec`; its builder gets the typed config.
    A spec the model cannot serve is refused first, in one sentence (`ModelConfig.check_spec`)."""
    typed = model_config(config)
    typed.check_spec(spec)
    return model_entry(typed.name).builder(typed, spec)
