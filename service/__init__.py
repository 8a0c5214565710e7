"""The streaming service. Never imports torch: it serves exported ONNX packages."""
