"""train layer of the engine (Qt-free)."""
