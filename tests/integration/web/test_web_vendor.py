"""The vendored libraries are the files VENDOR.md lists, served from /static/vendor/."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi.testclient import TestClient

import marketbot

PACKAGE = Path(marketbot.__file__).resolve().parent
VENDOR = PACKAGE / "assets" / "vendor"
TABLE_ROW = re.compile(
    r"^\| (?P<name>[\w.-]+) \| (?P<version>[\d.]+) \| "
    r"`(?P<file>[^`]+)` \| `(?P<sha>[0-9a-f]{64})` \|",
    re.MULTILINE,
)


def listed() -> list[re.Match[str]]:
    return list(TABLE_ROW.finditer((PACKAGE / "web" / "static" / "VENDOR.md").read_text()))


def test_vendor_md_when_read_lists_the_five_libraries_at_their_major_versions() -> None:
    versions = {row["name"]: row["version"] for row in listed()}

    assert set(versions) == {
        "htmx.org",
        "htmx-ext-json-enc",
        "lightweight-charts",
        "chart.js",
        "chartjs-chart-matrix",
    }
    majors = {name: version.split(".")[0] for name, version in versions.items()}
    assert majors == {
        "htmx.org": "2",
        "htmx-ext-json-enc": "2",
        "lightweight-charts": "5",
        "chart.js": "4",
        "chartjs-chart-matrix": "3",
    }


def test_vendored_files_when_hashed_match_vendor_md_and_keep_their_licences() -> None:
    for row in listed():
        path = VENDOR / row["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha"], row["file"]
        assert any(path.parent.glob("LICENSE*")), row["name"]
    assert (VENDOR / "lightweight-charts" / "NOTICE").is_file()


def test_vendored_files_when_listed_are_the_only_scripts_in_the_vendor_folder() -> None:
    scripts = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*.js") if p.is_file()}

    assert scripts == {row["file"] for row in listed()}


def test_static_vendor_when_requested_serves_the_same_bytes(client: TestClient) -> None:
    for row in listed():
        response = client.get(f"/static/vendor/{row['file']}")
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == row["sha"]
