"""SavedModels for TensorFlow Serving.

- `export`: versioned, atomic exports (`saved_models/<name>/<N>/`) and the
  `models.config` that names them;
- `check`: `kerasrnn serving check` and `serving config`, which read the
  exports the way TF Serving does;
- `probe`: the script `check` runs in a process that never imports kerasrnn.

TensorFlow-only, unlike the library's cells and layers; nothing here is
imported by `import kerasrnn`.
"""
