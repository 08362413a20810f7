"""The trained model and its `.npz` file.

The file is a zip of `.npy` members, loaded with allow_pickle=False and never unpickled:
- `layers.<l>.W` (n_in, n_out) and `layers.<l>.b` (n_out,): the weights;
- `history.<name>`: per-epoch float arrays (train_loss, val_loss, val_metric, lr);
- `meta.json`: one unicode string holding JSON: format version, nncli and library versions,
  the resolved config, the architecture and the fitted preprocessing;
- `meta.sha256`: SHA-256 over every other member's name and bytes, checked on load.
Members are written in a fixed order with fixed timestamps, so the same training gives the same
bytes. Files are written to a temporary file in the target folder and renamed into place.
"""

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nncli import __version__
from nncli.errors import ModelFileError, OutputError
from nncli.network import LayerSpec, Network
from nncli.preprocess import Preprocessor

FORMAT_VERSION = 1
OUTPUT_ACTIVATION = {"binary": "sigmoid", "multiclass": "softmax", "regression": "identity"}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class Model:
    network: Network
    prep: Preprocessor
    config: dict
    history: dict = field(default_factory=dict)  # name -> list of per-epoch floats
    summary: dict = field(default_factory=dict)  # epochs run, best epoch, stop reason, ...
    versions: dict = field(default_factory=dict)  # of the libraries that wrote the file

    def architecture(self) -> list[dict]:
        return [
            {"units": s.units, "activation": s.activation, "params": list(s.params), "init": s.init,
             "dropout": s.dropout, "batch_norm": s.batch_norm, "bn_momentum": s.bn_momentum, "bn_eps": s.bn_eps}
            for s in self.network.layers
        ]


def _versions() -> dict:
    """Versions of the libraries that computed the model (read from package metadata)."""
    from importlib.metadata import version

    return {"nncli": __version__, **{name: version(name) for name in ("numpy", "numba", "pandas")}}


def atomic_write(path: Path, write) -> None:
    """Call write(file) on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {folder}: {exc.strerror}") from None
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would (or the replaced file's)
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write: {exc.strerror}") from None
        raise


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array, order="C"), allow_pickle=False)
    return buf.getvalue()


def _members(model: Model) -> dict[str, bytes]:
    arrays = {**model.network.params(), **model.network.state()}
    for name, values in model.history.items():
        arrays[f"history.{name}"] = np.asarray(values, dtype=np.float64)
    meta = {
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "dtype": model.network.dtype.name,
        "n_inputs": model.network.n_inputs,
        "input_dropout": model.network.input_dropout,
        "architecture": model.architecture(),
        "preprocessing": model.prep.to_dict(),
        "config": model.config,
        "summary": model.summary,
    }
    members = {f"{name}.npy": _npy_bytes(a) for name, a in arrays.items()}
    members["meta.json.npy"] = _npy_bytes(np.array(json.dumps(meta, sort_keys=True)))
    return members


def _digest(members: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(members):
        h.update(name.encode())
        h.update(len(members[name]).to_bytes(8, "little"))
        h.update(members[name])
    return h.hexdigest()


def save(model: Model, path) -> None:
    """Write the model file atomically."""
    _write_members(_members(model), path)


def _write_members(members: dict[str, bytes], path) -> None:
    """Add the checksum and write the zip, members in name order with fixed timestamps."""
    members["meta.sha256.npy"] = _npy_bytes(np.array(_digest(members)))

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.external_attr = 0o644 << 16
                z.writestr(info, members[name])

    atomic_write(Path(path), write)


def load(path) -> Model:
    """Read and check a model file; any problem is a ModelFileError naming the file and reason."""
    path = Path(path)
    return _model_from_members(path, _checked_members(path))


def _checked_members(path: Path) -> dict[str, bytes]:
    """The file's members, after checking that it is an nncli file with an intact checksum."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with zipfile.ZipFile(path) as z:
            members = {name: z.read(name) for name in z.namelist()}
    except Exception as exc:  # a damaged zip can fail in many ways (zlib, struct, unicode, ...)
        raise ModelFileError(f"{path}: not an nncli model file (not a readable .npz: {exc})") from None
    if "meta.json.npy" not in members or "meta.sha256.npy" not in members:
        raise ModelFileError(f"{path}: not an nncli model file (no meta.json/meta.sha256 member)")
    stored = _read_string(path, "meta.sha256", members.pop("meta.sha256.npy"))
    if stored != _digest(members):
        raise ModelFileError(f"{path}: checksum mismatch: the file was changed or damaged after it was written")
    return members


def _model_from_members(path: Path, members: dict[str, bytes]) -> Model:
    try:
        meta = json.loads(_read_string(path, "meta.json", members["meta.json.npy"]))
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: meta.json is not valid JSON") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {version} is newer than this nncli reads "
                             f"({FORMAT_VERSION}); upgrade nncli")
    try:
        return _build(path, meta, members)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path}: inconsistent model file: {exc!r}") from None


