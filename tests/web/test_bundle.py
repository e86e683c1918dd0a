"""The committed bundle in web/dist was built from the current web/ sources (no Node needed)."""

import re

from tests.web.bundle import DIST, recorded, source_files, source_hash


def test_bundle_matches_sources() -> None:
    info = recorded()
    assert info["inputs"] == source_files(), (
        "web/ inputs changed: run `make web` and commit web/dist"
    )
    assert info["source_sha256"] == source_hash(), (
        "web/dist is stale against web/src: run `make web` and commit web/dist"
    )


def test_index_references_only_committed_assets() -> None:
    html = (DIST / "index.html").read_text()
    assets = re.findall(r'(?:src|href)="/(assets/[^"]+)"', html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert (DIST / asset).is_file(), f"index.html points at missing {asset}"
