"""Reading docker-compose.yml as Compose does: YAML (with Compose's ``!reset``/``!override``
tags) and ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$`` interpolation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_FILES = [
    COMPOSE_FILE,
    ROOT / "docker" / "compose.cpu.yml",
    ROOT / "docker" / "compose.worker.yml",
    ROOT / "docker" / "compose.multihost.yml",
]

_VAR = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?|-|\?)(?P<arg>[^}]*))?\}"
)


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader that understands Compose's merge-control tags."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


for _tag in ("!reset", "!override"):
    _ComposeLoader.add_constructor(_tag, _tagged)


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_ComposeLoader)


class MissingVariable(KeyError):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Interpolate like Compose: strings, recursively through lists and mappings."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        val = env.get(name)
        empty = not val if op in (":-", ":?") else val is None
        if not empty:
            return val  # type: ignore[return-value]
        if op in (":-", "-"):
            return arg or ""
        if op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        return val or ""

    return _VAR.sub(repl, value)


def service(name: str, env: dict[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """One service of the compose file, interpolated with ``env``."""
    return interpolate(load(path)["services"][name], env)


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}
