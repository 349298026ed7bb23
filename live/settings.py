"""The engine's settings live: each dbt model's config block as dbt renders it from the
project's vars, so live runs the engine with the very settings the warehouse's models get."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from book_engine.surfaces import SurfaceSettings
from foundation.project import PROJECT_ROOT, project_vars
from gex.options_surface import OptionsSettings, ProfileSettings
from live.session import LiveSettings

ENGINE_MODELS_YML = PROJECT_ROOT / "python_models" / "silver" / "_engine.yml"
RETRIEVAL_MODELS_YML = PROJECT_ROOT / "python_models" / "gold" / "_retrieval.yml"
_TEMPLATE = re.compile(r"\{\{\s*var\('(\w+)'\)((?:\['\w+'\])*)\s*\}\}")


def model_config(yml: Path, model: str, key: str) -> dict[str, Any]:
    """A dbt model's config block as dbt renders it from the project's vars."""
    models = yaml.safe_load(yml.read_text())["models"]
    config = next(m for m in models if m["name"] == model)["config"][key]
    variables = project_vars()
    return {
        name: _TEMPLATE.sub(lambda match: _rendered(variables, match), str(value))
        for name, value in config.items()
        if "env_var(" not in str(value)
    }


def _rendered(variables: dict[str, Any], match: re.Match[str]) -> str:
    value = variables[match.group(1)]
    for key in re.findall(r"\['(\w+)'\]", match.group(2)):
        value = value[key]
    return str(value)


def live_settings() -> LiveSettings:
    options_config = model_config(
        ENGINE_MODELS_YML, "engine_options_quote_partitions", "options_settings"
    )
    return LiveSettings(
        surfaces=SurfaceSettings.from_config(
            model_config(ENGINE_MODELS_YML, "engine_book_snapshot_1s", "surface_settings")
        ),
        options=OptionsSettings.from_config(options_config),
        profile=ProfileSettings.from_config(options_config),
        options_config=options_config,
    )
