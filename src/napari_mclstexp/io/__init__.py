"""io layer of the engine (Qt-free)."""
