"""The deployable artifacts are complete: every function works from what ``sam build`` would ship.

Each ``AWS::Serverless::Function`` of the template is assembled in a temporary directory the way
``sam build`` packages it and Lambda extracts it:

* ``task/`` (Lambda's ``/var/task``): a copy of the function's CodeUri (plus its requirements, if any);
* ``opt/`` (Lambda's ``/opt``): every layer of the function extracted in order: a layer built with
  ``BuildMethod: python*`` lands in ``opt/python`` with its pinned requirements installed; any other
  layer is copied as is (the content layer: ``opt/catalog.yaml``, ``opt/emails/...``);
* ``runtime/`` (Lambda's ``/var/runtime``): boto3 at the version pinned for development, because the
  Lambda runtime provides boto3 and the layer does not ship it.

A separate interpreter, isolated from this checkout and from the development environment
(``python -I -S`` with only those folders on ``sys.path``), then imports the handler, loads the
catalog and renders an email from the assembled content.

These tests install packages from the package registry with pip, once per test session.
The installed code is for this machine's Python; the Lambda platform (architecture, Python
version) is checked separately by resolving the layer's requirements for it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import load_template

REPOSITORY = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: function code plus all its layers, extracted
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")
PIP_TIMEOUT_S = 600

pytestmark = [pytest.mark.network, pytest.mark.timeout(1200)]


TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE.get("Resources") or {}
GLOBAL_FUNCTION: dict[str, Any] = (TEMPLATE.get("Globals") or {}).get("Function") or {}
FUNCTION_IDS = sorted(lid for lid, res in RESOURCES.items() if res.get("Type") == "AWS::Serverless::Function")
PYTHON_LAYER_IDS = sorted(
    lid
    for lid, res in RESOURCES.items()
    if res.get("Type") == "AWS::Serverless::LayerVersion"
    and str((res.get("Metadata") or {}).get("BuildMethod", "")).startswith("python")
)


def function_property(function_id: str, name: str, default: Any = None) -> Any:
    """A function's property with SAM Globals applied (maps merge, lists add up, scalars override)."""
    own = (RESOURCES[function_id].get("Properties") or {}).get(name)
    inherited = GLOBAL_FUNCTION.get(name)
    if isinstance(own, list) and isinstance(inherited, list):
        return [*inherited, *own]
    if isinstance(own, dict) and isinstance(inherited, dict):
        return {**inherited, **own}
    if own is not None:
        return own
    return inherited if inherited is not None else default


def function_layer_ids(function_id: str) -> tuple[str, ...]:
    """Layers of the template the function uses, in Lambda's extraction order."""
    layers = function_property(function_id, "Layers", [])
    return tuple(
        str(layer["Ref"])
        for layer in layers
        if isinstance(layer, dict)
        and RESOURCES.get(str(layer.get("Ref")), {}).get("Type") == "AWS::Serverless::LayerVersion"
    )


