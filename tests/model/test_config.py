import pytest

from model.config import LoraSettings, ModelConfig
from runtime.errors import ConfigError
from tests.model.helpers import tiny_config


def test_round_trip_through_dict() -> None:
    config = tiny_config("discriminative", background_weight=0.2)
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_paper_defaults() -> None:
    lora = LoraSettings()
    assert (lora.rank, lora.alpha, lora.dropout) == (128, 256, 0.05)
    assert lora.target_modules == (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    assert lora.adapts_lm_head("gad") and lora.adapts_lm_head("generative")
    assert not lora.adapts_lm_head("discriminative")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "contrastive"}, "kind must be one of"),
        ({"feature_dim": 0}, "feature_dim must be positive"),
        ({"class_names": ("a", "a", "b")}, "unique"),
        ({"class_names": ("a", "open\ndrawer")}, "newlines"),
        ({"class_names": ("a", " padded")}, "surrounding spaces"),
        ({"background_index": 9}, "background_index 9 outside 0..5"),
        ({"lm_weight": -1.0}, "loss weights must be >= 0"),
        ({"short_frames": 0}, "short_frames > 0"),
        ({"label_text": "lower"}, "label_text must be one of"),
        ({"class_names": ("Background", "Jump", "jump")}, "'Jump' and 'jump' both read 'jump'"),
    ],
)
def test_invalid_config_says_what_is_wrong(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(**overrides)


def test_unknown_key_is_refused() -> None:
    data = tiny_config().to_dict() | {"num_class": 22}
    with pytest.raises(ConfigError, match="unknown model config keys"):
        ModelConfig.from_dict(data)


def test_bad_lora_settings() -> None:
    with pytest.raises(ConfigError, match="dropout"):
        LoraSettings(dropout=1.5)
    with pytest.raises(ConfigError, match="rank must be >= 0"):
        LoraSettings(rank=-1)
