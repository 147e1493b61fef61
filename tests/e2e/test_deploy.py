"""deploy/: each file checked by its own tool, and run as written where it can run here.

- the Kubernetes manifests: kubernetes-validate (offline, strict) for the supported
  Kubernetes releases, and how they refer to each other and to the image;
- the nginx site: `nginx -t`, and /metrics kept from the internet;
- the systemd unit: `systemd-analyze verify`, and its ExecStart and ExecReload run;
- the Containerfile: read with BuildKit's parser; its CMD and HEALTHCHECK run
  against a local service; the files it copies make the whole package;
- /metrics adding up across two gunicorn workers, one of them replaced.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dockerfile
import kubernetes_validate
import pytest
import requests
import trustme
import urllib3
import yaml
from lxml import etree
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from autoconf.certificates import HTTPS_SNIPPET
from autoconf.machine import available_cpus
from autoconf.registry import load_folder
from autoconf.serving import gunicorn_settings
from autoconf.settings import Settings
from tests.e2e.conftest import CLIENT_DOMAINS_DIR, Front
from tests.e2e.nginx import (
    NGINX,
    PUBLIC_HOST,
    SiteFiles,
    certificate_names,
    certificates,
    install_certificate,
    write_site,
)
from tests.e2e.processes import Started, free_port, start, start_service, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
UNIT = DEPLOY / "systemd" / "mail-autoconf.service"
CONTAINERFILE = DEPLOY / "Containerfile"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
BIN = Path(sys.executable).parent
# The oldest Kubernetes release still supported upstream when this was written;
# the manifests validate against it and every newer one kubernetes-validate knows.
OLDEST_KUBERNETES = (1, 35)
KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Ingress",
    "PodDisruptionBudget",
    "Service",
}


# --- Kubernetes ---------------------------------------------------------------


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                found.append((path, document))
    return found


def by_kind() -> dict[str, dict[str, Any]]:
    """Each kind's one resource; ConfigMaps (the domain files, the pod's nginx.conf)
    are in config_maps()."""
    found: dict[str, dict[str, Any]] = {}
    for path, document in manifests():
        if document["kind"] == "ConfigMap":
            continue
        assert document["kind"] not in found, f"{path}: a second {document['kind']}"
        found[document["kind"]] = document
    return found


def config_maps() -> dict[str, dict[str, Any]]:
    found = {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == "ConfigMap"}
    assert set(found) == {"mail-autoconf-domains", "mail-autoconf-nginx"}
    return found


def pod_nginx_conf() -> str:
    return str(config_maps()["mail-autoconf-nginx"]["data"]["nginx.conf"])


def kubernetes_versions() -> list[str]:
    versions = [
        v
        for v in kubernetes_validate.utils.all_versions()
        if tuple(int(n) for n in v.split(".")[:2]) >= OLDEST_KUBERNETES
    ]
    assert versions, "kubernetes-validate knows no supported Kubernetes release: upgrade it"
    return versions


def test_every_kubernetes_manifest_validates() -> None:
    found = manifests()
    assert {document["kind"] for _, document in found} == KINDS
    for version in kubernetes_versions():
        for path, document in found:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{path.name} against Kubernetes {version}: {where}: {exc.message}")
            except kubernetes_validate.utils.SchemaNotFoundError as exc:
                pytest.fail(f"{path.name}: {exc.message}")


def test_kubernetes_manifests_fit_together() -> None:
    kinds = by_kind()
    deployment, service = kinds["Deployment"], kinds["Service"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    [container] = pod["spec"]["containers"]
    [sidecar] = pod["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always"  # a sidecar: runs beside the service
    # Only nginx has ports; gunicorn listens on the pod's loopback.
    assert "ports" not in container
    port_names = {p["name"]: p["containerPort"] for p in sidecar["ports"]}

    def selects_the_pods(selector: dict[str, str]) -> bool:
        return bool(selector) and selector.items() <= labels.items()

    assert selects_the_pods(deployment["spec"]["selector"]["matchLabels"])
    assert selects_the_pods(service["spec"]["selector"])
    assert selects_the_pods(kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"])
    [service_port] = service["spec"]["ports"]
    assert service_port["targetPort"] == "http" and "http" in port_names

    # The Ingress sends every host to that Service's port.
    for rule in kinds["Ingress"]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"]["name"] == service_port["name"]

    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["scaleTargetRef"]["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == hpa["minReplicas"] >= 2
    assert "cpu" in container["resources"]["requests"]  # what the autoscaler measures
    assert "memory" in container["resources"]["limits"]

    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
        # Through the sidecar: a probe's named port would be its own container's.
        assert container[probe]["httpGet"]["port"] == port_names["http"], probe

    # The domain folder: the ConfigMap, mounted whole (a subPath mount never
    # sees an edit) where AUTOCONF_DOMAINS says, read-only.
    env = {e["name"]: e["value"] for e in container["env"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == env["AUTOCONF_DOMAINS"]]
    assert "subPath" not in mount and mount["readOnly"] is True
    assert volumes[mount["name"]]["configMap"]["name"] == "mail-autoconf-domains"
    assert env["AUTOCONF_PROXY_HOPS"] == "1"  # the Ingress controller

    # Locked down; writable only where the service writes (metrics, heartbeats, state).
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert writable == ["/tmp", "/var/lib/mail-autoconf"]
    assert Path(env["AUTOCONF_STATE"]).is_relative_to("/var/lib/mail-autoconf")
    assert str(pod["spec"]["securityContext"]["runAsUser"]) == containerfile_user()

    # gunicorn on the pod's loopback (the image's command, which the Deployment
    # keeps); the sidecar's nginx.conf listens on the pod's ports and hands
    # everything to that address; the metrics port is the annotated one.
    assert "command" not in container and "args" not in container
    assert container_bind() == "127.0.0.1:8080"
    conf = pod_nginx_conf()
    assert re.findall(r"^\s*listen (\S+);", conf, re.MULTILINE) == [
        str(port_names["http"]),
        str(port_names["metrics"]),
    ]
    assert re.findall(r"^\s*server (\S+);", conf, re.MULTILINE) == [container_bind()]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port_names["metrics"])
    mounted = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    assert volumes["nginx-conf"]["configMap"]["name"] == "mail-autoconf-nginx"
    assert sidecar["command"][:3] == ["nginx", "-c", f"{mounted['nginx-conf']}/nginx.conf"]
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert "cpu" in sidecar["resources"]["requests"]  # the autoscaler counts every container

    # A stopping pod: preStop pause, then gunicorn's graceful stop, within the grace period.
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert (
        pause + service_setting("graceful_timeout") < pod["spec"]["terminationGracePeriodSeconds"]
    )


def test_configmap_domain_files_pass_check_and_match_the_ingress(tmp_path: Path) -> None:
    kinds = by_kind()
    for name, text in config_maps()["mail-autoconf-domains"]["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = load_folder(tmp_path)
    assert not result.errors, [str(e) for e in result.errors]
    domains = {d for p in result.providers for d in p.domains}
    wanted = {f"{prefix}.{d}" for d in domains for prefix in ("autoconfig", "autodiscover")}
    ingress = kinds["Ingress"]["spec"]
    assert {rule["host"] for rule in ingress["rules"]} == wanted
    assert {host for tls in ingress["tls"] for host in tls["hosts"]} == wanted


def test_the_pods_nginx_serves_the_loopback_service(tmp_path: Path) -> None:
    """The sidecar's nginx.conf, run by the real nginx as the Deployment runs it
    (its command; ports and /tmp made local), in front of the real service on
    127.0.0.1 with AUTOCONF_PROXY_HOPS=1: requests as the Ingress controller sends
    them pass with its X-Forwarded-*; /metrics only on the metrics port."""
    folder = serve_folder(tmp_path, "imap.test.example")
    service, service_port = start_service(folder, tmp_path, "--proxy-hops", "1")
    http_port, metrics_port = free_port(), free_port()
    temp = tmp_path / "nginx-tmp"
    temp.mkdir()
    temp.chmod(0o777)  # run as root here, nginx's workers drop to nobody
    conf = pod_nginx_conf()
    for old, new in [
        ("listen 8081;", f"listen 127.0.0.1:{http_port};"),
        ("listen 9180;", f"listen 127.0.0.1:{metrics_port};"),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{service_port};"),
        (" /tmp/", f" {temp}/"),
    ]:
        assert old in conf, old
        conf = conf.replace(old, new)
    (tmp_path / "nginx.conf").write_text(conf, encoding="utf-8")
    [sidecar] = by_kind()["Deployment"]["spec"]["template"]["spec"]["initContainers"]
    command = [
        NGINX if a == "nginx" else a.replace("/etc/nginx/mail-autoconf", str(tmp_path))
        for a in sidecar["command"]
    ]
    nginx = start([*command, "-p", str(tmp_path)], tmp_path / "nginx.out", cwd=tmp_path)
    try:
        wait_until(lambda: healthy(http_port), nginx, "the pod's nginx")
        ingress = {
            "Host": "autoconfig.deploy.test.example",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "autodiscover.deploy.test.example",
            "X-Forwarded-Port": "443",
        }
        assert imap_host(http_port, ingress) == "imap.test.example"
        answer = requests.get(
            f"http://127.0.0.1:{http_port}/autodiscover/autodiscover.json",
            params={"Email": "a@deploy.test.example", "Protocol": "AutodiscoverV1"},
            headers=ingress,
            timeout=5,
        )
        assert answer.json()["Url"] == (
            "https://autodiscover.deploy.test.example/Autodiscover/Autodiscover.xml"
        )
        public = requests.get(f"http://127.0.0.1:{http_port}/metrics", timeout=5)
        assert public.status_code == 404 and public.headers["Content-Type"] == "text/html"
        scraped = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert scraped.status_code == 200 and "autoconf_requests_total" in scraped.text
        assert requests.get(f"http://127.0.0.1:{metrics_port}/", timeout=5).status_code == 404
    finally:
        nginx.stop()
        service.stop()
    assert "[emerg]" not in nginx.log_text() and "[warn]" not in nginx.log_text()
    assert "Traceback" not in service.log_text()


# --- nginx ----------------------------------------------------------------------


def nginx_test(tmp_path: Path, site: Path) -> str:
    """`nginx -t` of the site in an http block; its messages."""
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{ access_log off; include {site}; }}\n",
        encoding="utf-8",
    )
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "[warn]" not in checked.stderr, checked.stderr
    return checked.stderr


def site_with_certificates(tmp_path: Path, folder: Path, bare: list[str]) -> SiteFiles:
    """The site for ``folder``, every certificate it names in place (one test
    certificate under each name: `nginx -t` reads them, it does not match names)."""
    files = write_site(
        tmp_path,
        http_port=free_port(),
        https_port=free_port(),
        upstream_port=free_port(),
        folder=folder,
        bare_domains=bare,
        logs=tmp_path,
    )
    issued = trustme.CA().issue_cert("autoconfig.example.com", "example.com")
    names = [*certificate_names(folder, PUBLIC_HOST), "mail-autoconf-bare"]
    install_certificate(files.live, names[0], issued)
    for name in names[1:]:
        (files.live / name).symlink_to(files.live / names[0])
    return files


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    files = site_with_certificates(
        tmp_path, ROOT / "tests" / "data" / "examples", ["example.com", "example.net"]
    )
    nginx_test(tmp_path, files.site)


def test_nginx_accepts_the_servers_of_thousands_of_domains(tmp_path: Path) -> None:
    """5,000 domains with long names (10,000 names of up to 72 characters, over
    nginx's default hash bucket): the site's hash sizes hold them, without a warning."""
    folder = tmp_path / "domains"
    folder.mkdir()
    domains = [f"customer-{i:05d}-of-a-hoster-with-long-domain-names.example" for i in range(5000)]
    (folder / "hoster.yaml").write_text(
        yaml.safe_dump(
            {
                "domains": domains,
                "incoming": [{"type": "imap", "host": "imap.hoster.example", "security": "ssl"}],
                "outgoing": [{"type": "smtp", "host": "smtp.hoster.example", "security": "ssl"}],
            }
        ),
        encoding="utf-8",
    )
    files = site_with_certificates(tmp_path / "site", folder, ["example.com"])
    certificates = certificate_names(folder, PUBLIC_HOST)
    assert len(certificates) > 100 and max(len(n) for n in certificates.values()) <= 100
    servers = (tmp_path / "site" / "certificates.conf").read_text(encoding="utf-8")
    assert servers.count("server {") == len(certificates) - 1  # the public host's is the site's
    nginx_test(tmp_path / "site", files.site)


# What every server of the site sets against slow clients (docs/deploy.md).
SLOW_CLIENT_SETTINGS = {
    "client_header_timeout": "10s",
    "client_body_timeout": "10s",
    "send_timeout": "10s",
    "keepalive_timeout": "15s",
    "reset_timedout_connection": "on",
    "client_header_buffer_size": "1k",
    "large_client_header_buffers": "4 8k",
    "client_body_buffer_size": "64k",
    "client_max_body_size": "64k",
    "limit_conn": "mail_autoconf_addr 20",
    "limit_conn_status": "429",
}


def nginx_servers(text: str) -> list[str]:
    """The top level of each ``server { ... }`` block (its locations left out)."""
    servers = []
    for opening in (m.end() for m in re.finditer(r"^ *server \{", text, re.MULTILINE)):
        depth, top, i = 1, [], opening
        while depth:
            char = text[i]
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 1 and char != "}":
                top.append(char)
            i += 1
        servers.append("".join(top))
    return servers


def nginx_directives(block: str) -> dict[str, str]:
    lines = (line.split("#", 1)[0].strip() for line in block.splitlines())
    found = {}
    for line in lines:
        if line.endswith(";"):
            name, _, value = line[:-1].partition(" ")
            found.setdefault(name, value.strip())
    return found


def test_every_server_of_the_nginx_site_holds_slow_clients_off() -> None:
    site = (DEPLOY / "nginx" / "mail-autoconf.conf").read_text(encoding="utf-8")
    https = (DEPLOY / "nginx" / "mail-autoconf-https.conf").read_text(encoding="utf-8")
    include = f"include {HTTPS_SNIPPET};"
    # The site's four, and those `certificates --format nginx` prints (the domains' HTTPS).
    generated = certificates(ROOT / "tests" / "data" / "examples", PUBLIC_HOST, "nginx")
    servers = nginx_servers(site) + nginx_servers(generated)
    assert len(servers) == 5
    for server in servers:
        directives = nginx_directives(server + (https if include in server else ""))
        assert {k: directives.get(k) for k in SLOW_CLIENT_SETTINGS} == SLOW_CLIENT_SETTINGS
    # The zone, in the http block the site is included in (outside every server).
    top = nginx_directives(re.sub(r"(?ms)^(server|upstream) \{.*?^\}", "", site))
    assert top["limit_conn_zone"] == "$binary_remote_addr zone=mail_autoconf_addr:10m"
    snippet = nginx_directives((DEPLOY / "nginx" / "mail-autoconf-proxy.conf").read_text())
    assert snippet["proxy_request_buffering"] == snippet["proxy_buffering"] == "on"
    # The pod's nginx, where the Service's requests arrive, holds them off the same way.
    public, _metrics = nginx_servers(pod_nginx_conf())
    directives = nginx_directives(public)
    assert {k: directives.get(k) for k in SLOW_CLIENT_SETTINGS} == SLOW_CLIENT_SETTINGS
    assert "limit_conn_zone $binary_remote_addr zone=mail_autoconf_addr:10m;" in pod_nginx_conf()


def test_the_nginx_site_keeps_metrics_from_the_internet(front: Front) -> None:
    pool = urllib3.HTTPSConnectionPool(
        "127.0.0.1",
        front.nginx.https_port,
        server_hostname="autoconfig.ssl.test.example",
        ca_certs=str(front.nginx.ca_file),
        cert_reqs="CERT_REQUIRED",
        retries=False,
        timeout=10,
    )
    for path in ["/metrics", "//metrics", "/%6Detrics", "/metrics?x=1"]:
        answer = pool.request("GET", path, headers={"Host": "autoconfig.ssl.test.example"})
        assert answer.status == 404, path
        # nginx's own page: the request never reached the service.
        assert answer.headers["Content-Type"].startswith("text/html"), path
    direct = requests.get(f"http://127.0.0.1:{front.service_port}/metrics", timeout=5)
    assert direct.status_code == 200 and "autoconf_requests_total" in direct.text


# --- systemd ----------------------------------------------------------------------


def unit_service_lines(text: str) -> dict[str, list[str]]:
    """The [Service] section: each key with its values, in order (keys may repeat)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def unit_for_this_machine(folder: Path) -> str:
    """The unit with this checkout's gunicorn, config file and domain folder."""
    text = UNIT.read_text(encoding="utf-8")
    for old, new in [
        ("/opt/mail-autoconf/bin/gunicorn", str(BIN / "gunicorn")),
        ("/etc/mail-autoconf/gunicorn.conf.py", str(GUNICORN_CONF)),
        ("/etc/mail-autoconf/domains", str(folder)),
    ]:
        assert old in text, f"{old} is no longer in the unit"
        text = text.replace(old, new)
    return text


def test_the_unit_serves_on_loopback_only() -> None:
    """gunicorn takes its address from deploy/gunicorn.conf.py: 127.0.0.1, for the
    nginx on the same host; nothing in the unit moves it elsewhere."""
    assert package_setting("bind", GUNICORN_CONF) == "127.0.0.1:8080"
    assert "bind" not in gunicorn_settings(Settings())  # the package's settings leave it be
    service = unit_service_lines(UNIT.read_text(encoding="utf-8"))
    [exec_start] = service["ExecStart"]
    arguments = shlex.split(exec_start)
    assert not {"--bind", "-b"} & set(arguments) and not any(
        a.startswith("--bind=") for a in arguments
    ), exec_start
    settings = [a for line in service["Environment"] for a in shlex.split(line)]
    assert not [a for a in settings if a.startswith(("GUNICORN_CMD_ARGS=", "BIND="))]
    assert service.get("EnvironmentFile") == ["-/etc/mail-autoconf/environment"]


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    unit = tmp_path / "mail-autoconf.service"
    unit.write_text(unit_for_this_machine(CLIENT_DOMAINS_DIR), encoding="utf-8")
    verified = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # verify also reports keys it ignores (a typo, a setting this systemd lacks)
    # without failing: any word about our unit is a failure here.
    complaints = [line for line in verified.stderr.splitlines() if "mail-autoconf" in line]
    assert verified.returncode == 0 and not complaints, verified.stderr
    # The exposure score of `systemd-analyze security`: "OK" is below 2.0 (20 here).
    scored = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in scored.stderr:  # a systemd older than 250
        return
    assert scored.returncode == 0, scored.stdout[-2000:] + scored.stderr


def clean_environment(**settings: str) -> dict[str, str]:
    """This environment without anything that would change the service or gunicorn."""
    dropped = ("PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "FORWARDED")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTOCONF_", *dropped)) and k != "NOTIFY_SOCKET"
    }
    env.update(settings)
    return env


