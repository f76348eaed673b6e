"""What a trial shows: each cell's outputs in nbformat shape, and names described safely.

Shipped into kernels with :mod:`.sandbox` (stdlib only, no package imports; installed before
it as ``__devstral_trial_capture``). In the trial process :func:`capture_channels` routes every
way a cell shows something (streams, ``display()``, ipykernel's own streams, pyplot figures)
into the running cell's :class:`Outputs` and cuts off every way to the kernel's sockets, so
nothing a trial does is published; what comes back is bounded (streams and text cut, images as
a marker, at most :data:`MAX_OUTPUTS` outputs). :func:`describe` tells what a value is without
running any of its code.
"""

import builtins
import io
import json
import sys
import types

MAX_OUTPUT = 4000  # characters: a stream, a text/plain value, the legacy "stdout" text
MAX_RICH = 3000  # characters of another rich type (text/html, application/json, ...)
MAX_OUTPUTS = 50  # outputs kept per cell
MAX_NAMES = 100
MAX_COLUMNS = 50
CUT = "\n[... cut ...]"


# -- outputs in nbformat shape -------------------------------------------------------------
def bounded(text, limit):
    return text if len(text) <= limit else text[:limit] + CUT


def _bound_data(data):
    """A mime bundle fit to send back: images as a marker, text bounded, JSON small or a marker."""
    out = {}
    for mime, value in (data or {}).items():
        if not isinstance(mime, str):
            continue
        if mime.startswith("image/"):
            out[mime] = f"<{mime}>"
        elif isinstance(value, str):
            out[mime] = bounded(value, MAX_OUTPUT if mime == "text/plain" else MAX_RICH)
        else:
            try:
                size = len(json.dumps(value))
            except (TypeError, ValueError):
                size = MAX_RICH + 1
            out[mime] = value if size <= MAX_RICH else f"<{mime}: {size} characters>"
    return out


class Outputs:
    """One cell's outputs in nbformat shape, bounded as they arrive."""

    def __init__(self):
        self.items, self.cut, self.left_out, self.ids = [], set(), 0, {}

    def _room(self):
        if len(self.items) < MAX_OUTPUTS:
            return True
        self.left_out += 1
        return False

    def stream(self, name, text):
        last = self.items[-1] if self.items else None
        if not (last and last["output_type"] == "stream" and last["name"] == name):
            if not text or not self._room():
                return
            last = {"output_type": "stream", "name": name, "text": ""}
            self.items.append(last)
        room = MAX_OUTPUT - len(last["text"])
        if len(text) > room:
            text = text[: max(room, 0)]
            self.cut.add(len(self.items) - 1)
        last["text"] += text

    def display(
        self, data, output_type="display_data", metadata=None, display_id=None, update=False
    ):
        out = {"output_type": output_type, "data": _bound_data(data), "metadata": {}}
        try:
            if isinstance(metadata, dict) and len(json.dumps(metadata, default=str)) <= 1000:
                out["metadata"] = metadata
        except (TypeError, ValueError):
            pass
        if output_type == "execute_result":
            out["execution_count"] = None
        if update and display_id in self.ids:
            self.items[self.ids[display_id]] = out
        elif self._room():
            self.items.append(out)
            if display_id is not None:
                self.ids[display_id] = len(self.items) - 1

    def finish(self):
        items = [dict(o) for o in self.items]
        for i in self.cut:
            items[i]["text"] += CUT
        if self.left_out:
            text = f"[... {self.left_out} more outputs cut ...]\n"
            items.append({"output_type": "stream", "name": "stdout", "text": text})
        return items


def legacy_text(outputs):
    """The old single "stdout" string: streams, then each display's or result's text/plain."""
    parts = []
    for out in outputs:
        if out["output_type"] == "stream":
            parts.append(out["text"])
        else:
            parts.append((out["data"].get("text/plain") or "[rich output]") + "\n")
    return bounded("".join(parts), MAX_OUTPUT)


# -- the trial process's channels ----------------------------------------------------------
_SINK = [Outputs()]  # the running cell's outputs (the trial process's streams write here)


def capture_cell():
    """Fresh outputs for the cell about to run: the trial's streams and displays land there."""
    sink = _SINK[0] = Outputs()
    return sink


class _Stream(io.TextIOBase):
    def __init__(self, name):
        self.name = name

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        _SINK[0].stream(self.name, text)
        return len(text)


def _publish(data=None, metadata=None, source=None, *, transient=None, update=False, **_):
    display_id = (transient or {}).get("display_id") if isinstance(transient, dict) else None
    _SINK[0].display(data, "display_data", metadata, display_id, update)


def _no_input(*_, **__):
    raise EOFError("input() is not available in a trial run")


def _drop_message(stream, msg_or_type, content=None, *_, **__):
    if isinstance(msg_or_type, dict):
        return msg_or_type
    return {"header": {"msg_type": msg_or_type}, "content": content or {}}


def _outstream_write(self, text):
    text = str(text)
    _SINK[0].stream(getattr(self, "name", "stdout"), text)
    return len(text)


