"""Export the JSON Schema of every JSON payload into schemas/jsonschema/.

Run `python -m schemas.export` after changing a payload model.
"""

import json
from pathlib import Path

from schemas.events import EVENT_TYPES

SCHEMA_DIR = Path(__file__).parent / "jsonschema"


def render() -> dict[str, str]:
    """File name -> JSON text, for every event type with a JSON payload."""
    files = {}
    for spec in EVENT_TYPES.values():
        if spec.model is None:
            continue
        schema = spec.model.model_json_schema()
        schema["$id"] = f"steno-collab:{spec.type}:v{spec.version}"
        schema["x-topic"] = spec.topic.value
        files[f"{spec.type}.v{spec.version}.json"] = (
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )
    return files


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for stale in SCHEMA_DIR.glob("*.json"):
        stale.unlink()
    for name, text in render().items():
        (SCHEMA_DIR / name).write_text(text)


if __name__ == "__main__":
    main()
