"""The magics in a plain IPython ``InteractiveShell``: ``%%devstral fix`` sets ``rl_next_input``,
``%devstral fix`` takes up the last failed cell, explain / ask stream, and every bad input is
one line with nothing raised and nothing lost."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from jupyter_devstral.agent.trials import sandbox
from jupyter_devstral.backends.base import Capabilities
from jupyter_devstral.backends.openai_compat import OpenAICompatBackend
from jupyter_devstral.backends.scripted import ScriptedBackend
from jupyter_devstral.worker.client import WorkerBackend
from jupyter_devstral.worker.launch import pid_alive

DATA = "import pandas as pd\ndf = pd.DataFrame({'region': ['n', 's', 'n'], 'revenue': [1.0, 2.5, 3.0]})"
BROKEN = "total = df['revnue'].sum()\nprint(total)"
FIXED = "total = df['revenue'].sum()\nprint(total)"


@pytest.fixture
def ip(tmp_path, monkeypatch):
    """A fresh shell with the extension loaded; its own runtime dir for model workers."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell(config=config)
    shell.run_cell("%load_ext jupyter_devstral", store_history=True)
    yield shell
    magics = devstral(shell)
    for backend in magics._backends.values():
        if isinstance(backend, WorkerBackend):
            backend.shutdown_worker()


def devstral(shell):
    return shell.magics_manager.registry["DevstralMagics"]


def next_input(shell):
    """What set_next_input left for the front end (None: the cell keeps its text)."""
    return getattr(shell, "rl_next_input", None)


def run(shell, code):
    return shell.run_cell(code, store_history=True)


def scripted(*replies):
    """A scripted model that answers like the local backend (fenced code after the primer)."""
    backend = ScriptedBackend(list(replies))
    backend.capabilities = Capabilities(native_tools=False, local=True, assistant_prefix=True)
    return backend


def fenced(source):
    return source + "\n```"


def devstral_lines(out):
    return [line for line in out.splitlines() if line.startswith("devstral:")]


