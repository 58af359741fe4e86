"""Arrays that are only a shape: the payloads of a timing-only run (``math = false``).

A ``Phantom`` has a ``shape`` and a ``dtype`` -- so a ``size`` and ``nbytes`` -- and no
values. numpy's own protocols (``__array_ufunc__``, ``__array_function__``) carry it
through the code a strategy and a learner already run: ``A @ W + b`` of phantoms is a
phantom of the product's shape and dtype, ``np.concatenate`` of phantoms is a phantom of
the joined length, ``X[rows]`` is a phantom of ``len(rows)`` rows. Nothing is allocated
and no arithmetic is done, so a layer of width 12,288 costs what a layer of width 4 costs;
and since the simulated clock reads only shapes (flops from row counts, bytes from
``nbytes``), a run on phantoms keeps every time, byte and memory figure of the same run
on real arrays.

What a phantom refuses, it refuses loudly (``PhantomError``): a branch on its values
(``bool``), an integer read from it, its conversion to a real array (``np.asarray``, or
writing it into a real one), and any numpy function without a shape rule here. A value
read as a float (``float(loss)``) is ``nan``: unknown, never a number that looks right.

>>> W = Phantom((4, 3)); X = Phantom((10, 4))
>>> Z = np.maximum(X @ W + 1.0, 0.0); Z
Phantom((10, 3), float64)
>>> Z.nbytes, Z[2:5].shape, Z.sum(axis=0).shape
(240, (3, 3), (3,))
>>> bool(Z.sum() > 0)
Traceback (most recent call last):
...
simdml.phantom.PhantomError: a timing-only run (math = false) has no values: the code asked whether an array of shape () is true, which depends on the data
"""
from __future__ import annotations

import math
import operator

import numpy as np

__all__ = ["Phantom", "PhantomError", "is_phantom"]


class PhantomError(TypeError):
    """Something a timing-only run cannot do: it needs the values the run does not have."""


class _NoAttribute(PhantomError, AttributeError):
    """A method a phantom does not have (``.item()``, ``.argmax()``): refused, and still
    an AttributeError for ``hasattr``."""


def _refuse(what: str):
    raise PhantomError(f"a timing-only run (math = false) has no values: {what}, which "
                       f"depends on the data")


def is_phantom(a) -> bool:
    """Is ``a`` a phantom (a timing-only run's array)?"""
    return isinstance(a, Phantom)


def _shape_of(x) -> tuple[int, ...]:
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else np.asarray(x).shape


def _dtype_of(x):
    return x.dtype if isinstance(x, (Phantom, np.ndarray, np.generic)) else None


def _stand_in(x):
    """What ``x`` is for numpy's type rules: an array of one element of its dtype (and
    its number of axes), or the Python scalar itself (numpy types those weakly)."""
    if isinstance(x, (Phantom, np.ndarray)):
        return np.ones((1,) * len(x.shape), x.dtype)
    return x


def _type_key(x):
    if isinstance(x, (Phantom, np.ndarray)):
        return (x.dtype, len(x.shape))
    if isinstance(x, np.generic):
        return (x.dtype, -1)
    return type(x)


_DTYPES: dict = {}  # (ufunc, method, input types, kwargs) -> result dtypes


def _result_dtypes(ufunc, method: str, inputs, kwargs) -> tuple:
    """The dtypes of ``ufunc``'s results on ``inputs``, as numpy decides them: by running
    it on one-element stand-ins (once per combination of types; remembered)."""
    extra = tuple(sorted((k, v) for k, v in kwargs.items() if k in ("dtype", "casting")))
    key = (ufunc, method, tuple(map(_type_key, inputs)), extra)
    found = _DTYPES.get(key)
    if found is None:
        with np.errstate(all="ignore"):
            call = ufunc if method == "__call__" else getattr(ufunc, method)
            args = dict(extra)
            if method == "reduce":
                args["axis"] = None
            out = call(*map(_stand_in, inputs), **args)
        found = tuple(np.asarray(o).dtype for o in (out if isinstance(out, tuple) else (out,)))
        _DTYPES[key] = found
    return found


