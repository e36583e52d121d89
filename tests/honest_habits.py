"""Honest habits: cells a learner adds to a lesson for their own comfort, none of which may cost a point or read as
tampering (issue 25). Each is a :class:`Habit` — a name, one line on why a learner writes it, the cell's source —
inserted as a cell of its own after lesson 02's setup cell, that is before both exercises and every check cell, so
that each check's probe runs after it (:func:`with_habit`). ``tests/test_honest_habits.py`` grades them all in one
run and also runs each in-process against the tampering watch (:mod:`grader.kernel_probe`).

Two of them fail in the grader's kernel, and that is the learner's cell failing, not a grade: ``input()`` (the
grader's kernel has no stdin: ipykernel raises ``StdinNotImplementedError``) and ``%matplotlib widget`` (ipympl is
not in the course's environment: ``RuntimeError: 'widget' is not a recognised GUI loop or backend name``; where
ipympl is installed the magic switches backends, which drops matplotlib's inline hook: exempt, as ``%matplotlib agg``
shows). A failing cell does not stop the notebook (nbclient runs it with ``allow_errors``), so the checks after it
still run and earn their points. The ``pip`` habits ask no index (``--version``), so they work offline.
"""

from __future__ import annotations

from typing import NamedTuple

import nbformat


class Habit(NamedTuple):
    name: str
    why: str
    source: str


