"""Write the model card (MODEL.md) of every model file committed under results/**/models/.

    python results/model_cards.py

``npdvae export`` writes a card with every model it exports; this writes the cards of the
models exported before cards existed, and again after a change to the card's format. Each
card is read from its model file alone (npdvae/run_folder/model_card.py)."""
from pathlib import Path

from npdvae.run_folder.model_card import write_model_card

HERE = Path(__file__).parent

for model in sorted(HERE.glob("**/models/*.h5")):
    print(write_model_card(model).relative_to(HERE.parent))
