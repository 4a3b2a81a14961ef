"""The deployable artifacts: what ``sam build`` (``make build``) wrote to ``.aws-sam/build``.

``make test`` runs ``make build`` first, so these tests read the real build output, built for the
runtime and architecture the template declares (its Globals), on whatever machine runs the tests:

* every function and layer of the template is in the build, and is current (the same files as
  its source folder): a function folder per function, the shared layer built by
  ``layers/shared/Makefile``, the content layer built by ``templates/Makefile`` (the folder with
  its page catalogs compiled to ``.mo`` files, which hold every translation of their ``.po``);
* the shared layer holds exactly its pinned requirements and what they need on Lambda (markers
  evaluated for Lambda's Python and platform), and no test or development packages;
* every third-party package the handlers and the shared package import (found by parsing their
  imports) is in the layer or is one Lambda's runtime provides (boto3);
* every distribution in the layer is a wheel for Lambda's Python and architecture, and every
  shared object in it is an ELF file for that machine;
* the sizes (printed) stay under Lambda's limit of 250 MB unzipped per function with its layers.

``test_function_runs_from_its_built_artifacts`` then runs each handler from those artifacts in an
isolated interpreter; its docstring says what it swaps for this machine and why.

``sam build`` itself needs the package registry (pip), so it runs in ``make build``, not here;
only the run test installs packages (marked ``network``).
"""

from __future__ import annotations

import ast
import gettext
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import Distribution, distributions
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devstack.cfn import Template, load_template
from selfservice.accessibility import RESULTS_FILE, load_results

REPOSITORY = Path(__file__).resolve().parents[2]
BUILD_DIR = REPOSITORY / ".aws-sam" / "build"
TEMPLATE_PATH = REPOSITORY / "template.yaml"
BUILT_TEMPLATE_PATH = BUILD_DIR / "template.yaml"
REGION = "eu-central-1"
LAMBDA_UNZIPPED_LIMIT = 250 * 2**20  # bytes: function code plus all its layers, extracted
MIB = 2**20
CACHES = ("__pycache__", ".pytest_cache", ".mypy_cache")
COPY_IGNORE = shutil.ignore_patterns(*CACHES, "*.pyc")
PIP_TIMEOUT_S = 600

# Lambda's Python runtimes from 3.12 on run on Amazon Linux 2023, glibc 2.34.
LAMBDA_GLIBC = (2, 34)
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
ELF_MACHINES = {"aarch64": 183, "x86_64": 62}  # e_machine: EM_AARCH64, EM_X86_64
# What Lambda's Python runtime provides itself; the layer must not ship boto3 (botocore is pinned in
# the layer on purpose: the X-Ray SDK needs it, see layers/shared/requirements.txt).
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"}
# Never in a deployed layer, whatever requirements-dev.txt says.
DEV_ONLY_PATTERNS = (r"pytest(-.*)?", r"moto", r"playwright", r"axe-playwright-python", r"ruff", r"mypy")
DEV_ONLY_PATTERNS += (r"mypy-boto3-.*", r".*-stubs", r"types-.*", r"cfn-lint", r"aws-sam-(cli|translator)")
DEV_ONLY_PATTERNS += (r"boto3", r"pip", r"setuptools", r"wheel")

TEMPLATE = load_template(TEMPLATE_PATH)
SAM_TEMPLATE = Template.load(TEMPLATE_PATH)
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE.get("Resources") or {}
GLOBAL_FUNCTION: dict[str, Any] = (TEMPLATE.get("Globals") or {}).get("Function") or {}
FUNCTION_IDS = sorted(lid for lid, res in RESOURCES.items() if res.get("Type") == "AWS::Serverless::Function")
WITHOUT_AWS_SDK = {"OutboxEventsFunction"}  # no I/O: the outbox pipe's enrichment only reshapes its input
LAYER_IDS = sorted(lid for lid, res in RESOURCES.items() if res.get("Type") == "AWS::Serverless::LayerVersion")


def function_property(function_id: str, name: str, default: Any = None) -> Any:
    """A function's property with the Globals applied, as the SAM transform applies them."""
    value = SAM_TEMPLATE.properties(function_id).get(name)
    return default if value is None else value


