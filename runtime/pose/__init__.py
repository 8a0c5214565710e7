"""Body pose from camera frames: BlazePose's detector and landmark model in onnxruntime.

numpy + onnxruntime + cv2 only (the serving image). The pipeline, one frame at a time:

    frame → letterbox 224 → detector (anchors.py, detector.py) → best person's hip centre
          and body-size keypoints → rotated square ROI (roi.py) → warp to 256 → landmark
          model (landmarks.py) → 33 landmarks in image pixels → pose features
          (runtime/pose_features.py) → one row per frame (encoder.py: PoseFrameEncoder)

With tracking (PoseFrameEncoder.encode_tracked / encode_pixels_tracked) the landmarks' own
alignment points give the next frame's ROI and the detector runs only when the person is
lost: a stream's session keeps its ROI (service/session.py), a clip is tracked in order
(track.py, for /classify).

The ONNX graphs are converted once from the `.tflite` files of the `mediapipe==0.10.14`
wheel (model/export/pose.py) and checked there against the TF Lite reference runtime.
"""
