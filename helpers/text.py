"""Human numbers (1 ... 9,999 in words): corpus, vocabulary and language-model batches (notebook 06)."""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn

from helpers import config

BOS = "xxbos"
UNK = "xxunk"
# The special tokens of early-2019 fastai, in its order: they give the lesson's vocab of 38.
SPECIAL_TOKENS = (UNK, "xxpad", BOS, "xxfld", "xxmaj", "xxup", "xxrep", "xxwrep")
TRAIN_RANGE = range(1, 8_000)       # 1 ... 7,999
VALID_RANGE = range(8_001, 10_000)  # 8,001 ... 9,999

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n: int) -> str:
    """1 <= n <= 9,999 (else ValueError) in words, 8023 -> "eight thousand twenty three" (notebook 06)."""
    if not isinstance(n, int) or not 1 <= n <= 9_999:
        raise ValueError(f"number_to_words covers the integers 1 ... 9,999, got {n!r}")
    words = []
    thousands, rest = divmod(n, 1000)
    hundreds, rest = divmod(rest, 100)
    for count, name in ((thousands, "thousand"), (hundreds, "hundred")):
        if count:
            words += [_ONES[count], name]
    if rest >= 20:
        tens, rest = divmod(rest, 10)
        words.append(_TENS[tens])
    if rest:
        words.append(_ONES[rest])
    return " ".join(words)


def number_lines(numbers: Iterable[int]) -> list[str]:
    """One line of words per number, the layout of the lesson's ``train.txt`` / ``valid.txt`` (notebook 06)."""
    return [number_to_words(n) for n in numbers]


def make_document(lines: Iterable[str]) -> str:
    """Join lines with ``", "`` into one document that starts with the ``xxbos`` token (notebook 06)."""
    return f"{BOS} " + ", ".join(line.strip() for line in lines)


def tokenize(text: str) -> list[str]:
    """Split on white space, with every ``,`` a token of its own (notebook 06)."""
    return text.replace(",", " , ").split()


@dataclass(frozen=True)
class Corpus:
    """The token lists of the training and the validation document (notebook 06)."""
    train: list[str]
    valid: list[str]
    source: str = "generated"

    def __repr__(self) -> str:
        return (f"Corpus({self.source}): train {len(self.train):,} tokens, valid {len(self.valid):,} tokens; "
                f"valid starts {' '.join(self.valid[:8])} ...")

    def vocab(self) -> "Vocab":
        """The vocabulary of the training tokens, special tokens first (notebook 06)."""
        return Vocab.create(self.train)

    def databunch(self, bs: int = 64, bptt: int = 70, vocab: "Vocab | None" = None) -> "LMDataBunch":
        """Language-model loaders over both documents, like the lesson's ``databunch(bs, bptt)`` (notebook 06)."""
        vocab = self.vocab() if vocab is None else vocab
        return LMDataBunch(LMLoader(vocab.numericalize(self.train), bs, bptt),
                           LMLoader(vocab.numericalize(self.valid), bs, bptt), vocab)


def human_numbers(path: Path | str | None = None) -> Corpus:
    """The corpus, generated if ``path`` is None, else read from the lesson's ``path/train.txt`` and ``valid.txt``
    (one number in words per line) (notebook 06)."""
    if path is None:
        return Corpus(tokenize(make_document(number_lines(TRAIN_RANGE))),
                      tokenize(make_document(number_lines(VALID_RANGE))))
    path, docs = Path(path), []
    for name in ("train.txt", "valid.txt"):
        file = path / name
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing: a human_numbers folder holds train.txt and valid.txt")
        lines = file.read_text(encoding="utf-8").splitlines()
        docs.append(tokenize(make_document(line for line in lines if line.strip())))
    return Corpus(*docs, source=str(path))


