"""pyinfra deploy of the alert channel (ALERT-01, ALERT-02), twin of ``roles/alerts``."""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.operations import apt, files, systemd

from govbaseline.deploys import common

ROLE = "alerts"


@deploy("Alerts")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None or not common.enforced(ROLE, "channel"):
        return
    conf, unit = v["__alerts_config_dir"], v["__alerts_retry_unit"]
    apt.packages(name="ALERT-01 | Install msmtp", packages=v["alerts_packages"], update=False)
    for folder in (conf, v["__alerts_spool_dir"]):
        files.directory(name="ALERT-01 | Create the root-only configuration and queue folders", path=folder,
                        user="root", group="root", mode="0700")
    common.put_file("ALERT-01 | Install the govbaseline-alert command", ROLE, "govbaseline-alert",
                    v["__alerts_command"], mode="0755")
    common.put_text("ALERT-01, ALERT-02 | Write the recipients by severity, the CERT address and the webhook",
                    common.render(ROLE, "config.json.j2", v), f"{conf}/config.json", mode="0600")
    common.put_text("ALERT-01 | Write the mail relay settings", common.render(ROLE, "msmtprc.j2", v),
                    f"{conf}/msmtprc", mode="0600")
    if v["alerts_smtp_ca_cert"]:
        common.put_text("ALERT-01 | Install the relay's private CA certificate",
                        v["alerts_smtp_ca_cert"].strip() + "\n", v["__alerts_relay_ca"])
    else:
        files.file(name="ALERT-01 | Remove the relay's private CA certificate when none is configured",
                   path=v["__alerts_relay_ca"], present=False)
    for secret, value in (("smtp-password", v["alerts_smtp_password"]), ("webhook-token", v["alerts_webhook_token"])):
        if value:
            common.put_secret("ALERT-01 | Store the relay password and the webhook token (root only, never logged)",
                              value + "\n", f"{conf}/{secret}")
        else:
            files.file(name="ALERT-01 | Remove secrets that are no longer configured", path=f"{conf}/{secret}",
                       present=False)
    changed = False
    for name in (f"{unit}.service", f"{unit}.timer"):
        op = common.put_text("ALERT-01 | Install the retry timer of undelivered alerts",
                             common.render(ROLE, f"{name}.j2", v), f"/etc/systemd/system/{name}")
        changed = changed or op.will_change
    common.restore_schedule("ALERT-01", f"{unit}.timer", "alert retry")
    systemd.service(name="ALERT-01 | Start the retry timer", service=f"{unit}.timer", running=True, enabled=True,
                    restarted=changed, daemon_reload=changed)
