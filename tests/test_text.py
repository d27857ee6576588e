"""helpers.text: the human-numbers corpus, its vocabulary, language-model batches, and the layers,
loss and callback notebook 06 uses. Figures to match come from the lesson (LESSON7.md section 7)."""
from __future__ import annotations

import functools
import http.server
import tarfile
import threading
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import config, text
from helpers.download import REGISTRY, untar_data
from helpers.losses import cross_entropy_flat


@pytest.fixture(scope="module")
def corpus():
    return text.human_numbers()


# --- an independent oracle: parse words back into numbers ---------------------------------------
_VALUES = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                      "thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_VALUES.update({w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)})


def words_to_number(words: list[str]) -> int:
    """'eight thousand twenty three' -> 8023, written separately from the generator."""
    total, current = 0, 0
    for w in words:
        if w == "thousand":
            total, current = total + current * 1000, 0
        elif w == "hundred":
            current *= 100
        else:
            current += _VALUES[w]
    return total + current


def numbers_in(tokens: list[str]) -> list[int]:
    """The numbers a document spells, in order (the leading xxbos dropped)."""
    assert tokens[0] == text.BOS
    groups, cur = [], []
    for t in tokens[1:] + [","]:
        if t == ",":
            groups.append(cur)
            cur = []
        else:
            cur.append(t)
    assert all(groups), "no empty item between two commas"
    return [words_to_number(g) for g in groups]


# --- corpus -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, words", [
    (1, "one"), (7, "seven"), (10, "ten"), (13, "thirteen"), (19, "nineteen"), (20, "twenty"), (40, "forty"),
    (42, "forty two"), (99, "ninety nine"), (100, "one hundred"), (101, "one hundred one"),
    (110, "one hundred ten"), (115, "one hundred fifteen"), (999, "nine hundred ninety nine"),
    (1000, "one thousand"), (1001, "one thousand one"), (1010, "one thousand ten"),
    (2019, "two thousand nineteen"), (3400, "three thousand four hundred"),
    (7999, "seven thousand nine hundred ninety nine"), (8001, "eight thousand one"),
    (8023, "eight thousand twenty three"), (9999, "nine thousand nine hundred ninety nine"),
])
def test_spellings(n, words):
    assert text.number_to_words(n) == words
    assert words_to_number(words.split()) == n


@pytest.mark.parametrize("bad", [0, -3, 10_000, 2.0, "7"])
def test_spelling_rejects_numbers_outside_the_corpus(bad):
    with pytest.raises(ValueError):
        text.number_to_words(bad)


def test_token_counts_match_the_lesson(corpus):
    assert len(corpus.valid) == 13_017  # the lesson's figure, xxbos included
    assert len(corpus.train) == 50_079
    assert corpus.train[:6] == ["xxbos", "one", ",", "two", ",", "three"]
    assert corpus.valid[:7] == ["xxbos", "eight", "thousand", "one", ",", "eight", "thousand"]
    assert corpus.train.count(",") == 7_998 and corpus.valid.count(",") == 1_998
    assert corpus.train.count("xxbos") == corpus.valid.count("xxbos") == 1


def test_split_boundaries(corpus):
    train, valid = numbers_in(corpus.train), numbers_in(corpus.valid)
    assert train == list(range(1, 8_000))
    assert valid == list(range(8_001, 10_000))
    assert 8_000 not in train and 8_000 not in valid
    assert " ".join(corpus.valid[-6:]) == "nine thousand nine hundred ninety nine"
    assert " ".join(corpus.train[-6:]) == "seven thousand nine hundred ninety nine"
    assert "eight thousand ," not in " ".join(corpus.valid)  # 8,000 would read "eight thousand"


def test_tokenize_and_document():
    assert text.tokenize("xxbos one, two ,three") == ["xxbos", "one", ",", "two", ",", "three"]
    assert text.make_document(["one", " two ", "three"]) == "xxbos one, two, three"


# --- vocabulary ---------------------------------------------------------------------------------
def test_vocab_is_the_lessons_38(corpus):
    vocab = corpus.vocab()
    assert len(vocab) == 38
    assert vocab.itos[:8] == list(text.SPECIAL_TOKENS)
    assert vocab.itos[8] == ","  # the most frequent token
    assert set(vocab.itos[8:]) == set(corpus.train) - {"xxbos"}
    assert set(corpus.valid) <= set(vocab.itos)  # nothing in validation is unknown


def test_vocab_round_trip(corpus):
    vocab = corpus.vocab()
    ids = vocab.numericalize(corpus.valid)
    assert ids.dtype == torch.long and ids.shape == (13_017,)
    assert vocab.textify(ids).split(" ") == corpus.valid
    assert [vocab.itos[i] for i in vocab.numericalize(["nine", ","]).tolist()] == ["nine", ","]
    assert vocab.textify([vocab.stoi["one"], vocab.stoi["hundred"]]) == "one hundred"


