"""A trained model and its two documents: ``.npz`` bytes and API.md's JSON weights document.

The ``.npz`` holds only numeric and unicode arrays and is read with
``allow_pickle=False``: a file that would need pickle (an object array, a raw
pickle) raises :class:`core.errors.UnsafeFileError` and is never executed.
Members (format ``annlab.model/2``): ``format``, ``spec`` (the normalised RunSpec
as JSON text), ``task`` and ``dataset_name`` (0-d text), ``class_names`` (a 1-d
string array; absent for regression) and ``feature_names`` (a 1-d string array),
``mean``/``std`` when the features are standardised, and ``layers.<i>.weights`` /
``layers.<i>.biases``. ``annlab.model/1`` files (``class_names`` as JSON text, no
feature or dataset names) are still read.
"""

from __future__ import annotations

import functools
import io
import json
import struct
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import CheckpointError, UnsafeFileError
from core.network import Network, predict_classes
from core.specs import RunSpec, Task

MODEL_FORMAT = "annlab.model/2"
#: Still read: class names as JSON text, no feature or dataset names.
MODEL_FORMAT_1 = "annlab.model/1"
#: Rows per forward pass in ``predict``.
PREDICT_CHUNK = 4096


def load_npz(data: bytes) -> dict[str, np.ndarray]:
    """Every member of an ``.npz`` as an array, refusing anything that needs pickle.

    UnsafeFileError for a pickle or an array that needs pickle; CheckpointError for
    anything else that is not a readable ``.npz``.
    """
    if not data.startswith((b"PK", b"\x93NUMPY")):
        # np.load would take it for a pickle: say so if it is one, refuse it either way
        if data.startswith(b"\x80"):
            raise UnsafeFileError("refused: the file is a pickle")
        raise CheckpointError("not an .npz file")
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise UnsafeFileError(f"refused: the file needs pickle to load ({error})") from None
        raise CheckpointError(f"not an .npz file: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"not an .npz file: {error}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise CheckpointError("not an .npz archive (a single .npy array)")
    arrays: dict[str, np.ndarray] = {}
    with loaded:
        for name in loaded.files:
            try:
                arrays[name] = loaded[name]
            except ValueError as error:
                if "pickle" in str(error).lower():
                    raise UnsafeFileError(
                        f"refused: member {name!r} needs pickle to load"
                    ) from None
                raise CheckpointError(f"member {name!r} is unreadable: {error}") from None
            except (OSError, EOFError, zipfile.BadZipFile) as error:
                raise CheckpointError(f"member {name!r} is unreadable: {error}") from None
    return arrays


def save_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """The ``.npz`` of ``arrays``: what ``np.savez`` writes, read back by ``np.load``."""
    return npz_of_members([(f"{name}.npy", npy_bytes(array)) for name, array in arrays.items()])


def npy_bytes(array: np.ndarray) -> bytes:
    """One array as an ``.npy`` file (``np.save``), never pickled."""
    array = np.asanyarray(array)
    if array.flags.c_contiguous and not array.dtype.hasobject:
        # The header depends on the dtype and shape alone; a run's snapshots repeat them.
        return _npy_header(array.dtype, array.shape) + array.tobytes()
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1024)
def _npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """``np.save``'s header of a C-ordered array (``write_array`` built it anew each
    time: 6 µs of a 7 µs encoding of a small layer)."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buffer, header)
    except ValueError:  # over 64 KiB (a large structured dtype): version 2.0
        buffer = io.BytesIO()
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


#: Archives up to this size are written by ``stored_zip``; larger ones (ZIP64) by zipfile.
STORED_ZIP_LIMIT = 0x7FFF_FFFF
#: The members' date in the archive: 1980-01-01 00:00 (DOS format), so that the same
#: arrays always give the same bytes.
_DOS_DATE, _DOS_TIME = (1 << 5) | 1, 0


def npz_of_members(members: list[tuple[str, bytes]]) -> bytes:
    """An ``.npz`` of ``(file name, .npy bytes)`` members, uncompressed as ``np.savez``'s."""
    if sum(len(data) for _, data in members) < STORED_ZIP_LIMIT and len(members) < 0xFFFF:
        return stored_zip(members)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def stored_zip(members: list[tuple[str, bytes]]) -> bytes:
    """A ZIP archive of uncompressed members (no ZIP64: under 2 GiB, 65,535 members).

    Written here rather than by ``zipfile``, whose per-member bookkeeping cost 15 µs a
    member: a snapshot of an iris model (12 members) took 0.34 ms through
    ``np.savez``, and a small run takes 12 snapshots. The layout is the ZIP format's
    simplest (APPNOTE 4.3: local headers, the central directory, its end record),
    which every reader takes; ``tests/core/test_serialize.py`` reads it back with
    ``zipfile`` (CRCs checked) and ``np.load``."""
    body: list[bytes] = []
    directory: list[bytes] = []
    offset = 0
    for name, data in members:
        encoded = name.encode("utf-8")
        flags = 0 if encoded.isascii() else 0x800  # bit 11: the name is UTF-8
        crc, size = zlib.crc32(data), len(data)
        fixed = (20, flags, 0, _DOS_TIME, _DOS_DATE, crc, size, size, len(encoded))
        body += [struct.pack("<4s5H3LHH", b"PK\x03\x04", *fixed, 0), encoded, data]
        directory.append(
            struct.pack("<4sH5H3L5HLL", b"PK\x01\x02", 20, *fixed, 0, 0, 0, 0, 0, offset) + encoded
        )
        offset += 30 + len(encoded) + size
    central = b"".join(directory)
    end = struct.pack(
        "<4s4HLLH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), offset, 0
    )
    return b"".join(body) + central + end


