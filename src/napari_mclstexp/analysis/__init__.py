"""analysis layer of the engine (Qt-free)."""
