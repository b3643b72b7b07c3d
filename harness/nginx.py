"""nginx (Debian's) in front of gateways, with deploy/nginx.conf as the README gives it:
only its ports and certificate paths are replaced."""

from __future__ import annotations

from pathlib import Path

from harness.processes import ROOT, Process, accepts, free_port, spawn, wait_until

NGINX = Path("/usr/sbin/nginx")
SITE = ROOT / "deploy" / "nginx.conf"
EXAMPLE_UPSTREAMS = ("127.0.0.1:8080", "127.0.0.1:8081")


def site_for(gateway_ports: list[int], port: int, cert: Path, key: Path) -> str:
    """deploy/nginx.conf for these gateways, listening on `port` with this certificate."""
    site = SITE.read_text()
    upstream_lines = [line for line in site.splitlines()
                      if line.strip().startswith("server 127.0.0.1:")]
    assert len(upstream_lines) == len(EXAMPLE_UPSTREAMS), "deploy/nginx.conf changed shape"
    template = upstream_lines[0]
    site = site.replace(upstream_lines[1] + "\n", "")
    site = site.replace(template, "\n".join(
        template.replace(EXAMPLE_UPSTREAMS[0], f"127.0.0.1:{p}") for p in gateway_ports))
    for old, new in (("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
                     ("/etc/ssl/switchboard/fullchain.pem", str(cert)),
                     ("/etc/ssl/switchboard/privkey.pem", str(key))):
        assert old in site, f"deploy/nginx.conf has no {old!r}"
        site = site.replace(old, new)
    return site


def start_nginx(workdir: Path, gateway_ports: list[int], cert: Path, key: Path
                ) -> tuple[Process, int]:
    """nginx in the foreground, everything of it in `workdir`; its port once it listens."""
    assert NGINX.exists(), f"{NGINX} is missing: scripts/test installs Debian's nginx"
    port = free_port()
    (workdir / "site.conf").write_text(site_for(gateway_ports, port, cert, key))
    temp = workdir / "temp"
    temp.mkdir(exist_ok=True)
    (workdir / "nginx.conf").write_text(f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {workdir}/site.conf;
}}
""")
    process = spawn("nginx", [str(NGINX), "-p", str(workdir), "-c",
                              str(workdir / "nginx.conf"), "-g", "daemon off;"], {}, workdir)

    def listening() -> bool:
        return not process.alive() or accepts(port)

    wait_until(listening, 10, f"nginx on port {port}")
    if not process.alive():
        raise RuntimeError(f"nginx died:\n{process.log()}\n"
                           f"{(workdir / 'error.log').read_text(errors='replace')}")
    return process, port

