"""The textgen app: a character-level language model that writes text."""
