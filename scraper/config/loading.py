"""Reading config.yaml and ``-s`` pairs, and layering every source of settings into one
``Settings`` by one function, ``resolve_settings``.

Precedence, highest first: ``-s`` on the command line, a schedule's ``settings``,
the spider's ``custom_settings``, config.yaml, defaults. Every layer is checked
against the schema; an unknown key is an error naming the nearest valid one, a
bad value is an error naming the key, the value and the layer it came from.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..exceptions import ConfigError
from .schema import SCHEMA, check_layer
from .settings import Settings

__all__ = ["ConfigFile", "Layer", "load_config", "merge_settings", "parse_cli_settings",
           "resolve_settings"]

#: (where it came from, its settings): the source names the layer in error messages.
Layer = tuple[str, Mapping[str, Any] | None]


def merge_settings(*layers: Layer) -> Settings:
    """Defaults, then each ``(source, layer)`` in order, later layers winning."""
    values = {name: copy.deepcopy(s.default) for name, s in SCHEMA.items()}
    for source, layer in layers:
        if layer:
            values.update(check_layer(layer, source))
    return Settings.from_values(values)


@dataclass(frozen=True)
class ConfigFile:
    """A loaded config.yaml: its settings layer and the directory paths are relative to."""

    path: Path | None
    base_dir: Path
    settings: dict[str, Any]

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "defaults"


def resolve_settings(config: ConfigFile | None = None, *,
                     custom: Layer | None = None,
                     schedule: Layer | None = None,
                     cli: Mapping[str, Any] | None = None) -> Settings:
    """The settings of a crawl: defaults ← config file ← ``custom`` (the spider's
    ``custom_settings``, with its source) ← ``schedule`` ← ``cli`` (``-s``)."""
    layers: list[Layer] = []
    if config is not None:
        layers.append((config.source, config.settings))
    for layer in (custom, schedule):
        if layer is not None:
            layers.append(layer)
    layers.append(("-s", cli))
    return merge_settings(*layers)


def parse_cli_settings(pairs: list[str], flag: str = "-s") -> dict[str, Any]:
    """``KEY=VALUE`` strings from the command line, values read as YAML."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair}: expected KEY=VALUE")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


def load_config(path: str | Path | None, cwd: Path | None = None) -> ConfigFile:
    """Read ``path`` (an error if missing), or ./config.yaml if present, else defaults."""
    cwd = cwd or Path.cwd()
    explicit = path is not None
    file = Path(path) if path is not None else cwd / "config.yaml"
    if not explicit and not file.is_file():
        return ConfigFile(None, cwd, {})
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {file}: not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {file}: cannot be read ({e.__class__.__name__}: {e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config file {file}:{where}: invalid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {file}: expected a mapping of settings, got {type(data).__name__}")
    check_layer(data, str(file))  # fail early, naming the file
    return ConfigFile(file, file.resolve().parent, data)