HABITS: list[Habit] = [
    Habit("autoreload", "edits to a module of one's own are picked up without restarting the kernel",
          "%load_ext autoreload\n%autoreload 2"),
    Habit("matplotlib_inline", "the classic first line of a notebook that plots",
          "%matplotlib inline"),
    Habit("matplotlib_widget", "interactive figures in JupyterLab (ipympl is not installed here: the magic raises)",
          "%matplotlib widget"),
    Habit("matplotlib_agg", "no figures drawn at all while iterating (a non-inline backend drops the inline hook)",
          "%matplotlib agg"),
    Habit("retina_figures", "sharper figures on a high-DPI screen",
          "%config InlineBackend.figure_format = 'retina'"),
    Habit("time_cell", "how long a cell takes",
          "%%time\ntotal = sum(i * i for i in range(10_000))"),
    Habit("capture_cell", "silence a chatty cell, keep its output in a variable (swaps the streams, then restores)",
          "%%capture chatter\nprint('a lot of output')\nimport matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"),
    Habit("timeit", "how long one expression takes",
          "%timeit -n 5 -r 2 sum(range(1000))"),
    Habit("pip_version", "which pip the kernel sees (offline: no index is asked)",
          "%pip --version"),
    Habit("shell_pip_version", "the same through a shell escape (a subprocess, inside the sandbox's process cap)",
          "!pip --version"),
    Habit("env_magic", "set an environment variable for the session",
          "%env MY_EXPERIMENT=dpo-beta-sweep"),
    Habit("tqdm_bar", "a progress bar on a loop",
          "from tqdm.auto import tqdm\nfor _ in tqdm(range(50), desc='warming up'):\n    pass"),
    Habit("ipywidgets", "a slider and an output widget to play with β",
          "import ipywidgets as widgets\nfrom IPython.display import display\nbeta = widgets.FloatSlider(value=0.1, min=0.01, max=1.0)\n"
          "out = widgets.Output()\nwith out:\n    print('β =', beta.value)\ndisplay(beta, out)"),
    Habit("filter_warnings", "quiet a deprecation warning from a library",
          "import warnings\nwarnings.filterwarnings('ignore', category=DeprecationWarning)\nwarnings.simplefilter('ignore', UserWarning)"),
    Habit("torch_threads", "one thread on a shared machine",
          "import torch\ntorch.set_num_threads(1)"),
    Habit("pandas_display", "a table of results",
          "import pandas as pd\nfrom IPython.display import display\n"
          "display(pd.DataFrame({'beta': [0.1, 0.5, 1.0], 'loss': [0.69, 0.52, 0.41]}))"),
    Habit("input_prompt", "ask for a value (the grader's kernel has no stdin: the cell errors, nothing else)",
          "my_beta = float(input('β to try: ') or 0.1)"),
    Habit("large_tensor", "look at a big tensor, printed and as the cell's value",
          "import torch\nprint(torch.randn(200, 200))\ntorch.arange(100_000)"),
    Habit("seeds", "reproducible runs of one's own experiments",
          "import random\nimport numpy as np\nimport torch\nrandom.seed(0)\nnp.random.seed(0)\ntorch.manual_seed(0)"),
    Habit("star_import_checks", "every check at hand",
          "from rlhf_core.checks import *"),
    Habit("logging", "log lines instead of prints",
          "import logging\nlogging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s', force=True)\n"
          "logging.getLogger('my-notes').info('starting lesson 02')"),
    Habit("pandas_options", "wider tables",
          "import pandas as pd\npd.set_option('display.max_columns', 50)\npd.set_option('display.precision', 3)"),
    Habit("numpy_printoptions", "shorter arrays",
          "import numpy as np\nnp.set_printoptions(precision=3, suppress=True)"),
    Habit("torch_printoptions", "shorter tensors",
          "import torch\ntorch.set_printoptions(precision=3, sci_mode=False)"),
    Habit("precision_magic", "fewer digits for floats shown as a cell's value",
          "%precision 3"),
    Habit("who_magic", "what is defined so far",
          "%who"),
    Habit("plot_style", "a style for every figure",
          "import matplotlib.pyplot as plt\nplt.style.use('ggplot')"),
    Habit("sys_path_append", "import helpers from the folder above",
          "import sys\nsys.path.append('..')"),
    Habit("environ_var", "a setting for an unrelated library",
          "import os\nos.environ['TOKENIZERS_PARALLELISM'] = 'false'"),
    Habit("xmode_minimal", "short tracebacks",
          "%xmode Minimal"),
    Habit("run_line_magic", "a magic called from code",
          "ip = get_ipython()\nip.run_line_magic('matplotlib', 'inline')\nip.run_line_magic('config', \"InlineBackend.figure_format = 'svg'\")"),
    Habit("cell_timer_hooks", "a home-made cell timer: IPython event callbacks of one's own (as ipython-autotime does)",
          "import time\n_started = {}\ndef _tic(info=None):\n    _started['t'] = time.perf_counter()\n"
          "def _toc(result=None):\n    if 't' in _started:\n        print(f\"[{time.perf_counter() - _started['t']:.3f} s]\")\n"
          "get_ipython().events.register('pre_run_cell', _tic)\nget_ipython().events.register('post_run_cell', _toc)"),
    Habit("rich_extension", "pretty printing and tracebacks from rich",
          "%load_ext rich"),
    Habit("tee_stdout", "every print also written to a log file: sys.stdout wrapped for good",
          "import sys\nclass Tee:\n    def __init__(self, stream, path):\n        self.stream, self.file = stream, open(path, 'a')\n"
          "    def write(self, text):\n        self.file.write(text)\n        return self.stream.write(text)\n"
          "    def flush(self):\n        self.file.flush()\n        self.stream.flush()\n"
          "    def __getattr__(self, name):\n        return getattr(self.stream, name)\n"
          "sys.stdout = Tee(sys.stdout, 'my-log.txt')\nprint('logging prints to my-log.txt')"),
    Habit("redirect_stdout", "swallow a function's prints for a moment",
          "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()) as buffer:\n    print('noise')\nlen(buffer.getvalue())"),
    Habit("display_rich_outputs", "Markdown and HTML notes between results",
          "from IPython.display import HTML, Markdown, display\ndisplay(Markdown('**β = 0.1** first'), HTML('<b>then 0.5</b>'))"),
    Habit("plt_ion_ioff", "interactive mode off while building a figure",
          "import matplotlib.pyplot as plt\nplt.ioff()\nfig = plt.figure()\nplt.close(fig)\nplt.ion()"),
]


def with_habit(nb, habit: Habit):
    """``nb`` (a lesson 02 notebook) with ``habit``'s cell inserted after the setup cell, as a cell of its own."""
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(habit.source))
    return nb
