"""Consortium definitions (``demo.toml``) and the generator of Besu node configurations."""

from pathlib import Path

DEMO_CONSORTIUM = Path(__file__).resolve().parent / "demo.toml"

__all__ = ["DEMO_CONSORTIUM"]