def serve_folder(tmp_path: Path, host: str) -> Path:
    folder = tmp_path / "domains"
    folder.mkdir(exist_ok=True)
    (folder / "deploy.yaml").write_text(
        "domains: [deploy.test.example]\n"
        f"incoming: [{{type: imap, host: {host}, security: ssl}}]\n"
        "outgoing: [{type: smtp, host: smtp.deploy.test.example, security: ssl}]\n",
        encoding="utf-8",
    )
    return folder


def healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def imap_host(port: int, headers: dict[str, str] | None = None) -> str:
    """The IMAP host the service answers for autoconfig.deploy.test.example."""
    answer = requests.get(
        f"http://127.0.0.1:{port}/mail/config-v1.1.xml",
        headers=headers or {"Host": "autoconfig.deploy.test.example"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return str(etree.fromstring(answer.content).findtext("emailProvider/incomingServer/hostname"))


@pytest.fixture
def unit_service(tmp_path: Path) -> Iterator[tuple[Started, int, Path]]:
    """The unit's ExecStart, as written, with its Environment= (paths made local).

    Polling is off, so that only ExecReload can bring a change in.
    """
    folder = serve_folder(tmp_path, "imap-before.test.example")
    service = unit_service_lines(unit_for_this_machine(folder))
    [exec_start] = service["ExecStart"]
    env = clean_environment()
    for line in service["Environment"]:
        env.update(assignment.split("=", 1) for assignment in shlex.split(line))
    assert env["AUTOCONF_DOMAINS"] == str(folder)
    port = free_port()
    (tmp_path / "tmp").mkdir()
    env |= {
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",  # the unit's 127.0.0.1:8080 may be taken
        "AUTOCONF_RELOAD_SECONDS": "0",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "tmp"),  # the unit's PrivateTmp
    }
    started = start(shlex.split(exec_start), tmp_path / "gunicorn.log", cwd=tmp_path, env=env)
    try:
        wait_until(lambda: healthy(port), started, "the unit's ExecStart")
        yield started, port, folder
    finally:
        started.stop()


def test_the_units_command_serves_and_its_reload_reloads(
    unit_service: tuple[Started, int, Path],
) -> None:
    started, port, folder = unit_service
    # gunicorn.conf.py: one worker per CPU, at least two (the first may answer
    # /healthz before the others have booted).
    wanted = max(2, available_cpus())
    deadline = time.monotonic() + 15
    while len(re.findall(r"Booting worker with pid: \d+", started.log_text())) < wanted:
        assert time.monotonic() < deadline, started.log_text()
        time.sleep(0.1)
    time.sleep(0.5)  # and no more than that
    assert len(re.findall(r"Booting worker with pid: \d+", started.log_text())) == wanted
    # AUTOCONF_PROXY_HOPS=1 from the unit: nginx's X-Forwarded-Host picks the domain.
    forwarded = {"Host": "127.0.0.1", "X-Forwarded-Host": "autoconfig.deploy.test.example"}
    assert imap_host(port, forwarded) == "imap-before.test.example"

    serve_folder(folder.parent, "imap-after.test.example")
    [exec_reload] = unit_service_lines(UNIT.read_text(encoding="utf-8"))["ExecReload"]
    command = shlex.split(exec_reload.replace("$MAINPID", str(started.process.pid)))
    assert subprocess.run(command, timeout=10).returncode == 0  # our own process, by its PID
    deadline = time.monotonic() + 15
    while imap_host(port) != "imap-after.test.example":
        assert time.monotonic() < deadline, "ExecReload did not reload the folder"
        time.sleep(0.2)
    assert started.process.poll() is None

    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert metrics.status_code == 200 and "autoconf_domains_live 1.0" in metrics.text
    started.stop()
    assert started.process.returncode == 0
    log = started.log_text()
    assert "Traceback" not in log and "alice" not in log


# --- the container ----------------------------------------------------------------


def containerfile() -> list[Any]:
    return list(dockerfile.parse_file(str(CONTAINERFILE)))


def final_stage() -> list[Any]:
    commands = containerfile()
    last_from = max(i for i, c in enumerate(commands) if c.cmd == "FROM")
    return commands[last_from:]


def instruction(name: str) -> Any:
    [found] = [c for c in final_stage() if c.cmd == name]
    return found


def containerfile_user() -> str:
    return str(instruction("USER").value[0]).split(":")[0]


def container_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for command in final_stage():
        if command.cmd == "ENV":
            pairs = command.value
            env.update(zip(pairs[::2], pairs[1::2], strict=True))
    return env


def container_bind() -> str:
    cmd = list(instruction("CMD").value)
    return str(cmd[cmd.index("--bind") + 1])


def service_setting(name: str) -> Any:
    """One of the gunicorn settings the package gives `serve` and deploy/gunicorn.conf.py."""
    return gunicorn_settings(Settings())[name]


def package_setting(name: str, file: Path) -> Any:
    """A setting of a gunicorn config file, read without running it (it prepares the
    process, as a gunicorn config file does)."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not set in {file}")


def test_the_containerfile_says_what_the_issue_asks() -> None:
    stages = [c for c in containerfile() if c.cmd == "FROM"]
    assert all(re.search(r"/python:3\.\d+-slim", c.value[0]) for c in stages), stages
    user = containerfile_user()
    assert user.isdigit() and int(user) > 0  # numeric, so runAsNonRoot can check it
    env = container_env()
    volumes = [v for c in final_stage() if c.cmd == "VOLUME" for v in c.value]
    assert env["AUTOCONF_DOMAINS"] in volumes
    assert env["AUTOCONF_STATE"] in volumes  # a new container continues from the state
    assert env["AUTOCONF_PROXY_HOPS"] == "1"
    healthcheck = instruction("HEALTHCHECK")
    assert healthcheck.value[0] == "CMD" and "/healthz" in " ".join(healthcheck.value)
    # gunicorn on loopback, nothing to publish: nginx in front listens outside.
    assert container_bind() == "127.0.0.1:8080"
    assert not [c for c in final_stage() if c.cmd == "EXPOSE"]
    for command in containerfile():  # what it copies from the repository exists
        if command.cmd == "COPY" and not command.flags:
            for source in command.value[:-1]:
                assert (ROOT / source).exists(), source


def test_the_containers_command_and_healthcheck_run_as_written(tmp_path: Path) -> None:
    folder = serve_folder(tmp_path, "imap.test.example")
    port = free_port()
    env = clean_environment(HOME=str(tmp_path))
    for name, value in container_env().items():
        env[name] = value.replace("$PATH", os.environ.get("PATH", ""))
    env["PATH"] = env["PATH"].replace("/opt/mail-autoconf/bin", str(BIN))
    env["AUTOCONF_DOMAINS"] = str(folder)
    env["TMPDIR"] = str(tmp_path)

    def local(argument: str) -> str:
        return (
            argument.replace("/etc/mail-autoconf/gunicorn.conf.py", str(GUNICORN_CONF)).replace(
                "127.0.0.1:8080", f"127.0.0.1:{port}"
            )  # the 8080 of the host may be taken
        )

    command = [local(a) for a in instruction("CMD").value]
    command[0] = shutil.which(command[0], path=env["PATH"]) or command[0]
    check = [local(a) for a in instruction("HEALTHCHECK").value[1:]]
    check[0] = shutil.which(check[0], path=env["PATH"]) or check[0]
    assert Path(check[0]).parent == BIN  # the image's python: the venv's

    def healthcheck() -> int:
        return subprocess.run(check, env=env, capture_output=True, timeout=10).returncode

    assert healthcheck() == 1  # nothing listens yet: unhealthy (never 2, reserved)
    started = start(command, tmp_path / "container.log", cwd=tmp_path, env=env)
    try:
        wait_until(lambda: healthy(port), started, "the container's CMD")
        assert healthcheck() == 0
        assert imap_host(port) == "imap.test.example"
    finally:
        started.stop()
    assert healthcheck() == 1


def test_the_files_the_image_copies_make_the_whole_package(tmp_path: Path) -> None:
    """The build stage copies only some files: they must build a package with every
    module, template and style sheet (pip, from PyPI's setuptools, as the build does)."""
    build = containerfile()[: [c.cmd for c in containerfile()].index("FROM", 1)]
    source = tmp_path / "src"
    for command in build:
        if command.cmd == "COPY":
            *sources, target = command.value
            for name in sources:
                to = source / Path(target).relative_to("/src")
                if (ROOT / name).is_dir():
                    shutil.copytree(ROOT / name, to, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    to.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / name, to)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), source],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = tmp_path.glob("*.whl")
    packaged = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("autoconf/")}
    present = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "autoconf").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert present - packaged == set()


