"""Every number in README.md's results section comes from a committed file: the report (metrics/report.md),
a results JSON under metrics/, or params.yaml; or its paragraph says it is a side run (with its command)."""
import json
import re

from conftest import ROOT

NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:/\d[\d,]*)?")
SIDE_RUN = "side run"


def results_section():
    text = (ROOT / "README.md").read_text()
    start = text.index("## Results of the default run")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def paragraphs(section):
    """Blank-line separated blocks, bullets (nested ones too) and table rows each on their own."""
    blocks = []
    for block in re.split(r"\n\s*\n", section):
        blocks += [b for b in re.split(r"\n(?=\s*- |\s*\|[^|\n]*\|)", block) if b.strip()]
    return blocks


def json_numbers(value):
    """Every number in a JSON value, as written and as a percentage with one and no decimal."""
    if isinstance(value, dict):
        return {n for v in value.values() for n in json_numbers(v)} | {n for k in value for n in NUMBER.findall(k)}
    if isinstance(value, list):
        return {n for v in value for n in json_numbers(v)}
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return set(NUMBER.findall(str(value))) if isinstance(value, str) else set()
    return {str(value), f"{value:.3f}".rstrip("0").rstrip("."), f"{value:.2f}", f"{100 * value:.1f}",
            f"{100 * value:.0f}", f"{value:.1f}", f"{value:,}" if isinstance(value, int) else str(value)}


def committed_numbers():
    numbers = set(NUMBER.findall((ROOT / "metrics" / "report.md").read_text()))
    numbers |= set(NUMBER.findall((ROOT / "params.yaml").read_text()))
    for path in (ROOT / "metrics").rglob("*.json"):
        numbers |= json_numbers(json.loads(path.read_text()))
    return numbers


def unsourced(section, known):
    """(number, paragraph start) for each number of a paragraph not marked as a side run that no committed
    file holds."""
    missing = []
    for block in paragraphs(section):
        if SIDE_RUN in block.lower():
            continue
        for number in NUMBER.findall(block):
            if number.replace(",", "") not in known and number not in known:
                missing.append((number, block.strip()[:60]))
    return missing


def test_every_results_number_is_in_a_committed_file_or_marked_as_a_side_run():
    known = committed_numbers()
    known |= {n.replace(",", "") for n in known}
    assert unsourced(results_section(), known) == []


def test_the_check_catches_an_invented_number_and_spares_a_marked_side_run():
    known = {"12", "34.5"}
    assert unsourced("- 12 of 34.5\n\n- and 77.7 more", known) == [("77.7", "- and 77.7 more")]
    assert unsourced("- 77.7 in a side run (`dvc exp run -S seed=3`)", known) == []