def capture_channels(shell):
    """In the trial process: output lands in the running cell's outputs, and nothing reaches
    the kernel's sockets (display, comms and widgets, logging handlers bound to the kernel's
    streams, input())."""
    kernel_streams = (sys.stdout, sys.stderr)
    sys.stdout, sys.stderr, sys.stdin = _Stream("stdout"), _Stream("stderr"), io.StringIO("")
    builtins.input = _no_input
    if "getpass" in sys.modules:
        sys.modules["getpass"].getpass = _no_input
    if shell is not None:
        shell.display_pub.publish = _publish
        shell.display_pub.clear_output = lambda *a, **k: None
        session = getattr(getattr(shell, "kernel", None), "session", None)
        if session is not None:
            session.send = _drop_message
    iostream = sys.modules.get("ipykernel.iostream")
    if iostream is not None:
        stream_class = getattr(iostream, "OutStream", None)
        if stream_class is not None:
            stream_class.write = _outstream_write
            stream_class.flush = lambda self: None
            for stream in kernel_streams:  # ipykernel also binds write on the instances
                if isinstance(stream, stream_class) and "write" in vars(stream):
                    stream.write = types.MethodType(_outstream_write, stream)
        thread_class = getattr(iostream, "IOPubThread", None)
        if thread_class is not None:
            thread_class.schedule = lambda self, f: None
            thread_class.send_multipart = lambda self, *a, **k: None


def _format_value(value, shell):
    """A last expression's mime bundle: the shell's display formatter, else its repr."""
    if shell is not None:
        try:
            data, metadata = shell.display_formatter.format(value)
            if data:
                return data, metadata
        except Exception:
            pass
    try:
        return {"text/plain": repr(value)}, {}
    except Exception as exc:
        return {"text/plain": f"<{type(value).__name__} object (repr failed: {exc!r})>"}, {}


def show_result(sink, value, shell):
    data, metadata = _format_value(value, shell)
    sink.display(data, "execute_result", metadata)


def show_figures(sink):
    """Open pyplot figures as the inline backend shows them after a cell (then closes them)."""
    if "matplotlib.pyplot" not in sys.modules:
        return
    try:
        from matplotlib import _pylab_helpers

        managers = _pylab_helpers.Gcf.get_all_fig_managers()
        if not managers:
            return
        plt = sys.modules["matplotlib.pyplot"]
        backend = str(plt.get_backend()).lower()
        if "inline" not in backend and backend not in ("agg", "pdf", "svg", "ps", "cairo", "pgf"):
            return  # a GUI or widget backend shows figures its own way
        for manager in managers:
            figure = manager.canvas.figure
            sink.display({"image/png": "<image/png>", "text/plain": repr(figure)})
        plt.close("all")
    except Exception:
        pass


# -- describing names ----------------------------------------------------------------------
_SIZED = (list, tuple, dict, set, frozenset, str, bytes, bytearray, range)
_LABELS = (str, int, float, bool)


def _type_name(kind):
    qualname = type.__dict__["__qualname__"].__get__(kind)
    module = type.__dict__["__module__"].__get__(kind)
    return qualname if module == "builtins" else f"{module}.{qualname}"


def _label(value):
    """A column label as text: plain scalars (numpy's too) and tuples of them, else its type
    (exact types only: a subclass's ``__str__`` would be user code)."""
    numpy = sys.modules.get("numpy")

    def plain(v):
        kind = type(v)
        return kind in _LABELS or (
            numpy is not None
            and issubclass(kind, numpy.generic)
            and _type_name(kind)[:6] == "numpy."
        )

    if type(value) is str:
        return value
    if plain(value) or (type(value) is tuple and all(plain(v) for v in value)):
        return str(value)
    return f"<{_type_name(type(value))}>"


def describe(value):
    """A small, safe description: type, len, shape, dtype, columns. Only exact checks on the
    real type and attributes of known types (builtins, numpy, pandas): no user code runs."""
    kind = type(value)
    desc = {"type": _type_name(kind)}
    numpy, pandas = sys.modules.get("numpy"), sys.modules.get("pandas")
    try:
        for base in _SIZED:
            if issubclass(kind, base):
                desc["len"] = base.__len__(value)
                break
        if numpy is not None and issubclass(kind, numpy.ndarray):
            shape = numpy.ndarray.shape.__get__(value)
            desc.update(shape=list(shape), dtype=str(numpy.ndarray.dtype.__get__(value)))
            if shape:
                desc["len"] = shape[0]
        elif numpy is not None and issubclass(kind, numpy.generic):
            desc["dtype"] = str(numpy.generic.dtype.__get__(value))
        elif pandas is not None and issubclass(kind, pandas.DataFrame):
            rows, cols = value.shape
            columns = list(value.columns[:MAX_COLUMNS])
            dtypes = list(value.dtypes.iloc[:MAX_COLUMNS])
            desc.update(
                shape=[rows, cols],
                len=rows,
                columns=[_label(c) for c in columns],
                dtypes=[str(d) for d in dtypes],
            )
        elif pandas is not None and issubclass(kind, (pandas.Series, pandas.Index)):
            desc.update(shape=list(value.shape), len=value.shape[0], dtype=str(value.dtype))
    except Exception as exc:  # a description is a hint: never fail the trial over one
        desc["error"] = type(exc).__name__
    return desc


def describe_names(namespace, names):
    """``{name: describe(value)}`` for the names bound in ``namespace`` (others are absent)."""
    return {n: describe(namespace[n]) for n in list(names)[:MAX_NAMES] if n in namespace}
