"""docs/bad_inputs.md stays true: at least 60 rows, each naming tests that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "docs" / "bad_inputs.md"


def rows() -> list[list[str]]:
    out = []
    for line in CATALOGUE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 3 and cells[0] not in ("Input", "---"):
            out.append(cells)
    return out


def test_catalogue_has_at_least_60_rows_each_backed_by_a_test():
    found = rows()
    assert len(found) >= 60, len(found)
    for inp, _seen, tests in found:
        refs = re.findall(r"`([\w/]+\.py)?::(test_\w+)", tests)
        assert refs, f"row {inp!r} names no test"
        current = None
        for file, name in refs:
            current = file or current  # `::other_test` continues the previous file
            assert current, f"row {inp!r}: {name} without a file"
            source = (ROOT / "tests" / current).read_text()
            assert re.search(rf"^def {name}\(", source, re.M), f"row {inp!r}: no {name} in tests/{current}"


def test_readme_links_the_catalogue():
    assert "docs/bad_inputs.md" in (ROOT / "README.md").read_text()