@dataclass(frozen=True)
class Platform:
    """Lambda's Python and machine, as the template's Globals declare them."""

    runtime: str  # python3.13
    architecture: str  # arm64

    @property
    def version(self) -> tuple[int, int]:
        major, minor = self.runtime.removeprefix("python").split(".")
        return int(major), int(minor)

    @property
    def machine(self) -> str:
        return MACHINES[self.architecture]

    @property
    def cpython(self) -> str:
        return "cp{}{}".format(*self.version)

    def marker_environment(self) -> dict[str, str]:
        version = "{}.{}".format(*self.version)
        return {
            "python_version": version,
            "python_full_version": f"{version}.0",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "platform_machine": self.machine,
        }

    def fits(self, tag: str) -> bool:
        """Whether a wheel tag (``interpreter-abi-platform``) runs on this platform."""
        interpreter, abi, platform = tag.split("-")
        if platform != "any" and not self._fits_platform(platform):
            return False
        if abi == "none":
            return bool(re.fullmatch(r"(py|cp)3\d*", interpreter)) and _at_most(interpreter, self.version)
        if abi == "abi3":
            return interpreter.startswith("cp3") and _at_most(interpreter, self.version)
        return interpreter == self.cpython and abi == self.cpython

    def _fits_platform(self, platform: str) -> bool:
        if platform == f"manylinux2014_{self.machine}":
            return True
        match = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{self.machine}", platform)
        return bool(match) and (int(match.group(1)), int(match.group(2))) <= LAMBDA_GLIBC


def _at_most(interpreter: str, version: tuple[int, int]) -> bool:
    digits = interpreter[2:]
    return not digits[1:] or (int(digits[0]), int(digits[1:])) <= version


PLATFORM = Platform(str(GLOBAL_FUNCTION.get("Runtime")), str((GLOBAL_FUNCTION.get("Architectures") or ["x86_64"])[0]))


def tree_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def zipped_size(folder: Path, scratch: Path) -> int:
    """Size of the folder zipped as ``sam package`` uploads it (deflated)."""
    archive = scratch / f"{folder.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder))
    size = archive.stat().st_size
    archive.unlink()
    return size