def _read_npy(path: Path, name: str, data: bytes) -> np.ndarray:
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # a damaged header can fail in many ways (ValueError, SyntaxError, ...)
        raise ModelFileError(f"{path}: member {name} is not a valid array: {exc}") from None


def _read_string(path: Path, name: str, data: bytes) -> str:
    array = _read_npy(path, name, data)
    if array.shape != () or array.dtype.kind != "U":
        raise ModelFileError(f"{path}: member {name} is not a text string")
    return str(array)


def _build(path: Path, meta: dict, members: dict) -> Model:
    layers = [LayerSpec(a["units"], a["activation"], tuple(a["params"]), a["init"], a["dropout"], a["batch_norm"],
                        a["bn_momentum"], a["bn_eps"]) for a in meta["architecture"]]
    network = Network(int(meta["n_inputs"]), layers, dtype=np.dtype(meta["dtype"]),
                      input_dropout=meta["input_dropout"])
    for name, view in {**network.params(), **network.state()}.items():
        member = f"{name}.npy"
        if member not in members:
            raise ModelFileError(f"{path}: missing weight array {name}")
        array = _read_npy(path, name, members.pop(member))
        if array.shape != view.shape or array.dtype != network.dtype:
            raise ModelFileError(f"{path}: {name} has shape {array.shape} and dtype {array.dtype}; "
                                 f"the architecture needs {view.shape} {network.dtype}")
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{path}: {name} holds non-finite values")
        view[:] = array
    history = {}
    for member in list(members):
        if member.startswith("history."):
            history[member[len("history."):-len(".npy")]] = _read_npy(path, member, members.pop(member)).tolist()
    members.pop("meta.json.npy")
    if members:
        raise ModelFileError(f"{path}: unexpected member(s) {', '.join(sorted(members))}")
    prep = Preprocessor.from_dict(meta["preprocessing"])
    if prep.n_inputs != network.n_inputs or prep.n_outputs != network.n_outputs:
        raise ModelFileError(f"{path}: the preprocessing does not fit the network's input/output sizes")
    return Model(network, prep, meta["config"], history, meta.get("summary", {}), meta.get("versions", {}))


def describe(model: Model, path) -> dict:
    """What `nncli info` shows: architecture, schema, training summary, versions."""
    prep, net = model.prep, model.network
    s = model.summary
    e = s["best_epoch"] if s.get("restored_best") else s.get("epochs_run", 0)
    final = {k: v[e - 1] for k, v in model.history.items() if v and 0 < e <= len(v)}  # the saved weights' epoch
    return {
        "file": str(path), "task": prep.task, "dtype": net.dtype.name, "parameters": net.n_params,
        "network": " -> ".join([str(net.n_inputs)] + [f"{s.units} {s.activation}" for s in net.layers[:-1]]
                               + [f"{net.n_outputs} {OUTPUT_ACTIVATION[prep.task]}"]),
        "layers": net.describe(), "inputs": net.n_inputs, "target": prep.target, "labels": prep.labels,
        "features": [
            {"name": f.name, "kind": "derived" if f.derived else f.kind, "fill": f.fill, "center": f.center, "scale": f.scale,
             "categories": f.categories} for f in prep.features
        ],
        "trained_on": model.summary.get("data_file"), "epochs": model.summary.get("epochs_run"),
        "summary": model.summary, "saved_epoch": {"epoch": e, **final}, "versions": model.versions, "config": model.config,
    }


# ----- checkpoints of interrupted training runs ----------------------------------------------------
CHECKPOINT_ARRAYS = ("s1", "s2", "perm", "best_theta", "best_running")


def save_checkpoint(model: Model, state, data_sha256: str, path) -> None:
    """The model so far plus the TrainState (nncli.train) needed to resume it exactly."""
    members = _members(model)
    scalars = {k: v for k, v in vars(state).items() if k not in CHECKPOINT_ARRAYS}
    scalars["data_sha256"] = data_sha256
    members["state.json.npy"] = _npy_bytes(np.array(json.dumps(scalars, sort_keys=True)))
    for name in CHECKPOINT_ARRAYS:
        value = getattr(state, name)
        if value is not None:
            members[f"state.{name}.npy"] = _npy_bytes(value)
    _write_members(members, path)


def load_checkpoint(path):
    """(model, state dict, data_sha256) from a checkpoint written by save_checkpoint."""
    path = Path(path)
    members = _checked_members(path)
    if "state.json.npy" not in members:
        raise ModelFileError(f"{path}: not a checkpoint (a model file? --resume takes the .ckpt.npz that an "
                             f"interrupted `nncli train` wrote)")
    state = json.loads(_read_string(path, "state.json", members.pop("state.json.npy")))
    for name in CHECKPOINT_ARRAYS:
        member = members.pop(f"state.{name}.npy", None)
        state[name] = None if member is None else _read_npy(path, f"state.{name}", member)
    model = _model_from_members(path, members)
    return model, state, state.pop("data_sha256")
