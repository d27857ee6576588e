"""helpers.progress: one display per fit in Jupyter that survives saving (plain HTML, no widget), a row
per epoch headless, bars that say what they did; and the same in a real kernel through nbclient."""
import json

import pytest

from helpers import progress
from helpers.progress import EpochTable, Progress, format_time, progress_bar


def test_format_time():
    assert format_time(0.4) == "00:00" and format_time(75) == "01:15" and format_time(3600) == "60:00"


def test_headless_table_prints_a_row_per_epoch(monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_PROGRESS", "none")
    table = EpochTable(["train_loss", "valid_loss"])
    assert list(table.bar(range(3), total=3, desc="epoch 1/2")) == [0, 1, 2]
    table.row(1, [0.5, None], 1.2)
    table.row(2, [0.25, 0.125], 61)
    table.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "time"]
    assert lines[1].split() == ["1", "0.500000", "—", "00:01"] and lines[2].split() == ["2", "0.250000", "0.125000", "01:01"]
    assert lines[3].startswith("Total time: ") and len(lines) == 4 and not any(ln != ln.rstrip() for ln in lines)


def test_no_bars_headless_and_text_bars_in_text_mode(monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_PROGRESS", "none")
    assert list(progress_bar(range(5), desc="nothing shown")) == list(range(5))
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("HELPERS_PROGRESS", "text")
    monkeypatch.setattr(progress, "in_kernel", lambda: False)
    with Progress(3, "bytes", unit="B") as bar:
        bar.update(2)
        assert bar.style == "text" and bar._tqdm is not None and bar._tqdm.n == 2  # a tqdm bar in a terminal
    assert bar.done == 2 and bar._tqdm is None  # closed on leaving


def test_bar_text_says_what_it_counts():
    html_text, text = progress._bar(512, 2048, "archive.tgz", 2.0, "B")
    assert text == "archive.tgz 512 B/2.0 kB [00:02, 256 B/s]"
    assert '<progress value="512" max="2048"' in html_text
    assert progress._bar(3, None, "steps", 0.0, "it")[1] == "steps 3 [00:00]"


KERNEL_CELLS = [
    "import os\nos.environ['HELPERS_PROGRESS'] = 'auto'",
    """import torch
from torch import nn
from helpers.data import DataBunch, TensorLoader
from helpers.learner import Learner
from helpers.metrics import accuracy
from helpers.progress import progress_bar
x = torch.randint(0, 256, (64, 1, 4, 4), dtype=torch.uint8)
y = (x.float().mean((1, 2, 3)) > 127).long()
cpu = torch.device('cpu')
data = DataBunch(TensorLoader(x, y, 8, shuffle=True, device=cpu), TensorLoader(x, y, 16, device=cpu))
learn = Learner(data, nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), nn.CrossEntropyLoss(), accuracy)""",
    "learn.fit_one_cycle(60, 1e-2)",
    "total = sum(progress_bar(range(1000), desc='counting'))",
    "values = learn.validate()",
]


def test_a_kernel_run_saves_one_plain_display_per_fit_and_no_widget(tmp_path):
    """In a real kernel with bars on: each fit is a single display of plain HTML (all 60 rows and the
    total, nothing cut behind "Show more outputs"; each epoch's validation bar drawn under the table), the counting
    bar and a validation pass outside a fit each leave one line of text, and the saved notebook holds no widget
    view, so reopening it shows no "Error displaying widget"."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    saved = json.loads(path.read_text())
    views = [o for c in saved["cells"] for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views == [], "a widget view saved without its state shows as an error when the notebook is reopened"
    fit = saved["cells"][2]["outputs"]
    assert len(fit) == 1 and fit[0]["output_type"] == "display_data"
    html_text = "".join(fit[0]["data"]["text/html"])
    assert html_text.count("<tr>") == 61 and "Total time" in html_text and "<progress" not in html_text
    plain = "".join(fit[0]["data"]["text/plain"])
    assert plain.splitlines()[-1].startswith("Total time") and len(plain.splitlines()) == 62
    count = saved["cells"][3]["outputs"]
    assert len(count) == 1 and "".join(count[0]["data"]["text/plain"]).startswith("counting: 1,000 in ")
    validation = saved["cells"][4]["outputs"]
    assert len(validation) == 1 and "".join(validation[0]["data"]["text/plain"]).startswith("validation: 4 in ")