def _matmul_shape(a, b) -> tuple[int, ...]:
    if not a or not b:
        raise ValueError("matmul: input operand does not have enough dimensions")
    sa, sb = (1, *a) if len(a) == 1 else a, (*b, 1) if len(b) == 1 else b
    if sa[-1] != sb[-2]:
        raise ValueError(f"matmul: mismatch in its core dimension: {a} @ {b}")
    out = (*np.broadcast_shapes(sa[:-2], sb[:-2]), sa[-2], sb[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for ax in axes:
        ax = operator.index(ax)
        if not -ndim <= ax < ndim:
            raise np.exceptions.AxisError(ax, ndim)
        out.append(ax % ndim)
    return tuple(out)


def _reduced(shape, axis, keepdims: bool) -> tuple[int, ...]:
    axes = _axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _index_shape(shape: tuple[int, ...], key) -> tuple[int, ...]:
    """The shape of ``a[key]`` for an array of ``shape``: numpy's basic and advanced
    indexing rules, from the key's shapes only. With an array in the key, its integers
    are advanced indices too; advanced indices side by side are replaced in place by
    their broadcast shape, apart it goes first. A boolean array selects as many entries
    as it has true ones (a phantom mask has no count: refused)."""
    key = key if isinstance(key, tuple) else (key,)
    key = tuple(np.asarray(k) if isinstance(k, list) else k for k in key)
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    is_bool = lambda k: isinstance(k, (bool, np.bool_)) or (  # noqa: E731
        _is_array(k) and _dtype_of(k) == np.bool_)
    has_array = any(_is_array(k) for k in key)
    used = sum(len(_shape_of(k)) if is_bool(k) else 0 if k is None or k is Ellipsis else 1
               for k in key)
    if used > len(shape):
        raise IndexError(f"too many indices for an array of shape {shape}")
    out, advanced, places, dim = [], [], [], 0
    for pos, k in enumerate(key):
        if k is Ellipsis:
            rest = len(shape) - used
            out += shape[dim:dim + rest]
            dim += rest
        elif k is None:
            out.append(1)
        elif isinstance(k, slice):
            out.append(len(range(*k.indices(shape[dim]))))
            dim += 1
        elif is_bool(k):
            if isinstance(k, Phantom):
                _refuse("a boolean mask selects rows")
            mask = np.asarray(k)
            if mask.shape != shape[dim:dim + mask.ndim]:
                raise IndexError(f"a boolean index of shape {mask.shape} does not match the "
                                 f"array's axes {shape[dim:dim + mask.ndim]}")
            advanced.append((int(np.count_nonzero(mask)),))
            places.append((pos, len(out)))
            dim += mask.ndim
        elif _is_array(k):
            if _dtype_of(k).kind not in "iu":
                raise IndexError("arrays used as indices must be of integer (or boolean) type")
            advanced.append(_shape_of(k))
            places.append((pos, len(out)))
            dim += 1
        else:
            i = operator.index(k)
            if not -shape[dim] <= i < shape[dim]:
                raise IndexError(f"index {i} is out of bounds for axis {dim} with size "
                                 f"{shape[dim]}")
            if has_array:                       # an integer beside an array is advanced
                advanced.append(())
                places.append((pos, len(out)))
            dim += 1
    out += shape[dim:]
    if advanced:
        positions = [p for p, _ in places]
        side_by_side = positions == list(range(positions[0], positions[0] + len(positions)))
        where = places[0][1] if side_by_side else 0
        out[where:where] = np.broadcast_shapes(*advanced)
    return tuple(out)


def _is_array(k) -> bool:
    return isinstance(k, (Phantom, np.ndarray))


class Phantom(np.lib.mixins.NDArrayOperatorsMixin):
    """An array of ``shape`` and ``dtype`` without values (see the module docstring)."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype=np.float64):
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in shape):
            raise ValueError(f"a phantom's shape is a tuple of ints >= 0; got {shape!r}")
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    @classmethod
    def _of(cls, shape: tuple, dtype: np.dtype) -> Phantom:
        """A phantom of a shape (a tuple of ints) and a dtype known to be right (perf:
        no checks)."""
        p = object.__new__(cls)
        p.shape, p.dtype = shape, dtype
        return p

    @classmethod
    def like(cls, a) -> Phantom:
        """A phantom of ``a``'s shape and dtype."""
        return cls(a.shape, a.dtype)

    # -- what it has: its shape -------------------------------------------------------
    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    itemsize = property(lambda self: self.dtype.itemsize)
    nbytes = property(lambda self: self.size * self.dtype.itemsize)
    T = property(lambda self: Phantom._of(self.shape[::-1], self.dtype))
    flags = property(lambda self: {"writeable": False})

    def __getattr__(self, name: str):
        if name.startswith("__"):                # numpy's protocol probes: not here
            raise AttributeError(name)
        raise _NoAttribute(f"a timing-only run (math = false) has no values: a phantom array "
                           f"has no .{name} (it has a shape, a dtype and numpy's shape rules)")

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"Phantom({self.shape}, {self.dtype})"

    # -- what it has not: values ----------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        _refuse(f"the code asked for the values of an array of shape {self.shape}")

    def __bool__(self):
        _refuse(f"the code asked whether an array of shape {self.shape} is true")

    def __int__(self):
        _refuse(f"the code read an integer from an array of shape {self.shape}")

    def __float__(self) -> float:
        return math.nan                          # a reported number: unknown

    def tolist(self):
        _refuse(f"the code asked for the values of an array of shape {self.shape}")

    # -- shape functions -------------------------------------------------------------
    def __getitem__(self, key) -> Phantom:
        shape = self.shape
        if type(key) is slice and shape:          # perf: a range of rows, the common case
            return Phantom._of((len(range(*key.indices(shape[0]))), *shape[1:]), self.dtype)
        return Phantom._of(_index_shape(shape, key), self.dtype)

    def __setitem__(self, key, value) -> None:
        np.broadcast_shapes(_shape_of(value), _index_shape(self.shape, key))  # it must fit

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def reshape(self, *shape, order="C") -> Phantom:
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)) \
            else shape
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if shape.count(-1) == 1:
            known = math.prod(n for n in shape if n != -1)
            shape = tuple(self.size // known if n == -1 else n for n in shape)
        if math.prod(shape) != self.size:
            raise ValueError(f"cannot reshape an array of size {self.size} into shape {shape}")
        return Phantom(shape, self.dtype)

    def ravel(self, order="C") -> Phantom:
        return Phantom._of((self.size,), self.dtype)

    flatten = ravel

    def copy(self, order="C") -> Phantom:
        return Phantom._of(self.shape, self.dtype)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True) -> Phantom:
        return self if not copy and np.dtype(dtype) == self.dtype else Phantom(self.shape, dtype)

    def transpose(self, *axes) -> Phantom:
        if not axes or axes == (None,):
            return self.T
        axes = axes[0] if len(axes) == 1 else axes
        return Phantom(tuple(self.shape[a] for a in axes), self.dtype)

    def _reduce(self, ufunc, axis=None, dtype=None, out=None, keepdims=False, **_):
        return ufunc.reduce(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return self._reduce(np.add, axis, dtype, out, keepdims)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return self._reduce(np.multiply, axis, dtype, out, keepdims)

    def max(self, axis=None, out=None, keepdims=False, **kw):
        return self._reduce(np.maximum, axis, None, out, keepdims)

    def min(self, axis=None, out=None, keepdims=False, **kw):
        return self._reduce(np.minimum, axis, None, out, keepdims)

    def all(self, axis=None, out=None, keepdims=False, **kw):
        return self._reduce(np.logical_and, axis, None, out, keepdims)

    def any(self, axis=None, out=None, keepdims=False, **kw):
        return self._reduce(np.logical_or, axis, None, out, keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        total = self.sum(axis=axis, dtype=dtype, keepdims=keepdims)
        return total / 1.0

    def dot(self, other):
        return np.dot(self, other)

    # -- numpy's protocols -----------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if method == "__call__":
            shapes = [_shape_of(x) for x in inputs]
            if ufunc is np.matmul:
                shape = _matmul_shape(*shapes)
            else:
                arrays = [s for s in shapes if s]
                shape = (arrays[0] if arrays and all(s == arrays[0] for s in arrays)
                         else np.broadcast_shapes(*shapes))  # perf: equal shapes, scalars
        elif method == "reduce":
            (a,) = inputs
            shape = _reduced(_shape_of(a), kwargs.get("axis", 0), kwargs.get("keepdims", False))
        else:
            raise PhantomError(f"a timing-only run (math = false) has no shape rule for "
                               f"np.{ufunc.__name__}.{method}")
        dtypes = _result_dtypes(ufunc, method, inputs, kwargs)
        if out is not None:
            for o in out:
                if not isinstance(o, Phantom):
                    raise PhantomError(f"a timing-only run (math = false) cannot write the "
                                       f"result of np.{ufunc.__name__} into a real array")
                np.broadcast_shapes(o.shape, shape)
            return out[0] if len(out) == 1 else out
        results = tuple(Phantom._of(shape, dt) for dt in dtypes)
        return results[0] if len(results) == 1 else results

    def __array_function__(self, func, types, args, kwargs):
        rule = _FUNCTIONS.get(func)
        if rule is None:
            raise PhantomError(f"a timing-only run (math = false) has no shape rule for "
                               f"np.{func.__name__}: the code needs values or a rule here")
        return rule(*args, **kwargs)


# -- the numpy functions phantoms know: shape rules -------------------------------------

def _result_dtype(arrays, dtype=None):
    if dtype is not None:
        return np.dtype(dtype)
    return np.result_type(*[np.empty(0, _dtype_of(a) or np.asarray(a).dtype) for a in arrays])


def _concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    arrays = list(arrays)
    shapes = [_shape_of(a) for a in arrays]
    if not shapes:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        shape = (sum(math.prod(s) for s in shapes),)
    else:
        ax = _axes(axis, len(shapes[0]))[0]
        rest = [s[:ax] + s[ax + 1:] for s in shapes]
        if any(len(s) != len(shapes[0]) for s in shapes) or any(r != rest[0] for r in rest):
            raise ValueError(f"all the input array dimensions except for the concatenation "
                             f"axis must match exactly; got shapes {shapes}")
        shape = list(shapes[0])
        shape[ax] = sum(s[ax] for s in shapes)
        shape = tuple(shape)
    return Phantom(shape, _result_dtype(arrays, dtype))


def _stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    arrays = list(arrays)
    shapes = [_shape_of(a) for a in arrays]
    if not shapes or any(s != shapes[0] for s in shapes):
        raise ValueError(f"all input arrays must have the same shape; got {shapes}")
    shape = list(shapes[0])
    shape.insert(_axes(axis, len(shape) + 1)[0], len(arrays))
    return Phantom(tuple(shape), _result_dtype(arrays, dtype))


def _like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return Phantom(_shape_of(a) if shape is None else shape,
                   _dtype_of(a) if dtype is None else dtype)


def _full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return _like(a, dtype, shape=shape)


def _array_split(ary, indices_or_sections, axis=0):
    n = _shape_of(ary)[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        each, extra = divmod(n, k)
        sizes = [each + 1] * extra + [each] * (k - extra)
    else:
        bounds = [0, *indices_or_sections, n]
        sizes = [len(range(n)[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]  # as slices
    shape, dtype = list(_shape_of(ary)), _dtype_of(ary)
    out = []
    for size in sizes:
        shape[axis] = size
        out.append(Phantom._of(tuple(shape), dtype))
    return out


def _split(ary, indices_or_sections, axis=0):
    if isinstance(indices_or_sections, (int, np.integer)) and \
            _shape_of(ary)[axis] % indices_or_sections:
        raise ValueError("array split does not result in an equal division")
    return _array_split(ary, indices_or_sections, axis)


def _sum(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    return np.add.reduce(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims)


def _dot(a, b, out=None):
    sa, sb = _shape_of(a), _shape_of(b)
    if not sa or not sb:
        return np.multiply(a, b)
    return np.matmul(a, b) if len(sa) <= 2 and len(sb) <= 2 else _refuse_rule("np.dot of stacks")


def _refuse_rule(what):
    raise PhantomError(f"a timing-only run (math = false) has no shape rule for {what}")


def _vdot(a, b):
    return Phantom((), _result_dtype([a, b]))


_FUNCTIONS = {
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.zeros_like: _like,
    np.empty_like: _like,
    np.ones_like: _like,
    np.full_like: _full_like,
    np.array_split: _array_split,
    np.split: _split,
    np.sum: _sum,
    np.dot: _dot,
    np.vdot: _vdot,
    np.shape: _shape_of,
    np.ndim: lambda a: len(_shape_of(a)),
    np.size: lambda a, axis=None: math.prod(_shape_of(a)) if axis is None else _shape_of(a)[axis],
    np.reshape: lambda a, shape=None, order="C", **kw: a.reshape(kw.get("newshape", shape)),
    np.ravel: lambda a, order="C": a.ravel(),
    np.transpose: lambda a, axes=None: a.transpose(axes),
    np.copyto: lambda dst, src, casting="same_kind", where=True: dst.__setitem__(..., src),
    np.may_share_memory: lambda a, b, max_work=None: False,
    np.shares_memory: lambda a, b, max_work=None: False,
    np.result_type: lambda *arrays: _result_dtype(arrays),
}
