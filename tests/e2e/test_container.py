"""The container files without a container: the Dockerfile's invariants, its exact CMD and
HEALTHCHECK run here with the ENV it sets, and the structure of compose.yaml and its nginx
configuration. No Docker needed (CI has no daemon and no registry to pull a base image from).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, free_port, start_server, stop_server

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
PORT = 7860
LIVENESS = "/api/v1/health/live"
SECRET_NAME = re.compile(r"TOKEN|KEY|PASSWORD|SECRET|CREDENTIAL", re.IGNORECASE)
# A value that only refers to the environment: ${NAME}, ${NAME:?message}, ${NAME:-}.
ENV_REFERENCE = re.compile(r"\$\{[A-Z_][A-Z0-9_]*(:\?[^}]*|:-)?\}")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def read_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions in order: comments dropped, continuation lines joined."""
    instructions: list[Instruction] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not pending):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def dockerfile_env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(ins.args))
    return env


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON argument list of CMD (or HEALTHCHECK's CMD): shell form is not accepted."""
    args = instruction.args
    if instruction.keyword == "HEALTHCHECK":
        args = args[args.index(" CMD ") + len(" CMD "):]
    command = json.loads(args)
    assert isinstance(command, list) and all(isinstance(a, str) for a in command)
    return command


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def local(command: list[str]) -> list[str]:
    """The image's command for this machine: its `python` is the interpreter running us."""
    return [sys.executable if command[0] == "python" else command[0], *command[1:]]


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return read_dockerfile()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_dockerfile_base_user_port_and_healthcheck(dockerfile: list[Instruction]) -> None:
    assert dockerfile[0].keyword == "FROM"
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?",
                        dockerfile[0].args), "slim Python 3.11, pinned by tag"
    keywords = [i.keyword for i in dockerfile]
    users = [i for i in dockerfile if i.keyword == "USER"]
    assert users and users[-1].args.split(":")[0] not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("CMD"), "the app runs as a non-root user"
    assert only(dockerfile, "EXPOSE").args == str(PORT)
    env = dockerfile_env(dockerfile)
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0"
    assert env["GRADIO_SERVER_PORT"] == str(PORT)
    assert env["DATA_DIR"] == "/data"
    assert json.loads(only(dockerfile, "VOLUME").args) == ["/data"]
    check = only(dockerfile, "HEALTHCHECK")
    assert LIVENESS in " ".join(exec_form(check)) and "7860" in check.args
    assert exec_form(only(dockerfile, "CMD")) == ["python", "app.py"]


def test_dockerfile_bakes_before_the_volume_and_holds_no_secret(
        dockerfile: list[Instruction]) -> None:
    keywords = [i.keyword for i in dockerfile]
    bake = next(i for i, ins in enumerate(dockerfile)
                if ins.keyword == "RUN" and "BAKE_MODEL" in ins.args)
    # Docker drops what a build step writes under a volume declared before it.
    assert bake < keywords.index("VOLUME")
    assert "ensure_live_model" in dockerfile[bake].args
    assert only(dockerfile, "ARG").args == "BAKE_MODEL=0"
    assert "--no-cache-dir -r requirements.txt" in " ".join(
        i.args for i in dockerfile if i.keyword == "RUN")
    for ins in dockerfile:
        if ins.keyword in {"ENV", "ARG"}:
            names = [pair.split("=", 1)[0] for pair in shlex.split(ins.args)]
            assert not [n for n in names if SECRET_NAME.search(n)], ins
    copied = " ".join(i.args for i in dockerfile if i.keyword in {"COPY", "ADD"})
    assert ".env" not in copied and "tests" not in copied and not re.search(r"\. \.$", copied)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv/", "data/", ".env", "**/__pycache__/", "tests/"} <= set(ignored)


@pytest.mark.e2e
def test_dockerfile_cmd_serves_and_its_healthcheck_passes(
        dockerfile: list[Instruction], trained_data_dir: Path, tmp_path: Path) -> None:
    """The image's CMD with the image's ENV (a copy of a trained DATA_DIR and a free port
    instead of /data and 7860), then the image's HEALTHCHECK against it."""
    env = dockerfile_env(dockerfile)
    data_dir = tmp_path / "data"
    shutil.copytree(trained_data_dir, data_dir)
    image_env = {k: v for k, v in env.items() if k not in {"DATA_DIR", "GRADIO_SERVER_PORT"}}
    server = start_server(data_dir, tmp_path / "server.log", image_env,
                          command=local(exec_form(only(dockerfile, "CMD"))))
    try:
        port = server.url.rsplit(":", 1)[1]
        check = local(exec_form(only(dockerfile, "HEALTHCHECK")))
        healthy = subprocess.run(check, env={**env, "GRADIO_SERVER_PORT": port},
                                 capture_output=True, text=True, timeout=10)
        assert healthy.returncode == 0, healthy.stderr
        assert f"Support Triage on http://0.0.0.0:{port}" in server.log()
    finally:
        stop_server(server)
    down = subprocess.run(check, env={**env, "GRADIO_SERVER_PORT": str(free_port())},
                          capture_output=True, text=True, timeout=10)
    assert down.returncode != 0, "the healthcheck must fail when nothing answers"


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services built from the Dockerfile that run its CMD (model-init has its own)."""
    return {name: svc for name, svc in compose["services"].items()
            if "build" in svc and "command" not in svc}


def test_compose_two_replicas_on_postgres_behind_a_sticky_proxy(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:") and ":latest" not in postgres["image"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "PostgreSQL's data is on a named volume"

    replicas = app_services(compose)
    assert len(replicas) >= 2, f"two app replicas, found {sorted(replicas)}"
    urls = set()
    for name, svc in replicas.items():
        assert svc["build"]["context"] == ".", name
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert svc["stop_grace_period"], f"{name}: room for the 30 s shutdown flush"
        urls.add(svc["environment"]["DATABASE_URL"])
        assert svc["environment"]["FORWARDED_ALLOW_IPS"], name
    assert len(urls) == 1 and urls.pop().startswith("postgresql+psycopg://")

    # Exactly one process trains on first start, before any replica starts.
    init = services["model-init"]
    assert "ensure_live_model" in " ".join(init["command"])
    for name, svc in replicas.items():
        assert svc["depends_on"]["model-init"]["condition"] == \
            "service_completed_successfully", name

    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert any(v.startswith("./deploy/nginx.conf:") for v in proxy["volumes"])
    assert set(proxy["depends_on"]) == set(replicas)
    nginx = NGINX_CONF.read_text(encoding="utf-8")
    upstream = re.search(r"upstream \w+ \{(.*?)\}", nginx, re.S)
    assert upstream and "ip_hash;" in upstream.group(1)
    for name in replicas:
        assert f"server {name}:{PORT}" in upstream.group(1)
    assert "proxy_buffering off;" in nginx and "X-Forwarded-For" in nginx
    assert re.search(r"location /gradio_api/ \{[^}]*proxy_read_timeout \d{4,}s;", nginx)


def test_compose_holds_no_literal_secret(compose: dict[str, Any]) -> None:
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and SECRET_NAME.search(str(key)):
                    assert ENV_REFERENCE.fullmatch(value), f"{path}.{key} is a literal"
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        elif isinstance(node, str) and "://" in node and "@" in node:
            userinfo = node.split("://", 1)[1].split("@", 1)[0]
            password = userinfo.partition(":")[2]
            assert ENV_REFERENCE.fullmatch(password), f"{path}: a password in a URL"
    walk(compose, "compose")
    password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password.startswith("${POSTGRES_PASSWORD:?"), "no default: refuse to start without"
