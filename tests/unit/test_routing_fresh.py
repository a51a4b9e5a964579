"""The fresh routing set (tests/data/routing_fresh.yaml): well formed, held out, and readable by ``laneway route-eval``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from devtools.evals.routes import LANES, load_labelled

FRESH = Path(__file__).parents[1] / "data" / "routing_fresh.yaml"


def test_the_fresh_set_has_100_held_out_items_over_every_lane():
    items = load_labelled(FRESH)
    assert len(items) >= 100
    assert {i.split for i in items} == {"test"}
    assert {i.lane for i in items} == set(LANES)
    assert len({i.item_id for i in items}) == len(items)
    assert all(i.item_id.startswith("f") for i in items)


def test_route_eval_reads_the_fresh_set(tmp_path):
    out = tmp_path / "fresh.json"
    result = CliRunner().invoke(main, ["route-eval", "--data", str(FRESH), "--split", "test", "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy test" in result.output and f"({len(load_labelled(FRESH))} items" in result.output
