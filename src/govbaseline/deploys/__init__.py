"""pyinfra deploys: the same controls as the Ansible roles, from the same defaults and templates."""

import gevent

# The deploys share Ansible's module_utils with the roles (the collection's plugins/modules/*.py).
# Their first import probes whether socket.getaddrinfo takes an int subclass as port
# (ansible.module_utils._internal._patches._socket_patch) and expects an OSError; under pyinfra,
# gevent's resolver thread raises it and the hub prints it as a traceback ("Int or String expected")
# before handing it back to the probe. Import them here with the hub's error printing off for that one
# probe.
_hub = gevent.get_hub()
_hub.exception_stream = None
try:
    import ansible.module_utils.basic  # noqa: F401  (imported for its side effect: the probe)
finally:
    del _hub.exception_stream