class Vocab:
    """Token <-> id. ``itos[i]`` is the token with id ``i``; unknown tokens map to ``xxunk`` (notebook 06)."""

    def __init__(self, itos: Sequence[str]):
        self.itos = list(itos)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("a vocabulary cannot hold the same token twice")

    @classmethod
    def create(cls, tokens: Iterable[str], specials: Sequence[str] = SPECIAL_TOKENS) -> "Vocab":
        """Special tokens first, then the other tokens by falling frequency (ties: first seen first) (notebook 06)."""
        counts = Counter(t for t in tokens if t not in specials)
        return cls([*specials, *(t for t, _ in counts.most_common())])

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {' '.join(self.itos)})"

    def numericalize(self, tokens: Iterable[str]) -> torch.Tensor:
        """Token list -> int64 tensor of ids (notebook 06)."""
        unk = self.stoi.get(UNK, 0)
        return torch.tensor([self.stoi.get(t, unk) for t in tokens], dtype=torch.long)

    def textify(self, ids: torch.Tensor | Iterable[int], sep: str = " ") -> str:
        """Ids -> tokens joined by ``sep`` (notebook 06)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.flatten().tolist()
        return sep.join(self.itos[int(i)] for i in ids)


class LMLoader:
    """Full batches ``(x, y)`` (bs, bptt), ``y`` one token ahead, from ``bs`` rows of one stream (notebook 06);
    ``max_batches`` caps them per epoch; ValueError if too few tokens."""

    def __init__(self, ids: torch.Tensor, bs: int, bptt: int, device: torch.device | None = None,
                 max_batches: int | None = None):
        if bs < 1 or bptt < 1:
            raise ValueError(f"bs and bptt must be positive, got bs={bs}, bptt={bptt}")
        self.device = device or config.device()
        self.bs, self.bptt, self.n_tokens, self.max_batches = bs, bptt, len(ids), max_batches
        row_len = (len(ids) - 1) // bs  # tokens per row that have a next token to predict
        self.n_chunks = row_len // bptt
        if self.n_chunks == 0:
            raise ValueError(f"{len(ids):,} tokens are too few for bs={bs} rows of at least bptt={bptt} + 1 tokens")
        # bs overlapping windows of n_chunks * bptt + 1 tokens, row r starting at token r * row_len
        self.rows = ids.unfold(0, self.n_chunks * bptt + 1, row_len)[:bs].contiguous().to(self.device)

    def __len__(self) -> int:
        return config.n_batches(self.n_chunks, self.max_batches)

    @property
    def n_items(self) -> int:
        """Tokens predicted per epoch (without a cap) (notebook 06)."""
        return self.n_chunks * self.bptt * self.bs

    def __iter__(self):
        for a in range(0, len(self) * self.bptt, self.bptt):  # a: the batch's first column
            yield self.rows[:, a:a + self.bptt].contiguous(), self.rows[:, a + 1:a + self.bptt + 1].contiguous()

    def __repr__(self) -> str:
        return (f"LMLoader({self.n_tokens:,} tokens -> {len(self)} batches of (bs={self.bs}, bptt={self.bptt}); "
                f"{self.n_items:,} predicted per epoch)")


@dataclass
class LMDataBunch:
    """Training and validation ``LMLoader`` s plus the vocabulary (notebook 06)."""
    train_dl: LMLoader
    valid_dl: LMLoader
    vocab: Vocab

    @property
    def device(self) -> torch.device:
        return self.train_dl.device

    def __repr__(self) -> str:
        return (f"LMDataBunch: vocab {len(self.vocab)}, bs {self.train_dl.bs}, bptt {self.train_dl.bptt}; "
                f"train {len(self.train_dl)} batches, valid {len(self.valid_dl)} batches")

    def one_batch(self, valid: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The first batch of the training (or validation) loader (notebook 06)."""
        return next(iter(self.valid_dl if valid else self.train_dl))

    def show_batch(self, rows: int = 5, valid: bool = False, width: int = 120) -> None:
        """Print a plain-text table ``idx | text`` of the first ``rows`` rows of one batch, decoded (notebook 06)."""
        x, _ = self.one_batch(valid=valid)
        texts = [self.vocab.textify(x[i]) for i in range(min(rows, len(x)))]
        texts = [t if len(t) <= width else t[:width - 3].rsplit(" ", 1)[0] + " ..." for t in texts]
        w = max([len("text"), *map(len, texts)])
        lines = [f"{'idx':>3} | text", f"{'-' * 3}-+-{'-' * w}"]
        lines += [f"{i:>3} | {t}" for i, t in enumerate(texts)]
        print("\n".join(lines))


def profile_note() -> str:
    """Print (and return) one line saying what the profile changes for notebook 06 (notebook 06)."""
    p = config.profile()
    what = ("nothing but the smoke run's caps" if p.smoke else
            "nothing - the full corpus with the lesson's batch size, bptt and epochs")
    line = f"human numbers, {p.name} profile: the profile changes {what}"
    print(line)
    return line


class BatchNorm1dFlat(nn.BatchNorm1d):
    """``BatchNorm1d`` over the last dimension of a ``(..., features)`` tensor (notebook 06)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)  # (bs, features) is its own reshape


class RNNRegularizer:
    """Learner callback for AR / TAR regularisation of a model returning ``(logits, raw, dropped)`` (notebook 06): the
    training loss gains ``alpha * mean(dropped**2) + beta * mean((raw[:, t+1] - raw[:, t])**2)``."""

    def __init__(self, alpha: float = 2.0, beta: float = 1.0):
        self.alpha, self.beta = alpha, beta
        self.raw = self.dropped = None

    def after_pred(self, learn) -> None:
        if isinstance(learn.pred, (tuple, list)):
            learn.pred, self.raw, self.dropped = learn.pred

    def after_loss(self, learn) -> None:
        if not learn.model.training or self.raw is None:
            return
        if self.alpha:
            learn.loss = learn.loss + self.alpha * self.dropped.float().pow(2).mean()
        if self.beta and self.raw.shape[1] > 1:
            learn.loss = learn.loss + self.beta * (self.raw[:, 1:] - self.raw[:, :-1]).float().pow(2).mean()