def in_order(text, *parts):
    """Each part occurs in ``text`` (ANSI colours left out), after the one before it."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    at = -1
    for part in parts:
        found = text.find(part, at + 1)
        assert found > at, f"{part!r} missing or out of order in:\n{text}"
        at = found


def test_fix_cell_replaces_the_cell_through_next_input(ip, capsys):
    run(ip, DATA)
    model = scripted(fenced("total = df['revenu'].sum()\nprint(total)"), fenced(FIXED))
    devstral(ip).backend_override = model
    result = run(ip, f"%%devstral fix --samples 1\n{BROKEN}")
    out = capsys.readouterr()
    assert result.success  # the magic never fails its cell
    assert next_input(ip) == FIXED
    # one order, the same as the kernel's display: the progress, the original error, the
    # diff, the fixed cell's own output, the result line, the way back
    in_order(
        out.out,
        "devstral: attempt 1/3",
        "candidate 1.1: KeyError",  # a candidate tried and reported
        "devstral: attempt 2/3",
        "devstral: 2 candidates tried in 2 rounds",
        "original error:",
        "KeyError: 'revnue'",
        "-total = df['revnue'].sum()\n+total = df['revenue'].sum()",
        "6.5",  # the fixed cell's own output
        "devstral: fixed after 2 attempts",
        f"original cell (run %devstral restore to get it back):\n%%devstral fix --samples 1\n{BROKEN}",
    )
    assert out.err == ""  # the traceback is the display's, not a stray stderr stream
    assert devstral_lines(out.out)[-1].startswith("devstral: fixed after 2 attempts")
    assert out.out.count("devstral: fixed after 2 attempts") == 1
    assert ip.user_ns["total"] == 6.5
    record = devstral(ip).last_fix
    assert [a.ok for a in record.result.attempts] == [False, True]
    run(ip, "%devstral restore")
    assert next_input(ip) == f"%%devstral fix --samples 1\n{BROKEN}"
    run(ip, "%devstral candidates")
    assert "candidate 1.1: KeyError" in capsys.readouterr().out
    assert devstral(ip).tracker.last_failure is None
    for verb in ("apply", "approve"):  # a fixed cell offers nothing more
        run(ip, f"%devstral {verb}")
        assert f"nothing to {verb}" in capsys.readouterr().out


def test_failed_candidates_leave_the_kernel_state_alone(ip, capsys):
    run(ip, "items = [1, 2, 3]")
    devstral(ip).backend_override = scripted(
        fenced("items.append(99)\nitems.clear()\nraise ValueError('bad candidate')"),
        fenced("total = sum(items)"),
    )
    run(ip, "%%devstral fix --samples 1\ntotal = sum(itemz)")
    assert ip.user_ns["items"] == [1, 2, 3] and ip.user_ns["total"] == 6
    assert "real kernel" not in capsys.readouterr().out  # forked trials: nothing to warn about


CONFIG = "config = {'alpha': 1, 'beta': 2}"
TYPO = "total = config['alpah'] + 1\nprint(total)"
DOUBTFUL = "total = config['alpha'] + 7\nprint(total)"  # 7: a constant from nowhere
STILL_FAILING = "total = config['alhpa'] + 1\nprint(total)"


def test_a_review_edit_is_shown_and_offered_never_applied_or_run(ip, capsys):
    """ "runs, review": the diff and the reasons, the result line last, "Apply fix" offered;
    the kernel never ran it (``total`` stays unset) until the user applies and runs it."""
    run(ip, CONFIG)
    replies = [DOUBTFUL, STILL_FAILING, STILL_FAILING + " ", STILL_FAILING + "  "]
    devstral(ip).backend_override = scripted(*map(fenced, replies))
    result = run(ip, f"%%devstral fix --samples 2\n{TYPO}")
    out = capsys.readouterr().out
    assert result.success and next_input(ip) is None  # the cell keeps its text
    assert "total" not in ip.user_ns  # not applied, not run
    in_order(
        out,
        "original error:",
        "+total = config['alpha'] + 7",
        "devstral: runs, review after 2 attempts",
        "the edit, not applied (%devstral apply puts it into a cell):\n" + DOUBTFUL,
    )
    last = devstral_lines(out)[-1]
    assert last.startswith("devstral: runs, review") and "a new literal 7" in last
    assert "not applied, not run" in last
    run(ip, "%devstral approve")  # not a candidate waiting for approval
    assert "nothing to approve" in capsys.readouterr().out and "total" not in ip.user_ns
    run(ip, "%devstral apply")
    assert next_input(ip) == DOUBTFUL  # this cell holds it now, unrun
    assert "total" not in ip.user_ns and "not run" in capsys.readouterr().out


PROPOSAL = (
    "total = sum(items)\n"
    "n = int(open('count.txt').read()) + 1 if os.path.exists('count.txt') else 1\n"
    "open('count.txt', 'w').write(str(n))\n"
    "os.remove('raw.csv')"
)


def test_a_candidate_that_needs_approval_runs_only_when_approved_and_once(
    ip, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw.csv").write_text("precious")
    run(ip, "import os\nitems = [1, 2, 3]")
    devstral(ip).backend_override = scripted(fenced(PROPOSAL))
    result = run(ip, "%%devstral fix --samples 1 --max-iterations 1\ntotal = sum(itemz)")
    out = capsys.readouterr().out
    assert result.success and next_input(ip) is None
    assert (tmp_path / "raw.csv").exists() and not (tmp_path / "count.txt").exists()
    assert "total" not in ip.user_ns  # never tried, never run
    in_order(
        out,
        "candidate 1.1:",
        "original error:",
        "+os.remove('raw.csv')",
        "devstral: needs approval: ",
        "the candidate, not run (%devstral approve runs it once, for real):\n" + PROPOSAL,
    )
    last = devstral_lines(out)[-1]
    assert "deletes raw.csv" in last and "needs approval: needs approval" not in last
    run(ip, "%devstral candidates")  # looking at it runs nothing
    assert (tmp_path / "raw.csv").exists() and not (tmp_path / "count.txt").exists()
    capsys.readouterr()

    run(ip, "%devstral approve")
    out = capsys.readouterr().out
    assert (tmp_path / "count.txt").read_text() == "1" and not (tmp_path / "raw.csv").exists()
    assert ip.user_ns["total"] == 6 and next_input(ip) == PROPOSAL
    assert "approved: the candidate ran once, for real" in out
    assert devstral(ip).tracker.last_failure is None
    (tmp_path / "raw.csv").write_text("again")
    run(ip, "%devstral approve")  # once: never again
    assert "nothing to approve" in capsys.readouterr().out
    assert (tmp_path / "count.txt").read_text() == "1" and (tmp_path / "raw.csv").exists()


def test_a_candidate_run_from_the_front_end_is_not_approved_again(
    ip, capsys, tmp_path, monkeypatch
):
    """JupyterLab's "Run it" puts the candidate into the cell and runs it: its one run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw.csv").write_text("precious")
    run(ip, "import os\nitems = [1, 2, 3]")
    devstral(ip).backend_override = scripted(fenced(PROPOSAL))
    run(ip, "%%devstral fix --samples 1 --max-iterations 1\ntotal = sum(itemz)")
    run(ip, "x = 1")  # another cell first: still offered
    assert not (tmp_path / "count.txt").exists()
    assert run(ip, PROPOSAL).success  # what "Run it" does: the cell, with the candidate
    assert (tmp_path / "count.txt").read_text() == "1"
    capsys.readouterr()
    (tmp_path / "raw.csv").write_text("again")
    run(ip, "%devstral approve")
    assert "nothing to approve" in capsys.readouterr().out
    assert (tmp_path / "count.txt").read_text() == "1" and (tmp_path / "raw.csv").exists()


