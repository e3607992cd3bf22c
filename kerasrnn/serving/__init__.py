"""SavedModels for TensorFlow Serving.

- `export`: versioned, atomic exports (`saved_models/<name>/<N>/`), the
  `models.config` that names them, and `atomic_file` for single files;
- `check`: what `kerasrnn serving check` runs: every version read the way
  TF Serving reads it, and the problems found;
- `probe`: the script `check` runs in a process that never imports kerasrnn.

TensorFlow-only, unlike the library's cells and layers; nothing here is
imported by `import kerasrnn`.
"""
