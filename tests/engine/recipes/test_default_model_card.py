"""The default model's card shows the real-data figures under their labels (bench_real --update-card)."""
from __future__ import annotations

import json
from pathlib import Path

from sparsevit.recipes.default_model import REAL_FIGURES, model_card

REPO = Path(__file__).resolve().parents[3]


def test_card_lists_every_real_figure_with_its_value():
    card = json.loads((REPO / "resources" / "models" / "default" / "bundle.json").read_text())["card"]
    card = dict(card, real_data={k: 0.5 + i / 100 for i, (_, k) in enumerate(REAL_FIGURES)})
    text = model_card(card)
    for i, (label, _key) in enumerate(REAL_FIGURES):
        assert f"| {label} | {0.5 + i / 100:.3f} |" in text
    card["real_data"] = {}
    assert "not measured yet" in model_card(card)
