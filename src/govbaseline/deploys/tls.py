"""pyinfra deploy of the HTTPS web service (TLS-01..TLS-05), twin of ``roles/tls``."""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.operations import apt, files, server, systemd

from govbaseline import templating
from govbaseline.deploys import common

ROLE = "tls"


@deploy("TLS")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    if common.enforced(ROLE, "certificate") and common.enforced(ROLE, "site"):
        changed = certificate(v)
        changed = site(v) or changed
        if changed:
            server.shell(name="TLS-01 | Check the whole nginx configuration before it is loaded",
                         commands=["nginx -t -q"])
        systemd.service(name="TLS-01 | Run nginx now and at boot", service="nginx", running=True, enabled=True)
        if changed:
            systemd.service(name="TLS-01 | Load the new configuration and certificate now", service="nginx",
                            reloaded=True)
    if common.enforced(ROLE, "expiry"):
        expiry(v)


def packages(v: dict[str, Any]) -> list[str]:
    return [*v["tls_packages"], *(v["tls_waf_packages"] if v["tls_waf_mode"] != "off" else []),
            *(v["tls_acme_packages"] if v["tls_certificate_source"] == "acme" else [])]


def certificate(v: dict[str, Any]) -> bool:
    apt.packages(name="TLS-01 | Install nginx (and the web application firewall and certbot when used)",
                 packages=packages(v), update=False)
    folder = v["__tls_dir"]
    files.directory(name="TLS-02 | Create the root-only certificate folder", path=folder, user="root",
                    group="root", mode="0700")
    if v["tls_certificate_source"] == "acme":
        argv = templating.evaluate(ROLE, v["__tls_certbot_argv"], v)
        live = f"{v['__tls_acme_live']}/{v['tls_server_names'][0]}/fullchain.pem"
        server.shell(name="TLS-02 | Obtain the certificate from the ACME CA (first run only; certbot.timer renews)",
                     commands=[f"test -e {live} || {shlex.join(argv)}"])
        renew = f"{v['__tls_certbot_timer']['unit']}.timer"
        common.restore_schedule("TLS-02", renew, "certificate renewal (certbot)", vendor=True)
        systemd.service(name=f"TLS-02 | Run {renew} (renewals)", service=renew, running=True, enabled=True)
        return False
    cert = common.put_text("TLS-02 | Install the certificate chain", v["tls_certificate"].strip() + "\n",
                           f"{folder}/fullchain.pem")
    key = common.put_secret("TLS-02 | Install the private key (root only, never logged)",
                            v["tls_private_key"].strip() + "\n", f"{folder}/privkey.pem")
    return bool(cert.will_change or key.will_change)


def site(v: dict[str, Any]) -> bool:
    files.directory(name="TLS-03 | Create the web root", path=v["tls_web_root"], user="root", group="root",
                    mode="0755")
    ops = [common.put_text("TLS-04 | Define the per-client request and connection limit zones",
                           common.render(ROLE, "limits.conf.j2", v), v["__tls_limits_conf"])]
    if v["tls_waf_mode"] != "off":
        ops.append(common.put_text("TLS-05 | Configure ModSecurity with the OWASP Core Rule Set",
                                   common.render(ROLE, "modsecurity.conf.j2", v), v["__tls_waf_conf"]))
    else:
        ops.append(files.file(name="TLS-05 | Remove the ModSecurity configuration when the firewall is off",
                              path=v["__tls_waf_conf"], present=False))
    ops.append(common.put_text("TLS-01 | Configure the HTTPS site and the redirect from HTTP",
                               common.render(ROLE, "site.conf.j2", v), v["__tls_site"]))
    ops.append(files.link(name="TLS-01 | Enable the site", path=v["__tls_site_link"], target=v["__tls_site"]))
    ops.append(files.link(name="TLS-01 | Disable Debian's default site (plain HTTP)",
                          path="/etc/nginx/sites-enabled/default", present=False))
    return any(op.will_change for op in ops)


def expiry(v: dict[str, Any]) -> None:
    common.put_file("TLS-02 | Install the certificate expiry check", ROLE, "govbaseline-tls-expiry",
                    v["__tls_expiry_command"], mode="0755")
    common.scheduled_job("TLS-02", ROLE, v, v["__tls_expiry_unit"], "expiry", "expiry warning")
