"""The torch-free runtime: numpy + onnxruntime + opencv only. What the serving image runs:
windowing, manifests, video, preprocessing, segments, ONNX sessions, frame encoders and
engines. Imports nothing else of ours."""