def source_files(folder: Path) -> dict[str, bytes]:
    """Files of a source folder by relative path, without caches."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and not any(part in CACHES for part in path.parts) and path.suffix != ".pyc"
    }


# --- the build output ------------------------------------------------------------------------------


@dataclass
class Build:
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.get("Resources") or {}

    def code_folder(self, logical_id: str) -> Path:
        """Where ``sam package`` takes a function's code or a layer's content from."""
        properties = self.resources[logical_id].get("Properties") or {}
        uri = properties.get("CodeUri", properties.get("ContentUri"))
        assert isinstance(uri, str), f"{logical_id}: the built template has no local CodeUri/ContentUri ({uri!r})"
        return (BUILD_DIR / uri).resolve()

    @property
    def shared_layer(self) -> Path:
        layers = [self.code_folder(lid) for lid in LAYER_IDS if (self.code_folder(lid) / "python").is_dir()]
        assert len(layers) == 1, f"expected one layer with a python/ folder, found {layers}"
        return layers[0] / "python"


@pytest.fixture(scope="session")
def build() -> Build:
    assert BUILT_TEMPLATE_PATH.is_file(), (
        f"no {BUILT_TEMPLATE_PATH.relative_to(REPOSITORY)}: run `make build` first (`make test` does)"
    )
    return Build(load_template(BUILT_TEMPLATE_PATH))


@dataclass(frozen=True)
class LayerDistribution:
    name: str  # canonical
    version: str
    tags: tuple[str, ...]
    top_level: frozenset[str]
    requires: tuple[str, ...]

    @property
    def pure(self) -> bool:
        return all(tag.endswith("-none-any") for tag in self.tags)


def _top_level_names(distribution: Distribution) -> frozenset[str]:
    names = set()
    for file in distribution.files or ():
        first = file.parts[0]
        if first.endswith((".dist-info", ".data")) or first in {"..", "bin", "__pycache__"}:
            continue
        names.add(first.split(".")[0] if first.endswith((".py", ".so")) else first)
    return frozenset(names)


@pytest.fixture(scope="session")
def layer_distributions(build: Build) -> dict[str, LayerDistribution]:
    found = {}
    for distribution in distributions(path=[str(build.shared_layer)]):
        wheel = distribution.read_text("WHEEL") or ""
        name = canonicalize_name(distribution.metadata["Name"])
        found[name] = LayerDistribution(
            name=name,
            version=distribution.version,
            tags=tuple(line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")),
            top_level=_top_level_names(distribution),
            requires=tuple(distribution.requires or ()),
        )
    assert found, f"no installed distributions in {build.shared_layer}"
    return found


# --- what the template declares -----------------------------------------------------------------------


def test_template_has_functions_and_layers() -> None:
    assert FUNCTION_IDS, "template.yaml has no AWS::Serverless::Function: there is nothing to package"
    assert LAYER_IDS, "template.yaml has no AWS::Serverless::LayerVersion: the shared package would be missing"


def test_layers_are_built_for_the_functions_platform() -> None:
    """The shared layer's Makefile reads the platform from the Globals; the layers must declare the same."""
    assert PLATFORM.runtime.startswith("python3."), f"Globals Runtime {PLATFORM.runtime!r} is not a Python runtime"
    assert PLATFORM.architecture in MACHINES, f"Globals Architectures: unknown {PLATFORM.architecture!r}"
    for function_id in FUNCTION_IDS:
        assert function_property(function_id, "Runtime") == PLATFORM.runtime, f"{function_id}: another Runtime"
        assert function_property(function_id, "Architectures") == [PLATFORM.architecture], (
            f"{function_id}: other Architectures than the Globals (the shared layer is built for those)"
        )
    for layer_id in LAYER_IDS:
        properties = RESOURCES[layer_id].get("Properties") or {}
        assert PLATFORM.runtime in properties.get("CompatibleRuntimes", []), (
            f"{layer_id}: CompatibleRuntimes lacks {PLATFORM.runtime}"
        )
        assert properties.get("CompatibleArchitectures", [PLATFORM.architecture]) == [PLATFORM.architecture], (
            f"{layer_id}: CompatibleArchitectures differ from the functions' {PLATFORM.architecture}"
        )
        metadata = RESOURCES[layer_id].get("Metadata") or {}
        if metadata.get("BuildMethod"):
            assert metadata.get("BuildArchitecture") == PLATFORM.architecture, (
                f"{layer_id}: BuildArchitecture {metadata.get('BuildArchitecture')} is not {PLATFORM.architecture}; "
                "SAM keys its build cache on it"
            )


def test_layer_makefile_reads_the_platform_from_the_template() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", "layers/shared/Makefile", "platform"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    print(result.stdout.strip())
    assert f"python{'.'.join(map(str, PLATFORM.version))} on {PLATFORM.architecture} ({PLATFORM.machine}" in (
        result.stdout
    ), f"layers/shared/Makefile reads another platform from template.yaml than its Globals declare: {result.stdout}"


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_has_no_requirements_of_its_own(function_id: str) -> None:
    """Third-party packages belong in the shared layer: SAM's python builder, which would install a
    function's requirements.txt, needs the runtime's Python on the build machine and installs that
    machine's wheels."""
    code_uri = function_property(function_id, "CodeUri")
    assert not (REPOSITORY / str(code_uri) / "requirements.txt").exists(), (
        f"{code_uri}requirements.txt: put the requirement into layers/shared/requirements.txt"
    )


# --- the build output ----------------------------------------------------------------------------------


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_is_built_and_current(function_id: str, build: Build) -> None:
    assert function_id in build.resources, f"{function_id} is missing from the built template"
    built = build.code_folder(function_id)
    assert built.is_relative_to(BUILD_DIR), f"{function_id}: not built into {BUILD_DIR.name} but taken from {built}"
    assert built.is_dir(), f"{function_id}: {built} does not exist"
    handler_module = str(function_property(function_id, "Handler", "")).rpartition(".")[0]
    assert (built / f"{handler_module.replace('.', '/')}.py").is_file(), f"{function_id}: no handler module"
    source = REPOSITORY / str(function_property(function_id, "CodeUri"))
    assert source_files(built) == source_files(source), (
        f"{function_id}: {built.relative_to(REPOSITORY)} differs from {source.relative_to(REPOSITORY)}; "
        "the build is stale (run `make build`)"
    )


