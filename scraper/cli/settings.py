"""``settings [--get KEY]``: the merged settings (defaults ← config.yaml ← the spider's
custom_settings with ``--spider`` ← ``-s``) as YAML on standard output, dotted keys as
nested blocks (``retry:`` then ``  attempts: 3``), in the schema's order. The output is
itself a valid config.yaml that gives the same settings.

``--get KEY`` prints one value: a scalar bare (``true``, ``null``, ``16``, a string as
it is), a list or a group of keys (``--get retry``) as YAML. An unknown KEY is a usage
error naming the nearest known one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from ..exceptions import ConfigError
from .run import settings_args

__all__ = ["add_parsers", "dump_yaml", "nested", "plain"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "settings", help="print the merged settings as YAML",
        description="Print the settings a crawl would use (defaults, config.yaml, the spider's "
                    "custom_settings with --spider, -s) as YAML, nested keys as blocks; or one "
                    "value with --get KEY.")
    p.set_defaults(handler=settings_command)
    p.add_argument("--get", metavar="KEY",
                   help="print only this setting's value (a dotted key such as retry.attempts, "
                        "or a group such as retry)")
    p.add_argument("--spider", metavar="NAME", help="include that spider's custom_settings")
    settings_args(p)


def settings_command(args: argparse.Namespace) -> int:
    from ..config import load_config, parse_cli_settings, resolve_settings
    from ..config.schema import suggest
    from ..crawl.runner import crawl_settings
    from ..loader import load_spider

    config = load_config(args.config)
    cli = parse_cli_settings(args.settings)
    merged = resolve_settings(config, cli=cli)
    if args.spider:
        cls = load_spider(args.spider, merged.crawl.spiders_path, config.base_dir)
        merged = crawl_settings(cls, config=config, settings=cli)
    tree = nested(merged)
    if args.get is None:
        sys.stdout.write(dump_yaml(tree))
        return 0
    node: Any = tree
    for part in args.get.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"settings --get {args.get}: unknown setting {args.get!r}"
                              f"{suggest(args.get)}")
        node = node[part]
    sys.stdout.write(_value_text(node) + "\n")
    return 0


def plain(value: Any) -> Any:
    """A settings value as YAML can write it: tuples as lists, mappings as dicts."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def nested(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested mappings, in the order of ``settings``."""
    tree: dict[str, Any] = {}
    for key, value in settings.items():
        *groups, leaf = key.split(".")
        node = tree
        for g in groups:
            node = node.setdefault(g, {})
        node[leaf] = plain(value)
    return tree


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return dump_yaml(value).rstrip("\n")


def dump_yaml(value: Any) -> str:
    """YAML with mappings as blocks and lists of scalars inline (``[429, 500]``), keys in
    their order."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def mapping(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
        return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=False)

    def sequence(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
        flow = all(not isinstance(x, dict | list) for x in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    Dumper.add_representer(dict, mapping)
    Dumper.add_representer(list, sequence)
    return yaml.dump(plain(value), Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)