def test_vocab_unknown_and_duplicates():
    vocab = text.Vocab.create(["a", "b", "a"])
    assert vocab.itos[8:] == ["a", "b"]
    assert vocab.textify(vocab.numericalize(["b", "zebra"])) == "b xxunk"
    with pytest.raises(ValueError):
        text.Vocab(["a", "a"])


# --- language-model loader ----------------------------------------------------------------------
def test_loader_by_hand():
    """A stream 0..999 in 4 rows of 249 predictable tokens, chunks of 7: values are positions."""
    dl = text.LMLoader(torch.arange(1000), bs=4, bptt=7, device=torch.device("cpu"))
    assert len(dl) == 249 // 7 == 35
    batches = list(dl)
    assert len(batches) == 35
    x0, y0 = batches[0]
    assert x0.tolist() == [list(range(r * 249, r * 249 + 7)) for r in range(4)]
    assert y0.tolist() == [list(range(r * 249 + 1, r * 249 + 8)) for r in range(4)]
    x1, _ = batches[1]
    assert x1[:, 0].tolist() == [r * 249 + 7 for r in range(4)]
    assert all(x.shape == y.shape == (4, 7) for x, y in batches)


def test_loader_continuity_and_shift(corpus):
    vocab = corpus.vocab()
    ids = vocab.numericalize(corpus.train)
    data = corpus.databunch(bs=64, bptt=20)
    dl = data.train_dl
    assert len(dl) == ((len(ids) - 1) // 64) // 20 == 39
    batches = list(dl)
    xs = torch.cat([x for x, _ in batches], dim=1).cpu()
    ys = torch.cat([y for _, y in batches], dim=1).cpu()
    row_len = (len(ids) - 1) // 64
    for r in range(64):  # each row is one contiguous stretch of the stream, read left to right
        start = r * row_len
        assert torch.equal(xs[r], ids[start:start + xs.shape[1]])
        assert torch.equal(ys[r], ids[start + 1:start + 1 + xs.shape[1]])
    for (x, y), (x_next, _) in zip(batches, batches[1:]):
        assert x.shape == y.shape == (64, 20)
        assert torch.equal(y[:, :-1], x[:, 1:])  # targets are the inputs one token later
        assert torch.equal(y[:, -1], x_next[:, 0])  # and batch k+1 picks up where batch k stopped
    # the rows tile the stream: row r ends where row r + 1 begins (up to the unread tail of the row)
    assert xs.shape[1] <= row_len and ids[row_len] == xs[1, 0]


def test_loader_device_and_text(corpus):
    data = corpus.databunch(bs=64, bptt=3)
    x, y = data.one_batch()
    assert x.device.type == y.device.type == config.device().type
    assert data.vocab.textify(x[0]) == "xxbos one ,"
    assert data.vocab.textify(y[0]) == "one , two"
    xv, _ = data.one_batch(valid=True)
    assert data.vocab.textify(xv[0]) == "xxbos eight thousand"
    assert len(data.valid_dl) == ((13_017 - 1) // 64) // 3


def test_loader_cap_and_errors():
    dl = text.LMLoader(torch.arange(1000), bs=4, bptt=7, device=torch.device("cpu"), max_batches=3)
    assert len(dl) == 3 and len(list(dl)) == 3
    with pytest.raises(ValueError):
        text.LMLoader(torch.arange(10), bs=4, bptt=7)
    with pytest.raises(ValueError):
        text.LMLoader(torch.arange(100), bs=0, bptt=7)


def test_show_batch_table(corpus, capsys):
    data = corpus.databunch(bs=64, bptt=20)
    assert data.show_batch(rows=3, width=500) is None  # prints, returns nothing to echo in a notebook
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 3
    assert lines[2].startswith("  0 | xxbos one , two , three")
    x, _ = data.one_batch()
    row1 = data.vocab.textify(x[1])  # shown whole: it fits in 500 characters
    assert lines[3].rstrip() == f"  1 | {row1}"
    data.show_batch(rows=1, width=30)
    long = capsys.readouterr().out.splitlines()[2]
    assert long.endswith(" ...") and len(long) <= len("  0 | ") + 30


# --- the two routes to the data ----------------------------------------------------------------
def write_human_numbers(path):
    """The generated corpus as the lesson's ``train.txt`` / ``valid.txt``, one number per line."""
    path.mkdir(parents=True, exist_ok=True)
    for name, numbers in (("train.txt", text.TRAIN_RANGE), ("valid.txt", text.VALID_RANGE)):
        (path / name).write_text("\n".join(text.number_lines(numbers)) + "\n", encoding="utf-8")
    return path


def test_files_route_agrees_with_generator(tmp_path, corpus):
    folder = write_human_numbers(tmp_path / "human_numbers")
    lines = (folder / "valid.txt").read_text().splitlines()
    assert len(lines) == 1_999 and lines[0] == "eight thousand one" and lines[22] == "eight thousand twenty three"
    assert len((folder / "train.txt").read_text().splitlines()) == 7_999
    read = text.human_numbers(folder)
    assert read.train == corpus.train and read.valid == corpus.valid


def test_reader_ignores_blank_lines_and_reports_missing_files(tmp_path):
    (tmp_path / "train.txt").write_text("one\n\ntwo\r\nthree\n\n")
    (tmp_path / "valid.txt").write_text("four\n")
    got = text.human_numbers(tmp_path)
    assert got.train == ["xxbos", "one", ",", "two", ",", "three"] and got.valid == ["xxbos", "four"]
    (tmp_path / "valid.txt").unlink()
    with pytest.raises(FileNotFoundError, match="valid.txt"):
        text.human_numbers(tmp_path)


def test_registry_entry():
    ds = REGISTRY["human_numbers"]
    assert ds.url == "http://files.fast.ai/data/examples/human_numbers.tgz"
    assert ds.folder == "human_numbers" and ds.size == 30252


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_route_agrees_with_generator(tmp_path, monkeypatch, corpus):
    """Pack the lesson-format files as the archive, serve it on loopback, fetch it through the registry."""
    served = tmp_path / "served"
    served.mkdir()
    write_human_numbers(tmp_path / "pack" / "human_numbers")
    with tarfile.open(served / "human_numbers.tgz", "w:gz") as tar:
        tar.add(tmp_path / "pack" / "human_numbers", arcname="human_numbers")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HELPERS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("HELPERS_DATA", str(tmp_path / "data"))
        monkeypatch.setenv("HELPERS_PROGRESS", "none")
        path = untar_data("human_numbers")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert path == (tmp_path / "data" / "human_numbers").resolve()
    read = text.human_numbers(path)
    assert read.train == corpus.train and read.valid == corpus.valid
    assert read.vocab().itos == corpus.vocab().itos


# --- loss, layer, regulariser ------------------------------------------------------------------
def test_batchnorm1d_flat_matches_batchnorm1d():
    torch.manual_seed(0)
    x = torch.randn(4, 5, 6) * 3 + 1
    flat, ref = text.BatchNorm1dFlat(6), nn.BatchNorm1d(6)
    out = flat(x)
    assert out.shape == x.shape
    assert torch.allclose(out, ref(x.reshape(20, 6)).reshape(4, 5, 6), atol=1e-6)
    assert torch.allclose(flat.running_mean, ref.running_mean) and torch.allclose(flat.running_var, ref.running_var)
    assert torch.allclose(flat(x[:, 0]), ref(x[:, 0]), atol=1e-6)  # (bs, features) passes straight through


def test_rnn_regularizer_adds_ar_and_tar_in_training_only():
    torch.manual_seed(0)
    logits, raw, dropped = torch.randn(2, 3, 5), torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    base = torch.tensor(1.5)
    ar = dropped.pow(2).mean()
    tar = (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
    cb = text.RNNRegularizer(alpha=2.0, beta=1.0)
    model = nn.Linear(1, 1)
    learn = SimpleNamespace(model=model, pred=(logits, raw, dropped), loss=base)
    cb.after_pred(learn)
    assert learn.pred is logits
    cb.after_loss(learn)
    assert torch.allclose(learn.loss, base + 2.0 * ar + 1.0 * tar)
    model.eval()
    learn = SimpleNamespace(model=model, pred=(logits, raw, dropped), loss=base)
    cb.after_pred(learn)
    cb.after_loss(learn)
    assert learn.pred is logits and learn.loss is base


def test_a_stateful_gru_learns_the_sequence(corpus):
    """End to end with the Learner: one epoch of a small stateful GRU beats the most-frequent-token
    baseline (a comma, ~15% of tokens) by a wide margin."""
    from helpers.learner import Learner
    from helpers.metrics import accuracy

    class GRU(nn.Module):
        def __init__(self, nv, nh=64):
            super().__init__()
            self.i_h, self.rnn, self.h_o = nn.Embedding(nv, nh), nn.GRU(nh, nh, batch_first=True), nn.Linear(nh, nv)
            self.bn, self.h = text.BatchNorm1dFlat(nh), None

        def reset(self):
            self.h = None

        def forward(self, x):
            out, h = self.rnn(self.i_h(x), self.h)
            self.h = h.detach()
            return self.h_o(self.bn(out))

    config.seed_everything(0)
    data = corpus.databunch(bs=64, bptt=20)
    learn = Learner(data, GRU(len(data.vocab)), cross_entropy_flat, accuracy)
    learn.fit_one_cycle(3, 1e-2)
    assert learn.recorder.metrics[-1][0] > 0.4
