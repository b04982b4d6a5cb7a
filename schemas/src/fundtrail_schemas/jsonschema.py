"""JSON Schema export of the contract (`make schemas`); a test fails when files drift from models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from .enriched import DeadLetter, EnrichedEvent
from .events import EVENT_TYPES, SourceEvent
from .rulepack import RulePack

JSONSCHEMA_DIR = Path(__file__).resolve().parents[2] / "jsonschema"


def rendered_schemas() -> dict[str, str]:
    """File name → JSON Schema text for every exported model."""
    docs: dict[str, Any] = {f"{name}.json": model.model_json_schema() for name, model in EVENT_TYPES.items()}
    docs["SourceEvent.json"] = TypeAdapter(SourceEvent).json_schema()
    docs["EnrichedEvent.json"] = EnrichedEvent.model_json_schema()
    docs["DeadLetter.json"] = DeadLetter.model_json_schema()
    docs["RulePack.json"] = RulePack.model_json_schema()
    return {
        name: json.dumps(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **doc}, ensure_ascii=False, indent=2,
            sort_keys=True,
        ) + "\n"
        for name, doc in sorted(docs.items())
    }


def write_schemas(directory: Path = JSONSCHEMA_DIR) -> list[Path]:
    """Write every schema file, removing stale ones."""
    directory.mkdir(parents=True, exist_ok=True)
    rendered = rendered_schemas()
    for stale in directory.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    paths = []
    for name, text in rendered.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def drifted(directory: Path = JSONSCHEMA_DIR) -> list[str]:
    """Names of schema files that differ from the models (missing, stale or changed)."""
    rendered = rendered_schemas()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.json")}
    names = set(rendered) | set(on_disk)
    return sorted(n for n in names if rendered.get(n) != on_disk.get(n))
