"""The exported JSON Schema files in schemas/jsonschema/ match the payload models."""

import json

from schemas.events import EVENT_TYPES
from schemas.export import SCHEMA_DIR, render

REGENERATE = "schemas changed: run `python -m schemas.export` and commit schemas/jsonschema/"


def test_exported_files_match_the_models() -> None:
    on_disk = {path.name: path.read_text() for path in SCHEMA_DIR.glob("*.json")}
    expected = render()
    assert sorted(on_disk) == sorted(expected), REGENERATE
    drifted = [name for name, text in expected.items() if on_disk[name] != text]
    assert drifted == [], f"{REGENERATE} (drifted: {drifted})"


def test_every_json_payload_type_has_a_schema_naming_its_type_and_version() -> None:
    json_types = {spec.type: spec for spec in EVENT_TYPES.values() if spec.model is not None}
    for type_, spec in json_types.items():
        schema = json.loads((SCHEMA_DIR / f"{type_}.v{spec.version}.json").read_text())
        assert schema["$id"] == f"steno-collab:{type_}:v{spec.version}"
        assert schema["x-topic"] == spec.topic.value
        assert spec.model is not None
        assert set(schema["properties"]) == set(spec.model.model_fields)
