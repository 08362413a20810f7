"""Numba-compiled kernels. Only modules in this package import numba.

Importing the package first points numba's on-disk cache at a writable folder, before numba is
imported. The folder name carries the nncli version and a hash of the kernel sources: numba's own
cache only notices edits to the file that holds the cached function, not to jitted functions it
calls in sibling modules, so a change anywhere in this package must start a fresh cache.

Where the cache lives, in order: $NNCLI_CACHE_DIR; $NUMBA_CACHE_DIR if the user set it; the
user's cache folder ($XDG_CACHE_HOME or ~/.cache)/nncli; the system temporary folder. If none can
be written, kernels are compiled in memory on every run (`CACHE` is False) instead of failing.

It also loads scipy's cython_blas module before numba's first compiled call, without the rest of
scipy.linalg (`_preload_cython_blas`: 0.3 s of every run), and loads cached kernels without
numba's compiler registries (`_CacheLoad`: 0.2 s of every run).
"""

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from nncli import __version__

_HERE = Path(__file__).resolve().parent


def _sources_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(_HERE.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe", delete=True)
        probe.close()
        return True
    except OSError:
        return False


def _choose_cache_dir() -> Path | None:
    leaf = f"kernels-{__version__}-{_sources_hash()}"
    candidates = []
    if os.environ.get("NNCLI_CACHE_DIR"):
        candidates.append(Path(os.environ["NNCLI_CACHE_DIR"]) / leaf)
    elif os.environ.get("NUMBA_CACHE_DIR"):
        candidates.append(Path(os.environ["NUMBA_CACHE_DIR"]) / leaf)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates.append(Path(base) / "nncli" / leaf)
    candidates.append(Path(tempfile.gettempdir()) / f"nncli-{os.getuid()}" / leaf)
    for folder in candidates:
        if _writable(folder):
            return folder
    return None


class _CythonBlasAttribute(importlib.abc.MetaPathFinder):
    """Sets scipy.linalg.cython_blas when scipy.linalg is imported after _preload_cython_blas: the
    import system makes a submodule an attribute of its package only when it loads the submodule
    itself. Finds scipy.linalg as the path finder does and wraps the exec_module of that spec's
    own loader (a fresh file loader per spec); inert once scipy.linalg has run, or for any other
    kind of loader (then the normal finders take over)."""

    done = False

    def find_spec(self, name, path=None, target=None):
        if name != "scipy.linalg" or self.done:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loaders = (importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader)
        if spec is None or not isinstance(spec.loader, loaders):
            return None
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            self.done = True
            blas = sys.modules.get("scipy.linalg.cython_blas")
            if blas is not None:
                module.cython_blas = blas

        spec.loader.exec_module = exec_module
        return spec


def _preload_cython_blas() -> None:
    """Load scipy.linalg.cython_blas without running scipy.linalg's package import.

    The first compiled call in a process loads numba's array typing, which imports
    scipy.linalg.cython_blas only to learn that a BLAS exists, and the kernels call BLAS through
    that same module. Importing it the usual way first runs scipy/linalg/__init__.py, which pulls
    in all of scipy.linalg and, through scipy's array API layer, numpy.f2py: about 0.3 s of every
    run, a fifth of `nncli train` on a small file. The extension module itself needs none of that,
    so it is loaded directly from its file and registered under its full name; numba's import and
    its C helpers then find it in sys.modules. A later `import scipy.linalg` still runs the package
    as usual (and _CythonBlasAttribute gives it back its attribute). If scipy is missing or laid
    out differently, nothing is done and numba imports as it always does.
    """
    name = "scipy.linalg.cython_blas"
    if name in sys.modules or "scipy.linalg" in sys.modules:
        return
    try:
        scipy = importlib.util.find_spec("scipy")
        folders = scipy.submodule_search_locations if scipy is not None else None
        if not folders:
            return
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(folders[0]) / "linalg" / f"cython_blas{suffix}"
            if path.is_file():
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                sys.modules[name] = module
                sys.meta_path.insert(0, _CythonBlasAttribute())
                return
    except Exception:  # noqa: BLE001  (a speed-up only: numba's own import path still works)
        sys.modules.pop(name, None)


CACHE_DIR = _choose_cache_dir()
CACHE = CACHE_DIR is not None
if CACHE:
    os.environ["NUMBA_CACHE_DIR"] = str(CACHE_DIR)

import numba  # noqa: E402  (after the environment is set: numba reads it on import)
from numba.core import cgutils  # noqa: E402
from numba.core.imputils import impl_ret_untracked  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

_preload_cython_blas()

if CACHE:
    numba.config.CACHE_DIR = str(CACHE_DIR)


try:
    from numba.core.caching import FunctionCache
    from numba.core.runtime.nrt import rtsys

    FunctionCache._load_overload, FunctionCache._guard_against_spurious_io_errors  # noqa: B018  (used below)
except (ImportError, AttributeError):  # numba laid out differently: its own cache loads as it always does
    FunctionCache = None
else:
    class _CacheLoad(FunctionCache):
        """numba's on-disk cache of one kernel, loading with only the set-up its machine code needs.

        numba's `load_overload` first runs `refresh()` on the target context: it imports numba's
        implementations of Python and numpy (numba.np.arraymath, numba.typed, ...) and registers
        them, with their typing templates, for the compiler. A kernel read from the cache is
        machine code: linking it needs numba's C helpers, registered when numba is imported, and
        its runtime (NRT: allocation and reference counts), which `rtsys.initialize` sets up.
        Skipping the rest takes the first cached call of a process from 0.19-0.29 s to 0.05-0.08 s.
        A compile still refreshes everything first (numba's CompilerBase does it), so a cache miss
        compiles as before.
        """

        def load_overload(self, sig, target_context):
            rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)


