"""The committed web bundle's source hash, computed exactly as web/scripts/stamp.mjs does."""

import hashlib
import json
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
DIST = WEB / "dist"
INPUTS = (
    "index.html",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vite.config.ts",
    "src",
)


def source_files() -> list[str]:
    paths: list[Path] = []
    for name in INPUTS:
        path = WEB / name
        paths.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return sorted(p.relative_to(WEB).as_posix() for p in paths)


def source_hash() -> str:
    digest = hashlib.sha256()
    for name in source_files():
        digest.update(name.encode() + b"\0")
        digest.update((WEB / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def recorded() -> dict[str, object]:
    return json.loads((DIST / "build-info.json").read_text())
