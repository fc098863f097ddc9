"""The documentation: a short README with the set-up commands up front, links that lead somewhere, every
docs page reachable from the README, and a configuration reference that matches the schema."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SCRIPT = ROOT / "scripts" / "config_reference.py"

MAX_README_LINES = 150
FIRST_SCREEN = 50
# the only set-up commands, as the README states them (each at the start of a line of a shell block)
SETUP_COMMANDS = ("make demo", "make test")

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*\"([^\"]+)\"", re.I)


def reference(*args: str) -> subprocess.CompletedProcess:
    """scripts/config_reference.py run with these arguments, its output captured."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)


def pages():
    return [README, *sorted(DOCS.glob("*.md"))]


def link_targets(text: str) -> list[str]:
    """The targets of the links in Markdown text (not those shown inside code)."""
    text = FENCE.sub("", text)
    text = CODE_SPAN.sub("", text)
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text) + HTML_LINK.findall(text)


def broken_links(page: Path) -> list[str]:
    """The relative links of a page whose file does not exist (URLs and in-page anchors are not checked)."""
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "//")):
            continue  # https:, mailto:, ...; an anchor of the same page
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    return broken


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines, more than {MAX_README_LINES}: move the detail into docs/"
    )


def test_setup_commands_on_the_first_screen():
    first = README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN]
    for command in SETUP_COMMANDS:
        assert any(re.match(rf"{re.escape(command)}(\s|$)", line) for line in first), (
            f"README.md: the set-up command `{command}` is not on a line of its own in the first {FIRST_SCREEN} lines"
        )


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files(page):
    assert broken_links(page) == [], f"{page.relative_to(ROOT)}: links to files that do not exist"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {
        (ROOT / t.split("#", 1)[0]).resolve()
        for t in link_targets(README.read_text(encoding="utf-8"))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)
    }
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert missing == [], f"README.md does not link these docs pages: {missing}"


def test_configuration_reference_is_current():
    run = reference("--check")
    assert run.returncode == 0, run.stderr.strip()


def test_configuration_reference_is_deterministic_and_covers_every_top_level_key():
    import yaml

    first, second = reference(), reference()
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    first = first.stdout
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    for key in schema["properties"]:
        assert re.search(rf"^### `{re.escape(key)}`", first, re.M), f"no section for the top-level key {key}"


# the checks themselves fail when they should


def test_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# there\n")
    page.write_text(
        "[ok](there.md) [ok too](there.md#a-section) [web](https://example.org) [anchor](#top)\n"
        "[gone](missing.md#x) ![picture](missing.svg)\n"
        "`[in code](not-a-link.md)`\n\n```\n[in a block](not-a-link-either.md)\n```\n\n[ref]: gone-too.md\n"
    )
    assert sorted(broken_links(page)) == ["gone-too.md", "missing.md#x", "missing.svg"]


def test_check_fails_on_a_stale_reference(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text((DOCS / "configuration.md").read_text(encoding="utf-8") + "\nedited by hand\n", encoding="utf-8")
    run = reference("--check", "--page", str(stale))
    assert run.returncode == 1
    assert len(run.stderr.strip().splitlines()) == 1 and "not current" in run.stderr


def test_check_fails_when_the_schema_changes(tmp_path):
    import yaml

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    schema["properties"]["a_new_key"] = {"type": "integer", "default": 3, "description": "a key added to the schema"}
    changed = tmp_path / "schema.yaml"
    changed.write_text(yaml.safe_dump(schema, sort_keys=False), encoding="utf-8")
    run = reference("--check", "--schema", str(changed))
    assert run.returncode == 1, "a page written from the old schema passed --check against a changed one"
    page = reference("--schema", str(changed)).stdout
    assert "| `a_new_key` | integer | `3` | a key added to the schema |" in page


def test_the_serving_limits_table_gives_the_schemas_defaults():
    """docs/serving.md's table of the server's limits states each default; the schema holds them."""
    from gnnjec.schema import schema_default
    from gnnjec.serving import LIMITS

    text = (ROOT / "docs" / "serving.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)`(?: \(of the repository\))? \| (\d+(?:\.\d+)?)", text, re.M))
    assert set(LIMITS) | {"max_batch_size"} == set(rows)
    for key, default in rows.items():
        assert float(default) == schema_default(f"serving.{key}"), key