try:
    from numba.core.codegen import CPUCodeLibrary
    from numba.core.itanium_mangler import mangle_identifier

    _numba_optimize_functions = CPUCodeLibrary._optimize_functions
    _numba_optimize_final_module = CPUCodeLibrary._optimize_final_module
except (ImportError, AttributeError):  # numba laid out differently: every kernel is optimized as numba does
    CPUCodeLibrary = None

# numba compiles every jitted function into a library of its own: it optimizes the function's
# module, then links in its callees' libraries (already optimized) and runs the whole optimization
# pipeline again over the lot. A kernel like train_epoch, whose own code is a loop that calls the
# forward pass, the loss, the backward pass and the optimizer step once a step, spent 0.7-1.2 s of
# a cold `nncli train` re-optimizing their code, for no speed at run time. Such kernels are marked
# reoptimize_callees=False (jit): their own modules get the whole pipeline before linking, and the
# linked module is used as it is. Other kernels keep numba's way, which lets LLVM inline small
# callees (an activation, numba's random numbers) into their loops.
_LINK_AS_IS: list[str] = []  # mangled-name prefixes of the kernels whose callees are linked as they are


def _defines_link_as_is(ll_module) -> bool:
    for function in ll_module.functions:
        if not function.is_declaration:
            for prefix in _LINK_AS_IS:
                if function.name.startswith(prefix) and function.name[len(prefix):len(prefix) + 1] in ("B", "E"):
                    return True
    return False


def _optimize_functions(library, ll_module):
    """numba's per-function passes on a module of the library's own code, then, in a library of a
    kernel marked reoptimize_callees=False, the whole optimization pipeline on that module, before
    the callees are linked in."""
    _numba_optimize_functions(library, ll_module)
    if getattr(library, "_nncli_link_as_is", False) or _defines_link_as_is(ll_module):
        library._nncli_link_as_is = True
        passes, builder = library._codegen._module_pass_manager()
        passes.run(ll_module, builder)


def _optimize_final_module(library):
    """numba's optimization of the module with the callees linked in, which a library of a
    kernel marked reoptimize_callees=False does without: its own code is optimized already."""
    if not getattr(library, "_nncli_link_as_is", False):
        _numba_optimize_final_module(library)


if CPUCodeLibrary is not None:
    CPUCodeLibrary._optimize_functions = _optimize_functions
    CPUCodeLibrary._optimize_final_module = _optimize_final_module


def arrayobj():
    """numba.np.arrayobj, for the code generation of nncli's intrinsics. Imported when a kernel is
    compiled, not with the kernel modules: with the implementations it pulls in (charseq, unicode,
    ...) it takes about 0.04 s, which a run that loads its kernels from the cache never needs."""
    from numba.np import arrayobj as module

    return module


def unowned_array(context, builder, ty, data, shape, strides):
    """Code for an array of numba type ty over the memory at data, with shape and strides (LLVM
    arrays of intp), and no meminfo: no reference count for numba to update, and nothing that keeps
    the memory alive. The value of nncli's views (mlp._block, mlp._unowned) and of stack_array."""
    arrays = arrayobj()
    out = arrays.make_array(ty)(context, builder)
    itemsize = context.get_constant(numba.types.intp, context.get_abi_sizeof(context.get_data_type(ty.dtype)))
    arrays.populate_array(out, data=data, shape=shape, strides=strides, itemsize=itemsize, meminfo=None, parent=None)
    return impl_ret_untracked(context, builder, ty, out._getvalue())