def text_array(text: str) -> np.ndarray:
    """A 0-d unicode array (stored without pickle)."""
    return np.array(text, dtype=np.str_)


def strings_array(texts: list[str]) -> np.ndarray:
    """A 1-d unicode array (stored without pickle; ``np.str_`` even when empty)."""
    return np.array(texts, dtype=np.str_).reshape(len(texts))


def read_strings(arrays: dict[str, np.ndarray], name: str) -> list[str] | None:
    """A 1-d unicode member as a list; None when absent."""
    value = arrays.get(name)
    if value is None:
        return None
    if value.dtype.kind != "U" or value.ndim != 1:
        raise CheckpointError(f"member {name!r} is not a list of strings")
    return [str(item) for item in value.tolist()]


def read_text(arrays: dict[str, np.ndarray], name: str) -> str:
    value = arrays.get(name)
    if value is None or value.dtype.kind != "U" or value.ndim != 0:
        raise CheckpointError(f"member {name!r} is missing or not text")
    return str(value[()])


@dataclass
class TrainedModel:
    """Weights of a trained network with what prediction needs."""

    spec: RunSpec  # normalised
    task: Task
    layers: list[tuple[np.ndarray, np.ndarray]]  # (W (n_in, units), b (units,)), spec.dtype
    mean: np.ndarray | None = None  # float64 standardisation, or None
    std: np.ndarray | None = None
    class_names: list[str] | None = None
    #: The dataset's feature names and name (None: a model file from before they were kept).
    feature_names: list[str] | None = None
    dataset_name: str | None = None
    _network: Network | None = field(default=None, init=False, repr=False, compare=False)
    # The network's forward pass writes into workspace buffers it reuses, so a model
    # shared by concurrent predictions (the service's cache) must run one at a time.
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    #: The encoded members that are not weights (``share_fixed_members``).
    _fixed_members: list[tuple[str, bytes]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    @property
    def n_features(self) -> int:
        return int(self.layers[0][0].shape[0])

    def network(self) -> Network:
        """The network with these weights (built once)."""
        if self._network is None:
            network = Network.from_spec(self.spec, n_inputs=self.n_features)
            network.set_weights(self.layers)
            self._network = network
        return self._network

    def prepare(self, inputs: np.ndarray) -> np.ndarray:
        """Raw features → network inputs: (x − mean) / std in float64, then the dtype."""
        features = np.asarray(inputs, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"inputs must have shape (n, {self.n_features}), got {features.shape}")
        if self.mean is not None and self.std is not None:
            features = (features - self.mean) / self.std
        return np.ascontiguousarray(features, dtype=self.spec.dtype)

    def predict(self, inputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        """(outputs (n, units) in the model's dtype, predictions): class names for
        classification, values for regression (floats for one output, lists for
        several)."""
        result = self._predict(inputs, blocking=True)
        assert result is not None
        return result

    def try_predict(self, inputs: np.ndarray) -> tuple[np.ndarray, list[Any]] | None:
        """``predict``, or None at once if another prediction holds the model (for an
        event loop, which must not wait for the lock)."""
        return self._predict(inputs, blocking=False)

    def _predict(
        self, inputs: np.ndarray, *, blocking: bool
    ) -> tuple[np.ndarray, list[Any]] | None:
        features = self.prepare(inputs)
        if not self._lock.acquire(blocking=blocking):
            return None
        try:
            network = self.network()
            outputs = np.empty((features.shape[0], network.n_outputs), dtype=network.dtype)
            for start in range(0, features.shape[0], PREDICT_CHUNK):
                stop = start + PREDICT_CHUNK
                outputs[start:stop] = network.forward(features[start:stop])
        finally:
            self._lock.release()
        if self.task == "classification":
            names = self.class_names or []
            classes = predict_classes(outputs, network.output_activation)
            return outputs, [names[index] for index in classes.tolist()]
        if outputs.shape[1] == 1:
            return outputs, outputs[:, 0].astype(np.float64).tolist()
        return outputs, outputs.astype(np.float64).tolist()

    # --------------------------------------------------------------- documents

    def to_weights_document(self) -> dict[str, Any]:
        """API.md's weights document; ``weights[i][j]`` joins input i to unit j. Also
        ``task``, ``class_names``, ``feature_names`` and ``dataset_name``: what a client
        needs to use the weights without asking the service anything else."""
        standardize = None
        if self.mean is not None and self.std is not None:
            standardize = {"mean": self.mean.tolist(), "std": self.std.tolist()}
        return {
            "task": self.task,
            "class_names": self.class_names,
            "feature_names": self.feature_names,
            "dataset_name": self.dataset_name,
            "dtype": self.spec.dtype,
            "standardize": standardize,
            "layers": [
                {
                    "units": layer.units,
                    "activation": layer.activation,
                    "weights": weights.astype(np.float64).tolist(),
                    "biases": biases.astype(np.float64).tolist(),
                }
                for layer, (weights, biases) in zip(
                    self.spec.model.layers, self.layers, strict=True
                )
            ],
        }

    @classmethod
    def from_weights_document(
        cls,
        document: dict[str, Any],
        *,
        spec: RunSpec,
        task: Task,
        class_names: list[str] | None = None,
    ) -> TrainedModel:
        """The model of a weights document trained from ``spec``."""
        dtype = np.dtype(spec.dtype)
        layers = [
            (
                np.array(layer["weights"], dtype=dtype).reshape(-1, len(layer["biases"])),
                np.array(layer["biases"], dtype=dtype),
            )
            for layer in document["layers"]
        ]
        standardize = document.get("standardize")
        mean = std = None
        if standardize is not None:
            mean = np.array(standardize["mean"], dtype=np.float64)
            std = np.array(standardize["std"], dtype=np.float64)
        model = cls(
            spec=spec,
            task=task,
            layers=layers,
            mean=mean,
            std=std,
            class_names=class_names if class_names is not None else document.get("class_names"),
            feature_names=document.get("feature_names"),
            dataset_name=document.get("dataset_name"),
        )
        model.check()
        return model

    def check(self) -> None:
        """CheckpointError unless the weights fit the spec."""
        specs = self.spec.model.layers
        if len(specs) != len(self.layers):
            raise CheckpointError(f"{len(self.layers)} layers stored, the spec has {len(specs)}")
        n_in = self.layers[0][0].shape[0] if self.layers else 0
        for index, (layer, (weights, biases)) in enumerate(zip(specs, self.layers, strict=True)):
            if weights.shape != (n_in, layer.units) or biases.shape != (layer.units,):
                raise CheckpointError(
                    f"layer {index}: weights {weights.shape} and biases {biases.shape} do not "
                    f"fit {n_in} inputs and {layer.units} units"
                )
            n_in = layer.units
        if self.feature_names is not None and len(self.feature_names) != self.n_features:
            raise CheckpointError(
                f"{len(self.feature_names)} feature names for {self.n_features} inputs"
            )
        if (self.mean is None) != (self.std is None) or (
            self.mean is not None
            and self.std is not None
            and (self.mean.shape != (self.n_features,) or self.std.shape != (self.n_features,))
        ):
            raise CheckpointError("standardisation does not fit the input width")

    def to_npz_bytes(self) -> bytes:
        if not self._fixed_members:
            self._fixed_members.extend(
                (f"{name}.npy", npy_bytes(array)) for name, array in self._fixed_arrays().items()
            )
        layers = [
            (f"layers.{index}.{part}.npy", npy_bytes(array))
            for index, (weights, biases) in enumerate(self.layers)
            for part, array in (("weights", weights), ("biases", biases))
        ]
        return npz_of_members(self._fixed_members + layers)

    def share_fixed_members(self, members: list[tuple[str, bytes]]) -> None:
        """Encode the members every model of one run has alike (format, spec, names,
        standardisation) once, into ``members``, for all the run's models (its
        snapshots): the spec's JSON and eight small arrays were half of a snapshot's
        cost. ``members`` is filled by the first ``to_npz_bytes`` of any of them."""
        self._fixed_members = members

    def _fixed_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {
            "format": text_array(MODEL_FORMAT),
            "spec": text_array(self.spec.model_dump_json()),
            "task": text_array(self.task),
        }
        if self.class_names is not None:
            arrays["class_names"] = strings_array(self.class_names)
        if self.feature_names is not None:
            arrays["feature_names"] = strings_array(self.feature_names)
        if self.dataset_name is not None:
            arrays["dataset_name"] = text_array(self.dataset_name)
        if self.mean is not None and self.std is not None:
            arrays["mean"] = self.mean
            arrays["std"] = self.std
        return arrays

    @classmethod
    def from_npz_bytes(cls, data: bytes) -> TrainedModel:
        """Read :meth:`to_npz_bytes` (``allow_pickle=False``; UnsafeFileError if pickled)."""
        arrays = load_npz(data)
        file_format = read_text(arrays, "format")
        if file_format not in (MODEL_FORMAT, MODEL_FORMAT_1):
            raise CheckpointError("not an annlab model file")
        try:
            spec = RunSpec.model_validate_json(read_text(arrays, "spec"))
            if file_format == MODEL_FORMAT_1:
                class_names = json.loads(read_text(arrays, "class_names"))
            else:
                class_names = read_strings(arrays, "class_names")
        except ValueError as error:
            raise CheckpointError(f"unreadable model metadata: {error}") from None
        feature_names = read_strings(arrays, "feature_names")
        dataset_name = read_text(arrays, "dataset_name") if "dataset_name" in arrays else None
        task = read_text(arrays, "task")
        if task not in ("classification", "regression"):
            raise CheckpointError(f"unknown task {task!r}")
        dtype = np.dtype(spec.dtype)
        layers = []
        for index in range(len(spec.model.layers)):
            try:
                weights = arrays[f"layers.{index}.weights"]
                biases = arrays[f"layers.{index}.biases"]
            except KeyError:
                raise CheckpointError(f"layer {index} is missing") from None
            if weights.dtype != dtype or biases.dtype != dtype:
                raise CheckpointError(f"layer {index} is not {dtype}")
            layers.append((weights, biases))
        model = cls(
            spec=spec,
            task=task,  # type: ignore[arg-type]
            layers=layers,
            mean=arrays.get("mean"),
            std=arrays.get("std"),
            class_names=class_names,
            feature_names=feature_names,
            dataset_name=dataset_name,
        )
        model.check()
        return model
