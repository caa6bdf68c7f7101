"""Tokenizers built from an uploaded vocabulary, as Elasticsearch's ML node builds them.

Elasticsearch tokenizes text itself (in Java) and hands the native process token ids; the uploaded
TorchScript never sees a string. The sandbox does the same here, so an embedding computed by the
sandbox equals the one a real cluster computes from the same upload.

Supported: ``bert`` (also what eland writes for DistilBERT and other BERT-family tokenizers) and
``mpnet`` (BERT's WordPiece with RoBERTa-style special tokens). The byte-level BPE and SentencePiece
families (``roberta``, ``xlm_roberta``, ``deberta_v2``) and ``bert_ja`` (morphological analysis) are
accepted in configs but refused at inference with a clear reason.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from es_sandbox.http import ApiError

SUPPORTED = ("bert", "mpnet")
MAX_INPUT_CHARS_PER_WORD = 100


@dataclass(frozen=True)
class SpecialTokens:
    cls: str
    sep: str
    pad: str
    unk: str
    mask: str

    def all(self) -> tuple[str, ...]:
        return (self.cls, self.sep, self.pad, self.unk, self.mask)


BERT_SPECIAL = SpecialTokens("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")
ROBERTA_SPECIAL = SpecialTokens("<s>", "</s>", "<pad>", "<unk>", "<mask>")

# The mask token each tokenization expects (fill_mask validates ``mask_token`` against it).
MASK_TOKENS = {
    "bert": "[MASK]",
    "bert_ja": "[MASK]",
    "mpnet": "<mask>",
    "roberta": "<mask>",
    "xlm_roberta": "<mask>",
    "deberta_v2": "[MASK]",
}

# How many tensors the native process passes to forward(): BERT-family models take
# (input_ids, attention_mask, token_type_ids, position_ids); the RoBERTa family only the first two;
# DeBERTa-v2 the first three (see eland's wrappers and Elasticsearch's *TokenizationResult classes).
FORWARD_ARITY = {"bert": 4, "bert_ja": 4, "mpnet": 2, "roberta": 2, "xlm_roberta": 2, "deberta_v2": 3}


@dataclass
class Tokenized:
    """One input after tokenization: ids with special tokens, and whether it was cut."""

    ids: list[int]
    truncated: bool


@dataclass
class WordPieceTokenizer:
    """BasicTokenizer + greedy longest-match WordPiece, with the model's special tokens."""

    vocab: dict[str, int]
    special: SpecialTokens
    do_lower_case: bool
    with_special_tokens: bool
    max_sequence_length: int
    truncate: str
    _never_split: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        self._never_split = frozenset(t for t in self.special.all() if t in self.vocab)

    def token_id(self, token: str) -> int:
        found = self.vocab.get(token)
        if found is None:
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"Vocabulary does not contain the special token [{token}] the tokenization needs",
            )
        return found

    def tokenize(self, text: str) -> Tokenized:
        ids = [self._piece_id(piece) for piece in self.word_pieces(text)]
        special = 2 if self.with_special_tokens else 0
        limit = self.max_sequence_length - special
        truncated = False
        if len(ids) > limit:
            if self.truncate == "none":
                raise ApiError(
                    400,
                    "status_exception",
                    f"Input too large. The tokenized input length [{len(ids) + special}] exceeds the maximum "
                    f"sequence length [{self.max_sequence_length}]",
                )
            ids = ids[:limit]
            truncated = True
        if self.with_special_tokens:
            ids = [self.token_id(self.special.cls), *ids, self.token_id(self.special.sep)]
        return Tokenized(ids, truncated)

    def _piece_id(self, piece: str) -> int:
        found = self.vocab.get(piece)
        return found if found is not None else self.token_id(self.special.unk)

    def word_pieces(self, text: str) -> list[str]:
        out: list[str] = []
        for word in self.basic_tokens(text):
            if word in self._never_split:
                out.append(word)
            else:
                out.extend(self._wordpiece(word))
        return out

    def basic_tokens(self, text: str) -> list[str]:
        """Clean, split CJK characters, lower-case and strip accents, split whitespace and punctuation."""
        tokens: list[str] = []
        for chunk, is_special in self._split_special(_clean_text(text)):
            if is_special:
                tokens.append(chunk)
                continue
            for word in _tokenize_cjk(chunk).split():
                if self.do_lower_case:
                    word = _strip_accents(word.lower())
                tokens.extend(_split_punctuation(word))
        return tokens

    def _split_special(self, text: str) -> Iterator[tuple[str, bool]]:
        """Special tokens typed in the text stay whole, as Elasticsearch's never-split set keeps them."""
        if not self._never_split:
            yield text, False
            return
        start = 0
        i = 0
        while i < len(text):
            match = next((t for t in self._never_split if text.startswith(t, i)), None)
            if match is None:
                i += 1
                continue
            if i > start:
                yield text[start:i], False
            yield match, True
            i += len(match)
            start = i
        if start < len(text):
            yield text[start:], False

    def _wordpiece(self, word: str) -> list[str]:
        if len(word) > MAX_INPUT_CHARS_PER_WORD:
            return [self.special.unk]
        pieces: list[str] = []
        start = 0
        while start < len(word):
            end = len(word)
            current = None
            while start < end:
                candidate = word[start:end] if start == 0 else "##" + word[start:end]
                if candidate in self.vocab:
                    current = candidate
                    break
                end -= 1
            if current is None:
                return [self.special.unk]
            pieces.append(current)
            start = end
        return pieces


def build_tokenizer(kind: str, settings: dict[str, object], vocabulary: list[str]) -> WordPieceTokenizer:
    """The tokenizer for a model's ``inference_config.*.tokenization.<kind>`` settings."""
    if kind not in SUPPORTED:
        raise ApiError(
            400,
            "status_exception",
            f"The sandbox cannot tokenize for [{kind}] tokenization; supported: {list(SUPPORTED)}",
        )
    vocab = {token: index for index, token in enumerate(vocabulary)}
    special = BERT_SPECIAL if kind == "bert" else ROBERTA_SPECIAL
    return WordPieceTokenizer(
        vocab=vocab,
        special=special,
        do_lower_case=bool(settings.get("do_lower_case", False)),
        with_special_tokens=bool(settings.get("with_special_tokens", True)),
        max_sequence_length=int(str(settings.get("max_sequence_length", 512))),
        truncate=str(settings.get("truncate", "first")),
    )


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _clean_text(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        out.append(" " if _is_whitespace(ch) else ch)
    return "".join(out)


def _tokenize_cjk(text: str) -> str:
    return "".join(f" {ch} " if _is_cjk(ord(ch)) else ch for ch in text)


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for ch in word:
        if _is_punctuation(ch):
            if current:
                out.append("".join(current))
                current = []
            out.append(ch)
        else:
            current.append(ch)
    if current:
        out.append("".join(current))
    return out