def test_without_fork_no_candidate_runs_until_approved(ip, capsys, monkeypatch):
    """No fork here: no sandbox for trials, so each candidate waits for approval; the
    user's state is untouched until they approve one."""
    monkeypatch.setattr(sandbox, "can_fork", lambda: False)
    run(ip, "items = [1, 2, 3]")
    devstral(ip).backend_override = scripted(fenced("items.append(99)\ntotal = sum(items) / 0"))
    run(ip, "%%devstral fix --samples 1 --max-iterations 1\ntotal = sum(itemz)")
    out = capsys.readouterr().out
    assert ip.user_ns["items"] == [1, 2, 3] and "total" not in ip.user_ns
    assert devstral_lines(out)[-1].startswith("devstral: needs approval")
    assert "cannot fork" in out
    run(ip, "%devstral approve")  # the first proposal: it raises, once, for real
    out = capsys.readouterr()
    assert "the approved candidate ran once and failed (ZeroDivisionError" in out.out
    assert "ZeroDivisionError" in out.err  # its traceback, shown
    assert ip.user_ns["items"] == [1, 2, 3, 99] and next_input(ip) is None
    run(ip, "%devstral approve")
    assert "nothing to approve" in capsys.readouterr().out
    assert ip.user_ns["items"] == [1, 2, 3, 99]


def test_a_candidate_that_calls_the_magic_is_no_fix(ip, capsys):
    run(ip, DATA)
    devstral(ip).backend_override = scripted()  # a model with nothing to say: not fixed
    run(ip, f"%%devstral fix --samples 1 --max-iterations 1\n{BROKEN}")
    out = capsys.readouterr().out
    last = devstral_lines(out)[-1]
    assert last.startswith("devstral: not fixed") and "the cell is unchanged" in last
    # not fixed: the original error stays in view, after the progress
    in_order(out, "devstral: attempt 1/1", "original error:", "KeyError: 'revnue'", last)
    devstral(ip).backend_override = scripted(fenced(f"%%devstral fix\n{BROKEN}"), fenced(FIXED))
    run(ip, f"%%devstral fix --samples 1\n{BROKEN}")
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if "candidate 1.1:" in s)
    assert "%%devstral" in line and not line.endswith(": runs")  # held back: never run
    assert next_input(ip) == FIXED
    model = devstral(ip).backend_override
    assert "%%devstral" not in model.requests[0].messages[-1]["content"]  # history shows code


def test_a_cell_that_runs_needs_no_fix(ip, capsys):
    devstral(ip).backend_override = scripted()
    result = run(ip, "%%devstral fix\nx = 41 + 1\nprint(x)")
    out = capsys.readouterr().out
    assert result.success and next_input(ip) is None
    assert "42" in out and "nothing to fix" in out


@pytest.mark.parametrize(
    "cell, words",
    [
        ("%%devstral fix\n\n   \n", "the cell below %%devstral fix is empty"),
        (f"%%devstral fix --bogus\n{BROKEN}", "unrecognized arguments: --bogus"),
        (f"%%devstral fix --max-iterations zero\n{BROKEN}", "invalid int value"),
        (f"%%devstral fix --max-iterations 0\n{BROKEN}", "must be at least 1"),
    ],
    ids=["empty", "unknown-option", "bad-int", "zero"],
)
def test_bad_cell_input_is_one_line_and_nothing_is_lost(ip, capsys, cell, words):
    run(ip, DATA)
    devstral(ip).backend_override = scripted(fenced(FIXED))
    result = run(ip, cell)
    out = capsys.readouterr().out
    assert result.success and next_input(ip) is None
    lines = [line for line in out.splitlines() if line.startswith("devstral:")]
    assert len(lines) == 1 and words in lines[0], out
    assert "total" not in ip.user_ns  # not even run


def test_line_magic_usage_mistakes_raise_usage_error(ip):
    for line in ("", "frobnicate", "fix --bogus", "fix --samples -1", "ask"):
        with pytest.raises(UsageError):
            ip.run_line_magic("devstral", line)


