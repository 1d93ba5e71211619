"""data layer of the engine (Qt-free)."""
