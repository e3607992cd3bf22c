"""The applications bundled with kerasrnn (installed as ``kerasrnn.apps``)."""