@pytest.mark.parametrize("layer_id", LAYER_IDS)
def test_layer_is_built_and_current(layer_id: str, build: Build) -> None:
    assert layer_id in build.resources, f"{layer_id} is missing from the built template"
    folder = build.code_folder(layer_id)
    assert folder.is_dir(), f"{layer_id}: {folder} does not exist"
    source = REPOSITORY / str((RESOURCES[layer_id].get("Properties") or {}).get("ContentUri"))
    if (RESOURCES[layer_id].get("Metadata") or {}).get("BuildMethod"):
        assert folder.is_relative_to(BUILD_DIR), f"{layer_id}: has a BuildMethod but was not built"
        package_names = [path.name for path in source.iterdir() if (path / "__init__.py").is_file()]
        if not package_names:  # content: the folder without its build file, catalogs compiled
            # The accessibility results are the test suite's output: this run's browser tests rewrite
            # them after the build, which packaged the run before (checked apart, below).
            expected = {
                name: data
                for name, data in source_files(source).items()
                if name not in ("Makefile", RESULTS_FILE) and not name.endswith((".po", ".pot"))
            }
            built = {
                name: data
                for name, data in source_files(folder).items()
                if not name.endswith(".mo") and name != RESULTS_FILE
            }
            if (folder / RESULTS_FILE).is_file():
                assert load_results(folder) is not None, f"{layer_id}: {RESULTS_FILE} cannot be read"
            assert built == expected, (
                f"{layer_id}: the built content differs from {source.relative_to(REPOSITORY)} "
                f"(stale build? run `make build`): {sorted(set(built) ^ set(expected))}"
            )
        for name in package_names:
            assert source_files(folder / "python" / name) == source_files(source / name), (
                f"{layer_id}: python/{name} differs from its source; the build is stale (run `make build`)"
            )
    else:
        assert folder == source.resolve(), f"{layer_id}: the built template takes the content from {folder}"
    assert not [path for path in folder.rglob("*") if path.name in CACHES or path.suffix == ".pyc"], (
        f"{layer_id}: caches in the layer"
    )


def test_content_layer_holds_catalog_and_templates(build: Build) -> None:
    content = [build.code_folder(lid) for lid in LAYER_IDS if (build.code_folder(lid) / "catalog.yaml").is_file()]
    assert len(content) == 1, "exactly one layer must hold catalog.yaml (CONTENT_DIR=/opt)"
    assert (content[0] / "emails").is_dir(), "the content layer has no email templates"
    assert (content[0] / "pages").is_dir(), "the content layer has no page templates"


def test_content_layer_holds_compiled_page_catalogs(build: Build) -> None:
    """Each .po catalog is compiled into the layer at build time (a cold start loads it, compiles
    nothing), with every translation of its source; the sources themselves stay out of the layer."""
    content = next(build.code_folder(lid) for lid in LAYER_IDS if (build.code_folder(lid) / "catalog.yaml").is_file())
    sources = sorted((REPOSITORY / "templates").rglob("*.po"))
    assert sources, "no .po catalogs in templates/"
    assert not [path for path in content.rglob("*") if path.suffix in (".po", ".pot")], "catalog sources in the layer"
    for po_file in sources:
        relative = po_file.relative_to(REPOSITORY / "templates")
        mo_file = content / relative.with_suffix(".mo")
        assert mo_file.is_file(), f"{relative} was not compiled into the content layer ({mo_file} missing)"
        with po_file.open("rb") as handle:
            catalog = read_po(handle)
        with mo_file.open("rb") as handle:
            compiled = gettext.GNUTranslations(handle)
        translated = [message for message in catalog if message.id and message.string and not message.fuzzy]
        assert translated, f"{relative} has no translations"
        wrong = {
            str(message.id): compiled.gettext(str(message.id))
            for message in translated
            if isinstance(message.id, str) and compiled.gettext(message.id) != message.string
        }
        assert not wrong, f"{mo_file.name} does not translate as {relative} does: {wrong}"