def test_line_fix_takes_up_the_last_failed_cell(ip, capsys):
    run(ip, DATA)
    assert not run(ip, BROKEN).success
    run(ip, "y = 1")  # a later cell that works does not hide the failure
    devstral(ip).backend_override = scripted(fenced(FIXED))
    run(ip, "%devstral fix")
    out = capsys.readouterr().out
    assert next_input(ip) == FIXED  # offered as the next input
    in_order(out, "original error:", "KeyError: 'revnue'", "+total = df['revenue'].sum()")
    assert devstral_lines(out)[-1].startswith("devstral: fixed after 1 attempt")
    assert "offered as the next cell" in devstral_lines(out)[-1]
    model = devstral(ip).backend_override
    assert "revnue" in model.requests[0].messages[-1]["content"]  # the failed cell, by content
    capsys.readouterr()
    run(ip, "%devstral fix")
    assert "no failed cell to fix" in capsys.readouterr().out


def test_nothing_to_fix_or_explain_in_a_fresh_session(ip, capsys):
    devstral(ip).backend_override = scripted()
    for line, words in (("fix", "no failed cell to fix"), ("explain", "no error to explain")):
        result = run(ip, f"%devstral {line}")
        assert result.success and words in capsys.readouterr().out
    assert next_input(ip) is None


def test_missing_model_file_is_one_line(ip, capsys, tmp_path):
    run(ip, DATA)
    run(ip, f"%config DevstralConfig.model = {str(tmp_path / 'missing.gguf')!r}")
    result = run(ip, f"%%devstral fix\n{BROKEN}")
    out = capsys.readouterr().out
    assert result.success and next_input(ip) is None
    assert "devstral: not fixed: model file not found:" in out and "missing.gguf" in out
    assert not list((tmp_path / "runtime").glob("devstral-worker-*.json"))  # nothing started


def test_backend_down_is_one_line(ip, capsys):
    run(ip, DATA)
    down = OpenAICompatBackend(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0)
    devstral(ip).backend_override = down
    result = run(ip, f"%%devstral fix\n{BROKEN}")
    out = capsys.readouterr().out
    assert result.success and next_input(ip) is None
    line = [s for s in out.splitlines() if "not fixed" in s]
    assert len(line) == 1 and "cannot reach" in line[0] and "the cell is unchanged" in line[0]


def test_explain_and_ask_stream_plain_text(ip, capsys):
    run(ip, DATA)
    run(ip, BROKEN)
    model = scripted("The column is called revenue, not revnue.", "df has 3 rows.")
    devstral(ip).backend_override = model
    capsys.readouterr()
    run(ip, "%devstral explain")
    assert "called revenue, not revnue." in capsys.readouterr().out
    run(ip, "%%devstral ask\nhow many rows does df have?")
    assert "df has 3 rows." in capsys.readouterr().out
    explain, ask = model.requests
    assert explain.tool_choice == ask.tool_choice == "none" and explain.tools is None
    assert "revnue" in explain.messages[1]["content"]
    assert (
        "how many rows" in ask.messages[1]["content"] and "DataFrame" in ask.messages[1]["content"]
    )


def test_status_models_and_help(ip, capsys, qwen_path, monkeypatch):
    monkeypatch.setenv("DEVSTRAL_MODELS_DIR", str(qwen_path.parent))
    run(ip, f"%config DevstralConfig.model = {str(qwen_path)!r}")
    run(ip, "%devstral status")
    out = capsys.readouterr().out
    assert "backend     llama_cpp" in out and "8192 tokens" in out
    assert "not running (starts on first use)" in out  # status starts nothing
    run(ip, "%devstral models")
    out = capsys.readouterr().out
    assert str(qwen_path) in out and "devstral-small-latest" in out
    doc = ip.find_cell_magic("devstral").__doc__
    assert "%%devstral fix" in doc and "%devstral explain" in doc and "DevstralConfig" in doc


