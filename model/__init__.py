"""The GAD model core: backbones, the classifier, checkpoints.

Importing `model` imports nothing heavy; torch-using modules are imported by name
(`model.gad`, `model.backbone`, `model.checkpoint`). `model.config`, `runtime.errors` and
`runtime.windowing` are torch-free and shared with the service.
"""