def test_shared_layer_holds_no_dev_packages(build: Build, layer_distributions: dict[str, LayerDistribution]) -> None:
    dev_direct = {
        canonicalize_name(Requirement(line).name)
        for line in (REPOSITORY / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    forbidden = sorted(
        name
        for name in layer_distributions
        if name in dev_direct or any(re.fullmatch(pattern, name) for pattern in DEV_ONLY_PATTERNS)
    )
    assert not forbidden, f"test or development packages in the shared layer: {forbidden}"
    tests_folders = sorted(path.name for path in build.shared_layer.iterdir() if path.name in {"tests", "test"})
    assert not tests_folders, f"a top-level tests package in the shared layer: {tests_folders}"


def test_shared_layer_holds_exactly_its_requirements(layer_distributions: dict[str, LayerDistribution]) -> None:
    """The pinned requirements and their dependencies for Lambda's platform: nothing missing, nothing else."""
    environment = PLATFORM.marker_environment()
    requirements = [
        Requirement(line)
        for line in (REPOSITORY / "layers/shared/requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()  # with the extras asked for
    missing: list[str] = []
    queue = [(requirement, "requirements.txt") for requirement in requirements]
    while queue:
        requirement, needed_by = queue.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in seen:
            continue
        seen.add((name, frozenset(requirement.extras)))
        needed.add(name)
        distribution = layer_distributions.get(name)
        if distribution is None:
            if name not in RUNTIME_PROVIDED:
                missing.append(f"{requirement} (needed by {needed_by})")
            continue
        assert requirement.specifier.contains(distribution.version, prereleases=True), (
            f"{name} {distribution.version} in the layer does not satisfy {requirement} (needed by {needed_by})"
        )
        for line in distribution.requires:
            dependency = Requirement(line)
            if dependency.marker is None or any(
                dependency.marker.evaluate({**environment, "extra": extra}) for extra in ("", *requirement.extras)
            ):
                queue.append((dependency, f"{name} {distribution.version}"))
    assert not missing, "the shared layer lacks what its packages need on Lambda:\n  " + "\n  ".join(missing)
    extra = sorted(set(layer_distributions) - needed)
    assert not extra, f"the shared layer holds distributions nothing in requirements.txt needs on Lambda: {extra}"


def _imported_top_level_names(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level modules imported anywhere in these files (absolute imports), with the importing files."""
    names: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            for module in modules:
                names.setdefault(module.split(".")[0], set()).add(str(path.relative_to(REPOSITORY)))
    return names


def test_every_imported_package_is_in_the_layer(layer_distributions: dict[str, LayerDistribution]) -> None:
    first_party = {path.name for path in (REPOSITORY / "layers/shared").iterdir() if (path / "__init__.py").exists()}
    sources = sorted((REPOSITORY / "layers/shared").rglob("*.py"))
    for function_id in FUNCTION_IDS:
        code = REPOSITORY / str(function_property(function_id, "CodeUri"))
        sources += sorted(code.rglob("*.py"))
        first_party |= {path.stem for path in code.glob("*.py")}
        first_party |= {path.name for path in code.iterdir() if path.is_dir()}
    by_top_level = {name: dist for dist in layer_distributions.values() for name in dist.top_level}
    missing = []
    third_party = sorted(
        set(_imported_top_level_names(sources)) - first_party - set(sys.stdlib_module_names) - {"__future__"}
    )
    assert third_party, "no third-party imports found; the import scan is broken"
    for name in third_party:
        distribution = by_top_level.get(name)
        if distribution is not None:
            print(f"import {name}: {distribution.name} {distribution.version} ({', '.join(distribution.tags)})")
        elif canonicalize_name(name) in RUNTIME_PROVIDED:
            print(f"import {name}: provided by the Lambda runtime")
        else:
            missing.append(name)
    assert not missing, f"imported, but neither in the shared layer nor in Lambda's runtime: {missing}"
    assert "boto3" not in layer_distributions, "the layer ships boto3; the Lambda runtime provides it"


def test_shared_layer_is_built_for_the_lambda_platform(
    build: Build, layer_distributions: dict[str, LayerDistribution]
) -> None:
    wrong_wheels = {
        f"{dist.name} {dist.version}": dist.tags
        for dist in layer_distributions.values()
        if not dist.tags or not any(PLATFORM.fits(tag) for tag in dist.tags)
    }
    assert not wrong_wheels, f"wheels not for {PLATFORM.runtime} on {PLATFORM.machine}: {wrong_wheels}"
    native = [dist for dist in layer_distributions.values() if not dist.pure]
    print(
        f"platform-specific wheels for {PLATFORM.runtime} {PLATFORM.machine}: "
        + ", ".join(f"{dist.name} {dist.version} ({dist.tags[0]})" for dist in native)
    )

    shared_objects = [path for path in build.shared_layer.rglob("*") if path.is_file() and ".so" in path.suffixes]
    wrong_files = [
        str(path.relative_to(build.shared_layer))
        for path in build.shared_layer.rglob("*")
        if path.suffix in {".pyd", ".dylib", ".dll"}
    ]
    for path in shared_objects:
        with path.open("rb") as binary:
            header = binary.read(20)
        machine = int.from_bytes(header[18:20], "little")
        extension_ok = not path.name.endswith(".so") or re.search(
            rf"\.(cpython-{PLATFORM.cpython[2:]}-{PLATFORM.machine}-linux-gnu|abi3)\.so$|^lib.*\.so$", path.name
        )
        if header[:4] != b"\x7fELF" or machine != ELF_MACHINES[PLATFORM.machine] or not extension_ok:
            wrong_files.append(f"{path.relative_to(build.shared_layer)} (ELF machine {machine})")
    assert not wrong_files, f"files in the shared layer that do not load on {PLATFORM.machine}: {wrong_files}"
    assert shared_objects or not native, "platform-specific wheels without shared objects"
    print(f"{len(shared_objects)} shared objects, all ELF for {PLATFORM.machine}")


def test_sizes_stay_under_the_lambda_limit(build: Build, tmp_path: Path) -> None:
    sizes: dict[str, tuple[int, int]] = {}
    for logical_id in [*LAYER_IDS, *FUNCTION_IDS]:
        folder = build.code_folder(logical_id)
        unzipped, zipped = sizes[logical_id] = (tree_size(folder), zipped_size(folder, tmp_path))
        print(f"{logical_id}: {unzipped / MIB:.2f} MiB unzipped, {zipped / MIB:.2f} MiB zipped")
    for function_id in FUNCTION_IDS:
        layers = [str(layer.get("Ref")) for layer in function_property(function_id, "Layers", [])]
        total = sizes[function_id][0] + sum(sizes[layer][0] for layer in layers if layer in sizes)
        print(f"{function_id} with its layers: {total / MIB:.1f} MiB of {LAMBDA_UNZIPPED_LIMIT / MIB:.0f} MiB unzipped")
        assert total < LAMBDA_UNZIPPED_LIMIT, (
            f"{function_id} with its layers is {total / MIB:.0f} MiB unzipped; Lambda rejects more than 250 MiB"
        )


# --- run each handler from the built artifacts ----------------------------------------------------------


def pip_install(target: Path, *arguments: str) -> None:
    """Install with this interpreter's pip into ``target`` (fails the test with pip's output)."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
    result = subprocess.run(
        [*command, "--target", str(target), *arguments],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, (
        f"pip install {' '.join(arguments)} failed (the package registry must be reachable):\n{result.stderr[-4000:]}"
    )


def pinned_version(requirements: Path, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)", requirements.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"{requirements.name} does not pin {package}; the packaging test needs the version"
    return match.group(1)


def function_environment(function_id: str, opt: Path) -> dict[str, str]:
    """The function's environment variables, intrinsics resolved roughly (names stand in for ARNs).

    Paths under ``/opt`` are moved to the assembled ``opt`` folder.
    """
    variables = (function_property(function_id, "Environment", {}).get("Variables")) or {}
    parameters = TEMPLATE.get("Parameters") or {}
    environment: dict[str, str] = {}
    for name, raw in variables.items():
        value = raw
        if isinstance(raw, dict) and "Ref" in raw:
            target = str(raw["Ref"])
            value = (parameters.get(target) or {}).get("Default", f"local-{target}")
        elif isinstance(raw, dict):
            value = f"local-{name.lower()}"
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text == "/opt" or text.startswith("/opt/"):
            text = str(opt) + text[len("/opt") :]
        environment[name] = text
    return environment


@dataclass
class Lambda:
    """Lambda's folders, made from the build output: ``task`` (/var/task), ``opt`` (/opt: the layers
    extracted in order) and ``runtime`` (/var/runtime: boto3 as the runtime provides it); and
    ``host_wheels``: the layer's platform-specific distributions, built for this machine."""

    root: Path
    build: Build
    host_wheels: Path
    runtime: Path
    _opts: dict[tuple[str, ...], Path]

    def opt(self, layer_ids: tuple[str, ...]) -> Path:
        if layer_ids not in self._opts:
            opt = self.root / f"opt-{len(self._opts)}"
            opt.mkdir(parents=True)
            for layer_id in layer_ids:  # later layers overwrite earlier ones, as on Lambda
                shutil.copytree(self.build.code_folder(layer_id), opt, dirs_exist_ok=True, ignore=COPY_IGNORE)
            self._opts[layer_ids] = opt
        return self._opts[layer_ids]

    def task(self, function_id: str) -> Path:
        task = self.root / "task" / function_id
        shutil.copytree(self.build.code_folder(function_id), task, ignore=COPY_IGNORE)
        return task


@pytest.fixture(scope="session")
def lambda_folders(
    tmp_path_factory: pytest.TempPathFactory, build: Build, layer_distributions: dict[str, LayerDistribution]
) -> Iterator[Lambda]:
    root = tmp_path_factory.mktemp("lambda")
    host_wheels = root / "host-wheels"
    native = sorted(f"{dist.name}=={dist.version}" for dist in layer_distributions.values() if not dist.pure)
    if native:
        pip_install(host_wheels, "--no-deps", "--only-binary=:all:", *native)
    runtime = root / "runtime"
    pip_install(runtime, f"boto3=={pinned_version(REPOSITORY / 'requirements-dev.txt', 'boto3')}")
    yield Lambda(root, build, host_wheels, runtime, {})
    shutil.rmtree(root, ignore_errors=True)


# Runs in the isolated interpreter; writes what it found as JSON to the path given last.
PROBE = r"""
import importlib, json, sys, sysconfig
config = json.loads(sys.argv[1])
# Lambda: /var/task, then /opt/python, then the runtime's boto3 (the layer's native packages are
# shadowed by the same versions built for this machine).
sys.path[:0] = [config["task"], config["host_wheels"], config["opt_python"], config["runtime"]]
module_name, _, attribute = config["handler"].rpartition(".")
handler = getattr(importlib.import_module(module_name), attribute)

import selfservice
from selfservice.mail import EmailRenderer
from selfservice.settings import get_settings

settings = get_settings()
renderer = EmailRenderer(settings.content_dir)
subjects = {}
for language in ("de", "en"):
    email = renderer.render(
        "self_service_link", language, marketing=False, link="https://preferences.example.com/link?token=t",
        valid_days=30, first_name="", recipient="a@b.c", company="X",
    )
    subjects[language] = email.subject
    print(f"{config['function']} subject ({language}): {email.subject}")
from selfservice.web.render import LANGUAGES, load_translations

page_texts = {language: load_translations(settings.content_dir, language).gettext("This link has expired")
              for language in LANGUAGES}
catalog = settings.catalog
paths = sysconfig.get_paths()
result = {
    "page_texts": page_texts,
    "po_compiled_at_start": "babel.messages.pofile" in sys.modules,
    "handler_callable": callable(handler),
    "subjects": subjects,
    "content_dir": str(settings.content_dir),
    "catalog_path": str(settings.catalog_path),
    "catalog_topics": len(catalog.topics),
    "selfservice": selfservice.__file__,
    "stdlib": sorted({paths["stdlib"], paths["platstdlib"]}),
    "modules": {
        name: module.__file__ for name, module in list(sys.modules.items()) if getattr(module, "__file__", None)
    },
}
with open(config["output"], "w", encoding="utf-8") as output:
    json.dump(result, output)
"""


def _under(path: str, folder: Path | str) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


@pytest.mark.network
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_runs_from_its_built_artifacts(
    function_id: str, lambda_folders: Lambda, layer_distributions: dict[str, LayerDistribution], tmp_path: Path
) -> None:
    """Each handler imports, loads the catalog and renders an email from the built artifacts alone.

    The static checks above find a missing package or a wrong wheel; this finds what only running
    shows: a module imported lazily or by a dependency, content that is not at /opt, a module that
    comes from the checkout or the development environment instead of the artifacts, a layer that
    shadows the runtime's boto3. The function folder, the layer's ``selfservice`` and its pure-Python
    packages, and the content are the built files themselves. The layer's few platform-specific
    distributions (built for Lambda's machine, which cannot load here) are shadowed by the same
    versions built for this machine (``host_wheels``, installed with ``--no-deps``); the interpreter
    is this one, isolated (``python -I -S``) from this checkout and the development environment.
    """
    layer_ids = tuple(
        str(layer["Ref"]) for layer in function_property(function_id, "Layers", []) if isinstance(layer, dict)
    )
    assert layer_ids, f"{function_id} has no layers: the shared package and the content would be missing"
    opt = lambda_folders.opt(layer_ids)
    task = lambda_folders.task(function_id)
    handler = str(function_property(function_id, "Handler", ""))
    output = tmp_path / "probe.json"
    config = {
        "function": function_id,
        "task": str(task),
        "host_wheels": str(lambda_folders.host_wheels),
        "opt_python": str(opt / "python"),
        "runtime": str(lambda_folders.runtime),
        "handler": handler,
        "output": str(output),
    }
    environment = {
        **function_environment(function_id, opt),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "LAMBDA_TASK_ROOT": str(task),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, json.dumps(config)],
        cwd=task,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, (
        f"{function_id} fails from its built artifacts; on Lambda every invocation would fail "
        f"(missing module or content?):\n{result.stderr[-6000:]}"
    )
    found = json.loads(output.read_text(encoding="utf-8"))

    assert found["handler_callable"], f"{function_id}: {handler} is not callable; Lambda could not invoke it"
    subjects = found["subjects"]
    assert all(subject.strip() for subject in subjects.values()), f"empty email subject: {subjects}"
    assert subjects["de"] != subjects["en"], (
        f"German and English self-service emails have the same subject {subjects['de']!r}: "
        "the content layer's templates are not language specific"
    )
    assert _under(found["content_dir"], opt), f"content is read from {found['content_dir']}, not from /opt"
    assert Path(found["catalog_path"]).resolve() == (opt / "catalog.yaml").resolve(), (
        f"the catalog is read from {found['catalog_path']}, not from the content layer at /opt/catalog.yaml"
    )
    assert found["catalog_topics"] > 0, "the catalog loaded from the content layer has no topics"
    assert found["page_texts"] == {"de": "Dieser Link ist abgelaufen", "en": "This link has expired"}, (
        f"pages from the content layer are not translated: {found['page_texts']}"
    )
    assert not found["po_compiled_at_start"], "a page catalog was compiled at start, not loaded as built"
    assert _under(found["selfservice"], opt / "python"), (
        f"selfservice was imported from {found['selfservice']}, not from the shared layer (/opt/python)"
    )

    host_wheels = lambda_folders.host_wheels
    allowed = [task, opt, host_wheels, lambda_folders.runtime, *found["stdlib"]]
    strays = {
        name: path for name, path in found["modules"].items() if not any(_under(path, folder) for folder in allowed)
    }
    assert not strays, (
        "modules were imported from outside the built artifacts (they would be missing on Lambda):\n  "
        + "\n  ".join(f"{name}: {path}" for name, path in sorted(strays.items()))
    )
    from_checkout = {name: path for name, path in found["modules"].items() if _under(path, REPOSITORY)}
    assert not from_checkout, f"modules were imported from the repository checkout: {from_checkout}"
    native_top_level = {name for dist in layer_distributions.values() if not dist.pure for name in dist.top_level}
    swapped = {
        name: path
        for name, path in found["modules"].items()
        if _under(path, host_wheels) and name.split(".")[0] not in native_top_level
    }
    assert not swapped, f"pure-Python modules came from the host wheels instead of the layer: {swapped}"
    boto3_origin = found["modules"].get("boto3")
    if function_id in WITHOUT_AWS_SDK:
        assert boto3_origin is None, f"{function_id} is meant to run without the AWS SDK"
        return
    assert boto3_origin, "boto3 was not imported at all"
    assert _under(boto3_origin, lambda_folders.runtime), (
        f"boto3 came from {boto3_origin}; the layer must not ship its own boto3 (the runtime provides it)"
    )
    for name in ("boto3", "botocore"):
        origin = found["modules"].get(name, "")
        where = (
            "the layer" if _under(origin, opt) else "the runtime" if _under(origin, lambda_folders.runtime) else origin
        )
        print(f"{function_id}: {name} is imported from {where}")
