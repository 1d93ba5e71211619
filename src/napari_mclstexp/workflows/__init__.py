"""What a user asks for, end to end (train-and-save, cross-validation, the demo): the one layer the CLI and
the widgets both call."""