# --- /metrics across workers --------------------------------------------------------


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert answer.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


AUTOCONFIG_200 = (
    "autoconf_requests_total",
    frozenset({("endpoint", "autoconfig"), ("status", "200")}),
)


def per_process(folder: Path, tmp_path: Path) -> dict[int, float]:
    """Autoconfig answers by process, from each process's own file of counters."""
    counts = {}
    for file in folder.glob("counter_*.db"):
        alone = tmp_path / file.stem
        alone.mkdir(parents=True)
        shutil.copy(file, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        for family in registry.collect():
            for s in family.samples:
                if (s.name, frozenset(s.labels.items())) == AUTOCONFIG_200:
                    counts[int(file.stem.split("_")[1])] = s.value
    return counts


def test_metrics_add_up_across_two_workers(tmp_path: Path) -> None:
    folder = serve_folder(tmp_path, "imap.test.example")
    temp = tmp_path / "tmp"
    temp.mkdir()
    started, port = start_service(folder, tmp_path, env={"TMPDIR": str(temp)})
    try:
        [metrics_folder] = temp.glob("mail-autoconf-metrics-*")  # serve's private folder
        url = f"http://127.0.0.1:{port}/mail/config-v1.1.xml?emailaddress=a@deploy.test.example"

        def ask(_: int) -> int:
            # A connection each, as clients come: the workers take turns.
            return requests.get(url, headers={"Connection": "close"}, timeout=10).status_code

        requests_sent = 200
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(ask, range(requests_sent))) == {200}
        workers = children(started.process.pid)
        assert len(workers) == 2

        by_process = per_process(metrics_folder, tmp_path / "split")
        assert sum(by_process.values()) == requests_sent
        assert len([pid for pid, n in by_process.items() if n and pid in workers]) == 2
        for _ in range(6):  # whichever worker answers the scrape tells the same totals
            samples = scrape(port)
            assert samples[AUTOCONFIG_200] == requests_sent
            assert samples[("autoconf_domains_live", frozenset())] == 1

        # A worker goes (as on SIGHUP, a crash, max_requests): its answers still count,
        # its gauges no longer (gunicorn's child_exit hook marks it dead).
        gone = min(workers)
        os.kill(gone, signal.SIGTERM)  # a worker of the service this test started
        deadline = time.monotonic() + 15
        while len(children(started.process.pid) - {gone}) < 2:
            assert time.monotonic() < deadline, "gunicorn did not replace the worker"
            time.sleep(0.1)
        deadline = time.monotonic() + 15
        while (metrics_folder / f"gauge_livemostrecent_{gone}.db").exists():
            assert time.monotonic() < deadline, "the gone worker's gauges still count"
            time.sleep(0.1)
        assert (metrics_folder / f"counter_{gone}.db").exists()
        for _ in range(4):
            samples = scrape(port)
            assert samples[AUTOCONFIG_200] == requests_sent
            assert samples[("autoconf_domains_live", frozenset())] == 1
    finally:
        started.stop()
    assert started.process.returncode == 0
    assert list(temp.iterdir()) == [], "serve left its metrics folder behind"
