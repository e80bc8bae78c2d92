"""Dialects: each API surface's request shapes and their translation to canonical changes."""