def function_environment(function_id: str, opt: Path) -> dict[str, str]:
    """The function's environment variables, intrinsics resolved roughly (names stand in for ARNs).

    Paths under ``/opt`` are moved to the assembled ``opt`` folder.
    """
    own = ((RESOURCES[function_id].get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
    inherited = (GLOBAL_FUNCTION.get("Environment") or {}).get("Variables") or {}
    variables = {**inherited, **own}
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


def pinned_version(requirements: Path, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)", requirements.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"{requirements.name} does not pin {package}; the packaging test needs the version"
    return match.group(1)


def pip_install(target: Path, *arguments: str) -> None:
    """Install with this interpreter's pip into ``target`` (fails the test with pip's output)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(target),
        *arguments,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    assert result.returncode == 0, (
        f"pip install {' '.join(arguments)} failed (the package registry must be reachable):\n{result.stderr[-4000:]}"
    )


def tree_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


@dataclass
class Assembler:
    """Builds layers and function folders like ``sam build``, each at most once per test session."""

    root: Path
    _layers: dict[str, Path] = field(default_factory=dict)
    _opts: dict[tuple[str, ...], Path] = field(default_factory=dict)

    def layer(self, layer_id: str) -> Path:
        """The layer as Lambda extracts it under /opt."""
        if layer_id not in self._layers:
            properties = RESOURCES[layer_id].get("Properties") or {}
            content_uri = properties.get("ContentUri")
            assert isinstance(content_uri, str), f"{layer_id}: ContentUri must be a local folder"
            source = REPOSITORY / content_uri
            extracted = self.root / "layers" / layer_id
            if layer_id in PYTHON_LAYER_IDS:
                python = extracted / "python"
                shutil.copytree(
                    source, python, ignore=shutil.ignore_patterns("requirements.txt", "__pycache__", "*.pyc")
                )
                if (source / "requirements.txt").is_file():
                    pip_install(python, "-r", str(source / "requirements.txt"))
            else:
                build_method = (RESOURCES[layer_id].get("Metadata") or {}).get("BuildMethod")
                assert build_method is None, f"{layer_id}: BuildMethod {build_method} is not emulated by this test"
                shutil.copytree(source, extracted, ignore=COPY_IGNORE)
            self._layers[layer_id] = extracted
        return self._layers[layer_id]

    def opt(self, layer_ids: tuple[str, ...]) -> Path:
        """/opt of a function with these layers (later layers overwrite earlier ones, as on Lambda)."""
        if layer_ids not in self._opts:
            opt = self.root / f"opt-{len(self._opts)}"
            opt.mkdir(parents=True)
            for layer_id in layer_ids:
                shutil.copytree(self.layer(layer_id), opt, dirs_exist_ok=True)
            self._opts[layer_ids] = opt
        return self._opts[layer_ids]

    def task(self, function_id: str) -> Path:
        """/var/task of the function: its CodeUri, with its own requirements if it has any."""
        code_uri = function_property(function_id, "CodeUri")
        assert isinstance(code_uri, str), f"{function_id}: CodeUri must be a local folder"
        task = self.root / "functions" / function_id
        shutil.copytree(REPOSITORY / code_uri, task, ignore=COPY_IGNORE)
        if (task / "requirements.txt").is_file():
            pip_install(task, "-r", str(task / "requirements.txt"))
        return task


@pytest.fixture(scope="session")
def assembler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assembler]:
    root = tmp_path_factory.mktemp("sam-build")
    yield Assembler(root)
    shutil.rmtree(root, ignore_errors=True)  # about 100 MB per function set; nothing is reused


@pytest.fixture(scope="session")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Stand-in for /var/runtime: boto3 (with botocore & co.) as the Lambda runtime provides it."""
    runtime = tmp_path_factory.mktemp("lambda-runtime")
    pip_install(runtime, f"boto3=={pinned_version(REPOSITORY / 'requirements-dev.txt', 'boto3')}")
    yield runtime
    shutil.rmtree(runtime, ignore_errors=True)


# Runs in the isolated interpreter; writes what it found as JSON to the path given last.
PROBE = r"""
import importlib, json, sys, sysconfig
config = json.loads(sys.argv[1])
sys.path[:0] = [config["task"], config["opt_python"]]  # Lambda: /var/task, then /opt/python
sys.path.append(config["runtime"])  # Lambda: /var/runtime (boto3) comes after everything else
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
catalog = settings.catalog
paths = sysconfig.get_paths()
result = {
    "handler_callable": callable(handler),
    "subjects": subjects,
    "content_dir": str(settings.content_dir),
    "catalog_path": str(settings.catalog_path),
    "catalog_version": str(catalog.version),
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


def test_template_has_functions() -> None:
    assert FUNCTION_IDS, "template.yaml has no AWS::Serverless::Function: there is nothing to package"


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_runs_from_its_packaged_artifacts(
    function_id: str, assembler: Assembler, lambda_runtime: Path, tmp_path: Path
) -> None:
    layer_ids = function_layer_ids(function_id)
    assert layer_ids, f"{function_id} has no layers: the shared package and the content would be missing"
    opt = assembler.opt(layer_ids)
    task = assembler.task(function_id)
    handler = str(function_property(function_id, "Handler", ""))
    output = tmp_path / "probe.json"
    config = {
        "function": function_id,
        "task": str(task),
        "opt_python": str(opt / "python"),
        "runtime": str(lambda_runtime),
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
        f"{function_id} fails from its packaged artifacts; on Lambda every invocation would fail "
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
    assert _under(found["selfservice"], opt / "python"), (
        f"selfservice was imported from {found['selfservice']}, not from the shared layer (/opt/python)"
    )

    allowed = [task, opt, lambda_runtime, *found["stdlib"]]
    strays = {
        name: path for name, path in found["modules"].items() if not any(_under(path, folder) for folder in allowed)
    }
    assert not strays, (
        "modules were imported from outside the packaged artifacts (they would be missing on Lambda):\n  "
        + "\n  ".join(f"{name}: {path}" for name, path in sorted(strays.items()))
    )
    from_checkout = {name: path for name, path in found["modules"].items() if _under(path, REPOSITORY)}
    assert not from_checkout, f"modules were imported from the repository checkout: {from_checkout}"
    boto3_origin = found["modules"].get("boto3")
    assert boto3_origin, "boto3 was not imported at all"
    assert _under(boto3_origin, lambda_runtime), (
        f"boto3 came from {boto3_origin}; the layer must not ship its own boto3 (the runtime provides it)"
    )

    size = tree_size(task) + tree_size(opt)
    assert size < LAMBDA_UNZIPPED_LIMIT, (
        f"{function_id} with its layers is {size / 1e6:.0f} MB unzipped; Lambda rejects more than "
        f"{LAMBDA_UNZIPPED_LIMIT / 1e6:.0f} MB"
    )
    print(f"{function_id}: {size / 1e6:.1f} MB unzipped (function + layers)")
    for name in ("boto3", "botocore"):
        origin = found["modules"].get(name, "")
        where = "the layer" if _under(origin, opt) else "the runtime" if _under(origin, lambda_runtime) else origin
        print(f"{function_id}: {name} is imported from {where}")


def _lambda_platform(layer_id: str) -> tuple[str, str]:
    """(python version, manylinux machine) a python layer is built for."""
    metadata = RESOURCES[layer_id].get("Metadata") or {}
    build_method = str(metadata.get("BuildMethod"))
    version = build_method.removeprefix("python")
    architecture = str(metadata.get("BuildArchitecture", "x86_64"))
    return version, {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]


@pytest.mark.parametrize("layer_id", PYTHON_LAYER_IDS)
def test_layer_requirements_resolve_for_the_lambda_platform(layer_id: str, tmp_path: Path) -> None:
    """Every pinned requirement has a wheel for Lambda's Python and architecture (no compiler there)."""
    content_uri = (RESOURCES[layer_id].get("Properties") or {}).get("ContentUri")
    requirements = REPOSITORY / str(content_uri) / "requirements.txt"
    if not requirements.is_file():
        pytest.skip(f"{layer_id} has no requirements.txt")
    version, machine = _lambda_platform(layer_id)
    # Lambda's Python runtimes from 3.12 on run on Amazon Linux 2023 (glibc 2.34).
    platforms = [f"manylinux2014_{machine}"] + [f"manylinux_2_{minor}_{machine}" for minor in range(17, 35)]
    report = tmp_path / "report.json"
    pip_install(
        tmp_path / "target",
        "--dry-run",
        "--ignore-installed",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        version,
        *[argument for platform in platforms for argument in ("--platform", platform)],
        "--report",
        str(report),
        "-r",
        str(requirements),
    )
    installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    wheels = sorted(item["download_info"]["url"].rsplit("/", 1)[-1] for item in installs)
    print(f"{layer_id} for python{version} {machine}:\n  " + "\n  ".join(wheels))
    assert wheels, f"{layer_id}: nothing resolved from {requirements.name}"