def test_worker_crash_mid_fix_is_one_line_and_the_next_call_recovers(ip, capsys, smollm2_path):
    """The model worker is SIGKILLed while it streams: the magic says so, the cell is intact."""
    run(ip, DATA)
    run(ip, f"%config DevstralConfig.model = {str(smollm2_path)!r}")
    run(ip, "%config DevstralConfig.n_ctx = 2048")
    magics = devstral(ip)
    killed = []

    def kill_on_first_token(event):
        if event.kind == "text" and not killed:
            pid = magics.last_backend.worker_status["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    from jupyter_devstral.magics import fix_view

    original = fix_view.FixView.event
    monkey = pytest.MonkeyPatch()
    monkey.setattr(
        fix_view.FixView, "event", lambda self, e: (kill_on_first_token(e), original(self, e))
    )
    try:
        result = run(ip, f"%%devstral fix\n{BROKEN}")
    finally:
        monkey.undo()
    out = capsys.readouterr().out
    assert killed and result.success and next_input(ip) is None
    lines = [s for s in out.splitlines() if "model worker stopped" in s]
    assert len(lines) == 1 and "the next call starts a new one" in lines[0]
    assert "total" not in ip.user_ns and magics.tracker.last_failure is not None
    assert not pid_alive(killed[0])
    assert magics.last_backend.load()["pid"] != killed[0]  # a new worker, on demand


def test_the_kernel_side_never_imports_jupyter_server():
    code = (
        "import sys\n"
        "import jupyter_devstral, jupyter_devstral.magics, jupyter_devstral.magics.core\n"
        "import jupyter_devstral.magics.fix, jupyter_devstral.magics.chat\n"
        "import jupyter_devstral.worker.client, jupyter_devstral.agent.homes.live_home\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'jupyter_devstral')\n"
        "bad = [m for m in ('jupyter_server', 'tornado.web', 'llama_cpp') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_the_example_notebook_is_valid_and_tagged():
    import nbformat

    path = Path(__file__).resolve().parents[2] / "notebooks/01-fix-a-failing-cell.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    tagged = {
        t: [c.source for c in nb.cells if t in c.metadata.get("tags", [])]
        for t in ("raises-exception", "nbval-ignore-output")
    }
    assert len(tagged["raises-exception"]) == 1 and "mnth" in tagged["raises-exception"][0]
    assert any(s.startswith("%%devstral fix") for s in tagged["nbval-ignore-output"])


@pytest.fixture
def no_model(tmp_path, monkeypatch):
    """Nothing configured: no DEVSTRAL_* variable, an empty models dir, home and hub cache."""
    for name in list(os.environ):
        if name.startswith("DEVSTRAL_") and not name.startswith("DEVSTRAL_TEST_"):
            monkeypatch.delenv(name)
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("DEVSTRAL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("cells", "prefix"),
    [
        ([f"%%devstral fix\n{BROKEN}"], "devstral: not fixed: no model configured: "),
        ([BROKEN, "%devstral explain"], "devstral: no model configured: "),
        (["%devstral ask how many rows does df have"], "devstral: no model configured: "),
    ],
)
def test_no_model_is_one_actionable_line_before_any_download(no_model, ip, capsys, cells, prefix):
    run(ip, DATA)
    for cell in cells:
        result = run(ip, cell)
    out = capsys.readouterr().out
    assert next_input(ip) is None and (result.success or cells[-1].startswith("%devstral"))
    lines = [s for s in devstral_lines(out) if "model configured" in s]
    assert len(lines) == 1 and lines[0].startswith(prefix), out
    line = lines[0]
    assert '%config DevstralConfig.model = "/path/to/model.gguf"' in line
    assert "$DEVSTRAL_MODEL" in line and "--DevstralConfig.model=" in line
    assert '%config DevstralConfig.backend = "mistral" with $MISTRAL_API_KEY' in line
    assert f"No .gguf file found in $DEVSTRAL_MODELS_DIR ({no_model / 'models'})" in line
    assert "%devstral models lists what is found" in line
    assert "pip install" not in out and "huggingface-hub" not in out
    assert line.index("Hugging Face hub") > line.index("$MISTRAL_API_KEY")  # the option, last
    assert not list((no_model / "runtime").glob("devstral-worker-*"))  # nothing started
    assert devstral(ip).last_backend is None


def test_the_cells_earlier_good_value_is_evidence(ip, capsys):
    """The same front-end cell showed 6.5 when it last ran without error: of two candidates
    that run, the one that shows 6.5 again wins, labelled fixed for that reason."""
    run(ip, DATA)
    ip.run_cell("df['revenue'].sum()", store_history=True, cell_id="cell-7")
    ip.run_cell("df = df.rename(columns={'revenue': 'rev'})", store_history=True)
    model = scripted(fenced("df['rev'].sum() + 1"), fenced("df['rev'].sum()"))
    devstral(ip).backend_override = model
    ip.run_cell(
        "%%devstral fix --samples 2\ndf['revenue'].sum()", store_history=True, cell_id="cell-7"
    )
    result = devstral(ip).last_fix.result
    assert (result.label, result.final) == ("fixed", "df['rev'].sum()")
    assert any("reproduces its earlier output" in r for r in result.reasons), result.reasons
