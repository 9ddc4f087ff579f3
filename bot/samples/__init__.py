"""Bundled sample incidents, stored as the bodies the real APIs return (see pd-9876/STORY.md)."""

from pathlib import Path

SAMPLES_DIR = Path(__file__).parent
DEFAULT_SAMPLE = SAMPLES_DIR / "pd-9876"