@intrinsic
def stack_array(typingctx, n, like):
    """An uninitialized C-contiguous vector of n elements of like's dtype, on the stack of the
    kernel whose code calls it, for a little scratch memory. np.empty would allocate, and its
    implementation lives in numba.np.arrayobj, which every process that loads such a kernel from
    the cache then imports to rebuild the implementation's environment (0.03 s). The vector lives
    until the calling kernel returns: it must not be returned, and is taken outside loops (each
    call takes more of the stack). Like mlp._block's views it has no reference count."""
    if not isinstance(like, numba.types.Array) or not isinstance(n, numba.types.Integer):
        return None
    ret = numba.types.Array(like.dtype, 1, "C")

    def codegen(context, builder, sig, args):
        count = context.cast(builder, args[0], sig.args[0], numba.types.intp)
        element = context.get_data_type(ret.dtype)
        itemsize = context.get_constant(numba.types.intp, context.get_abi_sizeof(element))
        return unowned_array(context, builder, ret, builder.alloca(element, size=count),
                             cgutils.pack_array(builder, [count]), cgutils.pack_array(builder, [itemsize]))

    return ret(n, like), codegen


def _no_extensions():
    """The first call of a numba function runs numba's extension hook: it reads the entry points
    of every installed package (20-35 ms) to initialize third-party numba extensions, which add
    types and functions. nncli's kernels take numpy arrays and scalars and call only numba's own
    implementations, so theirs does nothing; other numba functions in the process keep the hook."""


def _kernels_only(dispatcher) -> None:
    """A dispatcher compiled without a Python entry point (numba's no_cpython_wrapper): its
    overloads stay out of numba's C dispatch table, which would jump to the missing entry, so a
    call from Python lands in _compile_for_args and raises a TypeError. Kernels that call it find
    its overloads where numba's typing looks, in `overloads`."""
    name = dispatcher.py_func.__qualname__

    def add_overload(cres):
        dispatcher.overloads[tuple(cres.signature.args)] = cres

    def refuse(*args, **kws):
        raise TypeError(f"{name} is a kernel only other kernels call: it has no entry point for Python")

    dispatcher.add_overload = add_overload
    dispatcher._compile_for_args = refuse


def jit(reoptimize_callees: bool = True, from_python: bool = True, **options):
    """numba.njit, cached on disk (read through _CacheLoad, without numba's extension hook) and
    with numpy's error model.

    reoptimize_callees=False, for a kernel that calls big kernels a few times a step: its own
    code is optimized before its callees are linked in, and the whole is not optimized again.

    from_python=False, for a kernel only other kernels call: numba makes no wrappers that let
    Python (or C) call it, which it would build, optimize and turn into machine code for every
    compiled signature (10% of a cold `nncli train`'s compile: 13.0 against 14.9 s median in one
    process, 5 alternating pairs). Calling it from Python raises a TypeError.

    Under numba's default ("python") error model every float division checks its divisor to raise
    ZeroDivisionError; that branch stops LLVM from vectorizing the loop around it (the Adam update
    ran five times slower). With numpy's, x / 0 gives inf or nan as in numpy, which the training
    loop reports as a non-finite loss or gradient.
    """
    light = CACHE and FunctionCache is not None
    if not from_python:
        options.update(no_cpython_wrapper=True, no_cfunc_wrapper=True)
    decorate = numba.njit(cache=CACHE and not light, error_model="numpy", **options)

    def compiled(func):
        dispatcher = decorate(func)
        if not reoptimize_callees and CPUCodeLibrary is not None:
            _LINK_AS_IS.append("_Z" + mangle_identifier(f"{func.__module__}.{func.__qualname__}")[:-1])
        if light:  # what numba's cache=True does (enable_caching), with our cache class
            dispatcher._cache = _CacheLoad(func)
        if hasattr(dispatcher, "_compilation_chain_init_hook"):
            dispatcher._compilation_chain_init_hook = _no_extensions
        if not from_python:
            _kernels_only(dispatcher)
        return dispatcher

    return compiled


def kernel(inline: str = "never", nogil: bool = False, reoptimize_callees: bool = True, from_python: bool = False):
    """jit with the options the training and inference kernels share. Only the kernels marked
    from_python=True can be called from Python (a function numba inlines, inline="always", is
    compiled on its own only for such a call, and keeps its entry point)."""
    return jit(reoptimize_callees, from_python or inline == "always", fastmath={"reassoc", "contract"},
               inline=inline, nogil=nogil)
